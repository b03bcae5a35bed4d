// The oneDNN CPU backend. See onednn_backend.h and docs/backends.md ("oneDNN").
//
// Written against the oneDNN 2.x C++ API (Debian 12's libdnnl-dev, oneDNN 2.6.3): an
// operation descriptor (convolution_*::desc) first, then a primitive_desc. Every oneDNN
// call may throw dnnl::error; nothing leaves this file as an exception.
#include "backends/onednn/onednn_backend.h"

#include <dlfcn.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <list>
#include <new>
#include <oneapi/dnnl/dnnl.hpp>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "backends/cpu_info.h"
#include "convguard/text_forms.h"

namespace convguard {
namespace {

using dnnl::memory;
using tag = dnnl::memory::format_tag;

constexpr std::string_view kAuto = "auto";
constexpr std::string_view kDirect = "direct";
constexpr std::string_view kWinograd = "winograd";

// The ISA oneDNN dispatches to at most on this CPU (after ONEDNN_MAX_CPU_ISA).
std::string EffectiveIsaName() {
  using dnnl::cpu_isa;
  const cpu_isa isa = dnnl::get_effective_cpu_isa();
  switch (isa) {
    case cpu_isa::all: return "all";
    case cpu_isa::sse41: return "sse41";
    case cpu_isa::avx: return "avx";
    case cpu_isa::avx2: return "avx2";
    case cpu_isa::avx2_vnni: return "avx2_vnni";
    case cpu_isa::avx512_mic: return "avx512_mic";
    case cpu_isa::avx512_mic_4ops: return "avx512_mic_4ops";
    case cpu_isa::avx512_core: return "avx512_core";
    case cpu_isa::avx512_core_vnni: return "avx512_core_vnni";
    case cpu_isa::avx512_core_bf16: return "avx512_core_bf16";
    case cpu_isa::avx512_core_amx: return "avx512_core_amx";
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, "isa_0x%x", static_cast<unsigned>(isa));
  return buf;
}

std::string OneDnnVersion() {
  const dnnl_version_t* v = dnnl_version();
  return std::to_string(v->major) + "." + std::to_string(v->minor) + "." + std::to_string(v->patch);
}

std::string CpuRuntimeName(unsigned runtime) {
  switch (runtime) {
    case DNNL_RUNTIME_OMP: return "OpenMP";
    case DNNL_RUNTIME_TBB: return "TBB";
    case DNNL_RUNTIME_SEQ: return "sequential";
    case DNNL_RUNTIME_THREADPOOL: return "threadpool";
    default: return "runtime " + std::to_string(runtime);
  }
}

// OpenMP's thread controls, looked up at run time: the backend links only oneDNN, and
// oneDNN (when OpenMP-built, as Debian's is) brings libgomp into the process. A
// TBB/sequential build has none and the lookups return null.
using OmpSetNumThreads = void (*)(int);
using OmpGetMaxThreads = int (*)();

OmpGetMaxThreads FindOmpGetMaxThreads() {
  return reinterpret_cast<OmpGetMaxThreads>(dlsym(RTLD_DEFAULT, "omp_get_max_threads"));
}

std::string_view DtypeOf(DataType t) { return DataTypeName(t); }

memory::data_type DnnlType(DataType t) {
  switch (t) {
    case DataType::kF16: return memory::data_type::f16;
    case DataType::kBF16: return memory::data_type::bf16;
    case DataType::kF32: break;
  }
  return memory::data_type::f32;
}

std::optional<dnnl::algorithm> DnnlAlgorithm(std::string_view name) {
  if (name == kAuto) return dnnl::algorithm::convolution_auto;
  if (name == kDirect) return dnnl::algorithm::convolution_direct;
  if (name == kWinograd) return dnnl::algorithm::convolution_winograd;
  return std::nullopt;
}

// The user's (convguard's) memory descriptors: float32 in the layouts of tensor.h.
struct UserDescs {
  memory::desc src, weights, dst, bias;
};

UserDescs MakeUserDescs(const Problem& p, memory::data_type dt) {
  const bool nhwc = p.layout == Layout::kNHWC;
  UserDescs d;
  d.src = memory::desc({p.n, p.c, p.h, p.w}, dt, nhwc ? tag::nhwc : tag::nchw);
  d.dst = memory::desc({p.n, p.k, p.out_h(), p.out_w()}, dt, nhwc ? tag::nhwc : tag::nchw);
  const int64_t cg = p.c_per_group(), kg = p.k_per_group(), r = p.r, s = p.s;
  if (p.groups == 1) {
    // NCHW: w[k][c][r][s] (oihw); NHWC: w[k][r][s][c] (ohwi).
    d.weights = nhwc ? memory::desc({p.k, cg, r, s}, dt, memory::dims{r * s * cg, 1, s * cg, cg})
                     : memory::desc({p.k, cg, r, s}, dt, memory::dims{cg * r * s, r * s, s, 1});
  } else {
    // oneDNN's grouped weights are (g, k/g, c/g, r, s); k = g * k/g + o, so the group is
    // the outermost part of convguard's k: NCHW is goihw, NHWC is gohwi.
    const memory::dims dims{p.groups, kg, cg, r, s};
    d.weights =
        nhwc ? memory::desc(dims, dt, memory::dims{kg * r * s * cg, r * s * cg, 1, s * cg, cg})
             : memory::desc(dims, dt, memory::dims{kg * cg * r * s, cg * r * s, r * s, s, 1});
  }
  d.bias = memory::desc({p.k}, dt, tag::x);
  return d;
}

// The primitive's descriptors: the problem's dtype in whatever format oneDNN prefers.
UserDescs MakeAnyDescs(const Problem& p) {
  const memory::data_type dt = DnnlType(p.dtype);
  const UserDescs user = MakeUserDescs(p, dt);
  UserDescs d;
  d.src = memory::desc(user.src.dims(), dt, tag::any);
  d.dst = memory::desc(user.dst.dims(), dt, tag::any);
  d.weights = memory::desc(user.weights.dims(), dt, tag::any);
  d.bias = memory::desc(user.bias.dims(), dt, tag::any);
  return d;
}

struct Geometry {
  memory::dims strides, dilates, pad_l, pad_r;
};

Geometry MakeGeometry(const Problem& p) {
  // oneDNN's dilation counts the gaps between taps: convguard's 1 (dense) is oneDNN's 0.
  return {{p.stride_h, p.stride_w},
          {p.dilation_h - 1, p.dilation_w - 1},
          {p.pad_top, p.pad_left},
          {p.pad_bottom, p.pad_right}};
}

// The forward primitive descriptor: forward_inference for a forward problem (what an
// inference user runs, and the prop kind some kernels such as the Winograd 2x3 one
// require), forward_training as the hint of a backward one.
dnnl::convolution_forward::primitive_desc MakeForwardPd(const Problem& p, dnnl::algorithm alg,
                                                        dnnl::prop_kind prop,
                                                        const dnnl::engine& engine,
                                                        bool with_bias) {
  const UserDescs a = MakeAnyDescs(p);
  const Geometry g = MakeGeometry(p);
  if (with_bias) {
    dnnl::convolution_forward::desc d(prop, alg, a.src, a.weights, a.bias, a.dst, g.strides,
                                      g.dilates, g.pad_l, g.pad_r);
    return dnnl::convolution_forward::primitive_desc(d, engine);
  }
  dnnl::convolution_forward::desc d(prop, alg, a.src, a.weights, a.dst, g.strides, g.dilates,
                                    g.pad_l, g.pad_r);
  return dnnl::convolution_forward::primitive_desc(d, engine);
}

// The backward primitives need a forward primitive descriptor as a hint. The hint uses
// the same algorithm when oneDNN has it, else convolution_auto (oneDNN may lack, say, a
// forward Winograd kernel where it has a backward one).
dnnl::convolution_forward::primitive_desc MakeHintPd(const Problem& p, dnnl::algorithm alg,
                                                     const dnnl::engine& engine) {
  try {
    return MakeForwardPd(p, alg, dnnl::prop_kind::forward_training, engine, false);
  } catch (const dnnl::error&) {
    return MakeForwardPd(p, dnnl::algorithm::convolution_auto, dnnl::prop_kind::forward_training,
                         engine, false);
  }
}

// Throws dnnl::error (dnnl_unimplemented when oneDNN has no implementation).
dnnl::primitive_desc MakePrimitiveDesc(const Problem& p, dnnl::algorithm alg,
                                       const dnnl::engine& engine) {
  const UserDescs a = MakeAnyDescs(p);
  const Geometry g = MakeGeometry(p);
  switch (p.direction) {
    case Direction::kForward:
      return MakeForwardPd(p, alg, dnnl::prop_kind::forward_inference, engine, p.bias);
    case Direction::kBackwardData: {
      const auto hint = MakeHintPd(p, alg, engine);
      dnnl::convolution_backward_data::desc d(alg, a.src, a.weights, a.dst, g.strides, g.dilates,
                                              g.pad_l, g.pad_r);
      return dnnl::convolution_backward_data::primitive_desc(d, engine, hint);
    }
    case Direction::kBackwardWeights: {
      // convguard's backward-weights computes no bias gradient (see reference.h).
      const auto hint = MakeHintPd(p, alg, engine);
      dnnl::convolution_backward_weights::desc d(alg, a.src, a.weights, a.dst, g.strides, g.dilates,
                                                 g.pad_l, g.pad_r);
      return dnnl::convolution_backward_weights::primitive_desc(d, engine, hint);
    }
  }
  throw dnnl::error(dnnl_invalid_arguments, "unknown direction");
}

// One reorder between two memories (formats and/or data types).
struct Hop {
  dnnl::reorder reorder;
  memory from, to;
};

// Reorders from `from` to `to`: directly where oneDNN has a reorder between the two
// descriptors, else through a plain (oihw / goihw-ordered) float32 staging buffer. The
// staging hop exists because oneDNN 2.6's reorder into the Winograd weights format
// (forward winograd, jit_fp32_wino_2x3) accepts only plain source formats: from NHWC
// weights (ohwi / gohwi) it has none. Throws dnnl::error when neither way exists.
std::vector<Hop> MakeReorders(const memory& from, const memory& to, const dnnl::engine& engine) {
  const memory::desc from_md = from.get_desc(), to_md = to.get_desc();
  try {
    return {Hop{dnnl::reorder(dnnl::reorder::primitive_desc(engine, from_md, engine, to_md)), from,
                to}};
  } catch (const dnnl::error& e) {
    if (e.status != dnnl_unimplemented) throw;
  }
  const memory::dims dims = from_md.dims();
  const memory::desc plain(dims, memory::data_type::f32, dims.size() == 5 ? tag::abcde : tag::abcd);
  const memory staging(plain, engine);
  return {
      Hop{dnnl::reorder(dnnl::reorder::primitive_desc(engine, from_md, engine, plain)), from,
          staging},
      Hop{dnnl::reorder(dnnl::reorder::primitive_desc(engine, plain, engine, to_md)), staging, to}};
}

void Execute(std::vector<Hop>& hops, const dnnl::stream& stream) {
  for (Hop& hop : hops) hop.reorder.execute(stream, hop.from, hop.to);
}

// One operand of the primitive: the user's float32 buffer and, when oneDNN wants another
// format or data type, its own buffer with reorders between the two.
struct Operand {
  int arg = 0;               // DNNL_ARG_*
  bool is_result = false;    // written by the primitive (reordered back to the user)
  memory user_mem;           // wraps the user's vector (handle set on every Run)
  bool reordered = false;    // the primitive wants another descriptor: it uses prim_mem
  memory prim_mem;           // the primitive's own buffer (when reordered)
  std::vector<Hop> to_prim;  // user -> primitive (when reordered; for a result, the
                             // NaN poison, when oneDNN can reorder that way)
  std::vector<Hop> to_user;  // primitive -> user (when reordered and is_result)
};

// The primitive for one (problem, algorithm), with its operand buffers.
struct Prepared {
  std::string key;
  Problem problem;
  dnnl::primitive_desc pd;
  std::string implementation;
  std::optional<dnnl::primitive> primitive;  // created on the first Run (JIT compilation)
  std::vector<Operand> operands;             // set up with the primitive
};

std::string Key(const Problem& p, std::string_view algorithm) {
  return ToCanonical(p) + "|" + std::string(algorithm);
}

class OneDnnBackend final : public Backend {
 public:
  std::string_view name() const override { return "onednn"; }

