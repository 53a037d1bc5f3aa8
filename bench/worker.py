"""One benchmark process: ``python -m bench.worker TASK.json`` prints one JSON object.

Each peer runs in its own process so that its imports, thread pools and peak RSS are its own.
The task names the peer (nnspec, torch, sklearn, numpy), the kind of work (train, infer,
memory, gemm) and where the prepared data lie (``.npz`` files written by the orchestrator:
inputs already standardized float32, so every peer trains on identical arrays).
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time

from .cases import MODELS, OPTIMIZERS, case_key


def vm_status() -> dict[str, float]:
    """VmRSS and VmHWM (peak RSS) of this process in MiB, from /proc/self/status.

    ``ru_maxrss`` is not used: on Linux it is inherited across exec from the parent."""
    out = {}
    try:
        with open("/proc/self/status") as f:
            for line in f:
                key, _, rest = line.partition(":")
                if key in ("VmRSS", "VmHWM"):
                    out[key] = int(rest.split()[0]) / 1024.0
    except OSError:
        pass
    return out


def _load(task: dict, model: str):
    import numpy as np

    with np.load(task["data"][model]) as d:
        return d["x"], d["y"]


def _timed(fn, warmup: int, repeats: int) -> list[float]:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def _rate_result(n: int, times: list[float]) -> dict:
    med = statistics.median(times)
    return {"samples_per_s": n / med, "seconds": times, "median_s": med, "samples": n}


def _rate(fn, batch: int, min_time: float) -> float:
    """Samples/s of ``fn`` (one batch per call) called again and again for ``min_time``."""
    calls, t0 = 0, time.perf_counter()
    while True:
        fn()
        calls += 1
        el = time.perf_counter() - t0
        if el >= min_time:
            return batch * calls / el


def _call_rate(fn, batch: int, min_time: float, repeats: int) -> dict:
    """Samples/s of repeated calls: each repeat runs ``fn`` for at least ``min_time``."""
    fn()
    fn()
    rates = [_rate(fn, batch, min_time) for _ in range(repeats)]
    return {"samples_per_s": statistics.median(rates), "rates": rates}


# -- nnspec --------------------------------------------------------------------------------
def nnspec_spec_text(model_name: str, opt: str = "adam", batch: int = 64, epochs: int = 1) -> str:
    import yaml

    m = MODELS[model_name]
    layers = []
    for la in m.layers:
        if la[0] == "dense":
            layers.append({"kind": "dense", "units": la[1], "activation": la[2]})
        elif la[0] == "conv":
            layers.append(
                {"kind": "conv2d", "filters": la[1], "kernel_size": la[2], "activation": la[3]}
            )
        elif la[0] == "pool":
            layers.append({"kind": "maxpool2d", "kernel_size": la[1]})
        else:
            layers.append({"kind": "flatten"})
    spec = {
        "spec_version": 1,
        "name": f"bench-{model_name}",
        "task": m.task,
        "data": {"builtin": m.builtin},
        # The orchestrator standardizes the data once, for every peer alike.
        "preprocess": {"standardize": False},
        "layers": layers,
        "loss": "cross_entropy" if m.task == "classification" else "mse",
        "train": {
            "optimizer": dict(OPTIMIZERS[opt]),
            "batch_size": batch,
            "epochs": epochs,
            "seed": 0,
            "dtype": "float32",
        },
        "export": {"opset": 18},
    }
    return yaml.safe_dump(spec, sort_keys=False)


def _nnspec_network(model_name: str, opt: str = "adam", batch: int = 64, epochs: int = 1):
    import nnspec

    spec = nnspec.load_spec(nnspec_spec_text(model_name, opt, batch, epochs))
    return spec, nnspec.build_network(spec)


def nnspec_train(task: dict, case: dict) -> dict:
    from nnspec.data.core import Dataset, builtin_info
    from nnspec.training.loop import fit

    m = MODELS[case["model"]]
    x, y = _load(task, m.name)
    # One run of warm-up + repeats epochs, as a user trains (the optimizer's state carries on
    # from epoch to epoch, as in the PyTorch loop); each epoch's time is the trainer's own
    # record of it, which leaves out the run's one-time setup.
    epochs = task["warmup"] + task["repeats"]
    _, net = _nnspec_network(m.name, case["opt"], case["batch"], epochs)
    data = Dataset(x, y, builtin_info(m.builtin, None, m.task), "bench")
    history = fit(net, data, None, progress=False)
    seconds = [row["seconds"] for row in history.epochs]
    out = _rate_result(len(x), seconds[task["warmup"] :])
    out["params"] = net.param_count()
    return out


def nnspec_infer(task: dict, case: dict) -> dict:
    import numpy as np
    import onnxruntime as ort

    import nnspec

    m = MODELS[case["model"]]
    x, _ = _load(task, m.name)

    def compile_():
        _, network = _nnspec_network(m.name)
        return network, nnspec.export(network)

    times = _timed(compile_, 1, task["repeats"])  # the first call pays lazy imports
    compile_s = statistics.median(times)
    net, model = compile_()
    data = model.SerializeToString()
    # For the PyTorch worker, which times this graph and its own in one process, alternately.
    _nnspec_onnx_path(task, m.name).write_bytes(data)
    sess = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    rows = {}
    for batch in task["batches"]:
        xb = np.ascontiguousarray(np.resize(x, (batch, x.shape[1])), dtype=np.float32)
        feed_x = xb.reshape(batch, *m.image) if m.image and len(inp.shape) == 4 else xb
        feed = {inp.name: feed_x}
        rows[str(batch)] = {
            "nnspec_onnx": _call_rate(
                lambda feed=feed: sess.run(None, feed), batch, task["min_time"], task["repeats"]
            ),
            "numpy": _call_rate(
                lambda xb=xb: net.predict(xb), batch, task["min_time"], task["repeats"]
            ),
        }
    return {"batches": rows, "spec_to_onnx_s": compile_s}


def _nnspec_onnx_path(task: dict, model: str):
    from pathlib import Path

    return Path(task["data"][model]).with_suffix(".nnspec.onnx")


def _alternating_rates(fns: dict, batch: int, min_time: float, repeats: int) -> dict:
    """``_call_rate`` of several callables, taken in turns within each repeat: two ONNX graphs
    compared this way share the machine's state (clock, caches, neighbours) run for run, which
    separate processes minutes apart do not."""
    for fn in fns.values():
        fn()
        fn()
    rates: dict = {k: [] for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            rates[k].append(_rate(fn, batch, min_time))
    return {k: {"samples_per_s": statistics.median(r), "rates": r} for k, r in rates.items()}


# -- PyTorch -------------------------------------------------------------------------------
def torch_model(model_name: str):
    """The same architecture and initialization scale as nnspec's ``auto`` initializer: He
    uniform for ReLU layers, Glorot uniform otherwise, zero biases. Ends in logits (softmax is
    fused into the cross-entropy loss, as in nnspec)."""
    import torch
    from torch import nn

    m = MODELS[model_name]
    mods: list = []
    shape = m.image or (m.inputs,)
    for la in m.layers:
        if la[0] == "dense":
            fan_in = shape[0] if len(shape) == 1 else shape[0] * shape[1] * shape[2]
            lin = nn.Linear(fan_in, la[1])
            _init(lin, la[2])
            mods.append(lin)
            if la[2] in ("relu", "logistic"):
                mods.append(nn.ReLU() if la[2] == "relu" else nn.Sigmoid())
            shape = (la[1],)
        elif la[0] == "conv":
            conv = nn.Conv2d(shape[0], la[1], la[2])
            _init(conv, la[3])
            mods.append(conv)
            mods.append(nn.ReLU() if la[3] == "relu" else nn.Sigmoid())
            shape = (la[1], shape[1] - la[2] + 1, shape[2] - la[2] + 1)
        elif la[0] == "pool":
            mods.append(nn.MaxPool2d(la[1]))
            shape = (shape[0], shape[1] // la[1], shape[2] // la[1])
        else:
            mods.append(nn.Flatten())
            shape = (shape[0] * shape[1] * shape[2],)
    torch.manual_seed(0)
    return nn.Sequential(*mods)


def _init(layer, act: str) -> None:
    from torch import nn

    if act == "relu":
        nn.init.kaiming_uniform_(layer.weight, nonlinearity="relu")
    else:
        nn.init.xavier_uniform_(layer.weight)
    nn.init.zeros_(layer.bias)


def _torch_setup(task: dict):
    import torch

    torch.set_num_threads(task["threads"])
    return torch


def torch_train(task: dict, case: dict) -> dict:
    torch = _torch_setup(task)
    m = MODELS[case["model"]]
    x, y = _load(task, m.name)
    net = torch_model(m.name)
    xt = torch.from_numpy(x)
    if m.image:
        xt = xt.reshape(len(x), *m.image)
    if m.task == "classification":
        yt = torch.from_numpy(y).long()
        loss_fn = torch.nn.CrossEntropyLoss()
    else:
        yt = torch.from_numpy(y.reshape(len(y), -1))
        loss_fn = torch.nn.MSELoss()
    o = OPTIMIZERS[case["opt"]]
    if o["kind"] == "sgd":
        opt = torch.optim.SGD(net.parameters(), lr=o["lr"], momentum=o["momentum"])
    else:
        opt = torch.optim.Adam(net.parameters(), lr=o["lr"])
    n, bs = len(xt), case["batch"]

    def epoch():
        perm = torch.randperm(n)
        total = 0.0
        for i in range(0, n, bs):
            idx = perm[i : i + bs]
            xb, yb = xt[idx], yt[idx]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(net(xb), yb)
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        return total

    times = _timed(epoch, task["warmup"], task["repeats"])
    out = _rate_result(n, times)
    out["params"] = sum(p.numel() for p in net.parameters())
    return out


def torch_infer(task: dict, case: dict) -> dict:
    import io
    import warnings

    import numpy as np
    import onnxruntime as ort

    torch = _torch_setup(task)
    m = MODELS[case["model"]]
    x, _ = _load(task, m.name)
    body = torch_model(m.name).eval()
    classify = m.task == "classification"

    class Head(torch.nn.Module):
        """What nnspec's exported graph returns: probabilities and label (or prediction)."""

        def __init__(self):
            super().__init__()
            self.body = body

        def forward(self, v):
            z = self.body(v)
            if not classify:
                return z
            p = torch.softmax(z, dim=1)
            return p, torch.argmax(p, dim=1)

    head = Head().eval()
    shape = (1, *m.image) if m.image else (1, m.inputs)
    f = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            head,
            (torch.zeros(shape),),
            f,
            opset_version=18,
            input_names=["x"],
            dynamic_axes={"x": {0: "batch"}},
            dynamo=False,
        )
    sess = ort.InferenceSession(f.getvalue(), providers=["CPUExecutionProvider"])
    nn_path = _nnspec_onnx_path(task, m.name)
    nn_sess = (
        ort.InferenceSession(nn_path.read_bytes(), providers=["CPUExecutionProvider"])
        if nn_path.exists()
        else None
    )
    rows = {}
    for batch in task["batches"]:
        xb = np.ascontiguousarray(np.resize(x, (batch, x.shape[1])), dtype=np.float32)
        if m.image:
            xb = xb.reshape(batch, *m.image)
        xt = torch.from_numpy(xb)

        def eager(xt=xt):
            with torch.inference_mode():
                return head(xt)

        graphs = {"torch_onnx": lambda xb=xb: sess.run(None, {"x": xb})}
        if nn_sess is not None:
            nn_feed = {nn_sess.get_inputs()[0].name: xb}
            graphs["nnspec_onnx"] = lambda feed=nn_feed: nn_sess.run(None, feed)
        rows[str(batch)] = {
            **_alternating_rates(graphs, batch, task["min_time"], task["repeats"]),
            "torch_eager": _call_rate(eager, batch, task["min_time"], task["repeats"]),
        }
    return {"batches": rows}


