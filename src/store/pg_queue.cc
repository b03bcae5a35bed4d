// The work queue of a PostgreSQL store (convguard/queue.h, docs/work-queue.md), over the
// tables of src/store/schema/pg/003_work_queue.sql.
//
// Concurrency: a claim picks its rows with SELECT ... FOR UPDATE SKIP LOCKED and leases
// them in the same statement, so two hosts claiming at once get disjoint rows and neither
// waits for the other. Joining a sweep inserts the stack's queue_joined row and its
// queue_work rows in one statement; two hosts of one stack joining at once conflict on
// queue_joined's key, the second waits for the first to commit and then inserts nothing.
// Completing and renewing name the owner in their WHERE clause, so a host whose lease was
// taken over can no longer touch the row. Lease times are the server's clock.
//
// Ownership: a PostgresWorkQueue owns its Connection. Thread-safety: one thread per object.
#include <algorithm>
#include <chrono>
#include <memory>
#include <set>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "convguard/queue.h"
#include "convguard/store.h"
#include "os/clock.h"
#include "os/system.h"
#include "store/pg_db.h"
#include "store/stored_records.h"

namespace convguard {
namespace {

using pg::Connection;
using pg::Int;
using pg::OptText;
using pg::Real;
using pg::Result;
using pg::Text;
using pg::Transaction;

// Leases shorter than this could lapse between a claim and the first renewal.
constexpr double kMinLeaseSeconds = 1.0;

Status CheckOwner(const std::string& owner) {
  if (owner.empty()) return Status::InvalidArgument("a queue owner must not be empty");
  return Status::Ok();
}

Status CheckLease(double lease_s) {
  if (!(lease_s >= kMinLeaseSeconds) || lease_s > 86400.0 * 7) {
    return Status::InvalidArgument("lease of " + std::to_string(lease_s) +
                                   " s is out of range; allowed 1 s to 7 days");
  }
  return Status::Ok();
}

class PostgresWorkQueue final : public WorkQueue {
 public:
  PostgresWorkQueue(std::unique_ptr<Connection> conn, std::string conninfo,
                    PostgresStoreOptions options)
      : conn_(std::move(conn)), conninfo_(std::move(conninfo)), options_(std::move(options)) {}

  StatusOr<int64_t> AddSweep(const QueueSweepSpec& sweep) override {
    return Guarded("queue add", [&]() -> StatusOr<int64_t> {
      if (sweep.problems.empty()) {
        return Status::InvalidArgument("a queued sweep needs at least one problem");
      }
      for (const QueueProblem& p : sweep.problems) {
        if (p.problem.empty()) return Status::InvalidArgument("a queued problem is empty");
      }
      if (sweep.stack_id && sweep.stack_id->empty()) {
        return Status::InvalidArgument("a queued sweep's stack id must not be empty");
      }
      Transaction tx(*conn_);
      CG_RETURN_IF_ERROR(tx.Begin());
      CG_ASSIGN_OR_RETURN(
          int64_t id,
          conn_->QueryInt("INSERT INTO queue_sweeps (label, stack_id, problems) VALUES ($1, $2, "
                          "$3) RETURNING id",
                          {Text(sweep.label), OptText(sweep.stack_id),
                           Int(static_cast<int64_t>(sweep.problems.size()))}));
      // Rows go in as batches of unnested arrays: one statement per batch, not per problem,
      // so that enqueueing 100,000 problems takes seconds.
      constexpr size_t kBatch = 5000;
      for (size_t first = 0; first < sweep.problems.size(); first += kBatch) {
        const size_t end = std::min(sweep.problems.size(), first + kBatch);
        std::string problems = "{";
        std::string algorithms = "{";
        for (size_t i = first; i < end; ++i) {
          if (i > first) {
            problems += ',';
            algorithms += ',';
          }
          problems += ArrayElement(sweep.problems[i].problem);
          algorithms += ArrayElement(sweep.problems[i].algorithm);
        }
        problems += '}';
        algorithms += '}';
        CG_RETURN_IF_ERROR(
            conn_
                ->Exec(
                    "INSERT INTO queue_problems (sweep_id, seq, problem, algorithm)"
                    " SELECT $1, $2 + o - 1, p, a"
                    " FROM unnest($3::text[], $4::text[]) WITH ORDINALITY AS t(p, a, o)",
                    {Int(id), Int(static_cast<int64_t>(first)), Text(problems), Text(algorithms)})
                .status());
      }
      CG_RETURN_IF_ERROR(tx.Commit());
      return id;
    });
  }

