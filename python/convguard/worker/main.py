"""The worker's command line, its request loop and its exit status.

The engine runs it (through python/convguard_torch_worker.py) as

    PYTHON -B convguard_torch_worker.py --checklib LIBCONVGUARD_CHECK \\
        [--device cpu|cuda|auto] --backend torch [--inject RULES_FILE]

and it answers `probe` and `algorithms` requests until `bye` or EOF
(docs/worker-protocol.md). main() keeps the protocol stream clean (fd 1 goes to stderr;
replies use a private copy of the original stdout), then loads the check library, reads
the fault rules, and only then imports torch: a bad command line, a missing library or a
bad rules file is answered without paying for torch, and any interpreter can run the
tests of those paths.

For benchmarks, --time-in-process PROBLEM --count N runs the worker's own probe code N
times in this process, without the protocol, and prints one JSON line with the timing.

Environment: CONVGUARD_TORCH_DEVICE is the default for --device; on the CPU,
CONVGUARD_TORCH_THREADS sets PyTorch's intra-op threads (default 1: the engine runs one
CPU worker per core); CONVGUARD_DEVICE_INDEX, set by the engine, is the worker's device
among the engine's devices, what a fault rule's `device` reads (default 0).

Exit status: 0 after "bye" or EOF on stdin; 2 for a bad command line; 3 when the backend
cannot start, or the fault rules cannot be read or parsed (after a "fatal" message); 4
when the reply channel breaks; 5 after a GPU error that leaves the device context
unusable (the probe in flight is then a CRASH, decided by the engine from outside).
Injected faults end the process as they say (a signal, or exit(<code>)).

One thread: requests are answered one at a time, in order.
"""

import argparse
import json
import os
import sys
import time

from .checklib import CheckLib, CheckLibError
from .faults import FATAL_FAULTS, IMPOSSIBLE_BYTES, InjectedFaults, perform_fatal
from .framing import PROTOCOL_VERSION, Channel, ChannelBroken
from .log import log
from .outcomes import first_line, outcome_for_exception
from .torch_backend import TorchBackend

EXIT_USAGE = 2
EXIT_BACKEND_FAILED = 3
EXIT_PROTOCOL_BROKEN = 4
EXIT_DEVICE_BROKEN = 5


def mapped_files():
    """The files this process has mapped (/proc/self/maps: the interpreter, torch's and the
    vendors' shared libraries), and the worker's own modules and torch's version file,
    which are read rather than mapped: the stack stays what it says while none of them
    changes. Empty where /proc cannot be read."""
    files = set()
    try:
        with open("/proc/self/maps") as maps:
            for line in maps:
                slash = line.find("/")
                if slash < 0:
                    continue
                path = line[slash:].rstrip("\n")
                if path.startswith("/dev/") or path.endswith(" (deleted)") or "memfd:" in path:
                    continue
                files.add(path)
    except OSError:
        return []
    here = os.path.dirname(os.path.abspath(__file__))
    for name in sorted(os.listdir(here)):
        if name.endswith(".py"):
            files.add(os.path.join(here, name))
    torch = sys.modules.get("torch")
    if torch is not None and getattr(torch, "__file__", None):
        torch_dir = os.path.dirname(os.path.abspath(torch.__file__))
        for name in ("__init__.py", "version.py"):
            files.add(os.path.join(torch_dir, name))
    return sorted(files)


