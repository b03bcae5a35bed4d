// The rewrites' device nodes (device-resident guarded execution) on a stand-in for a
// device whose memory is this process's: the node logic, the box copies as rows, the
// protocol and the buffers' lifetimes, checked bit for bit against the float64
// reference on any CPU. The real device path (cuDNN on a GPU) is tested in
// tests/backends/cudnn_test.cc with the gpu label.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "convguard/device.h"
#include "convguard/reference.h"
#include "rewrite/rewrite.h"
#include "rewrite/rewrite_test_util.h"
#include "rewrite/tensor_copy.h"

namespace convguard::rewrite::testing {
namespace {

// DeviceMemory whose "device" is host memory: float32 only (it converts nothing).
// New blocks are filled with 0xFF bytes (a NaN in every float), so a buffer a node
// forgot to zero or write shows in the result. Counts what it is asked to do.
class HostMemory final : public DeviceMemory {
 public:
  ~HostMemory() override {
    for (void* block : live_) delete[] static_cast<unsigned char*>(block);
  }

  StatusOr<void*> Allocate(size_t bytes, std::string_view) override {
    ++allocations_;
    if (bytes == 0) return static_cast<void*>(nullptr);
    auto* block = new unsigned char[bytes];
    std::memset(block, 0xFF, bytes);
    live_.insert(block);
    return static_cast<void*>(block);
  }
  void Free(void* block) override {
    if (block == nullptr) return;
    live_.erase(block);
    delete[] static_cast<unsigned char*>(block);
  }
  Status Zero(void* device, size_t bytes) override {
    if (bytes != 0) std::memset(device, 0, bytes);
    return Status::Ok();
  }
  Status CopyRows(void* dst, size_t dst_pitch, const void* src, size_t src_pitch, size_t width,
                  size_t rows) override {
    ++copies_;
    for (size_t r = 0; r < rows; ++r) {
      std::memcpy(static_cast<unsigned char*>(dst) + r * dst_pitch,
                  static_cast<const unsigned char*>(src) + r * src_pitch, width);
    }
    return Status::Ok();
  }
  Status Upload(const std::vector<float>& host, DataType dtype, void* device) override {
    if (dtype != DataType::kF32) return Status::Unsupported("host stand-in: float32 only");
    if (!host.empty()) std::memcpy(device, host.data(), host.size() * sizeof(float));
    return Status::Ok();
  }
  Status Download(const void* device, DataType dtype, std::vector<float>& host) override {
    if (dtype != DataType::kF32) return Status::Unsupported("host stand-in: float32 only");
    if (!host.empty()) std::memcpy(host.data(), device, host.size() * sizeof(float));
    return Status::Ok();
  }
  Status Begin(void*) override { return Status::Ok(); }
  Status Finish() override { return Status::Ok(); }
  Status CheckAddress(const void* device, std::string_view what) override {
    return device != nullptr ? Status::Ok()
                             : Status::InvalidArgument(std::string(what) + " is null");
  }

  size_t live_blocks() const { return live_.size(); }
  int64_t allocations() const { return allocations_; }
  int64_t copies() const { return copies_; }

 private:
  std::set<void*> live_;
  int64_t allocations_ = 0;
  int64_t copies_ = 0;
};

// A leaf on "device" tensors: copies them into a ReferenceLeaf's host tensors and its
// result back, so the leaf's checks (weights as loaded, exact values) hold here too.
class ReferenceDeviceLeaf final : public DeviceNode {
 public:
  explicit ReferenceDeviceLeaf(const Problem& p) : leaf_(p), io_(ConvTensors<float>::Allocate(p)) {}

  const Problem& problem() const override { return leaf_.problem(); }

  Status LoadWeights(const DeviceTensors& io) override {
    Take(io.weight, io_.weight);
    Take(io.bias, io_.bias);
    return leaf_.LoadWeights(io_.weight, io_.bias);
  }

  Status Execute(const DeviceTensors& io) override {
    const Problem& p = problem();
    Take(io.input, io_.input);
    Take(io.weight, io_.weight);
    Take(io.output, io_.output);
    if (p.direction == Direction::kForward) Take(io.bias, io_.bias);
    CG_RETURN_IF_ERROR(leaf_.Execute(io_));
    const std::vector<float>& result = ResultTensor(p, io_);
    void* to = p.direction == Direction::kForward        ? io.output
               : p.direction == Direction::kBackwardData ? io.input
                                                         : io.weight;
    std::memcpy(to, result.data(), result.size() * sizeof(float));
    return Status::Ok();
  }

 private:
  static void Take(const void* from, std::vector<float>& to) {
    if (from != nullptr && !to.empty()) std::memcpy(to.data(), from, to.size() * sizeof(float));
  }