  Status Init() override {
    try {
      // One thread per worker (the probe engine runs a worker per core) unless the
      // environment asks for more; OMP_NUM_THREADS is then a knob of the stack.
      const char* omp_env = std::getenv("OMP_NUM_THREADS");
      if (omp_env == nullptr || *omp_env == '\0') {
        if (auto set =
                reinterpret_cast<OmpSetNumThreads>(dlsym(RTLD_DEFAULT, "omp_set_num_threads"))) {
          set(1);
        }
      }
      engine_ = dnnl::engine(dnnl::engine::kind::cpu, 0);
      stream_ = dnnl::stream(engine_);

      const dnnl_version_t* v = dnnl_version();
      isa_ = EffectiveIsaName();
      fingerprint_.backend = "onednn";
      fingerprint_.device = "CPU " + CpuModelName();
      fingerprint_.architecture = MachineArchitecture() + " " + isa_;
      fingerprint_.compute_units = std::max(1u, std::thread::hardware_concurrency());
      std::string library = "oneDNN " + OneDnnVersion();
      if (v->hash != nullptr && *v->hash != '\0') library += " (git " + std::string(v->hash) + ")";
      fingerprint_.library = library;
      int threads = 1;
      if (OmpGetMaxThreads get = FindOmpGetMaxThreads()) threads = get();
      fingerprint_.runtime = CpuRuntimeName(v->cpu_runtime) + ", " + std::to_string(threads) +
                             (threads == 1 ? " thread" : " threads") + " per worker";
      for (const std::string& knob : OneDnnKnobs()) {
        if (const char* value = std::getenv(knob.c_str())) fingerprint_.knobs[knob] = value;
      }
      fingerprint_.tool_version = CONVGUARD_VERSION;
      initialized_ = true;
      return Status::Ok();
    } catch (const dnnl::error& e) {
      return Status::Internal(std::string("oneDNN could not create a CPU engine: ") + e.what());
    } catch (const std::exception& e) {
      return Status::Internal(std::string("oneDNN backend init failed: ") + e.what());
    } catch (...) {
      return Status::Internal("oneDNN backend init failed with an unknown exception");
    }
  }

