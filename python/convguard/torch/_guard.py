"""convguard.torch.guard: a model whose bad convolutions run through convguard's plans.

A guarded layer is the same module object with its class swapped for a subclass that
overrides only `_conv_forward` (what nn.Conv2d.forward calls):
the Parameters, state_dict() keys and tensors, hooks, an optimizer built before, and
isinstance(module, nn.Conv2d) all stay. `_conv_forward` looks the call's problem up
in the layer's plans and executes the plan with ordinary torch operations:

- a rewrite step follows its forward pieces (convguard's plan JSON, `pieces`): slice P's
  input box, append zero channels when the child has more, take P's filters k (every
  column) zero-extended to the child's filter shape, run the child, keep its first
  k.size() output channels; pieces are concatenated back along the axes where their
  output boxes differ; a piece of slot -1 is the bias (or zeros);
- a leaf is one F.conv2d of the leaf problem; asymmetric pads are an explicit zero F.pad
  first, as convguard's PyTorch worker runs (and probes) such problems.

Autograd differentiates exactly these operations, so the backward pass runs the
backward-data and backward-weights problems of the same leaves, which a training scan
has checked. Problems a layer was not planned for are refused with a clear message
rather than run on a stack known to misbehave (see GuardedConv2d._conv_forward).

Thread-safety: guard()/unguard() change the model in place and must not race with its
use; a guarded model may run from several threads as the original could.
"""

import warnings

import torch
import torch.nn as nn
import torch.nn.functional as F

from convguard.torch._problems import conv2d_problem, parse_canonical
from convguard.torch._capture import DispatchRecorder, as_input_tuple, no_trace
from convguard.torch._scan import ConvguardError, ConvguardInputError, run_scan, scan


class GuardError(ConvguardError):
    """Some layer cannot be guarded (blocked, unknown, a direct call); nothing changed.

    .report is the ScanReport, .changes what guard() would have done."""

    def __init__(self, message, report, changes):
        super(GuardError, self).__init__(message)
        self.report = report
        self.changes = changes


class Change(object):
    """What guard() did (or could not do) to one layer."""

    __slots__ = ("name", "action", "problems", "plan", "detail")

    def __init__(self, name, action, problems, plan, detail):
        self.name = name
        self.action = action  # guarded, blocked, unknown, unsupported, direct-call
        self.problems = problems  # the layer's bad (or unknown) problems, canonical
        self.plan = plan  # the plan's summary, e.g. "pad-output-channels k=32->33"
        self.detail = detail

    def __repr__(self):
        return "Change(%s: %s%s)" % (self.name, self.action,
                                     ", " + self.plan if self.plan else "")

    def __str__(self):
        text = "%s: %s" % (self.name, self.action)
        if self.plan:
            text += " by %s" % self.plan
        if self.detail:
            text += " (%s)" % self.detail
        return text


class _Piece(object):
    __slots__ = ("slot", "n", "c", "h", "w", "k", "out_n", "out_h", "out_w")

    def __init__(self, data):
        for name in self.__slots__:
            setattr(self, name, data[name] if name == "slot" else tuple(data[name]))


class _Step(object):
    """A plan step parsed once: its problem, children and pieces."""

    def __init__(self, data):
        self.kind = data.get("kind", "")
        self.parameters = data.get("parameters", "")
        self.problem = parse_canonical(data["problem"])
        self.children = [_Step(c) for c in data.get("children", [])]
        self.pieces = [_Piece(p) for p in data.get("pieces", [])]
        if self.children and not self.pieces:
            raise ConvguardError("plan step '%s %s' has no forward pieces (a convguard "
                                 "command older than this package?)" %
                                 (self.kind, self.parameters))

    def leaves(self):
        if not self.children:
            return [self.problem]
        return [leaf for child in self.children for leaf in child.leaves()]


def _run_leaf(p, x, weight, bias):
    if p.layout == "nhwc":
        x = x.contiguous(memory_format=torch.channels_last)
    if p.symmetric:
        padding = (p.pad_top, p.pad_left)
    else:
        x = F.pad(x, (p.pad_left, p.pad_right, p.pad_top, p.pad_bottom))
        padding = (0, 0)
    return F.conv2d(x, weight, bias if p.bias else None, (p.stride_h, p.stride_w), padding,
                    (p.dilation_h, p.dilation_w), p.groups)


