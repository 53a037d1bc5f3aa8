"""nnspec playground's endpoints, in process (Starlette's TestClient): validation with the
CLI's messages, the training stream, the exports, and the Host/Origin refusals."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("starlette")
pytest.importorskip("httpx")

from starlette.testclient import TestClient  # noqa: E402

import nnspec  # noqa: E402
from nnspec import pipeline  # noqa: E402
from nnspec.cli.commands import main  # noqa: E402
from nnspec.playground.app import Playground, create_app  # noqa: E402
from nnspec.playground.datasets import DataChoice, load_choice  # noqa: E402
from nnspec.playground.templates import TEMPLATES  # noqa: E402

PORT = 8799
BASE = f"http://127.0.0.1:{PORT}"
XOR = {"name": "xor", "noise": 0.0, "seed": 0, "test_fraction": 0.5}
TWO_HIDDEN = TEMPLATES["xor"]


@pytest.fixture
def client(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    playground = Playground(tmp_path, None, TWO_HIDDEN)
    with TestClient(create_app(playground, PORT), base_url=BASE) as c:
        c.playground = playground
        yield c
    playground.close_all()


def _session(client) -> str:
    return client.post("/api/session", json={}).json()["session"]


def _events(client, sid: str) -> list[dict]:
    """The stream of one run, to its end (``once=1``)."""
    with client.stream("GET", f"/api/events?session={sid}&once=1") as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        text = "".join(r.iter_text())
    return [
        json.loads(block.split("data: ", 1)[1])
        for block in text.split("\n\n")
        if block.startswith("event: update")
    ]


def _train(client, spec=TWO_HIDDEN, data=XOR, speed=0) -> tuple[str, list[dict]]:
    sid = _session(client)
    r = client.post("/api/train", json={"session": sid, "spec": spec, "data": data, "speed": speed})
    assert r.status_code == 200 and r.json()["ok"], r.json()
    return sid, _events(client, sid)


# -- validation ---------------------------------------------------------------------------


def test_a_misspelt_key_is_the_cli_message_at_its_line(client, tmp_path, capsys):
    text = TWO_HIDDEN.replace("batch_size: 10", "batch_sise: 10")
    r = client.post("/api/validate", json={"spec": text, "data": XOR})
    out = r.json()
    assert r.status_code == 200 and out["ok"] is False
    [issue] = out["issues"]
    line = text.splitlines().index("  batch_sise: 10") + 1
    assert (issue["line"], issue["col"]) == (line, 3)
    assert "did you mean 'batch_size'" in issue["message"]
    # The very line nnspec validate prints for the same file.
    (tmp_path / "playground.yaml").write_text(text)
    assert main(["validate", "playground.yaml"]) == 2
    assert capsys.readouterr().err.strip() == issue["text"]


def test_a_valid_spec_gets_the_layer_table(client):
    out = client.post("/api/validate", json={"spec": TWO_HIDDEN, "data": XOR}).json()
    assert out["ok"] and out["issues"] == []
    table = out["table"]
    assert table["input"] == [None, 2]
    assert [(la["output_shape"], la["params"]) for la in table["layers"]] == [
        ([None, 8], 24),
        ([None, 8], 72),
        ([None, 2], 18),
    ]
    assert table["total_params"] == 114


def test_shape_task_and_data_errors_are_located(client):
    iris = TEMPLATES["iris"]
    out = client.post("/api/validate", json={"spec": iris, "data": XOR}).json()
    [issue] = out["issues"]
    assert issue["line"] == 8 and "has 3 units, but the data has 2 classes" in issue["text"]
    out = client.post("/api/validate", json={"spec": TWO_HIDDEN, "data": {"name": "mcycle"}})
    [issue] = out.json()["issues"]
    assert issue["line"] == 5 and "expected task: regression, got classification" in issue["text"]
    # The spec's own data section gives way to the panel's, line numbers unchanged.
    own = TWO_HIDDEN.replace("preprocess:", "data: {builtin: iris}\npreprocess:")
    out = client.post("/api/validate", json={"spec": own, "data": XOR}).json()
    assert out["ok"] and "commented out" in out["notes"][0]


def test_limits_are_refused(client, tmp_path):
    big = TWO_HIDDEN + "#" * 1_000_001 + "\n"
    r = client.post("/api/validate", json={"spec": big, "data": XOR})
    assert r.status_code == 200 and "at most 1 MB" in r.json()["issues"][0]["text"]
    r = client.post("/api/validate", json={"spec": "x" * 2_100_000, "data": XOR})
    assert r.status_code == 413
    endless = TWO_HIDDEN.replace("epochs: 300", "epochs: 1000000")
    [issue] = client.post("/api/validate", json={"spec": endless, "data": XOR}).json()["issues"]
    assert "at most 100,000 epochs" in issue["text"]
    wide = TWO_HIDDEN.replace(
        "units: 8, activation: tanh}\n  - {kind: dense, units: 8",
        "units: 5000, activation: tanh}\n  - {kind: dense, units: 8",
        1,
    )
    [issue] = client.post("/api/validate", json={"spec": wide, "data": XOR}).json()["issues"]
    assert issue["line"] == 8 and "5,000 outputs; the playground draws every unit" in issue["text"]
    tabular = TWO_HIDDEN.replace("{standardize: true}", "{standardize: true, categorical: [x1]}")
    [issue] = client.post("/api/validate", json={"spec": tabular, "data": XOR}).json()["issues"]
    assert issue["line"] == 6 and "preprocess.categorical is for tables" in issue["text"]
    outside = TWO_HIDDEN + "init: {from: ../elsewhere.onnx}\n"
    [issue] = client.post("/api/validate", json={"spec": outside, "data": XOR}).json()["issues"]
    assert "outside the folder the playground serves" in issue["text"]
    for bad in ({"name": "mnist"}, {"name": "xor", "noise": 0.9}, {"name": "xor", "seed": -1}):
        r = client.post("/api/validate", json={"spec": TWO_HIDDEN, "data": bad})
        assert r.status_code == 400, bad


# -- Host and Origin ----------------------------------------------------------------------


def test_other_hosts_and_origins_are_refused(client):
    assert client.get("/api/config").status_code == 200
    r = client.get("/api/config", headers={"Host": "attacker.example:8799"})
    assert r.status_code == 403 and "is not this server" in r.text
    r = client.get("/", headers={"Host": f"127.0.0.1:{PORT + 1}"})
    assert r.status_code == 403
    r = client.post("/api/session", json={}, headers={"Origin": "http://attacker.example"})
    assert r.status_code == 403 and "Origin" in r.text
    r = client.post("/api/session", json={}, headers={"Origin": f"http://localhost:{PORT}"})
    assert r.status_code == 200
    # A cross-site form can post text/plain without asking; this server wants JSON.
    r = client.post("/api/session", content=b"{}", headers={"Content-Type": "text/plain"})
    assert r.status_code == 403
    assert client.get("/static/../app.py").status_code == 404


# -- training and the stream --------------------------------------------------------------


def test_training_streams_frames_and_learns_xor(client):
    sid, events = _train(client)
    assert events[0]["start"]["kind"] == "regions" and events[0]["start"]["epochs"] == 300
    assert events[-1]["state"] == "done"
    frames = [e["frame"] for e in events if e["frame"]]
    assert frames[-1]["epoch"] == 300
    assert frames[-1]["metrics"]["test"]["accuracy"] > 0.9
    # The region picture moves as it learns: the untrained one is not the trained one.
    first = np.frombuffer(base64.b64decode(frames[0]["regions"]), np.uint8)
    last = np.frombuffer(base64.b64decode(frames[-1]["regions"]), np.uint8)
    assert first.size == last.size == 64 * 64 * 3
    assert np.abs(first.astype(int) - last.astype(int)).mean() > 5
    maps = frames[-1]["maps"]
    assert [(m["layer"], len(m["units"])) for m in maps] == [("dense_0", 8), ("dense_1", 8)]
    points = [p for e in events for p in e["points"]]
    assert points[0]["epoch"] == 0 and points[-1]["epoch"] == 300
    assert client.playground.sessions[sid].updates_per_second() > 0


def test_regression_streams_the_fit_and_unit_shares(client):
    spec = TEMPLATES["mcycle"].replace("epochs: 2000", "epochs: 50")
    _, events = _train(client, spec, {"name": "mcycle", "test_fraction": 0.2})
    start, frame = events[0]["start"], events[-1]["frame"]
    assert start["kind"] == "fit" and start["features"] == ["times"]
    assert len(frame["curve"]) == 200 and len(frame["units"]) == 10
    # The shares add up to the curve, less the output's constant: as nnspec plot fit draws.
    shares = np.array(frame["units"]).sum(axis=0)
    offset = np.array(frame["curve"]) - shares
    assert np.ptp(offset) < 1e-2 * np.ptp(frame["curve"])
    assert "r2" in frame["metrics"]["test"]


def test_pause_resume_and_stop(client):
    sid = _session(client)
    body = {
        "session": sid,
        "spec": TWO_HIDDEN.replace("epochs: 300", "epochs: 5000"),
        "data": XOR,
        "speed": 20,
    }
    assert client.post("/api/train", json=body).json()["ok"]
    session = client.playground.sessions[sid]
    assert client.post("/api/pause", json={"session": sid}).json()["state"] == "paused"
    time.sleep(0.2)  # the step under way when the pause came ends
    seq = session.snap.seq
    time.sleep(0.3)
    assert session.snap.seq == seq and session.snap.state == "paused"  # nothing moves
    assert client.post("/api/train", json=body).json()["ok"]  # the same spec: goes on
    assert session.snap.state == "running" and session.snap.run == 1
    r = client.post("/api/stop", json={"session": sid})
    assert r.json()["state"] == "stopped" and not session.alive


def test_the_page_going_away_stops_its_training(client):
    sid = _session(client)
    body = {"session": sid, "spec": TWO_HIDDEN.replace("epochs: 300", "epochs: 50000"), "data": XOR}
    assert client.post("/api/train", json=body).json()["ok"]
    session = client.playground.sessions[sid]
    assert session.alive
    assert client.post("/api/leave", json={"session": sid}).json()["closed"]
    assert not session.alive and sid not in client.playground.sessions
    assert client.post("/api/pause", json={"session": sid}).status_code == 410


# -- exports ------------------------------------------------------------------------------


def test_export_onnx_runs_in_onnxruntime(client):
    import onnx
    import onnxruntime as ort

    sid, _ = _train(client)
    r = client.post("/api/export/model", json={"session": sid})
    assert r.status_code == 200
    assert r.headers["content-disposition"] == 'attachment; filename="playground.onnx"'
    model = onnx.load_from_string(r.content)
    meta = {p.key: p.value for p in model.metadata_props}
    parity = json.loads(meta["nnspec_parity"])
    assert json.loads(r.headers["x-nnspec-parity"]) == parity
    assert parity["inputs"] == "test" and parity["max_abs_err"] < 1e-5
    session = client.playground.sessions[sid]
    _, network, splits, _ = session.export_parts()
    x = splits.test.x.astype(np.float32)
    got = ort.InferenceSession(r.content).run(None, {model.graph.input[0].name: x})
    np.testing.assert_allclose(got[0], network.predict(x)["probabilities"], rtol=1e-4, atol=1e-5)
    assert (got[1] == splits.test.y).mean() > 0.9


NOISY_LAYERS = TWO_HIDDEN.replace(
    "  - {kind: dense, units: 8, activation: tanh}\n  - {kind: dense, units: 8, activation: tanh}",
    "  - {kind: dense, units: 8, activation: tanh}\n  - {kind: dropout, rate: 0.2}\n"
    "  - {kind: batchnorm}\n  - {kind: dense, units: 8, activation: tanh}",
).replace("epochs: 300", "epochs: 600")


@pytest.mark.parametrize("spec", [TWO_HIDDEN, NOISY_LAYERS], ids=["dense", "dropout-batchnorm"])
def test_downloads_retrain_on_the_command_line_to_the_same_weights(client, tmp_path, spec):
    """The spec and data the page downloads give nnspec train the very same network: the
    frames painted meanwhile (metrics, pictures) draw no dropout mask and move no running
    statistic."""
    import onnx
    from onnx import numpy_helper

    assert "dropout" in NOISY_LAYERS
    data = {**XOR, "noise": 0.2, "seed": 3}
    sid, events = _train(client, spec, data=data)
    assert len(events) > 5
    played = onnx.load_from_string(client.post("/api/export/model", json={"session": sid}).content)
    spec = client.post("/api/export/spec", json={"spec": spec, "data": data})
    csv = client.post("/api/export/data", json={"data": data})
    name = csv.headers["content-disposition"].split('filename="')[1].rstrip('"')
    assert name == "playground-xor-noise0.2-seed3.csv"
    (tmp_path / "cli").mkdir()
    (tmp_path / "cli" / name).write_bytes(csv.content)
    (tmp_path / "cli" / "spec.yaml").write_bytes(spec.content)
    assert (
        main(["train", str(tmp_path / "cli" / "spec.yaml"), "-o", str(tmp_path / "c.onnx"), "-q"])
        == 0
    )
    cli = onnx.load(str(tmp_path / "c.onnx"))
    a = {t.name: numpy_helper.to_array(t) for t in played.graph.initializer}
    b = {t.name: numpy_helper.to_array(t) for t in cli.graph.initializer}
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def test_data_sets_are_deterministic_and_shaped_like_the_playgrounds():
    for name in ("circle", "xor", "gauss", "spiral"):
        a = load_choice(DataChoice(name, 0.1, 5))
        b = load_choice(DataChoice(name, 0.1, 5))
        c = load_choice(DataChoice(name, 0.1, 6))
        assert a.x.shape == (500, 2) and np.array_equal(a.x, b.x) and np.array_equal(a.y, b.y)
        assert not np.array_equal(a.x, c.x)
        assert 200 <= np.bincount(a.y).min() and np.abs(a.x).max() < 8
    clean = load_choice(DataChoice("xor", 0.0, 0))
    assert np.all((clean.x[:, 0] * clean.x[:, 1] < 0) == (clean.y == 1))
    circle = load_choice(DataChoice("circle", 0.0, 0))
    r = np.hypot(*circle.x.T)
    assert np.all((r > 2.5) == (circle.y == 1))


# -- the command --------------------------------------------------------------------------


def test_the_command_refuses_a_spec_outside_the_folder_and_a_taken_port(
    tmp_path, monkeypatch, capsys
):
    import socket

    (tmp_path / "inside").mkdir()
    monkeypatch.chdir(tmp_path / "inside")
    (tmp_path / "outside.yaml").write_text(TWO_HIDDEN)
    assert main(["playground", "../outside.yaml", "--no-browser"]) == 2
    assert "is outside the folder the playground serves" in capsys.readouterr().err
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        assert main(["playground", "--port", str(port), "--no-browser"]) == 2
    assert f"cannot listen on 127.0.0.1:{port}" in capsys.readouterr().err


def test_the_page_and_its_assets_are_served(client):
    page = client.get("/")
    assert page.status_code == 200 and '<textarea id="spec"' in page.text
    for asset in ("app.js", "style.css"):
        assert client.get(f"/static/{asset}").status_code == 200
    config = client.get("/api/config").json()
    assert config["spec"] == TWO_HIDDEN and set(config["templates"]) == set(config["choices"])


@pytest.mark.parametrize("name", ["circle", "xor", "gauss", "spiral", "iris", "mcycle"])
def test_every_starting_spec_validates_on_its_data(client, name):
    out = client.post("/api/validate", json={"spec": TEMPLATES[name], "data": {"name": name}})
    assert out.json()["ok"], out.json()["issues"]


def test_prepare_training_is_what_train_runs():
    spec = nnspec.load_spec(Path(__file__).resolve().parents[2] / "specs" / "iris2d.yaml")
    network, splits, _ = pipeline.prepare_training(spec, pipeline.load_data(spec))
    result = pipeline.train(spec)
    assert np.array_equal(splits.test.x, result.splits.test.x)
    assert np.array_equal(network.x_mean, result.network.x_mean)


def test_an_opened_spec_starts_on_its_own_data(tmp_path, monkeypatch):
    root = Path(__file__).resolve().parents[2]
    monkeypatch.chdir(tmp_path)
    text = (root / "specs" / "iris2d.yaml").read_text()
    (tmp_path / "iris2d.yaml").write_text(text)
    playground = Playground(tmp_path, "iris2d.yaml", text)
    with TestClient(create_app(playground, PORT), base_url=BASE) as c:
        config = c.get("/api/config").json()
        assert config["file"] == "iris2d.yaml" and config["spec"] == text
        data = config["data"]
        assert data == {
            "name": "iris",
            "test_fraction": 0.2,
            "features": ["petal_length", "petal_width"],
        }
        out = c.post("/api/validate", json={"spec": text, "data": data}).json()
        assert out["ok"] and out["table"]["input"] == [None, 2]


def test_without_the_ui_extra_the_command_says_how_to_install_it(monkeypatch, capsys):
    import sys

    monkeypatch.setitem(sys.modules, "uvicorn", None)  # import uvicorn now raises ImportError
    assert main(["playground", "--no-browser"]) == 2
    assert 'install them with: pip install "nnspec[ui]"' in capsys.readouterr().err


def test_the_command_serves_on_127_0_0_1_and_stops_cleanly_on_ctrl_c(tmp_path):
    """``nnspec playground`` as a user runs it: the page over real TCP, a foreign Host
    refused, and Ctrl-C (with a page's event stream open) ends it at once, exit 0."""
    import signal
    import socket
    import subprocess
    import sys

    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "nnspec", "playground", "--port", str(port), "--no-browser"],
        cwd=tmp_path,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                assert httpx.get(f"{base}/api/config", timeout=2).status_code == 200
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline and proc.poll() is None, proc.stderr.read()
                time.sleep(0.2)
        r = httpx.get(f"{base}/", headers={"Host": "rebound.example"}, timeout=5)
        assert r.status_code == 403
        sid = httpx.post(f"{base}/api/session", json={}, timeout=5).json()["session"]
        with httpx.stream("GET", f"{base}/api/events?session={sid}", timeout=10) as stream:
            assert next(stream.iter_lines()) == "retry: 1000"
            proc.send_signal(signal.SIGINT)
            assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    err = proc.stderr.read()
    assert f"nnspec playground: {base}/" in err and "Traceback" not in err
    assert err.rstrip().endswith("nnspec playground: stopped")
