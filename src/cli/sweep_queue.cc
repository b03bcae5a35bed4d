// convguard sweep --from-queue: one host's share of a sweep enqueued in a shared
// PostgreSQL store (docs/work-queue.md).
//
// The loop: lease a batch of this stack's problems, probe them with the warm engine
// (verdicts go to the store as they arrive, as in any sweep), mark them done, repeat; a
// second thread renews the leases on its own connection while the batch runs, so a long
// probe (a hang being confirmed) does not lose its lease. When nothing is left to lease
// but other hosts still hold some of this stack's problems, wait: a host that died leaves
// a lease that lapses, and its problems come back. The sweep ends when every problem of
// the stack is done (with --follow, it waits for new sweeps instead).
#include "cli/sweep_queue.h"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "cli/probe_common.h"
#include "cli/progress.h"
#include "convguard/exit_status.h"
#include "convguard/queue.h"
#include "convguard/text_forms.h"
#include "os/system.h"

namespace convguard::cli {
namespace {

constexpr const char* kWho = "convguard sweep";

// Renews every lease of `owner` every lease_s / 3 on a connection of its own, until
// stopped. A renewal that fails is reported once; the next one may succeed.
class LeaseRenewer {
 public:
  LeaseRenewer(std::unique_ptr<WorkQueue> queue, std::string owner, double lease_s)
      : queue_(std::move(queue)), owner_(std::move(owner)), lease_s_(lease_s) {
    thread_ = std::thread([this] { Loop(); });
  }
  ~LeaseRenewer() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    wake_.notify_all();
    thread_.join();
  }

 private:
  void Loop() {
    const auto period = std::chrono::duration<double>(lease_s_ / 3.0);
    std::unique_lock<std::mutex> lock(mu_);
    bool reported = false;
    while (!wake_.wait_for(lock, period, [this] { return stop_; })) {
      lock.unlock();
      StatusOr<int64_t> renewed = queue_->Renew(owner_, lease_s_);
      if (!renewed.ok() && !reported) {
        std::fprintf(stderr, "%s: renewing the queue leases failed (%s); retrying\n", kWho,
                     renewed.status().message().c_str());
        reported = true;
      } else if (renewed.ok()) {
        reported = false;
      }
      lock.lock();
    }
  }

