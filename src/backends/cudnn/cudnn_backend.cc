// The cuDNN backend: cuDNN's legacy convolution API (cudnnConvolutionForward,
// cudnnConvolutionBackwardData, cudnnConvolutionBackwardFilter) behind the Backend
// interface. docs/gpu.md is the user-facing description; the decisions are repeated
// here next to the code they shape.
//
// Every CUDA and cuDNN return code is checked and turned into a Status at the call
// site by FromCuda() / FromCudnn(): cuDNN's "not supported" family becomes kUnsupported
// (an UNSUPPORTED verdict with cuDNN's reason), allocation failures kResourceExhausted
// (OOM), everything else kInternal (ERROR). One class of error is not returned: a
// *sticky* CUDA error (illegal address, launch failure, device-side assert, ...) leaves
// the process's CUDA context unusable, so every later probe in this worker would fail
// too and be blamed for it. On one the worker says why on stderr and exits with
// kExitDeviceFault: the engine records a CRASH of the problem that caused it (with that
// stderr line as evidence) and starts a fresh worker for the next one.
#include "backends/cudnn/cudnn_backend.h"

#include <cuda_runtime_api.h>
#include <cudnn.h>
#include <unistd.h>  // environ: the CUDNN_* knobs of the fingerprint

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <memory>
#include <span>
#include <sstream>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "backends/cudnn/spin_kernel.cuh"

