// group-split: computes a grouped P (groups g > 1) as m slots of g/m groups each.
//
// Preconditions: g > 1; m > 1 divides g; the slot problem (P with groups g/m, c/m input
// and k/m output channels) is valid.
//
// Slots: m slots of the same problem, one per block of g/m consecutive groups, each
// with its own slice of the weights (so a slot per block rather than one slot run m
// times). Block j owns input channels [j c/m, (j+1) c/m), output channels and filters
// [j k/m, (j+1) k/m) and those bias values: P's group numbering maps group i of block j
// to group j g/m + i of P, with the same channels.
//
// Contract, per direction:
//   forward:          y[:, block j] = conv(x[:, block j], w[block j]) (+ bias[block j]).
//   backward-data:    dx[:, block j] = conv_transpose(dy[:, block j], w[block j]).
//   backward-weights: dw[block j] = correlate(x[:, block j], dy[:, block j]).
// Groups never mix channels of different groups, so each block's result depends only on
// its own slices. Exactness: the node only copies.
//
// Copies: filters are the outermost weight axis, so a block's weights, dw and bias are
// contiguous. Activation channel slices are one run per image in NCHW and one run per
// pixel in NHWC.
//
// Candidates: m in {2, 4, 8, 16, 32, 64} dividing g, and m = g when g <= 64 (one group
// per slot, which the padding rewrites then apply to), ascending. Parameters
// "groups=32->4x8" (4 slots of 8 groups).
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

constexpr std::string_view kName = "group-split";

std::string ParametersText(int64_t groups, int64_t slots) {
  return "groups=" + std::to_string(groups) + "->" + std::to_string(slots) + "x" +
         std::to_string(groups / slots);
}

std::optional<Application> MakeApplication(const Problem& p, int64_t slots) {
  if (p.groups <= 1 || slots <= 1 || p.groups % slots != 0) return std::nullopt;
  Problem child = p;
  child.groups = p.groups / slots;
  child.c = p.c / slots;
  child.k = p.k / slots;
  if (!Validate(child).ok()) return std::nullopt;
  Application app;
  app.rewrite = std::string(kName);
  app.parameters = ParametersText(p.groups, slots);
  app.children.assign(static_cast<size_t>(slots), child);
  app.runs.assign(static_cast<size_t>(slots), 1);
  SetWholeTensorCopyCosts(p, app);
  return app;
}

class GroupSplitNode final : public RewriteNode {
 public:
  GroupSplitNode(const Problem& p, std::vector<std::unique_ptr<ExecNode>> children)
      : RewriteNode(p, std::move(children)) {}

 private:
  void DistributeWeights(const std::vector<float>& weight,
                         const std::vector<float>& bias) override {
    for (size_t slot = 0; slot < slot_count(); ++slot) {
      ConvTensors<float>& child = slot_io(slot);
      const auto weights_per_slot = static_cast<std::ptrdiff_t>(child.weight.size());
      const auto bias_per_slot = static_cast<std::ptrdiff_t>(child.bias.size());
      const auto j = static_cast<std::ptrdiff_t>(slot);
      std::copy_n(weight.begin() + j * weights_per_slot, weights_per_slot, child.weight.begin());
      std::copy_n(bias.begin() + j * bias_per_slot, bias_per_slot, child.bias.begin());
    }
  }

