#include "backends/inject/injecting_backend.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <future>
#include <new>
#include <thread>
#include <utility>

namespace convguard::inject {
namespace {

// ---- the faults themselves ---------------------------------------------------------
// Standard C and C++ only: no POSIX call is needed to misbehave.

// A CPU stand-in for a GPU kernel that never finishes: the thread stays runnable and
// burns its core. The volatile counter keeps the loop from being optimised away (an
// infinite loop without side effects would be undefined behaviour).
[[noreturn]] void SpinForever() {
  volatile uint64_t turns = 0;
  for (;;) turns = turns + 1;
}

// Waits on a future whose promise is never fulfilled: the thread sleeps in the kernel
// (futex on Linux), using no CPU, until a signal ends the process. The loop guards
// against any spurious return.
[[noreturn]] void BlockForever() {
  std::promise<void> never;
  std::future<void> wait_for = never.get_future();
  for (;;) wait_for.wait();
}

// A write to an address in the first page, which is never mapped (vm.mmap_min_addr): the
// CPU faults and the kernel sends SIGSEGV. The address is not null, so a null-pointer
// sanitizer lets the write fault instead of reporting it, and it is volatile, so the
// compiler cannot prove anything about it. Should a handler swallow the signal, raise it
// explicitly, and abort as the last resort.
[[noreturn]] void SegfaultNow() {
  volatile uintptr_t address = 0x10;
  *reinterpret_cast<volatile int*>(address) = 0x5e6f;
  std::raise(SIGSEGV);
  std::abort();
}

// The request a real out-of-memory failure makes: far more than any machine has (2^60
// bytes, beyond the 48-bit address space), through the ordinary allocator. The size is
// volatile so that the allocation cannot be folded away.
constexpr size_t kImpossibleBytes = size_t{1} << 60;

bool AllocationFails() {
  volatile size_t bytes = kImpossibleBytes;
  void* memory = ::operator new(bytes, std::nothrow);
  if (memory == nullptr) return true;
  ::operator delete(memory);
  return false;
}

// Says which rule is about to stall or kill the process, so the worker's stderr (kept as
// evidence) tells an injected fault from a real one.
void AnnounceFatal(const FaultRules& rules, const FaultRule& rule) {
  std::fprintf(stderr, "convguard: injected fault '%s' by rule %s: %s\n",
               FaultKindName(rule.fault.kind).data(), rules.Where(rule).c_str(),
               rule.ToString().c_str());
  std::fflush(stderr);
}

[[noreturn]] void PerformFatal(const FaultRules& rules, const FaultRule& rule) {
  AnnounceFatal(rules, rule);
  switch (rule.fault.kind) {
    case FaultKind::kSpin: SpinForever();
    case FaultKind::kBlock: BlockForever();
    case FaultKind::kSegv: SegfaultNow();
    case FaultKind::kAbort: std::abort();
    case FaultKind::kExit: std::_Exit(rule.fault.exit_code);
    default: break;
  }
  std::abort();  // not reached: only fatal kinds come here
}

// The tensor a direction produces.
std::vector<float>& ProducedTensor(const Problem& p, ConvTensors<float>& io) {
  switch (p.direction) {
    case Direction::kForward: return io.output;
    case Direction::kBackwardData: return io.input;
    case Direction::kBackwardWeights: return io.weight;
  }
  return io.output;
}

// Marks an implementation string with the fault that changed the run.
std::string Marked(std::string implementation, const FaultRules& rules, const FaultRule& rule) {
  if (!implementation.empty()) implementation += ' ';
  return implementation + "[injected " + rule.fault.ToString() + " by " + rules.Where(rule) + "]";
}

}  // namespace

void CorruptTail(std::vector<float>& tensor, double fraction) {
  if (tensor.empty() || !(fraction > 0.0)) return;
  const double wanted = std::ceil(std::min(fraction, 1.0) * static_cast<double>(tensor.size()));
  const size_t count = std::clamp<size_t>(static_cast<size_t>(wanted), 1, tensor.size());
  for (size_t i = tensor.size() - count; i < tensor.size(); ++i) {
    const double v = tensor[i];
    tensor[i] = static_cast<float>(v + 1.0 + std::fabs(v));
  }
}

InjectingBackend::InjectingBackend(std::unique_ptr<Backend> inner, FaultRules rules,
                                   std::string registry_name, int device)
    : inner_(std::move(inner)),
      rules_(std::move(rules)),
      registry_name_(std::move(registry_name)),
      device_(device) {}

std::string_view InjectingBackend::name() const {
  return registry_name_.empty() ? inner_->name() : std::string_view(registry_name_);
}

Status InjectingBackend::Init() { return inner_->Init(); }

StackFingerprint InjectingBackend::Fingerprint() const {
  StackFingerprint fp = inner_->Fingerprint();
  if (!registry_name_.empty()) fp.backend = registry_name_;
  rules_.ApplyTo(fp, device_);
  return fp;
}

std::vector<std::string> InjectingBackend::Algorithms(const Problem& p) const {
  return inner_->Algorithms(p);
}

CallHistory InjectingBackend::History::Next() const {
  CallHistory view;
  view.calls = runs + 1;
  if (last) {
    view.previous = &*last;
    view.previous_algorithm = last_algorithm;
  }
  return view;
}

InjectingBackend::History InjectingBackend::Snapshot() const {
  std::lock_guard<std::mutex> lock(history_mutex_);
  return history_;
}

const FaultRule* InjectingBackend::MatchAs(const Problem& p, std::string_view algorithm,
                                           const History& history) const {
  return rules_.Match(p, algorithm, device_, history.Next());
}

int64_t InjectingBackend::run_calls() const {
  std::lock_guard<std::mutex> lock(history_mutex_);
  return history_.runs;
}

Status InjectingBackend::Supports(const Problem& p, std::string_view algorithm) const {
  const FaultRule* rule = MatchRule(p, algorithm);
  if (rule != nullptr && rule->fault.kind == FaultKind::kUnsupported) {
    return Status::Unsupported(rule->fault.message + " [injected by " + rules_.Where(*rule) + "]");
  }
  return inner_->Supports(p, algorithm);
}

const FaultRule* InjectingBackend::CountCall(const Problem& p, std::string_view algorithm) {
  // The history before this call decides its fault; the call is counted (and becomes the
  // previous one) before the fault is performed, as a fatal fault never returns.
  History before;
  {
    std::lock_guard<std::mutex> lock(history_mutex_);
    before = history_;
    history_.runs++;
    history_.last = p;
    history_.last_algorithm = std::string(algorithm);
  }
  return MatchAs(p, algorithm, before);
}

Status InjectingBackend::PerformBeforeRun(const FaultRule& rule) {
  const Fault& fault = rule.fault;
  const std::string where = " [injected by " + rules_.Where(rule) + "]";
  switch (fault.kind) {
    case FaultKind::kSpin:
    case FaultKind::kBlock:
    case FaultKind::kSegv:
    case FaultKind::kAbort:
    case FaultKind::kExit:
      if (fault.kind == FaultKind::kSpin) {
        AnnounceFatal(rules_, rule);
        inner_->HangOnDevice();  // returns only when the backend has no device
        SpinForever();
      }
      PerformFatal(rules_, rule);
    case FaultKind::kError: return Status::Internal(fault.message + where);
    case FaultKind::kUnsupported: return Status::Unsupported(fault.message + where);
    case FaultKind::kOom:
      if (AllocationFails()) {
        return Status::ResourceExhausted("allocating " + std::to_string(kImpossibleBytes) +
                                         " bytes failed" + where);
      }
      return Status::ResourceExhausted("allocating " + std::to_string(kImpossibleBytes) +
                                       " bytes unexpectedly succeeded; reporting OOM anyway" +
                                       where);
    case FaultKind::kSlow:
    case FaultKind::kWrong: return Status::Ok();  // the run goes ahead, changed
  }
  return Status::Internal("unknown fault kind" + where);
}

StatusOr<RunResult> InjectingBackend::Run(const Problem& p, std::string_view algorithm,
                                          ConvTensors<float>& io, const RunOptions& options) {
  const FaultRule* rule = CountCall(p, algorithm);
  if (rule == nullptr) return inner_->Run(p, algorithm, io, options);
  CG_RETURN_IF_ERROR(PerformBeforeRun(*rule));
  const Fault& fault = rule->fault;
  if (fault.kind == FaultKind::kSlow) {
    // As if every execution (warm-up and timed) were slow_ms slower.
    const int64_t executions = std::max(0, options.warmup) + std::max(0, options.repeats);
    std::this_thread::sleep_for(std::chrono::milliseconds(fault.slow_ms * executions));
    CG_ASSIGN_OR_RETURN(RunResult result, inner_->Run(p, algorithm, io, options));
    for (double& t : result.times_ms) t += static_cast<double>(fault.slow_ms);
    result.implementation = Marked(std::move(result.implementation), rules_, *rule);
    return result;
  }
  // kWrong
  CG_ASSIGN_OR_RETURN(RunResult result, inner_->Run(p, algorithm, io, options));
  CorruptTail(ProducedTensor(p, io), fault.wrong_fraction);
  result.implementation = Marked(std::move(result.implementation), rules_, *rule);
  return result;
}

namespace {

// A device call of the inner backend that performs the faults Run would, counted in the
// same call history: guarded execution on device tensors meets the same stack.
class InjectingDeviceCall final : public DeviceCall {
 public:
  using CountFn = std::function<const FaultRule*()>;
  using PerformFn = std::function<Status(const FaultRule&)>;
  InjectingDeviceCall(std::unique_ptr<DeviceCall> inner, const Problem& p, DeviceMemory& memory,
                      CountFn count, PerformFn perform)
      : inner_(std::move(inner)),
        problem_(p),
        memory_(memory),
        count_(std::move(count)),
        perform_(std::move(perform)) {}

