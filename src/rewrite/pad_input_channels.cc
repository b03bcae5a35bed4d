// pad-input-channels: computes P through one child with more input channels, c -> c'.
//
// Preconditions: groups == 1 (a grouped problem reaches it by composing with
// group-split), c' > c, and the child problem (P with c = c') is valid.
//
// Contract, per direction (x is (n, c, h, w), w is (k, c, r, s); the child's x' and w'
// have c' channels, the first c of which are P's):
//   forward:          x' = [x, 0], w' = [w, 0] on the input-channel axis, bias as is;
//                     y = y'. The extra channels multiply zero weights by zero inputs.
//   backward-data:    w' = [w, 0]; dy' = dy; dx = the first c channels of dx'. The
//                     extra channels of dx' are discarded.
//   backward-weights: x' = [x, 0], dy' = dy; dw = the first c input channels of dw'.
//                     The extra input channels of dw' correlate zeros and are discarded.
// Exactness: every kept value of the child's result is a sum of the same nonzero
// products as P's, plus products with a zero factor, which are exactly zero.
//
// Per call it copies x (forward, backward-weights) or dy (backward-data, backward-
// weights) in and the result out; w' is written once per LoadWeights. The zero
// channels are zeroed when the slot is allocated and never written again. The device
// node (device-resident guarded execution) does the same with device copies, in the
// tensors' own dtype: copying values is exact in any dtype.
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "rewrite/rewrite.h"
#include "rewrite/rewrite_node.h"
#include "rewrite/tensor_copy.h"

namespace convguard::rewrite {
namespace {

constexpr ChannelPadding kPadding{"pad-input-channels", "c", &Problem::c};

class PadInputChannelsNode final : public RewriteNode {
 public:
  PadInputChannelsNode(const Problem& p, std::vector<std::unique_ptr<ExecNode>> children)
      : RewriteNode(p, std::move(children)) {}

 private:
  void DistributeWeights(const std::vector<float>& weight,
                         const std::vector<float>& bias) override {
    const Problem& p = problem();
    ConvTensors<float>& child = slot_io(0);
    CopyBox(weight.data(), WeightShape(p), {}, child.weight.data(), WeightShape(slot_problem(0)),
            {}, WeightShape(p).dims);
    child.bias = bias;  // same size: no allocation
  }

  Status Run(ConvTensors<float>& io) override {
    const Problem& p = problem();
    const Problem& cp = slot_problem(0);
    ConvTensors<float>& child = slot_io(0);
    const TensorShape4 x = InputShape(p);
    switch (p.direction) {
      case Direction::kForward:
        CopyBox(io.input.data(), x, {}, child.input.data(), InputShape(cp), {}, x.dims);
        CG_RETURN_IF_ERROR(RunSlot(0));
        io.output = child.output;
        return Status::Ok();
      case Direction::kBackwardData:
        child.output = io.output;
        CG_RETURN_IF_ERROR(RunSlot(0));
        CopyBox(child.input.data(), InputShape(cp), {}, io.input.data(), x, {}, x.dims);
        return Status::Ok();
      case Direction::kBackwardWeights:
        CopyBox(io.input.data(), x, {}, child.input.data(), InputShape(cp), {}, x.dims);
        child.output = io.output;
        CG_RETURN_IF_ERROR(RunSlot(0));
        CopyBox(child.weight.data(), WeightShape(cp), {}, io.weight.data(), WeightShape(p), {},
                WeightShape(p).dims);
        return Status::Ok();
    }
    return Status::Internal("unknown direction");
  }
};

// The same on device tensors: `activation_` is x' (forward, backward-weights; zeroed
// once, so its extra channels stay zero) or dx' (backward-data); `weights_` is w'
// (forward, backward-data; zeroed once) or dw' (backward-weights).
class PadInputChannelsDeviceNode final : public DeviceRewriteNode {
 public:
  static StatusOr<std::unique_ptr<DeviceNode>> Make(
      const Problem& p, std::vector<std::unique_ptr<DeviceNode>> children, DeviceMemory& memory) {
    std::unique_ptr<PadInputChannelsDeviceNode> node(
        new PadInputChannelsDeviceNode(p, std::move(children), memory));
    const Problem& cp = node->slot_problem(0);
    const bool reads_x = p.direction != Direction::kBackwardData;
    const bool reads_w = p.direction != Direction::kBackwardWeights;
    CG_ASSIGN_OR_RETURN(node->activation_,
                        DeviceBlock::Allocate(memory, cp.input_bytes(), "padded x", reads_x));
    CG_ASSIGN_OR_RETURN(node->weights_,
                        DeviceBlock::Allocate(memory, cp.weight_bytes(), "padded w", reads_w));
    return std::unique_ptr<DeviceNode>(std::move(node));
  }

