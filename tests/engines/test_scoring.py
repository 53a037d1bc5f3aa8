"""Partitioned scoring: ``nnspec predict`` over many Parquet/CSV files, in this process and on
a real Dask ``LocalCluster`` of worker processes, against single-process ``nnspec predict``
(labels identical, probabilities within 1e-6); resume, a killed worker, bad files."""

from __future__ import annotations

import csv
import io
import os
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT

from nnspec.cli import main

pd = pytest.importorskip("pandas", reason="the dask extra (pandas) is not installed")
pq = pytest.importorskip("pyarrow.parquet", reason="the dask extra (pyarrow) is not installed")
distributed = pytest.importorskip("distributed", reason="the dask extra is not installed")

IRIS = ROOT / "nnspec" / "data" / "datasets" / "iris.csv"


def run(capfd, *args):
    code = main([str(a) for a in args])
    out, err = capfd.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def iris_model(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("model") / "iris.onnx"
    assert main(["train", str(ROOT / "specs" / "iris.yaml"), "-o", str(path), "-q"]) == 0
    return path


@pytest.fixture(scope="module")
def wide_model(tmp_path_factory) -> Path:
    """An untrained 64-2000-2000-3 network: a few thousand rows take a noticeable time, so a
    worker can be killed while it scores."""
    d = tmp_path_factory.mktemp("wide")
    spec = d / "wide.yaml"
    spec.write_text(
        "spec_version: 1\nname: wide\ntask: classification\ninput: {features: 64}\n"
        "classes: [a, b, c]\nlayers:\n  - {kind: dense, units: 2000, activation: tanh}\n"
        "  - {kind: dense, units: 2000, activation: tanh}\n"
        "  - {kind: dense, units: 3, activation: softmax}\nloss: cross_entropy\n"
    )
    assert main(["compile", str(spec), "-o", str(d / "wide.onnx")]) == 0
    return d / "wide.onnx"


def iris_frame() -> pd.DataFrame:
    df = pd.read_csv(IRIS)
    df.insert(0, "id", np.arange(1000, 1000 + len(df)))
    return df


def write_parts(directory: Path, frame: pd.DataFrame, n: int, fmt: str) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, part in enumerate(np.array_split(np.arange(len(frame)), n)):
        p = directory / f"part-{i:02d}.{fmt}"
        chunk = frame.iloc[part]
        chunk.to_parquet(p, index=False) if fmt == "parquet" else chunk.to_csv(p, index=False)
        paths.append(p)
    return paths


def single_process(capfd, model: Path, frame: pd.DataFrame, tmp: Path) -> pd.DataFrame:
    """Today's single-process ``nnspec predict`` on the same rows, as CSV."""
    src = tmp / "all.csv"
    frame.to_csv(src, index=False)
    code, out, err = run(capfd, "predict", model, src)
    assert code == 0, err
    return pd.read_csv(io.StringIO(out))


def read_outputs(paths: list[Path]) -> pd.DataFrame:
    frames = [pd.read_parquet(p) if p.suffix == ".parquet" else pd.read_csv(p) for p in paths]
    return pd.concat(frames, ignore_index=True)


def assert_same_predictions(got: pd.DataFrame, want: pd.DataFrame) -> None:
    assert list(got["label"]) == list(want["label"])
    probs = [c for c in want.columns if c.startswith("p_")]
    np.testing.assert_allclose(got[probs].to_numpy(), want[probs].to_numpy(), rtol=0, atol=1e-6)


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_local_engine_equals_single_process_predict(capfd, tmp_path, iris_model, fmt):
    frame = iris_frame()
    inputs = write_parts(tmp_path / "in", frame, 4, fmt)
    code, _, err = run(
        capfd,
        "predict",
        iris_model,
        str(tmp_path / "in" / f"*.{fmt}"),
        "-o",
        tmp_path / "out",
        "--keep",
        "id",
    )
    assert code == 0, err
    assert "wrote 4 of 4 partitions (150 rows)" in err
    outputs = [tmp_path / "out" / p.name for p in inputs]
    got = read_outputs(outputs)
    assert list(got.columns[:2]) == ["id", "label"]
    assert list(got["id"]) == list(frame["id"])  # rows in input order, keys passed through
    assert_same_predictions(got, single_process(capfd, iris_model, frame, tmp_path))
    if fmt == "parquet":
        schema = pq.read_schema(outputs[0])
        assert str(schema.field("p_setosa").type) == "float"  # float32, as onnxruntime gave


def test_dask_engine_on_a_local_cluster_equals_the_local_engine(capfd, tmp_path, iris_model):
    frame = iris_frame()
    inputs = write_parts(tmp_path / "in", frame, 5, "parquet")
    args = ["predict", iris_model, tmp_path / "in", "--keep", "id", "--keep", "species"]
    code, _, err = run(capfd, *args, "-o", tmp_path / "local")
    assert code == 0, err
    code, _, err = run(capfd, *args, "-o", tmp_path / "dask", "--engine", "dask", "--workers", 2)
    assert code == 0, err
    assert "wrote 5 of 5 partitions (150 rows)" in err and "2 workers" in err
    for p in inputs:
        a, b = (
            pd.read_parquet(tmp_path / "local" / p.name),
            pd.read_parquet(tmp_path / "dask" / p.name),
        )
        pd.testing.assert_frame_equal(a, b)  # bit for bit: the same sessions, the same rows
    assert_same_predictions(
        read_outputs([tmp_path / "dask" / p.name for p in inputs]),
        single_process(capfd, iris_model, frame, tmp_path),
    )
    # A bad file on a worker is the command's located error, not a worker's traceback.
    bad = frame.iloc[:10].copy()
    bad.loc[3, "sepal_width"] = None
    bad.to_parquet(tmp_path / "in" / "part-09.parquet", index=False)
    code, out, err = run(capfd, *args, "-o", tmp_path / "bad", "--engine", "dask", "--workers", 2)
    assert code == 2 and "Traceback" not in out + err
    assert "part-09.parquet: row 3, column 'sepal_width': expected a number" in err


@pytest.fixture(scope="module")
def cluster():
    """A real cluster of 2 single-threaded worker processes (what --workers 2 starts)."""
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as c,
        distributed.Client(c) as client,
    ):
        yield client


