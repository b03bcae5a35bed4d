"""Seeing the convolutions a model runs: every call with its real shapes.

Two recorders:

- `capture_layers(model, inputs)` runs the model's forward once under a TorchFunctionMode
  that sees every `F.conv*` call (what `nn.Conv2d` itself calls, and any direct call),
  attributed to the innermost module running at that moment. The run leaves no trace on
  the model: no gradients are computed, buffers (BatchNorm statistics) and the random
  number generators are restored afterwards.
- `record_dispatch(...)` is a TorchDispatchMode that sees what reaches PyTorch's
  operator dispatch: `aten.convolution` (forward) and `aten.convolution_backward`
  (backward-data and backward-weights, whichever autograd asks for), as problems. It
  sees the backward pass, which no Python hook does, and is what proves that a guarded
  model runs only problems the store holds as OK.

Not thread-safe: modes are per thread in PyTorch, and capture_layers registers hooks on
the model for the duration of one call.
"""

import contextlib

import torch
import torch.nn as nn
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode

from convguard.torch._problems import Problem, conv2d_problem, dtype_token, layout_of

_UNSUPPORTED_OPS = {
    "conv1d": "1-D convolutions are not yet supported",
    "conv3d": "3-D convolutions are not yet supported",
    "conv_transpose1d": "transposed convolutions are not yet supported",
    "conv_transpose2d": "transposed convolutions are not yet supported",
    "conv_transpose3d": "transposed convolutions are not yet supported",
}


class ConvCall(object):
    """One convolution call seen while the model ran."""

    __slots__ = ("name", "op", "module", "problem", "unsupported", "device")

    def __init__(self, name, op, module, problem, unsupported, device):
        self.name = name
        self.op = op
        self.module = module  # the nn.Conv2d that made the call, or None (a direct call)
        self.problem = problem  # forward Problem, or None when unsupported
        self.unsupported = unsupported  # the reason, or None
        self.device = device  # torch.device of the input


class Layer(object):
    """Calls of one module (or one direct call site) with one problem, and their count."""

    __slots__ = ("name", "op", "module", "problem", "unsupported", "device", "calls")

    def __init__(self, call):
        self.name = call.name
        self.op = call.op
        self.module = call.module
        self.problem = call.problem
        self.unsupported = call.unsupported
        self.device = call.device
        self.calls = 1


def as_input_tuple(example_inputs):
    """The positional arguments model(*args) gets: a tensor is one argument."""
    if isinstance(example_inputs, torch.Tensor):
        return (example_inputs,)
    if isinstance(example_inputs, (tuple, list)):
        return tuple(example_inputs)
    raise TypeError("example_inputs must be a tensor or a tuple of the model's positional "
                    "arguments, not %s" % type(example_inputs).__name__)


@contextlib.contextmanager
def no_trace(model):
    """Runs leave the model as they found it: buffers and RNG states restored."""
    saved = [(b, b.detach().clone()) for b in model.buffers()]
    devices = sorted({b.device.index for b, _ in saved if b.device.type == "cuda"} |
                     {p.device.index for p in model.parameters() if p.device.type == "cuda"})
    with torch.random.fork_rng(devices=devices, enabled=True):
        try:
            yield
        finally:
            with torch.no_grad():
                for buffer, value in saved:
                    buffer.copy_(value)


