"""convguard for PyTorch: scan a model's convolutions on this stack, and guard it.

    import convguard.torch as cgt
    report = cgt.scan(model, torch.randn(1, 3, 224, 224))   # per layer: verdicts, plans
    print(report)                                           # a table; report.to_json()
    model, changes = cgt.guard(model, torch.randn(1, 3, 224, 224))
    ...                                                     # train or run as before
    cgt.unguard(model)

scan() runs the model once on the example inputs to see every convolution with its real
shapes (forward, and with training=True the backward-data and backward-weights problems
PyTorch chooses algorithms for again at backward time), and asks the convguard command
for their verdicts on this stack, probing the unknown ones in isolated workers: a hang
kills a worker, never this process. guard() makes each conv module whose problems are
not all OK run convguard's exact plan with ordinary torch operations, sharing the
original Parameters. See the README ("PyTorch") and python -m convguard.torch --help.

Importing this package imports nothing heavy; its first use imports torch, and in an
interpreter without torch raises ImportError naming the interpreter (so that
`python -m convguard.torch` can say so in one line).
"""

import importlib
import sys

_EXPORTS = {
    "scan": "_scan", "ScanReport": "_scan", "LayerReport": "_scan", "ProblemReport": "_scan",
    "ConvguardError": "_scan", "ConvguardInputError": "_scan",
    "guard": "_guard", "unguard": "_guard", "is_guarded": "_guard", "verify": "_guard",
    "Verification": "_guard", "allowed_problems": "_guard", "Change": "_guard",
    "GuardError": "_guard", "GuardedConv2d": "_guard", "run_step": "_guard",
    "DispatchRecorder": "_capture", "capture_layers": "_capture",
    "Problem": "_problems", "parse_canonical": "_problems",
}
__all__ = sorted(_EXPORTS)


def _require_torch():
    try:
        importlib.import_module("torch")
    except ImportError as e:
        raise ImportError("convguard.torch needs PyTorch, which this interpreter (%s) cannot "
                          "import: %s. Install torch, or use the interpreter that has it." %
                          (sys.executable, e))


def __getattr__(name):
    if name not in _EXPORTS:
        raise AttributeError("module 'convguard.torch' has no attribute '%s'" % name)
    _require_torch()
    value = getattr(importlib.import_module("convguard.torch." + _EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(list(globals()) + __all__)
