"""``python -m bench.estimator_overhead [--repeats 5]``.

What ``nnspec.sklearn.SpecClassifier.fit`` adds to ``nnspec.train`` on the same arrays (the
same spec, seed and data, so the same weights): both in turns in one process, the digits
MLP (specs/digits.yaml's network, 1,797 x 64, no test split held out). Prints the ratio's
median and range.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.estimator_overhead", description=__doc__)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--epochs", type=int, default=20)
    args = p.parse_args(argv)

    import nnspec
    from nnspec.data.core import load_builtin
    from nnspec.sklearn import SpecClassifier

    ds = load_builtin("digits", task="classification")
    spec = nnspec.load_spec(ROOT / "specs" / "digits.yaml")
    spec = spec.model_copy(
        update={
            "train": spec.train.model_copy(
                update={"epochs": args.epochs, "early_stopping": None, "validation_fraction": 0.0}
            )
        }
    )
    times: dict[str, list[float]] = {"nnspec.train": [], "SpecClassifier.fit": []}
    for _ in range(args.repeats):
        t = time.perf_counter()
        nnspec.train(spec, ds.x, ds.y, test_fraction=0)
        times["nnspec.train"].append(time.perf_counter() - t)
        t = time.perf_counter()
        SpecClassifier(spec).fit(ds.x, ds.y)
        times["SpecClassifier.fit"].append(time.perf_counter() - t)
    ratios = [b / a for a, b in zip(*times.values(), strict=True)]
    med = {k: statistics.median(v) for k, v in times.items()}
    print(
        f"digits 64-64-10, {args.epochs} epochs, 1,797 samples: nnspec.train "
        f"{med['nnspec.train']:.3f} s, SpecClassifier.fit {med['SpecClassifier.fit']:.3f} s "
        f"(medians of {args.repeats})"
    )
    print(
        f"ratio fit / train: median {statistics.median(ratios):.3f} "
        f"({min(ratios):.3f}-{max(ratios):.3f})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
