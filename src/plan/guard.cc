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
  std::unique_ptr<rewrite::ExecNode> tree;  // built on the first Run
  bool weights_loaded = false;
};

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
    if (raw_backends_.count(step.backend) != 0) return Status::Ok();
    const bool primary = step.backend == options_.backend;
    CG_ASSIGN_OR_RETURN(
        std::unique_ptr<Backend> backend,
        CreateBackend(step.backend, primary ? options_.backend_options : BackendOptions{}));
    if (Status s = backend->Init(); !s.ok())
      return s.WithContext("initialising backend '" + step.backend + "'");
    const StackFingerprint here = backend->Fingerprint();
    for (const StackChoice& s : stacks_) {
      if (s.backend == step.backend && s.stack_id != here.Id()) {
        return Status::Internal(
            "backend '" + step.backend + "' presents stack " + here.Id() + " (" + here.Summary() +
            ") in this process but " + s.stack_id + " (" + s.summary +
            ") in its workers; the verdicts of the one do not describe the other");
      }
    }
    raw_backends_[step.backend] = backend.get();
    backends_[step.backend] = std::move(backend);
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
    if (!prepared->tree) {
      CG_RETURN_IF_ERROR(PrepareBackendsFor(prepared->plan.root));
      CG_ASSIGN_OR_RETURN(prepared->tree, plan::BuildExecTree(prepared->plan.root, raw_backends_,
                                                              &last_run_exact_));
    }
    if (!prepared->weights_loaded || weights == WeightsAre::kNew) {
      CG_RETURN_IF_ERROR(prepared->tree->LoadWeights(io.weight, io.bias));
      prepared->weights_loaded = true;
    }
    // Leaves clear the flag when their backend says a run rounded.
    last_run_exact_ = prepared->plan.exact;
    last_run_problem_ = p;
    return prepared->tree->Execute(io);
  }

  bool last_run_exact() const override { return last_run_exact_; }
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
