#!/usr/bin/env python3
"""What a fixed model costs in onnxruntime against its original, per model.

For every ONNX model of a folder (the zoo: build/zoo after ctest), convguard fixes it on a
stack (`convguard fix MODEL -o FIXED --probe`, default the emulated RDNA1 stack, whose
hangs make ResNet-18 and ResNet-50 need rewrites); a model that runs as is has nothing to
fix and is timed against itself (two sessions of one file), which shows the noise. Then
both models run in onnxruntime (CPU execution provider, ORT_ENABLE_ALL, the same random
input), one inference of each per round, which one first alternating between rounds,
after warm-up rounds; the medians are reported with their ratio (fixed / original).

usage: build/venv/bin/python bench/ort_runtime.py --zoo DIR --convguard BIN
           [--backend NAME] [--rounds N] [--warmup N] [--threads N] [--model NAME]...

Defaults: 100 rounds after 3 warm-up rounds, one onnxruntime thread.

Run it under the venv's interpreter (onnxruntime from PyPI); scripts/setup.sh makes it.
"""

import argparse
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "scripts"))
import ort_compare  # noqa: E402  (the same sessions and inputs as the correctness check)


def fix(convguard, model, fixed, backend, db):
    """Fixes `model` into `fixed`; the path to time (the original when nothing was fixed)."""
    done = subprocess.run([convguard, "fix", str(model), "-o", str(fixed), "--backend", backend,
                           "--probe", "--quiet", "--db", str(db)],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if done.returncode == 0:
        return fixed if fixed.exists() else model
    sys.exit(f"ort_runtime: convguard fix {model} ended with {done.returncode}: "
             f"{done.stderr.strip()[:400]}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--zoo", required=True, help="folder of ONNX models")
    parser.add_argument("--convguard", required=True, help="the convguard binary")
    parser.add_argument("--backend", default="emulated-rdna1", help="stack to fix for")
    parser.add_argument("--rounds", type=int, default=100, help="timed rounds (100)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed rounds first (3)")
    parser.add_argument("--threads", type=int, default=1,
                        help="onnxruntime intra-op threads (1: with more, two sessions of one "
                             "file differed by up to 1.7x on a 2-core host)")
    parser.add_argument("--model", action="append", default=[], help="only this model (stem)")
    args = parser.parse_args()
    if args.rounds < 1 or args.warmup < 0 or args.threads < 1:
        sys.exit("ort_runtime: --rounds and --threads take numbers >= 1, --warmup >= 0")

    models = sorted(p for p in pathlib.Path(args.zoo).glob("*.onnx")
                    if not p.stem.endswith("-dynamic") and (not args.model or p.stem in args.model))
    if not models:
        sys.exit(f"ort_runtime: no ONNX models in {args.zoo}")
    ort = ort_compare.ort
    print(f"ort_runtime: onnxruntime {ort.__version__}, {args.threads} threads, "
          f"{args.rounds} rounds after {args.warmup}, medians in ms; fixed for {args.backend}")
    print("| model | rewritten | original | fixed | fixed / original |")
    print("| --- | --- | --- | --- | --- |")
    with tempfile.TemporaryDirectory(prefix="ort-runtime-") as work:
        work = pathlib.Path(work)
        for model in models:
            fixed = fix(args.convguard, model, work / (model.stem + ".fixed.onnx"),
                                args.backend, work / "verdicts.sqlite")
            rewritten = "no" if fixed == model else "yes"
            sessions = [ort_compare.load_session(p, role, None, args.threads, "all")
                        for p, role in ((model, "original"), (fixed, "fixed"))]
            feed = ort_compare.make_feed(sessions[0], "random", 0)
            times = ([], [])
            for r in range(args.warmup + args.rounds):
                # Which goes first alternates, so that neither always runs with the other's
                # data in the caches.
                for i in ((0, 1) if r % 2 == 0 else (1, 0)):
                    session = sessions[i]
                    start = time.perf_counter()
                    session.run(None, feed)
                    if r >= args.warmup:
                        times[i].append((time.perf_counter() - start) * 1e3)
            original, repaired = (statistics.median(t) for t in times)
            print(f"| {model.stem} | {rewritten} | {original:.2f} | {repaired:.2f} | "
                  f"{repaired / original:.3f} |", flush=True)


if __name__ == "__main__":
    main()
