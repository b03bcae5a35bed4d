// backends/inject/fault_rules.h — the fault-rules language: a rules file says which
// problems misbehave on a stack and how (see docs/fault-injection.md for the format).
//
//   emulation: emulation of <stack> by fault rules on <backend>
//   stack.architecture: gfx1010
//   spin when pow2(c) && pow2(k) && c >= 16 && (h > 32 || w > 32)
//   error("no kernel") when algo == "winograd" && dtype == f16
//
// A FaultRules value is the parsed file: header directives (emulation text, stack
// fingerprint overrides) and an ordered list of rules, each a Fault and a Predicate.
// The first rule whose predicate matches a (problem, algorithm) decides its fault.
//
// Predicates are C-like integer expressions over the problem's fields, evaluated in
// int64. A predicate whose value is undefined for a problem (division or remainder by
// zero, int64 overflow, `prev.*` on a process's first call) does not match it: that rule
// is skipped, the next one is tried.
//
// Sequence faults: some real hangs only come after earlier calls in the same process, so
// a predicate may also read the process's call history (CallHistory): `calls`, this
// call's position among the process's convolution calls, and `prev.<field>`, the
// previous call's problem and algorithm.
//
// Parsing never throws; every error is one kInvalidArgument naming origin, line and
// column, the offending token and what was expected there.
//
// Thread-safety: values; a parsed FaultRules or Predicate is immutable and may be
// evaluated from several threads at once.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "convguard/backend.h"
#include "convguard/problem.h"
#include "convguard/status.h"
#include "convguard/verdict.h"

namespace convguard::inject {

enum class FaultKind {
  kSpin,         // busy loop forever (a GPU kernel that never finishes)
  kBlock,        // block forever in a system call (a wait that is never signalled)
  kSegv,         // a real SIGSEGV from an invalid memory write
  kAbort,        // std::abort: SIGABRT
  kExit,         // std::_Exit(code): the process dies without a signal
  kWrong,        // run for real, then corrupt part of the result
  kError,        // the backend returns an error Status
  kSlow,         // every execution takes longer, then runs for real
  kOom,          // a real allocation failure, reported as kResourceExhausted
  kUnsupported,  // kUnsupported, from Supports() and Run()
};

// The keyword of a fault in a rules file: "spin", "block", ..., "unsupported".
std::string_view FaultKindName(FaultKind kind);
// True for the faults that stall or end the process (spin, block, segv, abort, exit):
// performing one never returns.
bool IsFatal(FaultKind kind);
// The verdict a probe gets when the fault is performed: HANG for spin and block, CRASH for
// segv, abort and exit, WRONG, ERROR, OOM, UNSUPPORTED for their faults, and SLOW for slow
// (which is OK instead when the added time stays within the first deadline).
VerdictKind VerdictOfFault(FaultKind kind);

struct Fault {
  FaultKind kind = FaultKind::kError;
  double wrong_fraction = 0.0;  // kWrong: in (0, 1]
  int64_t slow_ms = 0;          // kSlow: 0 .. kMaxSlowMs
  int exit_code = 0;            // kExit: 0 .. 255
  std::string message;          // kError, kUnsupported: non-empty

  static constexpr int64_t kMaxSlowMs = 3'600'000;  // one hour per execution

  // As written in a rules file: spin, wrong(0.25), slow(200), error("no kernel").
  std::string ToString() const;
};

// What a predicate may read about the calls the process made before this one (the
// identifiers `calls` and `prev.<field>`). A value, cheap to copy; it does not own
// `previous` or the text of `previous_algorithm`, which must outlive the match.
// The default is the first call of a fresh process: calls == 1, no previous call.
struct CallHistory {
  // This call's position among the process's convolution calls (Backend::Run calls),
  // counting from 1: the calls made so far, this one included. >= 1.
  int64_t calls = 1;
  // The previous call's problem; nullptr on the first call, where every `prev.*` value is
  // undefined (a rule reading it does not match). InjectingBackend keeps previous != nullptr
  // exactly when calls > 1.
  const Problem* previous = nullptr;
  // The algorithm the previous call ran with, as Run was given it (the worker resolves an
  // empty request to the backend's first algorithm before Run). Read only with `previous`.
  std::string_view previous_algorithm;
};

// A compiled predicate. Copies share the immutable expression tree.
class Predicate {
 public:
  // A predicate that matches nothing (what a FaultRule holds before it is parsed).
  Predicate() = default;