def _span(piece, axis):
    return (piece.out_n, piece.k, piece.out_h, piece.out_w)[axis]


def _assemble(items, axis):
    """Concatenates output boxes that tile a box, along the first axis where they differ."""
    if len(items) == 1:
        return items[0][1]
    for a in range(axis, 4):
        groups = {}
        for item in items:
            groups.setdefault(_span(item[0], a)[0], []).append(item)
        if len(groups) == 1:
            continue
        parts = [_assemble(groups[begin], a + 1) for begin in sorted(groups)]
        return torch.cat(parts, dim=a)
    return items[0][1]


def run_step(step, x, weight, bias):
    """Computes step.problem's forward convolution of x (N x C x H x W) with weight and
    bias (None when the problem has none) the way the plan says."""
    p = step.problem
    if not step.children:
        return _run_leaf(p, x, weight, bias)
    outputs = []
    for piece in step.pieces:
        if piece.slot < 0:
            shape = (piece.out_n[1] - piece.out_n[0], piece.k[1] - piece.k[0],
                     piece.out_h[1] - piece.out_h[0], piece.out_w[1] - piece.out_w[0])
            if bias is not None:
                box = bias[piece.k[0]:piece.k[1]].reshape(1, -1, 1, 1).expand(shape)
            else:
                box = x.new_zeros(shape)
            outputs.append((piece, box))
            continue
        child = step.children[piece.slot]
        cp = child.problem
        xin = x
        if (piece.n[1] - piece.n[0], piece.c[1] - piece.c[0], piece.h[1] - piece.h[0],
                piece.w[1] - piece.w[0]) != tuple(x.shape):
            xin = x[piece.n[0]:piece.n[1], piece.c[0]:piece.c[1], piece.h[0]:piece.h[1],
                    piece.w[0]:piece.w[1]]
        channels = piece.c[1] - piece.c[0]
        if cp.c > channels:
            xin = F.pad(xin, (0, 0, 0, 0, 0, cp.c - channels))
        filters = piece.k[1] - piece.k[0]
        w = weight[piece.k[0]:piece.k[1]]
        extra_columns = cp.c // cp.groups - p.c // p.groups
        if cp.k > filters or extra_columns > 0:
            w = F.pad(w, (0, 0, 0, 0, 0, extra_columns, 0, cp.k - filters))
        b = None
        if bias is not None and cp.bias:
            b = bias[piece.k[0]:piece.k[1]]
            if cp.k > filters:
                b = F.pad(b, (0, cp.k - filters))
        y = run_step(child, xin, w, b)
        if cp.k > filters:
            y = y[:, :filters]
        outputs.append((piece, y))
    return _assemble(outputs, 0)


class GuardedConv2d(nn.Conv2d):
    """An nn.Conv2d whose convolutions run through convguard's plans (see the module
    docstring). Never constructed: guard() swaps an existing module's class to this one
    (or to a subclass of the module's own class made the same way)."""

    def _conv_forward(self, input, weight, bias):  # noqa: A002 (nn.Conv2d's own name)
        padding = self.padding
        if self.padding_mode != "zeros":
            # As nn.Conv2d does: the padding mode's own pad, then an unpadded convolution
            # (the problem the scan saw).
            input = F.pad(input, self._reversed_padding_repeated_twice, mode=self.padding_mode)
            padding = 0
        problem, reason = conv2d_problem(input, weight, bias, self.stride, padding,
                                         self.dilation, self.groups)
        key = problem.canonical() if problem is not None else None
        step = self._convguard_plans.get(key)
        if step is not None:
            return run_step(step, input, weight, bias)
        if key in self._convguard_ok:
            return F.conv2d(input, weight, bias, self.stride, padding, self.dilation,
                            self.groups)
        raise ConvguardError(
            "convguard: layer '%s' was guarded for %s; this call is %s, which was not "
            "scanned. Scan and guard with example inputs of this shape too (or keep "
            "batches one size, e.g. drop_last=True)" % (
                self._convguard_name,
                ", ".join(sorted(set(self._convguard_plans) | self._convguard_ok)),
                key or reason))


_GUARDED_CLASSES = {nn.Conv2d: GuardedConv2d}


