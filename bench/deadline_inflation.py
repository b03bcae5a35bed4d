#!/usr/bin/env python3
"""Time to decide N hangs after M slow-but-OK problems: do slow problems stretch the
deadlines of the hangs that follow?

    python3 bench/deadline_inflation.py --convguard build/convguard \\
        [--convguard /path/to/older/convguard ...] [--slow 8] [--hangs 4] [--sleep-ms 150]

For each binary, two sweeps on the reference backend under fault rules (in fresh stores):
a list of 24 ordinary problems, then M problems whose every run sleeps `--sleep-ms`
before computing (OK, but slow), then N problems that spin forever (HANG); and the same
list without the sleeping rule. Deadline floor 1000 ms, confirmation floor 1 ms (the
confirmation deadline is then 3x the first). Prints, per binary and sweep, the wall time
of the whole sweep, the HANG verdicts' deadlines (the confirmation's) and the time spent
waiting on them, as one JSON object per line, then a Markdown table.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time


def problems(slow, hangs):
    lines = [f"n1_c4_h16_w16_k{k}_r3_s3_p1" for k in range(4, 100, 4)]
    lines += [f"n1_c8_h16_w16_k{8 * (i + 1)}_r3_s3_p1" for i in range(slow)]
    lines += [f"n1_c24_h16_w16_k{8 * (i + 1)}_r3_s3_p1" for i in range(hangs)]
    return "\n".join(lines) + "\n"


def sweep(binary, work, name, rules_text, listing, sleep_ms):
    rules = os.path.join(work, name + ".rules")
    db = os.path.join(work, name + ".sqlite")
    with open(rules, "w") as f:
        f.write(rules_text)
    start = time.perf_counter()
    p = subprocess.run([binary, "sweep", "--backend", "reference", "--inject", rules, "--list",
                        listing, "--db", db, "--deadline-floor", "1000", "--confirm-floor", "1",
                        "--quiet"], capture_output=True, text=True)
    wall = time.perf_counter() - start
    if p.returncode != 0:
        sys.exit(f"{binary} sweep failed ({p.returncode}): {p.stderr[-2000:]}")
    out = subprocess.run([binary, "db", "export", "--db", db], capture_output=True, text=True,
                         check=True).stdout
    verdicts = [json.loads(line) for line in out.splitlines()
                if line and json.loads(line).get("type") == "verdict"]
    hangs = [v for v in verdicts if v["kind"] == "HANG"]
    slow_ok = [v for v in verdicts if "_c8_" in v["problem"] and v["kind"] == "OK"
               and v["time_ms_median"] >= sleep_ms]
    return {"binary": binary, "sweep": name, "wall_s": round(wall, 1),
            "hangs": len(hangs), "slow_problems_ok": len(slow_ok),
            "hang_deadlines_ms": sorted(round(v["deadline_ms"]) for v in hangs),
            "hang_wait_s": round(sum(v["elapsed_ms"] for v in hangs) / 1e3, 1)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--convguard", action="append", required=True,
                        help="a convguard binary (repeat to compare builds side by side)")
    parser.add_argument("--slow", type=int, default=8)
    parser.add_argument("--hangs", type=int, default=4)
    parser.add_argument("--sleep-ms", type=int, default=150)
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="convguard-deadline-bench-")
    listing = os.path.join(work, "problems.list")
    with open(listing, "w") as f:
        f.write(problems(args.slow, args.hangs))
    spin = "spin when c == 24\n"
    rows = []
    for binary in args.convguard:
        for name, rules in (("with-slow", f"slow({args.sleep_ms}) when c == 8\n" + spin),
                            ("without", spin)):
            tag = f"{len(rows)}-{name}"
            row = sweep(binary, work, tag, rules, listing, args.sleep_ms)
            row["sweep"] = name
            print(json.dumps(row), flush=True)
            rows.append(row)
    print()
    print(f"| binary | sweep | wall | HANG deadlines (confirmation, ms) | waiting on {args.hangs} "
          "hangs |")
    print("| --- | --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r['binary']} | {r['sweep']} ({r['slow_problems_ok']} slow OK) | "
              f"{r['wall_s']} s | {', '.join(map(str, r['hang_deadlines_ms']))} | "
              f"{r['hang_wait_s']} s |")


if __name__ == "__main__":
    main()