  StackFingerprint Fingerprint() const override { return fingerprint_; }

  std::vector<std::string> Algorithms(const Problem&) const override {
    return {std::string(kAuto), std::string(kDirect), std::string(kWinograd)};
  }

  Status Supports(const Problem& p, std::string_view algorithm) const override {
    try {
      return Prepare(p, algorithm).status();
    } catch (...) {
      return Status::Internal("oneDNN backend: unexpected exception in Supports");
    }
  }

  StatusOr<RunResult> Run(const Problem& p, std::string_view algorithm, ConvTensors<float>& io,
                          const RunOptions& options) override {
    try {
      return RunChecked(p, algorithm, io, options);
    } catch (const dnnl::error& e) {
      return FromDnnlError(e, "running");
    } catch (const std::bad_alloc&) {
      return Status::ResourceExhausted("oneDNN backend: host memory could not be allocated");
    } catch (const std::exception& e) {
      return Status::Internal(std::string("oneDNN backend: ") + e.what());
    } catch (...) {
      return Status::Internal("oneDNN backend: unknown exception while running");
    }
  }

  // JIT code generation of a new primitive (and of its reorders) on first use.
  double first_call_allowance_ms() const override { return 500.0; }

 private:
  static Status FromDnnlError(const dnnl::error& e, std::string_view doing) {
    const std::string message = "oneDNN " + std::string(doing) + ": " + e.what() + " (status " +
                                std::to_string(e.status) + ")";
    if (e.status == dnnl_out_of_memory) return Status::ResourceExhausted(message);
    return Status::Internal(message);
  }

