"""scikit-learn estimators over a spec: ``SpecClassifier`` and ``SpecRegressor``.

    from nnspec.sklearn import SpecClassifier
    clf = SpecClassifier("specs/iris.yaml", epochs=50).fit(X, y)
    clf.predict(X), clf.predict_proba(X), clf.score(X, y), clf.classes_
    clf.export("model.onnx")                       # the fitted network, parity-checked

They train through ``nnspec.train(spec, X, y)`` on all of ``X`` (the spec's ``data`` and
``test_fraction`` are not used: scikit-learn holds data out itself, in ``cross_val_score`` and
``GridSearchCV``; ``train.validation_fraction`` and early stopping still apply). ``epochs``,
``batch_size``, ``lr`` and ``seed`` override the spec's ``train`` values when given (None keeps
the spec's), so a grid search can tune them; ``spec`` itself is a parameter too (a path, YAML
text, a dict or a Spec). Without a spec, a one-hidden-layer MLP (100 ReLU units, Adam),
like scikit-learn's MLPClassifier and MLPRegressor. The output layer of the default (and of
any spec that says ``units: auto``) takes its size from ``y``.

scikit-learn is an optional extra: ``pip install "nnspec[sklearn]"``.
"""

from __future__ import annotations

import numbers

import numpy as np

try:
    from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
    from sklearn.utils.multiclass import check_classification_targets
    from sklearn.utils.validation import check_is_fitted, column_or_1d, validate_data
except ImportError as e:  # pragma: no cover - the message is the point
    raise ImportError('nnspec.sklearn needs scikit-learn: pip install "nnspec[sklearn]"') from e

from . import pipeline
from .errors import DataError
from .spec.models import Spec, as_spec

# Checks of sklearn.utils.estimator_checks.check_estimator that these estimators fail, and why
# (the test suite runs check_estimator with exactly these expected to fail).
EXPECTED_FAILED_CHECKS: dict[str, str] = {}


def _default_spec(task: str) -> dict:
    """One hidden layer of 100 ReLU units, Adam (lr 0.001), 200 epochs of batches of 32: the
    defaults of scikit-learn's MLPClassifier/MLPRegressor, as a spec."""
    classification = task == "classification"
    return {
        "spec_version": 1,
        "name": "sklearn-mlp",
        "task": task,
        "preprocess": {"standardize": True, "standardize_target": not classification},
        "layers": [
            {"kind": "dense", "name": "hidden", "units": 100, "activation": "relu"},
            {
                "kind": "dense",
                "name": "output",
                "units": "auto",
                "activation": "softmax" if classification else "identity",
            },
        ],
        "loss": "cross_entropy" if classification else "mse",
        "train": {"optimizer": {"kind": "adam", "lr": 0.001}, "batch_size": 32, "epochs": 200},
    }


def _positive(name: str, value, kind) -> None:
    ok = isinstance(value, kind) and not isinstance(value, bool) and value > 0
    if value is not None and not ok:
        what = "a positive integer" if kind is numbers.Integral else "a positive number"
        raise ValueError(f"{name}: expected {what} or None, got {value!r}")


def _named(given, checked: np.ndarray):
    """What to train on: the checked array, or the DataFrame it came from when that has
    string column names, so that the exported model names its inputs by them."""
    columns = getattr(given, "columns", None)
    if (
        type(given).__module__.startswith("pandas")
        and columns is not None
        and all(isinstance(c, str) for c in columns)
    ):
        import pandas as pd  # the caller passed a DataFrame: pandas is installed

        return pd.DataFrame(checked, columns=list(columns))
    return checked


def _rebuilt(spec, io, dtype, arrays: dict, statistics: dict):
    """A network of ``dtype`` built from ``spec`` around saved ``arrays`` and ``statistics``
    (cast to ``dtype``): how a pickled estimator comes back, and its float64 twin is made."""
    from .nn import network as nn

    network = nn.build(spec, io, dtype=dtype)
    for key, value in network.arrays().items():
        value[...] = arrays[key]  # in place: parameters are views of one flat buffer
    for key, value in statistics.items():
        setattr(network, key, np.asarray(value, dtype=network.dtype))
    return network


