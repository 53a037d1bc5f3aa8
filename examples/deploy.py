"""Deploy an exported model with nnspec_runtime alone (NumPy and onnxruntime, no nnspec):
on the GPU where onnxruntime-gpu can use one, else on the CPU.

    python examples/deploy.py MODEL.onnx [--device auto|cpu|cuda]

It opens the model, says where it runs (and, with ``auto``, why not on the GPU), predicts a
few rows, keeps a batch on the device through IOBinding, and times both ways. With torch
installed, the batch goes in as a torch tensor and the probabilities come back as one,
without copies (DLPack).
"""

from __future__ import annotations

import argparse

import numpy as np

from nnspec_runtime import DeviceError, Model
from nnspec_runtime.bench import measure


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("model")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--batch", type=int, default=4096)
    args = p.parse_args()

    try:
        model = Model(args.model, device=args.device, use_tf32=False)
    except DeviceError as e:  # device="cuda" without a usable GPU: the reason, not a traceback
        print(f"cannot run on CUDA: {e}")
        return 2
    print(f"{args.model}: {model.device} ({model.provider}), input {model.input_shape}")
    if model.fallback:
        print(f"  not on the GPU because {model.fallback}")

    rng = np.random.default_rng(0)
    rows = rng.standard_normal((3, *model.input_shape), dtype=np.float32)
    pred = model.predict(rows)
    if pred.labels is not None:  # classification
        print(f"  3 rows -> {list(pred.labels)}")
    elif pred.values is not None:  # regression
        print(f"  3 rows -> {pred.values.ravel().round(3).tolist()}")

    # A batch kept on the device: bound once, run many times, outputs left there.
    x = rng.standard_normal((args.batch, *model.input_shape), dtype=np.float32)
    bound = model.bind(x, keep_on_device=True)
    first = next(iter(bound.run().values()))
    print(f"  bound {args.batch} rows in runs of {bound.chunks}: {first.device_name()} output")

    for path in ("run", "iobinding"):
        r = measure(model, args.batch, path, repeats=10, warmup=2)
        print(f"  {path:<9} {r.throughput:>12,.0f} samples/s, p50 {r.latency_ms(50):.2f} ms")

    try:
        import torch  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        return 0
    where = "cuda" if model.device == "cuda" else "cpu"
    xt = torch.from_numpy(x).to(where)
    if where == "cuda":
        torch.cuda.synchronize()  # torch's copy runs on its own stream
    out = model.bind(xt, keep_on_device=True).run()
    name = "probabilities" if "probabilities" in out else model.output_names[0]
    probs = torch.from_dlpack(out[name])
    print(f"  torch in, torch out: {tuple(probs.shape)} on {probs.device}, no copies")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
