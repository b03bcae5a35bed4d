// Running a sequence of calls in one worker under the watchdog. See sequence_runner.h.
#include "replay/sequence_runner.h"

#include <algorithm>
#include <cstdio>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "convguard/text_forms.h"
#include "os/clock.h"
#include "os/system.h"
#include "probe/deadline_policy.h"
#include "probe/launcher.h"
#include "probe/watchdog.h"
#include "probe/worker_client.h"
#include "worker/protocol.h"

namespace convguard::replay {
namespace {

using probe::DeadlinePolicy;
using probe::MillisBetween;
using probe::PlusMillis;
using probe::Watchdog;
using probe::WorkerClient;
using probe::WorkerSpec;
using worker::ProbeStage;

// Each call runs once: the application ran it once per logged line.
constexpr int kRunsPerCall = 1;
constexpr double kProgressEveryMs = 1000.0;
constexpr double kAlgorithmsReplyMs = 10000.0;

std::string Ms(double ms) { return std::to_string(static_cast<int64_t>(ms)) + " ms"; }

std::string Shown(const SequenceCall& call, const std::string& algorithm) {
  std::string out =
      ToCanonical(call.problem) + " '" + (algorithm.empty() ? "default" : algorithm) + "'";
  if (!call.origin.empty()) out += " (" + call.origin + ")";
  return out;
}

VerdictKind KindOfReply(worker::ProbeOutcome outcome) {
  switch (outcome) {
    case worker::ProbeOutcome::kOk: return VerdictKind::kOk;
    case worker::ProbeOutcome::kWrong: return VerdictKind::kWrong;
    case worker::ProbeOutcome::kMistrusted: return VerdictKind::kMistrusted;
    case worker::ProbeOutcome::kError: return VerdictKind::kError;
    case worker::ProbeOutcome::kUnsupported: return VerdictKind::kUnsupported;
    case worker::ProbeOutcome::kOom: return VerdictKind::kOom;
  }
  return VerdictKind::kError;
}

}  // namespace

struct SequenceRunner::Impl {
  ReplayOptions options;
  ReplayCallbacks callbacks;
  const os::Clock& clock = os::RealClock();
  WorkerSpec spec;
  std::string stack_id;
  DeadlinePolicy policy;
  std::unique_ptr<WorkerClient> setup;    // lists algorithms; killed before the first run
  std::unique_ptr<WorkerClient> standby;  // spawned, hello not yet read
  int64_t next_id = 1;

  Impl(const ReplayOptions& o, const ReplayCallbacks& c)
      : options(o), callbacks(c), policy(o.probe.deadlines) {}

  ~Impl() {
    if (setup) (void)setup->Kill(options.probe.deadlines.reap_grace_ms);
    if (standby) (void)standby->Kill(options.probe.deadlines.reap_grace_ms);
  }

  void Event(const std::string& text) const {
    if (callbacks.on_event) callbacks.on_event(text);
  }
  void Notice(const std::string& text) const {
    if (callbacks.on_notice) callbacks.on_notice(text);
  }

  // Waits for messages from `w` until `deadline`; returns what arrived (empty at the
  // deadline, at EOF or on an interrupt).
  StatusOr<std::vector<worker::Message>> Await(WorkerClient& w, os::TimePoint deadline) {
    for (;;) {
      CG_ASSIGN_OR_RETURN(std::vector<worker::Message> got, w.Pump());
      if (!got.empty() || w.eof()) return got;
      const int fds[2] = {w.read_fd(), w.stderr_fd()};
      CG_ASSIGN_OR_RETURN(std::vector<int> ready,
                          os::PollReadable(fds, os::Deadline::At(deadline)));
      w.PumpStderr();
      if (ready.empty() && (clock.Now() >= deadline || os::InterruptRequested())) return got;
    }
  }

