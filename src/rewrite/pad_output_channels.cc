// pad-output-channels: computes P through one child with more output channels, k -> k'.
//
// Preconditions: groups == 1 (a grouped problem reaches it by composing with
// group-split), k' > k, and the child problem (P with k = k') is valid.
//
// Contract, per direction (w is (k, c, r, s), y / dy is (n, k, oh, ow); the child's w'
// has k' filters and its y' / dy' k' channels, the first k of which are P's):
//   forward:          w' = [w; 0] (k' - k zero filters), bias' = [bias, 0]; x' = x;
//                     y = the first k channels of y'. The extra channels are discarded.
//   backward-data:    w' = [w; 0]; dy' = [dy, 0] on the channel axis; dx = dx'. Every
//                     extra term multiplies a zero filter by a zero gradient.
//   backward-weights: x' = x; dy' = [dy, 0]; dw = the first k filters of dw'. The extra
//                     filters correlate zero gradients and are discarded.
// Exactness: every kept value of the child's result is a sum of the same nonzero
// products as P's, plus products with a zero factor, which are exactly zero.
//
// Per call it copies the activations in and the result out; w' and bias' are written
// once per LoadWeights. The zero filters and zero gradient channels are zeroed when the
// slot is allocated and never written again. The device node (device-resident guarded
// execution) does the same with device copies, in the tensors' own dtype.
#include <algorithm>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "rewrite/rewrite.h"
#include "rewrite/rewrite_node.h"
#include "rewrite/tensor_copy.h"

namespace convguard::rewrite {
namespace {

constexpr ChannelPadding kPadding{"pad-output-channels", "k", &Problem::k};

class PadOutputChannelsNode final : public RewriteNode {
 public:
  PadOutputChannelsNode(const Problem& p, std::vector<std::unique_ptr<ExecNode>> children)
      : RewriteNode(p, std::move(children)) {}

 private:
  void DistributeWeights(const std::vector<float>& weight,
                         const std::vector<float>& bias) override {
    ConvTensors<float>& child = slot_io(0);
    // Filters are the outermost weight axis in both layouts: the first k filters are a
    // prefix of w', and so are the first k bias values.
    std::copy(weight.begin(), weight.end(), child.weight.begin());
    std::copy(bias.begin(), bias.end(), child.bias.begin());
  }

  Status Run(ConvTensors<float>& io) override {
    const Problem& p = problem();
    const Problem& cp = slot_problem(0);
    ConvTensors<float>& child = slot_io(0);
    const TensorShape4 y = OutputShape(p);
    switch (p.direction) {
      case Direction::kForward:
        child.input = io.input;
        CG_RETURN_IF_ERROR(RunSlot(0));
        CopyBox(child.output.data(), OutputShape(cp), {}, io.output.data(), y, {}, y.dims);
        return Status::Ok();
      case Direction::kBackwardData:
        CopyBox(io.output.data(), y, {}, child.output.data(), OutputShape(cp), {}, y.dims);
        CG_RETURN_IF_ERROR(RunSlot(0));
        io.input = child.input;
        return Status::Ok();
      case Direction::kBackwardWeights:
        child.input = io.input;
        CopyBox(io.output.data(), y, {}, child.output.data(), OutputShape(cp), {}, y.dims);
        CG_RETURN_IF_ERROR(RunSlot(0));
        std::copy(child.weight.begin(), child.weight.begin() + p.weight_elements(),
                  io.weight.begin());
        return Status::Ok();
    }
    return Status::Internal("unknown direction");
  }
};

// The same on device tensors: `weights_` is w' (forward, backward-data; zeroed once, so
// its extra filters stay zero) or dw' (backward-weights); `bias_` is bias' (forward with
// bias; zeroed once); `activation_` is y' (forward) or dy' (backward; zeroed once).
class PadOutputChannelsDeviceNode final : public DeviceRewriteNode {
 public:
  static StatusOr<std::unique_ptr<DeviceNode>> Make(
      const Problem& p, std::vector<std::unique_ptr<DeviceNode>> children, DeviceMemory& memory) {
    std::unique_ptr<PadOutputChannelsDeviceNode> node(
        new PadOutputChannelsDeviceNode(p, std::move(children), memory));
    const Problem& cp = node->slot_problem(0);
    const bool forward = p.direction == Direction::kForward;
    const bool reads_w = p.direction != Direction::kBackwardWeights;
    CG_ASSIGN_OR_RETURN(node->weights_,
                        DeviceBlock::Allocate(memory, cp.weight_bytes(), "padded w", reads_w));
    if (forward && p.bias) {
      CG_ASSIGN_OR_RETURN(node->bias_,
                          DeviceBlock::Allocate(memory, cp.bias_bytes(), "padded bias", true));
    }
    CG_ASSIGN_OR_RETURN(node->activation_,
                        DeviceBlock::Allocate(memory, cp.output_bytes(),
                                              forward ? "padded y" : "padded dy", !forward));
    return std::unique_ptr<DeviceNode>(std::move(node));
  }