def _guarded_class(cls):
    """GuardedConv2d for nn.Conv2d; for a subclass, a subclass of it made the same way."""
    if cls not in _GUARDED_CLASSES:
        _GUARDED_CLASSES[cls] = type("Guarded" + cls.__name__, (cls,),
                                     {"_conv_forward": GuardedConv2d._conv_forward,
                                      "__module__": __name__})
    return _GUARDED_CLASSES[cls]


def _check_realisations(plans, report, training, changes):
    """A leaf with asymmetric pads reaches PyTorch as an explicit F.pad and an unpadded
    convolution of the padded size: a problem of its own. Those problems are scanned too
    (probed when the report probed), so that everything the guarded model runs has a
    verdict; a layer whose realisation is not OK is blocked."""
    directions = ("fwd", "bwd-data", "bwd-weights") if training else ("fwd",)
    wanted = {}
    for module, name, module_plans in plans.values():
        for step in module_plans.values():
            for leaf in step.leaves():
                if not leaf.symmetric:
                    for d in directions:
                        wanted.setdefault(leaf.with_direction(d).as_torch_runs_it().canonical(),
                                          set()).add(name)
    if not wanted:
        return
    document = {"convguard_layers": 1, "origin": "convguard.torch guard",
                "notes": ["plan leaves with asymmetric pads, as PyTorch runs them"],
                "layers": [{"name": "leaf%d" % i, "op": "conv2d", "problem": problem}
                           for i, problem in enumerate(sorted(wanted))]}
    options = dict(report.scan_options)
    data, _, _ = run_scan(document, False, options.get("backend", "torch"), options.get("db"),
                          options.get("store", True), options.get("probe", True),
                          options.get("inject"), options.get("devices"),
                          options.get("quiet", False), options.get("options", ()))
    bad_names = {}
    for layer in data.get("layers", []):
        if layer.get("state") != "OK":
            for p in layer.get("problems", []):
                for name in wanted.get(p["problem"], ()):
                    bad_names.setdefault(name, []).append(
                        "%s %s" % (p["problem"], p.get("verdict") or layer.get("state")))
    for module, name, _ in list(plans.values()):
        if name in bad_names:
            del plans[id(module)]
            for c in changes:
                if c.name == name and c.action == "guarded":
                    c.action = "blocked"
                    c.detail = ("its plan's padded leaves run in PyTorch as %s" %
                                "; ".join(bad_names[name]))


def _summary(plan):
    root = plan.get("root", {})
    return ("%s %s" % (root.get("kind", ""), root.get("parameters", ""))).strip()


def guard(model, example_inputs, training=True, strict=True, report=None, **scan_options):
    """Guards `model` in place so that it runs (and with training=True trains) on this
    stack: each conv module whose problems are not all OK runs convguard's exact plan.

    Scans first (scan()'s options pass through: backend, db, probe, inject, devices,
    quiet, options). Returns (model, changes): the same model object and one Change per
    layer that is not OK. With strict=True (the default), when some layer is blocked,
    unknown or a direct F.conv2d call that cannot be replaced, GuardError is raised and
    the model is left unchanged; strict=False guards what can be guarded and warns.
    unguard(model) restores the original modules. report: a ScanReport of this model on
    these inputs from scan() (with the same training), used instead of scanning again."""
    if report is None:
        report = scan(model, example_inputs, training=training, **scan_options)
    elif report.training != bool(training):
        raise ConvguardInputError("the report was scanned with training=%s, guard() was "
                                  "asked for training=%s" % (report.training, training))
    changes, plans = [], {}
    for layer in report.layers:
        if layer.state == "OK":
            continue
        bad = [p.problem for p in layer.problems if p.state != "OK"]
        if layer.state == "UNSUPPORTED":
            changes.append(Change(layer.name, "unsupported", [], None, layer.unsupported))
            continue
        if layer.state == "UNKNOWN":
            changes.append(Change(layer.name, "unknown", bad, None,
                                  "no verdict; scan with probe=True"))
            continue
        plan = layer.plan
        if plan is None:
            changes.append(Change(layer.name, "blocked", bad, None, "no exact plan works"))
            continue
        if layer.module is None:
            changes.append(Change(layer.name, "direct-call", bad, _summary(plan),
                                  "a direct F.conv2d call: only modules can be guarded"))
            continue
        step = _Step(plan["root"])
        plans.setdefault(id(layer.module), (layer.module, layer.name, {}))[2][
            layer.forward.canonical()] = step
        changes.append(Change(layer.name, "guarded", bad, _summary(plan),
                              "%d leaf run(s)" % len(step.leaves())))
    _check_realisations(plans, report, training, changes)
    failed = [c for c in changes if c.action in ("blocked", "unknown", "direct-call")]
    if failed and strict:
        raise GuardError("convguard: %d layer(s) cannot be guarded: %s" % (
            len(failed), "; ".join(str(c) for c in failed)), report, changes)
    for c in failed:
        warnings.warn("convguard: not guarded: %s" % c)
    ok = {}
    for layer in report.layers:
        if layer.module is not None and layer.state == "OK" and layer.forward is not None:
            ok.setdefault(id(layer.module), set()).add(layer.forward.canonical())
    for module, name, module_plans in plans.values():
        original = type(module)
        if isinstance(module, GuardedConv2d) or "_convguard_original" in module.__dict__:
            original = module.__dict__.get("_convguard_original", original)
        module.__dict__["_convguard_original"] = original
        module.__dict__["_convguard_name"] = name
        module.__dict__["_convguard_plans"] = module_plans
        module.__dict__["_convguard_ok"] = ok.get(id(module), set())
        module.__class__ = _guarded_class(original)
    return model, changes


