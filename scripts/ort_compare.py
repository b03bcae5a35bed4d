#!/usr/bin/env python3
"""Checks a fixed ONNX model against its original with onnxruntime, a runtime convguard did
not write: both run on the CPU execution provider at ORT_ENABLE_ALL (or --optimization) on the same inputs,
and every output is compared.

usage:
  ort_compare.py ORIGINAL FIXED [--inputs random|exact|both] [--seed N] [--tolerance T]
                 [--save-optimized DIR] [--threads N] [--json]
  ort_compare.py --make-exact ORIGINAL OUT [--seed N] [--json]

Inputs (generated for every input of ORIGINAL; a symbolic dimension becomes 1):
  random  float32 standard-normal values from the seed. Agreement: max_rel <= 1e-4 for
          every output, where max_rel = max |fixed - original| / max(1, max |original|).
  exact   integers in [-2, 2] as floats. With integer weights every product and sum of a
          convolution is an integer far below 2**24, so it is exact in float32 whatever the
          order of summation: an exact rewrite must then give every element EQUAL to the
          original's (-0.0 equals +0.0; NaN equals NaN at the same place). Both models'
          float weights must be integers, or exit 2 (unless --tolerance is given).
  both    random, then exact; agreement needs both.
--tolerance T makes the rule max_rel <= T in every mode.

The exact-weights workflow: a fixed model's weights are made by the fixer from the
original's, so the integer weights go in before fixing:
  1. ort_compare.py --make-exact model.onnx model.exact.onnx
       every float initializer (and Constant) that is not all integers already becomes
       seeded integers in [-2, 2] ([1, 2] where every value was positive, such as a
       BatchNormalization variance; [0, 2] where every value was non-negative)
  2. fix model.exact.onnx into model.exact.fixed.onnx with the fixer
  3. ort_compare.py model.exact.onnx model.exact.fixed.onnx --inputs exact

--save-optimized DIR writes the graph onnxruntime really runs, after its own rewrites, to
DIR/STEM.optimized.onnx for each model (original.STEM / fixed.STEM when the stems are the
same), and lists its nodes: a runtime fuses a zero Pad into the next Conv's pads, which
can undo a rewrite that was made to avoid exactly that Conv.

--json prints one JSON object: the onnxruntime version, the input mode, whether the
models agree, and per run and output: name, shape, max_abs, max_rel, mismatches (elements
that are not equal), bit_equal. An infinite error (a NaN or an infinity on one side only,
or output shapes that differ) is the string "inf".

Exit status: 0 the models agree, 1 they do not, 2 bad input (a missing file, a model
onnxruntime cannot load or run, inputs or outputs that differ in name, type or shape,
non-integer weights with exact inputs): one line on stderr saying what.

Run it under the interpreter of the venv that scripts/setup.sh makes: build/venv/bin/python
(onnxruntime from PyPI, Debian's numpy and onnx). docs/verification.md has the details.
"""

import argparse
import json
import math
import os
import pathlib
import sys

AGREE, DISAGREE, BAD_INPUT = 0, 1, 2
DEFAULT_RANDOM_TOLERANCE = 1e-4
PROVIDER = "CPUExecutionProvider"
INPUT_DTYPES = {"tensor(float)": "float32", "tensor(float16)": "float16", "tensor(double)": "float64"}


def fail(message):
    print(f"ort_compare: {message}", file=sys.stderr)
    sys.exit(BAD_INPUT)


def one_line(error):
    text = " ".join(str(error).split())
    return text if len(text) <= 400 else text[:400] + "..."


try:
    import numpy as np
    import onnxruntime as ort
except ImportError as e:
    fail(f"{sys.executable} cannot import {e.name}: run this script with the venv's interpreter "
         "(build/venv/bin/python; `bash scripts/setup.sh build` makes it)")


def import_onnx(why):
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError:
        fail(f"{why} needs the onnx package, which {sys.executable} cannot import "
             "(Debian: python3-onnx; the venv sees it through --system-site-packages)")
    return onnx, numpy_helper


# ---- model files: every float tensor, in a fixed order (subgraphs included) ------------

FLOAT_TYPES = (1, 10, 11)  # TensorProto FLOAT, FLOAT16, DOUBLE