  Status Enqueue(const DeviceTensors& io) override {
    const FaultRule* rule = count_();
    if (rule == nullptr) return inner_->Enqueue(io);
    CG_RETURN_IF_ERROR(perform_(*rule));
    if (rule->fault.kind == FaultKind::kSlow) {
      std::this_thread::sleep_for(std::chrono::milliseconds(rule->fault.slow_ms));
      return inner_->Enqueue(io);
    }
    // kWrong: the result, computed, then corrupted where it lies.
    CG_RETURN_IF_ERROR(inner_->Enqueue(io));
    CG_RETURN_IF_ERROR(memory_.Finish());
    const Problem& p = problem_;
    ConvTensors<float> host = ConvTensors<float>::Allocate(p);
    std::vector<float>& produced = ProducedTensor(p, host);
    void* device = p.direction == Direction::kForward        ? io.output
                   : p.direction == Direction::kBackwardData ? io.input
                                                             : io.weight;
    CG_RETURN_IF_ERROR(memory_.Download(device, p.dtype, produced));
    CorruptTail(produced, rule->fault.wrong_fraction);
    return memory_.Upload(produced, p.dtype, device);
  }

  bool exact() const override { return inner_->exact(); }

 private:
  std::unique_ptr<DeviceCall> inner_;
  Problem problem_;
  DeviceMemory& memory_;
  CountFn count_;
  PerformFn perform_;
};

}  // namespace

DeviceMemory* InjectingBackend::device_memory() { return inner_->device_memory(); }

StatusOr<std::unique_ptr<DeviceCall>> InjectingBackend::PrepareDeviceCall(
    const Problem& p, std::string_view algorithm) {
  DeviceMemory* memory = inner_->device_memory();
  CG_ASSIGN_OR_RETURN(std::unique_ptr<DeviceCall> inner, inner_->PrepareDeviceCall(p, algorithm));
  if (memory == nullptr) return inner;
  const std::string name(algorithm);
  return std::unique_ptr<DeviceCall>(new InjectingDeviceCall(
      std::move(inner), p, *memory, [this, p, name] { return CountCall(p, name); },
      [this](const FaultRule& rule) { return PerformBeforeRun(rule); }));
}

double InjectingBackend::first_call_allowance_ms() const {
  return inner_->first_call_allowance_ms();
}

std::optional<FaultKind> InjectingBackend::MatchFault(const Problem& p,
                                                      std::string_view algorithm) const {
  const FaultRule* rule = MatchRule(p, algorithm);
  if (rule == nullptr) return std::nullopt;
  return rule->fault.kind;
}

const FaultRule* InjectingBackend::MatchRule(const Problem& p, std::string_view algorithm) const {
  return MatchAs(p, algorithm, Snapshot());
}

StatusOr<std::unique_ptr<Backend>> WrapWithFaultRules(std::unique_ptr<Backend> inner,
                                                      std::string_view rules_text,
                                                      std::string origin, std::string registry_name,
                                                      int device) {
  if (inner == nullptr) return Status::InvalidArgument("no backend to wrap with fault rules");
  CG_ASSIGN_OR_RETURN(FaultRules rules, ParseFaultRules(rules_text, std::move(origin)));
  return std::unique_ptr<Backend>(std::make_unique<InjectingBackend>(
      std::move(inner), std::move(rules), std::move(registry_name), device));
}

}  // namespace convguard::inject
