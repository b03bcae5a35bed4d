// rewrite/rewrite.h — exact rewrites of one convolution into others.
//
// A rewrite computes exactly the function of a problem P (every direction it applies
// to) through one or more "child" problems that a stack may handle where P misbehaves:
// padded channels, spatial tiles with halos, batch chunks, group slices. Each rewrite
// lives in its own file with its exactness contract and preconditions at the top.
//
// Two halves:
//   - Candidates(P): the bounded, deterministic list of ways the rewrite applies to P
//     (one Application per parameter choice, e.g. c -> 17, 24, 32). The planner looks
//     these up in the store; nothing is allocated.
//   - Build(P, application, children): an executable node that owns the children's
//     tensors, allocated once. The planner hands it one executable child per slot.
//
// Exactness: on data that FillExact produced for P, a node computes the reference
// result bit for bit, provided its children do. Every node only copies values, writes
// zeros, or (for reductions over tiles or batch chunks in backward-weights) adds
// integer-valued partial sums whose magnitudes FillExact bounds, so no rounding occurs.
//
// Ownership: a node owns its children and their buffers. Thread-safety: a node is used
// from one thread at a time (Execute writes its children's buffers).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "convguard/device.h"
#include "convguard/problem.h"
#include "convguard/status.h"
#include "convguard/tensor.h"

namespace convguard::rewrite {

// A node of an executable plan: computes problem()'s direction on tensors laid out as
// problem() says.
//
// The call protocol (forward and backward-data, whose weights are an operand):
//   node.LoadWeights(w, bias);   // once per set of weights: pads/splits them into the
//                                // children's buffers (the rewrite's one-time cost)
//   node.Execute(io);            // per call; io.weight and io.bias MUST hold the same
//                                // values as the last LoadWeights (a leaf hands io to
//                                // the backend as is; rewrite nodes never read them)
// Backward-weights computes the weights: LoadWeights is a no-op and Execute writes
// io.weight from io.input and io.output.
class ExecNode {
 public:
  virtual ~ExecNode() = default;
  virtual const Problem& problem() const = 0;
  // REQUIRES: weight.size() == problem().weight_elements(); bias.size() ==
  // problem().bias_elements().
  [[nodiscard]] virtual Status LoadWeights(const std::vector<float>& weight,
                                           const std::vector<float>& bias) = 0;
  // REQUIRES: io sized by ConvTensors<float>::Allocate(problem()); LoadWeights called
  // before the first Execute of a forward or backward-data node.
  [[nodiscard]] virtual Status Execute(ConvTensors<float>& io) = 0;
};

// The same node on tensors in a device backend's memory (backend.h's DeviceTensors, in
// the problem's dtype): device-resident guarded execution. The call protocol is
// ExecNode's: LoadWeights reads io.weight and io.bias once per set of weights (forward,
// backward-data), Execute runs one call with io.weight and io.bias holding the same
// values. Every copy and every call is queued on the node's DeviceMemory; the caller
// waits with DeviceMemory::Finish. A node's own buffers are allocated once, at Build,
// and freed with it.
class DeviceNode {
 public:
  virtual ~DeviceNode() = default;
  virtual const Problem& problem() const = 0;
  [[nodiscard]] virtual Status LoadWeights(const DeviceTensors& io) = 0;
  [[nodiscard]] virtual Status Execute(const DeviceTensors& io) = 0;
};

// A block of device memory, freed with the object. Move-only.
class DeviceBlock {
 public:
  DeviceBlock() = default;
  DeviceBlock(DeviceMemory* memory, void* block) : memory_(memory), block_(block) {}
  DeviceBlock(DeviceBlock&& other) noexcept { *this = std::move(other); }
  DeviceBlock& operator=(DeviceBlock&& other) noexcept;
  ~DeviceBlock();
  // `bytes` of `memory`, zeroed (queued) when asked.
  static StatusOr<DeviceBlock> Allocate(DeviceMemory& memory, int64_t bytes, std::string_view what,
                                        bool zeroed);
  void* get() const { return block_; }

