"""Where work runs beyond one process: partitioned scoring (``scoring``) and hyperparameter
sweeps (``sweep``), on this process, a local process pool or a Dask cluster (``cluster``).

Dask and distributed are an optional extra (``pip install "nnspec[dask]"``), imported only
by the functions that use them; without them the Dask engine says how to install them.
"""