  std::unique_ptr<WorkQueue> queue_;
  const std::string owner_;
  const double lease_s_;
  std::mutex mu_;
  std::condition_variable wake_;
  bool stop_ = false;
  std::thread thread_;
};

// What a queue row records of its problem's verdicts: "OK", or "HANG", or for several
// algorithms "OK x5, HANG x1" (kinds in name order).
std::string OutcomeOf(const std::vector<const Verdict*>& verdicts) {
  std::map<std::string, int> counts;
  for (const Verdict* v : verdicts) ++counts[std::string(VerdictName(v->kind))];
  std::string out;
  for (const auto& [kind, n] : counts) {
    if (!out.empty()) out += ", ";
    out += kind;
    if (verdicts.size() > 1) out += " x" + std::to_string(n);
  }
  return out;
}

// Sleeps up to `seconds`, returning early (false) when an interrupt arrives.
bool SleepUnlessInterrupted(double seconds) {
  const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (std::chrono::steady_clock::now() < end) {
    if (os::InterruptRequested()) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return !os::InterruptRequested();
}

}  // namespace

std::vector<FlagSpec> QueueSweepFlagSpecs() {
  return {
      {"--from-queue", "",
       "take problems from the work queue of the --db PostgreSQL store instead of --grid, "
       "--list or --log (docs/work-queue.md)"},
      {"--follow", "", "with --from-queue: keep waiting for new sweeps when the queue is empty"},
      {"--lease", "SECONDS",
       "with --from-queue: how long a lease lasts unless renewed; a host gone this long "
       "gives its problems back (default 60)"},
      {"--claim", "N", "with --from-queue: problems leased at a time (default 16)"},
      {"--host-label", "NAME",
       "with --from-queue: this host's name in `convguard queue status` (default: the host "
       "name)"},
  };
}

int SweepFromQueue(const FlagParser& flags, const std::string& table,
                   const std::function<void(const std::vector<Verdict>&, const std::string&,
                                            const std::vector<DeviceStack>&)>& print_table) {
  for (const char* other : {"--grid", "--list", "--log", "--order", "--budget", "--algo"}) {
    if (flags.Has(other)) {
      std::fprintf(stderr,
                   "%s: %s cannot be used with --from-queue (the queue holds the problems and "
                   "their algorithms: give them to `convguard queue add`)\n",
                   kWho, other);
      return kExitBadInput;
    }
  }
  if (flags.Has("--no-store")) {
    std::fprintf(stderr, "%s: --from-queue needs the store that holds the queue, not --no-store\n",
                 kWho);
    return kExitBadInput;
  }
  const std::string target = StorePathFromFlags(flags);
  if (!IsPostgresStoreTarget(target)) {
    std::fprintf(stderr,
                 "%s: --from-queue needs a PostgreSQL store (--db postgresql://... or "
                 "service=NAME; docs/work-queue.md); '%s' is an SQLite file\n",
                 kWho, StoreTargetLabel(target).c_str());
    return kExitBadInput;
  }
  double lease_s = 60.0;
  if (flags.Has("--lease")) {
    StatusOr<double> v = ParseDoubleFlag("--lease", flags.Get("--lease"), 1.0, 86400.0);
    if (!v.ok()) {
      std::fprintf(stderr, "%s: %s\n", kWho, v.status().message().c_str());
      return kExitBadInput;
    }
    lease_s = *v;
  }
  int64_t claim = 16;
  if (flags.Has("--claim")) {
    StatusOr<int64_t> v = ParseIntFlag("--claim", flags.Get("--claim"), 1, 100000);
    if (!v.ok()) {
      std::fprintf(stderr, "%s: %s\n", kWho, v.status().message().c_str());
      return kExitBadInput;
    }
    claim = *v;
  }
  const std::string host = flags.Get("--host-label", os::Hostname());
  if (host.empty()) {
    std::fprintf(stderr, "%s: --host-label must not be empty\n", kWho);
    return kExitBadInput;
  }
  StatusOr<ProbeOptions> options = ProbeOptionsFromFlags(flags);
  if (!options.ok()) {
    std::fprintf(stderr, "%s: %s\n", kWho, options.status().message().c_str());
    return kExitBadInput;
  }
  StatusOr<std::unique_ptr<Store>> store = OpenStoreFromFlags(flags);
  if (!store.ok()) {
    std::fprintf(stderr, "%s: store: %s\n", kWho, store.status().message().c_str());
    return store.status().code() == StatusCode::kInvalidArgument ? kExitBadInput : kExitFailure;
  }
  StatusOr<PostgresStoreOptions> pg_options = PostgresOptionsFromFlags(flags);
  if (!pg_options.ok()) {
    std::fprintf(stderr, "%s: %s\n", kWho, pg_options.status().message().c_str());
    return kExitBadInput;
  }
  StatusOr<std::unique_ptr<WorkQueue>> queue = OpenWorkQueue(target, *pg_options);
  StatusOr<std::unique_ptr<WorkQueue>> renewal_queue = OpenWorkQueue(target, *pg_options);
  for (const auto* q : {&queue, &renewal_queue}) {
    if (!q->ok()) {
      std::fprintf(stderr, "%s: queue: %s\n", kWho, q->status().message().c_str());
      return kExitFailure;
    }
  }
  StatusOr<std::string> owner = ThisProcessClaimOwner();
  if (!owner.ok()) {
    std::fprintf(stderr, "%s: %s\n", kWho, owner.status().message().c_str());
    return kExitFailure;
  }

  os::InstallInterruptHandlers();
  ProgressView view(flags.Has("--quiet"));
  const ProbeCallbacks callbacks = view.Callbacks(flags.Has("--verbose"));
  StatusOr<std::unique_ptr<ProbeEngine>> engine =
      ProbeEngine::Start(*options, store->get(), callbacks);
  if (!engine.ok()) {
    std::fprintf(stderr, "%s: %s\n", kWho, engine.status().message().c_str());
    return kExitFailure;
  }
  const StackFingerprint stack = (*engine)->stack();
  const std::vector<DeviceStack> device_stacks = (*engine)->stacks();
  for (const DeviceStack& ds : device_stacks) {
    if (ds.stack.Id() != stack.Id()) {
      std::fprintf(stderr,
                   "%s: the devices present different stacks (%s, %s); a queue is taken per "
                   "stack: run one `sweep --from-queue --devices ...` per stack\n",
                   kWho, stack.Id().c_str(), ds.stack.Id().c_str());
      return kExitFailure;
    }
  }
  std::fprintf(stderr, "%s: taking problems from the queue of %s for stack %s (host %s): %s\n",
               kWho, StoreLabelFromFlags(flags).c_str(), stack.Id().c_str(), host.c_str(),
               stack.Summary().c_str());
  if (stack.is_emulated()) {
    std::fprintf(stderr, "%s: EMULATED STACK: %s\n", kWho, stack.emulation.c_str());
  }

  LeaseRenewer renewer(std::move(*renewal_queue), *owner, lease_s);
  std::vector<Verdict> decided;  // every verdict this host recorded or found known
  int64_t completed = 0;
  int64_t lost = 0;
  bool interrupted = false;
  bool waiting_said = false;
  std::set<std::string> released_owners;
  const auto started = std::chrono::steady_clock::now();
  while (true) {
    if (os::InterruptRequested()) {
      interrupted = true;
      break;
    }
    QueueClaimRequest request{stack.Id(), host, *owner, claim, lease_s};
    StatusOr<std::vector<QueueLease>> leases = (*queue)->Claim(request);
    if (!leases.ok()) {
      view.Finish();
      std::fprintf(stderr, "%s: queue: %s\n", kWho, leases.status().message().c_str());
      return kExitFailure;
    }
    if (leases->empty()) {
      StatusOr<int64_t> remaining = (*queue)->Remaining(stack.Id());
      if (!remaining.ok()) {
        view.Finish();
        std::fprintf(stderr, "%s: queue: %s\n", kWho, remaining.status().message().c_str());
        return kExitFailure;
      }
      if (*remaining == 0 && !flags.Has("--follow")) break;
      if (!waiting_said) {
        std::fprintf(stderr,
                     *remaining > 0
                         ? "%s: %lld problem(s) of this stack are leased to other hosts; waiting "
                           "(a lease that lapses comes back here)\n"
                         : "%s: the queue is empty; waiting for new sweeps (--follow)\n",
                     kWho, static_cast<long long>(*remaining));
        waiting_said = true;
      }
      if (!SleepUnlessInterrupted(std::min(0.25, lease_s / 4.0))) {
        interrupted = true;
        break;
      }
      continue;
    }
    waiting_said = false;
    // A lease taken over from a lapsed one: the queue declared its owner gone, so its
    // claims on these keys must not keep this host from probing them.
    for (const QueueLease& l : *leases) {
      if (l.previous_owner.empty() || !released_owners.insert(l.previous_owner).second) continue;
      if (Status s = (*store)->Release(l.previous_owner, std::nullopt); !s.ok()) {
        std::fprintf(stderr, "%s: releasing the claims of %s: %s\n", kWho, l.previous_owner.c_str(),
                     s.message().c_str());
      }
    }
    std::vector<ProbeJob> jobs;
    bool bad_problem = false;
    for (const QueueLease& l : *leases) {
      StatusOr<Problem> p = ParseProblem(l.problem.problem, TextForm::kCanonical);
      if (!p.ok()) {
        std::fprintf(stderr, "%s: queue problem %lld/%lld '%s' cannot be read: %s\n", kWho,
                     static_cast<long long>(l.sweep_id), static_cast<long long>(l.seq),
                     l.problem.problem.c_str(), p.status().message().c_str());
        bad_problem = true;
        continue;
      }
      jobs.push_back({*p, l.problem.algorithm});
    }
    if (bad_problem) {
      (void)(*queue)->GiveBack(*owner);
      view.Finish();
      return kExitFailure;
    }
    StatusOr<ProbeRunResult> ran = (*engine)->Run(jobs);
    if (!ran.ok()) {
      (void)(*queue)->GiveBack(*owner);
      view.Finish();
      std::fprintf(stderr, "%s: %s\n", kWho, ran.status().message().c_str());
      return kExitFailure;
    }
    std::map<std::string, std::vector<const Verdict*>> by_problem;
    for (const std::vector<Verdict>* list : {&ran->verdicts, &ran->known}) {
      for (const Verdict& v : *list) {
        if (v.stack_id == stack.Id()) by_problem[v.problem].push_back(&v);
      }
    }
    std::vector<QueueLease> finished;
    std::vector<std::string> outcomes;
    for (const QueueLease& l : *leases) {
      auto it = by_problem.find(l.problem.problem);
      if (it == by_problem.end()) continue;  // not decided (interrupted): given back below
      finished.push_back(l);
      outcomes.push_back(OutcomeOf(it->second));
    }
    if (!finished.empty()) {
      StatusOr<std::vector<bool>> held = (*queue)->Complete(finished, outcomes, *owner);
      if (!held.ok()) {
        view.Finish();
        std::fprintf(stderr, "%s: queue: %s (the verdicts are in the store)\n", kWho,
                     held.status().message().c_str());
        return kExitFailure;
      }
      for (size_t i = 0; i < held->size(); ++i) {
        if ((*held)[i]) {
          ++completed;
        } else {
          ++lost;
          std::fprintf(stderr,
                       "%s: the lease of %s lapsed and another host took it over; it decides "
                       "that problem\n",
                       kWho, finished[i].problem.problem.c_str());
        }
      }
    }
    decided.insert(decided.end(), ran->known.begin(), ran->known.end());
    decided.insert(decided.end(), ran->verdicts.begin(), ran->verdicts.end());
    if (ran->interrupted) {
      interrupted = true;
      break;
    }
    // The queue's progress, not only this batch's: what a person watching one host of many
    // wants to know.
    if (!flags.Has("--quiet")) {
      if (StatusOr<int64_t> left = (*queue)->Remaining(stack.Id()); left.ok()) {
        view.Finish();
        std::fprintf(stderr, "%s: queue: this host finished %lld; %lld left for this stack\n", kWho,
                     static_cast<long long>(completed), static_cast<long long>(*left));
      }
    }
  }
  view.Finish();
  int64_t given_back = 0;
  if (StatusOr<int64_t> back = (*queue)->GiveBack(*owner); back.ok()) given_back = *back;
  print_table(decided, table, device_stacks);
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  std::fprintf(
      stderr, "%s: %s: this host finished %lld queued problem(s) in %.1f s%s%s\n", kWho,
      interrupted ? "interrupted" : "queue done for this stack", static_cast<long long>(completed),
      elapsed,
      lost > 0 ? (", " + std::to_string(lost) + " lease(s) lost to other hosts").c_str() : "",
      given_back > 0 ? (", " + std::to_string(given_back) + " unfinished given back").c_str() : "");
  std::fprintf(stderr, "%s: verdicts are in %s\n", kWho, StoreLabelFromFlags(flags).c_str());
  return interrupted ? kExitInterrupted : kExitOk;
}

}  // namespace convguard::cli
