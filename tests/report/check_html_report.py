#!/usr/bin/env python3
"""The HTML report opens in headless Chromium: every section renders, a screenshot is
not blank and shows the heat maps' colours, and the DOM holds one cell per verdict.

    check_html_report.py --convguard BUILD/convguard [--chromium PATH] [--keep DIR]

Fills a store with a real sweep on the reference backend under fault rules (problems
that spin, crash and compute wrong results), writes `convguard report --format html`
with a model's layer strip, and reads the page back through Chromium's --dump-dom and
--screenshot. Only the standard library is used (the PNG is decoded here).

Exit status: 0 passed, 1 a check failed, 77 skipped (no Chromium; set
CONVGUARD_REQUIRE_CHROMIUM=1 to make that a failure, as the README test command does).
"""

import argparse
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib

SKIP = 77
RULES = """# report test: three kinds of misbehaviour
spin when c == 16 && h > 20
segv when c == 8 && k == 16 && h > 20
wrong(0.5) when c == 3 && k == 8 && h == 24
"""
GRID = "c=3,8,16 k=8,16 hw=16,24,32 r=3 p=same"
LAYERS = {
    "convguard_layers": 1,
    "origin": "strip model",
    "layers": [
        {"name": "a", "op": "Conv2d", "problem": "n1_c3_h16_w16_k8_r3_s3_p1"},
        {"name": "b", "op": "Conv2d", "problem": "n1_c16_h32_w32_k8_r3_s3_p1"},
        {"name": "c", "op": "Conv2d", "problem": "n1_c16_h48_w48_k16_r3_s3_p1"},
    ],
}
SECTIONS = ("summary", "heatmaps", "models", "pattern", "recommendations", "evidence")
COLOURS = {"OK": (0x2A, 0x9D, 0x5C), "HANG": (0xD6, 0x28, 0x28), "CRASH": (0x7B, 0x2C, 0xBF),
           "WRONG": (0xF7, 0x7F, 0x00)}

failures = []


def check(ok, what):
    print(("ok    " if ok else "FAIL  ") + what)
    if not ok:
        failures.append(what)


def run(argv, timeout=300):
    p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    if p.returncode != 0:
        sys.stderr.write(p.stdout + p.stderr)
        raise SystemExit(f"failed ({p.returncode}): {' '.join(argv)}")
    return p.stdout


