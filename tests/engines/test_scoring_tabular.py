"""Partitioned scoring of a tabular model (raw columns: categories and missing values, encoded
in the graph): Parquet and CSV partitions give single-file ``nnspec predict``'s numbers, a bad
category is named by its file, row and column, and an input that is not a regular file is
refused before anything is read."""

from __future__ import annotations

import io
import os

import numpy as np
import pytest
from tabular_tables import cars_spec, write_cars

import nnspec
from nnspec.cli import main

pd = pytest.importorskip("pandas", reason="the dask extra (pandas) is not installed")
pytest.importorskip("pyarrow.parquet", reason="the dask extra (pyarrow) is not installed")


def run(capfd, *args):
    code = main([str(a) for a in args])
    out, err = capfd.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def cars(tmp_path_factory):
    """(model path, the car table's CSV) of mpg regression on raw columns."""
    tmp = tmp_path_factory.mktemp("cars")
    write_cars(tmp / "cars.csv")
    (tmp / "cars.yaml").write_text(cars_spec(extra="  unknown: error\n", epochs=5))
    nnspec.export(nnspec.train(nnspec.load_spec(tmp / "cars.yaml")), tmp / "cars.onnx")
    return tmp / "cars.onnx", tmp / "cars.csv"


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_tabular_partitions_equal_single_file_predict(capfd, tmp_path, cars, fmt):
    model, table = cars
    frame = pd.read_csv(table)
    assert frame["horsepower"].isna().any()  # missing values, imputed by the graph
    code, out, err = run(capfd, "predict", model, table)
    assert code == 0, err
    want = pd.read_csv(io.StringIO(out))
    (tmp_path / "in").mkdir()
    for i, rows in enumerate(np.array_split(np.arange(len(frame)), 3)):
        part = frame.iloc[rows].assign(id=rows)
        path = tmp_path / "in" / f"part-{i}.{fmt}"
        part.to_parquet(path, index=False) if fmt == "parquet" else part.to_csv(path, index=False)
    code, _, err = run(
        capfd, "predict", model, tmp_path / "in", "-o", tmp_path / "out", "--keep", "id"
    )
    assert code == 0, err
    outs = sorted((tmp_path / "out").glob(f"part-*.{fmt}"))
    assert len(outs) == 3
    read = pd.read_parquet if fmt == "parquet" else pd.read_csv
    got = pd.concat([read(p) for p in outs], ignore_index=True)
    assert list(got["id"]) == list(range(len(frame)))
    assert list(got.columns[1:]) == list(want.columns)
    np.testing.assert_allclose(
        got[want.columns].to_numpy(np.float64), want.to_numpy(np.float64), rtol=1e-5, atol=1e-5
    )


def test_a_bad_category_in_a_partition_is_located(capfd, tmp_path, cars):
    model, table = cars
    frame = pd.read_csv(table)
    frame.loc[7, "origin"] = "atlantis"
    (tmp_path / "in").mkdir()
    frame.to_parquet(tmp_path / "in" / "a.parquet", index=False)
    code, _, err = run(capfd, "predict", model, tmp_path / "in", "-o", tmp_path / "out")
    assert code == 2
    assert "a.parquet: row 7, column 'origin': expected one of" in err
    assert "atlantis" in err and "Traceback" not in err
    assert not list((tmp_path / "out").glob("a.parquet"))  # nothing half-written


def test_a_fifo_input_is_refused(capfd, tmp_path, cars):
    model, _ = cars
    fifo = tmp_path / "rows.parquet"
    os.mkfifo(fifo)
    code, _, err = run(capfd, "predict", model, fifo, "-o", tmp_path / "out")
    assert code == 2
    assert f"{fifo}: is a FIFO (named pipe), which would block; expected a regular" in err