  // Parses one predicate. Errors read "column C: ...".
  static StatusOr<Predicate> Parse(std::string_view text);

  // True when `p` (with `algorithm`, in a process serving `device`) satisfies the
  // predicate; false when it does not or when its value is undefined for `p` (division
  // by zero, overflow). `device` is what the identifier `device` reads: the index of the
  // GPU among the probe engine's devices (as `--devices` numbers them), 0 in a process
  // that serves one device or none. `history` is what `calls` and `prev.*` read; the
  // default is the first call of a fresh process.
  bool Matches(const Problem& p, std::string_view algorithm, int device = 0,
               const CallHistory& history = {}) const;

  // Whether the predicate reads `device` (its answer then depends on the device).
  bool uses_device() const { return uses_device_; }
  // Whether the predicate reads `calls` or a `prev.*` field (its answer then depends on
  // what the process ran before).
  bool uses_history() const { return uses_history_; }

  // The source text (for a rule spread over several lines: its lines joined by spaces).
  const std::string& text() const { return text_; }

  struct Node;  // defined in rules_expression.h

 private:
  friend class RulesParser;
  Predicate(std::shared_ptr<const Node> root, std::string text);

  std::shared_ptr<const Node> root_;
  std::string text_;
  bool uses_device_ = false;
  bool uses_history_ = false;
};

struct FaultRule {
  Fault fault;
  Predicate when;
  int line = 0;  // 1-based line of the rules file where the rule starts

  // "<fault> when <predicate>", as the rule was written.
  std::string ToString() const;
};

// `stack.<field>: <value>` directives: fields of StackFingerprint to replace.
struct StackOverrides {
  std::optional<std::string> device;
  std::optional<std::string> architecture;
  std::optional<std::string> driver;
  std::optional<std::string> runtime;
  std::optional<std::string> library;
  std::optional<int64_t> compute_units;
  std::map<std::string, std::string> knobs;  // added to (or replacing) the inner knobs
};

struct FaultRules {
  std::string origin;     // where the text came from: a path or "builtin:<name>"
  std::string digest;     // Fnv1a64Hex of the whole text
  std::string emulation;  // `emulation:` text, "" when the file has none
  StackOverrides stack;
  std::vector<FaultRule> rules;  // in file order

  // The first rule matching (p, algorithm) in a process serving `device`, as the call
  // `history` says it is (see Predicate::Matches), or nullptr. The pointer lives as long
  // as this FaultRules.
  const FaultRule* Match(const Problem& p, std::string_view algorithm, int device = 0,
                         const CallHistory& history = {}) const;

  // Whether some rule reads `device`: the rules then make the devices of one machine
  // different stacks.
  bool UsesDevice() const;
  // Whether some rule reads `calls` or `prev.*`: the fault a problem gets then depends on
  // what the process ran before it.
  bool UsesHistory() const;
  // The digest a stack served by `device` carries: `digest` itself when no rule reads
  // `device`, else FNV-1a of "<digest>@device <device>", so that identical cards whose
  // rules treat them differently get different stack ids (their verdicts differ).
  std::string DigestOnDevice(int device) const;

  // "<origin>:<line>", for messages and evidence.
  std::string Where(const FaultRule& rule) const;

  // Applies the overrides, the emulation text and DigestOnDevice(device) to `fp`. An inner
  // stack that is already emulated or fault-injected keeps its text and digest, chained
  // with ours.
  void ApplyTo(StackFingerprint& fp, int device = 0) const;
};

// Parses a rules file. `origin` names it in errors: "<origin>:<line>:<column>: ...".
StatusOr<FaultRules> ParseFaultRules(std::string_view text, std::string origin);

}  // namespace convguard::inject
