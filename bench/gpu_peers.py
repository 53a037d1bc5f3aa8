"""Same-run peers for the exported DBN in the GPU proof: a hand-built ONNX graph of the same
784-500-500-2000-10 network, and PyTorch, both with the exported model's own weights.

Issue 6 gives, for orientation, a hand-built graph of this network at about 3.8 M samples/s
with NumPy inputs and 19 M with IOBinding at batch 4096 on an H200; the exported model "must
do at least as well". Numbers from another card or day do not compare, so the hand-built
graph is rebuilt here and timed in the same run, in turns with the exported model: the
ratio is the verdict, the H200 figures are printed beside it.

The hand-built graph is the network alone (Gemm, activation, ..., Softmax: one output), as a
person writing it by hand would; the exported model adds standardization (Sub, Div) and the
label (ArgMax). The two are first checked to compute the same probabilities.
"""

from __future__ import annotations

import numpy as np

# Issue 6, hand-built DBN graph on an H200, batch 4096 (samples/s).
ORIENTATION = {"session": 3.8e6, "iobinding": 19e6}
ACTIVATIONS = {"Sigmoid", "Tanh", "Relu", "Softmax"}


def dense_chain(path) -> dict:
    """The exported MLP as arrays: standardization (mean, scale) and, per Gemm, the weight
    (in, out), bias (out,) and the activation that follows it."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    init = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    nodes = list(model.graph.node)
    pre = {n.op_type: init[n.input[1]] for n in nodes if n.op_type in ("Sub", "Div")}
    layers = []
    for i, node in enumerate(nodes):
        if node.op_type != "Gemm":
            continue
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        if attrs.get("transA") or attrs.get("alpha", 1.0) != 1.0 or attrs.get("beta", 1.0) != 1.0:
            raise ValueError(f"{path}: Gemm {node.name!r} is not a plain x @ W + b")
        w = init[node.input[1]]
        w = w.T if attrs.get("transB") else w
        after = nodes[i + 1].op_type if i + 1 < len(nodes) else None
        if after not in ACTIVATIONS:
            raise ValueError(f"{path}: expected an activation after Gemm, got {after}")
        layers.append((w.astype(np.float32), init[node.input[2]].astype(np.float32), after))
    return {"mean": pre.get("Sub"), "scale": pre.get("Div"), "layers": layers}


def hand_built(chain: dict) -> bytes:
    """The network alone as ONNX (opset 18, IR 8): x -> Gemm -> activation -> ... -> y."""
    from onnx import TensorProto, helper, numpy_helper

    nodes, inits, last = [], [], "x"
    for k, (w, b, act) in enumerate(chain["layers"]):
        inits += [numpy_helper.from_array(w, f"w{k}"), numpy_helper.from_array(b, f"b{k}")]
        nodes.append(helper.make_node("Gemm", [last, f"w{k}", f"b{k}"], [f"z{k}"]))
        last = "y" if k == len(chain["layers"]) - 1 else f"a{k}"
        extra = {"axis": -1} if act == "Softmax" else {}
        nodes.append(helper.make_node(act, [f"z{k}"], [last], **extra))
    n_in, n_out = chain["layers"][0][0].shape[0], chain["layers"][-1][0].shape[1]
    graph = helper.make_graph(
        nodes,
        "hand_built",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", n_in])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", n_out])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=8)
    return model.SerializeToString()


def standardize(chain: dict, x: np.ndarray) -> np.ndarray:
    """What the exported model's Sub and Div do, for feeding the hand-built graph."""
    if chain["mean"] is None:
        return x
    return ((x - chain["mean"]) / chain["scale"]).astype(np.float32)


def session(ort, model, device: str, tf32: bool):
    """A raw onnxruntime session on ``device`` (CUDA alone, as a strict one would be)."""
    options = ort.SessionOptions()
    options.log_severity_level = 3
    if device == "cuda":
        providers = [("CUDAExecutionProvider", {"use_tf32": "1" if tf32 else "0"})]
    else:
        providers = ["CPUExecutionProvider"]
    return ort.InferenceSession(model, options, providers=providers)


def caller(ort, sess, x: np.ndarray, path: str, device: str):
    """A no-argument call: ``session.run`` on NumPy, or a bound run with the input and every
    output on ``device`` (allocated once; only the run is timed)."""
    name = sess.get_inputs()[0].name
    if path == "session":
        feeds = {name: x}
        return lambda: sess.run(None, feeds)
    binding = sess.io_binding()
    binding.bind_ortvalue_input(name, ort.OrtValue.ortvalue_from_numpy(x, device, 0))
    for out in sess.get_outputs():
        binding.bind_output(out.name, device)
    sess.run_with_iobinding(binding)  # outputs allocated once, on the device
    for out, value in zip(sess.get_outputs(), binding.get_outputs(), strict=True):
        binding.bind_ortvalue_output(out.name, value)
    return lambda: sess.run_with_iobinding(binding)


def rate(call, batch: int, *, warmup: int, repeats: int, max_seconds: float, sync=None):
    """Samples/s of the median timed call (``nnspec_runtime.bench.time_calls``)."""
    from nnspec_runtime.bench import time_calls

    times = time_calls(call, repeats=repeats, warmup=warmup, max_seconds=max_seconds, sync=sync)
    return batch / float(np.median(times))