  Status Run(ConvTensors<float>& io) override {
    const Problem& p = problem();
    const TensorShape4 x = InputShape(p);
    const TensorShape4 y = OutputShape(p);
    for (size_t slot = 0; slot < slot_count(); ++slot) {
      const Problem& cp = slot_problem(slot);
      ConvTensors<float>& child = slot_io(slot);
      const TensorShape4 cx = InputShape(cp);
      const TensorShape4 cy = OutputShape(cp);
      const auto j = static_cast<int64_t>(slot);
      const Dims4 x_at{0, j * cp.c, 0, 0};
      const Dims4 y_at{0, j * cp.k, 0, 0};
      switch (p.direction) {
        case Direction::kForward:
          CopyBox(io.input.data(), x, x_at, child.input.data(), cx, {}, cx.dims);
          CG_RETURN_IF_ERROR(RunSlot(slot));
          CopyBox(child.output.data(), cy, {}, io.output.data(), y, y_at, cy.dims);
          break;
        case Direction::kBackwardData:
          CopyBox(io.output.data(), y, y_at, child.output.data(), cy, {}, cy.dims);
          CG_RETURN_IF_ERROR(RunSlot(slot));
          CopyBox(child.input.data(), cx, {}, io.input.data(), x, x_at, cx.dims);
          break;
        case Direction::kBackwardWeights:
          CopyBox(io.input.data(), x, x_at, child.input.data(), cx, {}, cx.dims);
          CopyBox(io.output.data(), y, y_at, child.output.data(), cy, {}, cy.dims);
          CG_RETURN_IF_ERROR(RunSlot(slot));
          std::copy(child.weight.begin(), child.weight.end(),
                    io.weight.begin() + j * static_cast<int64_t>(child.weight.size()));
          break;
      }
    }
    return Status::Ok();
  }
};

class GroupSplit final : public Rewrite {
 public:
  std::string_view name() const override { return kName; }

  std::vector<Application> Candidates(const Problem& p) const override {
    std::vector<Application> out;
    if (p.groups <= 1) return out;
    std::vector<int64_t> slot_counts;
    for (int64_t m : {2, 4, 8, 16, 32, 64}) {
      if (p.groups % m == 0) slot_counts.push_back(m);
    }
    if (p.groups <= 64) slot_counts.push_back(p.groups);
    std::sort(slot_counts.begin(), slot_counts.end());
    slot_counts.erase(std::unique(slot_counts.begin(), slot_counts.end()), slot_counts.end());
    for (int64_t m : slot_counts) {
      if (auto app = MakeApplication(p, m)) out.push_back(std::move(*app));
    }
    return out;
  }

  StatusOr<std::unique_ptr<ExecNode>> Build(
      const Problem& p, const Application& application,
      std::vector<std::unique_ptr<ExecNode>> children) const override {
    CG_RETURN_IF_ERROR(Validate(p));
    CG_RETURN_IF_ERROR(
        CheckApplication(kName, p, FromParameters(p, application), application, children, Want(p)));
    return std::unique_ptr<ExecNode>(new GroupSplitNode(p, std::move(children)));
  }

  StatusOr<std::vector<ForwardPiece>> ForwardPieces(const Problem& p,
                                                    const Application& application) const override {
    CG_RETURN_IF_ERROR(Validate(p));
    CG_RETURN_IF_ERROR(
        CheckForwardApplication(kName, p, FromParameters(p, application), application, Want(p)));
    // Block j owns input channels [j c/m, (j+1) c/m) and filters [j k/m, (j+1) k/m).
    std::vector<ForwardPiece> pieces;
    for (size_t slot = 0; slot < application.children.size(); ++slot) {
      const Problem& child = application.children[slot];
      const auto j = static_cast<int64_t>(slot);
      ForwardPiece piece = WholeForwardPiece(p, static_cast<int>(slot));
      piece.c = {j * child.c, (j + 1) * child.c};
      piece.k = {j * child.k, (j + 1) * child.k};
      pieces.push_back(piece);
    }
    return pieces;
  }

 private:
  static std::optional<Application> FromParameters(const Problem& p, const Application& given) {
    const std::vector<int64_t> numbers = NumbersIn(given.parameters);
    if (numbers.size() != 3) return std::nullopt;
    return MakeApplication(p, numbers[1]);
  }

  static std::string Want(const Problem& p) {
    return "groups=" + std::to_string(p.groups) +
           "->MxG' with M > 1 slots of G' groups, M * G' = groups";
  }
};

}  // namespace

const Rewrite& GroupSplitRewrite() {
  static const GroupSplit rewrite;
  return rewrite;
}

}  // namespace convguard::rewrite
