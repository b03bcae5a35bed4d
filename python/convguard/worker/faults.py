"""Injected faults (docs/fault-injection.md): the rules file, and the fatal faults.

The check library parses and matches the rules (convguard's own parser and matcher);
this module holds the parsed file and performs the faults that end the process, for
real, mirroring src/backends/inject/injecting_backend.cc: a spin that never ends, a
block in a system call, SIGSEGV, SIGABRT, exit(<code>). The faults a probe survives
(unsupported, error, oom, wrong, slow) shape its reply, in main's request loop; the
device-side parts of spin and oom are the backend's (torch_backend).

No threads: block_forever waits on a lock the calling thread itself holds.
"""

import ctypes
import os
import signal
import threading

from .log import write_line

# What a real out-of-memory failure asks for: 2^60 bytes, beyond any address space.
IMPOSSIBLE_BYTES = 1 << 60
# torch.cuda._sleep's argument: GPU clock cycles. 2^62 cycles at a few GHz is decades.
NEVER_ENDING_CYCLES = 1 << 62
# The kinds perform_fatal performs: each ends the process in the run stage.
FATAL_FAULTS = ("spin", "block", "segv", "abort", "exit")


class InjectedFaults:
    """A rules file (--inject FILE) as the check library parsed it, and the worker's call
    history that its sequence faults read (`calls`, `prev.*`).

    The history counts as InjectingBackend::Run counts in a C++ worker: a call counts when
    its run stage begins (record_run), whatever happens next; an injected `unsupported`,
    answered before the run stage, and the engine's health checks, which run without the
    rules, do not count. match() answers for the call that would come next.
    """

    def __init__(self, checklib, path, device):
        with open(path, "rb") as f:  # bytes: the digest is of the exact text
            text = f.read()
        self.checklib = checklib
        self.path = path
        # What a rule's `device` reads: the engine's index of the GPU this worker serves.
        self.device = device
        # The origin is the path as given, like `convguard worker --inject FILE`.
        self.handle = checklib.parse_rules(text, path)
        self.info = checklib.rules_info(self.handle)
        self.runs = 0  # run stages begun
        self.previous = None  # (canonical, resolved algorithm) of the last one

    def match(self, canonical, algorithm):
        """The fault of the next call, if it is (canonical, algorithm); None if none."""
        return self.checklib.match_rule(self.handle, canonical, algorithm, self.device,
                                        self.runs + 1, self.previous)

    def record_run(self, canonical, algorithm):
        """A run stage begins for (canonical, algorithm): the call counts."""
        self.runs += 1
        self.previous = (canonical, algorithm)

    def apply(self, fingerprint):
        return self.checklib.apply_rules(self.handle, fingerprint, self.device)


def announce_fatal(fault):
    """The line a C++ worker writes before a fatal fault, so stderr tells injected from real."""
    write_line(fault["announce"])


def spin_forever():
    """A CPU stand-in for a kernel that never finishes: the thread stays runnable."""
    turns = 0
    while True:
        turns += 1


def block_forever():
    """Sleeps in the kernel (a futex wait on a lock nobody releases), using no CPU."""
    never = threading.Lock()
    never.acquire()
    while True:
        never.acquire()


def segfault_now():
    """A write to address 0x10 (the first page is never mapped): the kernel sends SIGSEGV.

    Should a handler swallow it, raise it explicitly, and abort as the last resort.
    """
    ctypes.memset(0x10, 0x5E, 1)
    os.kill(os.getpid(), signal.SIGSEGV)
    os.abort()


def perform_fatal(fault, backend):
    """spin, block, segv, abort, exit(<code>): never returns.

    `backend` is the TorchBackend, whose hang_on_device() makes a spin a GPU hang.
    """
    announce_fatal(fault)
    kind = fault["kind"]
    if kind == "spin":
        backend.hang_on_device()  # returns only when there is no GPU to hang
        spin_forever()
    elif kind == "block":
        block_forever()
    elif kind == "segv":
        segfault_now()
    elif kind == "exit":
        os._exit(int(fault["exit_code"]))  # no flush, no signal, like std::_Exit
    os.abort()  # "abort", and the last resort for anything else