  void SpawnStandby() {
    if (standby || options.probe.standby_workers <= 0) return;
    StatusOr<std::unique_ptr<WorkerClient>> spawned = WorkerClient::Spawn(spec);
    if (spawned.ok()) {
      standby = std::move(*spawned);
    } else {
      Event("could not start a standby worker: " + spawned.status().message());
    }
  }

  // A fresh worker of the stack: the standby one if there is one, else a new one.
  StatusOr<std::unique_ptr<WorkerClient>> FreshWorker() {
    std::unique_ptr<WorkerClient> w;
    if (standby) {
      std::unique_ptr<WorkerClient> candidate = std::move(standby);
      if (Status s = candidate->AwaitHello(policy.StartupDeadlineMs()); s.ok()) {
        w = std::move(candidate);
      } else {
        Event("a standby worker did not start (" + s.message() + "); starting another");
      }
    }
    if (!w) {
      CG_ASSIGN_OR_RETURN(w, WorkerClient::Start(spec, policy.StartupDeadlineMs()));
    }
    if (w->hello().fingerprint.Id() != stack_id) {
      return Status::Internal("a new worker reports stack " + w->hello().fingerprint.Id() +
                              ", not " + stack_id + " as before; the stack changed mid-replay");
    }
    SpawnStandby();
    return w;
  }

  // The known-good problem in the setup worker, as a health probe (injected faults do not
  // apply): its time calibrates the deadlines before anything has been observed.
  Status Calibrate() {
    worker::ProbeRequest r;
    r.id = next_id++;
    r.problem = ToCanonical(probe::CalibrationProblem());
    r.check = CheckMode::kNone;
    r.health = true;
    r.warmup = 1;
    r.repeats = 3;
    CG_RETURN_IF_ERROR(setup->Send(worker::EncodeProbeRequest(r)));
    const os::TimePoint deadline =
        PlusMillis(clock.Now(), std::min(10000.0, policy.StartupDeadlineMs()));
    for (;;) {
      CG_ASSIGN_OR_RETURN(std::vector<worker::Message> got, Await(*setup, deadline));
      for (const worker::Message& m : got) {
        if (!m.result || m.result->id != r.id) continue;
        if (m.result->outcome == worker::ProbeOutcome::kOk && !m.result->times_ms.empty()) {
          std::vector<double> t = m.result->times_ms;
          std::sort(t.begin(), t.end());
          policy.Calibrate(probe::CalibrationProblem().flops(), t[t.size() / 2]);
          Event("calibrated on " + r.problem);
        } else {
          Event("calibration gave '" + std::string(worker::ProbeOutcomeName(m.result->outcome)) +
                "'; deadlines use the assumed throughput");
        }
        return Status::Ok();
      }
      if (setup->eof() || clock.Now() >= deadline || os::InterruptRequested()) {
        Event("calibration did not finish; deadlines use the assumed throughput");
        (void)setup->Kill(options.probe.deadlines.reap_grace_ms);
        setup.reset();
        return Status::Ok();
      }
    }
  }

  StatusOr<std::vector<std::string>> Algorithms(const std::string& canonical) {
    if (!setup) {
      CG_ASSIGN_OR_RETURN(setup, WorkerClient::Start(spec, policy.StartupDeadlineMs()));
    }
    worker::AlgorithmsRequest r{next_id++, canonical};
    CG_RETURN_IF_ERROR(setup->Send(worker::EncodeAlgorithmsRequest(r)));
    const os::TimePoint deadline = PlusMillis(clock.Now(), kAlgorithmsReplyMs);
    for (;;) {
      CG_ASSIGN_OR_RETURN(std::vector<worker::Message> got, Await(*setup, deadline));
      for (const worker::Message& m : got) {
        if (!m.algorithms_reply || m.algorithms_reply->id != r.id) continue;
        if (!m.algorithms_reply->message.empty()) {
          return Status::InvalidArgument(m.algorithms_reply->message);
        }
        return m.algorithms_reply->names;
      }
      if (setup->eof() || clock.Now() >= deadline || os::InterruptRequested()) {
        (void)setup->Kill(options.probe.deadlines.reap_grace_ms);
        setup.reset();
        return Status::Internal("the worker did not list its algorithms for " + canonical);
      }
    }
  }