 private:
  PadInputChannelsDeviceNode(const Problem& p, std::vector<std::unique_ptr<DeviceNode>> children,
                             DeviceMemory& memory)
      : DeviceRewriteNode(p, std::move(children), memory) {}

  Status DistributeWeights(const DeviceTensors& io) override {
    const Problem& p = problem();
    CG_RETURN_IF_ERROR(CopyBoxOnDevice(memory(), element_bytes(), io.weight, WeightShape(p), {},
                                       weights_.get(), WeightShape(slot_problem(0)), {},
                                       WeightShape(p).dims));
    return child(0).LoadWeights(DeviceTensors{nullptr, weights_.get(), nullptr, io.bias});
  }

  Status Run(const DeviceTensors& io) override {
    const Problem& p = problem();
    const Problem& cp = slot_problem(0);
    const TensorShape4 x = InputShape(p);
    const int64_t e = element_bytes();
    switch (p.direction) {
      case Direction::kForward:
        CG_RETURN_IF_ERROR(CopyBoxOnDevice(memory(), e, io.input, x, {}, activation_.get(),
                                           InputShape(cp), {}, x.dims));
        return child(0).Execute(
            DeviceTensors{activation_.get(), weights_.get(), io.output, io.bias});
      case Direction::kBackwardData:
        CG_RETURN_IF_ERROR(
            child(0).Execute(DeviceTensors{activation_.get(), weights_.get(), io.output, nullptr}));
        return CopyBoxOnDevice(memory(), e, activation_.get(), InputShape(cp), {}, io.input, x, {},
                               x.dims);
      case Direction::kBackwardWeights:
        CG_RETURN_IF_ERROR(CopyBoxOnDevice(memory(), e, io.input, x, {}, activation_.get(),
                                           InputShape(cp), {}, x.dims));
        CG_RETURN_IF_ERROR(
            child(0).Execute(DeviceTensors{activation_.get(), weights_.get(), io.output, nullptr}));
        return CopyBoxOnDevice(memory(), e, weights_.get(), WeightShape(cp), {}, io.weight,
                               WeightShape(p), {}, WeightShape(p).dims);
    }
    return Status::Internal("unknown direction");
  }

  DeviceBlock activation_;
  DeviceBlock weights_;
};

class PadInputChannels final : public Rewrite {
 public:
  std::string_view name() const override { return kPadding.rewrite; }

  std::vector<Application> Candidates(const Problem& p) const override {
    return PaddedCandidates(kPadding, p);
  }

  StatusOr<std::unique_ptr<ExecNode>> Build(
      const Problem& p, const Application& application,
      std::vector<std::unique_ptr<ExecNode>> children) const override {
    CG_RETURN_IF_ERROR(CheckPaddedApplication(kPadding, p, application, ChildProblems(children)));
    return std::unique_ptr<ExecNode>(new PadInputChannelsNode(p, std::move(children)));
  }

  StatusOr<std::vector<ForwardPiece>> ForwardPieces(const Problem& p,
                                                    const Application& application) const override {
    return PaddedForwardPieces(kPadding, p, application);
  }

  bool has_device_node() const override { return true; }

  StatusOr<std::unique_ptr<DeviceNode>> BuildOnDevice(
      const Problem& p, const Application& application,
      std::vector<std::unique_ptr<DeviceNode>> children, DeviceMemory& memory) const override {
    CG_RETURN_IF_ERROR(CheckPaddedApplication(kPadding, p, application, ChildProblems(children)));
    return PadInputChannelsDeviceNode::Make(p, std::move(children), memory);
  }
};

}  // namespace

const Rewrite& PadInputChannelsRewrite() {
  static const PadInputChannels rewrite;
  return rewrite;
}

}  // namespace convguard::rewrite
