// Guarded execution: plan once, build once, load weights once, run many times.
#include "convguard/guard.h"

#include <map>
#include <memory>
#include <optional>
#include <unordered_map>
#include <utility>

#include "convguard/compare.h"
#include "convguard/text_forms.h"
#include "plan/internal.h"

namespace convguard {
namespace {

// Hashes every field of a Problem (the cache key: a plan is per stack and problem, and
// a Guard has one primary stack). Cheaper than the canonical text, which matters for
// the cached lookup every Run makes.
struct ProblemHash {
  size_t operator()(const Problem& p) const {
    uint64_t h = 1469598103934665603ull;
    auto mix = [&h](int64_t v) {
      h ^= static_cast<uint64_t>(v);
      h *= 1099511628211ull;
      h ^= h >> 29;
    };
    for (int64_t v : {p.n, p.c, p.h, p.w, p.k, p.r, p.s, p.pad_top, p.pad_left, p.pad_bottom,
                      p.pad_right, p.stride_h, p.stride_w, p.dilation_h, p.dilation_w, p.groups}) {
      mix(v);
    }
    mix((p.bias ? 1 : 0) | static_cast<int64_t>(p.dtype) << 1 |
        static_cast<int64_t>(p.layout) << 3 | static_cast<int64_t>(p.direction) << 5);
    return static_cast<size_t>(h);
  }
};

struct Prepared {
  Plan plan;
  bool backends_ready = false;              // the plan's backends created here
  std::unique_ptr<rewrite::ExecNode> tree;  // on host buffers, built when first needed
  bool weights_loaded = false;
  // Device-resident execution, tried once: the tree on device tensors, or why not.
  bool device_tried = false;
  std::unique_ptr<rewrite::DeviceNode> device_tree;
  Status device_unavailable;
  bool device_weights_loaded = false;
  // Run's host tensors on the device (with device_tree), allocated on first use.
  std::vector<rewrite::DeviceBlock> staging;
  DeviceTensors staged;
  // RunOnDevice without device_tree: the host tensors its calls pass through.
  std::optional<ConvTensors<float>> host_copy;
  // The device addresses RunOnDevice last checked.
  std::optional<DeviceTensors> checked;
};

bool SameAddresses(const DeviceTensors& a, const DeviceTensors& b) {
  return a.input == b.input && a.weight == b.weight && a.output == b.output && a.bias == b.bias;
}

// The host tensor `p`'s direction produces, and the device address it goes to.
std::vector<float>& Produced(const Problem& p, ConvTensors<float>& io) {
  return p.direction == Direction::kForward        ? io.output
         : p.direction == Direction::kBackwardData ? io.input
                                                   : io.weight;
}
void* ProducedAddress(const Problem& p, const DeviceTensors& io) {
  return p.direction == Direction::kForward        ? io.output
         : p.direction == Direction::kBackwardData ? io.input
                                                   : io.weight;
}

class GuardImpl final : public Guard {
 public:
  GuardImpl(GuardOptions options, Store* store) : options_(std::move(options)), store_(store) {}

  // Checks the backends and learns their stacks from workers; no backend is created in
  // this process until a plan has to run.
  Status Init() {
    if (store_ == nullptr)
      return Status::InvalidArgument("guarded execution needs a verdict store");
    if (!options_.backend_options.fault_rules.empty() && options_.probe.fault_rules_path.empty()) {
      return Status::InvalidArgument(
          "fault rules for the guard's backend need their file in probe.fault_rules_path too: the "
          "workers that identify the stack read them from there");
    }
    std::vector<std::string> names = {options_.backend};
    names.insert(names.end(), options_.fallbacks.begin(), options_.fallbacks.end());
    for (size_t i = 0; i < names.size(); ++i) {
      const std::string& name = names[i];
      for (const StackChoice& s : stacks_) {
        if (s.backend == name) {
          return Status::InvalidArgument(
              "backend '" + name + "' is named twice (primary and fallback, or twice as fallback)");
        }
      }
      CG_ASSIGN_OR_RETURN(const BackendDescriptor descriptor, DescribeBackend(name));
      if (!descriptor.in_process) {
        return Status::Unsupported(
            "the " + name +
            " backend runs only in its Python worker; guarded execution runs in this "
            "process and needs a C++ backend (reference, emulated-rdna1, onednn, cudnn "
            "where built)");
      }
      ProbeOptions identify = options_.probe;
      identify.backend = name;
      if (i > 0) identify.fault_rules_path.clear();  // rules apply to the primary only
      identify.devices.clear();                      // in this process: the first device it sees
      CG_ASSIGN_OR_RETURN(std::vector<DeviceStack> seen, IdentifyStacks(identify, store_));
      const StackFingerprint& fp = seen.front().stack;
      if (i == 0) stack_ = fp;
      stacks_.push_back(StackChoice{name, fp.Id(), fp.Summary(), /*fallback=*/i > 0});
    }
    if (options_.planner.probe_missing) prober_ = MakeEngineProber(options_.probe, store_);
    return Status::Ok();
  }