def unguard(model):
    """Restores every module guard() changed to its original class; returns the list of
    the names restored."""
    restored = []
    for name, module in model.named_modules():
        original = module.__dict__.pop("_convguard_original", None)
        if original is None:
            continue
        for attribute in ("_convguard_name", "_convguard_plans", "_convguard_ok"):
            module.__dict__.pop(attribute, None)
        module.__class__ = original
        restored.append(name)
    return restored


def allowed_problems(model, report):
    """Canonical forms of every problem the guarded model may run as PyTorch sees it:
    the problems of the report's OK layers, and each guarded layer's plan leaves in the
    directions the report checked."""
    directions = ("fwd", "bwd-data", "bwd-weights") if report.training else ("fwd",)
    allowed = set()
    for layer in report.layers:
        if layer.state == "OK":
            allowed.update(parse_canonical(p.problem).as_torch_runs_it().canonical()
                           for p in layer.problems)
    for module in model.modules():
        for step in module.__dict__.get("_convguard_plans", {}).values():
            for leaf in step.leaves():
                allowed.update(leaf.with_direction(d).as_torch_runs_it().canonical()
                               for d in directions)
    return allowed


class Verification(object):
    """What reached PyTorch in one run of a guarded model, and what should not have."""

    def __init__(self, recorded, unexpected, unexpressed):
        self.recorded = recorded  # canonical problems, in order, forward and backward
        self.unexpected = unexpected  # those no OK verdict or plan leaf covers
        self.unexpressed = unexpressed  # calls convguard cannot express (reasons)

    @property
    def ok(self):
        return not self.unexpected and not self.unexpressed


def verify(model, example_inputs, report, training=None):
    """Runs the (guarded) model once on example_inputs, and with training its backward
    of the sum of its outputs, recording every convolution that reaches PyTorch's
    dispatcher; returns a Verification. Leaves no trace: gradients, buffers and RNG
    states are restored."""
    training = report.training if training is None else training
    inputs = as_input_tuple(example_inputs)
    allowed = allowed_problems(model, report)
    recorder = DispatchRecorder()
    grads = [(p, p.grad) for p in model.parameters()]
    try:
        with no_trace(model), torch.enable_grad() if training else torch.no_grad():
            if training:
                inputs = tuple(t.detach().requires_grad_(t.is_floating_point())
                               if isinstance(t, torch.Tensor) else t for t in inputs)
            with recorder:
                out = model(*inputs)
                if training:
                    outs = out if isinstance(out, (tuple, list)) else [out]
                    sum(o.float().sum() for o in outs if isinstance(o, torch.Tensor)).backward()
    finally:
        for p, g in grads:
            p.grad = g
    recorded = [p.canonical() for p in recorder.problems]
    unexpected = [p for p in recorded if p not in allowed]
    return Verification(recorded, unexpected, list(recorder.unexpressed))


def is_guarded(module):
    return "_convguard_original" in module.__dict__