  std::string AlgorithmForDeadline(const SequenceCall& call) const {
    return call.algorithm.empty() ? std::string("default") : call.algorithm;
  }

  StatusOr<CallRun> Run(const std::vector<SequenceCall>& calls, bool wait_to_confirm,
                        double run_deadline_ms, const std::string& what);
};

StatusOr<CallRun> SequenceRunner::Impl::Run(const std::vector<SequenceCall>& calls,
                                            bool wait_to_confirm, double run_deadline_ms,
                                            const std::string& what) {
  if (setup) {
    // The setup worker is not needed once the calls are known; it must not hold a
    // device that the sequence's worker uses.
    (void)setup->Send(worker::EncodeBye());
    (void)setup->Kill(options.probe.deadlines.reap_grace_ms);
    setup.reset();
  }
  CG_ASSIGN_OR_RETURN(std::unique_ptr<WorkerClient> w, FreshWorker());
  Event("worker " + std::to_string(w->pid()) + " runs " + std::to_string(calls.size()) +
        " calls (" + what + ")");
  Watchdog watchdog(clock);
  CallRun out;
  const os::TimePoint started = clock.Now();
  const os::TimePoint run_deadline = PlusMillis(started, run_deadline_ms);
  os::TimePoint next_progress = PlusMillis(started, kProgressEveryMs);
  const int64_t total = static_cast<int64_t>(calls.size());

  auto kill = [&]() -> std::string {
    StatusOr<os::ExitInfo> killed = w->Kill(options.probe.deadlines.reap_grace_ms);
    std::string text =
        killed.ok() ? "worker " + killed->ToString() : "KILL FAILED: " + killed.status().message();
    if (const std::string tail = w->TakeStderrTail(); !tail.empty()) {
      text += "; worker stderr: " + tail;
    }
    return text;
  };
  auto finish = [&](CallRun r) {
    r.elapsed_ms = MillisBetween(started, clock.Now());
    return r;
  };

  // Request i has id first_id + i. The next request is written while the current one
  // runs: the worker reads it only when it is done with this one, so calls still run one
  // at a time, in order, but the round trip between two calls costs no wait.
  const int64_t first_id = next_id;
  next_id += total;
  auto request = [&](size_t i) {
    worker::ProbeRequest r;
    r.id = first_id + static_cast<int64_t>(i);
    r.problem = ToCanonical(calls[i].problem);
    r.algorithm = calls[i].algorithm;
    r.seed = options.probe.seed;
    r.warmup = 0;
    r.repeats = kRunsPerCall;
    r.check = options.probe.check;
    r.sample_points = options.probe.sample_points;
    return worker::EncodeProbeRequest(r);
  };
  std::deque<worker::Message> pending;  // read, not yet handled (they are in id order)

  for (size_t i = 0; i < calls.size(); ++i) {
    const SequenceCall& call = calls[i];
    const std::string label = "call " + std::to_string(i + 1) + " of " + std::to_string(total);
    const int64_t id = first_id + static_cast<int64_t>(i);
    const std::string algorithm_for_deadline = AlgorithmForDeadline(call);
    const double first_run_ms =
        policy.RunDeadlineMs(call.problem, kRunsPerCall, algorithm_for_deadline);
    bool extended = false;  // waiting past the first deadline, up to the confirmation one
    out.algorithms.push_back(call.algorithm);

    Status sent = Status::Ok();
    if (i == 0) sent = w->Send(request(0));
    if (!sent.ok()) {
      // The pipe closed: the worker died after the previous call returned.
      StatusOr<os::ExitInfo> exit = w->AwaitExit(options.probe.deadlines.reap_grace_ms);
      out.kind = VerdictKind::kCrash;
      out.failed_at = static_cast<int64_t>(i);
      out.calls_run = static_cast<int64_t>(i) + 1;
      out.message = label + " " + Shown(call, call.algorithm) +
                    ": the worker was gone before the call (" +
                    (exit.ok() ? exit->ToString() : exit.status().message()) + ")";
      return finish(std::move(out));
    }
    watchdog.Launch(0, policy.PrepDeadlineMs(call.problem));
    // A write that fails means the worker is gone: its end (EOF) decides below.
    if (i + 1 < calls.size()) (void)w->Send(request(i + 1));

    for (;;) {
      if (os::InterruptRequested()) {
        (void)kill();
        out.interrupted = true;
        out.calls_run = static_cast<int64_t>(i);
        return finish(std::move(out));
      }
      os::TimePoint wake = std::min(*watchdog.NextDeadline(), run_deadline);
      if (callbacks.on_progress) wake = std::min(wake, next_progress);
      if (pending.empty()) {
        CG_ASSIGN_OR_RETURN(std::vector<worker::Message> got, Await(*w, wake));
        for (worker::Message& m : got) pending.push_back(std::move(m));
      }
      std::optional<worker::ProbeReply> reply;
      while (!pending.empty() && !reply) {
        worker::Message m = std::move(pending.front());
        pending.pop_front();
        if (m.phase && m.phase->id == id) {
          const double stage_ms = m.phase->phase == ProbeStage::kRun
                                      ? first_run_ms
                                      : policy.CheckDeadlineMs(call.problem, options.probe.check,
                                                               options.probe.sample_points);
          watchdog.EnterStage(0, m.phase->phase, stage_ms);
        } else if (m.result && m.result->id == id) {
          reply = std::move(*m.result);
        }
      }
      const os::TimePoint now = clock.Now();
      if (callbacks.on_progress && now >= next_progress) {
        callbacks.on_progress(static_cast<int64_t>(i), total, what);
        next_progress = PlusMillis(now, kProgressEveryMs);
      }
      if (reply) {
        watchdog.Land(0);
        if (!reply->algorithm.empty()) out.algorithms.back() = reply->algorithm;
        const VerdictKind kind = KindOfReply(reply->outcome);
        if (kind == VerdictKind::kOk) {
          if (extended) {
            ++out.slow_calls;
          } else if (!reply->times_ms.empty()) {
            policy.Observe(call.problem, reply->algorithm, reply->times_ms.front());
          }
          break;
        }
        if (kind == VerdictKind::kUnsupported) {
          ++out.unsupported_calls;
          break;
        }
        out.kind = kind;
        out.failed_at = static_cast<int64_t>(i);
        out.calls_run = static_cast<int64_t>(i) + 1;
        out.message = label + " " + Shown(call, out.algorithms.back()) + ": " +
                      std::string(VerdictName(kind)) + ": " + reply->message;
        if (const std::string tail = w->TakeStderrTail(); !tail.empty()) {
          out.message += "; worker stderr: " + tail;
        }
        (void)w->Send(worker::EncodeBye());
        (void)w->Kill(options.probe.deadlines.reap_grace_ms);
        return finish(std::move(out));
      }
      if (w->eof()) {
        const Watchdog::Flight flight = watchdog.Of(0);
        const bool mid_frame = w->died_mid_frame();
        StatusOr<os::ExitInfo> exit = w->AwaitExit(options.probe.deadlines.reap_grace_ms);
        out.kind = VerdictKind::kCrash;
        out.failed_at = static_cast<int64_t>(i);
        out.calls_run = static_cast<int64_t>(i) + 1;
        out.message = label + " " + Shown(call, call.algorithm) + ": worker " +
                      (exit.ok() ? exit->ToString() : exit.status().message()) + " during the " +
                      std::string(worker::ProbeStageName(flight.stage)) + " stage";
        if (mid_frame) out.message += ", in the middle of a reply";
        if (const std::string tail = w->TakeStderrTail(); !tail.empty()) {
          out.message += "; worker stderr: " + tail;
        }
        return finish(std::move(out));
      }
      if (now >= run_deadline) {
        out.kind = VerdictKind::kSlow;
        out.failed_at = static_cast<int64_t>(i);
        out.calls_run = static_cast<int64_t>(i) + 1;
        out.message = "the run of " + std::to_string(total) + " calls missed its deadline of " +
                      Ms(run_deadline_ms) + " during " + label + " " + Shown(call, call.algorithm) +
                      "; " + kill();
        return finish(std::move(out));
      }
      if (watchdog.Overdue().empty()) continue;
      const Watchdog::Flight flight = watchdog.Of(0);
      const double stage_elapsed = watchdog.StageElapsedMs(0);
      if (flight.stage == ProbeStage::kRun && wait_to_confirm && !extended) {
        // The state that may hang is this process's: waiting longer in it is the only
        // confirmation there is (a fresh worker would not have made the earlier calls).
        extended = true;
        const double confirm_ms = policy.ConfirmDeadlineMs(first_run_ms);
        Notice(label + " " + Shown(call, call.algorithm) + " missed its first deadline (" +
               Ms(first_run_ms) + "); waiting up to " + Ms(confirm_ms) + " in the same worker");
        watchdog.EnterStage(0, ProbeStage::kRun, std::max(0.0, confirm_ms - stage_elapsed));
        continue;
      }
      std::string how =
          "missed the " + std::string(worker::ProbeStageName(flight.stage)) +
          "-stage deadline of " +
          Ms(extended ? policy.ConfirmDeadlineMs(first_run_ms) : flight.stage_deadline_ms);
      if (extended) how += " (its first deadline was " + Ms(first_run_ms) + ")";
      out.kind = VerdictKind::kHang;
      out.failed_at = static_cast<int64_t>(i);
      out.calls_run = static_cast<int64_t>(i) + 1;
      out.message = label + " " + Shown(call, call.algorithm) + " " + how + "; " + kill();
      return finish(std::move(out));
    }
  }
  out.calls_run = total;
  if (callbacks.on_progress) callbacks.on_progress(total, total, what);
  (void)w->Send(worker::EncodeBye());
  (void)w->Kill(options.probe.deadlines.reap_grace_ms);
  return finish(std::move(out));
}

SequenceRunner::SequenceRunner(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
SequenceRunner::~SequenceRunner() = default;

StatusOr<std::unique_ptr<SequenceRunner>> SequenceRunner::Start(const ReplayOptions& options,
                                                                Store* store,
                                                                const ReplayCallbacks& callbacks) {
  auto impl = std::make_unique<Impl>(options, callbacks);
  CG_ASSIGN_OR_RETURN(const WorkerSpec base, probe::BaseWorkerSpec(options.probe));
  impl->spec = base;
  CG_ASSIGN_OR_RETURN(impl->setup, WorkerClient::Start(base, impl->policy.StartupDeadlineMs()));
  const worker::Hello first = impl->setup->hello();
  CG_RETURN_IF_ERROR(probe::CheckDeviceSelection(options.probe.devices, first.visible_devices,
                                                 options.probe.backend));
  if (first.visible_devices > 0) {
    const int device = options.probe.devices.empty() ? 0 : options.probe.devices.front();
    impl->spec = probe::PinnedWorkerSpec(base, device);
    if (device != 0 || !probe::UnpinnedWorkerServesDeviceZero()) {
      (void)impl->setup->Kill(options.probe.deadlines.reap_grace_ms);
      CG_ASSIGN_OR_RETURN(impl->setup,
                          WorkerClient::Start(impl->spec, impl->policy.StartupDeadlineMs()));
    }
  }
  const worker::Hello& hello = impl->setup->hello();
  impl->stack_id = hello.fingerprint.Id();
  impl->policy.SetBackendCompileAllowance(hello.first_call_allowance_ms,
                                          hello.first_call_allowance_ms_by_algorithm);
  impl->SpawnStandby();  // starts while the setup worker calibrates
  CG_RETURN_IF_ERROR(impl->Calibrate());
  if (store != nullptr) {
    CG_RETURN_IF_ERROR(store->PutStack(hello.fingerprint));
    VerdictFilter ok;
    ok.stack_id = impl->stack_id;
    ok.kind = VerdictKind::kOk;
    CG_ASSIGN_OR_RETURN(std::vector<Verdict> known, store->ListVerdicts(ok));
    int64_t observed = 0;
    for (const Verdict& v : known) {
      StatusOr<Problem> p = ParseProblem(v.problem);
      if (!p.ok() || v.time_ms_median <= 0.0) continue;
      impl->policy.Observe(*p, v.algorithm, v.time_ms_median);
      ++observed;
    }
    if (observed > 0) {
      impl->Event("deadlines learned from " + std::to_string(observed) +
                  " OK verdicts in the store");
    }
  }
  std::unique_ptr<SequenceRunner> runner(new SequenceRunner(std::move(impl)));
  runner->stack_ = hello.fingerprint;
  return runner;
}

StatusOr<std::vector<SequenceCall>> SequenceRunner::Expand(const std::vector<SequenceCall>& calls) {
  std::map<std::string, std::vector<std::string>> algorithms_of;
  std::vector<SequenceCall> out;
  out.reserve(calls.size());
  for (const SequenceCall& call : calls) {
    if (!call.find && !call.algorithm.empty()) {
      out.push_back(call);
      continue;
    }
    const std::string canonical = ToCanonical(call.problem);
    auto it = algorithms_of.find(canonical);
    if (it == algorithms_of.end()) {
      CG_ASSIGN_OR_RETURN(std::vector<std::string> names, impl_->Algorithms(canonical));
      it = algorithms_of.emplace(canonical, std::move(names)).first;
    }
    if (!call.find) {
      // The backend's default is the first algorithm it offers (what a worker runs for
      // an empty name): named here, so that every verdict and repro says which ran.
      SequenceCall one = call;
      if (!it->second.empty()) one.algorithm = it->second.front();
      out.push_back(std::move(one));
      continue;
    }
    if (it->second.empty()) {
      // Nothing is offered: one call with the default, which the worker answers as
      // UNSUPPORTED.
      SequenceCall one = call;
      one.find = false;
      out.push_back(std::move(one));
      continue;
    }
    for (const std::string& name : it->second) {
      SequenceCall one = call;
      one.find = false;
      one.algorithm = name;
      out.push_back(std::move(one));
    }
  }
  return out;
}

double SequenceRunner::DefaultRunDeadlineMs(const std::vector<SequenceCall>& calls) const {
  double total = 0.0;
  double longest_confirmation = 0.0;
  for (const SequenceCall& call : calls) {
    const double run =
        impl_->policy.RunDeadlineMs(call.problem, kRunsPerCall, impl_->AlgorithmForDeadline(call));
    total += impl_->policy.PrepDeadlineMs(call.problem) + run +
             impl_->policy.CheckDeadlineMs(call.problem, impl_->options.probe.check,
                                           impl_->options.probe.sample_points);
    longest_confirmation = std::max(longest_confirmation, impl_->policy.ConfirmDeadlineMs(run));
  }
  // Room for one call to be waited on until its confirmation deadline: a hang must be
  // decided as a HANG, not cut short by the run's own deadline.
  return total + longest_confirmation;
}

StatusOr<CallRun> SequenceRunner::Run(const std::vector<SequenceCall>& calls, bool wait_to_confirm,
                                      double run_deadline_ms, const std::string& what) {
  return impl_->Run(calls, wait_to_confirm, run_deadline_ms, what);
}

}  // namespace convguard::replay
