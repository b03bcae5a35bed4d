// The probe engine: a single-threaded event loop over a pool of warm workers per device.
// See include/convguard/probe.h for the contract and docs/probe-engine.md for the policy.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <deque>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <thread>

#include "convguard/probe.h"
#include "convguard/text_forms.h"
#include "os/clock.h"
#include "os/system.h"
#include "probe/deadline_policy.h"
#include "probe/launcher.h"
#include "probe/stack_identity.h"
#include "probe/watchdog.h"
#include "probe/worker_client.h"
#include "worker/protocol.h"

namespace convguard {
namespace {

using probe::CalibrationProblem;
using probe::DeadlinePolicy;
using probe::MillisBetween;
using probe::PlusMillis;
using probe::Watchdog;
using probe::WorkerClient;
using probe::WorkerSpec;
using worker::ProbeStage;

double Median(std::vector<double> v) {
  if (v.empty()) return 0.0;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

enum class TaskKind { kFirst, kConfirm, kRerun };

struct Job {
  Problem problem;
  std::string canonical;
  std::string algorithm;  // resolved
  std::string stack_id;
  bool claimed = false;
  double first_deadline_ms = 0.0;  // the deadline the first attempt missed
  std::string first_miss;          // how it missed
  std::vector<Attempt> attempts;
  bool decided = false;
  bool always_decide = false;  // ProbeJob::always_decide
  int outside_kills = 0;       // its worker was SIGKILLed by someone else (re-run each time)
};

// "12.0 GiB", "512 MiB": a worker's address-space cap, for evidence.
std::string BytesText(uint64_t bytes) {
  char text[32];
  if (bytes >= (uint64_t{1} << 30)) {
    std::snprintf(text, sizeof text, "%.1f GiB", static_cast<double>(bytes) / (1 << 30));
  } else {
    std::snprintf(text, sizeof text, "%.0f MiB", static_cast<double>(bytes) / (1 << 20));
  }
  return text;
}

// How often a probe whose worker something outside convguard SIGKILLed is run again
// before the death stands as its CRASH verdict.
constexpr int kMaxOutsideKills = 3;

struct Task {
  size_t job = 0;
  TaskKind kind = TaskKind::kFirst;
};

// What the engine knows of a probe in flight; its stages and their deadlines are the
// watchdog's.
struct Flight {
  Task task;
  int64_t request_id = 0;
  double run_deadline_ms = 0.0;
  bool suspect = false;  // overlapped a hang pending on the same device
  // The worker had run no job's probe before this one (a known-good probe at most): a
  // first-deadline miss is then confirmed in place (waited for up to the confirmation
  // deadline) instead of in another fresh worker. Never set for requests sent ahead.
  bool fresh_worker = false;
  bool confirming_in_place = false;  // that wait is on
  // Written while the worker was busy with another request: it waited in the pipe, and
  // its watchdog started when the one before it ended, so it has no round trip of its own.
  bool written_ahead = false;
  os::TimePoint written_at;  // when the request began to be written (not written ahead)
  std::string notes;
};

struct Pool {
  int device = -1;  // -1: the CPU
  WorkerSpec spec;
  StackFingerprint stack;
  std::string stack_id;
  bool shares_device = false;
  std::unique_ptr<DeadlinePolicy> policy;
  std::vector<size_t> slots;
  // After a hang or crash on a shared device (a GPU), the next fresh worker first runs a
  // small known-good probe: the device must prove usable before it judges anything else.
  bool needs_health_check = false;
  int64_t ok_observed = 0;  // OK probes the policy learned from (for --verbose)
  // Started workers waiting to replace one that is killed (ProbeOptions::standby_workers),
  // oldest first; their hello is read when one is taken.
  std::deque<std::unique_ptr<WorkerClient>> standby;
  // Standby workers added because a swap had to wait for a start
  // (ProbeOptions::standby_workers_max).
  int standby_added = 0;
};

struct Slot {
  size_t pool = 0;
  std::unique_ptr<WorkerClient> worker;
  int64_t probes_served = 0;  // the engine's known-good probes included
  int64_t jobs_served = 0;    // replies to jobs' probes
  std::optional<Flight> flight;
  // Requests written to the worker while `flight` runs (ProbeOptions::requests_ahead),
  // in order: the worker reads each when it has replied to the one before. The first
  // becomes the flight, and its watchdog starts, when the flight's reply is read; when the
  // worker is killed or dies first, their tasks go back to the queue.
  std::deque<Flight> ahead;
};

class EngineImpl final : public ProbeEngine {
 public:
  EngineImpl(ProbeOptions options, Store* store, ProbeCallbacks callbacks, const os::Clock& clock)
      : options_(std::move(options)),
        store_(store),
        callbacks_(std::move(callbacks)),
        clock_(clock),
        watchdog_(clock) {}

  ~EngineImpl() override {
    for (Slot& s : slots_) {
      if (s.worker) (void)s.worker->Kill(options_.deadlines.reap_grace_ms);
    }
    if (store_ != nullptr) (void)store_->Release(owner_, std::nullopt);
  }

  Status Init();
  const StackFingerprint& stack() const override { return pools_.front().stack; }
  std::vector<DeviceStack> stacks() const override {
    std::vector<DeviceStack> out;
    for (const Pool& pool : pools_) out.push_back(DeviceStack{pool.device, pool.stack});
    return out;
  }
  using ProbeEngine::Run;
  StatusOr<ProbeRunResult> Run(const std::vector<ProbeJob>& jobs,
                               const std::function<bool(const Verdict&)>& stop_when) override;

 private:
  void Event(const std::string& text) {
    if (callbacks_.on_event) callbacks_.on_event(text);
  }
  // Puts a started worker into `slot`: a standby one if the pool has one, else a new one;
  // then tops up the pool's standby workers.
  Status StartWorker(Slot& slot);
  // Spawns standby workers until the pool has StandbyTarget(pool) of them.
  void RefillStandby(Pool& pool);
  // How many standby workers `pool` keeps: ProbeOptions::standby_workers, plus those
  // added since (never past standby_workers_max).
  int StandbyTarget(const Pool& pool) const {
    return options_.standby_workers + pool.standby_added;
  }
  // Puts a worker that said hello into `slot`, checking that it reports the pool's stack.
  Status AdoptWorker(Slot& slot, std::unique_ptr<WorkerClient> worker);
  Status Calibrate(Pool& pool, Slot& slot);
  // Runs the calibration problem in `slot`'s worker; true when it came back OK. With
  // `calibrate`, its time sets the pool's throughput estimate.
  StatusOr<bool> RunKnownGoodProbe(Pool& pool, Slot& slot, bool calibrate);
  StatusOr<std::vector<std::string>> AskAlgorithms(Slot& slot, const std::string& canonical);
  StatusOr<std::vector<worker::Message>> AwaitMessages(Slot& slot, os::TimePoint deadline);
  Status ExpandJobs(const std::vector<ProbeJob>& jobs);
  Status Dispatch(Slot& slot, Task task);
  // The next task for `slot`'s pool that may start now, claimed in the store; nullopt
  // when there is none. With `ahead` (a request written while another runs in the same
  // worker), a confirmation is not taken: it needs a fresh worker.
  StatusOr<std::optional<Task>> TakeTask(Slot& slot, bool ahead);
  // Builds the request for `task` and its flight record.
  worker::ProbeRequest MakeRequest(const Job& job, const Pool& pool, Task task, Flight* flight);
  // Writes the requests of `tasks` to the busy worker of `slot` with one write, behind
  // Slot::ahead. False when the worker would not take them (the tasks then go back to the
  // front of the queue).
  bool SendAhead(Slot& slot, const std::vector<Task>& tasks);
  // After the flight in `slot` landed with its worker alive: the first request sent
  // ahead, if any, becomes the flight.
  void PromoteNext(Slot& slot);
  // After the worker of `slot` was killed or died: the requests sent ahead go back to the
  // front of their queue, in order, unanswered.
  void RequeueNext(Slot& slot);
  void OnMessage(Slot& slot, worker::Message& m);
  void OnDeadline(Slot& slot);
  void OnWorkerGone(Slot& slot);
  void Decide(Job& job, Verdict v);
  // A store call failed (after the store's own wait for its server, where it has one):
  // the run stops at its next step, kills its workers and releases its claims; what was
  // stored before stays. The first failure is what Run returns.
  void StoreFailed(const Status& s);
  Verdict BaseVerdict(const Job& job, const Pool& pool) const;
  // Adds a reply's own account of its time (if it gave one) to result_.worker_time.
  void AccountWorkerTime(const worker::ProbeReply& reply, double round_trip_ms);
  // Records an attempt of the flight in `slot` (before the watchdog lands it).
  void RecordAttempt(Job& job, const Slot& slot, const std::string& outcome,
                     const std::string& detail);
  size_t IndexOf(const Slot& slot) const { return static_cast<size_t>(&slot - slots_.data()); }
  // Ends the flight in `slot`: the engine's record and the watchdog's.
  Flight Land(Slot& slot);
  void ReportProgress();
  std::string Repro(const Job& job, const Pool& pool) const;

  ProbeOptions options_;
  Store* store_;
  ProbeCallbacks callbacks_;
  const os::Clock& clock_;
  Watchdog watchdog_;
  std::string owner_;
  std::vector<Pool> pools_;
  int visible_devices_ = 0;  // GPUs the first worker saw (0: a CPU backend)
  std::vector<Slot> slots_;
  std::vector<Job> jobs_;
  std::map<std::string, std::deque<Task>> queues_;  // by stack id
  std::vector<Task> deferred_;                      // held by another process
  int64_t next_request_id_ = 1;
  Status store_error_;  // the first store call that failed (StoreFailed); ends the run
  // Run's stop_when, and whether it has said enough (no further job starts).
  std::function<bool(const Verdict&)> stop_when_;
  bool stopping_ = false;
  ProbeRunResult result_;
  os::TimePoint run_started_;
};

Status EngineImpl::Init() {
  CG_ASSIGN_OR_RETURN(owner_, ThisProcessClaimOwner());
  CG_ASSIGN_OR_RETURN(const WorkerSpec base, probe::BaseWorkerSpec(options_));

  // The first worker tells us what the backend sees: its stack and how many devices.
  Pool first;
  first.spec = base;
  first.policy = std::make_unique<DeadlinePolicy>(options_.deadlines);
  pools_.push_back(std::move(first));
  slots_.emplace_back().pool = 0;
  pools_[0].slots.push_back(0);
  CG_RETURN_IF_ERROR(StartWorker(slots_[0]));
  const worker::Hello hello = slots_[0].worker->hello();
  visible_devices_ = hello.visible_devices;

  CG_RETURN_IF_ERROR(
      probe::CheckDeviceSelection(options_.devices, hello.visible_devices, options_.backend));
  const std::vector<int> devices = probe::DevicesToUse(options_.devices, hello.visible_devices);
  int per_device = options_.workers_per_device;
  if (per_device <= 0) {
    per_device = hello.visible_devices > 0
                     ? 1
                     : std::max<int>(1, static_cast<int>(std::thread::hardware_concurrency()));
  }

  if (hello.visible_devices > 0) {
    // One pool per device, each worker pinned to its device. The first worker saw every
    // device and runs on the first it sees, device 0: where device 0 is selected first
    // (and no inherited CONVGUARD_DEVICE_INDEX says otherwise) it serves device 0's pool
    // as it is, which saves a worker start (a second or more; seconds for PyTorch);
    // otherwise it is replaced by pinned ones.
    std::unique_ptr<WorkerClient> first_worker = std::move(slots_[0].worker);
    if (devices.front() != 0 || !probe::UnpinnedWorkerServesDeviceZero()) {
      (void)first_worker->Kill(options_.deadlines.reap_grace_ms);
      first_worker.reset();
    }
    pools_.clear();
    slots_.clear();
    for (int d : devices) {
      Pool pool;
      pool.device = d;
      pool.spec = probe::PinnedWorkerSpec(base, d);
      pool.policy = std::make_unique<DeadlinePolicy>(options_.deadlines);
      pools_.push_back(std::move(pool));
    }
    for (size_t p = 0; p < pools_.size(); ++p) {
      for (int i = 0; i < per_device; ++i) {
        pools_[p].slots.push_back(slots_.size());
        slots_.emplace_back().pool = p;
      }
    }
    if (first_worker) slots_[pools_.front().slots.front()].worker = std::move(first_worker);
  } else {
    for (int i = 1; i < per_device; ++i) {
      pools_[0].slots.push_back(slots_.size());
      slots_.emplace_back().pool = 0;
    }
  }

  // Every pool's first worker starts at once: their start-ups (process, backend, device
  // context; for PyTorch, importing torch) overlap instead of adding up.
  std::vector<std::pair<Slot*, std::unique_ptr<WorkerClient>>> starting;
  for (Pool& pool : pools_) {
    Slot& slot = slots_[pool.slots.front()];
    if (slot.worker) continue;
    CG_ASSIGN_OR_RETURN(std::unique_ptr<WorkerClient> spawned, WorkerClient::Spawn(pool.spec));
    starting.emplace_back(&slot, std::move(spawned));
  }
  for (auto& [slot, client] : starting) {
    CG_RETURN_IF_ERROR(client->AwaitHello(pools_[slot->pool].policy->StartupDeadlineMs()));
    CG_RETURN_IF_ERROR(AdoptWorker(*slot, std::move(client)));
  }

  for (Pool& pool : pools_) {
    Slot& slot = slots_[pool.slots.front()];
    const worker::Hello& h = slot.worker->hello();
    pool.stack = h.fingerprint;
    pool.stack_id = h.fingerprint.Id();
    pool.shares_device = h.shares_device;
    pool.policy->SetBackendCompileAllowance(h.first_call_allowance_ms,
                                            h.first_call_allowance_ms_by_algorithm);
    if (store_ != nullptr) CG_RETURN_IF_ERROR(store_->PutStack(pool.stack));
    Event("stack " + pool.stack_id + ": " + pool.stack.Summary());
    CG_RETURN_IF_ERROR(Calibrate(pool, slot));
  }
  for (Pool& pool : pools_) RefillStandby(pool);
  probe::RememberStacks(options_, stacks());
  return Status::Ok();
}

Status EngineImpl::StartWorker(Slot& slot) {
  Pool& pool = pools_[slot.pool];
  std::unique_ptr<WorkerClient> w;
  // A standby worker has usually said hello long ago: taking it costs a read, not a start.
  while (!w && !pool.standby.empty()) {
    std::unique_ptr<WorkerClient> candidate = std::move(pool.standby.front());
    pool.standby.pop_front();
    const os::TimePoint asked = clock_.Now();
    if (Status s = candidate->AwaitHello(pool.policy->StartupDeadlineMs()); s.ok()) {
      w = std::move(candidate);
      // Waiting for the hello means the standby was spawned too late for this swap: the
      // worker's start takes longer than the time between swaps. One more standby in the
      // pipeline from now on. (A hello already in the pipe is read in microseconds; a
      // C++ worker starts in milliseconds, so only a slow start waits 100 ms.)
      const double waited_ms = MillisBetween(asked, clock_.Now());
      if (waited_ms >= 100.0 &&
          StandbyTarget(pool) < std::max(options_.standby_workers, options_.standby_workers_max) &&
          options_.standby_workers > 0) {
        ++pool.standby_added;
        Event("a standby worker was still starting when it was needed (waited " +
              std::to_string(std::lround(waited_ms)) + " ms); keeping " +
              std::to_string(StandbyTarget(pool)) + " standby workers" +
              (pool.device >= 0 ? " for device " + std::to_string(pool.device) : "") +
              " from now on");
      }
    } else {
      Event("a standby worker did not start (" + s.message() + "); starting another");
    }
  }
  if (!w) {
    CG_ASSIGN_OR_RETURN(w, WorkerClient::Start(pool.spec, pool.policy->StartupDeadlineMs()));
  }
  CG_RETURN_IF_ERROR(AdoptWorker(slot, std::move(w)));
  RefillStandby(pool);
  return Status::Ok();
}

void EngineImpl::RefillStandby(Pool& pool) {
  while (static_cast<int>(pool.standby.size()) < StandbyTarget(pool)) {
    StatusOr<std::unique_ptr<WorkerClient>> spawned = WorkerClient::Spawn(pool.spec);
    if (!spawned.ok()) {
      Event("could not start a standby worker: " + spawned.status().message());
      return;
    }
    pool.standby.push_back(std::move(*spawned));
  }
}

Status EngineImpl::AdoptWorker(Slot& slot, std::unique_ptr<WorkerClient> worker) {
  const Pool& pool = pools_[slot.pool];
  slot.worker = std::move(worker);
  slot.probes_served = 0;
  slot.jobs_served = 0;
  if (!pool.stack_id.empty() && slot.worker->hello().fingerprint.Id() != pool.stack_id) {
    // A worker on the same device reporting another stack means the machine changed
    // under us (driver reload, library swap): stop rather than mix verdicts.
    return Status::Internal("a new worker reports stack " + slot.worker->hello().fingerprint.Id() +
                            ", not " + pool.stack_id + " as before; the stack changed mid-run");
  }
  return Status::Ok();
}

StatusOr<std::vector<worker::Message>> EngineImpl::AwaitMessages(Slot& slot,
                                                                 os::TimePoint deadline) {
  for (;;) {
    CG_ASSIGN_OR_RETURN(std::vector<worker::Message> got, slot.worker->Pump());
    if (!got.empty() || slot.worker->eof()) return got;
    const int fds[2] = {slot.worker->read_fd(), slot.worker->stderr_fd()};
    CG_ASSIGN_OR_RETURN(std::vector<int> ready, os::PollReadable(fds, os::Deadline::At(deadline)));
    slot.worker->PumpStderr();
    if (ready.empty() && (clock_.Now() >= deadline || os::InterruptRequested())) return got;
  }
}

Status EngineImpl::Calibrate(Pool& pool, Slot& slot) {
  CG_ASSIGN_OR_RETURN(bool ok, RunKnownGoodProbe(pool, slot, /*calibrate=*/true));
  if (!ok) Event("calibration did not succeed; deadlines use the assumed throughput");
  return Status::Ok();
}

StatusOr<bool> EngineImpl::RunKnownGoodProbe(Pool& pool, Slot& slot, bool calibrate) {
  worker::ProbeRequest r;
  r.id = next_request_id_++;
  r.problem = ToCanonical(CalibrationProblem());
  r.check = calibrate ? CheckMode::kNone : CheckMode::kSampled;
  r.health = true;
  r.warmup = 1;
  r.repeats = 3;
  CG_RETURN_IF_ERROR(slot.worker->Send(worker::EncodeProbeRequest(r)));
  const os::TimePoint deadline =
      PlusMillis(clock_.Now(), std::min(10000.0, pool.policy->StartupDeadlineMs()));
  for (;;) {
    CG_ASSIGN_OR_RETURN(std::vector<worker::Message> got, AwaitMessages(slot, deadline));
    for (worker::Message& m : got) {
      if (!m.result || m.result->id != r.id) continue;
      slot.probes_served++;
      const bool ok = m.result->outcome == worker::ProbeOutcome::kOk && !m.result->times_ms.empty();
      if (ok && calibrate) {
        pool.policy->Calibrate(CalibrationProblem().flops(), Median(m.result->times_ms));
        char line[160];
        std::snprintf(line, sizeof line, "calibrated: %.3g GFLOP/s on %s",
                      pool.policy->throughput_gflops(), r.problem.c_str());
        Event(line);
      }
      if (!ok) {
        Event("known-good probe " + r.problem + " gave '" +
              std::string(worker::ProbeOutcomeName(m.result->outcome)) + "': " + m.result->message);
      }
      return ok;
    }
    if (slot.worker->eof() || clock_.Now() >= deadline || os::InterruptRequested()) {
      Event("known-good probe " + r.problem + " did not finish; its worker is discarded");
      (void)slot.worker->Kill(options_.deadlines.reap_grace_ms);
      slot.worker.reset();
      return false;
    }
  }
}

StatusOr<std::vector<std::string>> EngineImpl::AskAlgorithms(Slot& slot,
                                                             const std::string& canonical) {
  if (!slot.worker) CG_RETURN_IF_ERROR(StartWorker(slot));
  worker::AlgorithmsRequest r{next_request_id_++, canonical};
  CG_RETURN_IF_ERROR(slot.worker->Send(worker::EncodeAlgorithmsRequest(r)));
  const os::TimePoint deadline = PlusMillis(clock_.Now(), 10000.0);
  for (;;) {
    CG_ASSIGN_OR_RETURN(std::vector<worker::Message> got, AwaitMessages(slot, deadline));
    for (worker::Message& m : got) {
      if (m.algorithms_reply && m.algorithms_reply->id == r.id) {
        if (!m.algorithms_reply->message.empty()) {
          return Status::InvalidArgument(m.algorithms_reply->message);
        }
        return m.algorithms_reply->names;
      }
    }
    if (slot.worker->eof() || clock_.Now() >= deadline || os::InterruptRequested()) {
      (void)slot.worker->Kill(options_.deadlines.reap_grace_ms);
      slot.worker.reset();
      return Status::Internal("the worker did not list its algorithms for " + canonical);
    }
  }
}

Status EngineImpl::ExpandJobs(const std::vector<ProbeJob>& input) {
  // One job per (stack, problem, algorithm); pools sharing a stack share its jobs.
  std::set<std::string> seen_stacks;
  for (Pool& pool : pools_) {
    if (!seen_stacks.insert(pool.stack_id).second) continue;
    Slot& slot = slots_[pool.slots.front()];
    std::map<std::string, std::vector<std::string>> algorithms_of;  // cache by problem
    std::set<std::pair<std::string, std::string>> added;
    for (const ProbeJob& in : input) {
      const std::string canonical = ToCanonical(in.problem);
      std::vector<std::string> names;
      if (in.algorithm.empty() || in.algorithm == "*") {
        auto it = algorithms_of.find(canonical);
        if (it == algorithms_of.end()) {
          CG_ASSIGN_OR_RETURN(std::vector<std::string> offered, AskAlgorithms(slot, canonical));
          it = algorithms_of.emplace(canonical, std::move(offered)).first;
        }
        if (it->second.empty()) {
          names = {"default"};  // decided as UNSUPPORTED by the worker
        } else if (in.algorithm.empty()) {
          names = {it->second.front()};
        } else {
          names = it->second;
        }
      } else {
        names = {in.algorithm};
      }
      for (const std::string& name : names) {
        if (!added.insert({canonical, name}).second) continue;  // duplicates probe once
        Job job;
        job.problem = in.problem;
        job.canonical = canonical;
        job.algorithm = name;
        job.stack_id = pool.stack_id;
        // With "*", only the default algorithm (the backend's first) is the problem as
        // its caller runs it; the others are candidates, confirmed only when needed.
        job.always_decide = in.always_decide && (names.size() == 1 || name == names.front());
        jobs_.push_back(std::move(job));
        queues_[pool.stack_id].push_back(Task{jobs_.size() - 1, TaskKind::kFirst});
      }
    }
  }
  return Status::Ok();
}

std::string EngineImpl::Repro(const Job& job, const Pool& pool) const {
  std::string r = options_.repro_command + " probe " + job.canonical + " --backend " +
                  options_.backend + " --algo " + job.algorithm;
  if (!options_.fault_rules_path.empty()) r += " --inject " + options_.fault_rules_path;
  // Where several GPUs are visible, a repro without a device would probe all of them, on
  // stacks that may differ from this verdict's: name the device that gave it.
  if (pool.device >= 0 && visible_devices_ > 1) r += " --devices " + std::to_string(pool.device);
  return r;
}

Verdict EngineImpl::BaseVerdict(const Job& job, const Pool& pool) const {
  Verdict v;
  v.stack_id = job.stack_id;
  v.problem = job.canonical;
  v.algorithm = job.algorithm;
  v.tool_version = CONVGUARD_VERSION;
  v.recorded_at = os::UtcNowIso8601();
  v.repro = Repro(job, pool);
  v.emulated = pool.stack.is_emulated();
  v.attempts = static_cast<int>(job.attempts.size());
  return v;
}

void EngineImpl::AccountWorkerTime(const worker::ProbeReply& reply, double round_trip_ms) {
  const auto stage = [&](const char* name) {
    const auto it = reply.stage_ms.find(name);
    return it == reply.stage_ms.end() ? 0.0 : it->second;
  };
  if (!reply.stage_ms.contains("total")) return;
  WorkerTime& w = result_.worker_time;
  w.replies++;
  w.round_trip_ms += round_trip_ms;
  w.worker_total_ms += stage("total");
  w.prep_ms += stage("prep");
  w.run_ms += stage("run");
  w.check_ms += stage("check");
}

void EngineImpl::RecordAttempt(Job& job, const Slot& slot, const std::string& outcome,
                               const std::string& detail) {
  const size_t index = IndexOf(slot);
  Attempt a;
  a.key = VerdictKey{job.stack_id, job.canonical, job.algorithm};
  a.attempt_number = static_cast<int>(job.attempts.size()) + 1;
  a.outcome = outcome;
  a.deadline_ms = watchdog_.Of(index).stage_deadline_ms;
  a.elapsed_ms = watchdog_.ElapsedMs(index);
  a.worker_pid = slot.worker ? slot.worker->pid() : 0;
  a.started_at = os::UtcNowIso8601();
  a.detail = detail;
  job.attempts.push_back(a);
}

void EngineImpl::Decide(Job& job, Verdict v) {
  job.decided = true;
  v.attempts = static_cast<int>(job.attempts.size());
  if (job.outside_kills > 0) {
    v.message += std::string(v.message.empty() ? "" : "; ") + "its worker was SIGKILLed from " +
                 "outside " + std::to_string(job.outside_kills) +
                 (job.outside_kills == 1 ? " time" : " times") + " and the probe run again";
  }
  if (store_ != nullptr && store_error_.ok()) {
    // A verdict the store did not take is not silently dropped: the run stops and the
    // caller sees what could not be recorded (the verdict is also in the event log).
    Status s = Status::Ok();
    for (const Attempt& a : job.attempts) {
      if (s.ok()) s = store_->AddAttempt(a);
    }
    if (s.ok()) s = store_->PutVerdict(v);
    if (!s.ok()) {
      StoreFailed(s.WithContext("the " + std::string(VerdictName(v.kind)) + " verdict of " +
                                job.canonical + " '" + job.algorithm + "' could not be stored"));
    }
  }
  result_.progress.by_kind[static_cast<int>(v.kind)]++;
  result_.progress.done++;
  if (callbacks_.on_verdict) callbacks_.on_verdict(v);
  if (stop_when_ && !stopping_ && stop_when_(v)) {
    stopping_ = true;
    Event("enough is known: no further probe starts in this run");
    if (callbacks_.on_notice)
      callbacks_.on_notice(
          "enough is known: no further probe starts (pending confirmations are "
          "dropped, probes in flight finish)");
  }
  result_.verdicts.push_back(std::move(v));
  ReportProgress();
}

void EngineImpl::StoreFailed(const Status& s) {
  if (!store_error_.ok()) return;
  store_error_ = s;
  Event(store_error_.ToString());
}

void EngineImpl::ReportProgress() {
  result_.progress.elapsed_s = MillisBetween(run_started_, clock_.Now()) / 1000.0;
  result_.progress.in_flight = static_cast<int64_t>(watchdog_.flying());
  if (callbacks_.on_progress) callbacks_.on_progress(result_.progress);
}

Status EngineImpl::Dispatch(Slot& slot, Task task) {
  Pool& pool = pools_[slot.pool];
  Job& job = jobs_[task.job];
  // A confirmation runs in a fresh worker: whatever state the first attempt left behind
  // (a wedged context, a poisoned cache) must not decide the verdict.
  if (task.kind == TaskKind::kConfirm && slot.worker && slot.probes_served > 0) {
    (void)slot.worker->Send(worker::EncodeBye());
    (void)slot.worker->Kill(options_.deadlines.reap_grace_ms);
    slot.worker.reset();
  }
  if (!slot.worker) {
    Status s = StartWorker(slot);
    if (!s.ok()) {
      Event("worker start failed (" + s.message() + "); retrying once");
      CG_RETURN_IF_ERROR(StartWorker(slot));
    }
    if (pool.needs_health_check) {
      CG_ASSIGN_OR_RETURN(bool healthy, RunKnownGoodProbe(pool, slot, /*calibrate=*/false));
      if (!healthy) {
        return Status::Internal("device " + std::to_string(pool.device) +
                                " failed a known-good probe after a hang or crash; stopping rather "
                                "than recording verdicts from a broken device");
      }
      pool.needs_health_check = false;
      Event("device " + std::to_string(pool.device) + " passed a known-good probe after a fault");
      if (!slot.worker) CG_RETURN_IF_ERROR(StartWorker(slot));
    }
  }
  Flight f;
  const worker::ProbeRequest r = MakeRequest(job, pool, task, &f);
  f.fresh_worker = slot.jobs_served == 0 && slot.ahead.empty();
  f.written_at = clock_.Now();
  if (Status s = slot.worker->Send(worker::EncodeProbeRequest(r)); !s.ok()) {
    // The worker died between probes; start another and try once more.
    Event("worker " + std::to_string(slot.worker->pid()) +
          " would not take a request: " + s.message());
    (void)slot.worker->Kill(options_.deadlines.reap_grace_ms);
    slot.worker.reset();
    CG_RETURN_IF_ERROR(StartWorker(slot));
    CG_RETURN_IF_ERROR(slot.worker->Send(worker::EncodeProbeRequest(r)));
  }
  watchdog_.Launch(IndexOf(slot), pool.policy->PrepDeadlineMs(job.problem));
  slot.flight = std::move(f);
  return Status::Ok();
}

worker::ProbeRequest EngineImpl::MakeRequest(const Job& job, const Pool& pool, Task task,
                                             Flight* flight) {
  worker::ProbeRequest r;
  r.id = next_request_id_++;
  r.problem = job.canonical;
  r.algorithm = job.algorithm == "default" ? "" : job.algorithm;
  r.seed = options_.seed;
  r.warmup = options_.warmup;
  r.repeats = options_.repeats;
  r.check = options_.check;
  r.sample_points = options_.sample_points;
  flight->task = task;
  flight->request_id = r.id;
  flight->run_deadline_ms =
      pool.policy->RunDeadlineMs(job.problem, options_.warmup + options_.repeats, job.algorithm);
  if (task.kind == TaskKind::kConfirm) {
    flight->run_deadline_ms = pool.policy->ConfirmDeadlineMs(job.first_deadline_ms);
  }
  return r;
}

bool EngineImpl::SendAhead(Slot& slot, const std::vector<Task>& tasks) {
  const Pool& pool = pools_[slot.pool];
  std::vector<std::string> requests;
  std::vector<Flight> flights(tasks.size());
  for (size_t i = 0; i < tasks.size(); ++i) {
    requests.push_back(
        worker::EncodeProbeRequest(MakeRequest(jobs_[tasks[i].job], pool, tasks[i], &flights[i])));
  }
  if (!slot.worker->SendAll(requests).ok()) {
    // The worker is going away; the flight's end will say how. The tasks wait their turn.
    std::deque<Task>& queue = queues_[pool.stack_id];
    for (auto it = tasks.rbegin(); it != tasks.rend(); ++it) queue.push_front(*it);
    return false;
  }
  for (Flight& f : flights) {
    f.written_ahead = true;
    slot.ahead.push_back(std::move(f));
  }
  return true;
}

void EngineImpl::PromoteNext(Slot& slot) {
  if (slot.ahead.empty()) return;
  // The worker started it when it wrote the reply just read: its watchdog starts now,
  // a little late, so its deadlines can only be more generous, never less.
  slot.flight.emplace(std::move(slot.ahead.front()));
  slot.ahead.pop_front();
  watchdog_.Launch(IndexOf(slot),
                   pools_[slot.pool].policy->PrepDeadlineMs(jobs_[slot.flight->task.job].problem));
}

void EngineImpl::RequeueNext(Slot& slot) {
  std::deque<Task>& queue = queues_[pools_[slot.pool].stack_id];
  for (auto it = slot.ahead.rbegin(); it != slot.ahead.rend(); ++it) queue.push_front(it->task);
  slot.ahead.clear();
}

StatusOr<std::optional<Task>> EngineImpl::TakeTask(Slot& slot, bool ahead) {
  Pool& pool = pools_[slot.pool];
  std::deque<Task>& queue = queues_[pool.stack_id];
  while (!queue.empty()) {
    const Task task = queue.front();
    if (ahead && task.kind == TaskKind::kConfirm) return std::optional<Task>();
    queue.pop_front();
    Job& job = jobs_[task.job];
    if (stopping_ && !job.always_decide) {
      // Nothing is recorded for it; a claim taken by its first attempt is released.
      if (job.claimed && store_ != nullptr)
        (void)store_->Release(owner_, VerdictKey{job.stack_id, job.canonical, job.algorithm});
      result_.dropped++;
      result_.progress.done++;
      continue;
    }
    if (task.kind == TaskKind::kFirst && !job.claimed && store_ != nullptr) {
      StatusOr<ClaimResult> claim =
          store_->Claim(VerdictKey{job.stack_id, job.canonical, job.algorithm}, owner_,
                        options_.redo, options_.claim_stale_after_s);
      if (!claim.ok()) {
        // Not probed: the run stops as when a verdict cannot be stored, cleaning up.
        queue.push_front(task);
        StoreFailed(claim.status().WithContext("could not claim " + job.canonical + " '" +
                                               job.algorithm + "' in the store"));
        return std::optional<Task>();
      }
      if (*claim == ClaimResult::kAlreadyKnown) {
        StatusOr<std::optional<Verdict>> known =
            store_->GetVerdict(VerdictKey{job.stack_id, job.canonical, job.algorithm});
        if (!known.ok()) {
          queue.push_front(task);
          StoreFailed(known.status().WithContext("could not read the stored verdict of " +
                                                 job.canonical + " '" + job.algorithm + "'"));
          return std::optional<Task>();
        }
        if (known->has_value()) result_.known.push_back(**known);
        job.decided = true;
        result_.progress.skipped_known++;
        result_.progress.done++;
        ReportProgress();
        continue;
      }
      if (*claim == ClaimResult::kHeldByOther) {
        deferred_.push_back(task);
        continue;
      }
      job.claimed = true;
    }
    if (task.kind == TaskKind::kConfirm && pool.shares_device) {
      bool others = false;
      for (size_t i : pool.slots) others |= slots_[i].flight.has_value();
      if (others) {
        queue.push_front(task);  // wait until the device is quiet
        return std::optional<Task>();
      }
    }
    return std::optional<Task>(task);
  }
  return std::optional<Task>();
}

void EngineImpl::OnMessage(Slot& slot, worker::Message& m) {
  Flight& f = *slot.flight;
  Pool& pool = pools_[slot.pool];
  Job& job = jobs_[f.task.job];
  if (m.phase && m.phase->id == f.request_id) {
    const double stage_deadline_ms =
        m.phase->phase == ProbeStage::kRun
            ? f.run_deadline_ms
            : pool.policy->CheckDeadlineMs(job.problem, options_.check, options_.sample_points);
    watchdog_.EnterStage(IndexOf(slot), m.phase->phase, stage_deadline_ms);
    return;
  }
  if (!m.result || m.result->id != f.request_id) return;  // a stale or foreign message
  const worker::ProbeReply& reply = *m.result;
  slot.probes_served++;
  slot.jobs_served++;
  RecordAttempt(job, slot,
                std::string("reply:") + std::string(worker::ProbeOutcomeName(reply.outcome)),
                reply.message + f.notes);
  if (!f.written_ahead) {
    AccountWorkerTime(
        reply, std::chrono::duration<double, std::milli>(clock_.Now() - f.written_at).count());
  }
  const Flight landed = Land(slot);
  PromoteNext(slot);
  const Task task = landed.task;
  const bool in_place = landed.confirming_in_place;
  const bool suspect = landed.suspect;
  const double run_deadline = landed.run_deadline_ms;
  std::string notes = landed.notes;
  const std::string tail = slot.worker->TakeStderrTail();
  if (reply.outcome != worker::ProbeOutcome::kOk && !tail.empty())
    notes += "; worker stderr: " + tail;

  if (suspect && task.kind == TaskKind::kFirst && reply.outcome == worker::ProbeOutcome::kOk) {
    // Its timing overlapped a hang on the same device: re-run it once for honest numbers.
    queues_[job.stack_id].push_front(Task{task.job, TaskKind::kRerun});
    return;
  }
  Verdict v = BaseVerdict(job, pool);
  v.deadline_ms = run_deadline;
  v.elapsed_ms = job.attempts.back().elapsed_ms;
  v.check = reply.check;
  v.tolerance = reply.tolerance;
  v.implementation = reply.implementation;
  v.message = reply.message + notes;
  if (v.message.rfind("; ", 0) == 0) v.message.erase(0, 2);
  if (!reply.times_ms.empty()) {
    v.time_ms_min = *std::min_element(reply.times_ms.begin(), reply.times_ms.end());
    v.time_ms_median = Median(reply.times_ms);
  }
  v.mismatches = reply.mismatches;
  v.non_finite = reply.non_finite;
  v.max_abs_error = reply.max_abs_error;
  v.max_rel_error = reply.max_rel_error;
  switch (reply.outcome) {
    case worker::ProbeOutcome::kOk:
      if (task.kind == TaskKind::kConfirm) {
        v.kind = VerdictKind::kSlow;
        v.message =
            job.first_miss + "; finished in a fresh worker under the confirmation deadline" + notes;
      } else if (in_place) {
        v.kind = VerdictKind::kSlow;
        v.message = job.first_miss +
                    "; finished under the confirmation deadline in the same worker, fresh for "
                    "it (its first probe)" +
                    notes;
      } else {
        v.kind = VerdictKind::kOk;
        pool.policy->Observe(job.problem, job.algorithm, v.time_ms_median);
        // The learned model, now and then, for --verbose: after 8 and 64 OK probes, then
        // every 256.
        if (const int64_t n = ++pool.ok_observed; n == 8 || n == 64 || n % 256 == 0) {
          std::string model = pool.policy->Describe();
          if (!model.empty() && model.back() == '\n') model.pop_back();
          Event("deadline model of stack " + pool.stack_id + " after " + std::to_string(n) +
                " OK probes:\n" + model);
        }
      }
      break;
    case worker::ProbeOutcome::kWrong: v.kind = VerdictKind::kWrong; break;
    case worker::ProbeOutcome::kMistrusted: v.kind = VerdictKind::kMistrusted; break;
    case worker::ProbeOutcome::kError: v.kind = VerdictKind::kError; break;
    case worker::ProbeOutcome::kUnsupported: v.kind = VerdictKind::kUnsupported; break;
    case worker::ProbeOutcome::kOom:
      v.kind = VerdictKind::kOom;
      if (pool.spec.memory_limit_bytes > 0) {
        // Which limit was hit: the worker's own cap, or the machine (or device) itself.
        v.message += "; the worker's address space is capped at " +
                     BytesText(pool.spec.memory_limit_bytes) + " (RLIMIT_AS, --worker-memory)";
      }
      break;
  }
  if ((task.kind == TaskKind::kConfirm || in_place) && reply.outcome != worker::ProbeOutcome::kOk) {
    v.message = job.first_miss + "; then: " + v.message;
  }
  Decide(job, std::move(v));
}

void EngineImpl::OnDeadline(Slot& slot) {
  const size_t index = IndexOf(slot);
  Pool& pool = pools_[slot.pool];
  Job& job = jobs_[slot.flight->task.job];
  const Watchdog::Flight timing = watchdog_.Of(index);
  const double elapsed = watchdog_.StageElapsedMs(index);
  std::string how = "missed the " + std::string(worker::ProbeStageName(timing.stage)) +
                    "-stage deadline of " +
                    std::to_string(static_cast<int64_t>(timing.stage_deadline_ms)) + " ms";
  Flight& flight = *slot.flight;
  // A run that overran in a worker fresh for it is waited for in place, up to the
  // confirmation deadline counted from the start of its run: the confirmation would run
  // it again in a fresh worker, and this worker is one (it had run no job's probe; at most
  // the engine's known-good probe). Same verdicts, without a kill, a start and a second
  // run before the wait. Not while a caller may stop early (its confirmations wait behind
  // the first attempts), and on a shared device only while nothing else runs there (a
  // confirmation is judged alone).
  bool alone = true;
  if (pool.shares_device) {
    for (size_t i : pool.slots) alone &= i == index || !slots_[i].flight;
  }
  if (options_.confirm_first_probe_in_place && flight.task.kind != TaskKind::kConfirm &&
      !flight.confirming_in_place && flight.fresh_worker && timing.stage == ProbeStage::kRun &&
      alone && (!stop_when_ || job.always_decide)) {
    flight.confirming_in_place = true;
    job.first_deadline_ms = flight.run_deadline_ms;
    job.first_miss = how;
    const double confirm_ms = pool.policy->ConfirmDeadlineMs(job.first_deadline_ms);
    watchdog_.ExtendStage(index, confirm_ms);
    if (callbacks_.on_notice) {
      char line[160];
      std::snprintf(line, sizeof line,
                    " missed its first deadline (%.0f ms); confirming in place: waiting for it "
                    "up to %.0f ms in its fresh worker",
                    timing.stage_deadline_ms, confirm_ms);
      callbacks_.on_notice(job.canonical + " " + job.algorithm + line);
    }
    return;
  }
  const os::TimePoint kill_sent = watchdog_.Now();
  StatusOr<os::ExitInfo> killed = slot.worker->Kill(options_.deadlines.reap_grace_ms);
  // How long the killed worker took to be gone (a GPU process's driver context is torn
  // down before it exits): the engine waits for it, so it is part of a HANG's cost.
  const int64_t reap_ms = static_cast<int64_t>(
      std::chrono::duration<double, std::milli>(watchdog_.Now() - kill_sent).count());
  std::string detail = how + " after " + std::to_string(static_cast<int64_t>(elapsed)) + " ms; ";
  detail += killed.ok() ? "worker " + killed->ToString() + ", gone " + std::to_string(reap_ms) +
                              " ms after SIGKILL"
                        : "KILL FAILED: " + killed.status().message();
  if (const std::string tail = slot.worker->TakeStderrTail(); !tail.empty()) {
    detail += "; worker stderr: " + tail;
  }
  RecordAttempt(job, slot, "deadline", detail + slot.flight->notes);
  const double elapsed_total = watchdog_.ElapsedMs(index);
  const Flight f = Land(slot);
  RequeueNext(slot);
  Event("worker " + std::to_string(slot.worker->pid()) + " " + detail + " (" + job.canonical + ")");
  slot.worker.reset();

  if (pool.shares_device) {
    pool.needs_health_check = true;
    // While that worker was stuck, everything else on the device was slowed down.
    for (size_t i : pool.slots) {
      if (slots_[i].flight) slots_[i].flight->suspect = true;
      for (Flight& ahead : slots_[i].ahead) ahead.suspect = true;
    }
  }
  if (f.task.kind != TaskKind::kConfirm && !f.confirming_in_place) {
    if (callbacks_.on_notice) {
      char line[96];
      std::snprintf(line, sizeof line, " missed its first deadline (%.0f ms); confirming",
                    timing.stage_deadline_ms);
      callbacks_.on_notice(job.canonical + " " + job.algorithm + line +
                           (stop_when_ && !job.always_decide
                                ? std::string(" after the other first attempts")
                                : std::string(" in a fresh worker")));
    }
    job.first_deadline_ms =
        timing.stage == ProbeStage::kRun ? f.run_deadline_ms : timing.stage_deadline_ms;
    job.first_miss = how;
    // A confirmation takes seconds: while a caller may stop early (stop_when), it waits
    // until the cheap first attempts have run, unless the job must be decided regardless.
    if (stop_when_ && !job.always_decide) {
      queues_[job.stack_id].push_back(Task{f.task.job, TaskKind::kConfirm});
    } else {
      queues_[job.stack_id].push_front(Task{f.task.job, TaskKind::kConfirm});
    }
    return;
  }
  Verdict v = BaseVerdict(job, pool);
  v.kind = VerdictKind::kHang;
  v.deadline_ms = timing.stage_deadline_ms;
  v.elapsed_ms = elapsed_total;
  v.message = "first attempt " + job.first_miss +
              (f.confirming_in_place
                   ? "; confirmed in place (the worker was fresh for it, its first probe): "
                   : "; the confirmation in a fresh worker ") +
              detail;
  if (!killed.ok()) v.message += " (the worker could not be reaped: the device may need attention)";
  Decide(job, std::move(v));
}

void EngineImpl::OnWorkerGone(Slot& slot) {
  const size_t index = IndexOf(slot);
  Pool& pool = pools_[slot.pool];
  Job& job = jobs_[slot.flight->task.job];
  const Watchdog::Flight timing = watchdog_.Of(index);
  const bool mid_frame = slot.worker->died_mid_frame();
  StatusOr<os::ExitInfo> exit = slot.worker->AwaitExit(options_.deadlines.reap_grace_ms);
  std::string how = exit.ok() ? exit->ToString() : exit.status().message();
  std::string detail = "worker " + how + " during the " +
                       std::string(worker::ProbeStageName(timing.stage)) + " stage";
  if (mid_frame) detail += ", in the middle of a reply";
  if (exit.ok() && exit->cpu_limit_reached()) {
    detail += ": it used up its CPU time cap of " + std::to_string(pool.spec.cpu_limit_s) +
              " s (RLIMIT_CPU, --worker-cpu-seconds)";
  }
  if (const std::string tail = slot.worker->TakeStderrTail(); !tail.empty()) {
    detail += "; worker stderr: " + tail;
  }
  // convguard ends workers only through Kill (a deadline), never here: a worker that died
  // of SIGKILL was killed from outside (a person, the kernel's OOM killer, a chaos test),
  // which says nothing about the problem. It is run again in a fresh worker, and only a
  // probe whose worker keeps being killed gets that death as its verdict.
  const bool outside_kill =
      exit.ok() && exit->killed_by_sigkill() && job.outside_kills < kMaxOutsideKills;
  RecordAttempt(job, slot, outside_kill ? "killed from outside" : "crash",
                detail + slot.flight->notes);
  const double elapsed_total = watchdog_.ElapsedMs(index);
  const Flight f = Land(slot);
  RequeueNext(slot);
  slot.worker.reset();
  if (pool.shares_device) pool.needs_health_check = true;
  if (outside_kill) {
    ++job.outside_kills;
    Event(detail + " (" + job.canonical + "): the SIGKILL did not come from convguard; " +
          "probing again in a fresh worker");
    queues_[job.stack_id].push_front(Task{f.task.job, f.task.kind});
    return;
  }

  Verdict v = BaseVerdict(job, pool);
  v.kind = VerdictKind::kCrash;
  v.deadline_ms = timing.stage_deadline_ms;
  v.elapsed_ms = elapsed_total;
  if (exit.ok() && exit->signaled()) v.crash_signal = exit->signal;
  if (exit.ok() && exit->exited()) v.exit_code = exit->exit_code;
  v.message = detail + f.notes;
  if (f.task.kind == TaskKind::kConfirm) v.message = job.first_miss + "; then " + v.message;
  Decide(job, std::move(v));
}

Flight EngineImpl::Land(Slot& slot) {
  Flight f = std::move(*slot.flight);
  slot.flight.reset();
  watchdog_.Land(IndexOf(slot));
  return f;
}

StatusOr<ProbeRunResult> EngineImpl::Run(const std::vector<ProbeJob>& jobs,
                                         const std::function<bool(const Verdict&)>& stop_when) {
  run_started_ = clock_.Now();
  result_ = ProbeRunResult{};
  stop_when_ = stop_when;
  stopping_ = false;
  store_error_ = Status::Ok();
  jobs_.clear();
  queues_.clear();
  deferred_.clear();
  CG_RETURN_IF_ERROR(ExpandJobs(jobs));
  result_.progress.total = static_cast<int64_t>(jobs_.size());
  ReportProgress();
  os::TimePoint next_deferred_check = clock_.Now();

  for (;;) {
    if (os::InterruptRequested()) {
      result_.interrupted = true;
      break;
    }
    if (!store_error_.ok()) break;
    // 1. Give every idle worker a task, and every busy one its next request ahead.
    for (Slot& slot : slots_) {
      if (!store_error_.ok()) break;
      Pool& pool = pools_[slot.pool];
      if (pool.shares_device) {
        // A confirmation is judged alone on its device, so contention cannot fake a hang.
        bool confirming = false;
        for (size_t i : pool.slots) {
          confirming |= slots_[i].flight && (slots_[i].flight->task.kind == TaskKind::kConfirm ||
                                             slots_[i].flight->confirming_in_place);
        }
        if (confirming) continue;
      }
      if (!slot.flight) {
        for (;;) {
          CG_ASSIGN_OR_RETURN(std::optional<Task> task, TakeTask(slot, /*ahead=*/false));
          if (!task) break;
          CG_RETURN_IF_ERROR(Dispatch(slot, *task));
          if (slot.flight) break;
        }
      }
      // Not while a caller may stop the run early (stop_when): a request written ahead
      // would be a probe it did not ask for, and one that hangs costs a whole deadline.
      // Refilled when the worker has taken every request sent ahead, all in one write: the
      // worker, which is usually waiting by then, is woken once per refill, not per probe.
      if (!stop_when_ && slot.flight && slot.worker && slot.ahead.empty() &&
          slot.flight->task.kind != TaskKind::kConfirm) {
        std::vector<Task> tasks;
        while (static_cast<int>(tasks.size()) < options_.requests_ahead) {
          CG_ASSIGN_OR_RETURN(std::optional<Task> task, TakeTask(slot, /*ahead=*/true));
          if (!task) break;
          tasks.push_back(*task);
        }
        if (!tasks.empty()) (void)SendAhead(slot, tasks);
      }
    }
    if (!store_error_.ok()) break;

    bool any_in_flight = false;
    for (const Slot& s : slots_) any_in_flight |= s.flight.has_value();
    bool any_queued = false;
    for (const auto& [id, q] : queues_) any_queued |= !q.empty();
    if (!any_in_flight && !any_queued) {
      if (stopping_) {
        result_.dropped += static_cast<int64_t>(deferred_.size());
        result_.progress.done += static_cast<int64_t>(deferred_.size());
        deferred_.clear();
      }
      if (deferred_.empty()) break;
      // Only work another process holds is left: look again shortly.
      if (clock_.Now() >= next_deferred_check) {
        for (const Task& t : deferred_) queues_[jobs_[t.job].stack_id].push_back(t);
        deferred_.clear();
        next_deferred_check = PlusMillis(clock_.Now(), 500.0);
        continue;
      }
    }

    // 2. Wait for output or the nearest deadline.
    std::vector<int> fds;
    os::TimePoint wake = PlusMillis(clock_.Now(), 500.0);
    for (const Slot& s : slots_) {
      if (s.worker && s.worker->stderr_fd() >= 0) fds.push_back(s.worker->stderr_fd());
      if (s.flight) fds.push_back(s.worker->read_fd());
    }
    if (std::optional<os::TimePoint> next = watchdog_.NextDeadline()) wake = std::min(wake, *next);
    if (!any_in_flight && !deferred_.empty()) wake = std::min(wake, next_deferred_check);
    CG_ASSIGN_OR_RETURN(std::vector<int> ready, os::PollReadable(fds, os::Deadline::At(wake)));
    // Flights are judged overdue as of now, when their pipes were last looked at: a store
    // call below may wait long for its server, and a reply that arrives meanwhile must be
    // read (at the next poll, which then returns at once) before its flight is called late.
    const os::TimePoint looked = clock_.Now();

    // 3. Read what arrived; decide what ended.
    for (Slot& slot : slots_) {
      if (slot.worker && slot.worker->stderr_fd() >= 0 &&
          std::find(ready.begin(), ready.end(), slot.worker->stderr_fd()) != ready.end()) {
        slot.worker->PumpStderr();
      }
    }
    for (Slot& slot : slots_) {
      if (!slot.flight) continue;
      if (std::find(ready.begin(), ready.end(), slot.worker->read_fd()) == ready.end()) continue;
      CG_ASSIGN_OR_RETURN(std::vector<worker::Message> messages, slot.worker->Pump());
      if (int64_t junk = slot.worker->TakeGarbageBytes(); junk > 0) {
        slot.flight->notes +=
            "; worker wrote " + std::to_string(junk) + " bytes that were not protocol frames";
      }
      for (worker::Message& m : messages) {
        if (!slot.flight) break;
        OnMessage(slot, m);
      }
      if (slot.flight && slot.worker->eof()) OnWorkerGone(slot);
    }
    for (size_t index : watchdog_.OverdueAt(looked)) OnDeadline(slots_[index]);
  }

  if (result_.interrupted || !store_error_.ok()) {
    for (Slot& slot : slots_) {
      if (slot.worker && slot.flight) {
        (void)slot.worker->Kill(options_.deadlines.reap_grace_ms);
        slot.worker.reset();
      }
      if (slot.flight) Land(slot);
      slot.ahead.clear();
    }
    if (store_ != nullptr) (void)store_->Release(owner_, std::nullopt);
  }
  result_.stopped_early = stopping_;
  stop_when_ = nullptr;
  ReportProgress();
  if (!store_error_.ok()) return store_error_;
  return result_;
}

}  // namespace

StatusOr<std::unique_ptr<ProbeEngine>> ProbeEngine::Start(const ProbeOptions& options, Store* store,
                                                          ProbeCallbacks callbacks) {
  if (options.backend.empty()) return Status::InvalidArgument("no backend named");
  if (options.requests_ahead < 0 || options.requests_ahead > 64) {
    return Status::InvalidArgument("requests_ahead must be 0..64");
  }
  if (options.standby_workers < 0 || options.standby_workers > 16 ||
      options.standby_workers_max < 0 || options.standby_workers_max > 16) {
    return Status::InvalidArgument("standby_workers and standby_workers_max must be 0..16");
  }
  if (options.warmup < 0 || options.repeats < 1) {
    return Status::InvalidArgument("--warmup must be >= 0 and --repeats >= 1");
  }
  auto engine = std::make_unique<EngineImpl>(options, store, std::move(callbacks), os::RealClock());
  CG_RETURN_IF_ERROR(engine->Init());
  return std::unique_ptr<ProbeEngine>(std::move(engine));
}

}  // namespace convguard
