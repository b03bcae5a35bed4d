// A PostgreSQL store whose server goes away (src/store/pg_store.cc, "when the server goes
// away"; docs/store-postgresql.md): against the real server of this binary
// (tests/support/pg_server.h), which these tests stop and start again, and through a relay
// that cuts a connection on cue (tests/support/pg_proxy.h) for the one case a restart
// cannot make on purpose, a COMMIT carried out whose answer never came.
//
// Every test leaves the server running (TearDown starts it again), whatever failed.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "convguard/store.h"
#include "core/json_records.h"
#include "store/pg_db.h"
#include "support/cli_runner.h"
#include "support/pg_proxy.h"
#include "support/pg_server.h"

namespace convguard {
namespace {

using testing_support::CliResult;
using testing_support::FindProcesses;
using testing_support::MakeTempDir;
using testing_support::PgProxy;
using testing_support::PgServer;
using testing_support::PgServerEnvironment;
using testing_support::RunConvguard;
using testing_support::WriteFile;

constexpr const char* kPassword = "Sekr1tPw";

// COMMIT as libpq sends it (Transaction::Commit): a simple Query message, 'Q', its
// length (11) and "COMMIT" with its terminating NUL.
const std::string kCommitMessage(
    "Q\0\0\0\x0b"
    "COMMIT\0",
    12);

StackFingerprint MakeStack() {
  StackFingerprint s;
  s.backend = "reference";
  s.device = "CPU A";
  s.architecture = "x86_64";
  s.library = "convguard reference";
  s.tool_version = "0.1.0";
  return s;
}

Verdict MakeVerdict(const StackFingerprint& stack, const std::string& problem, VerdictKind kind) {
  Verdict v;
  v.kind = kind;
  v.stack_id = stack.Id();
  v.problem = problem;
  v.algorithm = "direct";
  v.attempts = 1;
  v.check = "full";
  v.tool_version = "0.1.0";
  v.recorded_at = "2026-11-25T15:10:57Z";
  return v;
}

VerdictKey KeyOf(const Verdict& v) { return {v.stack_id, v.problem, v.algorithm}; }

double SecondsSince(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

bool Contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

class PgResumeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    server_ = PgServerEnvironment::Server(&why);
    if (server_ == nullptr) GTEST_SKIP() << why;
    ASSERT_TRUE(server_->running());
    StatusOr<std::string> name =
        server_->CreateDatabase(::testing::UnitTest::GetInstance()->current_test_info()->name());
    ASSERT_TRUE(name.ok()) << name.status().ToString();
    db_ = *name;
    conninfo_ = server_->KeywordConnInfo(db_);
  }

  // The next test finds its server, whatever this one did.
  void TearDown() override {
    if (server_ != nullptr) {
      Status s = server_->StartAgain();
      EXPECT_TRUE(s.ok()) << s.ToString();
    }
  }

  // Options that wait `wait_s` and keep the store's notices in notices_ (they come from
  // the thread using the store: the test's).
  PostgresStoreOptions Waiting(double wait_s) {
    PostgresStoreOptions options;
    options.reconnect_wait_s = wait_s;
    options.on_notice = [this](const std::string& text) { notices_.push_back(text); };
    return options;
  }

  std::unique_ptr<Store> MustOpen(const std::string& conninfo,
                                  const PostgresStoreOptions& options) {
    StatusOr<std::unique_ptr<Store>> store = OpenPostgresStore(conninfo, options);
    EXPECT_TRUE(store.ok()) << store.status().ToString();
    return store.ok() ? std::move(store).value() : nullptr;
  }

  // One integer from `sql` in the test's database (the server must be running).
  int64_t QueryInt(const std::string& sql) {
    StatusOr<std::unique_ptr<pg::Connection>> conn = pg::Connection::Open(conninfo_, 10);
    EXPECT_TRUE(conn.ok()) << conn.status().ToString();
    if (!conn.ok()) return -1;
    StatusOr<int64_t> value = (*conn)->QueryInt(sql);
    EXPECT_TRUE(value.ok()) << value.status().ToString();
    return value.ok() ? *value : -1;
  }

  // "postgresql server (host=... port=... dbname=... user=...)": how messages name it.
  std::string Target() const {
    return "postgresql server (host=" + server_->socket_dir() +
           " port=" + std::to_string(server_->port()) + " dbname=" + db_ + " user=postgres)";
  }