  StatusOr<std::vector<QueueLease>> Claim(const QueueClaimRequest& r) override {
    return Guarded("queue claim", [&]() -> StatusOr<std::vector<QueueLease>> {
      return Retried([&]() -> StatusOr<std::vector<QueueLease>> {
        CG_RETURN_IF_ERROR(CheckOwner(r.owner));
        CG_RETURN_IF_ERROR(CheckLease(r.lease_s));
        if (r.stack_id.empty()) return Status::InvalidArgument("a claim needs a stack id");
        if (r.max_problems < 1) {
          return Status::InvalidArgument("a claim must ask for at least one problem");
        }
        // Joining is a query of its own; a host claiming in a tight loop needs it only now
        // and then (Remaining, which a host asks when a claim comes back empty, always joins).
        const auto now = std::chrono::steady_clock::now();
        if (joined_stack_ != r.stack_id || now - joined_at_ > kRejoinEvery) {
          CG_RETURN_IF_ERROR(Join(r.stack_id));
          joined_stack_ = r.stack_id;
          joined_at_ = now;
        }
        CG_ASSIGN_OR_RETURN(
            Result rows,
            conn_->Exec(
                "WITH picked AS ("
                "  SELECT stack_id, sweep_id, seq, owner AS previous_owner FROM queue_work"
                "  WHERE stack_id = $1 AND (state = 'pending' OR (state = 'leased' AND"
                "        (lease_expires < clock_timestamp() OR owner = $2)))"
                "  ORDER BY sweep_id, seq LIMIT $5 FOR UPDATE SKIP LOCKED),"
                " leased AS ("
                "  UPDATE queue_work w SET state = 'leased', owner = $2, host = $3,"
                "    lease_expires = clock_timestamp() + make_interval(secs => $4::float8),"
                "    leases = w.leases + 1"
                "  FROM picked p"
                "  WHERE w.stack_id = p.stack_id AND w.sweep_id = p.sweep_id AND w.seq = p.seq"
                "  RETURNING w.sweep_id, w.seq, w.leases, p.previous_owner)"
                " SELECT l.sweep_id, l.seq, l.leases, COALESCE(l.previous_owner, ''), q.problem,"
                "  q.algorithm"
                " FROM leased l JOIN queue_problems q ON q.sweep_id = l.sweep_id AND q.seq = l.seq"
                " ORDER BY l.sweep_id, l.seq",
                {Text(r.stack_id), Text(r.owner), Text(r.host), Real(r.lease_s),
                 Int(r.max_problems)}));
        std::vector<QueueLease> out;
        out.reserve(static_cast<size_t>(rows.Rows()));
        for (int i = 0; i < rows.Rows(); ++i) {
          QueueLease lease;
          lease.sweep_id = rows.GetInt(i, 0);
          lease.seq = rows.GetInt(i, 1);
          lease.leases = rows.GetInt(i, 2);
          lease.previous_owner = rows.GetText(i, 3);
          if (lease.previous_owner == r.owner) lease.previous_owner.clear();
          lease.problem.problem = rows.GetText(i, 4);
          lease.problem.algorithm = rows.GetText(i, 5);
          lease.stack_id = r.stack_id;
          out.push_back(std::move(lease));
        }
        return out;
      });
    });
  }

  StatusOr<int64_t> Renew(const std::string& owner, double lease_s) override {
    return Guarded("queue lease renewal", [&]() -> StatusOr<int64_t> {
      return Retried([&]() -> StatusOr<int64_t> {
        CG_RETURN_IF_ERROR(CheckOwner(owner));
        CG_RETURN_IF_ERROR(CheckLease(lease_s));
        CG_ASSIGN_OR_RETURN(Result rows,
                            conn_->Exec("UPDATE queue_work SET lease_expires = clock_timestamp() +"
                                        " make_interval(secs => $2::float8)"
                                        " WHERE owner = $1 AND state = 'leased' RETURNING 1",
                                        {Text(owner), Real(lease_s)}));
        return static_cast<int64_t>(rows.Rows());
      });
    });
  }

