"""The Python API end to end: load a spec, train, export, and deploy with the runtime.

python examples/quickstart.py [OUT_DIR]
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

import nnspec
from nnspec_runtime import Model

HERE = Path(__file__).resolve().parent


def main(out_dir: Path) -> None:
    spec = nnspec.load_spec(HERE.parent / "specs" / "iris.yaml")
    network, history = nnspec.train(spec)
    print(
        f"trained {spec.name} for {history.epochs_run} epochs "
        f"(best validation loss at epoch {history.best_epoch})"
    )

    path = out_dir / "iris.onnx"
    nnspec.export(network, path)

    model = Model(path, device="auto")
    flowers = np.loadtxt(HERE / "new_flowers.csv", delimiter=",", skiprows=1)
    pred = model.predict(flowers)
    print(f"onnxruntime on {model.device}:")
    for row, label, probs in zip(flowers, pred.labels, pred.probabilities, strict=True):
        print(f"  {row} -> {label:<10} (p = {probs.max():.3f})")
    # The exported graph and the NumPy network agree (the training command checks this too).
    want = network.predict(flowers.astype(np.float32))["probabilities"]
    np.testing.assert_allclose(pred.probabilities, want, rtol=1e-4, atol=1e-5)


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("."))
