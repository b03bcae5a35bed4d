"""Failures turned into the protocol's outcomes (docs/torch-worker.md, "Outcomes").

PyTorch reports an unsupported configuration or an exhausted device by raising, with
messages that differ between versions and vendor libraries; a probe's reply must say
`unsupported`, `oom` or `error` as a C++ worker would. Unsupported is what the backend
raises for what it does not offer; first_line keeps the gist of PyTorch's long messages.
"""

from .checklib import CG_ENOMEM, CheckLibError


class Unsupported(Exception):
    """An algorithm or direction the worker does not offer (Backend::Supports says no)."""


# Matched in lower case against "<exception type>: <message>".
UNSUPPORTED_MARKERS = (
    "not implemented for",
    "not supported",
    "notimplementederror",
    "does not have a deterministic implementation",
    "is not deterministic",
    "no kernel image is available",
    "cudnn_status_not_supported",
    "miopenstatusnotimplemented",
    "unsupported",
)
OOM_MARKERS = (
    "out of memory",
    "can't allocate memory",
    "cannot allocate memory",
    "failed to allocate",
    "cudnn_status_alloc_failed",
)


def outcome_for_exception(torch, exc):
    """`unsupported`, `oom` or `error` for an exception a probe raised.

    `torch` is the imported module: torch.cuda.OutOfMemoryError exists only in some
    versions, so the type is looked up, not named.
    """
    if isinstance(exc, Unsupported):
        return "unsupported"
    if isinstance(exc, MemoryError):
        return "oom"
    oom_type = getattr(getattr(torch, "cuda", None), "OutOfMemoryError", None)
    if oom_type is not None and isinstance(exc, oom_type):
        return "oom"
    text = ("%s: %s" % (type(exc).__name__, exc)).lower()
    if isinstance(exc, CheckLibError):
        return "oom" if exc.code == CG_ENOMEM else "error"
    if any(m in text for m in OOM_MARKERS):
        return "oom"
    if isinstance(exc, NotImplementedError) or any(m in text for m in UNSUPPORTED_MARKERS):
        return "unsupported"
    return "error"


def first_line(exc, limit=2000):
    """The first lines of an exception's message, joined by " | ", at most `limit` chars."""
    text = str(exc).strip() or type(exc).__name__
    # PyTorch's messages carry C++ stack traces after the first lines; keep the gist.
    lines = [ln for ln in text.splitlines() if ln.strip()]
    gist = " | ".join(lines[:3])
    return gist[:limit]