# -- scikit-learn --------------------------------------------------------------------------
def sklearn_train(task: dict, case: dict) -> dict:
    import warnings

    from sklearn.neural_network import MLPClassifier, MLPRegressor

    m = MODELS[case["model"]]
    x, y = _load(task, m.name)
    sizes, act = m.hidden()
    o = OPTIMIZERS[case["opt"]]
    cls = MLPClassifier if m.task == "classification" else MLPRegressor
    est = cls(
        hidden_layer_sizes=sizes,
        activation=act,
        solver=o["kind"],
        batch_size=case["batch"],
        learning_rate_init=o["lr"],
        momentum=o.get("momentum", 0.9),
        nesterovs_momentum=False,
        alpha=0.0,
        max_iter=1,
        shuffle=True,
        random_state=0,
        warm_start=True,  # each fit() after the first is one more epoch, no re-initialization
        tol=0.0,
        n_iter_no_change=10**9,
    )
    yy = y if m.task == "classification" else y.ravel()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning after max_iter=1
        times = _timed(lambda: est.fit(x, yy), task["warmup"], task["repeats"])
    out = _rate_result(len(x), times)
    out["params"] = int(sum(w.size for w in est.coefs_) + sum(b.size for b in est.intercepts_))
    out["dtype"] = str(est.coefs_[0].dtype)
    return out


