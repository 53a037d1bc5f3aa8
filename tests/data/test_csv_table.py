"""The one CSV reader (``nnspec.data.csv_table``): line numbers, headers, widths, numbers,
and the same reading behind training data, ``predict``, ``init --from-data`` and plots."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import ROOT

from nnspec import cli
from nnspec.data import csv_table
from nnspec.errors import DataError


def test_rows_keep_the_line_they_start_on():
    # Line 1 blank, the header on 2, a quoted cell over lines 4-5, blank line 6, a row on 7.
    table = csv_table.parse('\na, b ,c\n1,2,3\n4,"x\ny",6\n\n7,8,9\n', "t.csv")
    assert table.header == ["a", "b", "c"] and table.header_line == 2
    assert [(r.line, r.cells) for r in table.rows] == [
        (3, ["1", "2", "3"]),
        (4, ["4", "x\ny", "6"]),
        (7, ["7", "8", "9"]),
    ]
    assert table.width == 3


def test_numbers_read_the_columns_asked_for_in_their_order():
    table = csv_table.parse("a,b,c\n1, 2.5 ,3\n-4,5e1,6\n", "t.csv")
    np.testing.assert_array_equal(table.numbers([2, 0]), [[3.0, 1.0], [6.0, -4.0]])
    np.testing.assert_array_equal(table.numbers(range(3))[:, 1], [2.5, 50.0])


@pytest.mark.parametrize(
    "text,header",
    [
        ("x,y\n1,2\n", ["x", "y"]),
        ("1,2\n3,4\n", None),
        # One number in the first row makes it data; a first row of text is a header.
        ("1,b\n3,4\n", None),
        ("nan,b\n3,4\n", None),  # 'nan' parses as a number: data (and then an error)
    ],
)
def test_a_header_is_guessed_from_the_first_row(text, header):
    table = csv_table.parse(text, "t.csv", header=None)
    assert table.header == header
    assert len(table.rows) == (1 if header else 2)


@pytest.mark.parametrize(
    "text,header,message",
    [
        ("a,b,c\n1,2\n", True, "t.csv:2: expected 3 cells like the header, got 2 "),
        ("a,b,c\n1,2\n", True, "(no cell for column(s) c)"),
        ("a,b\n1,2,3,4\n", True, "got 4 (2 more than the header has columns)"),
        ("1,2,3\n\n4\n", None, "t.csv:3: expected 3 cells like the first row, got 1"),
        ("1,2,3\n4\n", None, "(no cell for column(s) 2, 3)"),
        ("1,2\n3,4,5\n", None, "t.csv:2: expected 2 cells like the first row, got 3 (1 more"),
        ("", True, "t.csv: the file is empty; expected a header row and data rows"),
        (" \n\n", None, "t.csv: the file is empty; expected rows of numbers"),
        ("\n\na,b\n", True, "t.csv: no data rows after the header (line 3)"),
        # Over the csv module's field size limit (128 KiB), on the row that starts on line 4.
        ('a,b\n1,2\n\n3,"' + "4" * 200_000 + '"\n', True, "t.csv:4: cannot parse as CSV: field"),
    ],
)
def test_shape_errors_say_where(text, header, message):
    with pytest.raises(DataError) as e:
        csv_table.parse(text, "t.csv", header)
    assert message in str(e.value)


@pytest.mark.parametrize(
    "cell,message",
    [
        ("", "t.csv:3: column 'b': expected a number, got an empty cell (a missing value?)"),
        ("x1", "t.csv:3: column 'b': expected a number, got 'x1'"),
        (" -inf ", "t.csv:3: column 'b': expected a finite number, got -inf"),
        ("1e400", "t.csv:3: column 'b': expected a finite number, got 1e400"),
    ],
)
def test_number_errors_name_line_and_column(cell, message):
    table = csv_table.parse(f"a,b\n1,2\n3,{cell}\n", "t.csv")
    with pytest.raises(DataError) as e:
        table.numbers([0, 1])
    assert str(e.value) == message


def test_without_a_header_columns_are_numbered():
    table = csv_table.parse("1,2\n3,oops\n", "t.csv", header=None)
    with pytest.raises(DataError, match=r"^t.csv:2: column 2: expected a number, got 'oops'$"):
        table.numbers([0, 1])


@pytest.mark.parametrize(
    "header,names,message",
    [
        (
            "a,b",
            ["c", "a", "d"],
            "t.csv:1: column(s) c, d not in the header; the columns are: a, b",
        ),
        ("a,b,a", ["a"], "t.csv:1: column name 'a' appears 2 times in the header (columns 1, 3)"),
        ("a,,b", ["b", ""], "t.csv:1: column 2 has no name in the header; expected a name for"),
    ],
)
def test_locate_errors(header, names, message):
    body = ",".join(["1"] * (header.count(",") + 1))
    table = csv_table.parse(f"{header}\n{body}\n", "t.csv")
    with pytest.raises(DataError) as e:
        table.locate(names)
    assert message in str(e.value)


def test_locate_gives_columns_in_the_order_asked():
    table = csv_table.parse("a,b,c\n1,2,3\n", "t.csv")
    assert table.locate(["c", "a"]) == [2, 0]


def test_files_are_read_as_utf8_with_or_without_a_bom(tmp_path):
    (tmp_path / "bom.csv").write_bytes("\ufeffnaïve,b\n1,2\n".encode())
    table = csv_table.read(tmp_path / "bom.csv")
    assert table.header == ["naïve", "b"] and table.source == str(tmp_path / "bom.csv")
    (tmp_path / "latin1.csv").write_bytes("na\xefve,b\n1,2\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"latin1.csv: cannot read as UTF-8 CSV text"):
        csv_table.read(tmp_path / "latin1.csv")
    with pytest.raises(DataError, match=r"none.csv: data file not found$"):
        csv_table.read(tmp_path / "none.csv")


def test_read_header_skips_blank_lines_and_strips_names(tmp_path):
    (tmp_path / "d.csv").write_text("\n  \n x , y\n1,2\n")
    assert csv_table.read_header(tmp_path / "d.csv") == ["x", "y"]
    (tmp_path / "e.csv").write_text("")
    assert csv_table.read_header(tmp_path / "e.csv") == []


def test_the_builtin_sets_are_read_with_it():
    table = csv_table.read(ROOT / "nnspec" / "data" / "datasets" / "iris.csv")
    assert table.header[-1] == "species" and len(table.rows) == 150
    assert table.numbers(range(4))[0].tolist() == [5.1, 3.5, 1.4, 0.2]


# -- the commands that read CSV give its located errors ----------------------------------------


def test_predict_header_only_file_is_an_error(tmp_path, capsys):
    import nnspec

    model = tmp_path / "iris.onnx"
    nnspec.export(nnspec.build_network(nnspec.load_spec(ROOT / "specs" / "iris.yaml")), model)
    (tmp_path / "x.csv").write_text("sepal_length,sepal_width,petal_length,petal_width\n")
    assert cli.main(["predict", str(model), str(tmp_path / "x.csv")]) == 2
    assert (
        capsys.readouterr().err == f"{tmp_path / 'x.csv'}: no data rows after the header (line 1)\n"
    )


def test_init_from_data_names_the_header_line_after_blank_lines(tmp_path, capsys):
    (tmp_path / "d.csv").write_text("\n\nx,y\n1,a\n2,b\n")
    code = cli.main(
        ["init", str(tmp_path / "s.yaml"), "--from-data", str(tmp_path / "d.csv"), "--target", "z"]
    )
    assert code == 2
    assert capsys.readouterr().err == (
        f"{tmp_path / 'd.csv'}:3: column(s) z not in the header; the columns are: x, y\n"
    )


def test_init_from_data_with_a_short_row_says_which(tmp_path, capsys):
    # The target values used to be read past short rows; now the row is an error at once.
    (tmp_path / "d.csv").write_text("x,y\n1,a\n2\n3,b\n")
    code = cli.main(["init", str(tmp_path / "s.yaml"), "--from-data", str(tmp_path / "d.csv")])
    assert code == 2
    err = capsys.readouterr().err
    assert err == (
        f"{tmp_path / 'd.csv'}:3: expected 2 cells like the header, got 1 "
        "(no cell for column(s) y)\n"
    )