  // Creates and initialises, once, every backend that `plan` runs leaves on, in this
  // process, and checks that each presents the stack its worker did: the verdicts the
  // plan was made of describe that stack and no other.
  Status PrepareBackendsFor(const PlanStep& step) {
    if (!step.is_leaf()) {
      for (const PlanStep& child : step.children) CG_RETURN_IF_ERROR(PrepareBackendsFor(child));
      return Status::Ok();
    }
    return PrepareBackend(step.backend);
  }

  Status PrepareBackend(const std::string& name) {
    if (raw_backends_.count(name) != 0) return Status::Ok();
    const bool primary = name == options_.backend;
    CG_ASSIGN_OR_RETURN(std::unique_ptr<Backend> backend,
                        CreateBackend(name, primary ? options_.backend_options : BackendOptions{}));
    if (Status s = backend->Init(); !s.ok())
      return s.WithContext("initialising backend '" + name + "'");
    const StackFingerprint here = backend->Fingerprint();
    for (const StackChoice& s : stacks_) {
      if (s.backend == name && s.stack_id != here.Id()) {
        return Status::Internal(
            "backend '" + name + "' presents stack " + here.Id() + " (" + here.Summary() +
            ") in this process but " + s.stack_id + " (" + s.summary +
            ") in its workers; the verdicts of the one do not describe the other");
      }
    }
    raw_backends_[name] = backend.get();
    backends_[name] = std::move(backend);
    return Status::Ok();
  }

  // The primary backend's device memory, or null when it computes in host memory or is
  // not created in this process.
  DeviceMemory* PrimaryDeviceMemory() {
    auto it = raw_backends_.find(options_.backend);
    return it == raw_backends_.end() ? nullptr : it->second->device_memory();
  }

  // Creates the plan's backends and tries, once, to build its tree on device tensors.
  Status PrepareTrees(Prepared& prepared) {
    if (!prepared.backends_ready) {
      CG_RETURN_IF_ERROR(PrepareBackendsFor(prepared.plan.root));
      prepared.backends_ready = true;
    }
    if (!prepared.device_tried) {
      if (DeviceMemory* memory = PrimaryDeviceMemory(); memory != nullptr) {
        prepared.device_tried = true;
        StatusOr<std::unique_ptr<rewrite::DeviceNode>> tree =
            plan::BuildDeviceTree(prepared.plan.root, raw_backends_, *memory, &last_run_exact_);
        if (tree.ok()) {
          prepared.device_tree = std::move(*tree);
        } else if (tree.status().code() == StatusCode::kUnsupported) {
          prepared.device_unavailable = tree.status();
        } else {
          return tree.status();
        }
      }
    }
    if (!prepared.device_tree && !prepared.tree) {
      CG_ASSIGN_OR_RETURN(prepared.tree,
                          plan::BuildExecTree(prepared.plan.root, raw_backends_, &last_run_exact_));
    }
    return Status::Ok();
  }

  const StackFingerprint& stack() const override { return stack_; }
  const std::vector<StackChoice>& stacks() const override { return stacks_; }

  StatusOr<const Plan*> PlanFor(const Problem& p) override {
    CG_ASSIGN_OR_RETURN(Prepared * prepared, Lookup(p));
    return &prepared->plan;
  }

  Status Run(const Problem& p, ConvTensors<float>& io, WeightsAre weights) override {
    CG_ASSIGN_OR_RETURN(Prepared * prepared, Lookup(p));
    if (io.input.size() != static_cast<size_t>(p.input_elements()) ||
        io.weight.size() != static_cast<size_t>(p.weight_elements()) ||
        io.output.size() != static_cast<size_t>(p.output_elements()) ||
        io.bias.size() != static_cast<size_t>(p.bias_elements())) {
      return Status::InvalidArgument("the tensors are not sized for " + ToCanonical(p) +
                                     " (size them with ConvTensors<float>::Allocate)");
    }
    CG_RETURN_IF_ERROR(PrepareTrees(*prepared));
    // Leaves clear the flag when their backend says a run rounded.
    last_run_exact_ = prepared->plan.exact;
    last_run_problem_ = p;
    if (prepared->device_tree) return RunStagedOnDevice(p, *prepared, io, weights);
    return RunOnHost(*prepared, io, weights);
  }