  ReferenceLeaf leaf_;
  ConvTensors<float> io_;
};

std::vector<std::unique_ptr<DeviceNode>> DeviceLeaves(const Application& app) {
  std::vector<std::unique_ptr<DeviceNode>> leaves;
  for (const Problem& child : app.children)
    leaves.push_back(std::make_unique<ReferenceDeviceLeaf>(child));
  return leaves;
}

// The caller's "device" tensors: float32 host vectors standing in for device memory.
struct CallerTensors {
  ConvTensors<float> t;
  DeviceTensors View() {
    return DeviceTensors{t.input.data(), t.weight.data(), t.output.data(),
                         t.bias.empty() ? nullptr : t.bias.data()};
  }
};

// Loads `data`'s weights (when `load`), executes once on its operands, and compares the
// result bit for bit with the reference. "" on success.
std::string RunOnce(DeviceNode& node, const Problem& p, const ConvTensors<double>& data,
                    bool load) {
  CallerTensors io{PoisonedIo(p, data)};
  if (load) {
    if (Status s = node.LoadWeights(io.View()); !s.ok()) return "LoadWeights: " + s.ToString();
  }
  if (Status s = node.Execute(io.View()); !s.ok()) return "Execute: " + s.ToString();
  return CompareBits(p, ResultTensor(p, io.t), ResultTensor(p, data));
}

// Data for p with the weights (and bias) of `weights_from`, its reference result
// recomputed: a second call on the same loaded weights.
ConvTensors<double> SameWeights(const Problem& p, const ConvTensors<double>& weights_from,
                                uint64_t seed) {
  ConvTensors<double> t = ExactCase(p, seed);
  if (p.direction != Direction::kBackwardWeights) {
    t.weight = weights_from.weight;
    t.bias = weights_from.bias;
    ReferenceConvolution(p, t);
  }
  return t;
}

Problem SmallProblem(Direction d, Layout layout, bool bias) {
  Problem p;
  p.n = 2;
  p.c = 5;
  p.h = 7;
  p.w = 6;
  p.k = 3;
  p.r = 3;
  p.s = 2;
  p.pad_top = p.pad_bottom = 1;
  p.pad_left = p.pad_right = 1;
  p.direction = d;
  p.layout = layout;
  p.bias = bias && d == Direction::kForward;
  return p;
}

const Direction kDirections[] = {Direction::kForward, Direction::kBackwardData,
                                 Direction::kBackwardWeights};

TEST(DeviceRewrite, ChannelPaddingsAreExactInEveryDirectionLayoutAndCandidate) {
  for (const Rewrite* rewrite : {&PadInputChannelsRewrite(), &PadOutputChannelsRewrite()}) {
    ASSERT_TRUE(rewrite->has_device_node()) << rewrite->name();
    for (Direction d : kDirections) {
      for (Layout layout : {Layout::kNCHW, Layout::kNHWC}) {
        for (bool bias : {false, true}) {
          const Problem p = SmallProblem(d, layout, bias);
          const std::vector<Application> apps = rewrite->Candidates(p);
          ASSERT_FALSE(apps.empty());
          for (const Application& app : apps) {
            SCOPED_TRACE(std::string(rewrite->name()) + " " + app.parameters + " on " +
                         ToCanonical(p));
            HostMemory memory;
            StatusOr<std::unique_ptr<DeviceNode>> node =
                rewrite->BuildOnDevice(p, app, DeviceLeaves(app), memory);
            ASSERT_TRUE(node.ok()) << node.status().ToString();
            const ConvTensors<double> first = ExactCase(p, 11);
            EXPECT_EQ(RunOnce(**node, p, first, /*load=*/true), "");
            // A second call on the weights loaded once: the padding stays zero.
            const int64_t allocations = memory.allocations();
            EXPECT_EQ(RunOnce(**node, p, SameWeights(p, first, 12), /*load=*/false), "");
            EXPECT_EQ(memory.allocations(), allocations) << "a call allocated";
          }
        }
      }
    }
  }
}

TEST(DeviceRewrite, NestedPaddingsLoadWeightsThroughEveryLevel) {
  for (Direction d : kDirections) {
    for (Layout layout : {Layout::kNCHW, Layout::kNHWC}) {
      const Problem p = SmallProblem(d, layout, /*bias=*/true);
      SCOPED_TRACE(ToCanonical(p));
      const Application outer = PadInputChannelsRewrite().Candidates(p).front();
      const Problem middle = outer.children.front();
      const Application inner = PadOutputChannelsRewrite().Candidates(middle).back();
      HostMemory memory;
      StatusOr<std::unique_ptr<DeviceNode>> inner_node =
          PadOutputChannelsRewrite().BuildOnDevice(middle, inner, DeviceLeaves(inner), memory);
      ASSERT_TRUE(inner_node.ok()) << inner_node.status().ToString();
      std::vector<std::unique_ptr<DeviceNode>> children;
      children.push_back(std::move(*inner_node));
      StatusOr<std::unique_ptr<DeviceNode>> node =
          PadInputChannelsRewrite().BuildOnDevice(p, outer, std::move(children), memory);
      ASSERT_TRUE(node.ok()) << node.status().ToString();
      const ConvTensors<double> first = ExactCase(p, 21);
      EXPECT_EQ(RunOnce(**node, p, first, true), "");
      EXPECT_EQ(RunOnce(**node, p, SameWeights(p, first, 22), false), "");
      // New weights reach the innermost leaf.
      EXPECT_EQ(RunOnce(**node, p, ExactCase(p, 23), true), "");
    }
  }
}

TEST(DeviceRewrite, BuffersAreAllocatedAtBuildAndFreedWithTheNode) {
  HostMemory memory;
  const Problem p = SmallProblem(Direction::kForward, Layout::kNCHW, true);
  const Application app = PadOutputChannelsRewrite().Candidates(p).front();
  {
    StatusOr<std::unique_ptr<DeviceNode>> node =
        PadOutputChannelsRewrite().BuildOnDevice(p, app, DeviceLeaves(app), memory);
    ASSERT_TRUE(node.ok()) << node.status().ToString();
    EXPECT_EQ(memory.live_blocks(), 3u);  // w', bias', y'
    EXPECT_EQ(RunOnce(**node, p, ExactCase(p, 3), true), "");
  }
  EXPECT_EQ(memory.live_blocks(), 0u);
}

TEST(DeviceRewrite, TheProtocolIsEnforced) {
  HostMemory memory;
  const Problem p = SmallProblem(Direction::kForward, Layout::kNCHW, true);
  const Application app = PadInputChannelsRewrite().Candidates(p).front();
  StatusOr<std::unique_ptr<DeviceNode>> node =
      PadInputChannelsRewrite().BuildOnDevice(p, app, DeviceLeaves(app), memory);
  ASSERT_TRUE(node.ok()) << node.status().ToString();
  CallerTensors io{PoisonedIo(p, ExactCase(p, 5))};
  Status before = (*node)->Execute(io.View());
  EXPECT_EQ(before.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(before.message().find("before LoadWeights"), std::string::npos) << before.ToString();
  DeviceTensors no_bias = io.View();
  no_bias.bias = nullptr;
  Status load = (*node)->LoadWeights(no_bias);
  EXPECT_EQ(load.code(), StatusCode::kInvalidArgument) << load.ToString();
  ASSERT_TRUE((*node)->LoadWeights(io.View()).ok());
  DeviceTensors no_input = io.View();
  no_input.input = nullptr;
  Status run = (*node)->Execute(no_input);
  EXPECT_EQ(run.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(run.message().find("null device address"), std::string::npos) << run.ToString();

  // Children that do not match the application's slots are refused.
  std::vector<std::unique_ptr<DeviceNode>> wrong;
  wrong.push_back(std::make_unique<ReferenceDeviceLeaf>(p));
  StatusOr<std::unique_ptr<DeviceNode>> mismatched =
      PadInputChannelsRewrite().BuildOnDevice(p, app, std::move(wrong), memory);
  EXPECT_EQ(mismatched.status().code(), StatusCode::kInvalidArgument);
}

TEST(DeviceRewrite, RewritesWithoutADeviceNodeSaySo) {
  HostMemory memory;
  for (const Rewrite* rewrite : AllRewrites()) {
    const bool padding =
        rewrite == &PadInputChannelsRewrite() || rewrite == &PadOutputChannelsRewrite();
    EXPECT_EQ(rewrite->has_device_node(), padding) << rewrite->name();
    if (padding) continue;
    Problem p = SmallProblem(Direction::kForward, Layout::kNCHW, false);
    p.n = 4;
    p.h = p.w = 24;
    p.groups = 1;
    const std::vector<Application> apps = rewrite->Candidates(p);
    if (apps.empty()) continue;
    StatusOr<std::unique_ptr<DeviceNode>> node =
        rewrite->BuildOnDevice(p, apps.front(), DeviceLeaves(apps.front()), memory);
    EXPECT_EQ(node.status().code(), StatusCode::kUnsupported) << rewrite->name();
    EXPECT_NE(node.status().message().find("host buffers only"), std::string::npos)
        << node.status().ToString();
  }
}

// DeviceTensorCopy (what `run --device-tensors` and the GPU tests upload with): every
// tensor in a block of its own, the produced one per direction, replaced and read back,
// every block freed with it.
TEST(DeviceRewrite, DeviceTensorCopyHoldsEveryTensorAndFreesItsBlocks) {
  HostMemory memory;
  for (Direction d : kDirections) {
    const Problem p = SmallProblem(d, Layout::kNCHW, /*bias=*/true);
    ConvTensors<float> host = PoisonedIo(p, ExactCase(p, 9));
    {
      StatusOr<std::unique_ptr<DeviceTensorCopy>> copy = DeviceTensorCopy::Upload(memory, p, host);
      ASSERT_TRUE(copy.ok()) << copy.status().ToString();
      const DeviceTensors& t = (*copy)->tensors();
      EXPECT_EQ(memory.live_blocks(), p.bias ? 4u : 3u);
      EXPECT_EQ(t.bias != nullptr, p.bias);
      EXPECT_EQ(std::memcmp(t.weight, host.weight.data(), host.weight.size() * sizeof(float)), 0);
      void* expected = d == Direction::kForward        ? t.output
                       : d == Direction::kBackwardData ? t.input
                                                       : t.weight;
      EXPECT_EQ((*copy)->result(), expected);
      std::vector<float> values(ResultTensor(p, host).size());
      for (size_t i = 0; i < values.size(); ++i) values[i] = static_cast<float>(i);
      ASSERT_TRUE((*copy)->Replace((*copy)->result(), values).ok());
      std::vector<float> back(values.size(), -1.0f);
      ASSERT_TRUE((*copy)->DownloadResult(back).ok());
      EXPECT_EQ(back, values);
    }
    EXPECT_EQ(memory.live_blocks(), 0u);
  }
}

// CopyBoxOnDevice moves exactly what CopyBox moves, for random boxes in both layouts.
TEST(DeviceRewrite, CopyBoxOnDeviceMatchesCopyBox) {
  std::mt19937_64 rng(7);
  auto pick = [&rng](int64_t lo, int64_t hi) {
    return std::uniform_int_distribution<int64_t>(lo, hi)(rng);
  };
  HostMemory memory;
  for (int trial = 0; trial < 400; ++trial) {
    const Layout layout = trial % 2 == 0 ? Layout::kNCHW : Layout::kNHWC;
    const Dims4 src_dims{pick(1, 3), pick(1, 6), pick(1, 5), pick(1, 5)};
    const Dims4 dst_dims{pick(1, 3), pick(1, 6), pick(1, 5), pick(1, 5)};
    const Dims4 extent{
        pick(1, std::min(src_dims.n, dst_dims.n)), pick(1, std::min(src_dims.c, dst_dims.c)),
        pick(1, std::min(src_dims.h, dst_dims.h)), pick(1, std::min(src_dims.w, dst_dims.w))};
    const Dims4 src_origin{pick(0, src_dims.n - extent.n), pick(0, src_dims.c - extent.c),
                           pick(0, src_dims.h - extent.h), pick(0, src_dims.w - extent.w)};
    const Dims4 dst_origin{pick(0, dst_dims.n - extent.n), pick(0, dst_dims.c - extent.c),
                           pick(0, dst_dims.h - extent.h), pick(0, dst_dims.w - extent.w)};
    const TensorShape4 src_shape{src_dims, layout};
    const TensorShape4 dst_shape{dst_dims, layout};
    std::vector<float> src(static_cast<size_t>(src_dims.elements()));
    for (size_t i = 0; i < src.size(); ++i) src[i] = static_cast<float>(i + 1);
    std::vector<float> expected(static_cast<size_t>(dst_dims.elements()), -1.0f);
    std::vector<float> got = expected;
    CopyBox(src.data(), src_shape, src_origin, expected.data(), dst_shape, dst_origin, extent);
    ASSERT_TRUE(CopyBoxOnDevice(memory, sizeof(float), src.data(), src_shape, src_origin,
                                got.data(), dst_shape, dst_origin, extent)
                    .ok());
    ASSERT_EQ(got, expected) << "trial " << trial;
  }
}

// A channel padding's copy is one queued 2-D copy whatever the layout.
TEST(DeviceRewrite, AChannelPaddingCopyIsOneRowCopy) {
  HostMemory memory;
  for (Layout layout : {Layout::kNCHW, Layout::kNHWC}) {
    const TensorShape4 x{{2, 5, 4, 3}, layout};
    const TensorShape4 padded{{2, 8, 4, 3}, layout};
    std::vector<uint16_t> src(static_cast<size_t>(x.dims.elements()), 7);
    std::vector<uint16_t> dst(static_cast<size_t>(padded.dims.elements()), 0);
    const int64_t before = memory.copies();
    ASSERT_TRUE(
        CopyBoxOnDevice(memory, sizeof(uint16_t), src.data(), x, {}, dst.data(), padded, {}, x.dims)
            .ok());
    EXPECT_EQ(memory.copies() - before, 1);
    int64_t sevens = 0;
    for (uint16_t v : dst) sevens += v == 7 ? 1 : 0;
    EXPECT_EQ(sevens, x.dims.elements());
  }
}

}  // namespace
}  // namespace convguard::rewrite::testing