def test_one_session_per_worker_process_with_capped_threads(tmp_path, iris_model, cluster):
    from nnspec.engines import scoring
    from nnspec_runtime.dask import cluster_threads, session_counts

    inputs = write_parts(tmp_path / "in", iris_frame(), 8, "parquet")
    parts = scoring.plan_partitions(inputs, tmp_path / "out")
    (tmp_path / "out").mkdir()
    summary = scoring.score_partitions(parts, iris_model, [], engine="dask", client=cluster)
    assert summary["rows"] == 150
    pids = {r["pid"] for r in summary["results"]}
    assert pids <= set(cluster.run(os.getpid).values())
    counts = cluster.run(session_counts)  # {worker: {model path: sessions made}}
    made = [c.get(str(iris_model.resolve()), 0) for c in counts.values()]
    assert sum(made) == len(pids) and max(made) == 1  # 8 partitions, one session per process
    cores = os.cpu_count()
    assert all(t * 2 <= max(cores, 2) for t in cluster_threads(cluster).values())


def test_resume_skips_complete_outputs_and_redoes_the_rest(capfd, tmp_path, iris_model):
    inputs = write_parts(tmp_path / "in", iris_frame(), 4, "parquet")
    out = tmp_path / "out"
    args = ["predict", iris_model, str(tmp_path / "in" / "*.parquet"), "-o", out]
    assert run(capfd, *args)[0] == 0
    before = {p.name: (out / p.name).stat().st_mtime_ns for p in inputs}
    (out / inputs[1].name).unlink()  # a run killed before this partition was written
    (out / f".{inputs[2].name}.x1.tmp").write_bytes(b"PAR1 half")  # and one killed mid-write
    os.truncate(out / inputs[3].name, 20)  # a damaged output (not one nnspec writes)
    code, _, err = run(capfd, *args, "--resume")
    assert code == 0, err
    assert "wrote 2 of 4 partitions" in err and "2 already complete" in err
    assert (out / inputs[0].name).stat().st_mtime_ns == before[inputs[0].name]
    assert not list(out.glob(".*.tmp"))
    want = pd.read_parquet(out / inputs[0].name)
    assert len(read_outputs([out / p.name for p in inputs])) == 150 and len(want) == 38
    # Another model's outputs are not taken as this one's.
    other = tmp_path / "other.onnx"
    other.write_bytes(iris_model.read_bytes() + b"")
    assert main(["train", str(ROOT / "specs" / "iris2d.yaml"), "-o", str(other), "-q"]) == 0
    code, _, err = run(capfd, "predict", other, *args[2:], "--resume")
    assert code == 2 and "written by another run" in err


