#include "backends/reference/reference_backend.h"

#include <algorithm>
#include <chrono>
#include <string>
#include <thread>

#include "backends/cpu_info.h"
#include "convguard/reference.h"

namespace convguard {
namespace {

constexpr std::string_view kAlgorithm = "direct";

template <typename From, typename To>
void Convert(const std::vector<From>& from, std::vector<To>& to) {
  to.resize(from.size());
  std::transform(from.begin(), from.end(), to.begin(), [](From v) { return static_cast<To>(v); });
}

class ReferenceBackend final : public Backend {
 public:
  std::string_view name() const override { return "reference"; }

  Status Init() override {
    fingerprint_.backend = "reference";
    fingerprint_.device = "CPU " + CpuModelName();
    fingerprint_.architecture = MachineArchitecture();
    fingerprint_.compute_units = std::max(1u, std::thread::hardware_concurrency());
    fingerprint_.library = "convguard float64 reference";
    fingerprint_.tool_version = CONVGUARD_VERSION;
    return Status::Ok();
  }

  StackFingerprint Fingerprint() const override { return fingerprint_; }

  std::vector<std::string> Algorithms(const Problem&) const override {
    return {std::string(kAlgorithm)};
  }

  Status Supports(const Problem& p, std::string_view algorithm) const override {
    if (algorithm != kAlgorithm) {
      return Status::Unsupported("algorithm '" + std::string(algorithm) +
                                 "' is not offered by the reference backend (offers: direct)");
    }
    return Validate(p);
  }

  StatusOr<RunResult> Run(const Problem& p, std::string_view algorithm, ConvTensors<float>& io,
                          const RunOptions& options) override {
    CG_RETURN_IF_ERROR(Supports(p, algorithm));
    ConvTensors<double> t;
    Convert(io.input, t.input);
    Convert(io.weight, t.weight);
    Convert(io.output, t.output);
    Convert(io.bias, t.bias);
    RunResult result;
    result.implementation = "reference:float64";
    for (int i = 0; i < options.warmup + options.repeats; ++i) {
      const auto start = std::chrono::steady_clock::now();
      ReferenceConvolution(p, t);
      const auto stop = std::chrono::steady_clock::now();
      if (i >= options.warmup) {
        result.times_ms.push_back(std::chrono::duration<double, std::milli>(stop - start).count());
      }
    }
    Convert(ResultTensor(p, t), ResultTensor(p, io));
    return result;
  }

 private:
  StackFingerprint fingerprint_;
};

}  // namespace

std::unique_ptr<Backend> MakeReferenceBackend() { return std::make_unique<ReferenceBackend>(); }

}  // namespace convguard