def float_tensors(graph):
    """Yields (label, TensorProto) for each float initializer and Constant value of graph."""
    for tensor in graph.initializer:
        if tensor.data_type in FLOAT_TYPES:
            yield f"initializer '{tensor.name}'", tensor
    for node in graph.node:
        for attr in node.attribute:
            if node.op_type == "Constant" and attr.name == "value" and attr.t.data_type in FLOAT_TYPES:
                yield f"Constant '{node.output[0]}'", attr.t
            if attr.HasField("g"):
                yield from float_tensors(attr.g)
            for g in attr.graphs:
                yield from float_tensors(g)


def load_onnx(path, role, why):
    onnx, numpy_helper = import_onnx(why)
    try:
        return onnx.load(str(path)), numpy_helper
    except Exception as e:  # a file the onnx package cannot parse
        fail(f"cannot read the {role} model {path} with onnx: {one_line(e)}")


def all_integers(values):
    return bool(np.all(np.isfinite(values)) and np.all(np.floor(values) == values))


def make_exact(original, out, seed):
    model, numpy_helper = load_onnx(original, "original", "--make-exact")
    rng = np.random.default_rng(seed)
    replaced, kept = [], []
    for label, tensor in float_tensors(model.graph):
        values = numpy_helper.to_array(tensor)
        if all_integers(values):
            kept.append(label)
            continue
        low = 1 if np.all(values > 0) else 0 if np.all(values >= 0) else -2
        exact = rng.integers(low, 3, size=values.shape).astype(values.dtype)
        tensor.CopyFrom(numpy_helper.from_array(exact, tensor.name))
        replaced.append(label)
    onnx, _ = import_onnx("--make-exact")
    try:
        onnx.save(model, str(out))
    except Exception as e:
        fail(f"cannot write {out}: {one_line(e)}")
    return {"made_exact": str(out), "original": str(original), "seed": seed,
            "replaced": replaced, "kept_integer": kept}


def require_integer_weights(path, role):
    model, numpy_helper = load_onnx(path, role, "--inputs exact")
    for label, tensor in float_tensors(model.graph):
        if not all_integers(numpy_helper.to_array(tensor)):
            fail(f"exact inputs need integer weights, and {label} of the {role} model {path} is "
                 "not: write an integer-weight copy with `ort_compare.py --make-exact ORIGINAL "
                 "OUT`, fix OUT, and compare OUT with its fixed model")


# ---- sessions ----------------------------------------------------------------------------


LEVELS = {"basic": "ORT_ENABLE_BASIC", "extended": "ORT_ENABLE_EXTENDED", "all": "ORT_ENABLE_ALL"}


def load_session(path, role, optimized_path, threads, level):
    if not os.path.isfile(path):
        fail(f"the {role} model {path}: no such file")
    options = ort.SessionOptions()
    options.graph_optimization_level = getattr(ort.GraphOptimizationLevel, LEVELS[level])
    options.log_severity_level = 3  # errors only: the report is ours
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    if optimized_path:
        options.optimized_model_filepath = str(optimized_path)
    try:
        return ort.InferenceSession(str(path), options, providers=[PROVIDER])
    except Exception as e:
        fail(f"onnxruntime {ort.__version__} cannot load the {role} model {path}: {one_line(e)}")


def signature(args):
    return {a.name: (a.type, [d if isinstance(d, int) else str(d) for d in a.shape]) for a in args}


def require_same_signature(original, fixed):
    for kind, get in (("input", lambda s: s.get_inputs()), ("output", lambda s: s.get_outputs())):
        ours, theirs = signature(get(original)), signature(get(fixed))
        for name in ours:
            if name not in theirs:
                fail(f"{kind} '{name}' of the original model is not an {kind} of the fixed model "
                     f"(its {kind}s: {', '.join(theirs) or 'none'})")
        for name in theirs:
            if name not in ours:
                fail(f"{kind} '{name}' of the fixed model is not an {kind} of the original model "
                     f"(its {kind}s: {', '.join(ours) or 'none'})")
        for name, (type_, shape) in ours.items():
            if theirs[name] != (type_, shape):
                fail(f"{kind} '{name}' is {type_} {shape} in the original model but "
                     f"{theirs[name][0]} {theirs[name][1]} in the fixed model")


def make_feed(session, mode, seed):
    rng = np.random.default_rng(seed)
    feed = {}
    for arg in session.get_inputs():
        if arg.type not in INPUT_DTYPES:
            fail(f"input '{arg.name}' is {arg.type}: only float inputs are generated")
        shape = [d if isinstance(d, int) and d > 0 else 1 for d in arg.shape]
        if mode == "random":
            values = rng.standard_normal(shape).astype(np.float32)
        else:
            values = rng.integers(-2, 3, size=shape).astype(np.float32)
        feed[arg.name] = values.astype(INPUT_DTYPES[arg.type])
    return feed


