// batch-split: computes P (n > 1) as batch chunks of one size, plus a remainder chunk.
//
// Preconditions: n > 1; chunk size s with 1 <= s < n; the chunk problems (P with n = s,
// and P with n = n mod s when that is not 0) are valid.
//
// Slots: slot 0 is P with n = s and runs floor(n / s) times per call; slot 1, present
// when n mod s != 0, is P with n = n mod s and runs once. Both hold the full weights.
//
// Contract, per direction (the batch axis is the outermost axis of x, dx, y and dy in
// both layouts, so a chunk is one contiguous block):
//   forward:          y[chunk] = conv(x[chunk], w) (+ bias): images are independent.
//   backward-data:    dx[chunk] = conv_transpose(dy[chunk], w): likewise.
//   backward-weights: dw = sum over chunks of correlate(x[chunk], dy[chunk]), summed in
//                     float32 in chunk order.
// Exactness: forward and backward-data only copy. In backward-weights every chunk's dw
// and every running sum of them is a partial sum of P's dw elements' products; FillExact
// bounds the sum of |product| over all of an element's terms by 2^24, so all of these
// are integers float32 holds exactly and the additions do not round.
//
// Candidates: s in {ceil(n/2), ceil(n/4), 1}, distinct and < n, in that order.
// Parameters list the chunks, "n=8->4+4", "n=5->3+2"; beyond four chunks they count
// them, "n=10->3x3+1", "n=64->64x1".
#include <algorithm>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "rewrite/rewrite.h"
#include "rewrite/rewrite_node.h"
#include "rewrite/tensor_copy.h"

namespace convguard::rewrite {
namespace {

constexpr std::string_view kName = "batch-split";

std::string ParametersText(int64_t n, int64_t chunk) {
  const int64_t full = n / chunk;
  const int64_t rest = n % chunk;
  std::string text = "n=" + std::to_string(n) + "->";
  if (full + (rest > 0 ? 1 : 0) <= 4) {
    for (int64_t i = 0; i < full; ++i) {
      text += (i == 0 ? "" : "+") + std::to_string(chunk);
    }
  } else {
    text += std::to_string(full) + "x" + std::to_string(chunk);
  }
  if (rest > 0) text += "+" + std::to_string(rest);
  return text;
}

std::optional<Application> MakeApplication(const Problem& p, int64_t chunk) {
  if (chunk < 1 || chunk >= p.n) return std::nullopt;
  Application app;
  app.rewrite = std::string(kName);
  app.parameters = ParametersText(p.n, chunk);
  Problem full = p;
  full.n = chunk;
  app.children.push_back(full);
  app.runs.push_back(p.n / chunk);
  if (p.n % chunk != 0) {
    Problem rest = p;
    rest.n = p.n % chunk;
    app.children.push_back(rest);
    app.runs.push_back(1);
  }
  for (const Problem& child : app.children) {
    if (!Validate(child).ok()) return std::nullopt;
  }
  const int64_t chunks = p.n / chunk + (p.n % chunk != 0 ? 1 : 0);
  const auto slots = static_cast<int64_t>(app.children.size());
  switch (p.direction) {
    case Direction::kForward:
      app.bytes_per_call = FloatBytes(p.input_elements() + p.output_elements());
      app.bytes_per_weight_load = slots * FloatBytes(p.weight_elements() + p.bias_elements());
      break;
    case Direction::kBackwardData:
      app.bytes_per_call = FloatBytes(p.output_elements() + p.input_elements());
      app.bytes_per_weight_load = slots * FloatBytes(p.weight_elements());
      break;
    case Direction::kBackwardWeights:
      app.bytes_per_call =
          FloatBytes(p.input_elements() + p.output_elements() + chunks * p.weight_elements());
      break;
  }
  return app;
}

class BatchSplitNode final : public RewriteNode {
 public:
  BatchSplitNode(const Problem& p, std::vector<std::unique_ptr<ExecNode>> children,
                 std::vector<int64_t> runs)
      : RewriteNode(p, std::move(children)), runs_(std::move(runs)) {}

 private:
  void DistributeWeights(const std::vector<float>& weight,
                         const std::vector<float>& bias) override {
    for (size_t slot = 0; slot < slot_count(); ++slot) {
      std::copy(weight.begin(), weight.end(), slot_io(slot).weight.begin());
      std::copy(bias.begin(), bias.end(), slot_io(slot).bias.begin());
    }
  }

