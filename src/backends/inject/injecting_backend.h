// backends/inject/injecting_backend.h — a Backend decorator that makes chosen problems
// misbehave for real, as a rules file says (docs/fault-injection.md).
//
// InjectingBackend forwards everything to an inner backend, except that Run() first looks
// for the first rule matching (problem, algorithm) and performs its fault inside the
// calling process: `spin` really burns a CPU forever, `block` really sleeps in the kernel
// forever, `segv` really takes SIGSEGV, `abort` raises SIGABRT, `exit` ends the process
// with a code and no signal. It exists so that the watchdog, the worker pool and
// everything above them are tested against real misbehaviour, and so that a stack nobody
// has at hand (stacks/emulated-rdna1.rules) can be emulated faithfully on the CPU.
//
// Fatal faults are meant for worker processes. Calling Run() on a problem that matches a
// fatal rule in the deciding process stalls or kills it, by design.
//
// Before a fatal fault, one line naming the fault and its rule goes to stderr (a worker's
// stderr is kept as evidence).
//
// Sequence faults: the backend keeps the call history its rules read (`calls`,
// `prev.<field>`; see CallHistory): how many times Run() was called, and the problem and
// algorithm of the last Run(). A call counts when Run() begins, whatever it then does
// (a fault, an error of the inner backend, a fatal fault that never returns), so `calls`
// is the position of the current call among every Run() of this object, counting from 1.
// Supports(), MatchFault() and MatchRule() count nothing: they answer for the call Run()
// would be next (calls = Run() calls made + 1, previous = the last Run()), which is the
// call a worker makes right after asking Supports().
//
// Ownership: owns the inner backend. Thread-safety: the call history is guarded by a
// mutex, so concurrent Run()s each get a distinct `calls` (in the order they take the
// lock); everything else is as thread-safe as the inner backend (which is to say, in
// general, not at all).
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "backends/inject/fault_rules.h"
#include "convguard/backend.h"

namespace convguard::inject {

class InjectingBackend final : public Backend {
 public:
  // `registry_name` replaces the inner name (in name() and Fingerprint().backend) when it
  // is not empty, e.g. "emulated-rdna1" over the reference backend. `device` is the
  // index, among the probe engine's devices, of the GPU this process serves (what a
  // rule's `device` reads; BackendOptions::device_index).
  // REQUIRES: inner != nullptr, device >= 0.
  InjectingBackend(std::unique_ptr<Backend> inner, FaultRules rules, std::string registry_name = "",
                   int device = 0);

  std::string_view name() const override;
  Status Init() override;
  // The inner fingerprint with the rules' stack overrides, emulation text and digest.
  StackFingerprint Fingerprint() const override;
  std::vector<std::string> Algorithms(const Problem& p) const override;
  // kUnsupported when the first matching rule is unsupported(...); otherwise the inner
  // backend's answer.
  Status Supports(const Problem& p, std::string_view algorithm) const override;
  // Counts the call, then performs the first matching rule's fault (see FaultKind), or
  // runs the inner backend.
  StatusOr<RunResult> Run(const Problem& p, std::string_view algorithm, ConvTensors<float>& io,
                          const RunOptions& options) override;
  double first_call_allowance_ms() const override;
  bool runs_on_shared_device() const override { return inner_->runs_on_shared_device(); }
  int visible_devices() const override { return inner_->visible_devices(); }
  bool HangOnDevice() override { return inner_->HangOnDevice(); }
  Backend& WithoutInjectedFaults() override { return inner_->WithoutInjectedFaults(); }
  // The inner backend's device memory; device calls count in the same call history and
  // perform the same faults as Run (wrong: the result corrupted on the device).
  DeviceMemory* device_memory() override;
  StatusOr<std::unique_ptr<DeviceCall>> PrepareDeviceCall(const Problem& p,
                                                          std::string_view algorithm) override;

  // The fault the next Run() would perform for (p, algorithm), without performing it or
  // counting a call.
  std::optional<FaultKind> MatchFault(const Problem& p, std::string_view algorithm) const;
  // The rule behind it (nullptr when none matches), for explanations.
  const FaultRule* MatchRule(const Problem& p, std::string_view algorithm) const;

  // How many times Run() has been called.
  int64_t run_calls() const;

  const FaultRules& rules() const { return rules_; }
  const Backend& inner() const { return *inner_; }

 private:
  // What the rules read about earlier calls; a snapshot, so that matching needs no lock.
  struct History {
    int64_t runs = 0;             // Run() calls made
    std::optional<Problem> last;  // the last Run()'s problem
    std::string last_algorithm;   // and its algorithm
    // The view of the call that comes after these: calls = runs + 1.
    CallHistory Next() const;
  };
  // The first rule matching (p, algorithm) as the call described by `history`.
  const FaultRule* MatchAs(const Problem& p, std::string_view algorithm,
                           const History& history) const;
  History Snapshot() const;
  // Counts one call of (p, algorithm) and returns the rule that decides it (nullptr: none).
  const FaultRule* CountCall(const Problem& p, std::string_view algorithm);
  // Performs `rule`'s fault before the run: never returns for fatal faults; the error
  // for error, unsupported and oom; OK for slow and wrong (the run goes ahead).
  Status PerformBeforeRun(const FaultRule& rule);

  std::unique_ptr<Backend> inner_;
  FaultRules rules_;
  std::string registry_name_;
  int device_;
  mutable std::mutex history_mutex_;
  History history_;  // guarded by history_mutex_
};

// Parses `rules_text` (errors name `origin`, line and column) and wraps `inner`, for a
// process serving `device` (see InjectingBackend).
StatusOr<std::unique_ptr<Backend>> WrapWithFaultRules(std::unique_ptr<Backend> inner,
                                                      std::string_view rules_text,
                                                      std::string origin,
                                                      std::string registry_name = "",
                                                      int device = 0);

// The part of the result tensor that wrong(fraction) corrupts: the last
// ceil(fraction * size) elements in memory order (at least one of a non-empty tensor).
// Each corrupted element v becomes v + 1 + |v|, which differs from v by at least 1 and
// by at least 100 % of |v|. Exposed for tests and for the documentation's example.
void CorruptTail(std::vector<float>& tensor, double fraction);

}  // namespace convguard::inject