  // Why oneDNN has no primitive for (p, algorithm): it names the library, the ISA, the
  // dtype, the direction and the algorithm, with oneDNN's own message.
  std::string UnsupportedReason(const Problem& p, std::string_view algorithm,
                                const dnnl::error& e) const {
    std::string reason = "oneDNN " + OneDnnVersion() + " on this CPU (ISA " + isa_ + ") has no " +
                         std::string(DtypeOf(p.dtype)) + " " +
                         std::string(DirectionName(p.direction)) + " convolution with algorithm '" +
                         std::string(algorithm) + "' for this problem";
    const bool avx512 = isa_.rfind("avx512_core", 0) == 0;
    if (p.dtype == DataType::kF16) {
      // Checked on AVX2 and on an AVX512-FP16/AMX (Sapphire Rapids) CPU alike.
      reason += "; oneDNN " + OneDnnVersion() + " has no f16 convolution kernels for x86 CPUs";
    } else if (p.dtype == DataType::kBF16 && !avx512) {
      reason +=
          "; oneDNN 2.x computes bf16 convolutions only on AVX-512 (avx512_core or newer) CPUs";
    } else if (algorithm == kWinograd && p.dtype != DataType::kF32) {
      reason += "; oneDNN's CPU Winograd kernels are f32 only";
    } else if (algorithm == kWinograd && !avx512) {
      reason += "; oneDNN 2.x implements Winograd only on AVX-512 (avx512_core or newer) CPUs";
    } else if (algorithm == kWinograd) {
      reason +=
          "; oneDNN's Winograd kernels need (among other things) a 3x3 kernel, stride 1, "
          "no dilation, one group and symmetric padding";
    }
    reason += " (oneDNN: " + std::string(e.what()) + ")";
    return reason;
  }