  PgServer* server_ = nullptr;
  std::string db_;
  std::string conninfo_;
  std::vector<std::string> notices_;
};

// ---- the store ----

TEST_F(PgResumeTest, PutVerdictDuringARestartWaitsAndIsStoredOnce) {
  auto store = MustOpen(conninfo_, Waiting(30));
  ASSERT_NE(store, nullptr);
  const StackFingerprint stack = MakeStack();
  ASSERT_TRUE(store->PutStack(stack).ok());
  // A verdict to replace: a re-run that wrote twice would put it in the history twice.
  const Verdict hang = MakeVerdict(stack, "p1", VerdictKind::kHang);
  ASSERT_TRUE(store->PutVerdict(hang).ok());
  Verdict ok = hang;
  ok.kind = VerdictKind::kOk;

  ASSERT_TRUE(server_->Stop().ok());
  Status restarted = Status::Internal("not restarted");
  std::thread restart([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    restarted = server_->StartAgain();
  });
  const auto start = std::chrono::steady_clock::now();
  Status put = store->PutVerdict(ok);
  const double waited_s = SecondsSince(start);
  restart.join();
  ASSERT_TRUE(restarted.ok()) << restarted.ToString();
  ASSERT_TRUE(put.ok()) << put.ToString();
  EXPECT_GE(waited_s, 1.5);

  StatusOr<std::optional<Verdict>> got = store->GetVerdict(KeyOf(ok));
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  ASSERT_TRUE(got->has_value());
  EXPECT_EQ(DumpJson(ToJson(**got)), DumpJson(ToJson(ok)));
  EXPECT_EQ(QueryInt("SELECT count(*) FROM verdicts"), 1);
  EXPECT_EQ(QueryInt("SELECT count(*) FROM attempts"), 1);  // the HANG, superseded once
  EXPECT_EQ(QueryInt("SELECT count(*) FROM attempts WHERE outcome = 'superseded'"), 1);

  ASSERT_EQ(notices_.size(), 2u) << ::testing::PrintToString(notices_);
  EXPECT_TRUE(Contains(notices_[0], "store " + Target() + " unreachable (")) << notices_[0];
  EXPECT_TRUE(Contains(notices_[0], "); waiting up to 30 s for it to come back")) << notices_[0];
  EXPECT_TRUE(Contains(notices_[1], "store " + Target() + " back after ")) << notices_[1];
}

TEST_F(PgResumeTest, AServerThatStaysAwayEndsTheWaitWithAClearErrorAndLosesNothing) {
  const std::string conninfo = conninfo_ + " password=" + kPassword;  // trust: unused
  auto patient = MustOpen(conninfo, Waiting(2));
  PostgresStoreOptions no_wait;
  no_wait.reconnect_wait_s = 0;
  auto impatient = MustOpen(conninfo, no_wait);
  ASSERT_NE(patient, nullptr);
  ASSERT_NE(impatient, nullptr);
  const StackFingerprint stack = MakeStack();
  ASSERT_TRUE(patient->PutStack(stack).ok());
  const Verdict before = MakeVerdict(stack, "p1", VerdictKind::kOk);
  ASSERT_TRUE(patient->PutVerdict(before).ok());
  const Verdict during = MakeVerdict(stack, "p2", VerdictKind::kOk);

  ASSERT_TRUE(server_->Stop().ok());
  auto start = std::chrono::steady_clock::now();
  Status at_once = impatient->PutVerdict(during);
  EXPECT_LT(SecondsSince(start), 1.0);
  EXPECT_EQ(at_once.code(), StatusCode::kIOError) << at_once.ToString();
  EXPECT_TRUE(Contains(at_once.message(), "store " + Target() + " lost its connection ("))
      << at_once.message();
  EXPECT_TRUE(Contains(at_once.message(), "does not wait for the server (reconnect wait 0 s)"))
      << at_once.message();

  start = std::chrono::steady_clock::now();
  Status gave_up = patient->PutVerdict(during);
  const double waited_s = SecondsSince(start);
  EXPECT_GE(waited_s, 2.0);
  EXPECT_LT(waited_s, 8.0);
  ASSERT_EQ(gave_up.code(), StatusCode::kIOError) << gave_up.ToString();
  const std::string& m = gave_up.message();
  EXPECT_TRUE(
      Contains(m, "store " + Target() + " is unreachable and did not come back within 2 s ("))
      << m;
  EXPECT_TRUE(Contains(m,
                       "nothing stored before was lost: run again to resume once the server "
                       "is back"))
      << m;
  for (const std::string& text : {m, at_once.message()}) {
    EXPECT_FALSE(Contains(text, kPassword)) << text;
    EXPECT_FALSE(Contains(text, "\n")) << text;
  }
  ASSERT_EQ(notices_.size(), 1u) << ::testing::PrintToString(notices_);
  EXPECT_TRUE(Contains(notices_[0], "waiting up to 2 s for it to come back")) << notices_[0];
  EXPECT_FALSE(Contains(notices_[0], kPassword)) << notices_[0];

  // The store stays closed: every later call answers the same at once.
  start = std::chrono::steady_clock::now();
  StatusOr<std::optional<Verdict>> later = patient->GetVerdict(KeyOf(before));
  EXPECT_LT(SecondsSince(start), 0.5);
  ASSERT_FALSE(later.ok());
  EXPECT_EQ(later.status().message(), m);

  // What was stored before is there when the server is back; what failed is not.
  ASSERT_TRUE(server_->StartAgain().ok());
  EXPECT_EQ(QueryInt("SELECT count(*) FROM verdicts WHERE problem = 'p1'"), 1);
  EXPECT_EQ(QueryInt("SELECT count(*) FROM verdicts"), 1);
}

// ---- a COMMIT whose answer is lost ----

class PgCutTest : public PgResumeTest {
 protected:
  void SetUp() override {
    PgResumeTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    StatusOr<std::unique_ptr<PgProxy>> proxy =
        PgProxy::Start(server_->socket_dir(), server_->port());
    ASSERT_TRUE(proxy.ok()) << proxy.status().ToString();
    proxy_ = std::move(*proxy);
    store_ = MustOpen("host=" + proxy_->socket_dir() + " port=" + std::to_string(server_->port()) +
                          " user=postgres dbname=" + db_,
                      Waiting(10));
    ASSERT_NE(store_, nullptr);
    ASSERT_TRUE(store_->PutStack(stack_).ok());
  }

