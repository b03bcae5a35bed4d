// The work queue (src/store/pg_queue.cc, src/cli/queue.cc, src/cli/sweep_queue.cc)
// against a real PostgreSQL server (tests/support/pg_server.h: one server for this
// binary, a fresh database per test).
//
// WorkQueueTest: the queue's rules through its API — order, stacks, leases that lapse and
// are renewed, give-back, concurrent claimers on their own connections never sharing a
// row, concurrent joins. QueueCliTest: hosts as separate `convguard sweep --from-queue`
// processes, one of them SIGKILLed in the middle of a probe.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <latch>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "convguard/queue.h"
#include "convguard/store.h"
#include "os/pipe_io.h"
#include "os/process.h"
#include "store/pg_db.h"
#include "support/cli_runner.h"
#include "support/pg_server.h"

namespace convguard {
namespace {

using testing_support::CliResult;
using testing_support::MakeTempDir;
using testing_support::PgServer;
using testing_support::PgServerEnvironment;
using testing_support::RunConvguard;

const ::testing::Environment* const kPgServer =
    ::testing::AddGlobalTestEnvironment(new PgServerEnvironment);

class QueueDatabase : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    server_ = PgServerEnvironment::Server(&why);
    if (server_ == nullptr) GTEST_SKIP() << why;
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    StatusOr<std::string> name = server_->CreateDatabase(info->name());
    ASSERT_TRUE(name.ok()) << name.status().ToString();
    conninfo_ = server_->KeywordConnInfo(*name);
  }

  std::unique_ptr<WorkQueue> Open() {
    StatusOr<std::unique_ptr<WorkQueue>> q = OpenWorkQueue(conninfo_);
    EXPECT_TRUE(q.ok()) << q.status().ToString();
    return q.ok() ? std::move(q).value() : nullptr;
  }

  // One integer from `sql`, through a connection of its own.
  int64_t QueryInt(const std::string& sql) {
    StatusOr<std::unique_ptr<pg::Connection>> conn = pg::Connection::Open(conninfo_, 10);
    EXPECT_TRUE(conn.ok()) << conn.status().ToString();
    if (!conn.ok()) return -1;
    StatusOr<int64_t> value = (*conn)->QueryInt(sql);
    EXPECT_TRUE(value.ok()) << value.status().ToString();
    return value.ok() ? *value : -1;
  }

  // The rows of a one-column query, as text.
  std::vector<std::string> QueryColumn(const std::string& sql) {
    std::vector<std::string> out;
    StatusOr<std::unique_ptr<pg::Connection>> conn = pg::Connection::Open(conninfo_, 10);
    EXPECT_TRUE(conn.ok()) << conn.status().ToString();
    if (!conn.ok()) return out;
    StatusOr<pg::Result> rows = (*conn)->Exec(sql);
    EXPECT_TRUE(rows.ok()) << rows.status().ToString();
    if (!rows.ok()) return out;
    for (int i = 0; i < rows->Rows(); ++i) out.push_back(rows->GetText(i, 0));
    return out;
  }

  PgServer* server_ = nullptr;
  std::string conninfo_;
};

QueueSweepSpec Sweep(int problems, std::optional<std::string> stack = std::nullopt) {
  QueueSweepSpec s;
  s.label = "test";
  s.stack_id = std::move(stack);
  for (int i = 0; i < problems; ++i) s.problems.push_back({"p" + std::to_string(i), ""});
  return s;
}

QueueClaimRequest Request(const std::string& stack, const std::string& owner, int64_t n,
                          double lease_s = 60.0) {
  return {stack, "host-of-" + owner, owner, n, lease_s};
}

std::vector<std::string> Problems(const std::vector<QueueLease>& leases) {
  std::vector<std::string> out;
  for (const QueueLease& l : leases) out.push_back(l.problem.problem);
  return out;
}

using WorkQueueTest = QueueDatabase;