  StatusOr<DeviceMemory*> device_memory() override {
    CG_RETURN_IF_ERROR(PrepareBackend(options_.backend));
    DeviceMemory* memory = PrimaryDeviceMemory();
    if (memory == nullptr) {
      return Status::Unsupported("backend '" + options_.backend +
                                 "' computes in host memory, so it takes no device tensors; pass "
                                 "host tensors to Run");
    }
    return memory;
  }

  Status RunOnDevice(const Problem& p, const DeviceTensors& io, WeightsAre weights,
                     void* stream) override {
    last_run_device_resident_ = false;
    CG_ASSIGN_OR_RETURN(Prepared * prepared, Lookup(p));
    CG_ASSIGN_OR_RETURN(DeviceMemory * memory, device_memory());
    if (!prepared->checked || !SameAddresses(*prepared->checked, io)) {
      prepared->checked.reset();
      CG_RETURN_IF_ERROR(memory->CheckAddress(io.input, p.direction == Direction::kBackwardData
                                                            ? "the input gradient (dx)"
                                                            : "the input (x)"));
      CG_RETURN_IF_ERROR(memory->CheckAddress(io.weight, p.direction == Direction::kBackwardWeights
                                                             ? "the weight gradient (dw)"
                                                             : "the weights (w)"));
      CG_RETURN_IF_ERROR(memory->CheckAddress(
          io.output, p.direction == Direction::kForward ? "the output (y)" : "the gradient (dy)"));
      if (p.bias && p.direction == Direction::kForward)
        CG_RETURN_IF_ERROR(memory->CheckAddress(io.bias, "the bias"));
      prepared->checked = io;
    }
    CG_RETURN_IF_ERROR(PrepareTrees(*prepared));
    last_run_exact_ = prepared->plan.exact;
    last_run_problem_ = p;
    CG_RETURN_IF_ERROR(memory->Begin(stream));
    if (prepared->device_tree) {
      if (!prepared->device_weights_loaded || weights == WeightsAre::kNew) {
        prepared->device_weights_loaded = false;
        CG_RETURN_IF_ERROR(prepared->device_tree->LoadWeights(io));
        prepared->device_weights_loaded = true;
      }
      CG_RETURN_IF_ERROR(prepared->device_tree->Execute(io));
      CG_RETURN_IF_ERROR(memory->Finish());
      last_run_device_resident_ = true;
      return Status::Ok();
    }
    // A plan with a step that runs on host buffers: through host memory.
    if (!prepared->host_copy) prepared->host_copy = ConvTensors<float>::Allocate(p);
    ConvTensors<float>& host = *prepared->host_copy;
    const bool load = !prepared->weights_loaded || weights == WeightsAre::kNew;
    switch (p.direction) {
      case Direction::kForward:
        CG_RETURN_IF_ERROR(memory->Download(io.input, p.dtype, host.input));
        if (load) CG_RETURN_IF_ERROR(memory->Download(io.weight, p.dtype, host.weight));
        if (load && p.bias) CG_RETURN_IF_ERROR(memory->Download(io.bias, p.dtype, host.bias));
        break;
      case Direction::kBackwardData:
        CG_RETURN_IF_ERROR(memory->Download(io.output, p.dtype, host.output));
        if (load) CG_RETURN_IF_ERROR(memory->Download(io.weight, p.dtype, host.weight));
        break;
      case Direction::kBackwardWeights:
        CG_RETURN_IF_ERROR(memory->Download(io.input, p.dtype, host.input));
        CG_RETURN_IF_ERROR(memory->Download(io.output, p.dtype, host.output));
        break;
    }
    CG_RETURN_IF_ERROR(RunOnHost(*prepared, host, weights));
    return memory->Upload(Produced(p, host), p.dtype, ProducedAddress(p, io));
  }

  bool last_run_device_resident() const override { return last_run_device_resident_; }

  bool last_run_exact() const override { return last_run_exact_; }

 private:
  Status RunOnHost(Prepared& prepared, ConvTensors<float>& io, WeightsAre weights) {
    if (!prepared.tree) {
      CG_ASSIGN_OR_RETURN(prepared.tree,
                          plan::BuildExecTree(prepared.plan.root, raw_backends_, &last_run_exact_));
    }
    if (!prepared.weights_loaded || weights == WeightsAre::kNew) {
      prepared.weights_loaded = false;
      CG_RETURN_IF_ERROR(prepared.tree->LoadWeights(io.weight, io.bias));
      prepared.weights_loaded = true;
    }
    return prepared.tree->Execute(io);
  }

