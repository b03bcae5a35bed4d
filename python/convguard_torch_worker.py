#!/usr/bin/env python3
"""convguard's PyTorch worker: the "torch" backend, in Python.

Started by the probe engine like every worker (docs/worker-protocol.md), as

    PYTHON -B convguard_torch_worker.py --checklib LIBCONVGUARD_CHECK \\
        [--device cpu|cuda|auto] --backend torch [--inject RULES_FILE]

it answers probe and algorithm requests with whatever PyTorch the interpreter imports:
the CPU (oneDNN or native kernels), CUDA (cuDNN) or ROCm (MIOpen). Operands are filled
and results checked by convguard's own C++ code through libconvguard_check.so
(src/capi/check_capi.h, loaded with ctypes), so a verdict of this worker is checked
exactly like a verdict of `convguard worker`. See docs/torch-worker.md.

With --inject, fault rules (docs/fault-injection.md) are parsed and matched by the same
library, and the matched fault is performed here, for real: a spin that never ends (a
never-ending kernel on a GPU), a block in a system call, SIGSEGV, SIGABRT, an exit, a
wrong result, an error, slowness, a real allocation failure, or "unsupported".

For benchmarks, --time-in-process PROBLEM --count N runs the worker's own probe code N
times in this process, without the protocol, and prints one JSON line with the timing.

Needs Python 3.9+ (3.11 on Debian 12) and torch (1.13 or 2.x); no numpy.

Environment: CONVGUARD_TORCH_DEVICE is the default for --device; on the CPU,
CONVGUARD_TORCH_THREADS sets PyTorch's intra-op threads (default 1: the engine runs one
CPU worker per core); CONVGUARD_DEVICE_INDEX, set by the engine, is the worker's device
among the engine's devices, what a fault rule's `device` reads (default 0).

Exit status: 0 after "bye" or EOF on stdin; 2 for a bad command line; 3 when the backend
cannot start, or the fault rules cannot be read or parsed (after a "fatal" message); 4
when the reply channel breaks; 5 after a GPU error that leaves the device context
unusable (the probe in flight is then a CRASH, decided by the engine from outside).
Injected faults end the process as they say (a signal, or exit(<code>)).
"""

import argparse
import ctypes
import json
import os
import platform
import re
import signal
import struct
import sys
import threading
import time
import zlib

PROTOCOL_VERSION = 1
FRAME_MAGIC = b"CGW1"
FRAME_HEADER = 8  # magic + u32 length
FRAME_OVERHEAD = 12  # header + u32 CRC
MAX_PAYLOAD = 16 << 20  # the C++ side's default

EXIT_USAGE = 2
EXIT_BACKEND_FAILED = 3
EXIT_PROTOCOL_BROKEN = 4
EXIT_DEVICE_BROKEN = 5

CAPI_VERSION = 3
CG_OK, CG_EINVAL, CG_ENOMEM = 0, 1, 2

# first_call_allowance_ms (see docs/torch-worker.md): oneDNN generates CPU kernels in
# milliseconds (a first call measured 7-10 ms slower than a warm one); CUDA loads modules
# lazily and runs cuDNN heuristics; MIOpen compiles kernels on first use (a cold kernel
# cache takes tens of seconds).
ALLOWANCE_CPU_MS = 100.0
ALLOWANCE_CUDA_MS = 2000.0
ALLOWANCE_ROCM_MS = 30000.0

# Environment variables that change which kernels run: part of the stack's identity when
# set. Device-visibility variables (CUDA_, HIP_, ROCR_VISIBLE_DEVICES) are deliberately
# absent, as in the cuDNN backend: the engine sets them to pin each pool's workers to
# their GPU, and identical GPUs must be one stack (they share one job queue, and a verdict
# found on GPU 0 holds on GPU 1). Fault rules that treat cards differently (`device`)
# change the stack's digest instead.
KNOB_PREFIXES = ("MIOPEN_", "DNNL_", "ONEDNN_")
KNOB_NAMES = (
    "HSA_OVERRIDE_GFX_VERSION",
    "NVIDIA_TF32_OVERRIDE",
    "CUDNN_ERRATA_JSON_FILE",
    "CUBLAS_WORKSPACE_CONFIG",
    "TORCH_CUDNN_V8_API_DISABLED",
    "ATEN_CPU_CAPABILITY",
)