  StatusOr<std::vector<bool>> Complete(const std::vector<QueueLease>& leases,
                                       const std::vector<std::string>& outcomes,
                                       const std::string& owner) override {
    return Guarded("queue completion", [&]() -> StatusOr<std::vector<bool>> {
      return Retried([&]() -> StatusOr<std::vector<bool>> {
        CG_RETURN_IF_ERROR(CheckOwner(owner));
        if (outcomes.size() != leases.size()) {
          return Status::InvalidArgument("one outcome per lease is needed");
        }
        std::vector<bool> held(leases.size(), false);
        if (leases.empty()) return held;
        // One statement for the whole batch (arrays unnested in step), so that completing a
        // batch is one round trip whatever its size.
        std::string stacks = "{", sweeps = "{", seqs = "{", texts = "{";
        for (size_t i = 0; i < leases.size(); ++i) {
          const char* sep = i == 0 ? "" : ",";
          stacks += sep + ArrayElement(leases[i].stack_id);
          sweeps += sep + std::to_string(leases[i].sweep_id);
          seqs += sep + std::to_string(leases[i].seq);
          texts += sep + ArrayElement(outcomes[i]);
        }
        CG_ASSIGN_OR_RETURN(
            Result rows,
            conn_->Exec(
                "WITH t AS (SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[],"
                "                                 $4::text[]) AS t(stack_id, sweep_id, seq, "
                "outcome)),"
                " marked AS ("
                "  UPDATE queue_work w SET state = 'done', outcome = t.outcome,"
                "    finished_at = clock_timestamp(), lease_expires = NULL"
                "  FROM t WHERE w.stack_id = t.stack_id AND w.sweep_id = t.sweep_id"
                "  AND w.seq = t.seq AND w.owner = $5 AND w.state = 'leased'"
                "  RETURNING w.stack_id, w.sweep_id, w.seq)"
                // Rows this owner marked before (a re-run): held, left as they are. The
                // statement's snapshot shows the rows marked just above as still leased.
                " SELECT stack_id, sweep_id, seq FROM marked"
                " UNION ALL SELECT w.stack_id, w.sweep_id, w.seq FROM queue_work w"
                "  JOIN t ON w.stack_id = t.stack_id AND w.sweep_id = t.sweep_id AND w.seq = t.seq"
                "  WHERE w.owner = $5 AND w.state = 'done'",
                {Text(stacks + "}"), Text(sweeps + "}"), Text(seqs + "}"), Text(texts + "}"),
                 Text(owner)}));
        std::set<std::tuple<std::string, int64_t, int64_t>> marked;
        for (int r = 0; r < rows.Rows(); ++r) {
          marked.emplace(rows.GetText(r, 0), rows.GetInt(r, 1), rows.GetInt(r, 2));
        }
        for (size_t i = 0; i < leases.size(); ++i) {
          held[i] = marked.count({leases[i].stack_id, leases[i].sweep_id, leases[i].seq}) > 0;
        }
        return held;
      });
    });
  }

  StatusOr<int64_t> GiveBack(const std::string& owner) override {
    return Guarded("queue give-back", [&]() -> StatusOr<int64_t> {
      return Retried([&]() -> StatusOr<int64_t> {
        CG_RETURN_IF_ERROR(CheckOwner(owner));
        CG_ASSIGN_OR_RETURN(
            Result rows,
            conn_->Exec("UPDATE queue_work SET state = 'pending', owner = NULL, host = NULL,"
                        " lease_expires = NULL WHERE owner = $1 AND state = 'leased' RETURNING 1",
                        {Text(owner)}));
        return static_cast<int64_t>(rows.Rows());
      });
    });
  }

  StatusOr<int64_t> Remaining(const std::string& stack_id) override {
    return Guarded("queue remaining", [&]() -> StatusOr<int64_t> {
      return Retried([&]() -> StatusOr<int64_t> {
        CG_RETURN_IF_ERROR(Join(stack_id));
        return conn_->QueryInt(
            "SELECT count(*) FROM queue_work WHERE stack_id = $1 AND state <> 'done'",
            {Text(stack_id)});
      });
    });
  }

