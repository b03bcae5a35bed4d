// rewrite/rewrite_node.h — what every rewrite's node and Build have in common.
//
// RewriteNode implements the ExecNode protocol once: it owns the children and one
// ConvTensors<float> per slot (allocated, zero-filled, in the constructor, i.e. in
// Build), checks the caller's tensors, hands each child the weights the rewrite
// prepared in its slot buffers, and refuses Execute before LoadWeights where weights
// are an operand. A rewrite supplies only how weights are distributed to the slots and
// what one call does.
//
// Slot buffers double as the children's io: a child reads the operands the node copied
// into its slot and writes its result tensor there. Children never write their operand
// tensors, so values the node writes once (zero padding channels, slot weights) stay in
// place across calls.
//
// Internal to src/rewrite; the planner sees only rewrite.h.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "convguard/problem.h"
#include "convguard/status.h"
#include "convguard/tensor.h"
#include "rewrite/rewrite.h"

namespace convguard::rewrite {

class RewriteNode : public ExecNode {
 public:
  const Problem& problem() const final { return problem_; }
  // Forward and backward-data: checks sizes, lets the rewrite fill every slot's weight
  // and bias buffers, then loads each child from its slot. Backward-weights: a no-op.
  Status LoadWeights(const std::vector<float>& weight, const std::vector<float>& bias) final;
  // Checks the tensors' sizes and the protocol, then runs the rewrite's call.
  Status Execute(ConvTensors<float>& io) final;

 protected:
  // REQUIRES: children non-null, one per slot (checked by MatchApplication).
  RewriteNode(const Problem& p, std::vector<std::unique_ptr<ExecNode>> children);

  // Writes the slots' weight and bias buffers from the problem's (forward and
  // backward-data only; sizes already checked).
  virtual void DistributeWeights(const std::vector<float>& weight,
                                 const std::vector<float>& bias) = 0;
  // One call: io is sized for problem(); weights are loaded where they are an operand.
  virtual Status Run(ConvTensors<float>& io) = 0;

  size_t slot_count() const { return children_.size(); }
  ConvTensors<float>& slot_io(size_t slot) { return slot_io_[slot]; }
  const Problem& slot_problem(size_t slot) const { return children_[slot]->problem(); }
  // Executes the child of `slot` on its slot buffers.
  Status RunSlot(size_t slot);

 private:
  Problem problem_;
  std::vector<std::unique_ptr<ExecNode>> children_;
  std::vector<ConvTensors<float>> slot_io_;
  bool weights_loaded_ = false;
};

// What every rewrite's device node has in common (RewriteNode's device twin): it owns
// the children, checks the caller's addresses and the protocol, and refuses Execute
// before LoadWeights where weights are an operand. A rewrite supplies how weights reach
// its slots (loading its children) and what one call does; its own buffers are members
// it allocates when it is built.
class DeviceRewriteNode : public DeviceNode {
 public:
  const Problem& problem() const final { return problem_; }
  // Forward and backward-data: DistributeWeights. Backward-weights: a no-op.
  Status LoadWeights(const DeviceTensors& io) final;
  // Checks for null addresses and the protocol, then runs the rewrite's call.
  Status Execute(const DeviceTensors& io) final;

 protected:
  // REQUIRES: children non-null, one per slot (checked by CheckPaddedApplication etc.).
  DeviceRewriteNode(const Problem& p, std::vector<std::unique_ptr<DeviceNode>> children,
                    DeviceMemory& memory);
  // Writes the slots' weights from io.weight / io.bias and loads each child.
  virtual Status DistributeWeights(const DeviceTensors& io) = 0;
  virtual Status Run(const DeviceTensors& io) = 0;

  DeviceMemory& memory() { return memory_; }
  DeviceNode& child(size_t slot) { return *children_[slot]; }
  const Problem& slot_problem(size_t slot) const { return children_[slot]->problem(); }
  int64_t element_bytes() const { return DataTypeBytes(problem_.dtype); }