  // Makes `cache_` the prepared primitive descriptor of (p, algorithm), or says why not.
  StatusOr<Prepared*> Prepare(const Problem& p, std::string_view algorithm) const {
    if (!initialized_) return Status::Internal("oneDNN backend used before Init()");
    const std::optional<dnnl::algorithm> alg = DnnlAlgorithm(algorithm);
    if (!alg) {
      return Status::Unsupported(
          "algorithm '" + std::string(algorithm) +
          "' is not offered by the onednn backend (offers: auto, direct, winograd)");
    }
    CG_RETURN_IF_ERROR(Validate(p));
    const std::string key = Key(p, algorithm);
    for (auto it = cache_.begin(); it != cache_.end(); ++it) {
      if (it->key != key) continue;
      cache_.splice(cache_.begin(), cache_, it);  // most recently used first
      return &cache_.front();
    }
    // A few problems at a time: a plan's leaves (tiles of a few shapes, group slices)
    // alternate between problems, and rebuilding a primitive per call would cost more
    // than the convolution. The least recently used one is released, and every older one
    // when a big problem arrives, so that a probe's memory is its own problem's.
    auto cached_bytes = [this] {
      int64_t total = 0;
      for (const Prepared& c : cache_) total += c.problem.total_bytes();
      return total;
    };
    while (!cache_.empty() && (cache_.size() >= kCachedPrimitives ||
                               cached_bytes() + p.total_bytes() > kCachedBytes)) {
      cache_.pop_back();
    }
    try {
      dnnl::primitive_desc pd = MakePrimitiveDesc(p, *alg, engine_);
      Prepared prepared;
      prepared.key = key;
      prepared.problem = p;
      prepared.implementation = pd.impl_info_str();
      prepared.pd = std::move(pd);
      cache_.push_front(std::move(prepared));
      return &cache_.front();
    } catch (const dnnl::error& e) {
      if (e.status == dnnl_unimplemented)
        return Status::Unsupported(UnsupportedReason(p, algorithm, e));
      if (e.status == dnnl_out_of_memory)
        return FromDnnlError(e, "creating the primitive descriptor");
      // oneDNN rejects some shapes outright (dnnl_invalid_arguments) that convguard
      // accepts: report them as unsupported with oneDNN's words.
      if (e.status == dnnl_invalid_arguments) {
        return Status::Unsupported("oneDNN " + OneDnnVersion() +
                                   " rejects this problem as invalid (oneDNN: " + e.what() + ")");
      }
      return FromDnnlError(e, "creating the primitive descriptor");
    } catch (const std::bad_alloc&) {
      return Status::ResourceExhausted("oneDNN backend: host memory could not be allocated");
    } catch (const std::exception& e) {
      return Status::Internal(std::string("oneDNN backend: ") + e.what());
    }
  }