def torch_peer(chain: dict, device: str, tf32: bool):
    """The network in PyTorch on ``device`` (None where torch, or its CUDA, is missing)."""
    try:
        import torch
    except ImportError:
        return None
    if device == "cuda" and not torch.cuda.is_available():
        return None
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32
    acts = {"Sigmoid": torch.nn.Sigmoid, "Tanh": torch.nn.Tanh, "Relu": torch.nn.ReLU}
    mods = []
    for w, b, act in chain["layers"]:
        lin = torch.nn.Linear(*w.shape)
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(np.ascontiguousarray(w.T)))
            lin.bias.copy_(torch.from_numpy(b))
        mods += [lin, torch.nn.Softmax(dim=-1) if act == "Softmax" else acts[act]()]
    net = torch.nn.Sequential(*mods).to(device).eval()
    sync = torch.cuda.synchronize if device == "cuda" else None
    return torch, net, sync


def compare(path, device: str, batches, *, quick: bool, log=print) -> dict:
    """Exported model vs hand-built graph vs PyTorch on the DBN, in turns, same weights."""
    import onnxruntime as ort

    chain = dense_chain(path)
    exported_bytes, hand_bytes = open(path, "rb").read(), hand_built(chain)
    budget = dict(warmup=1 if quick else 3, repeats=5 if quick else 50)
    budget["max_seconds"] = 0.2 if quick else 0.4
    rounds = 1 if quick else 3
    rng = np.random.default_rng(0)
    n_in = chain["layers"][0][0].shape[0]
    block = rng.random((min(max(batches), 1024), n_in), dtype=np.float32)

    # Same network? The exported model on x, the hand-built graph on standardized x.
    ex = session(ort, exported_bytes, device, tf32=False)
    hb = session(ort, hand_bytes, device, tf32=False)
    got = hb.run(None, {"x": standardize(chain, block)})[0]
    want = ex.run(None, {ex.get_inputs()[0].name: block})[0]
    same = float(np.max(np.abs(got - want)))
    out = {"max_abs_diff": same, "same_network": bool(same <= 1e-5), "rows": []}
    log(f"dbn peers: hand-built vs exported probabilities, max abs diff {same:.2e}")

    for tf32 in (True, False) if device == "cuda" else (False,):
        ex = session(ort, exported_bytes, device, tf32)
        hb = session(ort, hand_bytes, device, tf32)
        peer = torch_peer(chain, device, tf32)
        for batch in batches:
            x = np.concatenate([block] * -(-batch // len(block)))[:batch]
            for path_ in ("session", "iobinding"):
                calls = {
                    "exported": (caller(ort, ex, x, path_, device), None),
                    "hand_built": (caller(ort, hb, standardize(chain, x), path_, device), None),
                }
                if peer is not None and path_ == "iobinding":
                    torch, net, sync = peer
                    xt = torch.from_numpy(standardize(chain, x)).to(device)

                    def forward(net=net, xt=xt, torch=torch):
                        with torch.inference_mode():
                            return net(xt)

                    calls["torch"] = (forward, sync)
                # In turns, a few rounds, the median of each: one shared machine's drift
                # then falls on all of them alike.
                rates = {name: [] for name in calls}
                for _ in range(rounds):
                    for name, (call, sync) in calls.items():
                        rates[name].append(rate(call, batch, sync=sync, **budget))
                row = {"batch": batch, "path": path_, "tf32": tf32}
                row.update({name: float(np.median(r)) for name, r in rates.items()})
                out["rows"].append(row)
                log(
                    f"  dbn {device} batch {batch:>6} {path_:<9} tf32 {'on ' if tf32 else 'off'} "
                    f"exported {row['exported']:>13,.0f}  hand-built {row['hand_built']:>13,.0f}"
                    + (f"  torch {row['torch']:>13,.0f}" if "torch" in row else "")
                )
    return out


def markdown(peers: dict, device: str) -> list[str]:
    """The section's lines for ``compare``'s result."""
    lines = [
        "",
        "### The exported DBN against a hand-built graph and PyTorch",
        "",
        "Same run, same weights, timed in turns (the median call, then the median of three "
        "rounds): the exported model (standardization, network, label) against the network "
        "alone as a hand-built ONNX "
        "graph and as a PyTorch module (`inference_mode`, input on the device, synchronized). "
        "`session` is `session.run` on NumPy, `iobinding` keeps inputs and outputs on the "
        f"device. The two graphs' probabilities differ by at most {peers['max_abs_diff']:.1e} "
        "(use_tf32 off). For orientation, issue 6 saw a hand-built graph at "
        f"{ORIENTATION['session'] / 1e6:.1f} M (session) and {ORIENTATION['iobinding'] / 1e6:.0f}"
        " M samples/s (iobinding) at batch 4096 on an H200.",
        "",
        "| batch | path | TF32 | exported | hand-built | exported / hand-built | PyTorch "
        "| exported / PyTorch |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in peers["rows"]:
        tf32 = ("on" if r["tf32"] else "off") if device == "cuda" else ""
        torch = r.get("torch")
        lines.append(
            f"| {r['batch']:,} | {r['path']} | {tf32} | {r['exported']:,.0f} | "
            f"{r['hand_built']:,.0f} | {r['exported'] / r['hand_built']:.2f} | "
            + (f"{torch:,.0f} | {r['exported'] / torch:.2f} |" if torch else "n/a | |")
        )
    return lines
