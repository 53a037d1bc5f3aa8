"""Write iris-like rows as Parquet partitions, to try partitioned scoring on:
``python examples/partitions.py flowers/ --files 8 --rows 20000``.

Each file holds ``--rows`` flowers drawn from the iris measurements with a little noise, an
``id`` column (unique over all files) and the four feature columns that an iris model reads
by name, as a month of events would come: many files of the same columns.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("directory", type=Path)
    p.add_argument("--files", type=int, default=8)
    p.add_argument("--rows", type=int, default=20_000, help="rows per file")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise SystemExit('needs pyarrow: pip install "nnspec[dask]"') from None
    from nnspec.data.core import load_builtin

    iris = load_builtin("iris", None, "classification")
    rng = np.random.default_rng(args.seed)
    args.directory.mkdir(parents=True, exist_ok=True)
    for i in range(args.files):
        x = iris.x[rng.integers(0, len(iris.x), args.rows)]
        x = np.round(x + rng.normal(0, 0.1, x.shape), 2)
        cols = {"id": pa.array(np.arange(i * args.rows, (i + 1) * args.rows))}
        cols.update({n: pa.array(x[:, j]) for j, n in enumerate(iris.info.feature_names)})
        pq.write_table(pa.table(cols), args.directory / f"day-{i + 1:02d}.parquet")
    print(f"wrote {args.files} files of {args.rows:,} rows to {args.directory}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