 private:
  DeviceMemory* memory_ = nullptr;
  void* block_ = nullptr;
};

// One way a rewrite applies to a problem.
struct Application {
  std::string rewrite;     // the rewrite's name, e.g. "pad-input-channels"
  std::string parameters;  // stable, human-readable, e.g. "c=16->24", "tile=30x30"
  // One child problem per slot. Slots may repeat a problem (one slot per group of a
  // group split, since each group has its own weights); a slot that runs several times
  // per call with different data but the same weights (tiles of one shape, batch
  // chunks) appears once with runs > 1.
  std::vector<Problem> children;
  std::vector<int64_t> runs;  // runs per call of each slot (same size as children)
  // Bytes the node copies or zeroes per call (activations in and out) and once per set
  // of weights (weight transforms); the cost model charges them.
  int64_t bytes_per_call = 0;
  int64_t bytes_per_weight_load = 0;
};

// A half-open range [begin, end) along one axis of a tensor.
struct Span {
  int64_t begin = 0;
  int64_t end = 0;
  int64_t size() const { return end - begin; }
  friend bool operator==(const Span&, const Span&) = default;
};

// One run of a child slot in the forward direction, as boxes of P's tensors: the plan in
// a form that writers of other graphs (an ONNX model) follow. The executable nodes
// compute the same thing; tests/rewrite/forward_pieces_test.cc checks that computing
// the pieces with the reference reproduces P.
//   input:   the child reads P's input on n x c x h x w (in logical NCHW order whatever
//            the layout), then its own pads; when the child has more input channels
//            than c.size(), the extra ones are zeros.
//   weights: P's filters k (all of a filter's c/groups columns), zero-extended to the
//            child's filter shape; bias P's bias on k, zero-extended likewise.
//   output:  the child's first k.size() output channels are P's output channels k on
//            out_n x out_h x out_w; further channels of the child are discarded.
// slot -1: no child runs (a tile whose window lies wholly in padding): the output box
// holds the bias (or zeros).
struct ForwardPiece {
  int slot = 0;
  Span n, c, h, w;
  Span k;
  Span out_n, out_h, out_w;
};

class Rewrite {
 public:
  virtual ~Rewrite() = default;
  // Stable name, e.g. "pad-input-channels", "pad-output-channels", "spatial-tiling",
  // "batch-split", "group-split".
  virtual std::string_view name() const = 0;
  // The applications for p, in a fixed order, none whose children are invalid and none
  // that is the identity. Empty when the rewrite does not apply.
  // REQUIRES: Validate(p).ok().
  virtual std::vector<Application> Candidates(const Problem& p) const = 0;
  // Builds the executable node for `application` (one of Candidates(p), or an
  // application with the same rewrite and parameters), owning `children` (one per slot,
  // children[i]->problem() == application.children[i]). Errors: kInvalidArgument when
  // the application does not belong to p or the children do not match.
  virtual StatusOr<std::unique_ptr<ExecNode>> Build(
      const Problem& p, const Application& application,
      std::vector<std::unique_ptr<ExecNode>> children) const = 0;
  // The forward pieces of `application`, in the order a writer should emit them (row-
  // major tiles, ascending chunks and blocks). Their output boxes partition P's output.
  // Errors: kInvalidArgument when p is not a forward problem or the application does not
  // belong to p (as Build).
  virtual StatusOr<std::vector<ForwardPiece>> ForwardPieces(
      const Problem& p, const Application& application) const = 0;
  // Build's node on device tensors, its buffers allocated in `memory` and its copies
  // queued there. kUnsupported for a rewrite that runs on host buffers only (the
  // default); guarded execution then stages device tensors through host memory.
  // Whether BuildOnDevice can succeed (asked before any child is prepared).
  virtual bool has_device_node() const { return false; }
  virtual StatusOr<std::unique_ptr<DeviceNode>> BuildOnDevice(
      const Problem& p, const Application& application,
      std::vector<std::unique_ptr<DeviceNode>> children, DeviceMemory& memory) const;
};

// The rewrites, one per file (each file's head states its exactness contract).
const Rewrite& PadInputChannelsRewrite();   // "pad-input-channels"
const Rewrite& PadOutputChannelsRewrite();  // "pad-output-channels"
const Rewrite& SpatialTilingRewrite();      // "spatial-tiling"
const Rewrite& BatchSplitRewrite();         // "batch-split"
const Rewrite& GroupSplitRewrite();         // "group-split"

// Every tensor rewrite, in the planner's order of preference for equal cost.
const std::vector<const Rewrite*>& AllRewrites();
// nullptr when no rewrite has this name.
const Rewrite* FindRewrite(std::string_view name);

}  // namespace convguard::rewrite
