"""convguard's model zoo: ONNX models with random weights, and the convolutions in them.

Writes, for each model asked for, into --out:

    <name>.onnx         the model exported by torch.onnx.export (opset 13, constant
                        folding on, one input named "input" of a fixed shape), with its
                        weights, or without them (--no-weights: export_params=False, the
                        weights become graph inputs with shapes but no values)
    <name>.convs.json   every call of every nn.Conv2d module during one forward pass on
                        the example input, in call order, as PyTorch's forward hooks saw
                        it: module name, input, weight and output shapes, stride,
                        padding, dilation, groups, bias
    small-cnn-dynamic.onnx
                        small-cnn again, its input's and its output's first dimension
                        the dynamic "batch", for tests of dynamic dimensions (written
                        whenever small-cnn is)

Models (names are fixed; tests and documents use them):

    small-cnn        a CIFAR-size CNN defined here, 1x3x32x32, with the seed report's
                     Conv2d(16, 32, 3, padding=1) at 32x32
    yolo-tiny        a small YOLO-style detector defined here, 1x3x256x256
    mobilenet_v2, efficientnet_b0, resnet18, resnet50
                     torchvision's, 1x3x224x224

Usage (Debian's interpreter, which has python3-torch 1.13 and python3-torchvision 0.14):

    /usr/bin/python3 scripts/make_zoo.py --out DIR [--models a,b,...] [--no-weights] [--list]

Weights are random: every model is built right after torch.manual_seed(0), so a model's
weights do not depend on which other models are generated with it; torchvision models
are built with weights=None. Nothing is downloaded. Models are put in eval mode, so
BatchNorm uses its running statistics (which, for a fresh model, are 0 and 1).

Exit status: 0 when every model was written; 2 for a bad command line; 77 when this
interpreter cannot import torch or torchvision (nothing is written; ctest counts 77 as
a skip, see tests/zoo/zoo.cmake).

Importing this file imports neither torch nor torchvision (tests/zoo/check_zoo.py reads
the list of models from it).
"""

import argparse
import collections
import json
import os
import sys
import time
import warnings

SKIP_EXIT_STATUS = 77
OPSET = 13
INPUT_NAME = "input"


def import_torch():
    """Returns (torch, torchvision); exits with SKIP_EXIT_STATUS when either will not import."""
    try:
        import torch
        import torchvision
    except ImportError as error:
        print("make_zoo.py: skipped: %s cannot import torch and torchvision (%s); Debian's "
              "python3-torch and python3-torchvision provide them for /usr/bin/python3"
              % (sys.executable, error), file=sys.stderr)
        sys.exit(SKIP_EXIT_STATUS)
    return torch, torchvision


def define_small_cnn(nn):
    """The small-cnn class: a convolution of each common kind, on a CIFAR-size input.

    Every spatial size is fixed by the 32x32 input; the 16->32 3x3 convolution of the seed
    report runs at 32x32, the largest map there is (the size at which the seed report
    says it works). The head pools globally, so the same weights run at any input size,
    e.g. at 64x64, where the seed report says it hangs.
    """

    def conv_bn_relu(cin, cout, **conv):
        return nn.Sequential(nn.Conv2d(cin, cout, bias=False, **conv), nn.BatchNorm2d(cout),
                             nn.ReLU(inplace=True))

    def conv_relu(cin, cout, **conv):
        return nn.Sequential(nn.Conv2d(cin, cout, bias=True, **conv), nn.ReLU(inplace=True))

    class SmallCnn(nn.Module):
        def __init__(self, classes=10):
            super().__init__()
            # Named stages: the names reach the .convs.json ("features.seed.0") and the
            # ONNX node names, so a test can say which convolution it means.
            self.features = nn.Sequential(collections.OrderedDict([
                ("stem", conv_bn_relu(3, 16, kernel_size=3, padding=1)),         # 32x32
                ("seed", conv_bn_relu(16, 32, kernel_size=3, padding=1)),        # 32x32
                ("down", conv_bn_relu(32, 32, kernel_size=3, stride=2, padding=1)),  # -> 16
                ("depthwise", conv_bn_relu(32, 32, kernel_size=3, padding=1, groups=32)),
                ("pointwise", conv_relu(32, 64, kernel_size=1)),
                # Grouped, dilated and strided at once: -> 8x8
                ("grouped", conv_relu(64, 64, kernel_size=3, stride=2, padding=2, dilation=2,
                                      groups=4)),
                # A kernel wider than tall, so that a height/width swap anywhere shows
                ("wide", conv_relu(64, 64, kernel_size=(1, 3), padding=(0, 1))),
            ]))
            self.pool = nn.AdaptiveAvgPool2d(1)
            self.classifier = nn.Linear(64, classes)

        def forward(self, x):
            return self.classifier(self.pool(self.features(x)).flatten(1))

    return SmallCnn


