"""Checks the model zoo: each ONNX file's convolutions are the ones PyTorch ran.

scripts/make_zoo.py writes, per model, <name>.onnx and <name>.convs.json, the second
recorded by forward hooks on every nn.Conv2d call. This check reads the ONNX files with
the onnx package alone (Debian's python3-onnx 1.12), so it trusts nothing the exporter
says about itself:

- onnx.checker.check_model passes, and onnx.shape_inference.infer_shapes (strict) gives
  every Conv node's operands a shape;
- the graph's Conv nodes, in graph order, are the hooked calls, in call order: same
  count, then per conv the input, weight and output shapes, strides, pads (ONNX's
  [top, left, bottom, right] is PyTorch's [ph, pw] twice), dilations and groups; a conv
  with a bias in PyTorch has one in ONNX (the reverse need not hold: the exporter folds
  an eval-mode BatchNorm into the conv before it, adding a bias);
- the opset, and the graph input's name and shape, are the ones recorded;
- small-cnn-dynamic.onnx is small-cnn with a symbolic batch dimension "batch": the same
  convs, every conv's first dimension symbolic, the others as recorded.

With --committed DIR, the files committed there (tests/inputs/zoo) are checked the same
way, each must stay under 1 MB, and each model's conv list must be the one the script
writes now, in --zoo (weights aside: the committed torchvision models are weightless).

Usage (ctest runs it as Zoo.ShapesMatchTheExport, after Zoo.Generate):

    /usr/bin/python3 tests/zoo/check_zoo.py --zoo build/zoo [--committed tests/inputs/zoo]

Exit status: 0 when everything matches; 1 with one line per mismatch; 2 for a bad
command line; 77 when this interpreter cannot import torch, torchvision or onnx (the
zoo could not have been generated; ctest counts 77 as a skip).
"""

import argparse
import importlib
import json
import os
import sys

SKIP_EXIT_STATUS = 77
EXPECTED_OPSET = 13
COMMITTED_LIMIT_BYTES = 1 << 20
DYNAMIC_SUFFIX = "-dynamic"
DYNAMIC_BATCH = "batch"

SCRIPTS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts")
sys.path.insert(0, SCRIPTS_DIR)
import make_zoo  # the list of models; importing it does not import torch


def import_onnx():
    """Returns the onnx module; exits with SKIP_EXIT_STATUS under the generator's skip rule."""
    try:
        # Not used here, but make_zoo.py skips without them, leaving nothing to check.
        importlib.import_module("torch")
        importlib.import_module("torchvision")
        import onnx
    except ImportError as error:
        print("check_zoo.py: skipped: %s cannot import torch, torchvision and onnx (%s); "
              "Debian's python3-torch, python3-torchvision and python3-onnx provide them for "
              "/usr/bin/python3" % (sys.executable, error), file=sys.stderr)
        sys.exit(SKIP_EXIT_STATUS)
    return onnx


class Problems:
    """Mismatches, each a line that names the file and, where there is one, the conv."""

    def __init__(self):
        self.lines = []

    def add(self, where, message):
        self.lines.append("%s: %s" % (where, message))


def read_convs_json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def dims_of(value_info):
    """A ValueInfoProto's shape as a list: ints, symbol strings, or None for unknown."""
    if not value_info.type.tensor_type.HasField("shape"):
        return None
    dims = []
    for dim in value_info.type.tensor_type.shape.dim:
        if dim.HasField("dim_value"):
            dims.append(dim.dim_value)
        elif dim.HasField("dim_param"):
            dims.append(dim.dim_param)
        else:
            dims.append(None)
    return dims


def known_shapes(graph):
    shapes = {init.name: list(init.dims) for init in graph.initializer}
    for value_info in list(graph.input) + list(graph.value_info) + list(graph.output):
        dims = dims_of(value_info)
        if dims is not None:
            shapes.setdefault(value_info.name, dims)
    return shapes


def conv_attributes(onnx, node):
    attributes = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    if isinstance(attributes.get("auto_pad"), bytes):
        attributes["auto_pad"] = attributes["auto_pad"].decode()
    return attributes


ANY_SYMBOL = "<any symbol>"


def expected_shape(recorded, symbolic_batch, batch=ANY_SYMBOL):
    """The recorded shape, its first dimension replaced by batch with symbolic_batch."""
    return [batch] + recorded[1:] if symbolic_batch else recorded