def decode_png(data):
    """(width, height, rows of RGB tuples) of an 8-bit RGB or RGBA PNG."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG")
    pos, idat, header = 8, b"", None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    width, height, depth, colour, _, _, interlace = header
    if depth != 8 or colour not in (2, 6) or interlace:
        raise ValueError(f"unsupported PNG (depth {depth}, colour {colour}, interlace {interlace})")
    bpp = 3 if colour == 2 else 4
    raw = zlib.decompress(idat)
    stride = width * bpp
    rows, previous = [], bytearray(stride)
    for y in range(height):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = previous[i]
            c = previous[i - bpp] if i >= bpp else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append([tuple(line[i:i + 3]) for i in range(0, stride, bpp)])
        previous = line
    return width, height, rows


def find_chromium(explicit):
    for name in ([explicit] if explicit else ["chromium", "chromium-browser", "google-chrome"]):
        path = shutil.which(name) if name else None
        if path:
            return path
    return None


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--convguard", required=True)
    parser.add_argument("--chromium", default=None)
    parser.add_argument("--keep", default=None, help="work in DIR and leave the files there")
    args = parser.parse_args()
    chromium = find_chromium(args.chromium)
    if not chromium:
        why = "no Chromium on PATH (Debian package 'chromium')"
        if os.environ.get("CONVGUARD_REQUIRE_CHROMIUM") == "1":
            print("FAIL  " + why + ", and CONVGUARD_REQUIRE_CHROMIUM=1")
            return 1
        print("skipped: " + why)
        return SKIP

    work = args.keep or tempfile.mkdtemp(prefix="convguard-html-report-")
    os.makedirs(work, exist_ok=True)
    db = os.path.join(work, "verdicts.sqlite")
    rules = os.path.join(work, "faults.rules")
    layers = os.path.join(work, "layers.json")
    page = os.path.join(work, "report.html")
    model_page = os.path.join(work, "model.html")
    shot = os.path.join(work, "screenshot.png")
    with open(rules, "w") as f:
        f.write(RULES)
    with open(layers, "w") as f:
        json.dump(LAYERS, f)
    for stale in (db, page, model_page, shot):
        if os.path.exists(stale):
            os.remove(stale)
    cg = args.convguard
    run([cg, "sweep", "--backend", "reference", "--inject", rules, "--db", db, "--grid", GRID,
         "--deadline-floor", "300", "--confirm-floor", "800", "--quiet"])
    report = json.loads(run([cg, "report", "--db", db, "--format", "json"]))
    verdicts = sum(len(s["verdicts"]) for s in report["stacks"])
    kinds = {k for s in report["stacks"] for k in s["counts"]}
    check(kinds >= set(COLOURS), f"the sweep recorded {sorted(kinds)} (needs {sorted(COLOURS)})")
    run([cg, "report", "--db", db, "--format", "html", "-o", page])
    html = open(page, encoding="utf-8").read()

    # Self-contained: nothing is fetched (the SVG namespace is a name, not a request).
    fetches = re.findall(r"""(?:src|href)\s*=\s*["']?(?:https?:|//)|url\(|<link\b|<script\b|@import""",
                         html, re.I)
    check(not fetches, f"the page loads nothing from outside and runs no script ({fetches[:3]})")

    profile = os.path.join(work, "chromium-profile")
    common = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              "--no-first-run", "--user-data-dir=" + profile, "--window-size=1400,2600"]
    url = "file://" + os.path.abspath(page)
    dom = run(common + ["--dump-dom", url], timeout=180)
    cells = len(re.findall(r'<rect class="cell"', dom))
    check(cells == verdicts, f"the DOM holds one heat-map cell per verdict ({cells} cells, "
                             f"{verdicts} verdicts)")
    rows = len(re.findall(r'<tr id="s\d+-v\d+"', dom))
    check(rows == verdicts, f"one evidence row per verdict ({rows})")
    links = set(re.findall(r'href="#(s\d+-v\d+)"', dom))
    targets = set(re.findall(r'<tr id="(s\d+-v\d+)"', dom))
    check(links == targets and len(links) == verdicts, "every cell links to its evidence row")
    for i in range(len(report["stacks"])):
        for name in SECTIONS:
            m = re.search(rf'<section id="s{i}-{name}"[^>]*>\s*<h3>([^<]+)</h3>(.*?)</section>', dom,
                          re.S)
            check(bool(m) and len(re.sub(r"<[^>]+>", "", m.group(2)).strip()) > 0,
                  f"stack {i}: section '{name}' is there with content")
    repro = re.search(r"<code>convguard probe [^<]+--backend reference", dom)
    check(bool(repro), "evidence rows carry repro lines")

    # With a model: its layer strip, and only its problems' cells.
    run([cg, "report", "--db", db, "--model", layers, "--format", "html", "-o", model_page])
    model_report = json.loads(run([cg, "report", "--db", db, "--model", layers, "--format", "json"]))
    model_dom = run(common + ["--dump-dom", "file://" + os.path.abspath(model_page)], timeout=180)
    bars = re.findall(r'<rect class="layer" data-state="([A-Z]+)"', model_dom)
    expected = [layer["state"] for s in model_report["stacks"] for m in s["models"]
                for layer in m["layers"]]
    check(bars == expected and len(bars) == len(LAYERS["layers"]),
          f"one strip bar per model layer, in order, with its state ({bars})")
    model_cells = len(re.findall(r'<rect class="cell"', model_dom))
    model_verdicts = sum(len(s["verdicts"]) for s in model_report["stacks"])
    check(model_cells == model_verdicts and 0 < model_cells < verdicts,
          f"with --model, only the model's verdicts are cells ({model_cells})")

    run(common + ["--screenshot=" + shot, url], timeout=180)
    width, height, pixels = decode_png(open(shot, "rb").read())
    total = width * height
    non_white = sum(1 for row in pixels for px in row if px != (255, 255, 255))
    check(width >= 1000 and height >= 1000, f"screenshot {width}x{height}")
    check(non_white / total > 0.05, f"screenshot is not blank ({100 * non_white / total:.1f}% "
                                    "non-white pixels)")
    # Heat-map cells are 22 px wide; the legend's and the tables' swatches 12 px. A pixel
    # row with a run of 16 or more pixels of a verdict's colour crosses a cell.
    for kind, colour in COLOURS.items():
        rows_with_cells = 0
        for row in pixels:
            run_length = longest = 0
            for px in row:
                run_length = run_length + 1 if px == colour else 0
                longest = max(longest, run_length)
            rows_with_cells += longest >= 16
        check(rows_with_cells >= 8, f"screenshot shows {kind} heat-map cells in their colour "
                                    f"({rows_with_cells} pixel rows cross them)")

    if failures:
        print(f"{len(failures)} check(s) failed; files in {work}")
        return 1
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
