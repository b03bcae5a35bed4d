"""Writes the ONNX fuzz target's seed corpus (tests/fuzz/corpus/onnx/): tiny models that
reach every path of the reader (not all of them pass the ONNX checker: outputs without
shapes, as exporters write them (explicit pads, auto_pad, groups, dilation, a dynamic batch,
a bias routed through Identity, ConvTranspose, a 1-D convolution)).

    /usr/bin/python3 tests/fuzz/make_onnx_seeds.py tests/fuzz/corpus/onnx

Uses Debian's python3-onnx; the seeds are committed, so this runs only to change them.
"""
import os
import sys

import numpy as np
from onnx import TensorProto, helper, numpy_helper


def model(nodes, inputs, outputs, initializers):
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializers)
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="convguard-seeds")
    m.ir_version = 8
    return m


def tensor(name, shape, value=1.0):
    return numpy_helper.from_array(np.full(shape, value, dtype=np.float32), name)


def value(name, shape):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def main(out):
    os.makedirs(out, exist_ok=True)
    seeds = {
        "conv_pads": model([helper.make_node("Conv", ["x", "w", "b"], ["y"], pads=[1, 0, 2, 1], strides=[2, 1])],
                           [value("x", [1, 2, 7, 6])], [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                           [tensor("w", [4, 2, 3, 3]), tensor("b", [4])]),
        "same_upper_groups": model([helper.make_node("Conv", ["x", "w"], ["y"], auto_pad="SAME_UPPER", group=2,
                                                     dilations=[2, 1], strides=[1, 2])],
                                   [value("x", [1, 4, 9, 8])], [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [tensor("w", [4, 2, 3, 2])]),
        "dynamic_batch": model([helper.make_node("Conv", ["x", "w"], ["y"], auto_pad="VALID")],
                               [value("x", ["batch", 3, 8, 8])], [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [tensor("w", [2, 3, 1, 1])]),
        "identity_bias_two_convs": model(
            [helper.make_node("Identity", ["b0"], ["b"]),
             helper.make_node("Conv", ["x", "w0", "b"], ["h"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["h"], ["r"]),
             helper.make_node("Conv", ["r", "w1", "b"], ["y"], pads=[1, 1, 1, 1])],
            [value("x", [1, 2, 5, 5])], [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
            [tensor("w0", [2, 2, 3, 3]), tensor("w1", [2, 2, 3, 3]), tensor("b0", [2])]),
        "conv_transpose": model([helper.make_node("ConvTranspose", ["x", "w"], ["y"])],
                                [value("x", [1, 2, 4, 4])], [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [tensor("w", [2, 3, 3, 3])]),
        "conv_1d": model([helper.make_node("Conv", ["x", "w"], ["y"])],
                         [value("x", [1, 2, 9])], [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [tensor("w", [3, 2, 3])]),
    }
    for name, m in seeds.items():
        with open(os.path.join(out, name + ".onnx"), "wb") as f:
            f.write(m.SerializeToString())


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "tests/fuzz/corpus/onnx")
