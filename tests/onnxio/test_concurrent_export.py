"""Two processes exporting external-data models to one path: the lock beside the target keeps
their files from interleaving, so the model that is left always reads its own weights. The
first writer stops between its data file's rename and its model's, and the second writes in
that window (``NO_LOCK=1`` in the environment turns the lock off in the writers: the test then
fails, with a model whose metadata names one run and whose weights are the other's)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import onnx
from onnx import numpy_helper

import nnspec

WRITER = textwrap.dedent(
    """
    import importlib, os, sys, time
    from pathlib import Path
    import nnspec
    from nnspec import atomic

    seed, path = int(sys.argv[1]), Path(sys.argv[2])
    marker = path.with_name("first-has-renamed-its-data")
    if os.environ.get("NO_LOCK"):  # to see the test fail without the lock
        import contextlib
        atomic.export_lock = lambda p: contextlib.nullcontext()
    importlib.import_module("nnspec.onnxio.lower").MAX_PROTOBUF = 10_000  # external data
    real = os.replace

    def slow_replace(a, b):
        # The first writer stops for 3 s between its data file's rename and its model's, and
        # says so: the second writer then exports in that window. Unlocked, the first one's
        # model would then read the second one's weights.
        real(a, b)
        if seed == 1 and str(b).endswith(".onnx.data"):
            marker.touch()
            time.sleep(3)

    os.replace = slow_replace
    spec = nnspec.load_spec(SPEC.replace("name: w", f"name: w{seed}"))
    network = nnspec.build_network(spec, seed=seed)
    if seed == 2:
        deadline = time.time() + 120
        while not marker.exists() and time.time() < deadline:
            time.sleep(0.01)
    nnspec.export(network, path)
    """
)
SPEC = (
    "spec_version: 1\nname: w\ntask: classification\ninput: {features: 4}\n"
    "classes: [a, b, c]\nlayers:\n  - {kind: dense, units: 8, activation: tanh}\n"
    "  - {kind: dense, units: 3, activation: softmax}\nloss: cross_entropy\n"
)


def _weights_match_metadata(path) -> bool:
    model = onnx.load(str(path))  # with its external data
    name = {p.key: p.value for p in model.metadata_props}["nnspec_spec_name"]
    seed = int(name[1:])
    network = nnspec.build_network(
        nnspec.load_spec(SPEC.replace("name: w", f"name: {name}")), seed=seed
    )
    saved = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    return all(
        np.array_equal(saved[f"{layer.name}.{k}"], a.astype(np.float32))
        for layer in network.layers
        for k, a in layer.params.items()
    )


def test_two_exports_to_one_path_never_leave_a_torn_model(tmp_path):
    target = tmp_path / "m.onnx"
    script = "SPEC = " + repr(SPEC) + "\n" + WRITER
    writers = [
        subprocess.Popen([sys.executable, "-c", script, str(seed), str(target)]) for seed in (1, 2)
    ]
    assert [w.wait(timeout=300) for w in writers] == [0, 0]
    assert (tmp_path / "first-has-renamed-its-data").exists()  # the second wrote in the window
    assert (tmp_path / "m.onnx.data").is_file()
    assert _weights_match_metadata(target), "a torn model: one run's metadata, the other's weights"
    name = {p.key: p.value for p in onnx.load(str(target)).metadata_props}["nnspec_spec_name"]
    assert name == "w2"  # the second waited for the lock, then wrote its whole pair
    assert not (tmp_path / ".m.onnx.lock").exists()
