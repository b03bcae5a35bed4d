// Replay: a sequence in one worker, each problem alone, minimisation, the stored verdict.
// Contract in convguard/replay.h; docs/replay.md.
#include "convguard/replay.h"

#include <algorithm>
#include <cstdio>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "convguard/text_forms.h"
#include "os/clock.h"
#include "os/system.h"
#include "probe/watchdog.h"
#include "replay/minimise.h"
#include "replay/sequence_runner.h"

namespace convguard {
namespace {

using replay::CallRun;
using replay::SequenceRunner;

std::string Seconds(double ms) {
  char text[32];
  std::snprintf(text, sizeof text, "%.1f s", ms / 1000.0);
  return text;
}

// The call as it ran: its problem and the algorithm the worker resolved.
std::string RanAs(const SequenceCall& call, const std::string& algorithm) {
  return ToCanonical(call.problem) + " " +
         (algorithm.empty() ? (call.algorithm.empty() ? std::string("default") : call.algorithm)
                            : algorithm);
}

Status CheckOptions(const CallSequence& sequence, const ReplayOptions& options) {
  if (sequence.calls.empty()) {
    return Status::InvalidArgument("the sequence '" + sequence.origin + "' holds no call");
  }
  if (options.minimise && !(options.minimise_budget_ms > 0.0)) {
    return Status::InvalidArgument(
        "a minimisation budget must be more than 0 seconds (it bounds how long candidates "
        "are run)");
  }
  if (options.sequence_deadline_ms < 0.0) {
    return Status::InvalidArgument("a sequence deadline cannot be negative (0: computed)");
  }
  return Status::Ok();
}

std::string ReproFor(const ReplayOptions& options, const std::string& list) {
  std::string r = options.repro_command + " replay " + list + " --backend " + options.probe.backend;
  if (!options.probe.fault_rules_path.empty()) r += " --inject " + options.probe.fault_rules_path;
  if (!options.probe.devices.empty()) {
    r += " --devices " + std::to_string(options.probe.devices.front());
  }
  // The minimal list holds only runnable calls: flags about reading the source do not
  // apply to it.
  if (list != options.minimal_list_path) {
    for (const std::string& flag : options.repro_flags) r += " " + flag;
  }
  return r;
}

}  // namespace

StatusOr<ReplayResult> Replay(const CallSequence& sequence, const ReplayOptions& options,
                              Store* store, const ReplayCallbacks& callbacks) {
  CG_RETURN_IF_ERROR(CheckOptions(sequence, options));
  auto notice = [&](const std::string& text) {
    if (callbacks.on_notice) callbacks.on_notice(text);
  };
  CG_ASSIGN_OR_RETURN(std::unique_ptr<SequenceRunner> runner,
                      SequenceRunner::Start(options, store, callbacks));
  ReplayResult result;
  result.stack = runner->stack();
  CG_ASSIGN_OR_RETURN(result.expanded, runner->Expand(sequence.calls));
  const std::vector<SequenceCall>& calls = result.expanded;

  SequenceVerdict& v = result.verdict;
  v.stack_id = result.stack.Id();
  v.digest = SequenceDigest(sequence.calls);
  v.source = sequence.origin;
  v.calls = static_cast<int64_t>(calls.size());
  v.tool_version = CONVGUARD_VERSION;
  v.emulated = result.stack.is_emulated();
  v.repro = ReproFor(options, sequence.origin);

  const double deadline = options.sequence_deadline_ms > 0.0 ? options.sequence_deadline_ms
                                                             : runner->DefaultRunDeadlineMs(calls);
  CG_ASSIGN_OR_RETURN(CallRun full,
                      runner->Run(calls, /*wait_to_confirm=*/true, deadline, "replay"));
  v.kind = full.kind;
  v.calls_run = full.calls_run;
  v.failed_at = full.failed_at;
  v.slow_calls = full.slow_calls;
  v.unsupported_calls = full.unsupported_calls;
  v.message = full.message;
  v.elapsed_ms = full.elapsed_ms;
  if (full.failed_at >= 0) {
    const SequenceCall& failed = calls[static_cast<size_t>(full.failed_at)];
    v.failed_problem = ToCanonical(failed.problem);
    v.failed_algorithm = full.algorithms.back();
    v.failed_origin = failed.origin;
  }
  v.recorded_at = os::UtcNowIso8601();
  if (full.interrupted) {
    result.interrupted = true;
    return result;
  }

  // Each distinct call of those run, alone in a fresh worker.
  if (options.alone) {
    std::set<std::string> seen;
    for (size_t i = 0; i < static_cast<size_t>(full.calls_run); ++i) {
      const SequenceCall& call = calls[i];
      const std::string key = RanAs(call, full.algorithms[i]);
      if (!seen.insert(key).second) continue;
      SequenceCall one = call;
      if (!full.algorithms[i].empty()) one.algorithm = full.algorithms[i];
      CG_ASSIGN_OR_RETURN(CallRun alone, runner->Run({one}, /*wait_to_confirm=*/true,
                                                     runner->DefaultRunDeadlineMs({one}), "alone"));
      if (alone.interrupted) {
        result.interrupted = true;
        return result;
      }
      v.alone.push_back(
          ProblemAlone{ToCanonical(call.problem), alone.algorithms.front(), alone.kind});
    }
  }

  // Minimisation: the smallest sub-sequence that fails the same way at the same problem.
  const bool minimisable = v.kind != VerdictKind::kOk && v.kind != VerdictKind::kSlow;
  if (options.minimise && minimisable) {
    const std::string target_problem = v.failed_problem;
    const VerdictKind target_kind = v.kind;
    const os::TimePoint budget_end =
        probe::PlusMillis(os::RealClock().Now(), options.minimise_budget_ms);
    const size_t length = static_cast<size_t>(full.calls_run);
    // A candidate can fail at the target only at a call of the target problem: one
    // without any passes without being run, and calls after its last one are dropped.
    replay::CandidateTest test =
        [&](const std::vector<size_t>& candidate) -> StatusOr<std::optional<size_t>> {
      size_t last = candidate.size();
      for (size_t i = candidate.size(); i-- > 0;) {
        if (ToCanonical(calls[candidate[i]].problem) == target_problem) {
          last = i;
          break;
        }
      }
      if (last == candidate.size()) return std::optional<size_t>();
      std::vector<SequenceCall> run;
      for (size_t i = 0; i <= last; ++i) run.push_back(calls[candidate[i]]);
      CG_ASSIGN_OR_RETURN(CallRun got, runner->Run(run, /*wait_to_confirm=*/false,
                                                   runner->DefaultRunDeadlineMs(run), "minimise"));
      if (got.interrupted) return std::optional<size_t>();
      if (got.kind == target_kind && got.failed_at >= 0 &&
          ToCanonical(run[static_cast<size_t>(got.failed_at)].problem) == target_problem) {
        return std::optional<size_t>(static_cast<size_t>(got.failed_at));
      }
      return std::optional<size_t>();
    };
    const os::TimePoint minimise_started = os::RealClock().Now();
    notice("minimise: " + std::to_string(length) + " calls to start from, budget " +
           Seconds(options.minimise_budget_ms));
    CG_ASSIGN_OR_RETURN(
        replay::MinimiseResult m,
        replay::MinimiseSequence(
            length, test, [&] { return os::RealClock().Now() < budget_end; },
            [&](size_t kept, int64_t tests) {
              notice("minimise: " + std::to_string(kept) + " calls still fail (test " +
                     std::to_string(tests) + ", " +
                     Seconds(probe::MillisBetween(minimise_started, os::RealClock().Now())) + ")");
            }));
    for (size_t i : m.kept) result.minimal.push_back(calls[i]);
    for (const SequenceCall& c : result.minimal) v.minimal.push_back(SequenceCallKey(c));
    if (m.interrupted) {
      result.interrupted = true;
      return result;
    }
    // Candidates were judged on their first deadline; the result is confirmed as the
    // full replay was, with the confirmation wait.
    CG_ASSIGN_OR_RETURN(CallRun confirm,
                        runner->Run(result.minimal, /*wait_to_confirm=*/true,
                                    runner->DefaultRunDeadlineMs(result.minimal), "confirm"));
    if (confirm.interrupted) {
      result.interrupted = true;
      return result;
    }
    const bool reproduced =
        confirm.kind == target_kind && confirm.failed_at >= 0 &&
        ToCanonical(result.minimal[static_cast<size_t>(confirm.failed_at)].problem) ==
            target_problem;
    std::string note;
    if (!reproduced) {
      note = "not reproduced: the minimal candidate gave " +
             std::string(VerdictName(confirm.kind)) +
             " when run again with the confirmation deadline";
    } else if (m.out_of_budget) {
      note = "budget of " + Seconds(options.minimise_budget_ms) + " spent after " +
             std::to_string(m.tests) + " tests: not proven minimal";
    } else {
      note = "minimal: removing any one call makes it pass (" + std::to_string(m.tests) +
             " tests, " + Seconds(probe::MillisBetween(minimise_started, os::RealClock().Now())) +
             ")";
    }
    v.minimal_note = note;
    notice("minimise: " + std::to_string(result.minimal.size()) + " calls; " + note);
  }
  if (!options.minimal_list_path.empty() && !result.minimal.empty()) {
    v.repro = ReproFor(options, options.minimal_list_path);
  }
  if (store != nullptr && !result.interrupted) {
    CG_ASSIGN_OR_RETURN(v.id, store->AddSequenceVerdict(v));
  }
  return result;
}

}  // namespace convguard