 private:
  Problem problem_;
  std::vector<std::unique_ptr<DeviceNode>> children_;
  DeviceMemory& memory_;
  bool weights_loaded_ = false;
};

// Checks that `given` is the application `expected` (recomputed by the rewrite from
// p and the parameters) and that `children` match its slots one for one.
// kInvalidArgument naming the first difference otherwise.
Status MatchApplication(const Application& expected, const Application& given,
                        const std::vector<const Problem*>& children);

// The problems `children` compute (null for a null child), for the checks here.
template <typename Node>
std::vector<const Problem*> ChildProblems(const std::vector<std::unique_ptr<Node>>& children) {
  std::vector<const Problem*> problems;
  problems.reserve(children.size());
  for (const auto& child : children) problems.push_back(child ? &child->problem() : nullptr);
  return problems;
}
inline Status MatchApplication(const Application& expected, const Application& given,
                               const std::vector<std::unique_ptr<ExecNode>>& children) {
  return MatchApplication(expected, given, ChildProblems(children));
}

// The padded channel counts tried for `count` channels: count + 1 and count + 1
// rounded up to multiples of 4, 8, 16, 32 and 64, distinct, ascending, at most
// max(2 * count, count + 16).
std::vector<int64_t> PaddedChannelCounts(int64_t count);

// The decimal numbers in `text`, in order (e.g. "n=8->4+4" gives 8, 4, 4); a number
// too large for int64 reads as -1. Build parses parameters with this, then rebuilds
// the parameters text from what it read and requires an exact match, so only the
// canonical spelling is accepted.
std::vector<int64_t> NumbersIn(std::string_view text);

// kInvalidArgument: "<rewrite>: parameters '<parameters>' <why>".
Status BadParameters(std::string_view rewrite, std::string_view parameters, std::string_view why);

// What every Build checks: `expected` is the application rebuilt from `given`'s
// parameters (nullopt when they could not be read); it must exist, carry the same
// parameters text and match `given` and `children` (MatchApplication). Otherwise
// kInvalidArgument saying the parameters "do not apply to P (want ...)".
Status CheckApplication(std::string_view rewrite, const Problem& p,
                        const std::optional<Application>& expected, const Application& given,
                        const std::vector<const Problem*>& children, std::string_view want);
inline Status CheckApplication(std::string_view rewrite, const Problem& p,
                               const std::optional<Application>& expected, const Application& given,
                               const std::vector<std::unique_ptr<ExecNode>>& children,
                               std::string_view want) {
  return CheckApplication(rewrite, p, expected, given, ChildProblems(children), want);
}

// What the two channel-padding rewrites share: one channel count of a groups-1 problem
// (c or k) grows to a larger one, and the parameters read "c=16->24".
struct ChannelPadding {
  std::string_view rewrite;  // the rewrite's name
  std::string_view field;    // "c" or "k": the name in the parameters
  int64_t Problem::*count;   // &Problem::c or &Problem::k
};
// The application padding p's count to `padded`; none when p has groups, `padded` is
// not larger, or the child is invalid.
std::optional<Application> PaddedApplication(const ChannelPadding& padding, const Problem& p,
                                             int64_t padded);
// The applications for every PaddedChannelCounts of p's count.
std::vector<Application> PaddedCandidates(const ChannelPadding& padding, const Problem& p);
// What Build checks for a padding rewrite (CheckApplication with the application its
// parameters name).
Status CheckPaddedApplication(const ChannelPadding& padding, const Problem& p,
                              const Application& given,
                              const std::vector<const Problem*>& children);
// Their one forward piece: all of P through the padded child.
StatusOr<std::vector<ForwardPiece>> PaddedForwardPieces(const ChannelPadding& padding,
                                                        const Problem& p, const Application& given);

// The forward piece that reads and writes all of p through slot `slot` (the padding
// rewrites, whose child differs from p only in channels).
ForwardPiece WholeForwardPiece(const Problem& p, int slot);
// What every ForwardPieces checks: p is forward, and `expected` (rebuilt from `given`'s
// parameters) is `given`; errors as CheckApplication, with no children to match.
Status CheckForwardApplication(std::string_view rewrite, const Problem& p,
                               const std::optional<Application>& expected, const Application& given,
                               std::string_view want);

// Bytes of n float values (the node's buffers are float32 whatever the dtype).
inline int64_t FloatBytes(int64_t n) { return n * static_cast<int64_t>(sizeof(float)); }

// The copy costs of a rewrite that moves every tensor of p once: per call the tensors
// the direction reads besides the weights, and its result (dw too for backward-weights);
// per weight load the weights and bias (forward, backward-data).
void SetWholeTensorCopyCosts(const Problem& p, Application& app);

}  // namespace convguard::rewrite
