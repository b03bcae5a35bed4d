"""Running problems with PyTorch on one device: the backend of the "torch" worker.

TorchBackend is given the imported torch module; this module never imports torch
itself, so importing it stays cheap and main decides when torch is imported. It picks
the device (the CPU, or cuda:0 of what the process sees, CUDA or ROCm), describes the
stack (the fingerprint), offers PyTorch's framework switches as algorithms, and runs a
problem as a PyTorch user would (F.conv2d, aten.convolution_backward), timing each call.
Operands arrive filled by the check library in float32 host memory; the result leaves
as float32 host memory in tensor.h's layout, for the check library to check.

Threads: only PyTorch's own (intra-op threads on the CPU: one unless
CONVGUARD_TORCH_THREADS says otherwise). Everything here runs on the caller's thread.
"""

import ctypes
import os
import platform
import re
import time

from .faults import IMPOSSIBLE_BYTES, NEVER_ENDING_CYCLES
from .log import log
from .outcomes import Unsupported, first_line

# first_call_allowance_ms (see docs/torch-worker.md): oneDNN generates CPU kernels in
# milliseconds (a first call measured 7-10 ms slower than a warm one); CUDA loads modules
# lazily and runs cuDNN heuristics (the C++ cuDNN backend's 1 s), and `benchmark` also
# times every cuDNN algorithm on a new shape; MIOpen compiles kernels on first use (a
# cold kernel cache takes tens of seconds).
ALLOWANCE_CPU_MS = 100.0
ALLOWANCE_CUDA_MS = 1000.0
ALLOWANCE_CUDA_BENCHMARK_MS = 2000.0
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
    """PyTorch on one device; raises from __init__ when that device cannot start."""

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
            if not self.rocm:
                self._warm_up_cudnn()
            torch.cuda.synchronize(self.device)
        self.defaults = self._knob_state()
        # Setting the knobs the first time can cost seconds: with PyTorch 2.11 on CUDA a
        # worker's first _set_knobs took 3.3-4.2 s (an H100; every later one, microseconds),
        # inside the first probe's prep stage, so the calibration and the known-good probe
        # that a standby worker runs after a HANG paid it. Every algorithm's knobs once now,
        # under the start-up deadline, then the defaults back.
        for algorithm in self.algorithms(None):
            self._set_knobs(self._knobs_for(algorithm))
        self._set_knobs(self.defaults)
        self.config = self._config_text()

    def _warm_up_cudnn(self):
        """One tiny convolution in each direction, before the worker says hello.

        cuDNN loads its sub-libraries and sets up its heuristics on the first convolution
        of a process: about a second on a GPU host. The C++ cuDNN backend's Init() does the
        same, so that no probe is charged with it: not a problem's first deadline, and not
        the known-good probe that a standby worker runs when it replaces a killed one (the
        swap that a HANG costs). It runs under the start-up deadline, with the default
        knobs; the per-shape part of a first call (its kernel's module) is still the
        first-call allowance's. Not on ROCm: MIOpen compiles per kernel and shape, so a
        tiny convolution would only compile kernels that no probe uses.
        """
        torch = self.torch
        x = torch.ones((1, 4, 8, 8), device=self.device, requires_grad=True)
        w = torch.ones((4, 4, 3, 3), device=self.device, requires_grad=True)
        self.F.conv2d(x, w, padding=1).sum().backward()  # forward, backward data and weights

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

    def first_call_allowance_ms_by_algorithm(self):
        """Algorithms whose first call needs more than first_call_allowance_ms."""
        if self.gpu and not self.rocm:
            return {"benchmark": ALLOWANCE_CUDA_BENCHMARK_MS}
        return {}

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
