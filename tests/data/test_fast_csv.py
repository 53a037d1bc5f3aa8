"""The fast numeric CSV path gives the located reader's data, or steps aside for its errors."""

from __future__ import annotations

import numpy as np
import pytest

from nnspec.data import core, csv_table, fast_csv
from nnspec.errors import DataError

TEXTS = {
    "plain": "a,b,y\n1,2,x\n3,4.5,z\n-1e3,0,x\n",
    "blank lines and a BOM": "\ufeff\na,b,y\n\n1,2,x\n 3 , 4 ,z\n\n",
    "numeric labels": "a,b,y\n1,2,10\n3,4,2\n5,6,10\n",
    "two rows": "a,b,y\n1,2,x\n3,4,z\n",
}


def slow(path, target, task):
    """load_csv with the fast path turned off: the located reader alone."""
    real = fast_csv.read_numeric
    fast_csv.read_numeric = lambda *a, **k: None
    try:
        return core.load_csv(path, target, None, task)
    finally:
        fast_csv.read_numeric = real


@pytest.mark.parametrize("name", TEXTS)
@pytest.mark.parametrize("task", ["classification", "regression"])
def test_fast_and_located_readers_agree(tmp_path, name, task):
    text = TEXTS[name]
    if task == "regression":
        text = text.replace(",x\n", ",1.5\n").replace(",z\n", ",-2\n")
    path = tmp_path / "d.csv"
    path.write_text(text, encoding="utf-8")
    target = "y" if task == "classification" else ["y", "b"]
    got, want = core.load_csv(path, target, None, task), slow(path, target, task)
    assert fast_csv.read_numeric(path, "y" if task == "classification" else None) is not None
    np.testing.assert_array_equal(got.x, want.x)
    np.testing.assert_array_equal(got.y, want.y)
    assert got.info == want.info


@pytest.mark.parametrize(
    "text",
    [
        "a,b,y\n1,,x\n",  # empty cell
        "a,b,y\n1,nan,x\n",  # NaN
        "a,b,y\n1,inf,x\n",
        "a,b,y\n1,2\n",  # short row
        "a,b,y\n1,2,x,4\n",  # long row
        'a,b,y\n1,"2",x\n',  # quoted
        "a,b,y\n1,two,x\n",  # text
        "a,b,y\n1,2,\n",  # empty label
        "a,b,y\n1,2,nan\n",  # NaN label
        "a,b,y\n",  # no rows
        "",
        "a,a,y\n1,2,x\n",  # duplicated name
        "#a,b,y\n1,2,x\n",
    ],
)
def test_the_fast_path_gives_way_to_the_located_reader_on_every_mistake(tmp_path, text):
    path = tmp_path / "d.csv"
    path.write_text(text)
    fast = fast_csv.read_numeric(path, "y")
    with pytest.raises(DataError) as slow_error:
        slow(path, "y", "classification")
    if fast is not None:  # read, but the header checks must then fail the same way
        assert text.startswith(("a,a", "#a"))
    with pytest.raises(DataError) as error:
        core.load_csv(path, "y", None, "classification")
    assert str(error.value) == str(slow_error.value)


def test_non_utf8_gives_way(tmp_path):
    path = tmp_path / "d.csv"
    path.write_bytes(b"a,b,y\n1,2,\xff\n")
    assert fast_csv.read_numeric(path, "y") is None
    with pytest.raises(DataError, match="cannot read as UTF-8"):
        core.load_csv(path, "y", None, "classification")


def test_adjacent_feature_columns_are_a_view(tmp_path):
    path = tmp_path / "d.csv"
    rows = "\n".join(",".join(str(i * 10 + j) for j in range(5)) for i in range(20))
    path.write_text("a,b,c,d,t\n" + rows + "\n")
    ds = core.load_csv(path, "t", None, "regression")
    assert ds.x.base is not None and ds.x.shape == (20, 4)
    table = csv_table.read(path)
    np.testing.assert_array_equal(ds.x, table.numbers(range(4)))
