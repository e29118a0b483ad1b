"""CNN training and inference throughput on this machine, per architecture, input size and CPU setting.

    python scripts/bench_cnn_speed.py --arch resnet --width 0.5 --sizes 96 128 160 --threads 1 2
    python scripts/bench_cnn_speed.py --arch resnet --width 0.5 --sizes 128 --channels-last --compile --bf16
    python scripts/bench_cnn_speed.py --stems pool fine --sizes 128 256 --threads 2 --channels-last

Random input, batch 50; prints images/s for a training step (forward, backward, Adam) and for an
eval forward pass, with the process CPU time and the load average so shared-machine numbers stay
interpretable.
"""
from __future__ import annotations

import argparse
import itertools
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def measure(arch: str, width: float, depth: int, size: int, threads: int, channels_last: bool, compile_: bool,
            bf16: bool, steps: int, batch: int, stem: str = "pool") -> dict:
    """Images/s of training steps and eval forwards for one setting (after two warm-up steps)."""
    import torch
    import torch.nn.functional as F

    from models.cnn import build_cnn
    from models.config import CNNConfig

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    cnn = build_cnn(CNNConfig(arch=arch, width=width, depth=depth, input_size=size, resize=size, stem=stem), 17)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    cnn = cnn.to(memory_format=fmt)
    model = torch.compile(cnn) if compile_ else cnn
    opt = torch.optim.Adam(cnn.parameters(), lr=1e-3)
    x = torch.randn(batch, 1, size, size).to(memory_format=fmt)
    y = torch.randint(0, 17, (batch,))

    def step() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            logits, _ = model(x)
            loss = F.cross_entropy(logits.float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    cnn.train()
    t_compile = time.perf_counter()
    for _ in range(2):
        step()
    warm = time.perf_counter() - t_compile
    w0, c0 = time.perf_counter(), time.process_time()
    for _ in range(steps):
        step()
    train_wall, train_cpu = time.perf_counter() - w0, time.process_time() - c0
    cnn.eval()
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        model(x)
        w0 = time.perf_counter()
        for _ in range(steps):
            model(x)
        eval_wall = time.perf_counter() - w0
    return {"arch": arch, "stem": stem, "width": width, "depth": depth, "size": size, "threads": threads,
            "channels_last": channels_last, "compile": compile_, "bf16": bf16, "embedding": cnn.embedding_dim,
            "params_M": round(sum(p.numel() for p in cnn.parameters()) / 1e6, 2),
            "train_img_s": round(steps * batch / train_wall, 1), "train_cpu_per_wall": round(train_cpu / train_wall, 2),
            "eval_img_s": round(steps * batch / eval_wall, 1), "warmup_s": round(warm, 1)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--arch", nargs="+", default=["resnet"])
    p.add_argument("--width", type=float, nargs="+", default=[0.5])
    p.add_argument("--depth", type=int, nargs="+", default=[1])
    p.add_argument("--sizes", type=int, nargs="+", default=[128])
    p.add_argument("--stems", nargs="+", default=["pool"], help="resnet stems: pool, patch, fine")
    p.add_argument("--threads", type=int, nargs="+", default=[1])
    p.add_argument("--channels-last", action="store_true", help="also measure NHWC")
    p.add_argument("--compile", action="store_true", help="also measure torch.compile")
    p.add_argument("--bf16", action="store_true", help="also measure bfloat16 autocast")
    p.add_argument("--steps", type=int, default=6)
    p.add_argument("--batch", type=int, default=50)
    args = p.parse_args(argv)
    print(f"load average {os.getloadavg()}, {os.cpu_count()} CPUs")
    variants = itertools.product(args.arch, args.stems, args.width, args.depth, args.sizes, args.threads,
                                 [False, True] if args.channels_last else [False],
                                 [False, True] if args.compile else [False], [False, True] if args.bf16 else [False])
    for arch, stem, width, depth, size, threads, cl, comp, bf16 in variants:
        if arch != "resnet" and (depth != args.depth[0] or stem != args.stems[0]):
            continue
        print(measure(arch, width, depth, size, threads, cl, comp, bf16, args.steps, args.batch, stem), flush=True)
    print(f"load average {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