def test_a_killed_worker_is_survived(tmp_path, wide_model, cluster):
    """SIGKILL one worker process while it scores: Dask retries its partitions elsewhere, and
    the outputs are complete and equal to single-process scoring."""
    from nnspec.engines import scoring
    from nnspec_runtime import Model

    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(8 * 1000, 64)).astype(np.float32))
    frame.columns = [f"x{i}" for i in range(64)]
    frame.insert(0, "id", np.arange(len(frame)))
    inputs = write_parts(tmp_path / "in", frame, 8, "parquet")
    (tmp_path / "out").mkdir()
    parts = scoring.plan_partitions(inputs, tmp_path / "out")
    box = {}

    def score():
        try:
            box["summary"] = scoring.score_partitions(
                parts, wide_model, ["id"], engine="dask", client=cluster
            )
        except BaseException as e:  # noqa: BLE001 - reported by the assertion below
            box["error"] = e

    pids = cluster.run(os.getpid)
    worker = threading.Thread(target=score)
    worker.start()
    deadline = time.monotonic() + 60
    killed = None
    while killed is None and time.monotonic() < deadline and worker.is_alive():
        busy = [a for a, keys in cluster.processing().items() if keys and a in pids]
        if busy and any(p.output.exists() for p in parts):  # mid-run: some done, some running
            killed = pids[busy[0]]
            os.kill(killed, signal.SIGKILL)
        time.sleep(0.02)
    worker.join(120)
    assert killed is not None, "the run ended before a worker could be killed"
    assert "error" not in box, box.get("error")
    assert killed not in cluster.run(os.getpid).values()  # the nanny started a new one
    model = Model(wide_model, device="cpu")
    pred = model.predict(frame[[f"x{i}" for i in range(64)]].to_numpy())
    got = read_outputs([p.output for p in parts])
    assert list(got["id"]) == list(frame["id"])
    assert list(got["label"]) == list(pred.labels)
    np.testing.assert_allclose(got[["p_a", "p_b", "p_c"]], pred.probabilities, atol=1e-6, rtol=0)
    assert not list((tmp_path / "out").glob(".*.tmp"))


def test_runtime_predict_maps_a_dask_dataframe(tmp_path, iris_model, cluster):
    import dask.dataframe as dd

    from nnspec_runtime import Model
    from nnspec_runtime.dask import predict

    frame = iris_frame()
    ddf = dd.from_pandas(frame, npartitions=3)
    result = predict(ddf, iris_model, keep=["id"])
    assert list(result.columns) == ["id", "label", "p_setosa", "p_versicolor", "p_virginica"]
    got = result.compute()
    want = Model(iris_model, device="cpu").predict(frame.iloc[:, 1:5].to_numpy())
    assert list(got["id"]) == list(frame["id"]) and list(got.index) == list(frame.index)
    assert list(got["label"]) == list(want.labels)
    np.testing.assert_allclose(got.iloc[:, 2:].to_numpy(), want.probabilities, atol=1e-6)


def test_bad_files_are_located_errors(capfd, tmp_path, iris_model):
    frame = iris_frame()
    d = tmp_path / "in"
    write_parts(d, frame, 2, "parquet")
    bad = frame.copy()
    bad.loc[7, "petal_width"] = np.nan
    bad.to_parquet(d / "part-02.parquet", index=False)
    code, _, err = run(capfd, "predict", iris_model, d, "-o", tmp_path / "out")
    assert code == 2 and "Traceback" not in err
    assert f"{d / 'part-02.parquet'}: row 7, column 'petal_width': expected a number" in err
    (d / "part-02.parquet").write_bytes(b"PAR1 not really")
    code, _, err = run(capfd, "predict", iris_model, d, "-o", tmp_path / "out")
    assert code == 2 and "part-02.parquet: not a readable parquet file" in err
    frame.drop(columns="sepal_width").to_parquet(d / "part-02.parquet", index=False)
    code, _, err = run(capfd, "predict", iris_model, d, "-o", tmp_path / "out")
    assert code == 2 and "column(s) sepal_width not found" in err
    c = tmp_path / "csv"
    write_parts(c, frame, 1, "csv")
    text = (c / "part-00.csv").read_text().splitlines()
    text[5] = text[5].replace(text[5].split(",")[2], "abc", 1)
    (c / "part-00.csv").write_text("\n".join(text) + "\n")
    code, _, err = run(
        capfd, "predict", iris_model, c, "-o", tmp_path / "out2", "--engine", "local"
    )
    assert code == 2 and "part-00.csv: line 6, column 'sepal_width'" in err and "'abc'" in err
    code, _, err = run(
        capfd, "predict", iris_model, str(tmp_path / "none" / "*.parquet"), "-o", "x"
    )
    assert code == 2 and "no input files found" in err


