"""AlexNet as the lecture uses it: torchvision's architecture (61.1 M parameters, 3×224×224),
random weights (no download here), exported by torch, imported, compiled to the same outputs
as torch's forward pass, and fine-tuned with a new 10-class head and the convolutions frozen
on a few hundred synthetic images. Slow: about a minute on 2 cores, 4 GB of memory."""

from __future__ import annotations

import json
import time
import warnings

import numpy as np
import onnx
import pytest
import yaml
from import_checks import run
from onnx import numpy_helper

import nnspec
from nnspec.cli.commands import main

torch = pytest.importorskip("torch", reason="needs torch (pip install torch==2.13.0)")
pytestmark = pytest.mark.slow

CLASSES = 10


def _synthetic_images(n: int, seed: int = 0):
    """``n`` 3×224×224 images of CLASSES kinds: each kind a fixed smooth colour pattern (a
    seeded 7×7 grid upsampled 32×), each image that pattern plus noise."""
    rng = np.random.default_rng(seed)
    patterns = rng.normal(0, 1, (CLASSES, 3, 7, 7)).repeat(32, axis=2).repeat(32, axis=3)
    y = np.arange(n) % CLASSES
    rng.shuffle(y)
    x = patterns[y] + rng.normal(0, 1.0, (n, 3, 224, 224))
    return x.astype(np.float32), y


def test_alexnet_export_import_compile_finetune(tmp_path, capsys):
    from alexnet_torch import AlexNet

    torch.manual_seed(0)
    model = AlexNet().eval()
    assert sum(p.numel() for p in model.parameters()) == 61_100_840
    source = tmp_path / "alexnet.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model, (torch.randn(1, 3, 224, 224),), str(source), dynamo=False, opset_version=17,
            input_names=["input"], output_names=["logits"], dynamic_axes={"input": {0: "batch"}},
        )  # fmt: skip
    t0 = time.perf_counter()
    spec_path = tmp_path / "alexnet.yaml"
    assert main(["import", str(source), "-o", str(spec_path), "--task", "classification"]) == 0
    printed = capsys.readouterr().out
    print(printed, f"import: {time.perf_counter() - t0:.1f} s")
    data = yaml.safe_load(spec_path.read_text())
    kinds = [layer["kind"] for layer in data["layers"]]
    assert (
        kinds
        == ["conv2d", "maxpool2d"] * 2 + ["conv2d"] * 3 + ["maxpool2d", "flatten"] + ["dense"] * 3
    )
    assert data["layers"][0] == {
        "kind": "conv2d", "name": "features.0", "filters": 64, "kernel_size": 11, "stride": 4,
        "padding": 2, "activation": "relu",
    }  # fmt: skip
    assert "61,100,840 parameters" in printed

    # Compiled (as nnspec compile does) and compared with torch's own forward pass.
    compiled = tmp_path / "compiled.onnx"
    assert main(["compile", str(spec_path), "-o", str(compiled)]) == 0
    x = torch.randn(3, 3, 224, 224, generator=torch.Generator().manual_seed(9))
    with torch.no_grad():
        want = torch.softmax(model(x), dim=1).numpy()
    got = run(compiled, x.numpy())["probabilities"]
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    err = np.abs(got - want).max()
    print(f"alexnet compiled vs torch: max abs err {err:.3g}")

    # Fine-tune: the convolutions frozen, a new 10-class head, a few hundred small images.
    x, y = _synthetic_images(300)
    np.savez(tmp_path / "images.npz", x=x, y=y)
    text = spec_path.read_text()
    lines = []
    for line in text.splitlines():
        if line.startswith("classes:"):
            continue
        if "kind: conv2d" in line:
            line = line.replace("activation: relu}", "activation: relu, trainable: false}")
        if "name: classifier.6" in line:
            line = "  - {kind: dense, name: head, units: 10, activation: softmax}"
        if line == "layers:":
            lines.append("data: {npz: images.npz, test_fraction: 0.2}")
        lines.append(line)
    lines.append("train: {optimizer: {kind: adam, lr: 1.0e-4}, epochs: 2, batch_size: 20, seed: 0}")
    (tmp_path / "finetune.yaml").write_text("\n".join(lines) + "\n")
    out = tmp_path / "finetuned.onnx"
    t0 = time.perf_counter()
    assert main(["train", str(tmp_path / "finetune.yaml"), "-o", str(out), "--metrics",
                 str(tmp_path / "m.json")]) == 0  # fmt: skip
    print(capsys.readouterr().out, f"fine-tune: {time.perf_counter() - t0:.1f} s")
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert metrics["init"]["loaded"] == [
        "features.0", "features.3", "features.6", "features.8", "features.10", "classifier.1",
        "classifier.4",
    ]  # fmt: skip
    assert metrics["init"]["fresh"] == {"head": "not in the model"}
    assert metrics["parity"]["worst_ratio"] <= 1
    assert metrics["test"]["accuracy"] >= 0.5, metrics["test"]  # chance is 0.1
    finetuned = {t.name: numpy_helper.to_array(t) for t in onnx.load(str(out)).graph.initializer}
    with np.load(tmp_path / "alexnet.weights.npz", allow_pickle=False) as w:
        for name in ("features.0.weight", "features.10.weight", "features.10.bias"):
            np.testing.assert_array_equal(finetuned[name], w[name])  # frozen: bit-identical
    assert finetuned["head.weight"].shape == (4096, 10)
    assert nnspec.load_spec(tmp_path / "finetune.yaml").layers[0].trainable is False


def test_alexnet_dynamo_export_imports_to_torchs_outputs(tmp_path):
    pytest.importorskip("onnxscript", reason="the dynamo exporter needs onnxscript")
    from alexnet_torch import AlexNet

    torch.manual_seed(1)
    model = AlexNet().eval()
    source = tmp_path / "alexnet-dynamo.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model, (torch.randn(2, 3, 224, 224),), str(source), dynamo=True,
            input_names=["input"], dynamic_shapes=({0: torch.export.Dim("batch")},),
        )  # fmt: skip
    imported = nnspec.import_onnx(source, tmp_path / "a.yaml", task="classification")
    assert imported.param_count() == 61_100_840
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        want = torch.softmax(model(x), dim=1).numpy()
    got = run(nnspec.compile(nnspec.load_spec(tmp_path / "a.yaml")).model, x.numpy())
    np.testing.assert_allclose(got["probabilities"], want, rtol=1e-4, atol=1e-5)


def test_shipped_alexnet_spec_round_trips(tmp_path):
    """nnspec's own AlexNet (LRN, groups: 2, 227×227) exported, imported, compiled back."""
    from conftest import ROOT

    path = tmp_path / "alexnet.onnx"
    nnspec.compile(nnspec.load_spec(ROOT / "specs" / "alexnet.yaml"), path)
    imported = nnspec.import_onnx(path, tmp_path / "back.yaml")
    assert imported.check["worst_ratio"] <= 1
    back = nnspec.load_spec(tmp_path / "back.yaml")
    assert [la.kind for la in back.layers] == [
        la.kind for la in nnspec.load_spec(ROOT / "specs" / "alexnet.yaml").layers
        if la.kind != "dropout"
    ]  # fmt: skip
    assert back.layers[3].groups == 2 and back.layers[1].size == 5