 private:
  PadOutputChannelsDeviceNode(const Problem& p, std::vector<std::unique_ptr<DeviceNode>> children,
                              DeviceMemory& memory)
      : DeviceRewriteNode(p, std::move(children), memory) {}

  Status DistributeWeights(const DeviceTensors& io) override {
    const Problem& p = problem();
    // Filters are the outermost weight axis in both layouts: w is a prefix of w', and
    // the bias a prefix of bias'.
    const auto weight_bytes = static_cast<size_t>(p.weight_bytes());
    CG_RETURN_IF_ERROR(
        memory().CopyRows(weights_.get(), weight_bytes, io.weight, weight_bytes, weight_bytes, 1));
    if (bias_.get() != nullptr) {
      const auto bias_bytes = static_cast<size_t>(p.bias_bytes());
      CG_RETURN_IF_ERROR(
          memory().CopyRows(bias_.get(), bias_bytes, io.bias, bias_bytes, bias_bytes, 1));
    }
    return child(0).LoadWeights(DeviceTensors{nullptr, weights_.get(), nullptr, bias_.get()});
  }

  Status Run(const DeviceTensors& io) override {
    const Problem& p = problem();
    const Problem& cp = slot_problem(0);
    const TensorShape4 y = OutputShape(p);
    const int64_t e = element_bytes();
    switch (p.direction) {
      case Direction::kForward:
        CG_RETURN_IF_ERROR(child(0).Execute(
            DeviceTensors{io.input, weights_.get(), activation_.get(), bias_.get()}));
        return CopyBoxOnDevice(memory(), e, activation_.get(), OutputShape(cp), {}, io.output, y,
                               {}, y.dims);
      case Direction::kBackwardData:
        CG_RETURN_IF_ERROR(CopyBoxOnDevice(memory(), e, io.output, y, {}, activation_.get(),
                                           OutputShape(cp), {}, y.dims));
        return child(0).Execute(
            DeviceTensors{io.input, weights_.get(), activation_.get(), nullptr});
      case Direction::kBackwardWeights: {
        CG_RETURN_IF_ERROR(CopyBoxOnDevice(memory(), e, io.output, y, {}, activation_.get(),
                                           OutputShape(cp), {}, y.dims));
        CG_RETURN_IF_ERROR(
            child(0).Execute(DeviceTensors{io.input, weights_.get(), activation_.get(), nullptr}));
        const auto weight_bytes = static_cast<size_t>(p.weight_bytes());
        return memory().CopyRows(io.weight, weight_bytes, weights_.get(), weight_bytes,
                                 weight_bytes, 1);
      }
    }
    return Status::Internal("unknown direction");
  }

  DeviceBlock weights_;
  DeviceBlock bias_;
  DeviceBlock activation_;
};

class PadOutputChannels final : public Rewrite {
 public:
  std::string_view name() const override { return kPadding.rewrite; }

  std::vector<Application> Candidates(const Problem& p) const override {
    return PaddedCandidates(kPadding, p);
  }

  StatusOr<std::unique_ptr<ExecNode>> Build(
      const Problem& p, const Application& application,
      std::vector<std::unique_ptr<ExecNode>> children) const override {
    CG_RETURN_IF_ERROR(CheckPaddedApplication(kPadding, p, application, ChildProblems(children)));
    return std::unique_ptr<ExecNode>(new PadOutputChannelsNode(p, std::move(children)));
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
    return PadOutputChannelsDeviceNode::Make(p, std::move(children), memory);
  }
};

}  // namespace

const Rewrite& PadOutputChannelsRewrite() {
  static const PadOutputChannels rewrite;
  return rewrite;
}

}  // namespace convguard::rewrite