# -- machine -------------------------------------------------------------------------------
def gemm_peak(task: dict) -> dict:
    """Best float32 GEMM rate of NumPy's BLAS on square matrices (2 n^3 FLOPs each)."""
    import numpy as np

    n = task["gemm_n"]
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    c = np.empty((n, n), dtype=np.float32)
    times = _timed(lambda: np.matmul(a, b, out=c), 2, task["repeats"] + 3)
    out = {"n": n, "gflops": 2 * n**3 / min(times) / 1e9, "median_gflops": 2 * n**3 / 1e9}
    out["median_gflops"] /= statistics.median(times)
    try:
        from threadpoolctl import threadpool_info

        out["threadpools"] = [
            {k: p.get(k) for k in ("user_api", "internal_api", "version", "num_threads")}
            | {"architecture": p.get("architecture")}
            for p in threadpool_info()
        ]
    except ImportError:
        out["threadpools"] = None
    return out


def memory(task: dict) -> dict:
    """Peak RSS of one process that loads the data, builds the dbn and trains one epoch."""
    case = task["cases"][0]
    _load(task, case["model"])  # data and imports first: "before" is the baseline to train
    if task["peer"] == "nnspec":
        import nnspec.training.loop  # noqa: F401

        before = vm_status()
        r = nnspec_train(task, case)
    else:
        _torch_setup(task)
        before = vm_status()
        r = torch_train(task, case)
    after = vm_status()
    return {"before_MiB": before.get("VmRSS"), "peak_MiB": after.get("VmHWM"), "train": r}


