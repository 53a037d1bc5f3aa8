"""nnspec.sklearn: scikit-learn's own estimator checks, and the estimators in its tools."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

pytest.importorskip("sklearn")

from sklearn.model_selection import GridSearchCV, cross_val_score  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import MinMaxScaler  # noqa: E402
from sklearn.utils.estimator_checks import check_estimator  # noqa: E402

import nnspec  # noqa: E402
from nnspec.data.core import load_builtin  # noqa: E402
from nnspec.sklearn import (  # noqa: E402
    EXPECTED_FAILED_CHECKS,
    SpecClassifier,
    SpecRegressor,
    _default_spec,
)


def small(task: str) -> dict:
    spec = _default_spec(task)
    spec["layers"][0]["units"] = 16
    spec["train"] = {"optimizer": {"kind": "adam", "lr": 0.01}, "batch_size": 16, "epochs": 40}
    return spec


@pytest.mark.parametrize(
    "estimator",
    [SpecClassifier(small("classification")), SpecRegressor(small("regression"))],
    ids=["classifier", "regressor"],
)
def test_sklearn_check_estimator(estimator):
    assert len(EXPECTED_FAILED_CHECKS) <= 5
    results = check_estimator(
        estimator, expected_failed_checks=EXPECTED_FAILED_CHECKS, on_skip=None
    )
    ran = [r["check_name"] for r in results if r["status"] == "passed"]
    assert len(ran) >= 40  # the checks ran, rather than being skipped


@pytest.fixture(scope="module")
def iris():
    ds = load_builtin("iris", task="classification")
    names = np.array(["setosa", "versicolor", "virginica"])
    return ds.x, names[ds.y]


def test_classifier_keeps_the_labels_and_exports(iris, tmp_path):
    pd = pytest.importorskip("pandas")
    x, y = iris
    df = pd.DataFrame(x, columns=["sl", "sw", "pl", "pw"])
    clf = SpecClassifier("specs/iris.yaml", epochs=60, seed=1).fit(df, y)
    assert clf.classes_.tolist() == ["setosa", "versicolor", "virginica"]
    assert clf.feature_names_in_.tolist() == ["sl", "sw", "pl", "pw"]
    assert clf.n_features_in_ == 4 and clf.spec_.train.epochs == 60
    assert set(clf.predict(df)) <= set(y) and clf.score(df, y) > 0.9
    proba = clf.predict_proba(df)
    assert proba.shape == (150, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-5)
    clf.export(tmp_path / "m.onnx")
    from nnspec_runtime import Model

    model = Model(tmp_path / "m.onnx")
    assert model.class_names == ["setosa", "versicolor", "virginica"]
    assert model.feature_names == ["sl", "sw", "pl", "pw"]
    np.testing.assert_allclose(model.predict(x).probabilities, proba, rtol=1e-4, atol=1e-5)
    again = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(again.predict_proba(df), proba)


def test_the_estimator_trains_what_nnspec_train_trains(iris):
    x, y = iris
    spec = nnspec.load_spec("specs/iris.yaml")
    clf = SpecClassifier(spec).fit(x, y)
    result = nnspec.train(spec, x, y, test_fraction=0)
    for k, v in result.network.parameters().items():
        np.testing.assert_array_equal(v, clf.network_.parameters()[k])


def test_pipeline_cross_val_score_and_grid_search(iris):
    x, y = iris
    pipe = make_pipeline(MinMaxScaler(), SpecClassifier(small("classification")))
    scores = cross_val_score(pipe, x, y, cv=3)
    assert scores.shape == (3,) and scores.mean() > 0.85
    grid = GridSearchCV(
        SpecClassifier(small("classification")), {"epochs": [2, 40], "lr": [0.01]}, cv=3
    )
    grid.fit(x, y)
    assert grid.best_params_ == {"epochs": 40, "lr": 0.01}
    assert grid.best_estimator_.spec_.train.epochs == 40


def test_regressor_one_and_two_targets():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 3))
    y = x @ [1.0, -2.0, 0.5]
    reg = SpecRegressor(small("regression"), epochs=60).fit(x, y)
    assert reg.predict(x).shape == (300,) and reg.score(x, y) > 0.9
    y2 = np.stack([y, x[:, 0]], axis=1)
    assert SpecRegressor(small("regression")).fit(x, y2).predict(x).shape == (300, 2)


def test_bad_parameters_and_specs_are_value_errors(iris):
    x, y = iris
    for params, message in [
        ({"epochs": 0}, r"epochs: expected a positive integer or None, got 0"),
        ({"lr": -1.0}, r"lr: expected a positive number"),
        ({"seed": -2}, r"seed: expected a non-negative integer"),
    ]:
        with pytest.raises(ValueError, match=message):
            SpecClassifier(small("classification"), **params).fit(x, y)
    with pytest.raises(ValueError, match=r"SpecRegressor needs a regression spec"):
        SpecRegressor("specs/iris.yaml").fit(x, y.astype(object) == "setosa")