TEST_F(WorkQueueTest, ProblemsAreLeasedInQueueOrderAndDoneOnce) {
  auto q = Open();
  ASSERT_NE(q, nullptr);
  ASSERT_TRUE(q->AddSweep(Sweep(5)).ok());
  StatusOr<std::vector<QueueLease>> first = q->Claim(Request("S", "a", 2));
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(Problems(*first), (std::vector<std::string>{"p0", "p1"}));
  StatusOr<std::vector<QueueLease>> rest = q->Claim(Request("S", "b", 10));
  ASSERT_TRUE(rest.ok());
  EXPECT_EQ(Problems(*rest), (std::vector<std::string>{"p2", "p3", "p4"}));
  EXPECT_TRUE(q->Claim(Request("S", "c", 10))->empty());
  EXPECT_EQ(*q->Remaining("S"), 5);
  for (const QueueLease& l : *first) {
    EXPECT_EQ(l.leases, 1);
    EXPECT_EQ(l.previous_owner, "");
    EXPECT_EQ(l.stack_id, "S");
  }
  StatusOr<std::vector<bool>> done = q->Complete(*first, {"OK", "HANG"}, "a");
  ASSERT_TRUE(done.ok()) << done.status().ToString();
  EXPECT_EQ(*done, (std::vector<bool>{true, true}));
  // Completing again (a re-run after a lost answer) says they are done and changes
  // nothing; completing as someone else marks nothing.
  EXPECT_EQ(*q->Complete(*first, {"WRONG", "WRONG"}, "a"), (std::vector<bool>{true, true}));
  EXPECT_EQ(*q->Complete(*rest, {"OK", "OK", "OK"}, "a"), (std::vector<bool>{false, false, false}));
  EXPECT_EQ(*q->Remaining("S"), 3);
  ASSERT_TRUE(q->Complete(*rest, {"OK", "OK", "CRASH"}, "b").ok());
  EXPECT_EQ(*q->Remaining("S"), 0);

  StatusOr<QueueStatus> status = q->GetStatus();
  ASSERT_TRUE(status.ok()) << status.status().ToString();
  ASSERT_EQ(status->sweeps.size(), 1u);
  EXPECT_EQ(status->sweeps[0].problems, 5);
  EXPECT_FALSE(status->sweeps[0].stack_id.has_value());
  ASSERT_EQ(status->stacks.size(), 1u);
  EXPECT_EQ(status->stacks[0].done, 5);
  EXPECT_EQ(status->stacks[0].pending + status->stacks[0].leased + status->stacks[0].lapsed, 0);
  std::map<std::string, int64_t> hosts;
  for (const QueueHostProgress& h : status->hosts) hosts[h.host] = h.done;
  EXPECT_EQ(hosts, (std::map<std::string, int64_t>{{"host-of-a", 2}, {"host-of-b", 3}}));
  std::map<std::string, int64_t> outcomes;
  for (const auto& [stack, outcome, n] : status->outcomes) outcomes[outcome] = n;
  EXPECT_EQ(outcomes, (std::map<std::string, int64_t>{{"CRASH", 1}, {"HANG", 1}, {"OK", 3}}));
}

TEST_F(WorkQueueTest, EachStackGetsEverySweepMeantForIt) {
  auto q = Open();
  ASSERT_NE(q, nullptr);
  ASSERT_TRUE(q->AddSweep(Sweep(3)).ok());            // every stack
  ASSERT_TRUE(q->AddSweep(Sweep(2, "only-B")).ok());  // one stack
  EXPECT_EQ(q->Claim(Request("A", "a", 100))->size(), 3u);
  EXPECT_EQ(q->Claim(Request("only-B", "b", 100))->size(), 5u);
  // A sweep added later is joined by stacks that already took work.
  ASSERT_TRUE(q->AddSweep(Sweep(4)).ok());
  EXPECT_EQ(*q->Remaining("A"), 7);
  EXPECT_EQ(q->Claim(Request("A", "a2", 100))->size(), 4u);
  // A claim hands its owner again what it already holds (an answer lost with the
  // connection): a host claims while holding nothing.
  EXPECT_EQ(q->Claim(Request("A", "a", 100))->size(), 3u);
  // A: the first and third sweeps; only-B: the first two (it has not asked since).
  EXPECT_EQ(QueryInt("SELECT count(*) FROM queue_work"), (3 + 4) + (3 + 2));
}

TEST_F(WorkQueueTest, ALapsedLeaseGoesToTheNextClaimerAndTheOldOwnerLosesIt) {
  auto q = Open();
  ASSERT_NE(q, nullptr);
  ASSERT_TRUE(q->AddSweep(Sweep(2)).ok());
  StatusOr<std::vector<QueueLease>> a = q->Claim(Request("S", "a", 1, 1.0));
  ASSERT_EQ(a->size(), 1u);
  StatusOr<std::vector<QueueLease>> b = q->Claim(Request("S", "b", 5, 1.0));
  EXPECT_EQ(Problems(*b), (std::vector<std::string>{"p1"}));  // p0 is still a's
  std::this_thread::sleep_for(std::chrono::milliseconds(1300));
  StatusOr<std::vector<QueueLease>> c = q->Claim(Request("S", "c", 5, 30.0));
  ASSERT_TRUE(c.ok());
  ASSERT_EQ(c->size(), 2u);  // both lapsed
  EXPECT_EQ(c->at(0).problem.problem, "p0");
  EXPECT_EQ(c->at(0).previous_owner, "a");
  EXPECT_EQ(c->at(0).leases, 2);
  EXPECT_EQ(c->at(1).previous_owner, "b");
  // a comes back: its lease is gone, it can neither renew nor complete.
  EXPECT_EQ(*q->Renew("a", 30.0), 0);
  EXPECT_EQ(*q->Complete(*a, {"OK"}, "a"), std::vector<bool>{false});
  EXPECT_EQ(*q->Complete(*c, {"OK", "OK"}, "c"), (std::vector<bool>{true, true}));
  EXPECT_EQ(QueryInt("SELECT count(*) FROM queue_work WHERE host = 'host-of-c'"), 2);
}

TEST_F(WorkQueueTest, RenewingKeepsALeaseAndGivingBackReturnsIt) {
  auto q = Open();
  ASSERT_NE(q, nullptr);
  ASSERT_TRUE(q->AddSweep(Sweep(3)).ok());
  ASSERT_EQ(q->Claim(Request("S", "a", 2, 1.0))->size(), 2u);
  for (int i = 0; i < 3; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    EXPECT_EQ(*q->Renew("a", 1.0), 2);
  }
  // 1.5 s after the claim, a's renewed leases still hold: only p2 is free.
  EXPECT_EQ(Problems(*q->Claim(Request("S", "b", 5))), std::vector<std::string>{"p2"});
  EXPECT_EQ(*q->GiveBack("a"), 2);
  EXPECT_EQ(*q->GiveBack("a"), 0);
  StatusOr<std::vector<QueueLease>> again = q->Claim(Request("S", "c", 5));
  EXPECT_EQ(Problems(*again), (std::vector<std::string>{"p0", "p1"}));
  EXPECT_EQ(again->at(0).previous_owner, "");  // given back, not lapsed: nobody to release
  StatusOr<QueueStatus> status = q->GetStatus();
  ASSERT_EQ(status->stacks.size(), 1u);
  EXPECT_EQ(status->stacks[0].leased, 3);
}

