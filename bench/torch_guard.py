#!/usr/bin/env python3
"""A guarded training step on a real GPU, and what guarding costs.

    CONVGUARD_BIN=build-gpu/convguard PYTHONPATH=python \\
        python3 bench/torch_guard.py --model seed|resnet50 [--steps 20] [--device cuda]

1. Under fault rules that make the real CUDA kernels of some layers spin (the torch
   backend's injection: the worker launches a kernel that never finishes), scan the model
   for training, guard it, and run one training step: it completes, and every
   convolution that reached PyTorch, forward and backward, is one the scan found OK.
2. On the healthy stack (the same GPU without rules), time training steps of the guarded
   model against the unguarded one, side by side in one process: median ms per step and
   the ratio.

Prints one JSON object per section. Exit status 1 when a check fails.
"""

import argparse
import copy
import json
import os
import statistics
import sys
import tempfile
import time

import torch
import torch.nn as nn

import convguard.torch as cgt

RULES = {
    # The seed report's layer; and ResNet-50's layer1 3x3 convolutions.
    "seed": "spin when direction == fwd && c == 16 && k == 32 && h > 32\n",
    "resnet50": "spin when direction == fwd && c == 64 && k == 64 && r == 3\n",
}


def build(name):
    if name == "seed":
        return nn.Sequential(nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(),
                             nn.Conv2d(32, 16, 3, padding=1)), (8, 16, 64, 64)
    import torchvision

    return torchvision.models.resnet50(num_classes=100), (16, 3, 224, 224)


def step_time(model, x, optimizer, steps):
    times = []
    for i in range(steps + 3):
        torch.cuda.synchronize()
        start = time.perf_counter()
        optimizer.zero_grad()
        model(x).float().square().mean().backward()
        optimizer.step()
        torch.cuda.synchronize()
        if i >= 3:
            times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=sorted(RULES), default="seed")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--db", default=None)
    parser.add_argument("--option", action="append", default=[],
                        help="a further `convguard scan` flag (repeat), e.g. "
                             "--option=--confirm-floor --option=800")
    parser.add_argument("--quiet", action="store_true", help="no probing progress")
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.manual_seed(0)
    model, shape = build(args.model)
    model = model.to(device)
    x = torch.randn(*shape, device=device)
    tmp = tempfile.mkdtemp(prefix="convguard-torch-bench-")
    rules = os.path.join(tmp, "spin.rules")
    with open(rules, "w") as f:
        f.write(RULES[args.model])
    db = args.db or os.path.join(tmp, "verdicts.sqlite")
    reference = copy.deepcopy(model)

    start = time.perf_counter()
    report = cgt.scan(model, x, backend="torch", db=db, inject=rules, quiet=args.quiet,
                      options=args.option)
    scanned = time.perf_counter() - start
    model, changes = cgt.guard(model, x, report=report)
    guarded = [str(c) for c in changes if c.action == "guarded"]
    checked = cgt.verify(model, x, report)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    start = time.perf_counter()
    optimizer.zero_grad()
    model(x).float().square().mean().backward()
    optimizer.step()
    torch.cuda.synchronize()
    first_step = time.perf_counter() - start
    hangs = sorted({p.problem for layer in report.layers for p in layer.problems
                    if p.verdict == "HANG"})
    print(json.dumps({"section": "guarded training step under spinning kernels",
                      "model": args.model, "device": torch.cuda.get_device_name(device),
                      "torch": torch.__version__, "scan_s": round(scanned, 1),
                      "hang_verdicts": hangs, "guarded": guarded,
                      "step_completed_s": round(first_step, 3),
                      "reached_torch": len(checked.recorded),
                      "not_known_ok": checked.unexpected}, indent=1))
    ok = bool(hangs) and bool(guarded) and checked.ok

    # Healthy stack: the same plans, real kernels, side by side.
    model_opt = torch.optim.SGD(model.parameters(), lr=0.0)
    ref_opt = torch.optim.SGD(reference.parameters(), lr=0.0)
    plain = step_time(reference, x, ref_opt, args.steps)
    guarded_ms = step_time(model, x, model_opt, args.steps)
    plain_again = step_time(reference, x, ref_opt, args.steps)
    print(json.dumps({"section": "training step, guarded vs unguarded (healthy stack)",
                      "model": args.model, "batch": shape[0], "unguarded_ms": round(plain, 3),
                      "guarded_ms": round(guarded_ms, 3),
                      "unguarded_again_ms": round(plain_again, 3),
                      "ratio": round(guarded_ms / min(plain, plain_again), 3)}, indent=1))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