def run(session, role, feed):
    try:
        names = [o.name for o in session.get_outputs()]
        return dict(zip(names, session.run(names, feed)))
    except Exception as e:
        fail(f"onnxruntime {ort.__version__} cannot run the {role} model: {one_line(e)}")


# ---- comparing ---------------------------------------------------------------------------


def compare_output(name, a, b):
    """Errors of b (fixed) against a (original); infinities where they are not finite."""
    bit_equal = a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()
    if a.shape != b.shape:
        return {"name": name, "shape": list(a.shape), "fixed_shape": list(b.shape),
                "elements": int(a.size), "max_abs": math.inf, "max_rel": math.inf,
                "mismatches": int(max(a.size, b.size)), "bit_equal": False}
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    both_nan = np.isnan(a64) & np.isnan(b64)
    differ = ~((a64 == b64) | both_nan)
    with np.errstate(invalid="ignore"):
        error = np.where(differ, np.abs(a64 - b64), 0.0)
    error[np.isnan(error)] = math.inf
    finite = np.abs(a64[np.isfinite(a64)])
    scale = max(1.0, float(finite.max()) if finite.size else 0.0)
    max_abs = float(error.max()) if error.size else 0.0
    return {"name": name, "shape": list(a.shape), "elements": int(a.size), "max_abs": max_abs,
            "max_rel": max_abs / scale, "mismatches": int(differ.sum()), "bit_equal": bit_equal}


def compare_run(mode, seed, tolerance, original, fixed):
    feed = make_feed(original, mode, seed)
    a, b = run(original, "original", feed), run(fixed, "fixed", feed)
    if tolerance is None and mode == "random":
        tolerance = DEFAULT_RANDOM_TOLERANCE
    outputs = [compare_output(name, a[name], b[name]) for name in a]
    for o in outputs:
        o["agree"] = (o["mismatches"] == 0 if tolerance is None else
                      "fixed_shape" not in o and o["max_rel"] <= tolerance)
    criterion = "every element equal" if tolerance is None else f"max_rel <= {tolerance:g}"
    return {"inputs": mode, "seed": seed, "criterion": criterion, "tolerance": tolerance,
            "feed": [{"name": k, "shape": list(v.shape)} for k, v in feed.items()],
            "agree": all(o["agree"] for o in outputs), "outputs": outputs}


def optimized_paths(original, fixed, directory):
    stems = [pathlib.Path(p).name.removesuffix(".onnx") for p in (original, fixed)]
    if stems[0] == stems[1]:
        stems = [f"original.{stems[0]}", f"fixed.{stems[1]}"]
    try:
        os.makedirs(directory, exist_ok=True)
    except OSError as e:
        fail(f"cannot make --save-optimized directory {directory}: {e.strerror}")
    return [os.path.join(directory, f"{stem}.optimized.onnx") for stem in stems]


def describe_graph(path):
    """Node counts of an optimized graph: 'Conv', or 'DOMAIN.Conv' outside the ONNX domain."""
    model, _ = load_onnx(path, "optimized", "--save-optimized")
    counts = {}
    for node in model.graph.node:
        key = node.op_type if node.domain in ("", "ai.onnx") else f"{node.domain}.{node.op_type}"
        counts[key] = counts.get(key, 0) + 1
    return counts


def json_number(x):
    return x if math.isfinite(x) else "inf"


def print_text(report):
    print(f"onnxruntime {report['onnxruntime']}, {PROVIDER}, {report['optimization']}")
    print(f"original: {report['original']}")
    print(f"fixed:    {report['fixed']}")
    for r in report["runs"]:
        feed = ", ".join(f"{f['name']} {f['shape']}" for f in r["feed"])
        verdict = "agree" if r["agree"] else "DIFFER"
        print(f"{r['inputs']} inputs (seed {r['seed']}; {feed}): {verdict} ({r['criterion']})")
        for o in r["outputs"]:
            shape = o["shape"] if "fixed_shape" not in o else f"{o['shape']} vs {o['fixed_shape']}"
            bits = "bit-equal" if o["bit_equal"] else "not bit-equal"
            print(f"  {o['name']} {shape}: max_abs {o['max_abs']:.3g}  max_rel {o['max_rel']:.3g}  "
                  f"mismatches {o['mismatches']}/{o['elements']}  {bits}")
    for role, info in report.get("optimized", {}).items():
        nodes = ", ".join(f"{k} x{v}" for k, v in sorted(info["nodes"].items()))
        print(f"optimized {role} graph: {info['path']} ({nodes})")
    print("agree" if report["agree"] else "DIFFER")