def _float64_twin(network):
    """The trained network with its float32 weights and statistics copied into float64, for
    predictions.

    Why not the float32 network itself: BLAS picks its GEMM kernels by the shape of the batch,
    so a float32 row's sums are rounded differently with the rows around it (up to ~20 ulp
    after two layers), and ``predict(X[:k])`` would differ from ``predict(X)[:k]`` in the last
    digits; scikit-learn requires them equal (to 1e-7, ``check_methods_subset_invariance``).
    The same weights in float64 leave differences of ~1e-16. The exported ONNX model computes
    in float32 and agrees with this to the parity tolerance (rtol 1e-4, atol 1e-5)."""
    twin = _rebuilt(network.spec, network.io, np.float64, network.arrays(), network.statistics())
    twin.tabular = network.tabular
    return twin


class _SpecEstimator(BaseEstimator):
    _task = ""

    def __init__(self, spec=None, epochs=None, batch_size=None, lr=None, seed=None):
        # scikit-learn's convention: store the parameters as given, check them in fit.
        self.spec = spec
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.seed = seed

    def _resolved_spec(self) -> Spec:
        """The spec with the estimator's overrides, checked; a ValueError when they are bad."""
        _positive("epochs", self.epochs, numbers.Integral)
        _positive("batch_size", self.batch_size, numbers.Integral)
        _positive("lr", self.lr, numbers.Real)
        if (
            self.seed is not None
            and not (isinstance(self.seed, numbers.Integral) and not isinstance(self.seed, bool))
            or (self.seed is not None and self.seed < 0)
        ):
            raise ValueError(f"seed: expected a non-negative integer or None, got {self.seed!r}")
        spec = as_spec(_default_spec(self._task) if self.spec is None else self.spec)
        if spec.task != self._task:
            raise ValueError(
                f"{type(self).__name__} needs a {self._task} spec; {spec.name} is a {spec.task} "
                f"spec (use {'SpecRegressor' if spec.task == 'regression' else 'SpecClassifier'})"
            )
        train = spec.train
        changes = {
            k: int(v)
            for k, v in (
                ("epochs", self.epochs),
                ("batch_size", self.batch_size),
                ("seed", self.seed),
            )
            if v is not None
        }
        if self.lr is not None:
            changes["optimizer"] = train.optimizer.model_copy(update={"lr": float(self.lr)})
        if not changes:
            return spec
        out = spec.model_copy(update={"train": train.model_copy(update=changes)})
        out._source = spec._source
        return out

    def _train(self, X, y) -> None:
        spec = self._resolved_spec()
        try:
            result = pipeline.train(spec, X, y, test_fraction=0)
        except DataError as e:  # scikit-learn's callers expect a ValueError for bad data
            raise ValueError(str(e)) from None
        self.result_ = result
        self.network_ = result.network
        self._network64 = _float64_twin(result.network)
        self.spec_ = result.network.spec
        self.history_ = result.history

    # Pickling (scikit-learn's persistence, joblib, process pools): the trained network's
    # layers hold functions that pickle cannot name, so its arrays are saved instead and the
    # network is rebuilt from the spec around them.
    def __getstate__(self):
        state = self.__dict__.copy()
        state.pop("_network64", None)  # made again from network_ by __setstate__
        network, result = state.pop("network_", None), state.pop("result_", None)
        if network is not None:
            state["_fitted"] = {
                "spec": network.spec,
                "io": network.io,
                "dtype": network.dtype.name,
                "arrays": {k: v.copy() for k, v in network.arrays().items()},
                "pre": network.statistics(),
                "result": (result.history, result.metrics, result.splits, result.seconds),
            }
        return state

    def __setstate__(self, state):
        fitted = state.pop("_fitted", None)
        self.__dict__.update(state)
        if fitted is None:
            return
        network = _rebuilt(
            fitted["spec"], fitted["io"], fitted["dtype"], fitted["arrays"], fitted["pre"]
        )
        history, metrics, splits, seconds = fitted["result"]
        self.network_ = network
        self._network64 = _float64_twin(network)
        self.result_ = pipeline.TrainResult(
            network.spec, network, history, metrics, splits, seconds
        )

    def export(self, path=None):
        """Write the fitted network as ONNX (parity-checked as ``nnspec.export`` does); the
        ``onnx.ModelProto``."""
        check_is_fitted(self)
        return pipeline.export(self.result_, path)

    def _inputs(self, X) -> np.ndarray:
        check_is_fitted(self)
        return validate_data(self, X, reset=False, dtype=np.float64)

    def _outputs(self, X) -> dict[str, np.ndarray]:
        """The fitted network's outputs for ``X``, computed in float64 (``_float64_twin``)."""
        x = self._inputs(X)  # checks that it is fitted first
        return self._network64.predict(x)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = False
        return tags