def log(message):
    """One line on stderr (the engine's log); never on the protocol stream."""
    try:
        sys.stderr.write("convguard torch worker: %s\n" % message)
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


# ---------------------------------------------------------------------------------------
# Framing (docs/wire-framing.md): "CGW1", u32 LE length, payload, u32 LE CRC-32.


class FrameDecoder:
    """Survives partial reads; skips junk and frames whose CRC or length is wrong."""

    def __init__(self, max_payload=MAX_PAYLOAD):
        self.max_payload = max_payload
        self.buffer = bytearray()
        self.garbage_bytes = 0

    def feed(self, data):
        self.buffer += data

    def _skip(self, n):
        del self.buffer[:n]
        self.garbage_bytes += n

    def next(self):
        """The next complete, intact payload (bytes), or None until more is fed."""
        while True:
            start = self.buffer.find(FRAME_MAGIC)
            if start < 0:
                # Keep only a tail that could still begin a magic.
                keep = 0
                for k in range(min(len(FRAME_MAGIC) - 1, len(self.buffer)), 0, -1):
                    if FRAME_MAGIC.startswith(bytes(self.buffer[-k:])):
                        keep = k
                        break
                self._skip(len(self.buffer) - keep)
                return None
            if start > 0:
                self._skip(start)
            if len(self.buffer) < FRAME_HEADER:
                return None
            (length,) = struct.unpack_from("<I", self.buffer, 4)
            if length > self.max_payload:
                self._skip(1)  # not a frame we accept; search past this magic
                continue
            if len(self.buffer) < FRAME_OVERHEAD + length:
                return None
            payload = bytes(self.buffer[FRAME_HEADER:FRAME_HEADER + length])
            (crc,) = struct.unpack_from("<I", self.buffer, FRAME_HEADER + length)
            if crc != (zlib.crc32(payload) & 0xFFFFFFFF):
                self._skip(1)  # a magic inside junk, or a corrupt frame
                continue
            del self.buffer[:FRAME_OVERHEAD + length]
            return payload


def encode_frame(payload):
    return (FRAME_MAGIC + struct.pack("<I", len(payload)) + payload +
            struct.pack("<I", zlib.crc32(payload) & 0xFFFFFFFF))


class ChannelBroken(Exception):
    pass


class Channel:
    """Requests from `in_fd`, replies to `out_fd` (the private copy of the original stdout)."""

    def __init__(self, in_fd, out_fd):
        self.in_fd = in_fd
        self.out_fd = out_fd
        self.decoder = FrameDecoder()

    def send(self, message):
        message = dict(message)
        message["v"] = PROTOCOL_VERSION
        payload = json.dumps(message, separators=(",", ":"), allow_nan=False).encode("utf-8")
        view = memoryview(encode_frame(payload))
        try:
            while view:
                written = os.write(self.out_fd, view)
                view = view[written:]
        except OSError as e:  # EPIPE: the engine is gone
            raise ChannelBroken(str(e))

    def receive(self):
        """The next request as a dict; None at EOF. Junk and bad JSON are skipped."""
        while True:
            payload = self.decoder.next()
            if payload is not None:
                try:
                    message = json.loads(payload.decode("utf-8"))
                except (UnicodeDecodeError, ValueError) as e:
                    log("ignoring a request that is not JSON: %s" % e)
                    continue
                if not isinstance(message, dict):
                    log("ignoring a request that is not a JSON object")
                    continue
                return message
            try:
                data = os.read(self.in_fd, 65536)
            except InterruptedError:
                continue
            except OSError as e:
                raise ChannelBroken(str(e))
            if not data:
                return None
            self.decoder.feed(data)


# ---------------------------------------------------------------------------------------
# libconvguard_check.so: filling and checking, shared with the C++ worker.


class CheckLibError(Exception):
    def __init__(self, code, message):
        Exception.__init__(self, message)
        self.code = code


