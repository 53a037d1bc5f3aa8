"""Tabular preprocessing (preprocess.categorical / unknown / impute): fitted on the training
split, side by side with scikit-learn, and every refusal located."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from tabular_tables import CATEGORICAL, NUMERIC, car_rows, cars_spec, write_cars

import nnspec
import nnspec.data.tabular
from nnspec import cli, pipeline
from nnspec.data.tabular import Imputation, TabularEncoder, TabularPlan, sort_categories

pd = pytest.importorskip("pandas", reason="the scikit-learn comparison needs pandas (test extra)")
sk_compose = pytest.importorskip("sklearn.compose", reason="needs scikit-learn (test extra)")
from sklearn.impute import SimpleImputer  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import OneHotEncoder, StandardScaler  # noqa: E402


def _spec(tmp_path, text: str, rows=None):
    write_cars(tmp_path / "cars.csv", rows)
    (tmp_path / "cars.yaml").write_text(text)
    return nnspec.load_spec(tmp_path / "cars.yaml")


def _frame(columns: dict[str, np.ndarray]) -> pd.DataFrame:
    """Raw columns as scikit-learn takes them: NaN for missing numbers, text categories."""
    return pd.DataFrame(
        {k: (v.astype(str) if v.dtype == object else v) for k, v in columns.items()}
    )


def _nnspec_matrix(spec):
    """(a network with the encoder and standardization fitted on the training split, the
    splits)."""
    dataset = pipeline.load_data(spec)
    splits = pipeline.split_data(spec, dataset)
    network = nnspec.build_network(spec, dtype="float32")
    network.tabular = dataset.encoder
    network.fit_preprocess(splits.train.x, splits.train.y)
    return network, splits


@pytest.mark.parametrize(
    "impute,sk",
    [
        ("{strategy: median}", {"strategy": "median"}),
        ("{strategy: mean}", {"strategy": "mean"}),
        ("{strategy: most_frequent}", {"strategy": "most_frequent"}),
        ("{strategy: constant, value: -1.5}", {"strategy": "constant", "fill_value": -1.5}),
    ],
)
def test_encoded_rows_equal_scikit_learn_column_transformer(tmp_path, impute, sk):
    """The matrix nnspec's first layer gets equals ColumnTransformer([SimpleImputer +
    StandardScaler on the numbers, OneHotEncoder(handle_unknown='ignore') on the categories])
    fitted on the same training split, on the training and the test rows and on rows with
    unknown categories, to float32 rounding."""
    spec = _spec(tmp_path, cars_spec(impute=impute))
    network, splits = _nnspec_matrix(spec)
    numeric = NUMERIC
    sk_ct = sk_compose.ColumnTransformer(
        [
            ("num", make_pipeline(SimpleImputer(**sk), StandardScaler()), numeric),
            ("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False), CATEGORICAL),
        ]
    )
    sk_ct.fit(_frame(splits.train.columns))
    # nnspec orders the columns as the features (cylinders first), the numbers before the
    # one-hot blocks; the numeric column order is the features' order.
    assert network.tabular.numeric == numeric and network.tabular.categorical == CATEGORICAL
    assert network.tabular.categories["cylinders"] == ["3", "4", "5", "6", "8"]
    assert network.tabular.categories["origin"] == ["europe", "japan", "usa"]
    unknown = {k: v[:4].copy() for k, v in splits.test.columns.items()}
    unknown["origin"][:2] = ["mars", ""]
    unknown["cylinders"][2] = "12"
    unknown["horsepower"][:] = np.nan
    for columns in (splits.train.columns, splits.test.columns, unknown):
        ours = network.scale_x(network.tabular.transform(columns))
        theirs = sk_ct.transform(_frame(columns))
        assert ours.dtype == np.float32 and ours.shape == theirs.shape
        np.testing.assert_allclose(ours, theirs, rtol=2e-6, atol=2e-6)
    missing = np.isnan(splits.train.columns["horsepower"]).sum()
    assert missing > 10  # the comparison covers imputation, not a complete column


def test_per_column_override_and_fill_values(tmp_path):
    spec = _spec(
        tmp_path,
        cars_spec(impute="{strategy: median, columns: {horsepower: {strategy: mean}}}"),
    )
    dataset = pipeline.load_data(spec)
    train = pipeline.split_data(spec, dataset).train.columns
    enc = dataset.encoder
    assert enc.fill["horsepower"] == pytest.approx(np.nanmean(train["horsepower"]))
    assert enc.fill["weight"] == pytest.approx(np.nanmedian(train["weight"]))
    # A column complete in training is imputed too: a deployed row may lack it.
    assert enc.fill["acceleration"] == pytest.approx(np.median(train["acceleration"]))
    assert dataset.info.encoding == "5 numeric + cylinders (5) + origin (3) = 13"
    assert dataset.info.features == 13 and dataset.x.shape == (240, 13)
    assert not np.isnan(dataset.x).any()


def test_fitted_on_the_training_split_only(tmp_path):
    """A category and a value that appear only in held-out rows change nothing."""
    rows = car_rows()
    spec = _spec(tmp_path, cars_spec(), rows)
    test = pipeline.split_data(spec, pipeline.load_data(spec)).test
    first = pipeline.load_data(spec).encoder
    held = int(test.lines[0]) - 2  # the header is line 1, data row i is line i + 2
    rows[held]["origin"] = "mars"
    rows[held]["horsepower"] = "9999"
    spec = _spec(tmp_path, cars_spec(), rows)
    second = pipeline.load_data(spec).encoder
    assert second.categories == first.categories and second.fill == first.fill


def test_sorting_of_categories():
    assert sort_categories(["10", "9", "", "2"]) == ["2", "9", "10"]
    assert sort_categories(["b", "B", "a"]) == ["B", "a", "b"]


def test_most_frequent_takes_the_smallest_of_ties():
    plan = TabularPlan(["x"], impute={"x": Imputation("most_frequent")})
    enc = TabularEncoder.fit({"x": np.array([3.0, 1.0, 3.0, 1.0, np.nan])}, plan, "t")
    assert enc.fill == {"x": 1.0}


def _error(tmp_path, text, rows=None) -> str:
    with pytest.raises(nnspec.NnspecError) as e:
        nnspec.train(_spec(tmp_path, text, rows))
    return str(e.value)


def test_a_missing_value_without_impute_keeps_the_old_message(tmp_path):
    text = cars_spec().replace("  impute: {strategy: median}\n", "")
    msg = _error(tmp_path, text)
    line = next(i for i, r in enumerate(car_rows()) if r["horsepower"] == "") + 2
    assert msg == (
        f"{tmp_path / 'cars.csv'}:{line}: column 'horsepower': expected a number, got an empty "
        "cell (a missing value?)"
    )


def test_an_entirely_empty_column_is_refused(tmp_path):
    rows = car_rows()
    for r in rows:
        r["acceleration"] = "NA" if len(r["name"]) % 2 else ""
    msg = _error(tmp_path, cars_spec(), rows)
    assert "column 'acceleration' is entirely empty (240 missing cells)" in msg
    assert msg.startswith(str(tmp_path / "cars.csv"))


def test_an_unknown_categorical_column_is_located(tmp_path):
    text = cars_spec().replace(
        "categorical: [cylinders, origin]", "categorical: [cylinders, orign]"
    )
    msg = _error(tmp_path, text)
    assert "cars.yaml:6:28: preprocess.categorical[1]" in msg
    assert "'orign' is not one of data.features" in msg


def test_an_unknown_column_without_data_features(tmp_path):
    text = cars_spec().replace(
        "features: [cylinders, displacement, horsepower, weight, acceleration, year, origin], ",
        "",
    )
    text = text.replace("categorical: [cylinders, origin]", "categorical: [orign, name]")
    msg = _error(tmp_path, text)
    assert "preprocess.categorical[0]" in msg and "unknown feature column 'orign'" in msg
    assert "did you mean 'origin'" in msg


def test_an_unknown_impute_override_is_located(tmp_path):
    text = cars_spec(impute="{strategy: median, columns: {horsepowr: {strategy: mean}}}")
    msg = _error(tmp_path, text)
    assert "preprocess.impute.columns.horsepowr" in msg and "did you mean 'horsepower'" in msg
    text = cars_spec(impute="{strategy: median, columns: {origin: {strategy: mean}}}")
    assert "'origin' is categorical" in _error(tmp_path, text)


def test_nan_in_the_target_is_located(tmp_path):
    rows = car_rows()
    rows[7]["mpg"] = ""
    msg = _error(tmp_path, cars_spec(), rows)
    assert msg.startswith(f"{tmp_path / 'cars.csv'}:9: column 'mpg': expected a number")
    rows = car_rows()
    rows[4]["origin"] = ""
    msg = _error(tmp_path, cars_spec(task="classification"), rows)
    assert msg.startswith(f"{tmp_path / 'cars.csv'}:6: column 'origin': expected a class label")


def test_too_many_categories_are_refused_unless_raised(tmp_path):
    text = cars_spec().replace("[cylinders, origin]", "[cylinders, origin, weight]")
    text = text.replace("origin], test", "origin, weight], test")
    msg = _error(tmp_path, text)
    assert "column 'weight' has" in msg and "over preprocess.max_categories (100)" in msg
    spec = _spec(tmp_path, text.replace("preprocess:\n", "preprocess:\n  max_categories: 500\n"))
    assert pipeline.load_data(spec).encoder.categories["weight"]


def test_unknown_error_refuses_a_held_out_category(tmp_path):
    rows = car_rows()
    spec = _spec(tmp_path, cars_spec(), rows)
    test_lines = pipeline.split_data(spec, pipeline.load_data(spec)).test.lines
    rows[int(test_lines[0]) - 2]["origin"] = "mars"
    msg = _error(tmp_path, cars_spec(extra="  unknown: error\n"), rows)
    assert msg.startswith(f"{tmp_path / 'cars.csv'}:{test_lines[0]}: column 'origin'")
    assert "expected one of the categories seen in training (europe, japan, usa), got 'mars'" in msg


def test_categorical_needs_csv_data_and_a_feature():
    base = (
        "spec_version: 1\nname: t\ntask: classification\ndata: {builtin: iris}\n"
        "preprocess: {categorical: [petal_length]}\n"
        "layers: [{kind: dense, units: 3, activation: softmax}]\nloss: cross_entropy\n"
    )
    with pytest.raises(nnspec.SpecError) as e:
        nnspec.resolve(nnspec.load_spec(base))
    assert "preprocess.categorical: applies to tables of named columns" in str(e.value)


def test_the_target_cannot_be_categorical(tmp_path):
    text = cars_spec().replace("[cylinders, origin]", "[cylinders, mpg]")
    assert "'mpg' is the target" in _error(tmp_path, text)


def test_refused_training_writes_nothing(tmp_path):
    rows = car_rows()
    rows[7]["mpg"] = ""
    _spec(tmp_path, cars_spec(), rows)
    out = tmp_path / "m.onnx"
    assert cli.main(["train", str(tmp_path / "cars.yaml"), "-o", str(out)]) == 2
    assert not out.exists()


def test_validate_shows_the_encoded_width(tmp_path, capsys):
    _spec(tmp_path, cars_spec())
    assert cli.main(["validate", str(tmp_path / "cars.yaml")]) == 0
    out = capsys.readouterr().out
    assert "input features: 5 numeric + cylinders (5) + origin (3) = 13" in out
    assert "(batch, 13)" in out


def test_validate_json_has_the_encoding(tmp_path, capsys):
    import json

    _spec(tmp_path, cars_spec())
    assert cli.main(["validate", str(tmp_path / "cars.yaml"), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["input_encoding"] == "5 numeric + cylinders (5) + origin (3) = 13"


def test_resume_keeps_the_encoder(tmp_path):
    """A resumed tabular run ends with the weights of an uninterrupted one: the encoder is
    fitted again, identically, from the same split."""
    from nnspec.training.interrupt import StopRequest, TrainingInterrupted

    spec = _spec(tmp_path, cars_spec(epochs=6))
    whole = nnspec.train(spec)
    stop = StopRequest()

    def on_batch(epoch, batch):
        if epoch == 3 and batch == 0:
            stop.set()

    with pytest.raises(TrainingInterrupted):
        nnspec.train(spec, checkpoint_dir=tmp_path / "ck", stop=stop, on_batch=on_batch)
    resumed = nnspec.train(spec, resume=tmp_path / "ck")
    assert resumed.resumed_from is not None
    for k, v in whole.network.parameters().items():
        np.testing.assert_array_equal(resumed.network.parameters()[k], v)
    assert resumed.network.tabular == whole.network.tabular


def test_a_dataframe_through_the_entry_point_equals_the_csv(tmp_path):
    """What issue 14's DataFrame and Parquet sources call: columns_from_mapping, then
    encode_tabular, give the CSV path's encoder and rows."""
    from nnspec.data.core import Dataset

    spec = _spec(tmp_path, cars_spec())
    from_csv = pipeline.load_data(spec)
    frame = pd.read_csv(tmp_path / "cars.csv")  # NaN for empty cells, int cylinders
    plan = pipeline.tabular_plan(spec).with_features(list(from_csv.columns))
    columns = nnspec.data.tabular.columns_from_mapping(frame, plan, "frame")
    raw_info = dataclasses.replace(
        from_csv.info, features=len(columns), feature_names=list(columns), encoding=None
    )
    raw = Dataset(np.zeros((len(frame), 0)), from_csv.y, raw_info, "frame", columns)
    encoded = pipeline.encode_tabular(spec, raw)
    assert encoded.encoder == from_csv.encoder
    np.testing.assert_array_equal(encoded.x, from_csv.x)
    frame["weight"] = frame["weight"].astype(object)
    frame.loc[3, "weight"] = "heavy"
    with pytest.raises(nnspec.DataError, match="frame: row 3: column 'weight': expected a number"):
        nnspec.data.tabular.columns_from_mapping(frame, plan, "frame")