class SpecClassifier(ClassifierMixin, _SpecEstimator):
    """A classification spec as a scikit-learn classifier.

    Parameters: spec (path, YAML text, dict or Spec; None: a 100-unit ReLU MLP), epochs,
    batch_size, lr (the optimizer's), seed: None keeps the spec's value.

    Attributes after ``fit``: ``classes_`` (n_classes,) the original labels, sorted;
    ``n_features_in_``; ``feature_names_in_`` (from a DataFrame); ``network_`` (the trained
    nnspec Network); ``spec_`` (the spec trained, units resolved); ``history_``;
    ``result_`` (the TrainResult).
    """

    _task = "classification"

    def fit(self, X, y):
        """X: (n_samples, n_features), y: (n_samples,) labels of any sortable type."""
        given = X
        X, y = validate_data(self, X, y, dtype=np.float64)
        y = column_or_1d(y, warn=True)
        check_classification_targets(y)
        classes = np.unique(y)
        if len(classes) < 2:
            raise ValueError(
                f"{type(self).__name__} needs at least 2 classes in y, got 1 class ({classes[0]!r})"
            )
        self.classes_ = classes
        # nnspec sorts the labels as np.unique does, so its class k is classes_[k], and the
        # exported model names the classes by their labels.
        self._train(_named(given, X), y)
        if len(self.network_.io.class_names) != len(classes):  # pragma: no cover - a guard
            raise AssertionError("nnspec's classes differ from np.unique(y)")
        return self

    def predict_proba(self, X) -> np.ndarray:
        """(n_samples, n_classes) class probabilities, columns in the order of ``classes_``."""
        return self._outputs(X)["probabilities"]

    def predict(self, X) -> np.ndarray:
        """(n_samples,) the most probable class of each sample, as in ``classes_``."""
        proba = self.predict_proba(X)  # checks that it is fitted, before classes_ is read
        return self.classes_[np.argmax(proba, axis=1)]


class SpecRegressor(RegressorMixin, _SpecEstimator):
    """A regression spec as a scikit-learn regressor (one target, or several).

    Parameters as SpecClassifier. Attributes after ``fit``: ``n_features_in_``,
    ``feature_names_in_`` (from a DataFrame), ``network_``, ``spec_``, ``history_``,
    ``result_``.
    """

    _task = "regression"

    def fit(self, X, y):
        """X: (n_samples, n_features), y: (n_samples,) or (n_samples, n_targets)."""
        given = X
        X, y = validate_data(self, X, y, dtype=np.float64, multi_output=True, y_numeric=True)
        self._1d = y.ndim == 1
        self._train(_named(given, X), y)
        return self

    def predict(self, X) -> np.ndarray:
        """(n_samples,) predictions, or (n_samples, n_targets) for a 2-D y."""
        out = self._outputs(X)["prediction"]
        return out[:, 0] if self._1d else out

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        return tags