TEST_F(WorkQueueTest, ClaimersOnTheirOwnConnectionsNeverShareARow) {
  constexpr int kClaimers = 8;
  constexpr int kProblems = 1500;
  {
    auto q = Open();
    ASSERT_NE(q, nullptr);
    ASSERT_TRUE(q->AddSweep(Sweep(kProblems)).ok());
  }
  std::latch start(kClaimers);
  std::vector<std::vector<std::string>> taken(kClaimers);
  std::vector<std::string> errors(kClaimers);
  std::vector<std::thread> threads;
  for (int i = 0; i < kClaimers; ++i) {
    threads.emplace_back([&, i] {
      StatusOr<std::unique_ptr<WorkQueue>> q = OpenWorkQueue(conninfo_);
      start.arrive_and_wait();
      if (!q.ok()) {
        errors[i] = q.status().ToString();
        return;
      }
      const std::string owner = "o" + std::to_string(i);
      while (true) {
        StatusOr<std::vector<QueueLease>> got = (*q)->Claim(Request("S", owner, 7));
        if (!got.ok()) {
          errors[i] = got.status().ToString();
          return;
        }
        if (got->empty()) return;
        for (const QueueLease& l : *got) taken[i].push_back(l.problem.problem);
        StatusOr<std::vector<bool>> done =
            (*q)->Complete(*got, std::vector<std::string>(got->size(), "OK"), owner);
        if (!done.ok()) errors[i] = done.status().ToString();
      }
    });
  }
  for (std::thread& t : threads) t.join();
  std::multiset<std::string> all;
  for (int i = 0; i < kClaimers; ++i) {
    EXPECT_EQ(errors[i], "") << "claimer " << i;
    all.insert(taken[i].begin(), taken[i].end());
  }
  EXPECT_EQ(all.size(), static_cast<size_t>(kProblems));
  EXPECT_EQ(std::set<std::string>(all.begin(), all.end()).size(), static_cast<size_t>(kProblems));
  EXPECT_EQ(QueryInt("SELECT count(*) FROM queue_work WHERE leases <> 1 OR state <> 'done'"), 0);
  int busy = 0;
  for (const auto& t : taken) busy += t.empty() ? 0 : 1;
  EXPECT_GT(busy, 1);  // the work was spread, not taken by one claimer while others waited
}

TEST_F(WorkQueueTest, HostsOfOneStackJoiningAtOnceAddItsRowsOnce) {
  constexpr int kHosts = 8;
  {
    auto q = Open();
    ASSERT_NE(q, nullptr);
    ASSERT_TRUE(q->AddSweep(Sweep(200)).ok());
    ASSERT_TRUE(q->AddSweep(Sweep(100)).ok());
  }
  std::latch start(kHosts);
  std::vector<int64_t> remaining(kHosts, -1);
  std::vector<std::thread> threads;
  for (int i = 0; i < kHosts; ++i) {
    threads.emplace_back([&, i] {
      StatusOr<std::unique_ptr<WorkQueue>> q = OpenWorkQueue(conninfo_);
      start.arrive_and_wait();
      if (!q.ok()) return;
      StatusOr<int64_t> r = (*q)->Remaining("S");
      if (r.ok()) remaining[i] = *r;
    });
  }
  for (std::thread& t : threads) t.join();
  for (int i = 0; i < kHosts; ++i) EXPECT_EQ(remaining[i], 300) << "host " << i;
  EXPECT_EQ(QueryInt("SELECT count(*) FROM queue_work"), 300);
  EXPECT_EQ(QueryInt("SELECT count(*) FROM queue_joined"), 2);
}

TEST_F(WorkQueueTest, AnyTextSurvivesTheQueueAndADroppedSweepIsGone) {
  auto q = Open();
  ASSERT_NE(q, nullptr);
  QueueSweepSpec s;
  s.label = "odd";
  const std::vector<std::string> odd = {
      "a,b",    "{x}", "q\"uote", "back\\slash", "NULL", " sp ", "'; DROP TABLE queue_work; --",
      "ünï©ødé"};
  for (const std::string& t : odd) s.problems.push_back({t, t + "-algo"});
  StatusOr<int64_t> id = q->AddSweep(s);
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  StatusOr<std::vector<QueueLease>> got = q->Claim(Request("S", "a", 100));
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  ASSERT_EQ(got->size(), odd.size());
  for (size_t i = 0; i < odd.size(); ++i) {
    EXPECT_EQ(got->at(i).problem.problem, odd[i]);
    EXPECT_EQ(got->at(i).problem.algorithm, odd[i] + "-algo");
    EXPECT_EQ(got->at(i).seq, static_cast<int64_t>(i));
  }
  EXPECT_EQ(*q->DropSweep(*id), true);
  EXPECT_EQ(*q->DropSweep(*id), false);
  EXPECT_EQ(QueryInt("SELECT count(*) FROM queue_work"), 0);
  EXPECT_EQ(QueryInt("SELECT count(*) FROM queue_problems"), 0);
}