class _FunctionRecorder(TorchFunctionMode):
    def __init__(self, names, stack, calls):
        super(_FunctionRecorder, self).__init__()
        self._names = names
        self._stack = stack
        self._calls = calls
        self._direct = {}

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        op = getattr(func, "__name__", "")
        if op == "conv2d" or op in _UNSUPPORTED_OPS:
            self._record(op, args, kwargs)
        return func(*args, **kwargs)

    def _record(self, op, args, kwargs):
        module = self._stack[-1] if self._stack else None
        owner = self._names.get(id(module), "") if module is not None else ""
        conv_module = module if isinstance(module, nn.Conv2d) and op == "conv2d" else None
        if conv_module is not None:
            name = owner or type(module).__name__
        else:
            # A direct call: named by the module it runs in and its rank there.
            site = (owner, op)
            rank = self._direct.setdefault(site, 0) + 1
            self._direct[site] = rank
            name = "%s:F.%s" % (owner or "model", op) + ("" if rank == 1 else "#%d" % rank)
        params = ["input", "weight", "bias", "stride", "padding", "dilation", "groups"]
        values = dict(zip(params, args))
        values.update(kwargs)
        x = values.get("input")
        device = x.device if isinstance(x, torch.Tensor) else torch.device("cpu")
        if op != "conv2d":
            self._calls.append(ConvCall(name, op, conv_module, None, _UNSUPPORTED_OPS[op], device))
            return
        problem, reason = conv2d_problem(x, values.get("weight"), values.get("bias"),
                                         values.get("stride", 1), values.get("padding", 0),
                                         values.get("dilation", 1), values.get("groups", 1))
        self._calls.append(ConvCall(name, op, conv_module, problem, reason, device))


def capture_layers(model, example_inputs):
    """Runs model(*example_inputs) once and returns its convolution layers, in first-call
    order: one Layer per (module or call site, problem), with its count of calls.

    Raises what the model's forward raises (the caller turns it into a clear message)."""
    inputs = as_input_tuple(example_inputs)
    names = {id(m): name for name, m in model.named_modules()}
    stack, calls, handles = [], [], []

    def push(module, _inputs):
        stack.append(module)

    def pop(module, _inputs, _output):
        if stack and stack[-1] is module:
            stack.pop()

    try:
        for module in model.modules():
            handles.append(module.register_forward_pre_hook(push))
            handles.append(module.register_forward_hook(pop))
        with no_trace(model), torch.no_grad(), _FunctionRecorder(names, stack, calls):
            model(*inputs)
    finally:
        for handle in handles:
            handle.remove()
    layers, index = [], {}
    for call in calls:
        key = (call.name, call.problem.canonical() if call.problem else call.unsupported)
        if key in index:
            layers[index[key]].calls += 1
            continue
        index[key] = len(layers)
        layers.append(Layer(call))
    return layers


class DispatchRecorder(TorchDispatchMode):
    """Records every convolution that reaches PyTorch's dispatcher as a Problem in
    `self.problems` (a list, in order; forward and backward). Calls convguard cannot
    express are kept as strings in `self.unexpressed`."""

    def __init__(self):
        super(DispatchRecorder, self).__init__()
        self.problems = []
        self.unexpressed = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = str(getattr(func, "__name__", func))
        base = name.split(".")[0]
        if base == "convolution":
            self._forward(args)
        elif base == "convolution_backward":
            self._backward(args)
        return func(*args, **kwargs)

    def _forward(self, args):
        x, weight, bias, stride, padding, dilation, transposed, _, groups = args[:9]
        if transposed:
            self.unexpressed.append("transposed convolution")
            return
        problem, reason = conv2d_problem(x, weight, bias, stride, padding, dilation, groups)
        if problem is None:
            self.unexpressed.append(reason)
        else:
            self.problems.append(problem)

    def _backward(self, args):
        (_, x, weight, bias_sizes, stride, padding, dilation, transposed, _, groups,
         mask) = args[:11]
        if transposed:
            self.unexpressed.append("transposed convolution (backward)")
            return
        # bias_sizes is [0] for a convolution without bias, [k] with one.
        has_bias = bias_sizes is not None and any(int(d) != 0 for d in bias_sizes)
        problem, reason = conv2d_problem(x, weight, True if has_bias else None, stride,
                                         padding, dilation, groups)
        if problem is None:
            self.unexpressed.append(reason)
            return
        if mask[0]:
            self.problems.append(problem.with_direction("bwd-data"))
        if mask[1]:
            self.problems.append(problem.with_direction("bwd-weights"))


__all__ = ["ConvCall", "Layer", "DispatchRecorder", "Problem", "as_input_tuple",
           "capture_layers", "dtype_token", "layout_of", "no_trace"]