def main(argv: list[str]) -> int:
    with open(argv[0]) as f:
        task = json.load(f)
    peer, kind = task["peer"], task["kind"]
    result: dict = {"peer": peer, "kind": kind, "pid": os.getpid(), "cases": {}}
    try:
        if kind == "gemm":
            result["gemm"] = gemm_peak(task)
        elif kind == "memory":
            result["memory"] = memory(task)
        else:
            fn = {
                ("nnspec", "train"): nnspec_train,
                ("torch", "train"): torch_train,
                ("sklearn", "train"): sklearn_train,
                ("nnspec", "infer"): nnspec_infer,
                ("torch", "infer"): torch_infer,
            }[(peer, kind)]
            for case in task["cases"]:
                result["cases"][case_key(case)] = fn(task, case)
                print(f"[{peer} {kind}] {case_key(case)} done", file=sys.stderr, flush=True)
        result["versions"] = _versions(peer)
    except ImportError as e:
        result["error"] = f"not importable: {e}"
    print(json.dumps(result))
    return 0


def _versions(peer: str) -> dict:
    mods = {"nnspec": ["nnspec", "numpy", "onnxruntime", "onnx"], "torch": ["torch"]}
    mods["sklearn"] = ["sklearn"]
    out = {}
    for name in mods.get(peer, ["numpy"]):
        mod = sys.modules.get(name)
        if mod is not None:
            out[name] = getattr(mod, "__version__", "?")
    return out


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