class Worker:
    """Answers requests: hello, probe and algorithms, through `channel`."""

    def __init__(self, channel, checklib, backend, torch, faults=None):
        self.channel = channel
        self.checklib = checklib
        self.backend = backend
        self.torch = torch
        self.faults = faults  # InjectedFaults, or None

    def fingerprint(self):
        fingerprint = self.backend.fingerprint(self.checklib.tool_version())
        if self.faults is not None:
            # Overrides, emulation text and fault_rules_digest exactly as a C++ worker's
            # InjectingBackend applies them.
            fingerprint = self.faults.apply(fingerprint)
        return fingerprint

    def hello(self):
        hello = {
            "type": "hello",
            "pid": os.getpid(),
            "backend": "torch",
            "fingerprint": self.fingerprint(),
            "first_call_allowance_ms": self.backend.first_call_allowance_ms(),
            "shares_device": self.backend.gpu,
            "visible_devices": self.backend.visible_devices(),
            "mapped_files": mapped_files(),
        }
        by_algorithm = self.backend.first_call_allowance_ms_by_algorithm()
        if by_algorithm:
            hello["first_call_allowance_ms_by_algorithm"] = by_algorithm
        self.channel.send(hello)

    def serve(self):
        while True:
            message = self.channel.receive()
            if message is None:
                return 0  # the engine closed our stdin
            if message.get("v") != PROTOCOL_VERSION:
                log("ignoring a request of protocol version %r (this worker speaks %d)"
                    % (message.get("v"), PROTOCOL_VERSION))
                continue
            kind = message.get("type")
            if kind == "bye":
                return 0
            received = time.perf_counter()
            try:
                if kind == "probe":
                    reply = self.probe(message)
                    # The worker's own account of its time (docs/worker-protocol.md).
                    reply.setdefault("stage_ms", {})["total"] = (
                        (time.perf_counter() - received) * 1000.0)
                elif kind == "algorithms":
                    reply = self.list_algorithms(message)
                else:
                    log("ignoring a request of type %r" % kind)
                    continue
            except (KeyError, TypeError, ValueError) as e:
                log("ignoring a malformed %s request: %s" % (kind, e))
                continue
            self.channel.send(reply)

    def list_algorithms(self, request):
        reply = {"type": "algorithms", "id": int(request["id"]), "names": [], "message": ""}
        try:
            reply["names"] = self.backend.algorithms(self.checklib.problem(str(request["problem"])))
        except CheckLibError as e:
            reply["message"] = str(e)
        return reply

    def probe(self, request):
        started = time.perf_counter()
        stage_ms = {}
        request_id = int(request["id"])
        canonical = str(request["problem"])
        algorithm = str(request.get("algorithm", "") or "")
        seed = int(request.get("seed", 1))
        warmup = int(request.get("warmup", 1))
        repeats = int(request.get("repeats", 3))
        check = str(request.get("check", "sampled"))
        sample_points = int(request.get("sample_points", 256))
        reply = {
            "type": "result", "id": request_id, "outcome": "error", "algorithm": algorithm,
            "times_ms": [], "implementation": "", "message": "", "check": "", "tolerance": -1.0,
            "mismatches": 0, "non_finite": 0, "max_abs_error": 0.0, "max_rel_error": 0.0,
        }
        if check not in ("none", "sampled", "full") or warmup < 0 or repeats < 1 or sample_points < 0:
            reply["message"] = ("bad probe request: needs check none|sampled|full, warmup >= 0, "
                                "repeats >= 1, sample_points >= 0")
            return reply
        try:
            p = self.checklib.problem(canonical)
        except CheckLibError as e:
            reply["message"] = "bad problem: %s" % e
            return reply
        if not algorithm:
            names = self.backend.algorithms(p)
            if not names:
                reply["outcome"] = "unsupported"
                reply["message"] = "the backend offers no algorithm for this problem"
                return reply
            algorithm = names[0]
            reply["algorithm"] = algorithm

        # Fault injection, in the order of the C++ worker under an InjectingBackend: an
        # injected "unsupported" answers before anything is allocated (Supports); every
        # other fault is performed in the run stage (Run), after the operands are filled.
        # Both see the call history of the call that would come next (sequence faults).
        fault = None
        # A health check (the engine's known-good probe) asks about the device, not the
        # shape: injected faults do not apply to it, as in the C++ worker.
        if self.faults is not None and not request.get("health", False):
            try:
                fault = self.faults.match(canonical, algorithm)
            except CheckLibError as e:
                reply["message"] = "fault rules: %s" % e
                return reply
        if fault is not None and fault["kind"] == "unsupported":
            reply["outcome"] = "unsupported"
            reply["message"] = fault["message"] + fault["injected_by"]
            return reply

        handle = None
        phase_sent = [False]
        run_started = [started]

        def on_run_start():
            stage_ms["prep"] = (time.perf_counter() - started) * 1000.0
            reply["stage_ms"] = stage_ms
            self.channel.send({"type": "phase", "id": request_id, "phase": "run"})
            phase_sent[0] = True
            run_started[0] = time.perf_counter()
            if fault is not None and fault["kind"] == "slow":
                # As if every execution (warm-up and timed) were slow_ms slower.
                time.sleep(int(fault["slow_ms"]) * (max(0, warmup) + max(0, repeats)) / 1000.0)

        try:
            self.backend.check_supported(p, algorithm)
            handle = self.checklib.open_probe(canonical, seed)
            host = self._host_buffers(p, handle)
            # Where a C++ worker calls Backend::Run: the call counts from here, whatever
            # happens next (a fault, a failure, a fatal fault that never returns). The fault
            # matched above was matched for this call, as nothing ran in between.
            if self.faults is not None and not request.get("health", False):
                self.faults.record_run(canonical, algorithm)
            if fault is not None and fault["kind"] in FATAL_FAULTS + ("error", "oom"):
                on_run_start()
                if fault["kind"] in FATAL_FAULTS:
                    perform_fatal(fault, self.backend)  # never returns
                if fault["kind"] == "error":
                    reply["message"] = fault["message"] + fault["injected_by"]
                    return reply
                reply["outcome"] = "oom"
                if self.backend.allocation_fails():
                    reply["message"] = "allocating %d bytes failed%s" % (
                        IMPOSSIBLE_BYTES, fault["injected_by"])
                else:
                    reply["message"] = ("allocating %d bytes unexpectedly succeeded; reporting "
                                        "OOM anyway%s" % (IMPOSSIBLE_BYTES, fault["injected_by"]))
                return reply
            times, implementation, result = self.backend.run(
                p, algorithm, host, warmup, repeats, on_run_start)
            if fault is not None and fault["kind"] in ("wrong", "slow"):
                if fault["kind"] == "wrong":
                    # `result` is float32 host memory in tensor.h's layout: the same tensor,
                    # in the same order, that InjectingBackend corrupts.
                    self.checklib.corrupt_tail(result.data_ptr(), result.numel(),
                                               float(fault["wrong_fraction"]))
                else:
                    times = [t + float(fault["slow_ms"]) for t in times]
                implementation = (implementation + " " if implementation else "") + fault["mark"]
            reply["times_ms"] = times
            reply["implementation"] = implementation
            stage_ms["run"] = (time.perf_counter() - run_started[0]) * 1000.0
            self.channel.send({"type": "phase", "id": request_id, "phase": "check"})
            check_started = time.perf_counter()
            verdict = self.checklib.check(handle, result.data_ptr(), result.numel(), check,
                                          sample_points)
            stage_ms["check"] = (time.perf_counter() - check_started) * 1000.0
            for field in ("outcome", "check", "tolerance", "mismatches", "non_finite",
                          "max_abs_error", "max_rel_error", "message"):
                reply[field] = verdict[field]
        except ChannelBroken:
            raise
        except Exception as e:  # noqa: BLE001 (every failure becomes an outcome)
            reply["outcome"] = outcome_for_exception(self.torch, e)
            reply["message"] = first_line(e)
            if self.backend.gpu and reply["outcome"] == "oom":
                self.backend.release_cached_memory()
            if self.backend.gpu and phase_sent[0] and not self.backend.device_usable():
                # The context is gone (illegal address, launch failure, ...): every later
                # probe in this process would fail too. Dying mid-run lets the engine
                # record this probe as a crash and start a fresh worker.
                log("the GPU context is unusable after: %s; exiting" % first_line(e))
                os._exit(EXIT_DEVICE_BROKEN)
        finally:
            if handle is not None:
                self.checklib.close_probe(handle)
        return reply

    def _host_buffers(self, p, handle):
        torch = self.torch
        host = {
            "input": torch.empty(p["input_elements"], dtype=torch.float32),
            "weight": torch.empty(p["weight_elements"], dtype=torch.float32),
            "output": torch.empty(p["output_elements"], dtype=torch.float32),
            "bias": torch.empty(p["bias_elements"], dtype=torch.float32) if p["bias"] else None,
        }
        self.checklib.fill(handle, host["input"].data_ptr(), host["weight"].data_ptr(),
                           host["output"].data_ptr(),
                           host["bias"].data_ptr() if host["bias"] is not None else None)
        return host


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="convguard_torch_worker.py", allow_abbrev=False,
        description="convguard's PyTorch worker; started by convguard itself "
                    "(docs/worker-protocol.md).")
    parser.add_argument("--backend", required=True, help="must be 'torch'")
    parser.add_argument("--checklib", required=True, help="path of libconvguard_check.so")
    parser.add_argument("--device", choices=("cpu", "cuda", "auto"),
                        default=os.environ.get("CONVGUARD_TORCH_DEVICE", "auto") or "auto",
                        help="where to run (default: $CONVGUARD_TORCH_DEVICE, else auto: "
                             "the GPU when PyTorch sees one)")
    parser.add_argument("--inject", metavar="RULES_FILE",
                        help="fault-injection rules (docs/fault-injection.md), parsed and "
                             "matched by the check library as in `convguard worker --inject`")
    timing = parser.add_argument_group(
        "timing (benchmarks; no protocol)",
        "Runs the worker's own probe code on one problem in this process and prints one JSON "
        "line on stdout: {problem, algorithm, device, implementation, count, first_probe_ms "
        "(an untimed first probe: first-call costs), total_s, per_probe_ms, outcomes}.")
    timing.add_argument("--time-in-process", metavar="CANONICAL_PROBLEM",
                        help="the problem, in canonical form")
    timing.add_argument("--count", type=int, default=100, help="timed probes (default 100)")
    timing.add_argument("--warmup", type=int, default=1,
                        help="untimed runs per probe (default 1, the engine's default)")
    timing.add_argument("--repeats", type=int, default=3,
                        help="timed runs per probe (default 3, the engine's default)")
    timing.add_argument("--check", choices=("none", "sampled", "full"), default="sampled",
                        help="how each probe is checked (default sampled, the engine's default)")
    args = parser.parse_args(argv)
    if args.backend != "torch":
        parser.exit(EXIT_USAGE, "convguard torch worker: --backend must be 'torch', not '%s'\n"
                    % args.backend)
    if args.time_in_process is not None and (args.count < 1 or args.warmup < 0 or args.repeats < 1):
        parser.exit(EXIT_USAGE, "convguard torch worker: --time-in-process needs --count >= 1, "
                                "--warmup >= 0 and --repeats >= 1\n")
    return args