  // Creates the primitive and the operands' buffers and reorders of `prep`.
  void Build(Prepared& prep) {
    const Problem& p = prep.problem;
    const UserDescs user = MakeUserDescs(p, memory::data_type::f32);
    dnnl::primitive primitive(prep.pd);
    std::vector<Operand> operands;
    auto add = [&](int arg, const memory::desc& user_md, const memory::desc& prim_md,
                   bool is_result) {
      Operand op;
      op.arg = arg;
      op.is_result = is_result;
      op.user_mem = memory(user_md, engine_, DNNL_MEMORY_NONE);
      if (!(prim_md == user_md)) {
        op.reordered = true;
        op.prim_mem = memory(prim_md, engine_);
        if (is_result) {
          op.to_user = MakeReorders(op.prim_mem, op.user_mem, engine_);
          // Also into the primitive's format, so that the NaN poison the worker writes
          // reaches every element the primitive might not write. Best effort.
          try {
            op.to_prim = MakeReorders(op.user_mem, op.prim_mem, engine_);
          } catch (const dnnl::error&) {
            op.to_prim.clear();
          }
        } else {
          op.to_prim = MakeReorders(op.user_mem, op.prim_mem, engine_);
        }
      }
      operands.push_back(std::move(op));
    };
    const dnnl::primitive_desc& pd = prep.pd;
    switch (p.direction) {
      case Direction::kForward:
        add(DNNL_ARG_SRC, user.src, pd.src_desc(0), false);
        add(DNNL_ARG_WEIGHTS, user.weights, pd.weights_desc(0), false);
        if (p.bias) add(DNNL_ARG_BIAS, user.bias, pd.weights_desc(1), false);
        add(DNNL_ARG_DST, user.dst, pd.dst_desc(0), true);
        break;
      case Direction::kBackwardData:
        add(DNNL_ARG_DIFF_DST, user.dst, pd.diff_dst_desc(0), false);
        add(DNNL_ARG_WEIGHTS, user.weights, pd.weights_desc(0), false);
        add(DNNL_ARG_DIFF_SRC, user.src, pd.diff_src_desc(0), true);
        break;
      case Direction::kBackwardWeights:
        add(DNNL_ARG_SRC, user.src, pd.src_desc(0), false);
        add(DNNL_ARG_DIFF_DST, user.dst, pd.diff_dst_desc(0), false);
        add(DNNL_ARG_DIFF_WEIGHTS, user.weights, pd.diff_weights_desc(0), true);
        break;
    }
    // Only a complete set-up is kept (an exception above leaves `prep` as it was).
    prep.operands = std::move(operands);
    prep.primitive.emplace(std::move(primitive));
  }

