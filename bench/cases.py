"""What the suite measures: the models, their data, and the training configurations.

Kept free of heavy imports: the orchestrator and every worker (nnspec, PyTorch, scikit-learn)
read the same definitions, so each peer trains exactly the same architecture.
"""

from __future__ import annotations

from dataclasses import dataclass

# A layer is ("dense", units, activation), ("conv", filters, kernel, activation),
# ("pool", kernel) or ("flatten",). The last layer is the output layer.


@dataclass(frozen=True)
class Model:
    name: str
    builtin: str  # nnspec.data.core.load_builtin name
    task: str  # classification | regression
    layers: tuple
    min_samples: int  # tiny datasets are repeated up to this many rows per epoch
    image: tuple | None = None  # (channels, height, width) for ConvNets
    mlp: bool = True  # scikit-learn takes part (MLPs only)

    @property
    def inputs(self) -> int:
        return {"mcycle": 1, "iris": 4, "digits": 64, "digits28": 784}[self.builtin]

    @property
    def outputs(self) -> int:
        return self.layers[-1][1]

    def hidden(self) -> tuple[list[int], str]:
        """Hidden sizes and their (shared) activation, as scikit-learn takes them."""
        dense = [la for la in self.layers[:-1] if la[0] == "dense"]
        return [la[1] for la in dense], dense[0][2]

    def param_count(self) -> int:
        shape = self.image or (self.inputs,)
        total = 0
        for la in self.layers:
            if la[0] == "dense":
                fan_in = shape[-1] if len(shape) == 1 else shape[0] * shape[1] * shape[2]
                total += fan_in * la[1] + la[1]
                shape = (la[1],)
            elif la[0] == "conv":
                c, h, w = shape
                k = la[2]
                total += c * k * k * la[1] + la[1]
                shape = (la[1], h - k + 1, w - k + 1)
            elif la[0] == "pool":
                c, h, w = shape
                shape = (c, h // la[1], w // la[1])
            elif la[0] == "flatten":
                shape = (shape[0] * shape[1] * shape[2],)
        return total


def _dbn(act: str) -> tuple:
    return (
        ("dense", 500, act),
        ("dense", 500, act),
        ("dense", 2000, act),
        ("dense", 10, "softmax"),
    )


MODELS: dict[str, Model] = {
    m.name: m
    for m in [
        Model(
            "mcycle",
            "mcycle",
            "regression",
            (("dense", 10, "logistic"), ("dense", 1, "identity")),
            16384,
        ),
        Model(
            "iris",
            "iris",
            "classification",
            (("dense", 10, "logistic"), ("dense", 3, "softmax")),
            16384,
        ),
        Model(
            "digits",
            "digits",
            "classification",
            (("dense", 64, "relu"), ("dense", 10, "softmax")),
            8192,
        ),
        Model("dbn-logistic", "digits28", "classification", _dbn("logistic"), 3594),
        Model("dbn-relu", "digits28", "classification", _dbn("relu"), 3594),
        Model(
            "lenet",
            "digits28",
            "classification",
            (
                ("conv", 6, 5, "relu"),
                ("pool", 2),
                ("conv", 16, 5, "relu"),
                ("pool", 2),
                ("flatten",),
                ("dense", 120, "relu"),
                ("dense", 84, "relu"),
                ("dense", 10, "softmax"),
            ),
            1797,
            image=(1, 28, 28),
            mlp=False,
        ),
    ]
}

BATCH_SIZES = (64, 256)
OPTIMIZERS = {
    "sgd": {"kind": "sgd", "lr": 0.01, "momentum": 0.9},
    "adam": {"kind": "adam", "lr": 0.001},
}
# Inference: one tiny network, the big MLP and the ConvNet.
INFER_MODELS = ("iris", "dbn-logistic", "lenet")
INFER_BATCHES = (1, 1024)
# Peak RSS: one epoch of the dbn, Adam, batch 64 (the shipped specs/dbn.yaml settings).
MEMORY_CASE = {"model": "dbn-logistic", "opt": "adam", "batch": 64}


def train_cases(models: list[str]) -> list[dict]:
    return [
        {"model": m, "opt": o, "batch": b} for m in models for o in OPTIMIZERS for b in BATCH_SIZES
    ]


def case_key(case: dict) -> str:
    """``model/optimizer/bBATCH`` for training cases, the model name for the others."""
    if "opt" not in case:
        return case["model"]
    return f"{case['model']}/{case['opt']}/b{case['batch']}"