def test_engine_dask_without_dask_says_how_to_install(capfd, tmp_path, iris_model, monkeypatch):
    import builtins

    real = builtins.__import__

    def no_distributed(name, *args, **kwargs):
        if name == "distributed" or name.startswith("distributed."):
            raise ImportError(f"No module named {name!r}", name=name)
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_distributed)
    write_parts(tmp_path / "in", iris_frame(), 1, "parquet")
    code, _, err = run(
        capfd, "predict", iris_model, tmp_path / "in", "-o", tmp_path / "o", "--engine", "dask"
    )
    assert code == 2
    assert 'pip install "nnspec[dask]"' in err and "distributed is missing" in err


def test_csv_outputs_read_as_single_process_writes_them(capfd, tmp_path, iris_model):
    frame = iris_frame().drop(columns="id")
    write_parts(tmp_path / "in", frame, 1, "csv")
    assert run(capfd, "predict", iris_model, tmp_path / "in", "-o", tmp_path / "out")[0] == 0
    src = tmp_path / "in" / "part-00.csv"
    code, single, _ = run(capfd, "predict", iris_model, src)
    rows = list(csv.reader(io.StringIO((tmp_path / "out" / "part-00.csv").read_text())))
    assert rows == list(csv.reader(io.StringIO(single)))  # the same text, cell for cell


def test_a_nan_in_a_parquet_file_is_located(capfd, tmp_path, iris_model):
    import pyarrow as pa

    frame = iris_frame()
    cols = {c: pa.array(frame[c].to_numpy()) for c in frame.columns}
    x = frame["sepal_length"].to_numpy(np.float32).copy()
    x[11] = np.inf
    cols["sepal_length"] = pa.array(x)  # float32, a real inf (not a null)
    (tmp_path / "in").mkdir()
    pq.write_table(pa.table(cols), tmp_path / "in" / "a.parquet")
    code, _, err = run(
        capfd, "predict", iris_model, tmp_path / "in" / "a.parquet", "-o", tmp_path / "o"
    )
    assert code == 2
    assert "a.parquet: row 11, column 'sepal_length': expected a finite number" in err


def test_session_threads_are_capped_as_asked(iris_model):
    from nnspec_runtime import Model
    from nnspec_runtime.dask.sessions import threads_per_worker as share

    model = Model(iris_model, device="cpu", intra_op_threads=1)
    assert model.session.get_session_options().intra_op_num_threads == 1
    assert [share(8, 3), share(2, 2), share(2, 4), share(16, 1)] == [2, 1, 1, 16]
    with pytest.raises(ValueError, match="intra_op_threads must be a positive integer"):
        Model(iris_model, intra_op_threads=0)


def test_a_partition_streams_in_batches_of_bounded_bytes(tmp_path, wide_model, monkeypatch):
    """A batch holds about BATCH_BYTES of float32 features, so that a wide row means fewer
    rows a batch (the DBN's 784 columns: 5,349 rows, not 65,536), and the output of a file
    read in many batches equals one prediction of all its rows."""
    from nnspec_runtime import Model
    from nnspec_runtime.dask import partitions

    assert partitions.batch_rows(784) == (1 << 24) // (4 * 784) == 5349
    assert partitions.batch_rows(4) == 65536  # at most MAX_BATCH_ROWS
    assert partitions.batch_rows(100_000) == 1024  # at least MIN_BATCH_ROWS
    monkeypatch.setattr(partitions, "BATCH_BYTES", 1024 * 65 * 4)  # id + 64 features
    model = Model(wide_model, device="cpu")
    sizes = []
    real = type(model).predict
    monkeypatch.setattr(
        type(model), "predict", lambda self, x: sizes.append(len(x)) or real(self, x)
    )
    rng = np.random.default_rng(1)
    frame = pd.DataFrame(rng.normal(size=(2500, 64)).astype(np.float32))
    frame.columns = [f"x{i}" for i in range(64)]
    frame.insert(0, "id", np.arange(len(frame)))
    frame.to_parquet(tmp_path / "in.parquet", index=False)
    out = tmp_path / "out.parquet"
    result = partitions.score_file(tmp_path / "in.parquet", out, wide_model, keep=["id"])
    assert result["rows"] == 2500 and sizes == [1024, 1024, 452]
    got = pd.read_parquet(out)
    pred = real(model, frame.drop(columns="id").to_numpy())
    assert list(got["id"]) == list(range(2500))
    assert list(got["label"]) == list(pred.labels)
    np.testing.assert_allclose(got[["p_a", "p_b", "p_c"]], pred.probabilities, atol=1e-6, rtol=0)
