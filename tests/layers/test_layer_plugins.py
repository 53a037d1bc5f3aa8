"""A layer kind is one module plus one registry line, shown from both ends.

Adding: a toy kind written to a temporary module and registered with ONE call is picked up,
unasked, by the generic gradient, parity, schema, docs and registry tests (run in a
subprocess, the toy module loaded as a pytest plugin so that it registers before collection).

Removing: a copy of the package without lrn.py and its registry line, with its generated files
regenerated, passes the tests of everything else.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from conftest import ROOT

# y = x * weight, one learned factor per feature. It imports the spec models BEFORE it
# registers, so the spec's layer union must follow a registration that comes late.
TOY_MODULE = '''\
"""A toy layer kind from outside nnspec: a learned scale per feature."""

from typing import Literal

import numpy as np
from pydantic import Field

import nnspec.spec.models  # noqa: F401  built before the toy registers
from nnspec.layers import LAYERS, DocCase, Layer, LayerKind
from nnspec.layers.base import ParamLayerSpecBase, ShapeError


class ToySpec(ParamLayerSpecBase):
    """Scales each feature by a learned factor: (batch, features) -> (batch, features)."""

    kind: Literal["toy"] = Field(description="Layer kind: a learned scale per feature.")
    start: float = Field(default=1.0, description="Initial value of every scale factor.")

    def output_shape(self, x):
        if len(x) != 2:
            raise ShapeError(f"expected (batch, features), got {len(x) - 1}-D samples")
        return x

    def param_count(self, x):
        return int(x[1])


class Toy(Layer):
    """Parameter ``weight`` of shape (features,)."""

    def __init__(self, spec, name, in_shape, rng, dtype):
        self.name = name
        weight = spec.start + 0.1 * rng.normal(size=int(in_shape[1]))
        self.params = {"weight": weight.astype(dtype)}
        self.grads = {"weight": np.zeros_like(self.params["weight"])}

    def forward(self, x, training=False):
        if training:
            self._x = x
        return x * self.params["weight"]

    def backward(self, dy, *, wrt_preactivation=False, input_grad=True):
        if self.trainable:
            np.sum(dy * self._x, axis=0, out=self.grads["weight"])
        return dy * self.params["weight"] if input_grad else None


def lower_toy(layer, g, x):
    weight = g.initializer(f"{layer.name}.weight", layer.params["weight"])
    return g.node("Mul", [x, weight], name=f"{layer.name}/Mul")


LAYERS.register(
    LayerKind(
        ToySpec,
        Toy,
        lower_toy,
        lambda: [(ToySpec(kind="toy"), (None, 4)), (ToySpec(kind="toy", start=-0.5), (None, 3))],
        docs=(DocCase("{kind: toy, name: x, start: 2.0}", "`toy`", "One Mul by the factors."),),
        input_axes={"weight": (0,)},
    )
)
'''

# The generic tests that a registered kind gets without asking, by file (under tests/).
GENERIC = {
    "layers/test_gradients.py": ["test_every_registered_kind_gradient"],
    "onnxio/test_parity.py": ["test_every_registered_kind_parity"],
    "spec/test_schema_docs.py": [
        "test_every_registered_kind_is_in_the_schema",
        "test_every_registered_kind_has_its_rows_in_onnx_md",
    ],
    "docs/test_docs.py": ["test_every_registered_kind_has_a_section_in_spec_md"],
    "layers/test_layer_registry.py": [
        "test_record_names_its_kind_examples_and_doc_cases",
        "test_input_axes_cover_every_array_the_layer_keeps",
        "test_takes_images_exactly_when_flat_input_is_refused",
        "test_memory_estimate_covers_what_training_keeps",
    ],
}


def run_pytest(root: Path, args: list[str], pythonpath: list[Path]) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(str(p) for p in pythonpath)}
    env.pop("PYTEST_XDIST_WORKER", None)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rA", *args],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_a_toy_kind_registered_in_one_call_is_tested_and_documented(tmp_path):
    (tmp_path / "nnspec_toy_kind.py").write_text(TOY_MODULE, encoding="utf-8")
    files = [f"tests/{name}" for name in GENERIC]
    done = run_pytest(
        ROOT,
        ["-p", "nnspec_toy_kind", *files, "-k", "toy"],
        [tmp_path, ROOT, ROOT / "runtime"],
    )
    report = done.stdout + done.stderr
    assert done.returncode == 0, report
    passed = set(re.findall(r"^PASSED (\S+)$", done.stdout, re.M))
    want = {f"tests/{name}::{test}[toy]" for name, tests in GENERIC.items() for test in tests}
    assert passed == want, report
    assert f"{len(want)} passed" in done.stdout, report


def test_a_second_registration_of_a_kind_is_refused(tmp_path):
    """Two plugins that define the same kind: the second fails at import, naming both."""
    (tmp_path / "nnspec_toy_kind.py").write_text(TOY_MODULE, encoding="utf-8")
    (tmp_path / "nnspec_toy_again.py").write_text(
        TOY_MODULE.replace("A toy layer kind", "The same toy kind"), encoding="utf-8"
    )
    code = "import nnspec_toy_kind, nnspec_toy_again"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(map(str, [tmp_path, ROOT]))}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == (
        "ValueError: layer kind 'toy' is already registered (spec nnspec_toy_kind.ToySpec); "
        "expected a new kind name for nnspec_toy_again.ToySpec"
    )


def without_lrn(root: Path) -> None:
    """A copy of the project at ``root`` with the lrn kind taken out as a maintainer would:
    its module, its registry line and its own tests deleted, the generated files regenerated,
    and the example spec that uses it (AlexNet) left out."""
    for name in ("nnspec", "tests", "docs"):
        shutil.copytree(ROOT / name, root / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", root)
    (root / "specs").mkdir()
    for spec in (ROOT / "specs").glob("*.yaml"):
        if "kind: lrn" not in spec.read_text(encoding="utf-8"):
            shutil.copy(spec, root / "specs")
    (root / "nnspec" / "layers" / "lrn.py").unlink()
    (root / "tests" / "layers" / "test_layer_lrn.py").unlink()
    registry = root / "nnspec" / "layers" / "__init__.py"
    text = registry.read_text(encoding="utf-8")
    assert text.count('    "lrn",\n') == 1
    registry.write_text(text.replace('    "lrn",\n', ""), encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(map(str, [root, ROOT / "runtime"]))}
    for module, target in (
        ("nnspec._docgen.spec_md", "docs/spec.md"),
        ("nnspec._docgen.onnx_md", "docs/onnx.md"),
        ("nnspec schema", "nnspec/schema.json"),
    ):
        done = subprocess.run(
            [sys.executable, "-m", *module.split()],
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr
        (root / target).write_text(done.stdout, encoding="utf-8")


def test_deleting_a_kind_leaves_a_package_whose_other_tests_pass(tmp_path):
    root = tmp_path / "project"
    without_lrn(root)
    for generated in ("docs/spec.md", "docs/onnx.md", "nnspec/schema.json"):
        text = (root / generated).read_text(encoding="utf-8")
        assert "lrn" not in text and "dense" in text, generated
    files = [
        "tests/layers/test_layer_registry.py",
        "tests/layers/test_gradients.py",
        "tests/onnxio/test_parity.py",
        "tests/spec/test_spec.py",
        "tests/spec/test_schema_docs.py",
        "tests/docs/test_docs.py",
        "tests/layers/test_layers_conv.py",
        "tests/layers/test_layer_flatten.py",
        "tests/layers/test_layer_dropout.py",
        "tests/layers/test_layer_batchnorm.py",
        "tests/spec/test_memory.py",
        "tests/spec/test_malformed_specs.py",
    ]
    done = run_pytest(root, [*files, "-m", "not slow"], [root, ROOT / "runtime"])
    report = done.stdout + done.stderr
    assert done.returncode == 0, report
    counts = dict((k, int(n)) for n, k in re.findall(r"(\d+) (passed|failed|error)", report))
    assert counts.get("passed", 0) > 300 and "failed" not in counts, report
    assert "[lrn]" not in report  # the generic tests no longer know it
