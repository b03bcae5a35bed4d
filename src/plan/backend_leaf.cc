// A plan's leaf: the problem as is on an in-process backend, with one algorithm.
#include <utility>

#include "plan/internal.h"

namespace convguard::plan {
namespace {

class BackendLeaf final : public rewrite::ExecNode {
 public:
  BackendLeaf(Backend& backend, const Problem& p, std::string algorithm, bool* exact_sink)
      : backend_(backend), problem_(p), algorithm_(std::move(algorithm)), exact_sink_(exact_sink) {}

  const Problem& problem() const override { return problem_; }

  // The leaf reads io.weight at Execute: its parent stored the weights there (or, at
  // the root, the caller passes them in io).
  Status LoadWeights(const std::vector<float>&, const std::vector<float>&) override {
    return Status::Ok();
  }

  Status Execute(ConvTensors<float>& io) override {
    RunOptions once;
    once.warmup = 0;
    once.repeats = 1;
    StatusOr<RunResult> r = backend_.Run(problem_, algorithm_, io, once);
    if (!r.ok())
      return r.status().WithContext(std::string(backend_.name()) + " '" + algorithm_ + "'");
    if (!r->exact && exact_sink_ != nullptr) *exact_sink_ = false;
    return Status::Ok();
  }

 private:
  Backend& backend_;
  Problem problem_;
  std::string algorithm_;
  bool* exact_sink_;
};

// A leaf on device tensors: its problem prepared once on the backend.
class DeviceLeaf final : public rewrite::DeviceNode {
 public:
  DeviceLeaf(const Problem& p, std::unique_ptr<DeviceCall> call, std::string what, bool* exact_sink)
      : problem_(p), call_(std::move(call)), what_(std::move(what)), exact_sink_(exact_sink) {}

  const Problem& problem() const override { return problem_; }
  // The leaf reads io.weight at Execute, as BackendLeaf does.
  Status LoadWeights(const DeviceTensors&) override { return Status::Ok(); }

  Status Execute(const DeviceTensors& io) override {
    if (Status s = call_->Enqueue(io); !s.ok()) return s.WithContext(what_);
    if (!call_->exact() && exact_sink_ != nullptr) *exact_sink_ = false;
    return Status::Ok();
  }

 private:
  Problem problem_;
  std::unique_ptr<DeviceCall> call_;
  std::string what_;
  bool* exact_sink_;
};

}  // namespace

std::unique_ptr<rewrite::ExecNode> MakeBackendLeaf(Backend& backend, const Problem& p,
                                                   std::string algorithm, bool* exact_sink) {
  return std::make_unique<BackendLeaf>(backend, p, std::move(algorithm), exact_sink);
}

StatusOr<std::unique_ptr<rewrite::ExecNode>> BuildExecTree(
    const PlanStep& step, const std::map<std::string, Backend*>& backends, bool* exact_sink) {
  if (step.is_leaf()) {
    auto it = backends.find(step.backend);
    if (it == backends.end() || it->second == nullptr) {
      return Status::InvalidArgument("the plan runs on backend '" + step.backend +
                                     "', which this process has not opened");
    }
    return MakeBackendLeaf(*it->second, step.problem, step.algorithm, exact_sink);
  }
  const rewrite::Rewrite* r = rewrite::FindRewrite(step.rewrite);
  if (r == nullptr)
    return Status::Internal("the plan names an unknown rewrite '" + step.rewrite + "'");
  std::vector<std::unique_ptr<rewrite::ExecNode>> children;
  for (const PlanStep& child : step.children) {
    CG_ASSIGN_OR_RETURN(std::unique_ptr<rewrite::ExecNode> node,
                        BuildExecTree(child, backends, exact_sink));
    children.push_back(std::move(node));
  }
  return r->Build(step.problem, ApplicationOf(step), std::move(children));
}

StatusOr<std::unique_ptr<rewrite::DeviceNode>> MakeDeviceLeaf(Backend& backend, const Problem& p,
                                                              const std::string& algorithm,
                                                              bool* exact_sink) {
  const std::string what = std::string(backend.name()) + " '" + algorithm + "'";
  StatusOr<std::unique_ptr<DeviceCall>> call = backend.PrepareDeviceCall(p, algorithm);
  if (!call.ok()) return call.status().WithContext(what);
  return std::unique_ptr<rewrite::DeviceNode>(
      new DeviceLeaf(p, std::move(*call), what, exact_sink));
}

StatusOr<std::unique_ptr<rewrite::DeviceNode>> BuildDeviceTree(
    const PlanStep& step, const std::map<std::string, Backend*>& backends, DeviceMemory& memory,
    bool* exact_sink) {
  if (step.is_leaf()) {
    auto it = backends.find(step.backend);
    if (it == backends.end() || it->second == nullptr) {
      return Status::InvalidArgument("the plan runs on backend '" + step.backend +
                                     "', which this process has not opened");
    }
    Backend& backend = *it->second;
    if (backend.device_memory() != &memory) {
      return Status::Unsupported("the plan's leaf on backend '" + step.backend +
                                 "' does not compute in this device's memory");
    }
    return MakeDeviceLeaf(backend, step.problem, step.algorithm, exact_sink);
  }
  const rewrite::Rewrite* r = rewrite::FindRewrite(step.rewrite);
  if (r == nullptr)
    return Status::Internal("the plan names an unknown rewrite '" + step.rewrite + "'");
  if (!r->has_device_node()) {
    return Status::Unsupported("the " + step.rewrite +
                               " rewrite runs on host buffers only (no device-resident node)");
  }
  std::vector<std::unique_ptr<rewrite::DeviceNode>> children;
  for (const PlanStep& child : step.children) {
    CG_ASSIGN_OR_RETURN(std::unique_ptr<rewrite::DeviceNode> node,
                        BuildDeviceTree(child, backends, memory, exact_sink));
    children.push_back(std::move(node));
  }
  return r->BuildOnDevice(step.problem, ApplicationOf(step), std::move(children), memory);
}

rewrite::Application ApplicationOf(const PlanStep& step) {
  rewrite::Application app;
  app.rewrite = step.rewrite;
  app.parameters = step.parameters;
  app.runs = step.runs;
  app.bytes_per_call = step.bytes_per_call;
  app.bytes_per_weight_load = step.bytes_per_weight_load;
  for (const PlanStep& child : step.children) app.children.push_back(child.problem);
  return app;
}

StatusOr<std::vector<rewrite::ForwardPiece>> ForwardPiecesOf(const PlanStep& step) {
  const rewrite::Rewrite* r = rewrite::FindRewrite(step.rewrite);
  if (r == nullptr)
    return Status::Internal("the plan names an unknown rewrite '" + step.rewrite + "'");
  return r->ForwardPieces(step.problem, ApplicationOf(step));
}

}  // namespace convguard::plan
