"""The NumPy network: preprocessing, the layer stack, the loss, and its gradients."""

from __future__ import annotations

import math
from collections import OrderedDict

import numpy as np

from ..layers import LAYERS, Layer
from ..spec.models import Spec
from ..spec.rules import ModelIO
from .losses import LOSSES
from .packing import Packed, pack


class Network:
    """A built spec: live parameters plus the preprocessing fitted on the training split.

    Inputs are raw features (batch, features), or images (batch, channels, height, width) when
    ``io.shape`` is an image shape (flat rows of the same size are reshaped to it).
    Standardization is part of the network, exactly as it is part of the exported graph.
    """

    def __init__(self, spec: Spec, io: ModelIO, layers: list[Layer], dtype: np.dtype):
        self.spec = spec
        self.io = io
        self.layers = layers
        self.dtype = np.dtype(dtype)
        self.task = spec.task
        self.loss = LOSSES[spec.loss]
        if self.loss.wrt_preactivation:  # the loss applies the output activation itself
            layers[-1].defer_activation = True
        self.shape = tuple(io.shape)
        # Per feature for flat inputs; per channel (channels, 1, 1) for images, broadcasting
        # over height and width as the exported Sub/Div nodes do.
        stat_shape = (self.shape[0], 1, 1) if len(self.shape) == 3 else self.shape
        self.x_mean = np.zeros(stat_shape, dtype=self.dtype)
        self.x_scale = np.ones(stat_shape, dtype=self.dtype)
        self.y_mean = np.zeros(io.outputs, dtype=self.dtype)
        self.y_scale = np.ones(io.outputs, dtype=self.dtype)
        # Tabular specs: the encoder (nnspec.data.tabular.TabularEncoder) that turns raw
        # columns into the (batch, features) rows this network takes; the export puts it in
        # the graph. None: the inputs are those rows already.
        self.tabular = None

    # -- parameters --------------------------------------------------------------------------
    def _named(self, table: str, trainable_only: bool = False) -> OrderedDict[str, np.ndarray]:
        """``"<layer name>.<key>"`` -> array, from each layer's ``params``, ``grads`` or
        ``state``; ``trainable_only`` leaves out frozen layers."""
        return OrderedDict(
            (f"{layer.name}.{k}", v)
            for layer in self.layers
            if layer.trainable or not trainable_only
            for k, v in getattr(layer, table).items()
        )

    def parameters(self) -> OrderedDict[str, np.ndarray]:
        """``"<layer name>.<param>"`` -> the live array (updated in place by training)."""
        return self._named("params")

    def gradients(self) -> OrderedDict[str, np.ndarray]:
        """Same keys as ``parameters()``; the buffers the last backward pass filled."""
        return self._named("grads")

    def trainable_parameters(self) -> OrderedDict[str, np.ndarray]:
        """The parameters of layers that are not frozen: what the optimizer updates."""
        return self._named("params", trainable_only=True)

    def trainable_gradients(self) -> OrderedDict[str, np.ndarray]:
        return self._named("grads", trainable_only=True)

    def pack_trainable(self) -> tuple[Packed, Packed]:
        """The trainable parameters and their gradients as ``Packed`` tables: every array
        becomes a view into one flat buffer (values kept), so that the optimizer updates the
        whole network in a few NumPy calls. Layers keep working on their (now view) arrays.
        Packing again is free while the layers still hold the views."""
        params, grads = self.trainable_parameters(), self.trainable_gradients()
        packed = getattr(self, "_packed", None)
        if packed is not None and packed[0].owns(params) and packed[1].owns(grads):
            return packed
        packed = (pack(params), pack(grads))
        for layer in self.layers:
            if layer.trainable:
                for table, flat in zip((layer.params, layer.grads), packed, strict=True):
                    for k in table:
                        table[k] = flat[f"{layer.name}.{k}"]
        self._packed = packed
        return packed

    def lowest_trainable(self) -> int:
        """Index of the lowest layer with parameters that learn: backprop stops there."""
        return next(
            (i for i, la in enumerate(self.layers) if la.trainable and la.params),
            len(self.layers) - 1,
        )

    def state(self) -> OrderedDict[str, np.ndarray]:
        """Arrays kept beside the parameters but not learned by gradients (running statistics
        of the layers that keep them), keyed like ``parameters()``."""
        return self._named("state")

    def arrays(self) -> OrderedDict[str, np.ndarray]:
        """Everything the exported model stores per layer: parameters, then state."""
        return OrderedDict([*self.parameters().items(), *self.state().items()])

    def param_count(self) -> int:
        return int(sum(v.size for v in self.arrays().values()))

    # The standardization statistics (fitted by ``fit_preprocess``), stored beside the arrays
    # by checkpoints, pickled estimators and the export.
    STATISTICS = ("x_mean", "x_scale", "y_mean", "y_scale")

    def statistics(self) -> dict[str, np.ndarray]:
        """``STATISTICS`` by name -> the network's current array."""
        return {k: getattr(self, k) for k in self.STATISTICS}

    # -- preprocessing -----------------------------------------------------------------------
    def fit_preprocess(
        self, x: np.ndarray, y: np.ndarray | None = None, *, inputs=True, targets=True
    ) -> None:
        """Fit standardization on the training split (never on validation or test data).

        ``y`` is used for regression targets when ``standardize_target`` is on, else ignored.
        ``inputs`` / ``targets`` False keep those statistics (taken from a pretrained model).
        """
        pre = self.spec.preprocess
        if pre.standardize and inputs:
            x = self.as_samples(np.asarray(x, dtype=np.float64))
            if x.ndim == 4:  # images: one mean and deviation per channel
                mean = x.mean(axis=(0, 2, 3)).reshape(-1, 1, 1)
                std = x.std(axis=(0, 2, 3)).reshape(-1, 1, 1)
            else:
                mean, std = x.mean(axis=0), x.std(axis=0)
            # A constant feature carries no information; dividing by 1 keeps it finite.
            std = np.where(std > 0, std, 1.0)
            if self.tabular is not None:  # one-hot columns stay 0/1: numeric ones only
                k = len(self.tabular.numeric)
                mean[k:], std[k:] = 0.0, 1.0
            self.x_mean = mean.astype(self.dtype)
            self.x_scale = std.astype(self.dtype)
        if pre.standardize_target and self.task == "regression" and y is not None and targets:
            std = y.std(axis=0)
            self.y_mean = y.mean(axis=0).astype(self.dtype)
            self.y_scale = np.where(std > 0, std, 1.0).astype(self.dtype)

    def as_samples(self, x: np.ndarray) -> np.ndarray:
        """(batch, features) rows -> (batch, *shape); inputs already of that shape pass."""
        if x.shape[1:] == self.shape:
            return x
        if x.ndim < 2 or math.prod(x.shape[1:]) != math.prod(self.shape):
            raise ValueError(f"expected inputs of shape (batch, *{self.shape}), got {x.shape}")
        return x.reshape(len(x), *self.shape)

    def scale_x(self, x: np.ndarray) -> np.ndarray:
        return (self.as_samples(np.asarray(x, dtype=self.dtype)) - self.x_mean) / self.x_scale

    def targets(self, y: np.ndarray) -> np.ndarray:
        """What the loss compares the output with: indices, one-hot rows or scaled values."""
        if self.task == "regression":
            y = np.asarray(y, dtype=self.dtype)
            y = y.reshape(len(y), -1) if y.ndim == 1 and self.io.outputs == 1 else y
            if y.ndim != 2 or y.shape[1] != self.io.outputs:
                raise ValueError(
                    f"expected regression targets of shape (batch, {self.io.outputs}), "
                    f"got {y.shape}"
                )
            return (y - self.y_mean) / self.y_scale
        y = np.asarray(y, dtype=np.int64)
        if not self.loss.one_hot_targets:
            return y
        if self.io.outputs == 1:  # one logistic unit: P(class 1)
            return y.reshape(-1, 1).astype(self.dtype)
        return np.eye(self.io.outputs, dtype=self.dtype)[y]

    # -- forward / backward ------------------------------------------------------------------
    def forward_scaled(self, xs: np.ndarray, training: bool = False) -> np.ndarray:
        """Standardized inputs (batch, features) -> last layer's output (batch, outputs).

        With ``training`` and a loss fused with the output activation (softmax +
        cross-entropy), the last layer returns its pre-activation z: ``forward_loss`` applies
        the activation, inside the loss."""
        for layer in self.layers:
            xs = layer.forward(xs, training)
        return xs

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Raw inputs (batch, features) -> outputs (batch, outputs).

        Classification: the output layer's activations (probabilities with softmax).
        Regression: predictions in the target's own units.
        """
        out = self.forward_scaled(self.scale_x(x))
        if self.task == "regression":
            out = out * self.y_scale + self.y_mean
        return out

    def predict(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """The exported graph's outputs: ``probabilities`` and ``label``, or ``prediction``.

        A tabular network also takes raw columns (a dict: name -> (batch,) column), which its
        encoder turns into rows first, as the exported graph does."""
        if isinstance(x, dict):
            x = self.tabular.transform(x).astype(self.dtype)
        out = self.forward(x)
        if self.task == "regression":
            return {"prediction": out}
        if out.shape[1] == 1:  # a single logistic unit gives P(class 1)
            out = np.concatenate([1 - out, out], axis=1)
        return {"probabilities": out, "label": out.argmax(axis=1).astype(np.int64)}

    def forward_loss(self, xs: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, float, np.ndarray]:
        """Output, loss (without L2) and the loss's gradient at the output layer.

        The gradient is dL/dz when the loss is fused with the output activation (the output
        layer's pre-activation z, cached by its forward pass), else dL/d(output).
        """
        # With a fused loss the output layer returns z, and the loss returns the activation.
        loss, grad, out = self.loss.value_and_grad(self.forward_scaled(xs, training=True), t)
        return out, loss, grad

    def backprop(
        self, xs: np.ndarray, t: np.ndarray, lowest: int | None = None
    ) -> tuple[float, np.ndarray]:
        """Forward and backward on scaled inputs and targets; fills every layer's ``grads``.

        ``lowest``: ``lowest_trainable()``, when the caller already knows it.
        Returns the loss (with the L2 term) and the output layer's activations, from which the
        trainer takes its running metrics at no extra cost.
        """
        out, loss, grad = self.forward_loss(xs, t)
        # Below the lowest layer that learns, no gradient is needed, not even with respect to
        # that layer's input: for a first dense layer that is one matrix product of three,
        # and fine-tuning a new head on frozen convolutions costs a forward pass plus the
        # head's backward.
        lowest = self.lowest_trainable() if lowest is None else lowest
        last = len(self.layers) - 1
        grad = self.layers[last].backward(
            grad, wrt_preactivation=self.loss.wrt_preactivation, input_grad=lowest < last
        )
        for i in range(last - 1, lowest - 1, -1):
            grad = self.layers[i].backward(grad, input_grad=i > lowest)
        wd = self.spec.train.weight_decay
        if wd:
            # L2 penalty (wd/2) sum W^2 on weights only: its gradient is wd W.
            for layer in self.layers:
                if "weight" in layer.params and layer.trainable:
                    w = layer.params["weight"]
                    loss += 0.5 * wd * float(np.vdot(w, w))
                    layer.grads["weight"] += wd * w
        return loss, out

    def loss_and_gradients(
        self, x: np.ndarray, y: np.ndarray
    ) -> tuple[float, OrderedDict[str, np.ndarray]]:
        """Loss and its gradient with respect to every parameter, for raw ``x`` and ``y``.

        Parameters
        ----------
        x : ndarray of shape (batch, features)
        y : class indices (batch,) for classification; (batch, outputs) for regression.

        Returns
        -------
        loss : float
        grads : dict with the keys of ``trainable_parameters()``; copies, safe to keep.
        """
        loss, _ = self.backprop(self.scale_x(x), self.targets(y))
        return loss, OrderedDict((k, v.copy()) for k, v in self.trainable_gradients().items())


def build(spec: Spec, io: ModelIO, seed: int | None = None, dtype=None) -> Network:
    """Fresh network with weights drawn from ``seed`` (default ``spec.train.seed``)."""
    dtype = np.dtype(dtype or spec.train.dtype)
    seed = spec.train.seed if seed is None else seed
    # One independent stream per layer: adding a layer at the end leaves earlier ones unchanged.
    streams = np.random.SeedSequence(seed).spawn(len(spec.layers))
    shape: tuple = (None, *io.shape)
    layers = []
    for layer_spec, name, stream in zip(spec.layers, spec.layer_names(), streams, strict=True):
        kind = LAYERS[layer_spec.kind]
        layer = kind.layer(layer_spec, name, shape, np.random.default_rng(stream), dtype)
        layer.trainable = getattr(layer_spec, "trainable", True)
        layers.append(layer)
        shape = layer_spec.output_shape(shape)
    return Network(spec, io, layers, dtype)
