"""Benchmark suite: nnspec's trainer against PyTorch CPU and scikit-learn.

Run ``python -m bench`` (``--quick`` for a short run, ``--only`` to pick sections, peers or
models); it writes ``docs/performance.md``. Peers come with
``pip install -r bench/requirements.txt``.
"""