class NullChannel:
    """A channel that drops what is sent: the probe code without the protocol."""

    def send(self, message):
        del message


def time_in_process(worker, args, out_fd):
    """The worker's probe code, `args.count` times on one problem; one JSON line to out_fd."""
    worker.channel = NullChannel()  # phase messages go nowhere: no protocol, no pipe
    request = {"v": PROTOCOL_VERSION, "type": "probe", "id": 1, "problem": args.time_in_process,
               "algorithm": "", "seed": 1, "warmup": args.warmup, "repeats": args.repeats,
               "check": args.check, "sample_points": 256}
    t0 = time.perf_counter()
    first = worker.probe(request)
    first_ms = (time.perf_counter() - t0) * 1000.0
    outcomes = {}
    stages = {"prep": 0.0, "run": 0.0, "check": 0.0}
    t0 = time.perf_counter()
    for i in range(args.count):
        reply = worker.probe(dict(request, id=i + 2))
        outcomes[reply["outcome"]] = outcomes.get(reply["outcome"], 0) + 1
        for stage in stages:
            stages[stage] += reply.get("stage_ms", {}).get(stage, 0.0)
    total = time.perf_counter() - t0
    line = json.dumps({
        "problem": args.time_in_process,
        "algorithm": first["algorithm"],
        "device": str(worker.backend.device),
        "implementation": first["implementation"],
        "first_outcome": first["outcome"],
        "first_message": first["message"],
        "count": args.count,
        "first_probe_ms": first_ms,
        "total_s": total,
        "per_probe_ms": total * 1000.0 / args.count,
        "stage_ms": {stage: ms / args.count for stage, ms in stages.items()},
        "outcomes": outcomes,
    }) + "\n"
    os.write(out_fd, line.encode("utf-8"))
    return 0