namespace convguard {
namespace {

// The worker's exit status after a sticky CUDA error (see the top of this file).
constexpr int kExitDeviceFault = 86;

// Extra time the first call of a new problem may take: cuDNN picks and loads the
// kernel's module on first use (CUDA's lazy module loading) and may set up per-shape
// state. Hundreds of milliseconds in practice; one second leaves room on a busy host.
// The sub-libraries themselves are loaded once per worker by Init()'s warm-up, under
// the start-up deadline, not charged to any probe.
constexpr double kFirstCallAllowanceMs = 1000.0;

// ---- errors at the boundary ---------------------------------------------------------

bool IsStickyCudaError(cudaError_t e) {
  switch (e) {
    case cudaErrorIllegalAddress:
    case cudaErrorLaunchTimeout:
    case cudaErrorAssert:
    case cudaErrorHardwareStackError:
    case cudaErrorIllegalInstruction:
    case cudaErrorMisalignedAddress:
    case cudaErrorInvalidAddressSpace:
    case cudaErrorInvalidPc:
    case cudaErrorLaunchFailure:
    case cudaErrorECCUncorrectable: return true;
    default: return false;
  }
}

std::string CudaErrorText(cudaError_t e) {
  return std::string(cudaGetErrorName(e)) + " (" + cudaGetErrorString(e) + ")";
}

[[noreturn]] void ExitAfterDeviceFault(cudaError_t e, std::string_view what) {
  std::fprintf(stderr,
               "convguard cudnn: %.*s failed with %s; the CUDA context of this process is "
               "unusable after this error, so the worker exits (status %d) and the next "
               "probe gets a fresh one\n",
               static_cast<int>(what.size()), what.data(), CudaErrorText(e).c_str(),
               kExitDeviceFault);
  std::fflush(stderr);
  std::_Exit(kExitDeviceFault);
}

// The one conversion of a CUDA runtime result to a Status. `what` names the call.
Status FromCuda(cudaError_t e, std::string_view what) {
  if (e == cudaSuccess) return Status::Ok();
  (void)cudaGetLastError();  // a non-sticky error must not resurface in a later check
  if (IsStickyCudaError(e)) ExitAfterDeviceFault(e, what);
  std::string message = std::string(what) + ": " + CudaErrorText(e);
  switch (e) {
    case cudaErrorMemoryAllocation: return Status::ResourceExhausted(std::move(message));
    case cudaErrorNoKernelImageForDevice:
    case cudaErrorUnsupportedPtxVersion:
    case cudaErrorInsufficientDriver:
    case cudaErrorNoDevice: return Status::Unsupported(std::move(message));
    default: return Status::Internal(std::move(message));
  }
}

// The one conversion of a cuDNN result to a Status. cuDNN 9 groups its codes by
// thousands: 3xxx "not supported" (shape, data type, layout, architecture, ...),
// 4xxx internal errors (4003/4004: host/device allocation failed), 5xxx execution
// failures (which may hide a sticky CUDA error: checked by synchronising).
Status FromCudnn(cudnnStatus_t s, std::string_view what) {
  if (s == CUDNN_STATUS_SUCCESS) return Status::Ok();
  char detail[1024] = {};
  cudnnGetLastErrorString(detail, sizeof(detail));
  std::string message = std::string(what) + ": " + cudnnGetErrorString(s);
  if (detail[0] != '\0') message += std::string(" (") + detail + ")";
  switch (static_cast<int>(s) / 1000 * 1000) {
    case 3000: return Status::Unsupported(std::move(message));
    case 4000:
      if (s == CUDNN_STATUS_INTERNAL_ERROR_DEVICE_ALLOCATION_FAILED ||
          s == CUDNN_STATUS_INTERNAL_ERROR_HOST_ALLOCATION_FAILED) {
        return Status::ResourceExhausted(std::move(message));
      }
      return Status::Internal(std::move(message));
    case 5000: {
      const cudaError_t e = cudaDeviceSynchronize();
      if (IsStickyCudaError(e)) ExitAfterDeviceFault(e, what);
      (void)cudaGetLastError();
      return Status::Internal(std::move(message));
    }
    default: return Status::Internal(std::move(message));
  }
}

// ---- algorithms by stable name ------------------------------------------------------

struct Algo {
  std::string_view name;  // the stable name that keys verdicts
  int value;              // the cudnnConvolution*Algo_t enumerator
  std::string_view enumerator;
  bool transform;  // FFT or Winograd: rounds even on exactly filled data
};

// In cuDNN's enumeration order. The backward-filter enumerator 4 (WINOGRAD) is "not
// implemented" in cuDNN and is not offered.
constexpr std::array<Algo, 8> kForwardAlgos = {{
    {"implicit-gemm", CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM,
     "CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM", false},
    {"implicit-precomp-gemm", CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM,
     "CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM", false},
    {"gemm", CUDNN_CONVOLUTION_FWD_ALGO_GEMM, "CUDNN_CONVOLUTION_FWD_ALGO_GEMM", false},
    {"direct", CUDNN_CONVOLUTION_FWD_ALGO_DIRECT, "CUDNN_CONVOLUTION_FWD_ALGO_DIRECT", false},
    {"fft", CUDNN_CONVOLUTION_FWD_ALGO_FFT, "CUDNN_CONVOLUTION_FWD_ALGO_FFT", true},
    {"fft-tiling", CUDNN_CONVOLUTION_FWD_ALGO_FFT_TILING, "CUDNN_CONVOLUTION_FWD_ALGO_FFT_TILING",
     true},
    {"winograd", CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD, "CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD", true},
    {"winograd-nonfused", CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD_NONFUSED,
     "CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD_NONFUSED", true},
}};
constexpr std::array<Algo, 6> kBackwardDataAlgos = {{
    {"algo0", CUDNN_CONVOLUTION_BWD_DATA_ALGO_0, "CUDNN_CONVOLUTION_BWD_DATA_ALGO_0", false},
    {"algo1", CUDNN_CONVOLUTION_BWD_DATA_ALGO_1, "CUDNN_CONVOLUTION_BWD_DATA_ALGO_1", false},
    {"fft", CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT, "CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT", true},
    {"fft-tiling", CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT_TILING,
     "CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT_TILING", true},
    {"winograd", CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD,
     "CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD", true},
    {"winograd-nonfused", CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD_NONFUSED,
     "CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD_NONFUSED", true},
}};
constexpr std::array<Algo, 6> kBackwardFilterAlgos = {{
    {"algo0", CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0, "CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0", false},
    {"algo1", CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1, "CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1", false},
    {"fft", CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT, "CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT", true},
    {"algo3", CUDNN_CONVOLUTION_BWD_FILTER_ALGO_3, "CUDNN_CONVOLUTION_BWD_FILTER_ALGO_3", false},
    {"winograd-nonfused", CUDNN_CONVOLUTION_BWD_FILTER_ALGO_WINOGRAD_NONFUSED,
     "CUDNN_CONVOLUTION_BWD_FILTER_ALGO_WINOGRAD_NONFUSED", true},
    {"fft-tiling", CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT_TILING,
     "CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT_TILING", true},
}};

std::span<const Algo> AlgosFor(Direction d) {
  switch (d) {
    case Direction::kForward: return kForwardAlgos;
    case Direction::kBackwardData: return kBackwardDataAlgos;
    case Direction::kBackwardWeights: return kBackwardFilterAlgos;
  }
  return kForwardAlgos;
}

// The default when cuDNN's heuristic cannot be asked: the multiply-add algorithm each
// direction's cuDNN users most often get.
std::string_view FallbackDefault(Direction d) {
  switch (d) {
    case Direction::kForward: return "implicit-precomp-gemm";
    case Direction::kBackwardData: return "algo1";
    case Direction::kBackwardWeights: return "algo1";
  }
  return "implicit-precomp-gemm";
}

const Algo* FindAlgo(Direction d, std::string_view name) {
  for (const Algo& a : AlgosFor(d)) {
    if (a.name == name) return &a;
  }
  return nullptr;
}

const Algo* FindAlgoByValue(Direction d, int value) {
  for (const Algo& a : AlgosFor(d)) {
    if (a.value == value) return &a;
  }
  return nullptr;
}

std::string AlgoNames(Direction d) {
  std::string names;
  for (const Algo& a : AlgosFor(d)) names += (names.empty() ? "" : ", ") + std::string(a.name);
  return names;
}

// ---- f16 / bf16 on the host -------------------------------------------------------------
// Round to nearest even, as the reference's values are exact in the dtype anyway; NaN
// stays NaN (the worker's poison of the result tensor must survive the round trip).

uint32_t FloatBits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}

float BitsFloat(uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

uint16_t FloatToHalf(float f) {
  const uint32_t x = FloatBits(f);
  const uint16_t sign = static_cast<uint16_t>((x >> 16) & 0x8000u);
  const uint32_t magnitude = x & 0x7fffffffu;
  if (magnitude >= 0x7f800000u) {  // Inf or NaN (NaN kept quiet and non-zero)
    return static_cast<uint16_t>(sign | 0x7c00u | (magnitude > 0x7f800000u ? 0x0200u : 0u));
  }
  if (magnitude >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // >= 65520: Inf
  if (magnitude < 0x38800000u) {  // below 2^-14: a subnormal half (or zero)
    // |f| * 2^24 is exact; rounding it to an integer (nearest even, the default mode)
    // gives the subnormal's bits, and 1024 is correctly the smallest normal.
    const float scaled = std::fabs(f) * 16777216.0f;
    return static_cast<uint16_t>(sign | static_cast<uint16_t>(std::nearbyint(scaled)));
  }
  const uint32_t exponent = (magnitude >> 23) - 127 + 15;
  const uint32_t mantissa = magnitude & 0x7fffffu;
  uint32_t h = (exponent << 10) | (mantissa >> 13);
  const uint32_t rest = mantissa & 0x1fffu;
  if (rest > 0x1000u || (rest == 0x1000u && (h & 1u))) ++h;  // a carry may reach Inf: right
  return static_cast<uint16_t>(sign | h);
}

float HalfToFloat(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exponent = (h >> 10) & 0x1fu;
  const uint32_t mantissa = h & 0x3ffu;
  if (exponent == 0) {
    const float value = std::ldexp(static_cast<float>(mantissa), -24);
    return sign ? -value : value;
  }
  if (exponent == 31) return BitsFloat(sign | 0x7f800000u | (mantissa << 13));
  return BitsFloat(sign | ((exponent - 15 + 127) << 23) | (mantissa << 13));
}

uint16_t FloatToBf16(float f) {
  uint32_t x = FloatBits(f);
  if ((x & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((x >> 16) | 0x0040u);
  x += 0x7fffu + ((x >> 16) & 1u);
  return static_cast<uint16_t>(x >> 16);
}

float Bf16ToFloat(uint16_t b) { return BitsFloat(static_cast<uint32_t>(b) << 16); }

// ---- device memory --------------------------------------------------------------------------

class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  ~DeviceBuffer() {
    if (ptr_ != nullptr) (void)cudaFree(ptr_);
  }

  Status Allocate(size_t bytes, std::string_view what) {
    bytes_ = bytes;
    if (bytes == 0) return Status::Ok();
    return FromCuda(cudaMalloc(&ptr_, bytes),
                    "cudaMalloc of " + std::to_string(bytes) + " bytes for " + std::string(what));
  }
  void* get() const { return ptr_; }
  size_t bytes() const { return bytes_; }

 private:
  void* ptr_ = nullptr;
  size_t bytes_ = 0;
};

// The bytes of a float32 host tensor in the problem's dtype.
std::vector<unsigned char> EncodeHost(const std::vector<float>& values, DataType t) {
  std::vector<unsigned char> bytes(values.size() * static_cast<size_t>(DataTypeBytes(t)));
  switch (t) {
    case DataType::kF32:
      if (!values.empty()) std::memcpy(bytes.data(), values.data(), bytes.size());
      break;
    case DataType::kF16:
    case DataType::kBF16:
      for (size_t i = 0; i < values.size(); ++i) {
        const uint16_t v = t == DataType::kF16 ? FloatToHalf(values[i]) : FloatToBf16(values[i]);
        std::memcpy(bytes.data() + 2 * i, &v, 2);
      }
      break;
  }
  return bytes;
}

void DecodeHost(const std::vector<unsigned char>& bytes, DataType t, std::vector<float>& values) {
  switch (t) {
    case DataType::kF32:
      if (!values.empty()) std::memcpy(values.data(), bytes.data(), values.size() * sizeof(float));
      break;
    case DataType::kF16:
    case DataType::kBF16:
      for (size_t i = 0; i < values.size(); ++i) {
        uint16_t v;
        std::memcpy(&v, bytes.data() + 2 * i, 2);
        values[i] = t == DataType::kF16 ? HalfToFloat(v) : Bf16ToFloat(v);
      }
      break;
  }
}

// ---- descriptors ---------------------------------------------------------------------------

cudnnDataType_t CudnnType(DataType t) {
  switch (t) {
    case DataType::kF32: return CUDNN_DATA_FLOAT;
    case DataType::kF16: return CUDNN_DATA_HALF;
    case DataType::kBF16: return CUDNN_DATA_BFLOAT16;
  }
  return CUDNN_DATA_FLOAT;
}

// f32: FMA instructions only. CUDNN_DEFAULT_MATH would let cuDNN use TF32 tensor cores on
// Ampere and later (10-bit mantissa products), which is a different computation from
// the one a float32 problem asks for. f16/bf16: tensor cores (what every framework
// uses), accumulating in float (the compute type below).
cudnnMathType_t MathTypeFor(DataType t) {
  return t == DataType::kF32 ? CUDNN_FMA_MATH : CUDNN_TENSOR_OP_MATH;
}

std::string_view MathTypeName(DataType t) {
  return t == DataType::kF32 ? "CUDNN_FMA_MATH" : "CUDNN_TENSOR_OP_MATH";
}

// The five descriptors of a problem, destroyed with it.
struct Descriptors {
  cudnnTensorDescriptor_t x = nullptr;
  cudnnFilterDescriptor_t w = nullptr;
  cudnnTensorDescriptor_t y = nullptr;
  cudnnTensorDescriptor_t b = nullptr;  // forward with bias only
  cudnnConvolutionDescriptor_t conv = nullptr;

  Descriptors() = default;
  Descriptors(const Descriptors&) = delete;
  Descriptors& operator=(const Descriptors&) = delete;
  ~Descriptors() {
    if (x != nullptr) (void)cudnnDestroyTensorDescriptor(x);
    if (w != nullptr) (void)cudnnDestroyFilterDescriptor(w);
    if (y != nullptr) (void)cudnnDestroyTensorDescriptor(y);
    if (b != nullptr) (void)cudnnDestroyTensorDescriptor(b);
    if (conv != nullptr) (void)cudnnDestroyConvolutionDescriptor(conv);
  }
};

// What cuDNN's legacy descriptors cannot express, as kUnsupported; OK otherwise.
// REQUIRES: Validate(p).ok().
Status Expressible(const Problem& p) {
  if (p.pad_top != p.pad_bottom || p.pad_left != p.pad_right) {
    return Status::Unsupported(
        "cuDNN's convolution descriptor has symmetric padding only (this problem pads top " +
        std::to_string(p.pad_top) + ", bottom " + std::to_string(p.pad_bottom) + ", left " +
        std::to_string(p.pad_left) + ", right " + std::to_string(p.pad_right) + ")");
  }
  constexpr int64_t kIntMax = std::numeric_limits<int>::max();
  const std::pair<const char*, int64_t> counts[] = {
      {"x", p.input_elements()}, {"w", p.weight_elements()}, {"y", p.output_elements()}};
  for (const auto& [tensor, elements] : counts) {
    if (elements > kIntMax) {
      return Status::Unsupported(
          "tensor " + std::string(tensor) + " has " + std::to_string(elements) +
          " elements; cuDNN's 4-D descriptors take int strides, so at most " +
          std::to_string(kIntMax));
    }
  }
  return Status::Ok();
}

StatusOr<std::unique_ptr<Descriptors>> MakeDescriptors(const Problem& p) {
  auto d = std::make_unique<Descriptors>();
  const cudnnDataType_t type = CudnnType(p.dtype);
  const cudnnTensorFormat_t format =
      p.layout == Layout::kNCHW ? CUDNN_TENSOR_NCHW : CUDNN_TENSOR_NHWC;
  auto i = [](int64_t v) { return static_cast<int>(v); };  // Expressible() bounded them

  CG_RETURN_IF_ERROR(FromCudnn(cudnnCreateTensorDescriptor(&d->x), "cudnnCreateTensorDescriptor"));
  CG_RETURN_IF_ERROR(
      FromCudnn(cudnnSetTensor4dDescriptor(d->x, format, type, i(p.n), i(p.c), i(p.h), i(p.w)),
                "cudnnSetTensor4dDescriptor(x)"));
  // The filter format follows the layout: NCHW -> K,C/g,R,S; NHWC -> K,R,S,C/g, which
  // is exactly tensor.h's weight layout for each.
  CG_RETURN_IF_ERROR(FromCudnn(cudnnCreateFilterDescriptor(&d->w), "cudnnCreateFilterDescriptor"));
  CG_RETURN_IF_ERROR(FromCudnn(
      cudnnSetFilter4dDescriptor(d->w, type, format, i(p.k), i(p.c_per_group()), i(p.r), i(p.s)),
      "cudnnSetFilter4dDescriptor(w)"));
  CG_RETURN_IF_ERROR(
      FromCudnn(cudnnCreateConvolutionDescriptor(&d->conv), "cudnnCreateConvolutionDescriptor"));
  CG_RETURN_IF_ERROR(
      FromCudnn(cudnnSetConvolution2dDescriptor(d->conv, i(p.pad_top), i(p.pad_left), i(p.stride_h),
                                                i(p.stride_w), i(p.dilation_h), i(p.dilation_w),
                                                CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT),
                "cudnnSetConvolution2dDescriptor"));
  CG_RETURN_IF_ERROR(FromCudnn(cudnnSetConvolutionGroupCount(d->conv, i(p.groups)),
                               "cudnnSetConvolutionGroupCount"));
  CG_RETURN_IF_ERROR(FromCudnn(cudnnSetConvolutionMathType(d->conv, MathTypeFor(p.dtype)),
                               "cudnnSetConvolutionMathType"));

  int on = 0, ok = 0, oh = 0, ow = 0;
  CG_RETURN_IF_ERROR(
      FromCudnn(cudnnGetConvolution2dForwardOutputDim(d->conv, d->x, d->w, &on, &ok, &oh, &ow),
                "cudnnGetConvolution2dForwardOutputDim"));
  if (on != p.n || ok != p.k || oh != p.out_h() || ow != p.out_w()) {
    return Status::Internal("cuDNN computes an output of " + std::to_string(on) + "x" +
                            std::to_string(ok) + "x" + std::to_string(oh) + "x" +
                            std::to_string(ow) + " where convguard expects " + std::to_string(p.n) +
                            "x" + std::to_string(p.k) + "x" + std::to_string(p.out_h()) + "x" +
                            std::to_string(p.out_w()));
  }
  CG_RETURN_IF_ERROR(FromCudnn(cudnnCreateTensorDescriptor(&d->y), "cudnnCreateTensorDescriptor"));
  CG_RETURN_IF_ERROR(FromCudnn(cudnnSetTensor4dDescriptor(d->y, format, type, on, ok, oh, ow),
                               "cudnnSetTensor4dDescriptor(y)"));
  if (p.bias && p.direction == Direction::kForward) {
    CG_RETURN_IF_ERROR(
        FromCudnn(cudnnCreateTensorDescriptor(&d->b), "cudnnCreateTensorDescriptor"));
    CG_RETURN_IF_ERROR(FromCudnn(cudnnSetTensor4dDescriptor(d->b, format, type, 1, i(p.k), 1, 1),
                                 "cudnnSetTensor4dDescriptor(b)"));
  }
  return d;
}

// A problem ready to run: descriptors, the algorithm and its workspace.
struct Plan {
  std::unique_ptr<Descriptors> d;
  const Algo* algo = nullptr;
  size_t workspace_bytes = 0;
};

StatusOr<size_t> WorkspaceBytes(cudnnHandle_t handle, const Problem& p, const Descriptors& d,
                                const Algo& a) {
  size_t bytes = 0;
  cudnnStatus_t s = CUDNN_STATUS_SUCCESS;
  const char* what = "";
  switch (p.direction) {
    case Direction::kForward:
      what = "cudnnGetConvolutionForwardWorkspaceSize";
      s = cudnnGetConvolutionForwardWorkspaceSize(
          handle, d.x, d.w, d.conv, d.y, static_cast<cudnnConvolutionFwdAlgo_t>(a.value), &bytes);
      break;
    case Direction::kBackwardData:
      what = "cudnnGetConvolutionBackwardDataWorkspaceSize";
      s = cudnnGetConvolutionBackwardDataWorkspaceSize(
          handle, d.w, d.y, d.conv, d.x, static_cast<cudnnConvolutionBwdDataAlgo_t>(a.value),
          &bytes);
      break;
    case Direction::kBackwardWeights:
      what = "cudnnGetConvolutionBackwardFilterWorkspaceSize";
      s = cudnnGetConvolutionBackwardFilterWorkspaceSize(
          handle, d.x, d.y, d.conv, d.w, static_cast<cudnnConvolutionBwdFilterAlgo_t>(a.value),
          &bytes);
      break;
  }
  CG_RETURN_IF_ERROR(FromCudnn(s, std::string(what) + "(" + std::string(a.enumerator) + ")"));
  return bytes;
}

// The first of `returned` ranked results that succeeded and multiplies and adds.
template <typename Perf>
const Algo* FirstMultiplyAdd(Direction direction, const std::vector<Perf>& perf, int returned) {
  for (int i = 0; i < returned; ++i) {
    if (perf[i].status != CUDNN_STATUS_SUCCESS) continue;
    const Algo* a = FindAlgoByValue(direction, perf[i].algo);
    if (a != nullptr && !a->transform) return a;
  }
  return nullptr;
}

// The first algorithm of cuDNN's own heuristic ranking (the *_v7 queries, which
// benchmark nothing) that succeeded and multiplies and adds; nullptr when the query
// fails or ranks only FFT/Winograd. See Algorithms() for why transforms are skipped.
const Algo* HeuristicDefault(cudnnHandle_t handle, const Problem& p, const Descriptors& d) {
  int count = 0;
  int returned = 0;
  switch (p.direction) {
    case Direction::kForward: {
      if (cudnnGetConvolutionForwardAlgorithmMaxCount(handle, &count) != CUDNN_STATUS_SUCCESS)
        return nullptr;
      std::vector<cudnnConvolutionFwdAlgoPerf_t> perf(static_cast<size_t>(std::max(count, 1)));
      if (cudnnGetConvolutionForwardAlgorithm_v7(handle, d.x, d.w, d.conv, d.y, count, &returned,
                                                 perf.data()) != CUDNN_STATUS_SUCCESS) {
        return nullptr;
      }
      return FirstMultiplyAdd(p.direction, perf, returned);
    }
    case Direction::kBackwardData: {
      if (cudnnGetConvolutionBackwardDataAlgorithmMaxCount(handle, &count) != CUDNN_STATUS_SUCCESS)
        return nullptr;
      std::vector<cudnnConvolutionBwdDataAlgoPerf_t> perf(static_cast<size_t>(std::max(count, 1)));
      if (cudnnGetConvolutionBackwardDataAlgorithm_v7(handle, d.w, d.y, d.conv, d.x, count,
                                                      &returned,
                                                      perf.data()) != CUDNN_STATUS_SUCCESS) {
        return nullptr;
      }
      return FirstMultiplyAdd(p.direction, perf, returned);
    }
    case Direction::kBackwardWeights: {
      if (cudnnGetConvolutionBackwardFilterAlgorithmMaxCount(handle, &count) !=
          CUDNN_STATUS_SUCCESS)
        return nullptr;
      std::vector<cudnnConvolutionBwdFilterAlgoPerf_t> perf(
          static_cast<size_t>(std::max(count, 1)));
      if (cudnnGetConvolutionBackwardFilterAlgorithm_v7(handle, d.x, d.y, d.conv, d.w, count,
                                                        &returned,
                                                        perf.data()) != CUDNN_STATUS_SUCCESS) {
        return nullptr;
      }
      return FirstMultiplyAdd(p.direction, perf, returned);
    }
  }
  return nullptr;
}

// ---- the stack ----------------------------------------------------------------------------

// "13.0" from CUDA's encoding 1000 * major + 10 * minor.
std::string CudaVersionText(int v) {
  return std::to_string(v / 1000) + "." + std::to_string((v % 1000) / 10);
}

// "9.19.0" from cuDNN 9's encoding 10000 * major + 100 * minor + patch.
std::string CudnnVersionText(size_t v) {
  return std::to_string(v / 10000) + "." + std::to_string((v % 10000) / 100) + "." +
         std::to_string(v % 100);
}

// The kernel module's version ("580.65.06") from /proc/driver/nvidia/version, whose first
// line reads "NVRM version: NVIDIA UNIX [Open Kernel Module for] x86_64 ... 580.65.06 ...".
// Empty when the file is missing (a container may hide it).
std::string KernelModuleVersion() {
  std::ifstream in("/proc/driver/nvidia/version");
  std::string line;
  if (!std::getline(in, line)) return "";
  std::istringstream words(line);
  std::string word;
  while (words >> word) {
    const bool version_like = std::isdigit(static_cast<unsigned char>(word.front())) &&
                              word.find('.') != std::string::npos &&
                              word.find_first_not_of("0123456789.") == std::string::npos;
    if (version_like) return word;
  }
  return "";
}

// Environment variables that change what cuDNN or CUDA computes or which kernels run:
// every CUDNN_* except the logging ones, and the CUDA knobs below. CUDA_VISIBLE_DEVICES
// is deliberately absent: the probe engine sets it to pin each pool's workers to their
// GPU, and two identical GPUs must be one stack (they share one job queue, and a
// verdict found on GPU 0 holds on GPU 1).
std::map<std::string, std::string> Knobs() {
  static constexpr std::array<std::string_view, 5> kCudaKnobs = {
      "NVIDIA_TF32_OVERRIDE", "CUDA_FORCE_PTX_JIT", "CUDA_DISABLE_PTX_JIT", "CUDA_LAUNCH_BLOCKING",
      "CUDA_MODULE_LOADING"};
  std::map<std::string, std::string> knobs;
  for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
    const std::string_view text(*entry);
    const size_t eq = text.find('=');
    if (eq == std::string_view::npos) continue;
    const std::string_view name = text.substr(0, eq);
    const bool cudnn = name.starts_with("CUDNN_") && !name.starts_with("CUDNN_LOG") &&
                       !name.starts_with("CUDNN_FRONTEND_LOG");
    const bool cuda = std::find(kCudaKnobs.begin(), kCudaKnobs.end(), name) != kCudaKnobs.end();
    if (cudnn || cuda) knobs[std::string(name)] = std::string(text.substr(eq + 1));
  }
  return knobs;
}

// ---- the backend ------------------------------------------------------------------------------

class CudnnBackend final : public Backend {
 public:
  CudnnBackend() = default;
  CudnnBackend(const CudnnBackend&) = delete;
  CudnnBackend& operator=(const CudnnBackend&) = delete;
  ~CudnnBackend() override {
    if (handle_ != nullptr) (void)cudnnDestroy(handle_);
    if (start_ != nullptr) (void)cudaEventDestroy(start_);
    if (stop_ != nullptr) (void)cudaEventDestroy(stop_);
    if (stream_ != nullptr) (void)cudaStreamDestroy(stream_);
  }

  std::string_view name() const override { return "cudnn"; }

  Status Init() override {
    // On a machine without the driver the runtime says "CUDA driver version is
    // insufficient"; say also what the file system shows.
    const std::string hint = CudnnDevicePresent()
                                 ? ""
                                 : " (this machine shows no NVIDIA GPU: no /dev/nvidiaN, no "
                                   "/proc/driver/nvidia/gpus)";
    int count = 0;
    if (const cudaError_t e = cudaGetDeviceCount(&count); e != cudaSuccess) {
      (void)cudaGetLastError();
      return Status::Unsupported(std::string("no CUDA device: ") + cudaGetErrorString(e) + hint);
    }
    if (count <= 0) return Status::Unsupported("no CUDA device: the CUDA runtime sees none" + hint);
    device_count_ = count;
    // Device 0 of what this process sees: the engine pins a pool's workers to one GPU
    // through CUDA_VISIBLE_DEVICES, which makes that GPU device 0.
    if (const cudaError_t e = cudaSetDevice(0); e != cudaSuccess) {
      (void)cudaGetLastError();
      return Status::Unsupported(std::string("no CUDA device: cudaSetDevice(0): ") +
                                 cudaGetErrorString(e));
    }
    cudaDeviceProp prop{};
    CG_RETURN_IF_ERROR(FromCuda(cudaGetDeviceProperties(&prop, 0), "cudaGetDeviceProperties"));
    CG_RETURN_IF_ERROR(
        FromCuda(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "cudaStreamCreate"));
    CG_RETURN_IF_ERROR(FromCuda(cudaEventCreate(&start_), "cudaEventCreate"));
    CG_RETURN_IF_ERROR(FromCuda(cudaEventCreate(&stop_), "cudaEventCreate"));
    CG_RETURN_IF_ERROR(FromCudnn(cudnnCreate(&handle_), "cudnnCreate"));
    CG_RETURN_IF_ERROR(FromCudnn(cudnnSetStream(handle_, stream_), "cudnnSetStream"));

    int driver = 0;
    int runtime = 0;
    CG_RETURN_IF_ERROR(FromCuda(cudaDriverGetVersion(&driver), "cudaDriverGetVersion"));
    CG_RETURN_IF_ERROR(FromCuda(cudaRuntimeGetVersion(&runtime), "cudaRuntimeGetVersion"));
    device_name_ = prop.name;
    fingerprint_.backend = "cudnn";
    fingerprint_.device = prop.name;
    fingerprint_.architecture = "sm_" + std::to_string(prop.major) + std::to_string(prop.minor);
    fingerprint_.compute_units = prop.multiProcessorCount;
    const std::string module = KernelModuleVersion();
    fingerprint_.driver = module.empty() ? "CUDA " + CudaVersionText(driver)
                                         : module + " (CUDA " + CudaVersionText(driver) + ")";
    fingerprint_.runtime = "CUDA " + CudaVersionText(runtime);
    fingerprint_.library = "cuDNN " + CudnnVersionText(cudnnGetVersion());
    fingerprint_.knobs = Knobs();
    fingerprint_.tool_version = CONVGUARD_VERSION;
    ready_ = true;
    WarmUp();
    return Status::Ok();
  }

  StackFingerprint Fingerprint() const override { return fingerprint_; }

  // Every algorithm of the direction, in cuDNN's enumeration order, except that the
  // default comes first: the highest-ranked multiply-add algorithm of cuDNN's heuristic
  // (cudnnGet*Algorithm_v7) for this problem on this GPU, or FallbackDefault() when the
  // heuristic cannot be asked. FFT and Winograd are never the default even when the
  // heuristic ranks them first: they round on the exactly filled data every probe uses,
  // so a default probe would report WRONG for what is expected rounding.
  std::vector<std::string> Algorithms(const Problem& p) const override {
    const Algo* first = nullptr;
    if (ready_ && Validate(p).ok() && Expressible(p).ok()) {
      if (StatusOr<std::unique_ptr<Descriptors>> d = MakeDescriptors(p); d.ok()) {
        first = HeuristicDefault(handle_, p, **d);
      }
    }
    if (first == nullptr) first = FindAlgo(p.direction, FallbackDefault(p.direction));
    std::vector<std::string> names;
    if (first != nullptr) names.emplace_back(first->name);
    for (const Algo& a : AlgosFor(p.direction)) {
      if (&a != first) names.emplace_back(a.name);
    }
    return names;
  }

  Status Supports(const Problem& p, std::string_view algorithm) const override {
    StatusOr<Plan> plan = Prepare(p, algorithm);
    return plan.ok() ? Status::Ok() : plan.status();
  }

  StatusOr<RunResult> Run(const Problem& p, std::string_view algorithm, ConvTensors<float>& io,
                          const RunOptions& options) override {
    CG_ASSIGN_OR_RETURN(Plan plan, Prepare(p, algorithm));
    const bool with_bias = p.bias && p.direction == Direction::kForward;

    DeviceBuffer x, w, y, b, workspace;
    CG_RETURN_IF_ERROR(x.Allocate(static_cast<size_t>(p.input_bytes()), "x"));
    CG_RETURN_IF_ERROR(w.Allocate(static_cast<size_t>(p.weight_bytes()), "w"));
    CG_RETURN_IF_ERROR(y.Allocate(static_cast<size_t>(p.output_bytes()), "y"));
    if (with_bias) CG_RETURN_IF_ERROR(b.Allocate(static_cast<size_t>(p.bias_bytes()), "b"));
    CG_RETURN_IF_ERROR(workspace.Allocate(plan.workspace_bytes, "the workspace"));

    // Every tensor goes up, the result tensor too: it holds the worker's NaN poison, and
    // beta = 0 means cuDNN never reads it, so an element it fails to write stays NaN.
    CG_RETURN_IF_ERROR(Upload(io.input, p.dtype, x));
    CG_RETURN_IF_ERROR(Upload(io.weight, p.dtype, w));
    CG_RETURN_IF_ERROR(Upload(io.output, p.dtype, y));
    if (with_bias) CG_RETURN_IF_ERROR(Upload(io.bias, p.dtype, b));

    RunResult result;
    const int warmup = std::max(0, options.warmup);
    const int executions = std::max(1, warmup + std::max(0, options.repeats));
    for (int i = 0; i < executions; ++i) {
      CG_RETURN_IF_ERROR(FromCuda(cudaEventRecord(start_, stream_), "cudaEventRecord"));
      CG_RETURN_IF_ERROR(Execute(p, plan, x, w, y, b, workspace));
      CG_RETURN_IF_ERROR(FromCuda(cudaEventRecord(stop_, stream_), "cudaEventRecord"));
      CG_RETURN_IF_ERROR(FromCuda(cudaEventSynchronize(stop_),
                                  "waiting for " + std::string(plan.algo->enumerator)));
      if (i >= warmup) {
        float ms = 0.0f;
        CG_RETURN_IF_ERROR(
            FromCuda(cudaEventElapsedTime(&ms, start_, stop_), "cudaEventElapsedTime"));
        result.times_ms.push_back(ms);
      }
    }

    std::vector<float>& produced = p.direction == Direction::kForward        ? io.output
                                   : p.direction == Direction::kBackwardData ? io.input
                                                                             : io.weight;
    const DeviceBuffer& source = p.direction == Direction::kForward        ? y
                                 : p.direction == Direction::kBackwardData ? x
                                                                           : w;
    CG_RETURN_IF_ERROR(Download(source, p.dtype, produced));

    const char* call = p.direction == Direction::kForward        ? "cudnnConvolutionForward"
                       : p.direction == Direction::kBackwardData ? "cudnnConvolutionBackwardData"
                                                                 : "cudnnConvolutionBackwardFilter";
    result.implementation =
        std::string(call) + " " + std::string(plan.algo->enumerator) + ", " +
        std::string(MathTypeName(p.dtype)) + ", float accumulation, workspace " +
        std::to_string(plan.workspace_bytes) + " B" + (with_bias ? " + cudnnAddTensor (bias)" : "");
    result.exact = !plan.algo->transform;  // FFT and Winograd round even on exact data
    return result;
  }

  DeviceMemory* device_memory() override { return ready_ ? &memory_ : nullptr; }

  StatusOr<std::unique_ptr<DeviceCall>> PrepareDeviceCall(const Problem& p,
                                                          std::string_view algorithm) override {
    CG_ASSIGN_OR_RETURN(Plan plan, Prepare(p, algorithm));
    auto call = std::make_unique<Call>(*this, p, std::move(plan));
    CG_RETURN_IF_ERROR(call->AllocateWorkspace());
    return std::unique_ptr<DeviceCall>(std::move(call));
  }

  double first_call_allowance_ms() const override { return kFirstCallAllowanceMs; }
  bool runs_on_shared_device() const override { return true; }
  int visible_devices() const override { return device_count_; }

  bool HangOnDevice() override {
    if (!ready_) return false;
    const cudaError_t launched = cudnn_detail::LaunchSpinForever(stream_);
    if (launched != cudaSuccess) {
      (void)cudaGetLastError();
      std::fprintf(stderr,
                   "convguard cudnn: the spin kernel could not be launched (%s); the fault "
                   "spins on the CPU instead\n",
                   CudaErrorText(launched).c_str());
      std::fflush(stderr);
      return false;
    }
    std::fprintf(stderr,
                 "convguard cudnn: spin kernel launched on %s; waiting for it in "
                 "cudaStreamSynchronize (it never finishes)\n",
                 device_name_.c_str());
    std::fflush(stderr);
    const cudaError_t waited = cudaStreamSynchronize(stream_);
    std::fprintf(stderr,
                 "convguard cudnn: the spin kernel ended unexpectedly (%s); the fault spins "
                 "on the CPU instead\n",
                 CudaErrorText(waited).c_str());
    std::fflush(stderr);
    return false;
  }

 private:
  // Checks that cuDNN's legacy API can run `algorithm` on `p` (descriptors accepted, a
  // workspace size reported) and returns what running it needs.
  StatusOr<Plan> Prepare(const Problem& p, std::string_view algorithm) const {
    if (!ready_) return Status::Internal("the cuDNN backend is used before Init() succeeded");
    CG_RETURN_IF_ERROR(Validate(p));
    Plan plan;
    plan.algo = FindAlgo(p.direction, algorithm);
    if (plan.algo == nullptr) {
      return Status::Unsupported("algorithm '" + std::string(algorithm) + "' is not a cuDNN " +
                                 std::string(DirectionName(p.direction)) +
                                 " algorithm (offers: " + AlgoNames(p.direction) + ")");
    }
    CG_RETURN_IF_ERROR(Expressible(p));
    CG_ASSIGN_OR_RETURN(plan.d, MakeDescriptors(p));
    CG_ASSIGN_OR_RETURN(plan.workspace_bytes, WorkspaceBytes(handle_, p, *plan.d, *plan.algo));
    return plan;
  }

  // One execution of the planned call (plus the bias for forward), queued on stream_.
  Status Execute(const Problem& p, const Plan& plan, const DeviceBuffer& x, const DeviceBuffer& w,
                 const DeviceBuffer& y, const DeviceBuffer& b, const DeviceBuffer& workspace) {
    return ExecuteOn(p, plan, DeviceTensors{x.get(), w.get(), y.get(), b.get()}, workspace.get(),
                     workspace.bytes());
  }

  // The same on any device addresses (the caller's, for device-resident execution).
  Status ExecuteOn(const Problem& p, const Plan& plan, const DeviceTensors& t, void* workspace,
                   size_t workspace_bytes) {
    // Scaling factors are float for float, half and bfloat16 data.
    const float one = 1.0f;
    const float zero = 0.0f;
    const Descriptors& d = *plan.d;
    switch (p.direction) {
      case Direction::kForward:
        CG_RETURN_IF_ERROR(FromCudnn(
            cudnnConvolutionForward(handle_, &one, d.x, t.input, d.w, t.weight, d.conv,
                                    static_cast<cudnnConvolutionFwdAlgo_t>(plan.algo->value),
                                    workspace, workspace_bytes, &zero, d.y, t.output),
            "cudnnConvolutionForward(" + std::string(plan.algo->enumerator) + ")"));
        if (d.b != nullptr) {
          CG_RETURN_IF_ERROR(
              FromCudnn(cudnnAddTensor(handle_, &one, d.b, t.bias, &one, d.y, t.output),
                        "cudnnAddTensor(bias)"));
        }
        return Status::Ok();
      case Direction::kBackwardData:
        return FromCudnn(
            cudnnConvolutionBackwardData(
                handle_, &one, d.w, t.weight, d.y, t.output, d.conv,
                static_cast<cudnnConvolutionBwdDataAlgo_t>(plan.algo->value), workspace,
                workspace_bytes, &zero, d.x, t.input),
            "cudnnConvolutionBackwardData(" + std::string(plan.algo->enumerator) + ")");
      case Direction::kBackwardWeights:
        return FromCudnn(
            cudnnConvolutionBackwardFilter(
                handle_, &one, d.x, t.input, d.y, t.output, d.conv,
                static_cast<cudnnConvolutionBwdFilterAlgo_t>(plan.algo->value), workspace,
                workspace_bytes, &zero, d.w, t.weight),
            "cudnnConvolutionBackwardFilter(" + std::string(plan.algo->enumerator) + ")");
    }
    return Status::Internal("unknown direction");
  }

  Status Upload(const std::vector<float>& host, DataType t, const DeviceBuffer& device) {
    if (host.empty()) return Status::Ok();
    const std::vector<unsigned char> bytes = EncodeHost(host, t);
    if (bytes.size() != device.bytes()) {
      return Status::Internal("host tensor of " + std::to_string(bytes.size()) +
                              " bytes for a device buffer of " + std::to_string(device.bytes()));
    }
    CG_RETURN_IF_ERROR(FromCuda(
        cudaMemcpyAsync(device.get(), bytes.data(), bytes.size(), cudaMemcpyHostToDevice, stream_),
        "cudaMemcpyAsync (host to device)"));
    return FromCuda(cudaStreamSynchronize(stream_), "cudaStreamSynchronize (host to device)");
  }

  Status Download(const DeviceBuffer& device, DataType t, std::vector<float>& host) {
    std::vector<unsigned char> bytes(host.size() * static_cast<size_t>(DataTypeBytes(t)));
    if (bytes.size() != device.bytes()) {
      return Status::Internal("host tensor of " + std::to_string(bytes.size()) +
                              " bytes for a device buffer of " + std::to_string(device.bytes()));
    }
    if (bytes.empty()) return Status::Ok();
    CG_RETURN_IF_ERROR(FromCuda(
        cudaMemcpyAsync(bytes.data(), device.get(), bytes.size(), cudaMemcpyDeviceToHost, stream_),
        "cudaMemcpyAsync (device to host)"));
    CG_RETURN_IF_ERROR(
        FromCuda(cudaStreamSynchronize(stream_), "cudaStreamSynchronize (device to host)"));
    DecodeHost(bytes, t, host);
    return Status::Ok();
  }

  // Loads cuDNN's convolution sub-libraries and their first kernels once, while the
  // worker starts (under the engine's start-up deadline), so that no probe's run-stage
  // deadline pays for it. Best effort: a failure here is not an error (the probes that
  // need the same code will report it).
  void WarmUp() {
    for (Direction d :
         {Direction::kForward, Direction::kBackwardData, Direction::kBackwardWeights}) {
      Problem p;
      p.c = 4;
      p.h = 8;
      p.w = 8;
      p.k = 4;
      p.r = 3;
      p.s = 3;
      p.pad_top = p.pad_bottom = p.pad_left = p.pad_right = 1;
      p.direction = d;
      ConvTensors<float> io = ConvTensors<float>::Allocate(p);
      RunOptions once;
      once.warmup = 0;
      once.repeats = 1;
      (void)Run(p, FallbackDefault(d), io, once);
    }
  }

  // The device memory of device-resident execution: every operation is queued on
  // stream_, the one stream this backend computes on.
  class Memory final : public DeviceMemory {
   public:
    explicit Memory(CudnnBackend& backend) : backend_(backend) {}
    Memory(const Memory&) = delete;
    Memory& operator=(const Memory&) = delete;
    ~Memory() override {
      if (caller_done_ != nullptr) (void)cudaEventDestroy(caller_done_);
    }

    StatusOr<void*> Allocate(size_t bytes, std::string_view what) override {
      void* block = nullptr;
      if (bytes == 0) return block;
      CG_RETURN_IF_ERROR(
          FromCuda(cudaMalloc(&block, bytes),
                   "cudaMalloc of " + std::to_string(bytes) + " bytes for " + std::string(what)));
      return block;
    }

    void Free(void* block) override {
      if (block != nullptr) (void)cudaFree(block);
    }

    Status Zero(void* device, size_t bytes) override {
      if (bytes == 0) return Status::Ok();
      return FromCuda(cudaMemsetAsync(device, 0, bytes, backend_.stream_), "cudaMemsetAsync");
    }

    Status CopyRows(void* dst, size_t dst_pitch, const void* src, size_t src_pitch, size_t width,
                    size_t rows) override {
      if (width == 0 || rows == 0) return Status::Ok();
      if (rows == 1) {
        return FromCuda(
            cudaMemcpyAsync(dst, src, width, cudaMemcpyDeviceToDevice, backend_.stream_),
            "cudaMemcpyAsync (device to device)");
      }
      return FromCuda(cudaMemcpy2DAsync(dst, dst_pitch, src, src_pitch, width, rows,
                                        cudaMemcpyDeviceToDevice, backend_.stream_),
                      "cudaMemcpy2DAsync (device to device)");
    }

    Status Upload(const std::vector<float>& host, DataType dtype, void* device) override {
      if (host.empty()) return Status::Ok();
      const std::vector<unsigned char> bytes = EncodeHost(host, dtype);
      CG_RETURN_IF_ERROR(FromCuda(cudaMemcpyAsync(device, bytes.data(), bytes.size(),
                                                  cudaMemcpyHostToDevice, backend_.stream_),
                                  "cudaMemcpyAsync (host to device)"));
      return FromCuda(cudaStreamSynchronize(backend_.stream_),
                      "cudaStreamSynchronize (host to device)");
    }

    Status Download(const void* device, DataType dtype, std::vector<float>& host) override {
      if (host.empty()) return Status::Ok();
      std::vector<unsigned char> bytes(host.size() * static_cast<size_t>(DataTypeBytes(dtype)));
      CG_RETURN_IF_ERROR(FromCuda(cudaMemcpyAsync(bytes.data(), device, bytes.size(),
                                                  cudaMemcpyDeviceToHost, backend_.stream_),
                                  "cudaMemcpyAsync (device to host)"));
      CG_RETURN_IF_ERROR(FromCuda(cudaStreamSynchronize(backend_.stream_),
                                  "cudaStreamSynchronize (device to host)"));
      DecodeHost(bytes, dtype, host);
      return Status::Ok();
    }

    Status Begin(void* stream) override {
      const auto caller = static_cast<cudaStream_t>(stream);
      if (caller == backend_.stream_) return Status::Ok();
      if (caller_done_ == nullptr) {
        CG_RETURN_IF_ERROR(FromCuda(cudaEventCreateWithFlags(&caller_done_, cudaEventDisableTiming),
                                    "cudaEventCreate"));
      }
      CG_RETURN_IF_ERROR(
          FromCuda(cudaEventRecord(caller_done_, caller), "cudaEventRecord (the caller's stream)"));
      return FromCuda(cudaStreamWaitEvent(backend_.stream_, caller_done_, 0),
                      "cudaStreamWaitEvent (the caller's stream)");
    }

    Status Finish() override {
      return FromCuda(cudaStreamSynchronize(backend_.stream_), "waiting for the device's work");
    }

    Status CheckAddress(const void* device, std::string_view what) override {
      char where[32];
      std::snprintf(where, sizeof(where), "%p", device);
      const std::string named = std::string(what) + " (" + where + ")";
      if (device == nullptr) return Status::InvalidArgument(named + " is a null address");
      cudaPointerAttributes attributes{};
      if (const cudaError_t e = cudaPointerGetAttributes(&attributes, device); e != cudaSuccess) {
        (void)cudaGetLastError();
        return Status::InvalidArgument(named +
                                       " is not an address CUDA knows: " + CudaErrorText(e));
      }
      if (attributes.type != cudaMemoryTypeDevice && attributes.type != cudaMemoryTypeManaged) {
        return Status::InvalidArgument(
            named + " is host memory; device-resident execution takes memory of " +
            backend_.device_name_ + " (CUDA device 0 of this process); pass host tensors to Run");
      }
      if (attributes.device != 0) {
        return Status::InvalidArgument(
            named + " is memory of CUDA device " + std::to_string(attributes.device) +
            "; this backend computes on device 0 of this process (" + backend_.device_name_ + ")");
      }
      return Status::Ok();
    }

   private:
    CudnnBackend& backend_;
    cudaEvent_t caller_done_ = nullptr;  // made on first use
  };

  // A problem prepared once for device-resident execution: descriptors, algorithm and
  // workspace live as long as the call.
  class Call final : public DeviceCall {
   public:
    Call(CudnnBackend& backend, const Problem& p, Plan plan)
        : backend_(backend), problem_(p), plan_(std::move(plan)) {}

    Status AllocateWorkspace() {
      return workspace_.Allocate(plan_.workspace_bytes, "the workspace");
    }

    Status Enqueue(const DeviceTensors& io) override {
      return backend_.ExecuteOn(problem_, plan_, io, workspace_.get(), workspace_.bytes());
    }

    bool exact() const override { return !plan_.algo->transform; }

   private:
    CudnnBackend& backend_;
    Problem problem_;
    Plan plan_;
    DeviceBuffer workspace_;
  };

  bool ready_ = false;
  int device_count_ = 0;
  std::string device_name_;
  cudnnHandle_t handle_ = nullptr;
  cudaStream_t stream_ = nullptr;
  cudaEvent_t start_ = nullptr;
  cudaEvent_t stop_ = nullptr;
  StackFingerprint fingerprint_;
  Memory memory_{*this};
};

}  // namespace

std::unique_ptr<Backend> MakeCudnnBackend() { return std::make_unique<CudnnBackend>(); }

bool CudnnDevicePresent() {
  namespace fs = std::filesystem;
  std::error_code ec;
  // The driver lists every GPU it manages here, one directory per PCI address.
  for (fs::directory_iterator it("/proc/driver/nvidia/gpus", ec), end; !ec && it != end;
       it.increment(ec)) {
    return true;
  }
  // Containers often show the device nodes without /proc/driver/nvidia: /dev/nvidia0,
  // or only the GPUs passed through (/dev/nvidia3); not /dev/nvidiactl or -uvm.
  ec.clear();
  for (fs::directory_iterator it("/dev", ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.size() > 6 && name.starts_with("nvidia") &&
        name.find_first_not_of("0123456789", 6) == std::string::npos) {
      return true;
    }
  }
  return false;
}

}  // namespace convguard