  // Run with a device tree: the host tensors go up (the weights once per set) into
  // buffers kept with the plan, the result comes down.
  Status RunStagedOnDevice(const Problem& p, Prepared& prepared, ConvTensors<float>& io,
                           WeightsAre weights) {
    DeviceMemory& memory = *PrimaryDeviceMemory();
    if (prepared.staging.empty()) {
      const std::pair<int64_t, const char*> tensors[] = {{p.input_bytes(), "the input"},
                                                         {p.weight_bytes(), "the weights"},
                                                         {p.output_bytes(), "the output"},
                                                         {p.bias_bytes(), "the bias"}};
      for (const auto& [bytes, what] : tensors) {
        CG_ASSIGN_OR_RETURN(rewrite::DeviceBlock block,
                            rewrite::DeviceBlock::Allocate(memory, bytes, what, false));
        prepared.staging.push_back(std::move(block));
      }
      prepared.staged = DeviceTensors{prepared.staging[0].get(), prepared.staging[1].get(),
                                      prepared.staging[2].get(), prepared.staging[3].get()};
    }
    const DeviceTensors& d = prepared.staged;
    const bool load = !prepared.device_weights_loaded || weights == WeightsAre::kNew;
    switch (p.direction) {
      case Direction::kForward:
        CG_RETURN_IF_ERROR(memory.Upload(io.input, p.dtype, d.input));
        if (load) CG_RETURN_IF_ERROR(memory.Upload(io.weight, p.dtype, d.weight));
        if (load) CG_RETURN_IF_ERROR(memory.Upload(io.bias, p.dtype, d.bias));
        break;
      case Direction::kBackwardData:
        CG_RETURN_IF_ERROR(memory.Upload(io.output, p.dtype, d.output));
        if (load) CG_RETURN_IF_ERROR(memory.Upload(io.weight, p.dtype, d.weight));
        break;
      case Direction::kBackwardWeights:
        CG_RETURN_IF_ERROR(memory.Upload(io.input, p.dtype, d.input));
        CG_RETURN_IF_ERROR(memory.Upload(io.output, p.dtype, d.output));
        break;
    }
    if (load) {
      prepared.device_weights_loaded = false;
      CG_RETURN_IF_ERROR(prepared.device_tree->LoadWeights(d));
      prepared.device_weights_loaded = true;
    }
    CG_RETURN_IF_ERROR(prepared.device_tree->Execute(d));
    // Download waits for the queue, and reports the first error of the queued work.
    return memory.Download(ProducedAddress(p, d), p.dtype, Produced(p, io));
  }

 public:
  double last_run_tolerance() const override {
    if (last_run_exact_ || !last_run_problem_) return 0.0;
    return DefaultTolerance(*last_run_problem_, /*exact_filled=*/false);
  }

  void ClearCache() override { cache_.clear(); }

 private:
  StatusOr<Prepared*> Lookup(const Problem& p) {
    if (auto it = cache_.find(p); it != cache_.end()) return &it->second;
    CG_ASSIGN_OR_RETURN(PlanReport report,
                        MakePlan(p, stacks_, *store_, options_.planner, prober_));
    if (!report.chosen) {
      std::string message = "no exact plan for " + report.problem_text + " on " + stack_.Summary();
      for (const std::string& line : report.native_verdicts) message += "; as is " + line;
      if (!report.suggestions.empty()) message += "; a person could: " + report.suggestions.front();
      return Status::NotFound(message);
    }
    Prepared prepared;
    prepared.plan = std::move(*report.chosen);
    return &(cache_[p] = std::move(prepared));
  }

  GuardOptions options_;
  Store* store_;
  StackFingerprint stack_;
  std::vector<StackChoice> stacks_;
  std::map<std::string, std::unique_ptr<Backend>> backends_;
  std::map<std::string, Backend*> raw_backends_;
  Prober prober_;
  bool last_run_exact_ = true;
  bool last_run_device_resident_ = false;
  std::optional<Problem> last_run_problem_;  // the problem of the last Run
  std::unordered_map<Problem, Prepared, ProblemHash> cache_;
};

}  // namespace

StatusOr<std::unique_ptr<Guard>> Guard::Open(const GuardOptions& options, Store* store) {
  auto guard = std::make_unique<GuardImpl>(options, store);
  CG_RETURN_IF_ERROR(guard->Init());
  return std::unique_ptr<Guard>(std::move(guard));
}

}  // namespace convguard