  StatusOr<QueueStatus> GetStatus() override {
    return Guarded("queue status", [&]() -> StatusOr<QueueStatus> {
      return Retried([&]() -> StatusOr<QueueStatus> {
        QueueStatus out;
        Transaction tx(*conn_);  // one snapshot for the three tables
        CG_RETURN_IF_ERROR(tx.Begin("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY"));
        CG_ASSIGN_OR_RETURN(
            Result sweeps,
            conn_->Exec("SELECT id, label, stack_id, problems,"
                        " to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
                        " FROM queue_sweeps ORDER BY id"));
        for (int i = 0; i < sweeps.Rows(); ++i) {
          QueueSweepInfo s;
          s.id = sweeps.GetInt(i, 0);
          s.label = sweeps.GetText(i, 1);
          if (!sweeps.IsNull(i, 2)) s.stack_id = sweeps.GetText(i, 2);
          s.problems = sweeps.GetInt(i, 3);
          s.created_at = sweeps.GetText(i, 4);
          out.sweeps.push_back(std::move(s));
        }
        CG_ASSIGN_OR_RETURN(
            Result stacks, conn_->Exec("SELECT stack_id, count(*) FILTER (WHERE state = 'pending'),"
                                       " count(*) FILTER (WHERE state = 'leased' AND"
                                       "                  lease_expires >= clock_timestamp()),"
                                       " count(*) FILTER (WHERE state = 'leased' AND"
                                       "                  lease_expires < clock_timestamp()),"
                                       " count(*) FILTER (WHERE state = 'done')"
                                       " FROM queue_work GROUP BY stack_id ORDER BY stack_id"));
        for (int i = 0; i < stacks.Rows(); ++i) {
          out.stacks.push_back({stacks.GetText(i, 0), stacks.GetInt(i, 1), stacks.GetInt(i, 2),
                                stacks.GetInt(i, 3), stacks.GetInt(i, 4)});
        }
        CG_ASSIGN_OR_RETURN(
            Result hosts,
            conn_->Exec("SELECT stack_id, host, count(*) FILTER (WHERE state = 'leased'),"
                        " count(*) FILTER (WHERE state = 'done'),"
                        " COALESCE(to_char(max(finished_at) AT TIME ZONE 'UTC',"
                        "                  'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), '')"
                        " FROM queue_work WHERE host IS NOT NULL GROUP BY stack_id, host"
                        " ORDER BY stack_id, host"));
        for (int i = 0; i < hosts.Rows(); ++i) {
          out.hosts.push_back({hosts.GetText(i, 0), hosts.GetText(i, 1), hosts.GetInt(i, 2),
                               hosts.GetInt(i, 3), hosts.GetText(i, 4)});
        }
        CG_ASSIGN_OR_RETURN(Result outcomes,
                            conn_->Exec("SELECT stack_id, outcome, count(*) FROM queue_work"
                                        " WHERE state = 'done' GROUP BY stack_id, outcome"
                                        " ORDER BY stack_id, outcome"));
        for (int i = 0; i < outcomes.Rows(); ++i) {
          out.outcomes.emplace_back(outcomes.GetText(i, 0), outcomes.GetText(i, 1),
                                    outcomes.GetInt(i, 2));
        }
        CG_RETURN_IF_ERROR(tx.Commit());
        return out;
      });
    });
  }

  StatusOr<bool> DropSweep(int64_t sweep_id) override {
    return Guarded("queue drop", [&]() -> StatusOr<bool> {
      CG_ASSIGN_OR_RETURN(
          Result rows,
          conn_->Exec("DELETE FROM queue_sweeps WHERE id = $1 RETURNING 1", {Int(sweep_id)}));
      return rows.Rows() == 1;
    });
  }

 private:
  // An element of a PostgreSQL array literal: double-quoted, with " and \ escaped, so
  // that any text (commas, braces, spaces, the word NULL) stays one element as written.
  static std::string ArrayElement(const std::string& text) {
    std::string out = "\"";
    for (char c : text) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    out += '"';
    return out;
  }

  // Joins every sweep meant for `stack_id` that it has not joined: one statement, so that
  // the joined row and the work rows appear together.
  Status Join(const std::string& stack_id) {
    CG_ASSIGN_OR_RETURN(
        int64_t added,
        conn_->QueryInt(
            "WITH joined AS ("
            "  INSERT INTO queue_joined (sweep_id, stack_id)"
            "  SELECT s.id, $1 FROM queue_sweeps s"
            "  WHERE (s.stack_id IS NULL OR s.stack_id = $1) AND NOT EXISTS ("
            "    SELECT 1 FROM queue_joined j WHERE j.sweep_id = s.id AND j.stack_id = $1)"
            "  ON CONFLICT DO NOTHING RETURNING sweep_id),"
            " added AS ("
            "  INSERT INTO queue_work (stack_id, sweep_id, seq, state)"
            "  SELECT $1, q.sweep_id, q.seq, 'pending'"
            "  FROM queue_problems q JOIN joined j ON q.sweep_id = j.sweep_id RETURNING 1)"
            " SELECT count(*) FROM added",
            {Text(stack_id)}));
    // Many new rows at once: refresh the planner's statistics now, so that claims use the
    // index of open rows from the first one rather than after autovacuum gets round to it.
    if (added >= kAnalyzeAfterRows) {
      CG_RETURN_IF_ERROR(conn_->ExecScript("ANALYZE queue_work", "analyzing the work queue"));
    }
    return Status::Ok();
  }

