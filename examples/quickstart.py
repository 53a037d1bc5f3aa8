"""The Python API end to end: load a spec, train, export, and deploy with the runtime.

python examples/quickstart.py [OUT_DIR]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

import nnspec
from nnspec_runtime import Model

HERE = Path(__file__).resolve().parent


def main(out_dir: Path) -> None:
    spec = nnspec.load_spec(HERE.parent / "specs" / "iris.yaml")
    result = nnspec.train(spec)
    print(
        f"trained {spec.name} for {result.history.epochs_run} epochs "
        f"(best validation loss at epoch {result.history.best_epoch}), "
        f"test accuracy {result.metrics['accuracy']:.3f}"
    )

    # The export checks the ONNX graph in onnxruntime against the NumPy network on the test
    # split (raising, and writing nothing, if they differ), as `nnspec train` does.
    path = out_dir / "iris.onnx"
    nnspec.export(result, path)

    model = Model(path, device="auto")
    parity = json.loads(model.metadata["nnspec_parity"])
    print(f"wrote {path}; parity on the {parity['inputs']} split: {parity['max_abs_err']:.1e}")
    flowers = np.loadtxt(HERE / "new_flowers.csv", delimiter=",", skiprows=1)
    pred = model.predict(flowers)
    assert pred.labels is not None and pred.probabilities is not None  # a classifier's
    print(f"onnxruntime on {model.device}:")
    for row, label, probs in zip(flowers, pred.labels, pred.probabilities, strict=True):
        print(f"  {row} -> {label:<10} (p = {probs.max():.3f})")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("."))