  void TearDown() override {
    store_.reset();
    proxy_.reset();
    PgResumeTest::TearDown();
  }

  Attempt MakeAttempt() const {
    Attempt a;
    a.key = {stack_.Id(), "p1", "direct"};
    a.attempt_number = 1;
    a.outcome = "deadline";
    a.deadline_ms = 250.5;
    a.elapsed_ms = 251.0;
    a.worker_pid = 4242;
    a.started_at = "2026-11-25T15:10:57Z";
    a.detail = "first miss";
    return a;
  }

  SequenceVerdict MakeSequenceVerdict() const {
    SequenceVerdict v;
    v.stack_id = stack_.Id();
    v.digest = "0123456789abcdef";
    v.source = "app.log";
    v.calls = 3;
    v.calls_run = 3;
    v.kind = VerdictKind::kOk;
    v.tool_version = "0.1.0";
    v.recorded_at = "2026-11-25T15:10:57Z";
    return v;
  }

  const StackFingerprint stack_ = MakeStack();
  std::unique_ptr<PgProxy> proxy_;
  std::unique_ptr<Store> store_;
};

TEST_F(PgCutTest, AppendsAreNotRepeatedWhenTheCommitWasCarriedOutButItsAnswerLost) {
  proxy_->CutOnce(kCommitMessage, PgProxy::Cut::kAfterReply);
  Status added = store_->AddAttempt(MakeAttempt());
  ASSERT_TRUE(added.ok()) << added.ToString();
  EXPECT_EQ(proxy_->cuts(), 1);
  EXPECT_EQ(QueryInt("SELECT count(*) FROM attempts"), 1);

  proxy_->CutOnce(kCommitMessage, PgProxy::Cut::kAfterReply);
  StatusOr<int64_t> id = store_->AddSequenceVerdict(MakeSequenceVerdict());
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  EXPECT_EQ(proxy_->cuts(), 2);
  EXPECT_EQ(QueryInt("SELECT count(*) FROM sequence_verdicts"), 1);
  EXPECT_EQ(QueryInt("SELECT min(id) FROM sequence_verdicts"), *id);  // the id it stored

  // An import answers with what the committed try did, not "all identical".
  nlohmann::json line = ToJson(MakeVerdict(stack_, "p2", VerdictKind::kOk));
  line["type"] = "verdict";
  proxy_->CutOnce(kCommitMessage, PgProxy::Cut::kAfterReply);
  StatusOr<ImportReport> report = store_->ImportJsonLines(DumpJson(line) + "\n", false);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(proxy_->cuts(), 3);
  EXPECT_EQ(report->inserted, 1);
  EXPECT_EQ(report->identical, 0);

  // A replaced verdict goes into the history once.
  const Verdict hang = MakeVerdict(stack_, "p3", VerdictKind::kHang);
  ASSERT_TRUE(store_->PutVerdict(hang).ok());
  Verdict ok = hang;
  ok.kind = VerdictKind::kOk;
  proxy_->CutOnce(kCommitMessage, PgProxy::Cut::kAfterReply);
  ASSERT_TRUE(store_->PutVerdict(ok).ok());
  EXPECT_EQ(proxy_->cuts(), 4);
  EXPECT_EQ(QueryInt("SELECT count(*) FROM attempts WHERE outcome = 'superseded'"), 1);
  EXPECT_EQ(QueryInt("SELECT count(*) FROM verdicts WHERE kind = 'OK'"), 2);

  ASSERT_EQ(notices_.size(), 4u) << ::testing::PrintToString(notices_);
  for (const std::string& n : notices_) EXPECT_TRUE(Contains(n, "); reconnected")) << n;
}

TEST_F(PgCutTest, AWriteCutOffBeforeItsCommitIsWrittenByTheRerun) {
  proxy_->CutOnce("INSERT INTO attempts", PgProxy::Cut::kBeforeForwarding);
  Status added = store_->AddAttempt(MakeAttempt());
  ASSERT_TRUE(added.ok()) << added.ToString();
  EXPECT_EQ(proxy_->cuts(), 1);
  EXPECT_EQ(QueryInt("SELECT count(*) FROM attempts"), 1);

  proxy_->CutOnce("INSERT INTO sequence_verdicts", PgProxy::Cut::kBeforeForwarding);
  StatusOr<int64_t> id = store_->AddSequenceVerdict(MakeSequenceVerdict());
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  EXPECT_EQ(proxy_->cuts(), 2);
  EXPECT_EQ(QueryInt("SELECT count(*) FROM sequence_verdicts"), 1);
  EXPECT_EQ(QueryInt("SELECT min(id) FROM sequence_verdicts"), *id);
}

TEST_F(PgCutTest, AFailureThatIsNotALostConnectionIsNotRetried) {
  // A stack id that is not there: NotFound at once, no reconnect, no notice.
  Verdict orphan = MakeVerdict(stack_, "p1", VerdictKind::kOk);
  orphan.stack_id = "no-such-stack";
  Status s = store_->PutVerdict(orphan);
  EXPECT_EQ(s.code(), StatusCode::kNotFound) << s.ToString();
  EXPECT_TRUE(notices_.empty()) << ::testing::PrintToString(notices_);
  EXPECT_TRUE(store_->PutVerdict(MakeVerdict(stack_, "p1", VerdictKind::kOk)).ok());
}

// ---- keepalives: ours unless the user set theirs ----

// Sets an environment variable for one scope (the tests of this binary run one at a time).
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const std::string& value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    ::setenv(name, value.c_str(), 1);
  }
  ~ScopedEnv() {
    if (old_) {
      ::setenv(name_, old_->c_str(), 1);
    } else {
      ::unsetenv(name_);
    }
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

TEST_F(PgResumeTest, KeepaliveDefaultsGiveWayToTheUsersOwnSettings) {
  auto options_of = [](const std::string& conninfo, std::vector<std::string> keywords) {
    std::vector<std::string> values;
    StatusOr<std::unique_ptr<pg::Connection>> conn = pg::Connection::Open(conninfo, 10);
    EXPECT_TRUE(conn.ok()) << conn.status().ToString();
    if (!conn.ok()) return values;
    for (const std::string& k : keywords) values.push_back((*conn)->Option(k).value_or("unset"));
    return values;
  };
  const std::vector<std::string> keywords = {"keepalives_idle", "keepalives_interval",
                                             "keepalives_count", "tcp_user_timeout",
                                             "connect_timeout"};
  EXPECT_EQ(options_of(conninfo_, keywords),
            (std::vector<std::string>{"10", "5", "3", "20000", "10"}));
  EXPECT_EQ(options_of(conninfo_ + " keepalives_idle=42 tcp_user_timeout=0", keywords),
            (std::vector<std::string>{"42", "5", "3", "0", "10"}));
  EXPECT_EQ(
      options_of(server_->UriConnInfo(db_) + "&keepalives_count=7&connect_timeout=3", keywords),
      (std::vector<std::string>{"10", "5", "7", "20000", "3"}));
  {
    ScopedEnv timeout("PGCONNECT_TIMEOUT", "4");
    EXPECT_EQ(options_of(conninfo_, {"connect_timeout"}), std::vector<std::string>{"4"});
  }
  // A service file entry is the user's too.
  const std::string dir = MakeTempDir("pg-service");
  const std::string file =
      WriteFile(dir + "/services.conf",
                "# for the test\n[other]\nkeepalives_idle=1\n\n[cgtest]\n"
                "host=" +
                    server_->socket_dir() + "\nport=" + std::to_string(server_->port()) +
                    "\nuser=postgres\n  keepalives_idle=77\n"
                    "connect_timeout=6\n");
  {
    ScopedEnv services("PGSERVICEFILE", file);
    EXPECT_EQ(options_of("service=cgtest dbname=" + db_, keywords),
              (std::vector<std::string>{"77", "5", "3", "20000", "6"}));
  }
  // And the password is never told.
  EXPECT_EQ(options_of(conninfo_ + " password=" + kPassword, {"password"}),
            std::vector<std::string>{"unset"});
}

// ---- the CLI: a sweep whose server goes away ----

// 16 problems of 0.3 s each (an injected slow fault) on two workers: about 2.5 s of
// probing, long enough to take the server away in the middle. A deadline of 1.5 s: a
// probe judged late because the sweep was waiting for its store would not be OK.
std::vector<std::string> SlowSweep(const std::string& rules, const std::string& conninfo) {
  return {"sweep",   "--backend", "reference", "--inject",  rules,
          "--db",    conninfo,    "--workers", "2",         "--warmup",
          "0",       "--repeats", "1",         "--timeout", "1500",
          "--quiet", "--table",   "none",      "--grid",    "n=1 c=4 k=4 rs=3 p=1 hw=8..23"};
}
constexpr int kSlowSweepProblems = 16;

class PgResumeCliTest : public PgResumeTest {
 protected:
  // Starts `args` in a thread; waits until at least `verdicts` are stored, and returns how
  // many there were then (-1 when the sweep ended first).
  int64_t StartSweepAndWaitFor(const std::vector<std::string>& args, int64_t verdicts) {
    sweep_ = std::thread([this, args] {
      result_ = RunConvguard(args, 120);
      finished_ = true;
    });
    StatusOr<std::unique_ptr<pg::Connection>> conn = pg::Connection::Open(conninfo_, 10);
    EXPECT_TRUE(conn.ok()) << conn.status().ToString();
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (conn.ok() && !finished_ && std::chrono::steady_clock::now() < give_up) {
      // Fails until the sweep has made the store's tables.
      StatusOr<int64_t> stored = (*conn)->QueryInt("SELECT count(*) FROM verdicts");
      if (stored.ok() && *stored >= verdicts) return *stored;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return -1;
  }

  void TearDown() override {
    if (sweep_.joinable()) sweep_.join();
    PgResumeTest::TearDown();
  }

  std::thread sweep_;
  std::atomic<bool> finished_{false};
  CliResult result_;
};

TEST_F(PgResumeCliTest, SweepWaitsForARestartedServerAndCompletes) {
  const std::string dir = MakeTempDir("pg-sweep-restart");
  const std::string rules = WriteFile(dir + "/restart-slow.rules", "slow(300) when always\n");
  const int64_t before = StartSweepAndWaitFor(SlowSweep(rules, conninfo_), 2);
  ASSERT_GE(before, 2) << result_.err;
  ASSERT_TRUE(server_->Stop().ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(2000));
  ASSERT_TRUE(server_->StartAgain().ok());
  sweep_.join();

  EXPECT_LT(before, kSlowSweepProblems) << "the restart should have come mid-sweep";
  ASSERT_EQ(result_.exit_code, 0) << result_.err;
  EXPECT_TRUE(Contains(result_.err, "convguard: store " + Target() + " unreachable ("))
      << result_.err;
  EXPECT_TRUE(Contains(result_.err, "waiting up to 60 s for it to come back")) << result_.err;
  EXPECT_TRUE(Contains(result_.err, "convguard: store " + Target() + " back after "))
      << result_.err;
  EXPECT_TRUE(Contains(result_.err, "done, 16/16")) << result_.err;
  // Every problem once, OK (none judged late for the wait), none replaced, no claim left.
  EXPECT_EQ(QueryInt("SELECT count(*) FROM verdicts"), kSlowSweepProblems);
  EXPECT_EQ(QueryInt("SELECT count(DISTINCT problem) FROM verdicts"), kSlowSweepProblems);
  EXPECT_EQ(QueryInt("SELECT count(*) FROM verdicts WHERE kind <> 'OK'"), 0);
  EXPECT_EQ(QueryInt("SELECT count(*) FROM attempts WHERE outcome = 'superseded'"), 0);
  EXPECT_EQ(QueryInt("SELECT count(*) FROM claims"), 0);
}

TEST_F(PgResumeCliTest, SweepStopsWithOneClearMessageWhenTheServerStaysAway) {
  const std::string dir = MakeTempDir("pg-sweep-gone");
  const std::string rules = WriteFile(dir + "/gone-slow.rules", "slow(300) when always\n");
  std::vector<std::string> args = SlowSweep(rules, conninfo_ + " password=" + kPassword);
  args.insert(args.end(), {"--db-wait", "2"});
  const int64_t before = StartSweepAndWaitFor(args, 2);
  ASSERT_GE(before, 2) << result_.err;
  ASSERT_TRUE(server_->Stop().ok());
  sweep_.join();

  EXPECT_EQ(result_.exit_code, 1) << result_.err;
  EXPECT_TRUE(Contains(result_.err, "waiting up to 2 s for it to come back")) << result_.err;
  const std::string gone = "store " + Target() + " is unreachable and did not come back within 2 s";
  EXPECT_TRUE(Contains(result_.err, gone)) << result_.err;
  EXPECT_TRUE(Contains(result_.err, "nothing stored before was lost: run again to resume"))
      << result_.err;
  // One message, on the sweep's last line.
  EXPECT_EQ(result_.err.find(gone), result_.err.rfind(gone)) << result_.err;
  EXPECT_EQ(result_.err.rfind("convguard sweep: ", result_.err.find(gone)),
            result_.err.rfind('\n', result_.err.find(gone)) + 1)
      << result_.err;
  EXPECT_FALSE(Contains(result_.err, kPassword)) << result_.err;
  // Its workers are gone.
  for (int i = 0; i < 50 && !FindProcesses(rules).live.empty(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_TRUE(FindProcesses(rules).live.empty());

  // Back: every verdict stored before is there, and a second sweep resumes.
  ASSERT_TRUE(server_->StartAgain().ok());
  const int64_t kept = QueryInt("SELECT count(*) FROM verdicts");
  EXPECT_GE(kept, before);
  EXPECT_LT(kept, kSlowSweepProblems);
  CliResult again = RunConvguard(SlowSweep(rules, conninfo_), 120);
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_TRUE(Contains(again.err, "known " + std::to_string(kept) + "\n")) << again.err;
  EXPECT_EQ(QueryInt("SELECT count(*) FROM verdicts"), kSlowSweepProblems);
  EXPECT_EQ(QueryInt("SELECT count(*) FROM verdicts WHERE kind <> 'OK'"), 0);
  EXPECT_EQ(QueryInt("SELECT count(*) FROM claims"), 0);
}

TEST(PgResumeCliFlags, DbWaitMustBeANumberOfSeconds) {
  const std::string dir = MakeTempDir("pg-db-wait");
  const std::string db = dir + "/v.sqlite";
  CliResult word = RunConvguard({"sweep", "--backend", "reference", "--grid",
                                 "n=1 c=4 hw=8 k=4 rs=3 p=1", "--db", db, "--db-wait", "soon"});
  EXPECT_EQ(word.exit_code, 2) << word.err;
  EXPECT_EQ(word.err,
            "convguard sweep: store: --db-wait 'soon' is not a number (allowed: 0..604800)\n");
  CliResult negative = RunConvguard({"db", "show", "--db", db, "--db-wait", "-1"});
  EXPECT_EQ(negative.exit_code, 2) << negative.err;
  EXPECT_EQ(negative.err, "convguard db show: --db-wait -1 is out of range (allowed: 0..604800)\n");
  CliResult env = RunConvguard({"db", "show", "--db", db}, 60, {{"CONVGUARD_DB_WAIT", "forever"}});
  EXPECT_EQ(env.exit_code, 2) << env.err;
  EXPECT_EQ(env.err,
            "convguard db show: $CONVGUARD_DB_WAIT 'forever' is not a number (allowed: "
            "0..604800)\n");
  // Every command that opens a store takes it.
  for (const char* command :
       {"sweep", "probe", "scan", "fix", "plan", "run", "replay", "pattern", "report", "db"}) {
    CliResult help = RunConvguard({command, "--help"});
    EXPECT_TRUE(Contains(help.out, "--db-wait")) << command << ":\n" << help.out;
  }
}

}  // namespace
}  // namespace convguard