  static constexpr int64_t kAnalyzeAfterRows = 1000;
  // Runs `once` (one statement or transaction), and again on a new connection each time it
  // fails because the connection was lost, until the server has been away longer than
  // options_.reconnect_wait_s. Every operation run through here may run twice: Claim
  // hands out again the rows already leased to its owner, Complete counts rows its owner
  // already marked, Renew and GiveBack set what they set.
  template <typename F>
  auto Retried(F&& once) -> decltype(once()) {
    std::optional<os::TimePoint> since;
    for (;;) {
      auto result = once();
      if (StatusOfResult(result).ok() || !conn_->Lost()) return result;
      if (!since) since = os::RealClock().Now();
      if (Status back = Reconnect(*since); !back.ok()) return back;
    }
  }

  // A new connection, tried at once and then after pauses of 0.25 s doubling to 5 s,
  // until reconnect_wait_s after `since` (or an interrupt).
  Status Reconnect(os::TimePoint since) {
    const std::string target = conn_->Target();
    const std::string lost = conn_->LastReason().empty() ? "connection lost" : conn_->LastReason();
    const auto seconds_since = [&] {
      return std::chrono::duration<double>(os::RealClock().Now() - since).count();
    };
    double pause_s = 0.0;
    bool told = false;
    std::string last = lost;
    for (;;) {
      if (pause_s > 0.0) {
        if (!told && options_.on_notice) {
          options_.on_notice("queue " + target + " unreachable (" + lost + "); waiting up to " +
                             std::to_string(static_cast<int>(options_.reconnect_wait_s)) +
                             " s for it to come back");
        }
        told = true;
        const auto until = os::RealClock().Now() + std::chrono::duration_cast<os::Duration>(
                                                       std::chrono::duration<double>(pause_s));
        while (os::RealClock().Now() < until) {
          if (os::InterruptRequested()) {
            return Status::IOError("interrupted while waiting for queue " + target +
                                   " to come back (" + last + ")");
          }
          os::RealClock().SleepFor(std::chrono::milliseconds(100));
        }
      }
      if (seconds_since() >= options_.reconnect_wait_s) {
        return Status::IOError("queue " + target + " is unreachable and did not come back within " +
                               std::to_string(static_cast<int>(options_.reconnect_wait_s)) +
                               " s (" + last +
                               "); the problems it leased go back to the queue "
                               "when their leases lapse");
      }
      const int timeout_s = std::max(
          2, std::min(options_.connect_timeout_s, static_cast<int>(options_.reconnect_wait_s)));
      StatusOr<std::unique_ptr<Connection>> fresh = Connection::Open(conninfo_, timeout_s);
      if (fresh.ok()) {
        conn_ = std::move(*fresh);
        if (told && options_.on_notice) options_.on_notice("queue " + target + " back");
        return Status::Ok();
      }
      if (fresh.status().code() != StatusCode::kIOError) return fresh.status();
      last = fresh.status().message();
      pause_s = pause_s == 0.0 ? 0.25 : std::min(pause_s * 2.0, 5.0);
    }
  }

  static const Status& StatusOfResult(const Status& s) { return s; }
  template <typename T>
  static const Status& StatusOfResult(const StatusOr<T>& s) {
    return s.status();
  }

  // Claims join again when this long has passed since this object last joined.
  static constexpr std::chrono::seconds kRejoinEvery{2};

  std::unique_ptr<Connection> conn_;
  const std::string conninfo_;
  const PostgresStoreOptions options_;
  std::string joined_stack_;
  std::chrono::steady_clock::time_point joined_at_;
};

}  // namespace

StatusOr<std::unique_ptr<WorkQueue>> OpenWorkQueue(const std::string& conninfo,
                                                   const PostgresStoreOptions& options) {
  return Guarded("OpenWorkQueue", [&]() -> StatusOr<std::unique_ptr<WorkQueue>> {
    // Opening the store checks that the database is a convguard store and migrates it, so
    // the queue's tables exist; the queue then keeps a connection of its own.
    CG_ASSIGN_OR_RETURN(std::unique_ptr<Store> store, OpenPostgresStore(conninfo, options));
    store.reset();
    CG_ASSIGN_OR_RETURN(std::unique_ptr<Connection> conn,
                        Connection::Open(conninfo, options.connect_timeout_s));
    return std::unique_ptr<WorkQueue>(new PostgresWorkQueue(std::move(conn), conninfo, options));
  });
}

}  // namespace convguard
