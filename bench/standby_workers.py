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

That subtraction assumes the OK sweep's fixed cost is the hang sweep's; for a worker
whose start is slow it is not (the OK sweep also waits for its standby workers at exit),
so each run also times the HANG verdicts as they are printed (`--verbose`) and reports
the steady cost: (time of the last HANG - time of the first) / (hangs - 1). With
`--standby default` no --standby flag is passed (the engine's default: one, growing).
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time


def sweep(args, backend, standby, confirm, grid, rules, db):
    """Runs one sweep; returns its wall time, its HANG count and when (seconds after the
    start) each HANG verdict was printed."""
    cmd = [args.convguard, "sweep", "--backend", backend, "--inject", rules, "--db", db,
           "--grid", grid, "--workers", "1", "--deadline-floor", "300", "--confirm-floor",
           "1000", "--verbose"]
    if standby != "default":
        cmd += ["--standby", standby]
    if confirm == "fresh":
        cmd.append("--confirm-fresh")
    if backend == "torch":
        cmd += ["--python", args.python]
    start = time.perf_counter()
    hang_times = []
    stderr_tail = []
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as p:
        # --verbose prints each verdict on stderr as it is decided ("[2/6] HANG ...").
        for line in p.stderr:
            if "] HANG " in line:
                hang_times.append(time.perf_counter() - start)
            stderr_tail = (stderr_tail + [line])[-20:]
        out = p.stdout.read()
    wall = time.perf_counter() - start
    if p.returncode != 0:
        sys.exit(f"sweep failed ({p.returncode}): {' '.join(cmd)}\n{''.join(stderr_tail)}")
    return wall, out.count("| HANG |"), hang_times


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--convguard", required=True)
    parser.add_argument("--hangs", type=int, default=6)
    parser.add_argument("--standby", default="0,1,2,3",
                        help="standby counts, comma-separated; 'default' passes none")
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
            for standby in args.standby.split(","):
                if standby != "default" and not standby.isdigit():
                    sys.exit(f"--standby: '{standby}' (allowed: counts, or 'default')")
                tag = f"{backend}-{confirm}-{standby}"
                ok_wall, _, _ = sweep(args, backend, standby, confirm, "c=8 k=8 hw=8 r=3",
                                      rules, os.path.join(work, tag + "-ok.sqlite"))
                wall, hangs, times = sweep(args, backend, standby, confirm,
                                           f"c=16 k={ks} hw=8 r=3", rules,
                                           os.path.join(work, tag + "-hang.sqlite"))
                if hangs != args.hangs or len(times) != args.hangs:
                    sys.exit(f"{tag}: {hangs} HANG verdicts ({len(times)} printed), "
                             f"expected {args.hangs}")
                row = {"backend": backend, "confirm": confirm, "standby": standby,
                       "ok_sweep_s": round(ok_wall, 2), "hang_sweep_s": round(wall, 2),
                       "per_hang_s": round((wall - ok_wall) / args.hangs, 2),
                       "hang_times_s": [round(t, 2) for t in times],
                       "steady_per_hang_s": (round((times[-1] - times[0]) / (len(times) - 1), 2)
                                             if len(times) > 1 else None)}
                print(json.dumps(row), flush=True)
                rows.append(row)
    print()
    print("| backend | confirmation | standby workers | one OK problem | "
          f"{args.hangs} hangs | per HANG (subtracted) | per HANG after the first |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        steady = r["steady_per_hang_s"]
        print(f"| {r['backend']} | {r['confirm']} | {r['standby']} | {r['ok_sweep_s']} s | "
              f"{r['hang_sweep_s']} s | {r['per_hang_s']} s | "
              f"**{steady if steady is not None else '-'} s** |")


if __name__ == "__main__":
    main()