  Status Run(ConvTensors<float>& io) override {
    const Problem& p = problem();
    const int64_t image_in = p.c * p.h * p.w;
    const int64_t image_out = p.k * p.out_h() * p.out_w();
    int64_t first_image = 0;
    bool first_chunk = true;
    for (size_t slot = 0; slot < slot_count(); ++slot) {
      ConvTensors<float>& child = slot_io(slot);
      const int64_t images = slot_problem(slot).n;
      const size_t in_bytes = static_cast<size_t>(FloatBytes(images * image_in));
      const size_t out_bytes = static_cast<size_t>(FloatBytes(images * image_out));
      for (int64_t run = 0; run < runs_[slot]; ++run, first_image += images) {
        float* x = io.input.data() + first_image * image_in;
        float* y = io.output.data() + first_image * image_out;
        switch (p.direction) {
          case Direction::kForward:
            std::memcpy(child.input.data(), x, in_bytes);
            CG_RETURN_IF_ERROR(RunSlot(slot));
            std::memcpy(y, child.output.data(), out_bytes);
            break;
          case Direction::kBackwardData:
            std::memcpy(child.output.data(), y, out_bytes);
            CG_RETURN_IF_ERROR(RunSlot(slot));
            std::memcpy(x, child.input.data(), in_bytes);
            break;
          case Direction::kBackwardWeights:
            std::memcpy(child.input.data(), x, in_bytes);
            std::memcpy(child.output.data(), y, out_bytes);
            CG_RETURN_IF_ERROR(RunSlot(slot));
            if (first_chunk) {
              io.weight = child.weight;  // same size: no allocation
            } else {
              AddInto(io.weight, child.weight);
            }
            break;
        }
        first_chunk = false;
      }
    }
    return Status::Ok();
  }

  std::vector<int64_t> runs_;
};

class BatchSplit final : public Rewrite {
 public:
  std::string_view name() const override { return kName; }

  std::vector<Application> Candidates(const Problem& p) const override {
    std::vector<Application> out;
    std::vector<int64_t> tried;
    for (int64_t chunk : {(p.n + 1) / 2, (p.n + 3) / 4, int64_t{1}}) {
      if (std::find(tried.begin(), tried.end(), chunk) != tried.end()) continue;
      tried.push_back(chunk);
      if (auto app = MakeApplication(p, chunk)) out.push_back(std::move(*app));
    }
    return out;
  }

  StatusOr<std::unique_ptr<ExecNode>> Build(
      const Problem& p, const Application& application,
      std::vector<std::unique_ptr<ExecNode>> children) const override {
    CG_RETURN_IF_ERROR(Validate(p));
    const std::optional<Application> expected = FromParameters(p, application);
    CG_RETURN_IF_ERROR(CheckApplication(kName, p, expected, application, children, kWant));
    return std::unique_ptr<ExecNode>(new BatchSplitNode(p, std::move(children), expected->runs));
  }

  StatusOr<std::vector<ForwardPiece>> ForwardPieces(const Problem& p,
                                                    const Application& application) const override {
    CG_RETURN_IF_ERROR(Validate(p));
    const std::optional<Application> expected = FromParameters(p, application);
    CG_RETURN_IF_ERROR(CheckForwardApplication(kName, p, expected, application, kWant));
    // Slot 0 is the full chunk, run runs[0] times; slot 1 the remainder, if any.
    std::vector<ForwardPiece> pieces;
    int64_t begin = 0;
    for (size_t slot = 0; slot < expected->children.size(); ++slot) {
      for (int64_t run = 0; run < expected->runs[slot]; ++run) {
        ForwardPiece piece = WholeForwardPiece(p, static_cast<int>(slot));
        piece.n = piece.out_n = {begin, begin + expected->children[slot].n};
        begin = piece.n.end;
        pieces.push_back(piece);
      }
    }
    return pieces;
  }

 private:
  static constexpr std::string_view kWant = "a chunk size 1 <= s < n with valid chunk problems";

  // The application its parameters name: "n=N->S+S+R" names the chunk size second,
  // "n=N->QxS+R" third.
  static std::optional<Application> FromParameters(const Problem& p, const Application& given) {
    const std::vector<int64_t> numbers = NumbersIn(given.parameters);
    const size_t chunk_at = given.parameters.find('x') != std::string::npos ? 2 : 1;
    if (numbers.size() <= chunk_at) return std::nullopt;
    return MakeApplication(p, numbers[chunk_at]);
  }
};

}  // namespace

const Rewrite& BatchSplitRewrite() {
  static const BatchSplit rewrite;
  return rewrite;
}

}  // namespace convguard::rewrite