def shape_matches(actual, expected):
    """Whether actual is expected, where ANY_SYMBOL matches any symbolic dimension."""
    if actual is None or len(actual) != len(expected):
        return False
    return all(a == e or (e == ANY_SYMBOL and isinstance(a, str) and a != "")
               for a, e in zip(actual, expected))


def check_conv(onnx, problems, where, node, call, shapes, symbolic_batch):
    where = "%s (ONNX node %r, module %r)" % (where, node.name, call["module"])
    attributes = conv_attributes(onnx, node)
    names = list(node.input)
    operands = [("input", names[0], call["input"], symbolic_batch),
                ("weight", names[1], call["weight"], False),
                ("output", node.output[0], call["output"], symbolic_batch)]
    for role, name, recorded, symbolic in operands:
        actual, expected = shapes.get(name), expected_shape(recorded, symbolic)
        if not shape_matches(actual, expected):
            problems.add(where, "%s %r has shape %s, expected %s (the hook saw %s)" % (
                role, name, actual, expected, recorded))
    ph, pw = call["padding"]
    expected_attributes = [
        ("strides", call["stride"], [1, 1]),
        ("pads", [ph, pw, ph, pw], [0, 0, 0, 0]),
        ("dilations", call["dilation"], [1, 1]),
        ("group", call["groups"], 1),
        ("kernel_shape", call["weight"][2:], call["weight"][2:]),
        ("auto_pad", "NOTSET", "NOTSET"),
    ]
    for attribute, expected, default in expected_attributes:
        actual = attributes.get(attribute, default)
        if actual != expected:
            problems.add(where, "%s is %s, the hook saw %s" % (attribute, actual, expected))
    if call["bias"] and (len(names) < 3 or names[2] == ""):
        problems.add(where, "the module has a bias, the ONNX conv has none")


def check_onnx(onnx, problems, onnx_path, document, symbolic_batch=False):
    """Checks one ONNX file against one .convs.json document; returns the conv count."""
    where = os.path.basename(onnx_path)
    if not os.path.exists(onnx_path):
        problems.add(where, "missing (make_zoo.py writes it next to %s.convs.json)"
                     % document["model"])
        return 0
    model = onnx.load(onnx_path)
    try:
        onnx.checker.check_model(model)
        model = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as error:
        problems.add(where, "not a valid model: %s" % str(error).strip().splitlines()[0])
        return 0

    opsets = {entry.domain: entry.version for entry in model.opset_import}
    if opsets.get("", opsets.get("ai.onnx")) != document["opset"]:
        problems.add(where, "opset %s, the .convs.json says %s" % (opsets, document["opset"]))
    graph = model.graph
    shapes = known_shapes(graph)
    initializers = {init.name for init in graph.initializer}
    inputs = [value_info for value_info in graph.input if value_info.name not in initializers]
    # A weightless export lists its weights as graph inputs too; the image comes first.
    image = inputs[0] if inputs else None
    recorded_input = document["input"]
    expected = expected_shape(recorded_input["shape"], symbolic_batch, DYNAMIC_BATCH)
    if image is None or image.name != recorded_input["name"]:
        problems.add(where, "first graph input is %r, expected %r"
                     % (image.name if image else None, recorded_input["name"]))
    elif not shape_matches(dims_of(image), expected):
        problems.add(where, "input %r has shape %s, expected %s" % (
            image.name, dims_of(image), expected))

    convs = [node for node in graph.node if node.op_type == "Conv"]
    calls = document["convs"]
    if len(convs) != len(calls):
        problems.add(where, "the ONNX graph has %d Conv nodes but PyTorch's hooks saw %d conv "
                     "calls: the exporter fused, split or duplicated convolutions, so the "
                     "graph order cannot be matched to the call order" % (len(convs), len(calls)))
        return len(convs)
    for index, (node, call) in enumerate(zip(convs, calls)):
        check_conv(onnx, problems, "%s conv %d" % (where, index), node, call, shapes,
                   symbolic_batch)
    return len(convs)


