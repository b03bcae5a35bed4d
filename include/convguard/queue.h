// convguard/queue.h — a work queue of problems in a shared PostgreSQL store, which any
// number of hosts drain together (docs/work-queue.md).
//
// A sweep is enqueued once (AddSweep): its problems, for one named stack or for every
// stack that joins. A host asks for work for its own stack (Claim): the first time a stack
// asks, it joins every sweep meant for it (each problem gets a row for that stack); then it
// is leased up to N problems of that stack that are pending or whose lease lapsed, taken
// with FOR UPDATE SKIP LOCKED so that hosts asking at once never get the same row and never
// wait for each other. The host renews its leases while it probes (Renew) and marks each
// problem done (Complete) once its verdict is in the store. A lease that lapses (the host
// was killed, its network cut) makes the problem claimable again; identical stacks on
// several hosts share one set of rows, different stacks each get every problem.
//
// Times are the server's clock (clock_timestamp()), so hosts' clocks need not agree.
//
// Thread-safety: a WorkQueue object is used from one thread (it owns one connection);
// open one per thread or process. Any number of processes and hosts use one queue.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "convguard/status.h"
#include "convguard/store.h"

namespace convguard {

struct QueueProblem {
  std::string problem;    // canonical text form
  std::string algorithm;  // "" the backend's default, "*" every algorithm, or a name
};

struct QueueSweepSpec {
  std::string label;  // free text shown by status (e.g. the grid spec)
  // The stack the sweep is for; nullopt: every stack that asks for work.
  std::optional<std::string> stack_id;
  std::vector<QueueProblem> problems;  // in the order they are handed out; at least one
};

// One problem leased to a host for one stack.
struct QueueLease {
  int64_t sweep_id = 0;
  int64_t seq = 0;  // the problem's place in its sweep, from 0
  std::string stack_id;
  QueueProblem problem;
  // Who held it before, when it was taken over from a lapsed lease ("" when none): that
  // owner's claims in the store are released, since the queue has declared it gone.
  std::string previous_owner;
  int64_t leases = 0;  // how many times this row has been leased, this time included
};

struct QueueClaimRequest {
  std::string stack_id;
  std::string host;   // shown by status; e.g. the host name
  std::string owner;  // unique per process (ThisProcessClaimOwner)
  int64_t max_problems = 1;
  double lease_s = 60.0;  // the lease lapses this long after the claim or the last Renew
};

struct QueueSweepInfo {
  int64_t id = 0;
  std::string label;
  std::optional<std::string> stack_id;
  int64_t problems = 0;
  std::string created_at;  // server time, ISO 8601
};

// Progress of one stack over every sweep it joined.
struct QueueStackProgress {
  std::string stack_id;
  int64_t pending = 0;
  int64_t leased = 0;  // leases that have not lapsed
  int64_t lapsed = 0;  // leased, but the lease lapsed (claimable again)
  int64_t done = 0;
};

// One host's share of one stack's work.
struct QueueHostProgress {
  std::string stack_id;
  std::string host;
  int64_t leased = 0;  // held now (lapsed ones included)
  int64_t done = 0;
  std::string last_done_at;  // server time, ISO 8601; "" when none yet
};

struct QueueStatus {
  std::vector<QueueSweepInfo> sweeps;      // by id
  std::vector<QueueStackProgress> stacks;  // by stack id
  std::vector<QueueHostProgress> hosts;    // by stack id, then host
  // Outcomes of the finished rows, per stack: ("stack", "OK") -> count.
  std::vector<std::tuple<std::string, std::string, int64_t>> outcomes;
};

class WorkQueue {
 public:
  virtual ~WorkQueue() = default;

  // Enqueues a sweep; returns its id. Errors: kInvalidArgument for no problems or an
  // empty problem text.
  virtual StatusOr<int64_t> AddSweep(const QueueSweepSpec& sweep) = 0;

  // Joins the sweeps meant for request.stack_id that it has not joined yet (at most every
  // 2 s per WorkQueue object: a claim loop need not ask each time; Remaining always
  // joins, so a host that finds nothing to claim sees a sweep added since), then leases
  // it up to max_problems problems (pending ones, or ones whose lease lapsed), in queue
  // order. Empty when there is nothing to lease now (problems may still be leased to
  // others; see Remaining). Rows already leased to request.owner are leased again and
  // returned too (a claim whose answer was lost with the connection): claim while holding
  // none.
  virtual StatusOr<std::vector<QueueLease>> Claim(const QueueClaimRequest& request) = 0;

  // Extends every lease `owner` holds to lease_s from now; returns how many it holds.
  // A lease that lapsed but was not taken over is held again.
  virtual StatusOr<int64_t> Renew(const std::string& owner, double lease_s) = 0;

  // Marks leased problems done with their outcomes (e.g. "OK", "HANG", "OK x3, HANG"),
  // in one statement. Returns, per lease, whether `owner` still held it (or had already
  // marked it): false when the lease lapsed and another host took it over (that host
  // decides it; nothing is marked).
  virtual StatusOr<std::vector<bool>> Complete(const std::vector<QueueLease>& leases,
                                               const std::vector<std::string>& outcomes,
                                               const std::string& owner) = 0;

  // Gives back every lease `owner` holds, unfinished (an interrupted host); returns how
  // many.
  virtual StatusOr<int64_t> GiveBack(const std::string& owner) = 0;

  // Problems of `stack_id` not done yet (pending or leased, to anyone), over the sweeps
  // it joined, after joining those meant for it.
  virtual StatusOr<int64_t> Remaining(const std::string& stack_id) = 0;

  virtual StatusOr<QueueStatus> GetStatus() = 0;

  // Removes a sweep and its rows (verdicts already in the store stay). Returns false when
  // there is no such sweep.
  virtual StatusOr<bool> DropSweep(int64_t sweep_id) = 0;
};

// Opens the work queue of the PostgreSQL store named by `conninfo` (a connection string as
// OpenPostgresStore takes), migrating the store's schema first. A server that goes away
// later is waited for as the store waits (options.reconnect_wait_s, told through
// options.on_notice) and the operation runs again; AddSweep and DropSweep are not run
// again (a lost answer is an error: look at GetStatus). Errors: those of
// OpenPostgresStore; kUnsupported for a build without PostgreSQL support.
StatusOr<std::unique_ptr<WorkQueue>> OpenWorkQueue(const std::string& conninfo,
                                                   const PostgresStoreOptions& options = {});

}  // namespace convguard