  static float* BufferFor(int arg, ConvTensors<float>& io) {
    switch (arg) {
      case DNNL_ARG_SRC:
      case DNNL_ARG_DIFF_SRC: return io.input.data();
      case DNNL_ARG_WEIGHTS:
      case DNNL_ARG_DIFF_WEIGHTS: return io.weight.data();
      case DNNL_ARG_BIAS: return io.bias.data();
      default: return io.output.data();
    }
  }

  StatusOr<RunResult> RunChecked(const Problem& p, std::string_view algorithm,
                                 ConvTensors<float>& io, const RunOptions& options) {
    CG_ASSIGN_OR_RETURN(Prepared * prep, Prepare(p, algorithm));
    if (io.input.size() != static_cast<size_t>(p.input_elements()) ||
        io.weight.size() != static_cast<size_t>(p.weight_elements()) ||
        io.output.size() != static_cast<size_t>(p.output_elements()) ||
        (p.bias && io.bias.size() != static_cast<size_t>(p.bias_elements()))) {
      return Status::InvalidArgument("oneDNN backend: tensors are not sized for " + ToCanonical(p));
    }
    if (!prep->primitive) Build(*prep);

    // Untimed: user buffers in, operands into the primitive's formats.
    std::unordered_map<int, memory> args;
    for (Operand& op : prep->operands) {
      op.user_mem.set_data_handle(BufferFor(op.arg, io));
      if (op.reordered) {
        Execute(op.to_prim, stream_);
        args.emplace(op.arg, op.prim_mem);
      } else {
        args.emplace(op.arg, op.user_mem);
      }
    }
    stream_.wait();

    // Timed: the convolution primitive alone.
    RunResult result;
    result.implementation = prep->implementation;
    // Winograd kernels round even on exactly filled data.
    result.exact = prep->implementation.find("wino") == std::string::npos;
    for (int i = 0; i < options.warmup + options.repeats; ++i) {
      const auto start = std::chrono::steady_clock::now();
      prep->primitive->execute(stream_, args);
      stream_.wait();
      const auto stop = std::chrono::steady_clock::now();
      if (i >= options.warmup) {
        result.times_ms.push_back(std::chrono::duration<double, std::milli>(stop - start).count());
      }
    }

    // Untimed: the result back into the user's layout and float32.
    for (Operand& op : prep->operands) {
      if (op.is_result && op.reordered) Execute(op.to_user, stream_);
    }
    stream_.wait();
    return result;
  }

  bool initialized_ = false;
  dnnl::engine engine_;
  dnnl::stream stream_;
  std::string isa_;
  StackFingerprint fingerprint_;
  // The recent (problem, algorithm)s, most recent first: Supports() creates a primitive
  // descriptor, the first Run() its primitive and buffers. Mutable: Supports() is const.
  static constexpr size_t kCachedPrimitives = 16;
  static constexpr int64_t kCachedBytes = int64_t{256} << 20;
  mutable std::list<Prepared> cache_;
};

}  // namespace

// Environment variables that change what oneDNN dispatches to or how it computes; each
// one set is recorded in the fingerprint as a knob (a stack variant).
std::vector<std::string> OneDnnKnobs() {
  return {"ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA",           "ONEDNN_CPU_ISA_HINTS",
          "DNNL_CPU_ISA_HINTS", "ONEDNN_DEFAULT_FPMATH_MODE", "DNNL_DEFAULT_FPMATH_MODE",
          "OMP_NUM_THREADS"};
}

std::unique_ptr<Backend> MakeOneDnnBackend() { return std::make_unique<OneDnnBackend>(); }

}  // namespace convguard
