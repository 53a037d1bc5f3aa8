"""The README's flow for a pretrained model: ``nnspec import`` a PyTorch export, freeze its
convolution, give it a new head, ``nnspec train`` on new data, and the export's parity check;
the frozen weights stay bit-identical to the imported ones."""

from __future__ import annotations

import numpy as np
import onnx
from import_checks import FIXTURES
from onnx import numpy_helper

from nnspec.cli.commands import main


def _images(n: int = 240, seed: int = 0):
    """Two classes of 3×10×10 images: class 1 has a bright 4×4 square somewhere."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 0.3, (n, 3, 10, 10)).astype(np.float32)
    y = rng.integers(0, 2, n)
    for i in np.flatnonzero(y):
        r, c = rng.integers(0, 6, 2)
        x[i, :, r : r + 4, c : c + 4] += 2.0
    return x, y


def test_import_freeze_finetune_export(tmp_path, capsys):
    source = FIXTURES / "torch_ts_convnet_opset17.onnx"
    assert main(["import", str(source), "-o", str(tmp_path / "net.yaml")]) == 0
    imported = (tmp_path / "net.yaml").read_text()
    assert "  - {kind: conv2d, name: body.0, filters: 8, kernel_size: 3, activation: relu}" in (
        imported
    )
    x, y = _images()
    np.savez(tmp_path / "new.npz", x=x, y=y)
    # What a user edits: data, the frozen convolution, a new two-class head.
    finetune = (
        imported.replace('classes: ["0", "1", "2", "3"]\n', "")
        .replace("activation: relu}", "activation: relu, trainable: false}")
        .replace(
            "  - {kind: dense, name: head, units: 4, activation: softmax}",
            "  - {kind: dense, name: new_head, units: 2, activation: softmax}",
        )
        .replace("layers:", "data: {npz: new.npz, test_fraction: 0.25}\nlayers:")
    )
    finetune += "train: {optimizer: {kind: adam, lr: 0.05}, epochs: 30, batch_size: 32, seed: 0}\n"
    (tmp_path / "ft.yaml").write_text(finetune)
    capsys.readouterr()
    out = tmp_path / "ft.onnx"
    assert main(["train", str(tmp_path / "ft.yaml"), "-o", str(out), "--quiet"]) == 0
    model = onnx.load(str(out))
    weights = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    with np.load(tmp_path / "net.weights.npz", allow_pickle=False) as w:
        np.testing.assert_array_equal(weights["body.0.weight"], w["body.0.weight"])
        np.testing.assert_array_equal(weights["body.0.bias"], w["body.0.bias"])
    meta = {p.key: p.value for p in model.metadata_props}
    import json

    parity = json.loads(meta["nnspec_parity"])
    assert parity["worst_ratio"] <= 1
    accuracy = json.loads(meta["nnspec_test_metrics"])["accuracy"]
    assert accuracy >= 0.8, accuracy
    assert main(["validate", str(tmp_path / "ft.yaml")]) == 0
    report = capsys.readouterr().out
    assert "loaded: body.0" in report and "fresh:  new_head (not in the model)" in report
    assert "frozen: body.0" in report
