#!/usr/bin/env python3
"""How many probes an informative sweep needs to map a grid's failures.

    python3 bench/informative_sweep.py --convguard build/convguard [--budgets 10,20,...]

For each stack (the emulated RDNA1 stack, and a rule set of our own on the reference
backend), the whole grid is swept once (the truth). Then, for each budget, a fresh store
is swept with `--order informative --budget N` and with `--budget N` in the given order;
every problem of the grid is then either probed or predicted, and the errors are the
problems whose (probed or predicted) verdict differs from the truth. Prints a Markdown
table per stack.
"""

import argparse
import csv
import io
import os
import subprocess
import sys
import tempfile
import time

GRID = "c=8,16,24,32,48 k=16,24,32,48,64 hw=16,24,32,40,48 r=3 p=same"
QUICK = ["--deadline-floor", "300", "--confirm-floor", "800", "--quiet", "--table", "csv"]
OWN_RULES = ("# a stack of our own: channel counts divisible by 3 hang on large inputs, and\n"
             "# one input width crashes with many filters\n"
             "spin when k % 3 == 0 && h * w >= 1024\n"
             "segv when c == 24 && k >= 32\n")


def sweep(convguard, stack, db, extra):
    args = [convguard, "sweep", "--grid", GRID, "--db", db] + stack + QUICK + extra
    start = time.time()
    run = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         universal_newlines=True)
    if run.returncode != 0:
        sys.exit("sweep failed (%d): %s" % (run.returncode, run.stderr[-2000:]))
    verdicts = {}
    for row in csv.reader(io.StringIO(run.stdout)):
        if len(row) < 4 or not row[0].isdigit():
            continue
        key = (row[0], row[1], row[2])
        verdicts[key] = row[3].replace("PREDICTED ", "")
    return verdicts, time.time() - start


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--convguard", default="build/convguard")
    p.add_argument("--budgets", default="15,25,35,50,75")
    args = p.parse_args()
    tmp = tempfile.mkdtemp(prefix="convguard-informative-")
    rules = os.path.join(tmp, "own.rules")
    with open(rules, "w") as f:
        f.write(OWN_RULES)
    stacks = [("emulated RDNA1", ["--backend", "emulated-rdna1"]),
              ("own rules on the reference", ["--backend", "reference", "--inject", rules])]
    budgets = [int(b) for b in args.budgets.split(",")]
    for name, stack in stacks:
        truth, seconds = sweep(args.convguard, stack, os.path.join(tmp, name + "-full.db"), [])
        bad = sum(1 for v in truth.values() if v != "OK")
        print("\n### %s: %d problems, %d misbehave (full sweep %.0f s)\n" % (
            name, len(truth), bad, seconds))
        print("| budget | informative: wrong | informative: s | given order: wrong | "
              "given order: s |")
        print("| --- | --- | --- | --- | --- |")
        for budget in budgets:
            cells = [str(budget)]
            for order in ("informative", "given"):
                db = os.path.join(tmp, "%s-%s-%d.db" % (name, order, budget))
                got, seconds = sweep(args.convguard, stack, db,
                                     ["--order", order, "--budget", str(budget)])
                wrong = sum(1 for k, v in truth.items() if got.get(k) != v)
                cells += [str(wrong), "%.0f" % seconds]
            print("| " + " | ".join(cells) + " |")
            sys.stdout.flush()


if __name__ == "__main__":
    main()