def define_yolo_tiny(nn, torch):
    """The yolo-tiny class: a YOLOv3-tiny-shaped detector, far narrower, for a 256x256 image.

    Backbone: five conv-bn-leakyrelu blocks, each halving the map with stride 2 (256 ->
    8). Neck: a 1x1 reduction at stride 32, then a 1x1 lateral, a 2x nearest upsample and
    a concat with the stride-16 features. Two heads, each a 3x3 block then a 1x1
    convolution with bias predicting 3 anchors x (4 box + 1 objectness + 3 classes).
    """

    def block(cin, cout, kernel, stride=1):
        return nn.Sequential(
            nn.Conv2d(cin, cout, kernel, stride=stride, padding=kernel // 2, bias=False),
            nn.BatchNorm2d(cout), nn.LeakyReLU(0.1, inplace=True))

    class YoloTiny(nn.Module):
        def __init__(self, anchors=3, classes=3):
            super().__init__()
            outputs = anchors * (5 + classes)
            self.backbone_s16 = nn.Sequential(
                block(3, 8, 3, stride=2),      # 128
                block(8, 16, 3, stride=2),     # 64
                block(16, 32, 3, stride=2),    # 32
                block(32, 64, 3, stride=2),    # 16
            )
            self.backbone_s32 = block(64, 96, 3, stride=2)  # 8
            self.reduce_s32 = block(96, 64, 1)
            self.head_s32 = nn.Sequential(block(64, 64, 3), nn.Conv2d(64, outputs, 1))
            self.lateral = block(64, 32, 1)
            self.upsample = nn.Upsample(scale_factor=2, mode="nearest")
            self.head_s16 = nn.Sequential(block(32 + 64, 48, 3), nn.Conv2d(48, outputs, 1))

        def forward(self, x):
            s16 = self.backbone_s16(x)
            s32 = self.reduce_s32(self.backbone_s32(s16))
            up = self.upsample(self.lateral(s32))
            return self.head_s32(s32), self.head_s16(torch.cat([up, s16], dim=1))

    return YoloTiny


class ZooModel:
    """One model of the zoo: how to build it, its example input and its output names."""

    def __init__(self, name, input_shape, output_names, description, build):
        self.name = name
        self.input_shape = input_shape
        self.output_names = output_names
        self.description = description
        self.build = build  # build(torch, torchvision) -> nn.Module


def torchvision_model(name):
    return lambda torch, torchvision: getattr(torchvision.models, name)(weights=None)


MODELS = [
    ZooModel("small-cnn", [1, 3, 32, 32], ["logits"],
             "CIFAR-size CNN defined in make_zoo.py (the seed conv 16->32 3x3 at 32x32, "
             "stride 2, depthwise, grouped+dilated, 1x1, 1x3; with and without bias)",
             lambda torch, torchvision: define_small_cnn(torch.nn)()),
    ZooModel("mobilenet_v2", [1, 3, 224, 224], ["logits"], "torchvision MobileNetV2",
             torchvision_model("mobilenet_v2")),
    ZooModel("efficientnet_b0", [1, 3, 224, 224], ["logits"], "torchvision EfficientNet-B0",
             torchvision_model("efficientnet_b0")),
    ZooModel("resnet18", [1, 3, 224, 224], ["logits"], "torchvision ResNet-18",
             torchvision_model("resnet18")),
    ZooModel("resnet50", [1, 3, 224, 224], ["logits"], "torchvision ResNet-50 (v1.5)",
             torchvision_model("resnet50")),
    ZooModel("yolo-tiny", [1, 3, 256, 256], ["detect_s32", "detect_s16"],
             "YOLO-style detector defined in make_zoo.py (stride-2 backbone, upsample+concat "
             "neck, two 1x1 heads)",
             lambda torch, torchvision: define_yolo_tiny(torch.nn, torch)()),
]
MODELS_BY_NAME = {model.name: model for model in MODELS}
DYNAMIC_MODEL = "small-cnn"


def resolved_padding(conv):
    """The conv's padding as the integers [ph, pw] PyTorch pads with.

    Conv2d accepts padding="valid" (no padding) and padding="same" (total padding
    dilation * (kernel - 1) per dimension, split with the extra pixel at the end, see
    torch.nn.modules.conv._ConvNd). None of torchvision 0.14's models uses a string, and
    our own models never do; an uneven "same" split cannot be written as [ph, pw], so it
    is refused rather than recorded wrong.
    """
    if not isinstance(conv.padding, str):
        return list(conv.padding)
    if conv.padding == "valid":
        return [0, 0]
    padding = []
    for dilation, kernel in zip(conv.dilation, conv.kernel_size):
        total = dilation * (kernel - 1)
        if total % 2:
            raise ValueError("%r: padding='same' pads unevenly here (%d in all), which "
                             "[ph, pw] cannot record" % (conv, total))
        padding.append(total // 2)
    return padding


def record_convs(torch, model, example):
    """Runs model on example once; returns every Conv2d call, in call order."""
    calls = []
    names = {module: name for name, module in model.named_modules()}

    def hook(module, inputs, output):
        if module.padding_mode != "zeros":
            raise ValueError("%s: padding_mode %r is not a plain zero padding"
                             % (names[module], module.padding_mode))
        calls.append({
            "module": names[module],
            "input": list(inputs[0].shape),
            "weight": list(module.weight.shape),
            "output": list(output.shape),
            "stride": list(module.stride),
            "padding": resolved_padding(module),
            "dilation": list(module.dilation),
            "groups": module.groups,
            "bias": module.bias is not None,
        })

    # A module called twice fires its hook twice: every call is recorded.
    handles = [module.register_forward_hook(hook) for module in model.modules()
               if isinstance(module, torch.nn.Conv2d)]
    try:
        with torch.no_grad():
            model(example)
    finally:
        for handle in handles:
            handle.remove()
    return calls


def write_convs_json(path, zoo_model, weights, calls):
    document = {
        "model": zoo_model.name,
        "input": {"name": INPUT_NAME, "shape": zoo_model.input_shape},
        "opset": OPSET,
        "weights": weights,
        "convs": calls,
    }
    with open(path, "w", encoding="utf-8") as out:
        # One conv per line: diffs of committed files stay readable.
        out.write('{"model": %s, "input": %s, "opset": %d, "weights": %s, "convs": [\n'
                  % (json.dumps(document["model"]), json.dumps(document["input"]), OPSET,
                     json.dumps(weights)))
        out.write(",\n".join("  " + json.dumps(call) for call in calls))
        out.write("\n]}\n")


def export_onnx(torch, model, example, path, zoo_model, weights, dynamic_batch=False):
    torch.onnx.export(
        model, (example,), path,
        export_params=weights,
        opset_version=OPSET,
        do_constant_folding=True,
        input_names=[INPUT_NAME],
        output_names=zoo_model.output_names,
        # The outputs are named too: torch would otherwise invent a name for their batch
        # dimension ("Gemmlogits_dim_0"), hiding that it is the input's.
        dynamic_axes=({name: {0: "batch"} for name in [INPUT_NAME] + zoo_model.output_names}
                      if dynamic_batch else None))


def make_model(torch, torchvision, zoo_model, out_dir, weights):
    """Writes one model's files; returns the paths written."""
    torch.manual_seed(0)
    model = zoo_model.build(torch, torchvision).eval()
    example = torch.randn(zoo_model.input_shape)
    written = []

    convs_path = os.path.join(out_dir, zoo_model.name + ".convs.json")
    write_convs_json(convs_path, zoo_model, weights, record_convs(torch, model, example))
    written.append(convs_path)

    onnx_path = os.path.join(out_dir, zoo_model.name + ".onnx")
    export_onnx(torch, model, example, onnx_path, zoo_model, weights)
    written.append(onnx_path)
    if zoo_model.name == DYNAMIC_MODEL:
        dynamic_path = os.path.join(out_dir, zoo_model.name + "-dynamic.onnx")
        export_onnx(torch, model, example, dynamic_path, zoo_model, weights, dynamic_batch=True)
        written.append(dynamic_path)
    return written


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="make_zoo.py",
        description="Write convguard's model zoo: ONNX models with random weights and, for "
                    "each, a .convs.json of the convolutions PyTorch ran.")
    parser.add_argument("--out", metavar="DIR", help="where to write (created if missing)")
    parser.add_argument("--models", metavar="A,B,...",
                        help="models to write (default: all; --list names them)")
    parser.add_argument("--no-weights", action="store_true",
                        help="export without weights (export_params=False): small files")
    parser.add_argument("--list", action="store_true", help="list the models and exit")
    args = parser.parse_args(argv)
    if args.list:
        return args
    if not args.out:
        parser.error("--out DIR is required")
    if args.models is None:
        args.models = [model.name for model in MODELS]
    else:
        args.models = [name for name in args.models.split(",") if name]
        unknown = [name for name in args.models if name not in MODELS_BY_NAME]
        if unknown or not args.models:
            parser.error("unknown model %s (allowed: %s)" % (
                ", ".join(repr(name) for name in unknown) or "list ''",
                ", ".join(model.name for model in MODELS)))
    return args


def main(argv):
    args = parse_args(argv)
    if args.list:
        for model in MODELS:
            print("%-16s %-14s %s" % (model.name, "x".join(map(str, model.input_shape)),
                                       model.description))
        return 0

    torch, torchvision = import_torch()
    # torch 1.13 warns about yolo-tiny's upsample scale (a prim::Constant its ONNX shape
    # inference skips); the shapes come out right, and tests/zoo/check_zoo.py checks them.
    warnings.filterwarnings("ignore", message="The shape inference of prim::Constant")
    # One thread: the files do not depend on it, and on a busy 2-core machine the whole
    # zoo took 6 s with one thread against 15-18 s with two.
    torch.set_num_threads(1)
    os.makedirs(args.out, exist_ok=True)
    started = time.monotonic()
    for name in args.models:
        model_started = time.monotonic()
        for path in make_model(torch, torchvision, MODELS_BY_NAME[name], args.out,
                               weights=not args.no_weights):
            print("%-40s %10d bytes" % (path, os.path.getsize(path)))
        print("  %s: %.1f s" % (name, time.monotonic() - model_started))
    print("make_zoo.py: %d models in %.1f s (torch %s, torchvision %s)" % (
        len(args.models), time.monotonic() - started, torch.__version__, torchvision.__version__))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
