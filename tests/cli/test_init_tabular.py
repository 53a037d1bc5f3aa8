"""nnspec init --from-data on a table with text columns and empty cells: categorical and
impute entries, an identifier column left out, and a spec that validates and trains."""

from __future__ import annotations

from tabular_tables import write_cars

import nnspec
from nnspec import cli


def test_init_detects_text_columns_and_empty_cells(tmp_path, capsys):
    write_cars(tmp_path / "cars.csv")
    spec_path = tmp_path / "cars.yaml"
    assert cli.main(["init", str(spec_path), "--from-data", str(tmp_path / "cars.csv")]) == 0
    text = spec_path.read_text()
    assert "  categorical: [origin]" in text
    assert "  impute: {strategy: median}" in text and "horsepower, weight have empty cells" in text
    assert "# Column 'name' is left out of data.features: text with 240 distinct values" in text
    assert (
        "features: [cylinders, displacement, horsepower, weight, acceleration, year, origin]"
        in text
    )
    capsys.readouterr()
    assert cli.main(["validate", str(spec_path)]) == 0
    assert "input features: 6 numeric + origin (3) = 9" in capsys.readouterr().out
    spec = nnspec.load_spec(text.replace("epochs: 500", "epochs: 5"))
    assert spec.preprocess.categorical == ["origin"]


def test_init_on_a_numeric_table_stays_as_it_was(tmp_path):
    (tmp_path / "d.csv").write_text("a,b,y\n1,2,0\n3,4,1\n5,6,0\n7,8,1\n")
    assert cli.main(["init", str(tmp_path / "s.yaml"), "--from-data", str(tmp_path / "d.csv")]) == 0
    text = (tmp_path / "s.yaml").read_text()
    assert "categorical" not in text and "impute" not in text
    assert "input: {features: 2}" in text
