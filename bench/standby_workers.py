#!/usr/bin/env python3
"""Time per HANG with standby workers: a killed worker swapped for a started one.

    python3 bench/standby_workers.py --convguard build/convguard [--hangs 6] \\
        [--standby 0,1,2,3] [--backends reference,torch] [--python /usr/bin/python3] \\
        [--confirm in-place,fresh]

With `--confirm-fresh` each HANG kills two workers (the first attempt's, then the
confirmation's); by default a problem that is its worker's first (here every one after
the first kill) is confirmed in place and kills one. Each killed worker needs a fresh one:
a C++ worker starts in milliseconds, a PyTorch worker imports torch (a second or more on
a CPU, several on a GPU host that also initialises CUDA). For each backend, confirmation
mode and standby count, one worker (`--workers 1`) sweeps `--hangs` problems that all
spin (fault rule `spin when c == 16`) and, separately, one OK problem (the fixed cost of
starting the pool); per HANG = (wall of the hang sweep - wall of the OK sweep) / hangs.
Deadline floor 300 ms, confirmation floor 1000 ms: the watchdog's own part of a HANG is
then about 1.3 s, whatever the worker. Prints one JSON object per run, then a table.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time


def sweep(args, backend, standby, confirm, grid, rules, db):
    cmd = [args.convguard, "sweep", "--backend", backend, "--inject", rules, "--db", db,
           "--grid", grid, "--workers", "1", "--standby", str(standby), "--deadline-floor",
           "300", "--confirm-floor", "1000", "--quiet"]
    if confirm == "fresh":
        cmd.append("--confirm-fresh")
    if backend == "torch":
        cmd += ["--python", args.python]
    start = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if p.returncode != 0:
        sys.exit(f"sweep failed ({p.returncode}): {' '.join(cmd)}\n{p.stderr[-2000:]}")
    return wall, p.stdout.count("| HANG |")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--convguard", required=True)
    parser.add_argument("--hangs", type=int, default=6)
    parser.add_argument("--standby", default="0,1,2,3")
    parser.add_argument("--backends", default="reference,torch")
    parser.add_argument("--python", default="/usr/bin/python3")
    parser.add_argument("--confirm", default="in-place,fresh",
                        help="confirmation modes: in-place (the default), fresh (--confirm-fresh)")
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="convguard-standby-bench-")
    rules = os.path.join(work, "spin.rules")
    with open(rules, "w") as f:
        f.write("spin when c == 16\n")
    ks = ",".join(str(8 * (i + 1)) for i in range(args.hangs))
    rows = []
    for confirm in args.confirm.split(","):
        if confirm not in ("in-place", "fresh"):
            sys.exit(f"--confirm: '{confirm}' (allowed: in-place, fresh)")
    for backend in args.backends.split(","):
        for confirm in args.confirm.split(","):
            for standby in [int(s) for s in args.standby.split(",")]:
                tag = f"{backend}-{confirm}-{standby}"
                ok_wall, _ = sweep(args, backend, standby, confirm, "c=8 k=8 hw=8 r=3", rules,
                                   os.path.join(work, tag + "-ok.sqlite"))
                wall, hangs = sweep(args, backend, standby, confirm, f"c=16 k={ks} hw=8 r=3",
                                    rules, os.path.join(work, tag + "-hang.sqlite"))
                if hangs != args.hangs:
                    sys.exit(f"{tag}: {hangs} HANG verdicts, expected {args.hangs}")
                row = {"backend": backend, "confirm": confirm, "standby": standby,
                       "ok_sweep_s": round(ok_wall, 2), "hang_sweep_s": round(wall, 2),
                       "per_hang_s": round((wall - ok_wall) / args.hangs, 2)}
                print(json.dumps(row), flush=True)
                rows.append(row)
    print()
    print("| backend | confirmation | standby workers | one OK problem | "
          f"{args.hangs} hangs | per HANG |")
    print("| --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r['backend']} | {r['confirm']} | {r['standby']} | {r['ok_sweep_s']} s | "
              f"{r['hang_sweep_s']} s | **{r['per_hang_s']} s** |")


if __name__ == "__main__":
    main()