class CheckLib:
    BUFFER = 64 * 1024

    def __init__(self, path):
        lib = ctypes.CDLL(path)
        c_char_p, c_size_t, c_int, c_int64 = ctypes.c_char_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int64
        c_uint64, c_void_p = ctypes.c_uint64, ctypes.c_void_p
        lib.cg_capi_version.argtypes = []
        lib.cg_capi_version.restype = c_int
        version = lib.cg_capi_version()
        if version != CAPI_VERSION:
            raise RuntimeError("%s speaks C API version %d; this worker needs version %d "
                               "(rebuild convguard)" % (path, version, CAPI_VERSION))
        lib.cg_tool_version.argtypes = []
        lib.cg_tool_version.restype = c_char_p
        lib.cg_problem_json.argtypes = [c_char_p, c_char_p, c_size_t]
        lib.cg_problem_json.restype = c_int
        lib.cg_probe_open.argtypes = [c_char_p, c_uint64, c_char_p, c_size_t]
        lib.cg_probe_open.restype = c_void_p
        lib.cg_probe_fill.argtypes = [c_void_p, c_void_p, c_void_p, c_void_p, c_void_p,
                                      c_char_p, c_size_t]
        lib.cg_probe_fill.restype = c_int
        lib.cg_probe_check.argtypes = [c_void_p, c_void_p, c_int64, c_char_p, c_int64,
                                       c_char_p, c_size_t]
        lib.cg_probe_check.restype = c_int
        lib.cg_probe_close.argtypes = [c_void_p]
        lib.cg_probe_close.restype = None
        lib.cg_rules_parse.argtypes = [c_char_p, c_size_t, c_char_p, c_char_p, c_size_t]
        lib.cg_rules_parse.restype = c_void_p
        lib.cg_rules_json.argtypes = [c_void_p, c_char_p, c_size_t]
        lib.cg_rules_json.restype = c_int
        lib.cg_rules_match.argtypes = [c_void_p, c_char_p, c_char_p, c_int, c_char_p, c_size_t]
        lib.cg_rules_match.restype = c_int
        lib.cg_rules_apply_fingerprint.argtypes = [c_void_p, c_char_p, c_int, c_char_p, c_size_t]
        lib.cg_rules_apply_fingerprint.restype = c_int
        lib.cg_rules_close.argtypes = [c_void_p]
        lib.cg_rules_close.restype = None
        lib.cg_corrupt_tail.argtypes = [c_void_p, c_int64, ctypes.c_double, c_char_p, c_size_t]
        lib.cg_corrupt_tail.restype = c_int
        self.lib = lib
        self.path = path

    def tool_version(self):
        return self.lib.cg_tool_version().decode("utf-8", "replace")

    def _text(self, buf):
        return buf.value.decode("utf-8", "replace")

    def problem(self, canonical):
        """The parsed problem (cg_problem_json) as a dict; CheckLibError if it is bad."""
        buf = ctypes.create_string_buffer(self.BUFFER)
        rc = self.lib.cg_problem_json(canonical.encode("utf-8"), buf, self.BUFFER)
        if rc != CG_OK:
            raise CheckLibError(rc, self._text(buf))
        return json.loads(self._text(buf))

    def open_probe(self, canonical, seed):
        err = ctypes.create_string_buffer(4096)
        handle = self.lib.cg_probe_open(canonical.encode("utf-8"), seed & 0xFFFFFFFFFFFFFFFF,
                                        err, 4096)
        if not handle:
            message = self._text(err)
            code = CG_ENOMEM if message.startswith("out of host memory") else CG_EINVAL
            raise CheckLibError(code, message)
        return handle

    def fill(self, handle, input_ptr, weight_ptr, output_ptr, bias_ptr):
        err = ctypes.create_string_buffer(4096)
        rc = self.lib.cg_probe_fill(handle, input_ptr, weight_ptr, output_ptr, bias_ptr or None,
                                    err, 4096)
        if rc != CG_OK:
            raise CheckLibError(rc, self._text(err))

    def check(self, handle, result_ptr, elements, mode, sample_points):
        buf = ctypes.create_string_buffer(self.BUFFER)
        rc = self.lib.cg_probe_check(handle, result_ptr, elements, mode.encode("ascii"),
                                     sample_points, buf, self.BUFFER)
        if rc != CG_OK:
            raise CheckLibError(rc, self._text(buf))
        return json.loads(self._text(buf))

    def close_probe(self, handle):
        self.lib.cg_probe_close(handle)

    # Fault rules (docs/fault-injection.md): parsed and matched by convguard's own code.

    def parse_rules(self, text, origin):
        """A handle for the parsed rules; CheckLibError with "<origin>:<line>:<col>: ..."."""
        err = ctypes.create_string_buffer(4096)
        handle = self.lib.cg_rules_parse(text, len(text), origin.encode("utf-8"), err, 4096)
        if not handle:
            raise CheckLibError(CG_EINVAL, self._text(err))
        return handle

    def rules_info(self, handle):
        buf = ctypes.create_string_buffer(self.BUFFER)
        rc = self.lib.cg_rules_json(handle, buf, self.BUFFER)
        if rc != CG_OK:
            raise CheckLibError(rc, self._text(buf))
        return json.loads(self._text(buf))

    def match_rule(self, handle, canonical, algorithm, device):
        """The matched fault as a dict (cg_rules_match), or None when no rule matches."""
        buf = ctypes.create_string_buffer(self.BUFFER)
        rc = self.lib.cg_rules_match(handle, canonical.encode("utf-8"), algorithm.encode("utf-8"),
                                     device, buf, self.BUFFER)
        if rc != CG_OK:
            raise CheckLibError(rc, self._text(buf))
        fault = json.loads(self._text(buf))
        return fault if fault.get("matched") else None

    def apply_rules(self, handle, fingerprint, device):
        buf = ctypes.create_string_buffer(self.BUFFER)
        rc = self.lib.cg_rules_apply_fingerprint(
            handle, json.dumps(fingerprint).encode("utf-8"), device, buf, self.BUFFER)
        if rc != CG_OK:
            raise CheckLibError(rc, self._text(buf))
        return json.loads(self._text(buf))

    def corrupt_tail(self, data_ptr, elements, fraction):
        err = ctypes.create_string_buffer(1024)
        rc = self.lib.cg_corrupt_tail(data_ptr, elements, fraction, err, 1024)
        if rc != CG_OK:
            raise CheckLibError(rc, self._text(err))