def main(argv):
    args = parse_args(argv)

    # The protocol stream is a private copy of the original stdout; fd 1 (and so
    # sys.stdout, print(), and whatever a library writes there) goes to stderr.
    sys.stdout.flush()
    out_fd = os.dup(1)  # not inherited by children (PEP 446)
    os.dup2(2, 1)
    channel = Channel(0, out_fd)

    def fatal(message):
        log(message)
        if args.time_in_process is None:  # the timing mode's stdout is not the protocol
            try:
                channel.send({"type": "fatal", "message": message})
            except ChannelBroken:
                pass
        return EXIT_BACKEND_FAILED

    try:
        checklib = CheckLib(args.checklib)
    except (OSError, RuntimeError, AttributeError) as e:
        return fatal("cannot load the check library %s: %s" % (args.checklib, e))
    # The engine's index of the device this worker serves (a rule's `device`), read as
    # `convguard worker` reads it.
    device_index = os.environ.get("CONVGUARD_DEVICE_INDEX", "") or "0"
    if not (device_index.isascii() and device_index.isdigit()):
        return fatal("CONVGUARD_DEVICE_INDEX='%s' is not a device index (allowed: 0, 1, 2, ...)"
                     % device_index)
    faults = None
    if args.inject is not None:
        # As `convguard worker --inject FILE`: the messages match its own.
        try:
            faults = InjectedFaults(checklib, args.inject, int(device_index))
        except OSError:
            return fatal("cannot open fault rules file '%s'" % args.inject)
        except CheckLibError as e:
            return fatal(str(e))
    try:
        import torch
    except BaseException as e:  # noqa: BLE001 (ImportError, or a crash in its init code)
        return fatal("cannot import torch with %s: %s: %s" % (sys.executable, type(e).__name__, e))
    try:
        backend = TorchBackend(torch, args.device)
    except Exception as e:  # noqa: BLE001
        return fatal("PyTorch could not start on device '%s': %s" % (args.device, first_line(e)))

    worker = Worker(channel, checklib, backend, torch, faults)
    if args.time_in_process is not None:
        return time_in_process(worker, args, out_fd)
    try:
        worker.hello()
        return worker.serve()
    except ChannelBroken as e:
        log("the reply channel broke: %s" % e)
        return EXIT_PROTOCOL_BROKEN
