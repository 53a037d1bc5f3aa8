"""``python -m bench.tabular [--rows N] [--repeats R]``: the penguins table, nnspec against
scikit-learn in the same run.

Accuracy: ``specs/penguins.yaml`` trained by nnspec, and scikit-learn's
``Pipeline(ColumnTransformer([SimpleImputer(median) + StandardScaler, OneHotEncoder(
handle_unknown="ignore")]), MLPClassifier(16 relu, adam))`` fitted on the same training rows
(nnspec's split), scored on the same test rows. Raw-row inference: the exported model through
``nnspec_runtime.Model.predict(DataFrame)`` (column checks, imputation and one-hot in the
graph) against the scikit-learn pipeline's ``predict_proba(DataFrame)``, on N rows resampled
from the table, R timed calls each, alternating; the ratio is per-call time of scikit-learn over
nnspec's (above 1: nnspec faster). Needs the test extra (scikit-learn, pandas).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def _frame(columns: dict):
    import pandas as pd

    return pd.DataFrame(
        {k: (np.where(v == "", None, v) if v.dtype == object else v) for k, v in columns.items()}
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=100_000)
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args(argv)
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    import nnspec
    from nnspec import pipeline
    from nnspec_runtime import Model

    spec = nnspec.load_spec(ROOT / "specs" / "penguins.yaml")
    start = time.perf_counter()
    result = nnspec.train(spec)
    nn_train = time.perf_counter() - start
    enc = result.network.tabular
    train, test = result.splits.train, result.splits.test
    sk = make_pipeline(
        ColumnTransformer(
            [
                (
                    "num",
                    make_pipeline(SimpleImputer(strategy="median"), StandardScaler()),
                    enc.numeric,
                ),
                ("cat", OneHotEncoder(handle_unknown="ignore"), enc.categorical),
            ]
        ),
        MLPClassifier(
            (16,),
            activation="relu",
            learning_rate_init=0.01,
            batch_size=16,
            max_iter=100,
            random_state=0,
        ),
    )
    start = time.perf_counter()
    sk.fit(_frame(train.columns), train.y)
    sk_train = time.perf_counter() - start
    sk_acc = float((sk.predict(_frame(test.columns)) == test.y).mean())
    print(
        f"penguins test accuracy ({len(test.y)} rows): nnspec {result.metrics['accuracy']:.4f} "
        f"({nn_train:.2f} s), scikit-learn {sk_acc:.4f} ({sk_train:.2f} s)"
    )

    with tempfile.TemporaryDirectory() as tmp:
        nnspec.export(result, Path(tmp) / "p.onnx")
        model = Model(Path(tmp) / "p.onnx", device="cpu")
        dataset = pipeline.load_data(spec)
        idx = np.random.default_rng(0).integers(len(dataset.y), size=args.rows)
        frame = _frame({k: v[idx] for k, v in dataset.columns.items()})
        ours = model.predict(frame).probabilities  # warm-up, and the answers compared below
        theirs = sk.predict_proba(frame)
        t_nn, t_sk = [], []
        for _ in range(args.repeats):
            start = time.perf_counter()
            model.predict(frame)
            t_nn.append(time.perf_counter() - start)
            start = time.perf_counter()
            sk.predict_proba(frame)
            t_sk.append(time.perf_counter() - start)
    agree = float((ours.argmax(1) == theirs.argmax(1)).mean())
    ratios = sorted(s / n for s, n in zip(t_sk, t_nn, strict=True))
    print(
        f"raw DataFrame rows -> probabilities, {args.rows:,} rows, {args.repeats} calls each: "
        f"nnspec_runtime {statistics.median(t_nn) * 1e3:.0f} ms "
        f"({args.rows / statistics.median(t_nn):,.0f} rows/s), scikit-learn "
        f"{statistics.median(t_sk) * 1e3:.0f} ms; ratio (scikit-learn / nnspec) "
        f"{ratios[0]:.2f}-{ratios[-1]:.2f}; labels agree on {agree:.1%} of rows"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