# ---------------------------------------------------------------------------------------
# Fault injection: the faults themselves, mirroring src/backends/inject/injecting_backend.cc.

# What a real out-of-memory failure asks for: 2^60 bytes, beyond any address space.
IMPOSSIBLE_BYTES = 1 << 60
# torch.cuda._sleep's argument: GPU clock cycles. 2^62 cycles at a few GHz is decades.
NEVER_ENDING_CYCLES = 1 << 62


class InjectedFaults:
    """A rules file (--inject FILE) as the check library parsed it."""

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

    def match(self, canonical, algorithm):
        return self.checklib.match_rule(self.handle, canonical, algorithm, self.device)

    def apply(self, fingerprint):
        return self.checklib.apply_rules(self.handle, fingerprint, self.device)


def announce_fatal(fault):
    """The line a C++ worker writes before a fatal fault, so stderr tells injected from real."""
    try:
        sys.stderr.write(fault["announce"] + "\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


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
    """spin, block, segv, abort, exit(<code>): never returns."""
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


# ---------------------------------------------------------------------------------------
# The backend: PyTorch on one device.


class Unsupported(Exception):
    pass


def cpu_model_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def dotted_version(v):
    """cuDNN's integer version as text: 8.x is M*1000+m*100+p, 9.x is M*10000+m*100+p."""
    if not isinstance(v, int):
        return str(v)
    if v >= 10000:
        return "%d.%d.%d" % (v // 10000, (v % 10000) // 100, v % 100)
    return "%d.%d.%d" % (v // 1000, (v % 1000) // 100, v % 100)


class TorchBackend:
    def __init__(self, torch, device_choice):
        self.torch = torch
        import torch.nn.functional as F  # noqa: N812 (PyTorch's own spelling)
        self.F = F
        cuda_ok = torch.cuda.is_available()
        if device_choice == "cuda" and not cuda_ok:
            raise RuntimeError("--device cuda: torch.cuda.is_available() is False "
                               "(PyTorch %s, CUDA build: %s, HIP build: %s)" %
                               (torch.__version__, torch.version.cuda, getattr(torch.version, "hip", None)))
        self.gpu = device_choice == "cuda" or (device_choice == "auto" and cuda_ok)
        self.rocm = self.gpu and getattr(torch.version, "hip", None) is not None
        self.device = torch.device("cuda", 0) if self.gpu else torch.device("cpu")
        self.threads = None
        if not self.gpu:
            # The engine runs one CPU worker per core: one intra-op thread each, unless
            # the person running it says otherwise.
            self.threads = int(os.environ.get("CONVGUARD_TORCH_THREADS", "1") or "1")
            torch.set_num_threads(max(1, self.threads))
        if self.gpu:
            torch.cuda.init()
            torch.cuda.set_device(self.device)
            self.props = torch.cuda.get_device_properties(self.device)
            # A context and a first tiny kernel now, so that the first probe's run stage
            # is not charged with them.
            torch.ones(1, device=self.device).add_(1)
            torch.cuda.synchronize(self.device)
        self.defaults = self._knob_state()
        self.config = self._config_text()

    # --- the stack -------------------------------------------------------------------

    def _config_text(self):
        try:
            return self.torch.__config__.show()
        except Exception:  # noqa: BLE001 (informational only)
            return ""

    def _cpu_capability(self):
        m = re.search(r"CPU capability usage:\s*(\S+)", self.config)
        return m.group(1).lower() if m else ""

    def _onednn_version(self):
        m = re.search(r"(?:MKL-DNN|oneDNN)\s+v?([0-9][0-9.]*)", self.config)
        return m.group(1) if m else ""

    def _vendor_library_version(self):
        cudnn = self.torch.backends.cudnn
        try:
            runtime = self.torch._C._cudnn.getRuntimeVersion()
            if isinstance(runtime, tuple):
                return ".".join(str(x) for x in runtime)
        except Exception:  # noqa: BLE001 (older or different builds)
            pass
        try:
            return dotted_version(cudnn.version())
        except Exception:  # noqa: BLE001
            return "unknown"

    def _driver(self):
        if not self.gpu:
            return ""
        if self.rocm:
            try:
                with open("/sys/module/amdgpu/version") as f:
                    return "amdgpu " + f.read().strip()
            except OSError:
                return ""
        try:
            with open("/proc/driver/nvidia/version") as f:
                m = re.search(r"Kernel Module\s+([0-9][0-9.]*)", f.read())
                if m:
                    return "NVIDIA " + m.group(1)
        except OSError:
            pass
        try:
            libcuda = ctypes.CDLL("libcuda.so.1")
            v = ctypes.c_int(0)
            if libcuda.cuDriverGetVersion(ctypes.byref(v)) == 0 and v.value > 0:
                return "CUDA driver API %d.%d" % (v.value // 1000, (v.value % 1000) // 10)
        except OSError:
            pass
        return ""

    def fingerprint(self, tool_version):
        torch = self.torch
        knobs = {}
        for name, value in os.environ.items():
            if name.startswith(KNOB_PREFIXES) or name in KNOB_NAMES:
                knobs[name] = value
        if self.threads is not None:
            knobs["CONVGUARD_TORCH_THREADS"] = str(self.threads)
        if self.gpu:
            name = torch.cuda.get_device_name(self.device)
            if self.rocm:
                arch = getattr(self.props, "gcnArchName", "") or "gfx?"
                runtime = "HIP %s" % torch.version.hip
                library = "PyTorch %s; MIOpen %s" % (torch.__version__, self._vendor_library_version())
            else:
                arch = "sm_%d%d" % (self.props.major, self.props.minor)
                runtime = "CUDA %s" % torch.version.cuda
                library = "PyTorch %s; cuDNN %s" % (torch.__version__, self._vendor_library_version())
            device = name
            compute_units = int(self.props.multi_processor_count)
        else:
            device = "CPU " + cpu_model_name()
            arch = platform.machine()
            capability = self._cpu_capability()
            if capability:
                arch += " " + capability
            compute_units = os.cpu_count() or 1
            runtime = "CPU"
            if torch.backends.mkldnn.is_available():
                onednn = self._onednn_version()
                library = "PyTorch %s; oneDNN%s" % (torch.__version__, " " + onednn if onednn else "")
            else:
                library = "PyTorch %s; native CPU kernels" % torch.__version__
        return {
            "backend": "torch",
            "device": device,
            "architecture": arch,
            "compute_units": compute_units,
            "driver": self._driver(),
            "runtime": runtime,
            "library": library,
            "knobs": knobs,
            "emulation": "",
            "fault_rules_digest": "",
            "tool_version": tool_version,
        }

    def first_call_allowance_ms(self):
        if self.rocm:
            return ALLOWANCE_ROCM_MS
        return ALLOWANCE_CUDA_MS if self.gpu else ALLOWANCE_CPU_MS

    def visible_devices(self):
        return self.torch.cuda.device_count() if self.gpu else 0

    # --- algorithms: framework knobs -------------------------------------------------

    def algorithms(self, problem):
        del problem  # the same knobs apply to every problem
        if self.gpu:
            return ["default", "benchmark", "deterministic", "no-vendor-lib"]
        return ["default", "no-mkldnn", "deterministic"]

    def _knob_state(self):
        torch = self.torch
        return {
            "cudnn.enabled": torch.backends.cudnn.enabled,
            "cudnn.benchmark": torch.backends.cudnn.benchmark,
            "cudnn.deterministic": torch.backends.cudnn.deterministic,
            "mkldnn.enabled": torch.backends.mkldnn.enabled,
            "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
        }

    def _set_knobs(self, state):
        torch = self.torch
        torch.backends.cudnn.enabled = state["cudnn.enabled"]
        torch.backends.cudnn.benchmark = state["cudnn.benchmark"]
        torch.backends.cudnn.deterministic = state["cudnn.deterministic"]
        torch.backends.mkldnn.enabled = state["mkldnn.enabled"]
        torch.use_deterministic_algorithms(state["deterministic_algorithms"])

    def _knobs_for(self, algorithm):
        state = dict(self.defaults)
        state.update({"cudnn.enabled": True, "cudnn.benchmark": False,
                      "cudnn.deterministic": False, "mkldnn.enabled": True,
                      "deterministic_algorithms": False})
        if algorithm == "benchmark":
            state["cudnn.benchmark"] = True
        elif algorithm == "deterministic":
            state["cudnn.deterministic"] = True
            state["deterministic_algorithms"] = True
        elif algorithm == "no-vendor-lib":
            state["cudnn.enabled"] = False
        elif algorithm == "no-mkldnn":
            state["mkldnn.enabled"] = False
        return state

    # --- running a probe -------------------------------------------------------------

    def dtype_of(self, name):
        torch = self.torch
        return {"f32": torch.float32, "f16": torch.float16, "bf16": torch.bfloat16}[name]

    def host_view(self, flat, shape_nchw, nhwc):
        """A logical (N, C, H, W) view of a flat buffer in tensor.h's layout."""
        n, c, h, w = shape_nchw
        if nhwc:
            return flat.view(n, h, w, c).permute(0, 3, 1, 2)
        return flat.view(n, c, h, w)

    def to_layout(self, t, nhwc):
        """A logical (N, C, H, W) result, as float32 host memory in tensor.h's layout."""
        t = t.detach().to(device="cpu", dtype=self.torch.float32)
        if nhwc:
            t = t.permute(0, 2, 3, 1)
        return t.contiguous()

    def _select_backend(self, x, w, b, stride, padding, dilation, groups):
        """PyTorch's own name for the kernel family it dispatches to, if it says."""
        try:
            chosen = self.torch._C._select_conv_backend(x, w, b, stride, padding, dilation,
                                                        False, [0, 0], groups)
            return str(chosen).split(".")[-1]
        except Exception:  # noqa: BLE001 (a private API; absent or changed is fine)
            return "?"

    def check_supported(self, p, algorithm):
        """Raises Unsupported for an algorithm this worker does not offer (Backend::Supports)."""
        if algorithm not in self.algorithms(p):
            raise Unsupported("algorithm '%s' is not offered by the torch backend on %s (offers: %s)"
                              % (algorithm, "the GPU" if self.gpu else "the CPU",
                                 ", ".join(self.algorithms(p))))

    def run(self, p, algorithm, host, warmup, repeats, on_run_start):
        """Runs problem `p` (cg_problem_json's dict); returns (times_ms, implementation, result).

        `host` holds flat float32 CPU tensors "input", "weight", "output", "bias" (or None)
        in tensor.h's layouts, filled by the check library. `on_run_start` is called right
        before device work begins (the protocol's "run" phase).
        """
        torch = self.torch
        F = self.F
        self.check_supported(p, algorithm)
        nhwc = p["layout"] == "nhwc"
        dtype = self.dtype_of(p["dtype"])
        memory_format = torch.channels_last if nhwc else torch.contiguous_format
        n, c, h, w, k = p["n"], p["c"], p["h"], p["w"], p["k"]
        r, s, groups = p["r"], p["s"], p["groups"]
        oh, ow = p["out_h"], p["out_w"]
        pt, pl, pb, pr = p["pad_top"], p["pad_left"], p["pad_bottom"], p["pad_right"]
        stride = [p["stride_h"], p["stride_w"]]
        dilation = [p["dilation_h"], p["dilation_w"]]
        symmetric = pt == pb and pl == pr
        padding = [pt, pl] if symmetric else [0, 0]
        ph, pw = (h, w) if symmetric else (h + pt + pb, w + pl + pr)  # what the conv sees
        direction = p["direction"]

        x_host = self.host_view(host["input"], (n, c, h, w), nhwc)
        w_host = self.host_view(host["weight"], (k, c // groups, r, s), nhwc)
        y_host = self.host_view(host["output"], (n, k, oh, ow), nhwc)

        def to_device(t):
            return t.to(device=self.device, dtype=dtype).contiguous(memory_format=memory_format)

        def pad(t):
            if symmetric:
                return t
            return F.pad(t, (pl, pr, pt, pb)).contiguous(memory_format=memory_format)

        state = self._knobs_for(algorithm)
        self._set_knobs(state)
        try:
            on_run_start()
            if direction == "fwd":
                x, wt = to_device(x_host), to_device(w_host)
                b = host["bias"].to(device=self.device, dtype=dtype) if host["bias"] is not None else None
                op_name = "conv2d" if symmetric else "pad+conv2d"
                raw_shape = (n, k, oh, ow)

                def op():
                    return F.conv2d(pad(x), wt, b, stride, padding, dilation, groups)

                backend = self._select_backend(pad(x), wt, b, stride, padding, dilation, groups)
            elif direction == "bwd-data":
                dy, wt = to_device(y_host), to_device(w_host)
                x_shape = torch.empty((n, c, ph, pw), device=self.device, dtype=dtype,
                                      memory_format=memory_format)
                op_name = "convolution_backward[input]" if symmetric else "convolution_backward[input]+crop"
                raw_shape = (n, c, ph, pw)

                def op():
                    return torch.ops.aten.convolution_backward(
                        dy, x_shape, wt, None, stride, padding, dilation, False, [0, 0], groups,
                        [True, False, False])[0]

                backend = self._select_backend(x_shape, wt, None, stride, padding, dilation, groups)
            elif direction == "bwd-weights":
                x, dy = to_device(x_host), to_device(y_host)
                w_shape = torch.empty((k, c // groups, r, s), device=self.device, dtype=dtype,
                                      memory_format=memory_format)
                op_name = "convolution_backward[weight]" if symmetric else "pad+convolution_backward[weight]"
                raw_shape = (k, c // groups, r, s)

                def op():
                    return torch.ops.aten.convolution_backward(
                        dy, pad(x), w_shape, None, stride, padding, dilation, False, [0, 0], groups,
                        [False, True, False])[1]

                backend = self._select_backend(pad(x), w_shape, None, stride, padding, dilation, groups)
            else:
                raise Unsupported("direction '%s' is unknown to the torch worker" % direction)

            times, out = self._timed(op, warmup, repeats, raw_shape, dtype)
            if direction == "bwd-data" and not symmetric:
                out = out[:, :, pt:pt + h, pl:pl + w]
            result = self.to_layout(out, nhwc)
            if self.gpu:
                torch.cuda.synchronize(self.device)
        finally:
            self._set_knobs(self.defaults)
        implementation = "torch %s %s [%s]" % (torch.__version__, op_name, backend)
        return times, implementation, result

    def _poison_allocator(self, shape, dtype):
        """Leaves a NaN block of the result's size at the head of the allocator's cache.

        PyTorch allocates its own result tensors, so the NaN poison of the host buffer
        never reaches them; with a caching allocator (CUDA, ROCm) the next allocation of
        this size takes this block, so elements a kernel never writes stay NaN instead of
        holding an earlier run's correct values. Best effort: see docs/torch-worker.md.
        """
        if not self.gpu:
            return
        poison = self.torch.full(shape, float("nan"), device=self.device, dtype=dtype)
        del poison

    def _timed(self, op, warmup, repeats, raw_shape, dtype):
        torch = self.torch
        out = None
        for _ in range(warmup):
            out = op()
        if self.gpu:
            torch.cuda.synchronize(self.device)
        times = []
        for i in range(repeats):
            if i == repeats - 1:
                out = None  # its block goes back to the allocator before the poison
                self._poison_allocator(raw_shape, dtype)
            if self.gpu:
                start = torch.cuda.Event(enable_timing=True)
                end = torch.cuda.Event(enable_timing=True)
                start.record()
                out = op()
                end.record()
                end.synchronize()
                times.append(float(start.elapsed_time(end)))
            else:
                t0 = time.perf_counter()
                out = op()
                times.append((time.perf_counter() - t0) * 1000.0)
        return times, out

    def release_cached_memory(self):
        """After an OOM: give the allocator's cached blocks back, for the next probe."""
        try:
            self.torch.cuda.empty_cache()
        except Exception:  # noqa: BLE001 (best effort)
            pass

    def hang_on_device(self):
        """Fault injection's "spin" on a GPU: a real kernel that never finishes, waited for.

        torch.cuda._sleep launches a kernel that spins for the given number of GPU clock
        cycles (PyTorch's own test helper, in 1.13 and 2.x, CUDA and ROCm); the process
        then blocks in the driver's synchronize, as in a real GPU hang, and only a kill
        from outside ends it. Returns False at once on the CPU, or when the kernel cannot
        be launched or ends after all: the fault then spins on the CPU.
        """
        if not self.gpu:
            return False
        sleep = getattr(self.torch.cuda, "_sleep", None)
        if sleep is None:
            log("this PyTorch has no torch.cuda._sleep; the spin fault spins on the CPU instead")
            return False
        try:
            sleep(NEVER_ENDING_CYCLES)
            log("spin kernel launched on %s; waiting for it in torch.cuda.synchronize (it never "
                "finishes)" % self.torch.cuda.get_device_name(self.device))
            while True:
                self.torch.cuda.synchronize(self.device)
                sleep(NEVER_ENDING_CYCLES)  # not reached unless the kernel ended
        except Exception as e:  # noqa: BLE001 (any failure: fall back to the CPU)
            log("the spin kernel failed (%s); the fault spins on the CPU instead" % first_line(e))
        return False

    def allocation_fails(self):
        """Fault injection's "oom": asks the probe's device for 2^60 bytes; True when refused."""
        try:
            hog = self.torch.empty((IMPOSSIBLE_BYTES,), dtype=self.torch.uint8, device=self.device)
        except (MemoryError, RuntimeError):  # torch.cuda.OutOfMemoryError is a RuntimeError
            if self.gpu:
                self.release_cached_memory()
            return True
        del hog
        return False

    def device_usable(self):
        """After a failure on the GPU: can the context still run work?"""
        if not self.gpu:
            return True
        try:
            t = self.torch.ones(16, device=self.device)
            t.add_(1)
            self.torch.cuda.synchronize(self.device)
            return bool(t.sum().item() == 32.0)
        except Exception:  # noqa: BLE001 (any failure means no)
            return False


# ---------------------------------------------------------------------------------------
# Turning failures into outcomes.

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
    text = str(exc).strip() or type(exc).__name__
    # PyTorch's messages carry C++ stack traces after the first lines; keep the gist.
    lines = [ln for ln in text.splitlines() if ln.strip()]
    gist = " | ".join(lines[:3])
    return gist[:limit]


# ---------------------------------------------------------------------------------------
# The worker loop.


FATAL_FAULTS = ("spin", "block", "segv", "abort", "exit")


class Worker:
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
        self.channel.send({
            "type": "hello",
            "pid": os.getpid(),
            "backend": "torch",
            "fingerprint": self.fingerprint(),
            "first_call_allowance_ms": self.backend.first_call_allowance_ms(),
            "shares_device": self.backend.gpu,
            "visible_devices": self.backend.visible_devices(),
        })

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
            try:
                if kind == "probe":
                    reply = self.probe(message)
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

        def on_run_start():
            self.channel.send({"type": "phase", "id": request_id, "phase": "run"})
            phase_sent[0] = True
            if fault is not None and fault["kind"] == "slow":
                # As if every execution (warm-up and timed) were slow_ms slower.
                time.sleep(int(fault["slow_ms"]) * (max(0, warmup) + max(0, repeats)) / 1000.0)

        try:
            self.backend.check_supported(p, algorithm)
            handle = self.checklib.open_probe(canonical, seed)
            host = self._host_buffers(p, handle)
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
            self.channel.send({"type": "phase", "id": request_id, "phase": "check"})
            verdict = self.checklib.check(handle, result.data_ptr(), result.numel(), check,
                                          sample_points)
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
    t0 = time.perf_counter()
    for i in range(args.count):
        reply = worker.probe(dict(request, id=i + 2))
        outcomes[reply["outcome"]] = outcomes.get(reply["outcome"], 0) + 1
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


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
