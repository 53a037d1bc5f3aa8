"""End to end with the real exporters installed (CI installs torch 2.13's CPU wheel, skl2onnx
and onnxscript; skipped, saying so, where they are missing): the fixture script runs, each
model it writes imports, and the imported spec is compared with the producing tool itself —
PyTorch's forward pass and scikit-learn's predict_proba / predict."""

from __future__ import annotations

import sys
import warnings

import numpy as np
import onnx
import pytest
from import_checks import FIXTURES, run

import nnspec
from nnspec.onnxio.import_model import import_graph
from nnspec.onnxio.import_model import write_import as _write
from nnspec.pipeline import compile_imported

sys.path.insert(0, str(FIXTURES))
import make_fixtures  # noqa: E402

torch = pytest.importorskip("torch", reason="needs torch (pip install torch==2.13.0)")


def write_import(imp, path):
    return _write(imp, path, compile_imported)


def _import_compiled(path, tmp_path, **kw):
    write_import(import_graph(path, **kw), tmp_path / (path.stem + ".yaml"))
    return nnspec.compile(nnspec.load_spec(tmp_path / (path.stem + ".yaml"))).model


@pytest.mark.parametrize("dynamo", [False, True], ids=["torchscript", "dynamo"])
def test_torch_export_import_matches_torch_forward(dynamo, tmp_path):
    pytest.importorskip("onnxscript", reason="the dynamo exporter needs onnxscript")
    _, ConvNet9, _, ConvNet17, _, _ = make_fixtures._torch_models()
    torch.manual_seed(3)
    for i, (cls, shape) in enumerate(((ConvNet9, (2, 12, 12)), (ConvNet17, (3, 10, 10)))):
        model = cls().eval()
        make_fixtures._randomize_batchnorm(model)
        path = tmp_path / f"m{i}.onnx"
        x = torch.randn(5, *shape)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            kw = {"opset_version": 17} if not dynamo else {}
            torch.onnx.export(
                model, (x,), str(path), dynamo=dynamo, input_names=["input"],
                dynamic_axes=None if dynamo else {"input": {0: "batch"}},
                dynamic_shapes=({0: torch.export.Dim("batch")},) if dynamo else None, **kw,
            )  # fmt: skip
        compiled = _import_compiled(path, tmp_path)
        with torch.no_grad():
            want = model(x).numpy()
        got = run(compiled, x.numpy())
        key = "probabilities" if "probabilities" in got and cls is ConvNet17 else "prediction"
        np.testing.assert_allclose(got[key], want, rtol=1e-4, atol=1e-5)


def _torchscript_matches_torch(model, x, opset: int, tmp_path):
    """Export ``model`` with the TorchScript exporter, import, compile, compare with torch."""
    path = tmp_path / "m.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model, (x,), str(path), dynamo=False, opset_version=opset, input_names=["input"],
            dynamic_axes={"input": {0: "batch"}},
        )  # fmt: skip
    with torch.no_grad():
        want = model(x).numpy()
    got = run(_import_compiled(path, tmp_path), x.numpy())["prediction"]
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    return path


@pytest.mark.parametrize("opset", [9, 10, 11, 12, 14, 15, 16])
def test_torchscript_opsets(opset, tmp_path):
    """The opsets the fixtures (9, 13, 17) leave out; below 13 through onnx.version_converter."""
    _, ConvNet9, _, _, _, _ = make_fixtures._torch_models()
    torch.manual_seed(opset)
    model = ConvNet9().eval()
    make_fixtures._randomize_batchnorm(model)
    _torchscript_matches_torch(model, torch.randn(4, 2, 12, 12), opset, tmp_path)


@pytest.mark.parametrize("opset", [11, 17])
def test_torchscript_view_by_batch_size(opset, tmp_path):
    """x.view(x.size(0), -1) exports as Shape, Gather, Unsqueeze, Concat, Reshape."""

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(1, 2, 3)
            self.fc = torch.nn.Linear(2 * 4 * 4, 3)

        def forward(self, x):
            x = torch.relu(self.conv(x))
            return self.fc(x.view(x.size(0), -1))

    path = _torchscript_matches_torch(Net().eval(), torch.randn(5, 1, 6, 6), opset, tmp_path)
    assert "Shape" in [n.op_type for n in onnx.load(str(path)).graph.node]


def test_sklearn_mlp_import_matches_sklearn(tmp_path):
    pytest.importorskip("skl2onnx", reason="needs skl2onnx")
    from skl2onnx import to_onnx
    from sklearn.datasets import load_digits
    from sklearn.neural_network import MLPClassifier

    x, y = load_digits(return_X_y=True)
    x = (x / 16).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf = MLPClassifier(hidden_layer_sizes=(32, 16), max_iter=30, random_state=0).fit(x, y)
    path = tmp_path / "digits.onnx"
    path.write_bytes(to_onnx(clf, x[:1], options={"zipmap": False}).SerializeToString())
    got = run(_import_compiled(path, tmp_path), x[:200])
    np.testing.assert_allclose(
        got["probabilities"], clf.predict_proba(x[:200]), rtol=1e-4, atol=1e-5
    )
    assert (got["label"] == clf.predict(x[:200])).all()


def test_fixture_script_regenerates_importable_fixtures(tmp_path):
    pytest.importorskip("skl2onnx", reason="needs skl2onnx")
    pytest.importorskip("onnxscript", reason="the dynamo exporter needs onnxscript")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        make_fixtures.make_torch(tmp_path)
        make_fixtures.make_sklearn(tmp_path)
    for name in make_fixtures.FIXTURES:
        if "2targets" in name:
            continue
        check = write_import(import_graph(tmp_path / name), tmp_path / (name + ".yaml"))
        assert check["worst_ratio"] <= 1, name