def check_zoo_dir(onnx, problems, zoo_dir, required_models):
    """Checks every model in zoo_dir; returns {model name: its .convs.json document}."""
    documents = {}
    for name in required_models:
        json_path = os.path.join(zoo_dir, name + ".convs.json")
        if not os.path.exists(json_path):
            problems.add(json_path, "missing (did make_zoo.py run? ctest's Zoo.Generate writes it)")
            continue
        document = read_convs_json(json_path)
        if document.get("model") != name:
            problems.add(json_path, "says it is model %r" % document.get("model"))
        documents[name] = document
        count = check_onnx(onnx, problems, os.path.join(zoo_dir, name + ".onnx"), document)
        print("%-18s %s: %d convs checked (%s)" % (
            name, zoo_dir, count, "with weights" if document["weights"] else "weightless"))
        if name == make_zoo.DYNAMIC_MODEL:
            dynamic = os.path.join(zoo_dir, name + DYNAMIC_SUFFIX + ".onnx")
            count = check_onnx(onnx, problems, dynamic, document, symbolic_batch=True)
            print("%-18s %s: %d convs checked (batch %r)" % (
                name + DYNAMIC_SUFFIX, zoo_dir, count, DYNAMIC_BATCH))
    return documents


def committed_models(problems, committed_dir):
    """The models committed in committed_dir; every file there must be one of theirs."""
    names, files = [], sorted(os.listdir(committed_dir))
    for file_name in files:
        if file_name.endswith(".convs.json"):
            names.append(file_name[:-len(".convs.json")])
    allowed = {"README.md"}
    for name in names:
        allowed |= {name + ".convs.json", name + ".onnx"}
        if name == make_zoo.DYNAMIC_MODEL:
            allowed.add(name + DYNAMIC_SUFFIX + ".onnx")
    for file_name in files:
        path = os.path.join(committed_dir, file_name)
        if file_name not in allowed:
            problems.add(path, "not a file of a committed model (a .onnx needs its .convs.json)")
        elif file_name.endswith(".onnx") and os.path.getsize(path) >= COMMITTED_LIMIT_BYTES:
            problems.add(path, "%d bytes: only models under 1 MB are committed; larger ones are "
                         "generated at test time" % os.path.getsize(path))
    unknown = [name for name in names if name not in make_zoo.MODELS_BY_NAME]
    for name in unknown:
        problems.add(os.path.join(committed_dir, name + ".convs.json"),
                     "make_zoo.py has no model %r" % name)
    return [name for name in names if name not in unknown]


def compare_with_generated(problems, committed_dir, committed, generated):
    """A committed model's conv list must be the one the script writes now."""
    for name, document in committed.items():
        fresh = generated.get(name)
        if fresh is None:
            continue
        where = os.path.join(committed_dir, name + ".convs.json")
        for key in ("input", "opset"):
            if document[key] != fresh[key]:
                problems.add(where, "%s is %s; make_zoo.py now writes %s"
                             % (key, document[key], fresh[key]))
        old, new = document["convs"], fresh["convs"]
        if len(old) != len(new):
            problems.add(where, "%d convs; make_zoo.py now writes %d" % (len(old), len(new)))
            continue
        for index, (was, now) in enumerate(zip(old, new)):
            if was != now:
                problems.add(where, "conv %d is %s; make_zoo.py now writes %s" % (
                    index, json.dumps(was), json.dumps(now)))


def main(argv):
    parser = argparse.ArgumentParser(prog="check_zoo.py", description=__doc__.splitlines()[0])
    parser.add_argument("--zoo", required=True, metavar="DIR",
                        help="what make_zoo.py wrote (every model, as ctest's Zoo.Generate does)")
    parser.add_argument("--committed", metavar="DIR",
                        help="committed small models to check too (tests/inputs/zoo)")
    args = parser.parse_args(argv)
    onnx = import_onnx()

    problems = Problems()
    generated = check_zoo_dir(onnx, problems, args.zoo,
                              [model.name for model in make_zoo.MODELS])
    if args.committed:
        before = len(problems.lines)
        names = committed_models(problems, args.committed)
        committed = check_zoo_dir(onnx, problems, args.committed, names)
        compare_with_generated(problems, args.committed, committed, generated)
        if len(problems.lines) > before:
            problems.add(args.committed, "regenerate the committed files with the command in "
                         "its README.md")

    for line in problems.lines:
        print("MISMATCH " + line)
    if problems.lines:
        print("check_zoo.py: %d mismatches" % len(problems.lines))
        return 1
    print("check_zoo.py: every Conv node matches what PyTorch's hooks saw")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
