// The registry of rewrites and the node plumbing they share (rewrite_node.h).
#include "rewrite/rewrite.h"

#include <algorithm>
#include <charconv>
#include <string>
#include <utility>

#include "convguard/text_forms.h"
#include "rewrite/rewrite_node.h"

namespace convguard::rewrite {

const std::vector<const Rewrite*>& AllRewrites() {
  // Channel padding first: it changes the least (one child, same spatial shape).
  static const std::vector<const Rewrite*> all = {
      &PadInputChannelsRewrite(), &PadOutputChannelsRewrite(), &SpatialTilingRewrite(),
      &BatchSplitRewrite(),       &GroupSplitRewrite(),
  };
  return all;
}

const Rewrite* FindRewrite(std::string_view name) {
  for (const Rewrite* r : AllRewrites()) {
    if (r->name() == name) return r;
  }
  return nullptr;
}

// ---- RewriteNode ----

RewriteNode::RewriteNode(const Problem& p, std::vector<std::unique_ptr<ExecNode>> children)
    : problem_(p), children_(std::move(children)) {
  slot_io_.reserve(children_.size());
  for (const auto& child : children_) {
    slot_io_.push_back(ConvTensors<float>::Allocate(child->problem()));
  }
}

Status RewriteNode::LoadWeights(const std::vector<float>& weight, const std::vector<float>& bias) {
  // Backward-weights computes the weights; there is nothing to load.
  if (problem_.direction == Direction::kBackwardWeights) return Status::Ok();
  if (static_cast<int64_t>(weight.size()) != problem_.weight_elements() ||
      static_cast<int64_t>(bias.size()) != problem_.bias_elements()) {
    return Status::InvalidArgument("LoadWeights: got " + std::to_string(weight.size()) +
                                   " weights and " + std::to_string(bias.size()) +
                                   " bias values; " + ToCanonical(problem_) + " needs " +
                                   std::to_string(problem_.weight_elements()) + " and " +
                                   std::to_string(problem_.bias_elements()));
  }
  weights_loaded_ = false;
  DistributeWeights(weight, bias);
  for (size_t slot = 0; slot < children_.size(); ++slot) {
    CG_RETURN_IF_ERROR(children_[slot]->LoadWeights(slot_io_[slot].weight, slot_io_[slot].bias));
  }
  weights_loaded_ = true;
  return Status::Ok();
}

Status RewriteNode::Execute(ConvTensors<float>& io) {
  const Problem& p = problem_;
  if (static_cast<int64_t>(io.input.size()) != p.input_elements() ||
      static_cast<int64_t>(io.weight.size()) != p.weight_elements() ||
      static_cast<int64_t>(io.output.size()) != p.output_elements() ||
      static_cast<int64_t>(io.bias.size()) != p.bias_elements()) {
    return Status::InvalidArgument("Execute: tensors are not sized for " + ToCanonical(p));
  }
  if (p.direction != Direction::kBackwardWeights && !weights_loaded_) {
    return Status::InvalidArgument("Execute before LoadWeights for " + ToCanonical(p));
  }
  return Run(io);
}

Status RewriteNode::RunSlot(size_t slot) { return children_[slot]->Execute(slot_io_[slot]); }

// ---- device-resident nodes ----

StatusOr<std::unique_ptr<DeviceNode>> Rewrite::BuildOnDevice(
    const Problem& p, const Application& application,
    std::vector<std::unique_ptr<DeviceNode>> children, DeviceMemory& memory) const {
  (void)p;
  (void)application;
  (void)children;
  (void)memory;
  return Status::Unsupported("the " + std::string(name()) +
                             " rewrite runs on host buffers only (no device-resident node)");
}

DeviceBlock::~DeviceBlock() {
  if (memory_ != nullptr) memory_->Free(block_);
}

DeviceBlock& DeviceBlock::operator=(DeviceBlock&& other) noexcept {
  if (this != &other) {
    if (memory_ != nullptr) memory_->Free(block_);
    memory_ = std::exchange(other.memory_, nullptr);
    block_ = std::exchange(other.block_, nullptr);
  }
  return *this;
}

StatusOr<DeviceBlock> DeviceBlock::Allocate(DeviceMemory& memory, int64_t bytes,
                                            std::string_view what, bool zeroed) {
  CG_ASSIGN_OR_RETURN(void* block, memory.Allocate(static_cast<size_t>(bytes), what));
  DeviceBlock owned(&memory, block);
  if (zeroed) CG_RETURN_IF_ERROR(memory.Zero(block, static_cast<size_t>(bytes)));
  return owned;
}

DeviceRewriteNode::DeviceRewriteNode(const Problem& p,
                                     std::vector<std::unique_ptr<DeviceNode>> children,
                                     DeviceMemory& memory)
    : problem_(p), children_(std::move(children)), memory_(memory) {}

Status DeviceRewriteNode::LoadWeights(const DeviceTensors& io) {
  if (problem_.direction == Direction::kBackwardWeights) return Status::Ok();
  if (io.weight == nullptr || (problem_.bias && io.bias == nullptr)) {
    return Status::InvalidArgument("LoadWeights: " + ToCanonical(problem_) + " needs its weights" +
                                   std::string(problem_.bias ? " and bias" : "") +
                                   " (a null device address)");
  }
  weights_loaded_ = false;
  CG_RETURN_IF_ERROR(DistributeWeights(io));
  weights_loaded_ = true;
  return Status::Ok();
}

Status DeviceRewriteNode::Execute(const DeviceTensors& io) {
  const Problem& p = problem_;
  if (io.input == nullptr || io.weight == nullptr || io.output == nullptr ||
      (p.bias && p.direction == Direction::kForward && io.bias == nullptr)) {
    return Status::InvalidArgument("Execute: a null device address for a tensor of " +
                                   ToCanonical(p));
  }
  if (p.direction != Direction::kBackwardWeights && !weights_loaded_) {
    return Status::InvalidArgument("Execute before LoadWeights for " + ToCanonical(p));
  }
  return Run(io);
}

// ---- helpers for Build ----

namespace {

// The slots of `given` are those of `expected` (rewrite, problems, run counts).
Status MatchSlots(const Application& expected, const Application& given) {
  const std::string what = expected.rewrite + " " + expected.parameters;
  if (given.rewrite != expected.rewrite) {
    return Status::InvalidArgument("application of '" + given.rewrite + "' given to " +
                                   expected.rewrite);
  }
  // The application's own slot list must be this problem's (the planner may hand back
  // an application stored for another problem).
  if (given.children.size() != expected.children.size() ||
      given.runs.size() != expected.children.size()) {
    return Status::InvalidArgument(what + ": the application has " +
                                   std::to_string(given.children.size()) + " slots and " +
                                   std::to_string(given.runs.size()) + " run counts; needs " +
                                   std::to_string(expected.children.size()));
  }
  for (size_t slot = 0; slot < expected.children.size(); ++slot) {
    if (given.children[slot] != expected.children[slot]) {
      return Status::InvalidArgument(what + ": slot " + std::to_string(slot) +
                                     " of the application is " + ToCanonical(given.children[slot]) +
                                     ", this problem's is " + ToCanonical(expected.children[slot]));
    }
    if (given.runs[slot] != expected.runs[slot]) {
      return Status::InvalidArgument(what + ": slot " + std::to_string(slot) + " runs " +
                                     std::to_string(given.runs[slot]) +
                                     " times in the application, " +
                                     std::to_string(expected.runs[slot]) + " for this problem");
    }
  }
  return Status::Ok();
}

}  // namespace

Status MatchApplication(const Application& expected, const Application& given,
                        const std::vector<const Problem*>& children) {
  CG_RETURN_IF_ERROR(MatchSlots(expected, given));
  const std::string what = expected.rewrite + " " + expected.parameters;
  if (children.size() != expected.children.size()) {
    return Status::InvalidArgument(what + ": needs " + std::to_string(expected.children.size()) +
                                   " children, got " + std::to_string(children.size()));
  }
  for (size_t slot = 0; slot < children.size(); ++slot) {
    if (children[slot] == nullptr) {
      return Status::InvalidArgument(what + ": child " + std::to_string(slot) + " is null");
    }
    if (*children[slot] != expected.children[slot]) {
      return Status::InvalidArgument(what + ": child " + std::to_string(slot) + " computes " +
                                     ToCanonical(*children[slot]) + ", slot needs " +
                                     ToCanonical(expected.children[slot]));
    }
  }
  return Status::Ok();
}

std::vector<int64_t> PaddedChannelCounts(int64_t count) {
  const int64_t limit = std::max(2 * count, count + 16);
  std::vector<int64_t> out = {count + 1};
  for (int64_t multiple : {4, 8, 16, 32, 64}) {
    out.push_back((count + 1 + multiple - 1) / multiple * multiple);
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  std::erase_if(out, [&](int64_t padded) { return padded > limit; });
  return out;
}

std::vector<int64_t> NumbersIn(std::string_view text) {
  std::vector<int64_t> numbers;
  size_t i = 0;
  while (i < text.size()) {
    if (text[i] < '0' || text[i] > '9') {
      ++i;
      continue;
    }
    size_t end = i;
    while (end < text.size() && text[end] >= '0' && text[end] <= '9') ++end;
    int64_t value = -1;
    auto [ptr, ec] = std::from_chars(text.data() + i, text.data() + end, value);
    numbers.push_back(ec == std::errc() ? value : -1);
    i = end;
  }
  return numbers;
}

Status BadParameters(std::string_view rewrite, std::string_view parameters, std::string_view why) {
  return Status::InvalidArgument(std::string(rewrite) + ": parameters '" + std::string(parameters) +
                                 "' " + std::string(why));
}

Status CheckApplication(std::string_view rewrite, const Problem& p,
                        const std::optional<Application>& expected, const Application& given,
                        const std::vector<const Problem*>& children, std::string_view want) {
  if (!expected || expected->parameters != given.parameters) {
    return BadParameters(rewrite, given.parameters,
                         "do not apply to " + ToCanonical(p) + " (want " + std::string(want) + ")");
  }
  return MatchApplication(*expected, given, children);
}

namespace {

// The "want" text of a padding rewrite's parameters, e.g. "c=16->C' with C' > c, ...".
std::string PaddedWant(const ChannelPadding& padding, const Problem& p) {
  const std::string field(padding.field);
  std::string upper = field;
  for (char& ch : upper) ch = static_cast<char>(ch - 'a' + 'A');
  return field + "=" + std::to_string(p.*padding.count) + "->" + upper + "' with " + upper +
         "' > " + field + ", groups 1 and a valid child";
}

std::optional<Application> PaddedFromParameters(const ChannelPadding& padding, const Problem& p,
                                                const Application& given) {
  const std::vector<int64_t> numbers = NumbersIn(given.parameters);
  if (numbers.size() != 2) return std::nullopt;
  return PaddedApplication(padding, p, numbers[1]);
}

}  // namespace

Status CheckForwardApplication(std::string_view rewrite, const Problem& p,
                               const std::optional<Application>& expected, const Application& given,
                               std::string_view want) {
  if (p.direction != Direction::kForward) {
    return Status::InvalidArgument(std::string(rewrite) + ": forward pieces of " + ToCanonical(p) +
                                   ", which is not a forward problem");
  }
  if (!expected || expected->parameters != given.parameters) {
    return BadParameters(rewrite, given.parameters,
                         "do not apply to " + ToCanonical(p) + " (want " + std::string(want) + ")");
  }
  return MatchSlots(*expected, given);
}

ForwardPiece WholeForwardPiece(const Problem& p, int slot) {
  ForwardPiece piece;
  piece.slot = slot;
  piece.n = piece.out_n = {0, p.n};
  piece.c = {0, p.c};
  piece.h = {0, p.h};
  piece.w = {0, p.w};
  piece.k = {0, p.k};
  piece.out_h = {0, p.out_h()};
  piece.out_w = {0, p.out_w()};
  return piece;
}

void SetWholeTensorCopyCosts(const Problem& p, Application& app) {
  switch (p.direction) {
    case Direction::kForward:
      app.bytes_per_call = FloatBytes(p.input_elements() + p.output_elements());
      app.bytes_per_weight_load = FloatBytes(p.weight_elements() + p.bias_elements());
      break;
    case Direction::kBackwardData:
      app.bytes_per_call = FloatBytes(p.output_elements() + p.input_elements());
      app.bytes_per_weight_load = FloatBytes(p.weight_elements());
      break;
    case Direction::kBackwardWeights:
      app.bytes_per_call =
          FloatBytes(p.input_elements() + p.output_elements() + p.weight_elements());
      break;
  }
}

std::optional<Application> PaddedApplication(const ChannelPadding& padding, const Problem& p,
                                             int64_t padded) {
  const int64_t count = p.*padding.count;
  if (p.groups != 1 || padded <= count) return std::nullopt;
  Problem child = p;
  child.*padding.count = padded;
  if (!Validate(child).ok()) return std::nullopt;
  Application app;
  app.rewrite = std::string(padding.rewrite);
  app.parameters =
      std::string(padding.field) + "=" + std::to_string(count) + "->" + std::to_string(padded);
  app.children = {child};
  app.runs = {1};
  SetWholeTensorCopyCosts(p, app);
  return app;
}

std::vector<Application> PaddedCandidates(const ChannelPadding& padding, const Problem& p) {
  std::vector<Application> out;
  if (p.groups != 1) return out;
  for (int64_t padded : PaddedChannelCounts(p.*padding.count)) {
    if (auto app = PaddedApplication(padding, p, padded)) out.push_back(std::move(*app));
  }
  return out;
}

Status CheckPaddedApplication(const ChannelPadding& padding, const Problem& p,
                              const Application& given,
                              const std::vector<const Problem*>& children) {
  CG_RETURN_IF_ERROR(Validate(p));
  return CheckApplication(padding.rewrite, p, PaddedFromParameters(padding, p, given), given,
                          children, PaddedWant(padding, p));
}

StatusOr<std::vector<ForwardPiece>> PaddedForwardPieces(const ChannelPadding& padding,
                                                        const Problem& p,
                                                        const Application& given) {
  CG_RETURN_IF_ERROR(Validate(p));
  CG_RETURN_IF_ERROR(CheckForwardApplication(
      padding.rewrite, p, PaddedFromParameters(padding, p, given), given, PaddedWant(padding, p)));
  return std::vector<ForwardPiece>{WholeForwardPiece(p, 0)};
}

}  // namespace convguard::rewrite