def to_json(report):
    for r in report.get("runs", []):
        for o in r["outputs"]:
            o["max_abs"], o["max_rel"] = json_number(o["max_abs"]), json_number(o["max_rel"])
    return json.dumps(report, allow_nan=False)


def main():
    parser = argparse.ArgumentParser(
        prog="ort_compare.py", formatter_class=argparse.RawDescriptionHelpFormatter,
        usage="%(prog)s ORIGINAL FIXED [options]\n       %(prog)s --make-exact ORIGINAL OUT",
        description=__doc__.split("usage:")[0].strip(),
        epilog=__doc__[__doc__.index("Inputs ("):])
    parser.add_argument("first", metavar="ORIGINAL", help="the model as it was")
    parser.add_argument("second", metavar="FIXED|OUT",
                        help="its fixed version; with --make-exact, the file to write")
    parser.add_argument("--inputs", choices=["random", "exact", "both"], default="random",
                        help="what the inputs are (default: random)")
    parser.add_argument("--seed", type=int, default=0, help="seed of inputs and weights (0)")
    parser.add_argument("--tolerance", type=float, metavar="T",
                        help="agree when max_rel <= T (default: 1e-4 random, equal exact)")
    parser.add_argument("--save-optimized", metavar="DIR",
                        help="write the graphs onnxruntime runs to DIR")
    parser.add_argument("--optimization", choices=sorted(LEVELS), default="all",
                        help="onnxruntime's graph optimization level (all); basic keeps standard "
                             "ONNX operators in the saved graph (it already fuses a zero Pad into "
                             "the next Conv), all adds the runtime's own layout operators")
    parser.add_argument("--threads", type=int, default=1,
                        help="onnxruntime intra-op threads (default 1; 0: its own choice)")
    parser.add_argument("--make-exact", action="store_true",
                        help="write ORIGINAL with integer weights to OUT, then exit")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    if args.tolerance is not None and not args.tolerance >= 0:
        fail(f"--tolerance {args.tolerance} is not a non-negative number")
    if args.threads < 0:
        fail(f"--threads {args.threads} is negative")

    if args.make_exact:
        if not os.path.isfile(args.first):
            fail(f"the original model {args.first}: no such file")
        result = make_exact(args.first, args.second, args.seed)
        if args.json:
            print(json.dumps(result))
        else:
            print(f"wrote {result['made_exact']}: {len(result['replaced'])} float tensors made "
                  f"seeded integers (seed {args.seed}), {len(result['kept_integer'])} were "
                  "integers already; fix it, then compare it with its fixed model, --inputs exact")
        return AGREE

    original_path, fixed_path = args.first, args.second
    for path, role in ((original_path, "original"), (fixed_path, "fixed")):
        if not os.path.isfile(path):
            fail(f"the {role} model {path}: no such file")
    modes = ["random", "exact"] if args.inputs == "both" else [args.inputs]
    if "exact" in modes and args.tolerance is None:
        require_integer_weights(original_path, "original")
        require_integer_weights(fixed_path, "fixed")
    paths = [None, None]
    if args.save_optimized:
        paths = optimized_paths(original_path, fixed_path, args.save_optimized)
    original = load_session(original_path, "original", paths[0], args.threads, args.optimization)
    fixed = load_session(fixed_path, "fixed", paths[1], args.threads, args.optimization)
    require_same_signature(original, fixed)

    runs = [compare_run(mode, args.seed, args.tolerance, original, fixed) for mode in modes]
    report = {"onnxruntime": ort.__version__, "provider": PROVIDER,
              "optimization": LEVELS[args.optimization], "original": original_path, "fixed": fixed_path,
              "input_mode": args.inputs, "agree": all(r["agree"] for r in runs), "runs": runs}
    if args.save_optimized:
        report["optimized"] = {role: {"path": path, "nodes": describe_graph(path)}
                               for role, path in zip(("original", "fixed"), paths)}
    if args.json:
        print(to_json(report))
    else:
        print_text(report)
    return AGREE if report["agree"] else DISAGREE


if __name__ == "__main__":
    sys.exit(main())
