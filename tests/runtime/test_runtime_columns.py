"""nnspec_runtime with tabular models: DataFrames, pyarrow Tables, dicts of columns and CSV
row dicts in, mapped by name, checked before onnxruntime sees them; nnspec predict from CSV
and Parquet."""

from __future__ import annotations

import csv
import io

import numpy as np
import pytest
from tabular_tables import car_rows, cars_spec, write_cars

import nnspec
from nnspec import cli
from nnspec_runtime import Model, RuntimeModelError
from nnspec_runtime.errors import ColumnError

pd = pytest.importorskip("pandas", reason="needs pandas (test extra)")

RTOL, ATOL = 1e-4, 1e-5


@pytest.fixture(scope="module")
def cars(tmp_path_factory):
    """(TrainResult, path of its model, the CSV rows) of mpg regression on the car table, with
    unknown: error so that the runtime's own checks show."""
    tmp = tmp_path_factory.mktemp("cars")
    write_cars(tmp / "cars.csv")
    (tmp / "cars.yaml").write_text(cars_spec(extra="  unknown: error\n"))
    result = nnspec.train(nnspec.load_spec(tmp / "cars.yaml"))
    nnspec.export(result, tmp / "cars.onnx")
    return result, tmp / "cars.onnx", car_rows()


def test_every_kind_of_input_gives_the_numpy_networks_answer(cars):
    result, path, rows = cars
    model = Model(path, device="cpu")
    assert model.feature_names == [
        "displacement",
        "horsepower",
        "weight",
        "acceleration",
        "year",
        "cylinders",
        "origin",
    ]
    want = result.network.predict(result.splits.test.columns)["prediction"]
    test_rows = [rows[int(line) - 2] for line in result.splits.test.lines]
    frame = pd.DataFrame(test_rows)  # all text, as read from CSV
    typed = pd.read_csv(io.StringIO(frame.to_csv(index=False)))  # NaN, floats, int cylinders
    assert typed["cylinders"].dtype.kind == "i" and typed["horsepower"].isna().any()
    inputs = {
        "column table": result.splits.test.columns,
        "csv.DictReader rows": list(csv.DictReader(io.StringIO(frame.to_csv(index=False)))),
        "DataFrame of text": frame,
        "DataFrame read by pandas": typed,
        "dict of lists": {k: typed[k].tolist() for k in typed.columns},
    }
    pa = pytest.importorskip("pyarrow", reason="needs pyarrow (test extra)")
    inputs["pyarrow Table"] = pa.Table.from_pandas(typed)
    for what, x in inputs.items():
        got = model.predict(x).values
        np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL, err_msg=what)


def test_bad_values_name_the_column_and_row(cars):
    _, path, rows = cars
    model = Model(path, device="cpu")
    good = [dict(r) for r in rows[:4]]
    cases = [
        ({"horsepower": "fast"}, "column 'horsepower', row 2: expected a number, got 'fast'"),
        (
            {"origin": "mars"},
            "column 'origin', row 2: expected one of the categories seen in training "
            "(europe, japan, usa), got 'mars'",
        ),
        ({"origin": ""}, "column 'origin', row 2: expected one of the categories"),
        ({"weight": "inf"}, "column 'weight', row 2: expected a number, got inf"),
    ]
    for change, message in cases:
        bad = [dict(r) for r in good]
        bad[2].update(change)
        with pytest.raises(ColumnError) as e:
            model.predict(bad)
        assert str(e.value).startswith(message)
        assert e.value.row == 2 and e.value.column == next(iter(change))
    frame = pd.DataFrame(good).drop(columns=["origin"])
    with pytest.raises(RuntimeModelError, match="missing column\\(s\\) origin; the model takes"):
        model.predict(frame)
    with pytest.raises(RuntimeModelError, match="this model takes raw columns"):
        model.predict(np.zeros((2, 13)))
    with pytest.raises(RuntimeModelError, match="bind takes models with one float32 input"):
        model.bind(np.zeros((2, 13)))


def test_a_missing_number_without_imputation_is_refused(tmp_path):
    rows = [r for r in car_rows() if r["horsepower"] and r["weight"]]
    write_cars(tmp_path / "cars.csv", rows)
    (tmp_path / "c.yaml").write_text(cars_spec(impute="null"))
    nnspec.export(
        nnspec.compile(nnspec.load_spec(tmp_path / "c.yaml")).network, tmp_path / "m.onnx"
    )
    model = Model(tmp_path / "m.onnx", device="cpu")
    frame = pd.DataFrame(rows[:3])
    frame.loc[1, "weight"] = np.nan
    with pytest.raises(
        ColumnError,
        match="column 'weight', row 1: expected a number, got a "
        "missing value \\(NaN\\); the model imputes nothing for this column",
    ):
        model.predict(frame)


def test_nnspec_predict_reads_raw_csv_and_parquet(cars, tmp_path, capsys):
    result, path, rows = cars
    test_rows = [rows[int(line) - 2] for line in result.splits.test.lines]
    csv_path = write_cars(tmp_path / "new.csv", test_rows)
    assert cli.main(["predict", str(path), str(csv_path), "-o", str(tmp_path / "p.csv")]) == 0
    got = np.loadtxt(tmp_path / "p.csv", skiprows=1)
    want = result.network.predict(result.splits.test.columns)["prediction"][:, 0]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-4)  # written with 6 digits
    capsys.readouterr()
    bad = [dict(r) for r in test_rows[:5]]
    bad[3]["origin"] = "atlantis"
    write_cars(tmp_path / "bad.csv", bad)
    assert cli.main(["predict", str(path), str(tmp_path / "bad.csv")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"{tmp_path / 'bad.csv'}:5: column 'origin': expected one of the")
    pytest.importorskip("pyarrow", reason="needs pyarrow (test extra)")
    pd.read_csv(csv_path).to_parquet(tmp_path / "new.parquet")
    out = tmp_path / "pq.csv"
    assert cli.main(["predict", str(path), str(tmp_path / "new.parquet"), "-o", str(out)]) == 0
    np.testing.assert_allclose(np.loadtxt(out, skiprows=1), want, rtol=1e-5, atol=1e-4)


def test_inspect_shows_the_preprocessing(cars, capsys):
    _, path, _ = cars
    assert cli.main(["inspect", str(path)]) == 0
    out = capsys.readouterr().out
    assert "origin: string (batch)" in out
    assert "preprocessing: raw columns in, one graph input each (error unknown" in out
    assert "    origin        categorical, one-hot over 3: europe, japan, usa" in out
    assert "horsepower    numeric, missing -> median" in out


def test_pandas_nullable_columns(cars):
    """pd.NA in nullable Int64 / string columns is a missing value, as NaN and None are."""
    result, path, rows = cars
    model = Model(path, device="cpu")
    test_rows = [rows[int(line) - 2] for line in result.splits.test.lines]
    typed = pd.read_csv(io.StringIO(pd.DataFrame(test_rows).to_csv(index=False)))
    nullable = typed.convert_dtypes()  # Int64, Float64 and string columns, with pd.NA
    assert str(nullable["cylinders"].dtype) == "Int64" and nullable["horsepower"].isna().any()
    want = model.predict(typed).values
    np.testing.assert_allclose(model.predict(nullable).values, want, rtol=1e-6)
