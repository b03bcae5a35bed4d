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
// Ownership: owns the inner backend. Thread-safety: as the inner backend (none).
#pragma once

#include <memory>
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
  // Performs the first matching rule's fault (see FaultKind), or runs the inner backend.
  StatusOr<RunResult> Run(const Problem& p, std::string_view algorithm, ConvTensors<float>& io,
                          const RunOptions& options) override;
  double first_call_allowance_ms() const override;
  bool runs_on_shared_device() const override { return inner_->runs_on_shared_device(); }
  int visible_devices() const override { return inner_->visible_devices(); }
  bool HangOnDevice() override { return inner_->HangOnDevice(); }
  Backend& WithoutInjectedFaults() override { return inner_->WithoutInjectedFaults(); }

  // The fault Run() would perform for (p, algorithm), without performing it.
  std::optional<FaultKind> MatchFault(const Problem& p, std::string_view algorithm) const;
  // The rule behind it (nullptr when none matches), for explanations.
  const FaultRule* MatchRule(const Problem& p, std::string_view algorithm) const;

  const FaultRules& rules() const { return rules_; }
  const Backend& inner() const { return *inner_; }

 private:
  std::unique_ptr<Backend> inner_;
  FaultRules rules_;
  std::string registry_name_;
  int device_;
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
