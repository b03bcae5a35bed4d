"""convguard's PyTorch worker: the "torch" backend, in Python.

Started by the probe engine like every worker (docs/worker-protocol.md), through the
entry script python/convguard_torch_worker.py, it answers probe and algorithm requests
with whatever PyTorch the interpreter imports: the CPU (oneDNN or native kernels), CUDA
(cuDNN) or ROCm (MIOpen). Operands are filled and results checked by convguard's own C++
code through libconvguard_check.so (src/capi/check_capi.h, loaded with ctypes), so a
verdict of this worker is checked exactly like a verdict of `convguard worker`. See
docs/torch-worker.md.

With --inject, fault rules (docs/fault-injection.md) are parsed and matched by the same
library, and the matched fault is performed here, for real: a spin that never ends (a
never-ending kernel on a GPU), a block in a system call, SIGSEGV, SIGABRT, an exit, a
wrong result, an error, slowness, a real allocation failure, or "unsupported".

Modules, each importing only those listed before it:

    log            lines on stderr, the engine's log
    framing        the wire frames (docs/wire-framing.md) and the request/reply channel
    checklib       the ctypes binding of libconvguard_check.so
    faults         injected faults: the rules file, and the fatal faults performed
    outcomes       exceptions turned into the protocol's outcomes
    torch_backend  running problems with PyTorch on one device; the stack's fingerprint
    main           the command line, the request loop and the exit status

Needs Python 3.9+ (3.11 on Debian 12) and torch (1.13 or 2.x); no numpy. torch is
imported in one place, main.main(), after the command line, the check library and the
fault rules are accepted (TorchBackend is handed the module): importing any module of
this package never imports torch.
"""
