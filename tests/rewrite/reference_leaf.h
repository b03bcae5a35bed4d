// A leaf ExecNode for rewrite tests: computes its problem with the float64 reference.
//
// Execute converts the float32 operands to float64 (exact), runs ReferenceConvolution
// and converts the result back, refusing (kInternal) any value float32 cannot hold
// exactly, so a rewrite that feeds a child data outside FillExact's bounds is caught
// rather than rounded. It also enforces the protocol of rewrite.h: Execute before
// LoadWeights, or io.weight / io.bias differing from what was loaded, is an error.
//
// Test-only; a value of no thread-safety beyond ExecNode's.
#pragma once

#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "convguard/problem.h"
#include "convguard/reference.h"
#include "convguard/status.h"
#include "convguard/tensor.h"
#include "convguard/text_forms.h"
#include "rewrite/rewrite.h"

namespace convguard::rewrite::testing {

class ReferenceLeaf final : public ExecNode {
 public:
  explicit ReferenceLeaf(const Problem& p)
      : problem_(p), scratch_(ConvTensors<double>::Allocate(p)) {}

  const Problem& problem() const override { return problem_; }

  Status LoadWeights(const std::vector<float>& weight, const std::vector<float>& bias) override {
    if (static_cast<int64_t>(weight.size()) != problem_.weight_elements() ||
        static_cast<int64_t>(bias.size()) != problem_.bias_elements()) {
      return Status::InvalidArgument("leaf LoadWeights: wrong sizes for " + ToCanonical(problem_));
    }
    loaded_weight_ = weight;
    loaded_bias_ = bias;
    loaded_ = true;
    ++loads_;
    return Status::Ok();
  }

  Status Execute(ConvTensors<float>& io) override {
    const Problem& p = problem_;
    if (static_cast<int64_t>(io.input.size()) != p.input_elements() ||
        static_cast<int64_t>(io.weight.size()) != p.weight_elements() ||
        static_cast<int64_t>(io.output.size()) != p.output_elements() ||
        static_cast<int64_t>(io.bias.size()) != p.bias_elements()) {
      return Status::InvalidArgument("leaf Execute: tensors not sized for " + ToCanonical(p));
    }
    ++executions_;
    switch (p.direction) {
      case Direction::kForward:
        CG_RETURN_IF_ERROR(CheckLoaded(io));
        Widen(io.input, scratch_.input);
        Widen(io.weight, scratch_.weight);
        Widen(io.bias, scratch_.bias);
        break;
      case Direction::kBackwardData:
        CG_RETURN_IF_ERROR(CheckLoaded(io));
        Widen(io.output, scratch_.output);
        Widen(io.weight, scratch_.weight);
        break;
      case Direction::kBackwardWeights:
        Widen(io.input, scratch_.input);
        Widen(io.output, scratch_.output);
        break;
    }
    ReferenceConvolution(p, scratch_);
    return Narrow(ResultTensor(p, scratch_), ResultTensor(p, io));
  }

  int64_t executions() const { return executions_; }
  int64_t loads() const { return loads_; }

 private:
  // The weights the caller hands Execute must be the ones it loaded (rewrite.h).
  Status CheckLoaded(const ConvTensors<float>& io) const {
    if (!loaded_)
      return Status::Internal("leaf Execute before LoadWeights: " + ToCanonical(problem_));
    if (!SameBits(io.weight, loaded_weight_) || !SameBits(io.bias, loaded_bias_)) {
      return Status::Internal("leaf Execute: io.weight/io.bias differ from the loaded weights: " +
                              ToCanonical(problem_));
    }
    return Status::Ok();
  }

  static bool SameBits(const std::vector<float>& a, const std::vector<float>& b) {
    return a.size() == b.size() &&
           (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);
  }

  static void Widen(const std::vector<float>& from, std::vector<double>& to) {
    for (size_t i = 0; i < from.size(); ++i) to[i] = from[i];
  }

  Status Narrow(const std::vector<double>& from, std::vector<float>& to) const {
    for (size_t i = 0; i < from.size(); ++i) {
      const auto value = static_cast<float>(from[i]);
      if (static_cast<double>(value) != from[i]) {
        return Status::Internal("leaf result " + std::to_string(from[i]) +
                                " is not exact in float32: " + ToCanonical(problem_));
      }
      to[i] = value;
    }
    return Status::Ok();
  }

  Problem problem_;
  ConvTensors<double> scratch_;
  std::vector<float> loaded_weight_;
  std::vector<float> loaded_bias_;
  bool loaded_ = false;
  int64_t executions_ = 0;
  int64_t loads_ = 0;
};

// One reference leaf per slot of an application.
inline std::vector<std::unique_ptr<ExecNode>> ReferenceLeaves(const Application& app) {
  std::vector<std::unique_ptr<ExecNode>> leaves;
  for (const Problem& child : app.children)
    leaves.push_back(std::make_unique<ReferenceLeaf>(child));
  return leaves;
}

}  // namespace convguard::rewrite::testing