TEST_F(WorkQueueTest, BadRequestsAreRefusedWithAReason) {
  auto q = Open();
  ASSERT_NE(q, nullptr);
  EXPECT_EQ(q->AddSweep(Sweep(0)).status().code(), StatusCode::kInvalidArgument);
  QueueSweepSpec empty_problem = Sweep(1);
  empty_problem.problems[0].problem = "";
  EXPECT_EQ(q->AddSweep(empty_problem).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(q->Claim(Request("S", "a", 1, 0.1)).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(q->Claim(Request("S", "", 1)).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(q->Claim(Request("S", "a", 0)).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(q->Claim(Request("", "a", 1)).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(q->Complete({QueueLease{}}, {}, "a").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(QueryInt("SELECT count(*) FROM queue_sweeps"), 0);
}

// ---- hosts as processes ----

using QueueCliTest = QueueDatabase;

constexpr const char* kSlowProblem = "n1_c5_h16_w16_k4_r3_s3_p1_u1_d1_g1_f32_nchw_fwd";

// A problem list: the slow problem first, then `n` quick ones.
std::string ProblemList(int n) {
  std::string text = std::string(kSlowProblem) + "\n";
  for (int i = 0; i < n; ++i) {
    text += "n1_c4_h" + std::to_string(8 + i) + "_w8_k4_r3_s3_p1_u1_d1_g1_f32_nchw_fwd\n";
  }
  return text;
}

// The arguments of one host: the reference backend with the slow problem sleeping 3 s
// (a fixed first deadline far above it, so it is an OK probe that simply takes long).
std::vector<std::string> HostArgs(const std::string& conninfo, const std::string& rules,
                                  const std::string& host) {
  return {"sweep",     "--from-queue",
          "--db",      conninfo,
          "--backend", "reference",
          "--inject",  rules,
          "--warmup",  "0",
          "--repeats", "1",
          "--timeout", "30000",
          "--lease",   "2",
          "--claim",   "2",
          "--workers", "1",
          "--standby", "0",
          "--quiet",   "--table",
          "none",      "--host-label",
          host};
}

TEST_F(QueueCliTest, AHostKilledMidProbeGivesBackOnlyWhatItHeld) {
  constexpr int kQuick = 12;
  const std::string dir = MakeTempDir("queue-kill");
  const std::string list = testing_support::WriteFile(dir + "/problems.txt", ProblemList(kQuick));
  const std::string rules =
      testing_support::WriteFile(dir + "/slow.rules", "slow(3000) when c == 5\n");
  CliResult added = RunConvguard({"queue", "add", "--list", list, "--db", conninfo_});
  ASSERT_EQ(added.exit_code, 0) << added.err;
  EXPECT_NE(added.out.find("queued sweep 1: 13 problems for every stack that joins"),
            std::string::npos)
      << added.out;

  // The victim starts alone and leases the slow problem first.
  os::SpawnOptions spawn;
  spawn.argv = {testing_support::ConvguardBin()};
  for (const std::string& a : HostArgs(conninfo_, rules, "victim")) spawn.argv.push_back(a);
  spawn.stderr_mode = os::StderrMode::kDevNull;
  StatusOr<os::ChildProcess> victim = os::SpawnChild(spawn);
  ASSERT_TRUE(victim.ok()) << victim.status().ToString();
  // Mid-probe: its lease on the slow problem is held and the store has its claim on the
  // key (taken just before the probe starts).
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (QueryInt("SELECT count(*) FROM queue_work w JOIN claims c ON c.problem = '" +
                  std::string(kSlowProblem) +
                  "' WHERE w.seq = 0 AND w.state = 'leased' AND w.host = 'victim'") == 0) {
    ASSERT_LT(std::chrono::steady_clock::now(), give_up) << "the victim never leased seq 0";
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  const std::vector<std::string> held_by_victim = QueryColumn(
      "SELECT seq FROM queue_work WHERE state = 'leased' AND host = 'victim' ORDER BY seq");
  ASSERT_TRUE(victim->KillGroup(SIGKILL).ok());
  StatusOr<os::ExitInfo> how = victim->WaitExit(std::chrono::seconds(10));
  ASSERT_TRUE(how.ok());
  EXPECT_TRUE(how->killed_by_sigkill()) << how->ToString();

  // Two hosts drain the rest; the victim's lease lapses after 2 s and comes back.
  std::vector<CliResult> hosts(2);
  std::vector<std::thread> threads;
  for (int i = 0; i < 2; ++i) {
    threads.emplace_back([&, i] {
      hosts[i] = RunConvguard(HostArgs(conninfo_, rules, "host" + std::to_string(i)), 120.0);
    });
  }
  for (std::thread& t : threads) t.join();
  for (const CliResult& h : hosts) {
    ASSERT_EQ(h.exit_code, 0) << h.err;
    EXPECT_NE(h.err.find("queue done for this stack"), std::string::npos) << h.err;
  }

  // Every problem decided once, nothing leased, no claim left.
  EXPECT_EQ(QueryInt("SELECT count(*) FROM queue_work WHERE state <> 'done'"), 0);
  EXPECT_EQ(QueryInt("SELECT count(*) FROM queue_work"), kQuick + 1);
  EXPECT_EQ(QueryInt("SELECT count(*) FROM verdicts"), kQuick + 1);
  EXPECT_EQ(QueryInt("SELECT count(*) FROM verdicts WHERE kind <> 'OK'"), 0);
  EXPECT_EQ(QueryInt("SELECT count(*) FROM claims"), 0);
  // Only what the victim held was handed out twice, and the slow problem among it.
  const std::vector<std::string> leased_twice =
      QueryColumn("SELECT seq FROM queue_work WHERE leases > 1 ORDER BY seq");
  EXPECT_EQ(leased_twice, held_by_victim);
  ASSERT_FALSE(leased_twice.empty());
  EXPECT_EQ(leased_twice.front(), "0");
  EXPECT_EQ(QueryInt("SELECT count(*) FROM queue_work WHERE host = 'victim'"), 0);
  // No problem was probed twice: one attempt per verdict (the victim's probe was killed
  // before it could record one).
  EXPECT_EQ(QueryInt("SELECT count(*) FROM attempts"), kQuick + 1);
  EXPECT_EQ(QueryInt("SELECT count(*) FROM (SELECT problem FROM attempts GROUP BY problem"
                     " HAVING count(*) > 1) t"),
            0);
  // The survivors finished everything (which of them took what depends on how fast each
  // started), and status says so.
  EXPECT_EQ(QueryInt("SELECT count(*) FROM queue_work WHERE host IN ('host0', 'host1')"),
            kQuick + 1);
  CliResult status = RunConvguard({"queue", "status", "--db", conninfo_});
  ASSERT_EQ(status.exit_code, 0) << status.err;
  EXPECT_NE(status.out.find("| 0 | 0 | 0 | 13 | OK: 13 |"), std::string::npos) << status.out;
  EXPECT_TRUE(status.out.find("| host0 | 0 |") != std::string::npos ||
              status.out.find("| host1 | 0 |") != std::string::npos)
      << status.out;
  EXPECT_EQ(status.out.find("| victim |"), std::string::npos) << status.out;
}

TEST_F(QueueCliTest, AServerRestartMidSweepIsWaitedForAndTheQueueDrains) {
  constexpr int kQuick = 10;
  const std::string dir = MakeTempDir("queue-restart");
  const std::string list = testing_support::WriteFile(dir + "/problems.txt", ProblemList(kQuick));
  // Every probe takes 300 ms: the sweep is mid-run when the server goes.
  const std::string rules =
      testing_support::WriteFile(dir + "/slow.rules", "slow(300) when n == 1\n");
  CliResult added = RunConvguard({"queue", "add", "--list", list, "--db", conninfo_});
  ASSERT_EQ(added.exit_code, 0) << added.err;
  CliResult host;
  std::thread runner([&] {
    std::vector<std::string> args = HostArgs(conninfo_, rules, "steady");
    args.push_back("--db-wait");
    args.push_back("60");
    host = RunConvguard(args, 120.0);
  });
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (QueryInt("SELECT count(*) FROM queue_work WHERE state = 'done'") < 2 &&
         std::chrono::steady_clock::now() < give_up) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_TRUE(server_->Stop().ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  ASSERT_TRUE(server_->StartAgain().ok());
  runner.join();
  ASSERT_EQ(host.exit_code, 0) << host.err;
  EXPECT_NE(host.err.find("queue done for this stack"), std::string::npos) << host.err;
  EXPECT_TRUE(host.err.find("waiting up to 60 s") != std::string::npos ||
              host.err.find("reconnected") != std::string::npos)
      << host.err;
  EXPECT_EQ(QueryInt("SELECT count(*) FROM queue_work WHERE state <> 'done'"), 0);
  EXPECT_EQ(QueryInt("SELECT count(*) FROM verdicts"), kQuick + 1);
  EXPECT_EQ(QueryInt("SELECT count(*) FROM claims"), 0);
}

TEST_F(QueueCliTest, AFollowingHostTakesSweepsAddedLaterUntilStopped) {
  ASSERT_NE(Open(), nullptr);
  const std::string dir = MakeTempDir("queue-follow");
  const std::string rules =
      testing_support::WriteFile(dir + "/none.rules", "slow(1) when c == 99\n");
  os::SpawnOptions spawn;
  spawn.argv = {testing_support::ConvguardBin()};
  for (const std::string& a : HostArgs(conninfo_, rules, "agent")) spawn.argv.push_back(a);
  spawn.argv.push_back("--follow");
  spawn.stderr_mode = os::StderrMode::kDevNull;
  StatusOr<os::ChildProcess> agent = os::SpawnChild(spawn);
  ASSERT_TRUE(agent.ok()) << agent.status().ToString();
  auto done_reaches = [&](int64_t n) {
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (QueryInt("SELECT count(*) FROM queue_work WHERE state = 'done'") < n) {
      if (std::chrono::steady_clock::now() > give_up) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return true;
  };
  // The queue is empty when the agent starts; it waits, then takes each sweep as it comes.
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  const std::string first = testing_support::WriteFile(
      dir + "/first.txt",
      "n1_c4_h8_w8_k4_r3_s3_p1\nn1_c4_h9_w9_k4_r3_s3_p1\nn1_c4_h10_w10_k4_r3_s3_p1\n");
  ASSERT_EQ(RunConvguard({"queue", "add", "--list", first, "--db", conninfo_}).exit_code, 0);
  ASSERT_TRUE(done_reaches(3));
  const std::string second = testing_support::WriteFile(
      dir + "/second.txt", "n1_c2_h8_w8_k2_r1_s1_p0\nn1_c2_h9_w9_k2_r1_s1_p0\n");
  ASSERT_EQ(RunConvguard({"queue", "add", "--list", second, "--db", conninfo_}).exit_code, 0);
  ASSERT_TRUE(done_reaches(5));
  StatusOr<os::ExitInfo> still = agent->WaitExit(std::chrono::milliseconds(300));
  ASSERT_TRUE(still.ok() && still->running()) << "an agent keeps waiting for work";
  ASSERT_TRUE(agent->KillGroup(SIGTERM).ok());
  StatusOr<os::ExitInfo> how = agent->WaitExit(std::chrono::seconds(30));
  ASSERT_TRUE(how.ok());
  EXPECT_TRUE(how->exited() && how->exit_code == 130) << how->ToString();
  EXPECT_EQ(QueryInt("SELECT count(*) FROM verdicts"), 5);
  EXPECT_EQ(QueryInt("SELECT count(*) FROM queue_work WHERE state <> 'done'"), 0);
  EXPECT_EQ(QueryInt("SELECT count(*) FROM claims"), 0);
  EXPECT_EQ(QueryInt("SELECT count(*) FROM queue_joined"), 2);
}

TEST_F(QueueCliTest, AFleetOfTwoStacksGetsAnAnswerPerStack) {
  const std::string dir = MakeTempDir("queue-fleet");
  // Two kinds of host: the reference backend as it is, and the emulated RDNA1 stack,
  // where the 16-channel 64x64 problem hangs.
  const std::string list = testing_support::WriteFile(
      dir + "/problems.txt",
      "n1_c16_h64_w64_k32_r3_s3_p1\nn1_c16_h32_w32_k32_r3_s3_p1\nn1_c4_h8_w8_k4_r3_s3_p1\n");
  ASSERT_EQ(RunConvguard({"queue", "add", "--list", list, "--db", conninfo_}).exit_code, 0);
  std::vector<CliResult> hosts(3);
  const std::vector<std::vector<std::string>> args = {
      {"sweep", "--from-queue", "--db", conninfo_, "--backend", "reference", "--host-label",
       "plain", "--quiet", "--table", "none"},
      {"sweep", "--from-queue", "--db", conninfo_, "--backend", "emulated-rdna1", "--host-label",
       "rdna1-a", "--quiet", "--table", "none"},
      {"sweep", "--from-queue", "--db", conninfo_, "--backend", "emulated-rdna1", "--host-label",
       "rdna1-b", "--quiet", "--table", "none"},
  };
  std::vector<std::thread> threads;
  for (size_t i = 0; i < args.size(); ++i) {
    threads.emplace_back([&, i] { hosts[i] = RunConvguard(args[i], 120.0); });
  }
  for (std::thread& t : threads) t.join();
  for (const CliResult& h : hosts) ASSERT_EQ(h.exit_code, 0) << h.err;
  // Every problem once per stack: two stacks, three problems each.
  EXPECT_EQ(QueryInt("SELECT count(DISTINCT stack_id) FROM queue_work"), 2);
  EXPECT_EQ(QueryInt("SELECT count(*) FROM queue_work WHERE state = 'done'"), 6);
  EXPECT_EQ(QueryInt("SELECT count(*) FROM verdicts"), 6);
  EXPECT_EQ(QueryInt("SELECT count(*) FROM queue_work WHERE leases <> 1"), 0);
  // The answers differ where the stacks do.
  EXPECT_EQ(QueryInt("SELECT count(*) FROM verdicts WHERE kind = 'HANG'"), 1);
  EXPECT_EQ(QueryInt("SELECT count(*) FROM queue_work WHERE outcome = 'HANG'"), 1);
  // The two emulated hosts shared their stack's problems; the plain one did its own.
  EXPECT_EQ(QueryInt("SELECT count(*) FROM queue_work WHERE host = 'plain'"), 3);
  EXPECT_EQ(QueryInt("SELECT count(*) FROM queue_work WHERE host LIKE 'rdna1-%'"), 3);
  CliResult status = RunConvguard({"queue", "status", "--db", conninfo_});
  ASSERT_EQ(status.exit_code, 0) << status.err;
  EXPECT_NE(status.out.find("HANG: 1, OK: 2"), std::string::npos) << status.out;
  EXPECT_NE(status.out.find("| 0 | 0 | 0 | 3 | OK: 3 |"), std::string::npos) << status.out;
  EXPECT_NE(status.out.find("EMULATION"), std::string::npos) << status.out;
}

TEST_F(QueueCliTest, BadInputIsRefusedBeforeAnythingIsWritten) {
  ASSERT_NE(Open(), nullptr);  // the store exists, so that its queue can be looked at
  const std::string dir = MakeTempDir("queue-bad");
  struct Case {
    std::vector<std::string> args;
    std::string says;
  };
  const std::vector<Case> cases = {
      {{"queue", "add", "--grid", "c=16 k=32 hw=64 r=3", "--db", dir + "/x.sqlite"},
       "the work queue lives in a PostgreSQL store"},
      {{"queue", "add", "--db", conninfo_}, "no problems"},
      {{"queue", "add", "--grid", "c=zero", "--db", conninfo_}, "--grid 'c=zero'"},
      {{"queue", "frobnicate", "--db", conninfo_}, "unknown action 'frobnicate'"},
      {{"queue", "drop", "--db", conninfo_}, "give the sweep ID"},
      {{"queue", "drop", "x1", "--db", conninfo_}, "sweep ID"},
      {{"queue", "drop", "99", "--db", conninfo_}, "there is no sweep 99"},
      {{"queue", "status", "--grid", "c=1", "--db", conninfo_}, "--grid is for `queue add`"},
      {{"sweep", "--from-queue", "--db", dir + "/x.sqlite", "--backend", "reference"},
       "--from-queue needs a PostgreSQL store"},
      {{"sweep", "--from-queue", "--grid", "c=1", "--db", conninfo_}, "--grid cannot be used"},
      {{"sweep", "--from-queue", "--lease", "0.5", "--db", conninfo_}, "--lease"},
      {{"sweep", "--from-queue", "--claim", "0", "--db", conninfo_}, "--claim"},
      {{"sweep", "--grid", "c=16 k=32 hw=64 r=3", "--follow", "--db", conninfo_},
       "--follow is for a sweep --from-queue"},
  };
  for (const Case& c : cases) {
    CliResult r = RunConvguard(c.args);
    EXPECT_EQ(r.exit_code, 2) << c.args[1] << ": " << r.err;
    EXPECT_NE(r.err.find(c.says), std::string::npos) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  }
  EXPECT_FALSE(std::filesystem::exists(dir + "/x.sqlite"));
  EXPECT_EQ(QueryInt("SELECT count(*) FROM queue_sweeps"), 0);
}

// ---- a host cut off from the network ----

// A network namespace joined to this one by a veth pair: a "host" run in it reaches the
// server only over that link, and Cut() takes the link down under it (a pulled cable:
// packets vanish, nothing is reset). Needs root and CAP_NET_ADMIN; Create says why not.
class CutOffHost {
 public:
  static std::unique_ptr<CutOffHost> Create(std::string* why_not) {
    if (geteuid() != 0) {
      *why_not = "a network namespace needs root (CAP_NET_ADMIN)";
      return nullptr;
    }
    auto link = std::unique_ptr<CutOffHost>(new CutOffHost());
    const int tag = static_cast<int>(getpid() % 200) + 20;
    link->ns_ = "cgq" + std::to_string(getpid());
    link->outer_ = "cgqo" + std::to_string(getpid() % 100000);
    link->inner_ = "cgqi" + std::to_string(getpid() % 100000);
    link->outer_ip_ = "10.213." + std::to_string(tag) + ".1";
    link->inner_ip_ = "10.213." + std::to_string(tag) + ".2";
    const std::vector<std::vector<std::string>> steps = {
        {"ip", "netns", "add", link->ns_},
        {"ip", "link", "add", link->outer_, "type", "veth", "peer", "name", link->inner_},
        {"ip", "link", "set", link->inner_, "netns", link->ns_},
        {"ip", "addr", "add", link->outer_ip_ + "/30", "dev", link->outer_},
        {"ip", "link", "set", link->outer_, "up"},
        {"ip", "netns", "exec", link->ns_, "ip", "addr", "add", link->inner_ip_ + "/30", "dev",
         link->inner_},
        {"ip", "netns", "exec", link->ns_, "ip", "link", "set", link->inner_, "up"},
        {"ip", "netns", "exec", link->ns_, "ip", "link", "set", "lo", "up"},
    };
    for (const auto& step : steps) {
      CliResult r = testing_support::RunProgram(step, 30.0);
      if (r.exit_code != 0) {
        std::string cmd;
        for (const std::string& a : step) cmd += (cmd.empty() ? "" : " ") + a;
        *why_not = "cannot make a network namespace here (`" + cmd +
                   "`: " + (r.err.empty() ? "exit " + std::to_string(r.exit_code) : r.err) + ")";
        return nullptr;
      }
    }
    return link;
  }

  ~CutOffHost() {
    (void)testing_support::RunProgram({"ip", "link", "del", outer_}, 30.0);
    (void)testing_support::RunProgram({"ip", "netns", "del", ns_}, 30.0);
  }

  // argv run inside the namespace.
  std::vector<std::string> Inside(const std::vector<std::string>& argv) const {
    std::vector<std::string> out = {"ip", "netns", "exec", ns_};
    out.insert(out.end(), argv.begin(), argv.end());
    return out;
  }
  Status Cut() const {
    CliResult r = testing_support::RunProgram({"ip", "link", "set", outer_, "down"}, 30.0);
    return r.exit_code == 0 ? Status::Ok() : Status::IOError("ip link set down: " + r.err);
  }
  const std::string& outer_ip() const { return outer_ip_; }
  const std::string& inner_ip() const { return inner_ip_; }

 private:
  CutOffHost() = default;
  std::string ns_, outer_, inner_, outer_ip_, inner_ip_;
};

TEST(QueueNetworkTest, AHostCutOffMidProbeLosesItsLeaseAndNothingElse) {
  std::string why_not;
  std::unique_ptr<CutOffHost> link = CutOffHost::Create(&why_not);
  if (link == nullptr) GTEST_SKIP() << why_not;
  // A server of this test's own, listening on the link as well as on its Unix socket.
  testing_support::PgServerOptions server_options;
  server_options.tcp_address = link->outer_ip();
  server_options.tcp_trusted_cidr = link->inner_ip() + "/32";
  StatusOr<std::unique_ptr<PgServer>> server = PgServer::Start(server_options);
  if (!server.ok() && server.status().code() == StatusCode::kNotFound) {
    GTEST_SKIP() << server.status().message();
  }
  ASSERT_TRUE(server.ok()) << server.status().ToString();
  StatusOr<std::string> db = (*server)->CreateDatabase("cutoff");
  ASSERT_TRUE(db.ok()) << db.status().ToString();
  const std::string local = (*server)->KeywordConnInfo(*db);
  // TCP settings that notice a dead peer in seconds (docs/store-postgresql.md).
  const std::string over_link = (*server)->TcpConnInfo(*db) +
                                " connect_timeout=5 tcp_user_timeout=2000 keepalives_idle=1"
                                " keepalives_interval=1 keepalives_count=2";
  auto query_int = [&](const std::string& sql) -> int64_t {
    auto conn = pg::Connection::Open(local, 10);
    if (!conn.ok()) return -1;
    StatusOr<int64_t> v = (*conn)->QueryInt(sql);
    return v.ok() ? *v : -1;
  };

  constexpr int kQuick = 8;
  const std::string dir = MakeTempDir("queue-cutoff");
  const std::string list = testing_support::WriteFile(dir + "/problems.txt", ProblemList(kQuick));
  const std::string rules =
      testing_support::WriteFile(dir + "/slow.rules", "slow(3000) when c == 5\n");
  CliResult added = RunConvguard({"queue", "add", "--list", list, "--db", local});
  ASSERT_EQ(added.exit_code, 0) << added.err;

  os::SpawnOptions spawn;
  std::vector<std::string> host_argv = {testing_support::ConvguardBin()};
  for (const std::string& a : HostArgs(over_link, rules, "cut-off")) host_argv.push_back(a);
  host_argv.push_back("--db-wait");
  host_argv.push_back("3");
  spawn.argv = link->Inside(host_argv);
  spawn.stderr_mode = os::StderrMode::kPipe;
  StatusOr<os::ChildProcess> cut_host = os::SpawnChild(spawn);
  ASSERT_TRUE(cut_host.ok()) << cut_host.status().ToString();
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (query_int("SELECT count(*) FROM queue_work w JOIN claims c ON c.problem = '" +
                   std::string(kSlowProblem) +
                   "' WHERE w.seq = 0 AND w.state = 'leased' AND w.host = 'cut-off'") <= 0) {
    StatusOr<os::ExitInfo> early = cut_host->WaitExit(std::chrono::milliseconds(50));
    ASSERT_TRUE(early.ok() && early->running()) << "the host in the namespace ended early";
    ASSERT_LT(std::chrono::steady_clock::now(), give_up) << "the cut-off host never leased seq 0";
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  auto held_by = [&](const std::string& sql) {
    std::vector<std::string> out;
    auto conn = pg::Connection::Open(local, 10);
    if (!conn.ok()) return out;
    StatusOr<pg::Result> rows = (*conn)->Exec(sql);
    for (int i = 0; rows.ok() && i < rows->Rows(); ++i) out.push_back(rows->GetText(i, 0));
    return out;
  };
  const std::vector<std::string> held = held_by(
      "SELECT seq FROM queue_work WHERE state = 'leased' AND host = 'cut-off' ORDER BY seq");
  ASSERT_TRUE(link->Cut().ok());

  std::vector<CliResult> hosts(2);
  std::vector<std::thread> threads;
  for (int i = 0; i < 2; ++i) {
    threads.emplace_back([&, i] {
      hosts[i] = RunConvguard(HostArgs(local, rules, "host" + std::to_string(i)), 120.0);
    });
  }
  for (std::thread& t : threads) t.join();
  for (const CliResult& h : hosts) ASSERT_EQ(h.exit_code, 0) << h.err;

  // The cut-off host finishes its probe, cannot write, and stops with the reason.
  std::string err;
  uint8_t buf[4096];
  while (true) {
    StatusOr<os::IoResult> n =
        os::ReadSome(cut_host->stderr_fd(), buf, os::Deadline::After(std::chrono::seconds(90)));
    if (!n.ok() || !n->data()) break;
    err.append(reinterpret_cast<const char*>(buf), n->bytes);
  }
  StatusOr<os::ExitInfo> how = cut_host->WaitExit(std::chrono::seconds(30));
  ASSERT_TRUE(how.ok());
  ASSERT_TRUE(how->exited()) << how->ToString() << "\n" << err;
  EXPECT_EQ(how->exit_code, 1) << err;
  EXPECT_NE(err.find(link->outer_ip()), std::string::npos) << err;

  EXPECT_EQ(query_int("SELECT count(*) FROM queue_work WHERE state <> 'done'"), 0);
  EXPECT_EQ(query_int("SELECT count(*) FROM verdicts"), kQuick + 1);
  EXPECT_EQ(query_int("SELECT count(*) FROM claims"), 0);
  EXPECT_EQ(query_int("SELECT count(*) FROM queue_work WHERE host = 'cut-off'"), 0);
  // Handed out twice: exactly what the cut-off host held, the problem it was probing first.
  EXPECT_EQ(held_by("SELECT seq FROM queue_work WHERE leases > 1 ORDER BY seq"), held);
  ASSERT_FALSE(held.empty());
  EXPECT_EQ(held.front(), "0");
  EXPECT_EQ(query_int("SELECT count(*) FROM attempts"), kQuick + 1);
}

}  // namespace
}  // namespace convguard
