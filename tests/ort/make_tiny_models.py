"""Tiny ONNX models for the onnxruntime harness tests (tests/ort/ort_compare_test.cc).

    make_tiny_models.py OUTDIR                      conv.onnx, its variants, other_shape.onnx
    make_tiny_models.py --variants-of MODEL OUTDIR  the variants of MODEL, with its weights

conv.onnx is one Conv: X [1, 3, 12, 10] -> Y [1, 4, 12, 10], 3x3 kernel, pads 1, a bias,
seeded normal weights. Each variant of a model STEM.onnx is written as STEM.NAME.onnx with
the model's own initializers W and B, so that the variants of an integer-weight copy (made
by `ort_compare.py --make-exact`) are what a fixer would make of that copy:

  split       the same function as an exact spatial split: the output rows [0, 6) and
              [6, 12) are computed by two Convs on Slices of X that carry their halo (the
              input row either side that a 3x3 kernel reads) and only the zero padding that
              lies outside X, then concatenated along H.
  wrong_halo  the split with the second tile's top halo missing: it slices rows [6, 12)
              and pads a zero row above instead of reading row 5, so output row 6 is wrong
              while every shape is right. The harness must call it different.
  pad_conv    the same function as an explicit zero Pad of H and W followed by a Conv with
              pads 0: the form a runtime fuses back into one Conv's pads.

other_shape.onnx takes X [1, 3, 12, 11]: a model the harness must refuse to compare with
conv.onnx. Runs under Debian's /usr/bin/python3 (python3-onnx); writes opset 13.
"""

import argparse
import pathlib
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

N, C, H, W, K = 1, 3, 12, 10, 4
OPSET = 13


def _model(nodes, initializers, x_shape, y_shape):
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, x_shape)],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, y_shape)],
        initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.producer_name = "convguard tests/ort/make_tiny_models.py"
    onnx.checker.check_model(model)
    return model


def _ints(name, values):
    return numpy_helper.from_array(np.array(values, dtype=np.int64), name)


def _conv(inputs, output, pads):
    return helper.make_node("Conv", inputs, [output], kernel_shape=[3, 3], pads=pads)


def single_conv(w, b, width=W):
    nodes = [_conv(["X", "W", "B"], "Y", [1, 1, 1, 1])]
    inits = [numpy_helper.from_array(w, "W"), numpy_helper.from_array(b, "B")]
    return _model(nodes, inits, [N, C, H, width], [N, K, H, width])


def split(w, b, second_tile_start, second_tile_top_pad):
    """Two row tiles; each Conv's pads are [top, left, bottom, right]."""
    nodes = [
        helper.make_node("Slice", ["X", "top_starts", "top_ends", "axis_h"], ["X_top"]),
        helper.make_node("Slice", ["X", "bottom_starts", "bottom_ends", "axis_h"], ["X_bottom"]),
        # Output rows [0, 6) read input rows [-1, 7): row -1 is X's own zero padding.
        _conv(["X_top", "W", "B"], "Y_top", [1, 1, 0, 1]),
        # Output rows [6, 12) read input rows [5, 13): row 12 is X's own zero padding.
        _conv(["X_bottom", "W", "B"], "Y_bottom", [second_tile_top_pad, 1, 1, 1]),
        helper.make_node("Concat", ["Y_top", "Y_bottom"], ["Y"], axis=2),
    ]
    inits = [
        numpy_helper.from_array(w, "W"),
        numpy_helper.from_array(b, "B"),
        _ints("axis_h", [2]),
        _ints("top_starts", [0]),
        _ints("top_ends", [7]),
        _ints("bottom_starts", [second_tile_start]),
        _ints("bottom_ends", [H]),
    ]
    return _model(nodes, inits, [N, C, H, W], [N, K, H, W])


def pad_conv(w, b):
    nodes = [
        helper.make_node("Pad", ["X", "pads"], ["X_padded"], mode="constant"),
        _conv(["X_padded", "W", "B"], "Y", [0, 0, 0, 0]),
    ]
    inits = [
        numpy_helper.from_array(w, "W"),
        numpy_helper.from_array(b, "B"),
        # [N, C, H, W] begins, then ends: one zero row and column each side.
        _ints("pads", [0, 0, 1, 1, 0, 0, 1, 1]),
    ]
    return _model(nodes, inits, [N, C, H, W], [N, K, H, W])


def write_variants(model_path, out_dir):
    model = onnx.load(str(model_path))
    weights = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    if set(weights) != {"W", "B"} or weights["W"].shape != (K, C, 3, 3):
        sys.exit(f"make_tiny_models.py: {model_path} is not a conv.onnx (initializers W, B)")
    w, b = weights["W"], weights["B"]
    stem = pathlib.Path(model_path).name.removesuffix(".onnx")
    variants = {
        "split": split(w, b, second_tile_start=5, second_tile_top_pad=0),
        "wrong_halo": split(w, b, second_tile_start=6, second_tile_top_pad=1),
        "pad_conv": pad_conv(w, b),
    }
    for name, variant in variants.items():
        onnx.save(variant, str(out_dir / f"{stem}.{name}.onnx"))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variants-of", metavar="MODEL", help="write only MODEL's variants")
    parser.add_argument("out_dir", metavar="OUTDIR")
    args = parser.parse_args()
    out_dir = pathlib.Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if args.variants_of:
        write_variants(args.variants_of, out_dir)
        return
    rng = np.random.default_rng(7)
    w = rng.standard_normal((K, C, 3, 3)).astype(np.float32)
    b = rng.standard_normal(K).astype(np.float32)
    onnx.save(single_conv(w, b), str(out_dir / "conv.onnx"))
    onnx.save(single_conv(w, b, width=W + 1), str(out_dir / "other_shape.onnx"))
    write_variants(out_dir / "conv.onnx", out_dir)


if __name__ == "__main__":
    main()
