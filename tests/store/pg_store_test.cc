// The PostgreSQL store (src/store/pg_store.cc) against a real PostgreSQL server
// (tests/support/pg_server.h: one server for this binary, a fresh database per test).
//
// StoreContractTest states what every Store does and runs against both kinds, opened
// through OpenStore (so the choice of kind is tested too): what holds for SQLite must
// hold for PostgreSQL. The PostgresStoreTest cases are PostgreSQL's own: migrations under
// concurrency, refusing foreign and newer databases, claims from several connections,
// moving a store from SQLite (export and import; push and pull), connection errors that
// keep the password out, and the CLI.
#include "store/pg_store.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <latch>
#include <limits>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "convguard/store.h"
#include "convguard/store_transfer.h"
#include "core/json_records.h"
#include "store/pg_db.h"
#include "support/cli_runner.h"
#include "support/pg_server.h"

namespace convguard {
namespace {

using testing_support::MakeTempDir;
using testing_support::PgServer;
using testing_support::PgServerEnvironment;
using testing_support::RunConvguard;

const ::testing::Environment* const kPgServer =
    ::testing::AddGlobalTestEnvironment(new PgServerEnvironment);

// ---- records ----

StackFingerprint MakeStack(const std::string& device, bool emulated = false) {
  StackFingerprint s;
  s.backend = "reference";
  s.device = device;
  s.architecture = "x86_64";
  s.compute_units = 2;
  s.library = "convguard reference";
  s.knobs = {{"OMP_NUM_THREADS", "2"}};
  if (emulated) s.emulation = "RDNA1 via builtin:emulated-rdna1";
  s.tool_version = "0.1.0";
  return s;
}

Verdict MakeVerdict(const StackFingerprint& stack, const std::string& problem,
                    const std::string& algorithm, VerdictKind kind) {
  Verdict v;
  v.kind = kind;
  v.stack_id = stack.Id();
  v.problem = problem;
  v.algorithm = algorithm;
  v.attempts = 1;
  v.check = "full";
  v.tool_version = "0.1.0";
  v.recorded_at = "2026-11-25T15:10:57Z";
  v.emulated = stack.is_emulated();
  return v;
}

// Every field set to something other than its default, text that needs quoting, and an
// infinity (stored as NULL in its column, exact in the record).
Verdict FullVerdict(const StackFingerprint& stack) {
  Verdict v = MakeVerdict(stack, "n1_c16_h64_w64_k32_r3_s3_p1_u1_d1_g1_f32_nchw_fwd", "direct",
                          VerdictKind::kWrong);
  v.time_ms_min = 0.1;
  v.time_ms_median = 1.0 / 3.0;
  v.crash_signal = 11;
  v.exit_code = 3;
  v.message = "y[0,5,63,0]: got 17, want 18 'quoted' \"too\" $1 \\ ; DROP TABLE verdicts;\n2nd";
  v.check = "sampled:512";
  v.tolerance = 1.25e-5;
  v.max_abs_error = 1.0;
  v.max_rel_error = std::numeric_limits<double>::infinity();
  v.mismatches = int64_t{1} << 40;
  v.non_finite = 7;
  v.implementation = "brgconv:avx512_core";
  v.attempts = 2;
  v.deadline_ms = 1500.5;
  v.elapsed_ms = 12.25;
  v.repro = "convguard probe --backend reference " + v.problem;
  v.emulated = true;
  return v;
}

SequenceVerdict MakeSequenceVerdict(const StackFingerprint& stack, VerdictKind kind) {
  SequenceVerdict v;
  v.stack_id = stack.Id();
  v.digest = "0123456789abcdef";
  v.source = "app.log";
  v.calls = 60;
  v.calls_run = 40;
  v.kind = kind;
  v.failed_at = 39;
  v.failed_problem = "n1_c16_h64_w64_k32_r3_s3_p1_u1_d1_g1_f32_nchw_fwd";
  v.failed_algorithm = "direct";
  v.message = "call 40 of 60 missed the run-stage deadline";
  v.elapsed_ms = 3512.5;
  v.minimal = {"n1_c16_h64_w64_k32_r3_s3_p1_u1_d1_g1_f32_nchw_fwd"};
  v.tool_version = "0.1.0";
  v.recorded_at = "2026-11-25T15:10:57Z";
  return v;
}

VerdictKey KeyOf(const Verdict& v) { return {v.stack_id, v.problem, v.algorithm}; }

// Equal verdicts have equal canonical JSON (NaN and infinity included).
std::string Canonical(const Verdict& v) { return DumpJson(ToJson(v)); }
std::string Canonical(const SequenceVerdict& v) { return DumpJson(ToJson(v)); }

VerdictFilter Filter(std::optional<std::string> stack_id, std::optional<VerdictKind> kind = {},
                     std::optional<std::string> problem = {}, int64_t limit = -1) {
  VerdictFilter f;
  f.stack_id = std::move(stack_id);
  f.kind = kind;
  f.problem = std::move(problem);
  f.limit = limit;
  return f;
}

// A sequence verdict's content, without the id its store gave it.
std::string Content(SequenceVerdict v) {
  v.id = 0;
  return DumpJson(ToJson(v));
}

// An attempt as comparable text (NaN prints alike).
std::string Content(const Attempt& a) {
  char numbers[128];
  std::snprintf(numbers, sizeof numbers, "%d|%.17g|%.17g|%lld", a.attempt_number, a.deadline_ms,
                a.elapsed_ms, static_cast<long long>(a.worker_pid));
  return a.key.stack_id + "|" + a.key.problem + "|" + a.key.algorithm + "|" + numbers + "|" +
         a.outcome + "|" + a.started_at + "|" + a.detail;
}

// Every attempt and every sequence verdict (without ids) of a store, stack by stack.
std::vector<std::string> Histories(Store& store) {
  std::vector<std::string> out;
  StatusOr<std::vector<StackFingerprint>> stacks = store.ListStacks();
  EXPECT_TRUE(stacks.ok()) << stacks.status().ToString();
  if (!stacks.ok()) return out;
  for (const StackFingerprint& s : *stacks) {
    StatusOr<StackRecords> records = store.ReadStackRecords(s.Id());
    EXPECT_TRUE(records.ok()) << records.status().ToString();
    if (!records.ok()) continue;
    for (const Attempt& a : records->attempts) out.push_back(Content(a));
    for (const SequenceVerdict& v : records->sequence_verdicts) out.push_back(Content(v));
  }
  return out;
}

std::vector<std::string> Outcomes(Store& store, const VerdictKey& key) {
  std::vector<std::string> out;
  StatusOr<std::vector<Attempt>> attempts = store.ListAttempts(key);
  EXPECT_TRUE(attempts.ok()) << attempts.status().ToString();
  if (attempts.ok()) {
    for (const Attempt& a : *attempts) out.push_back(a.outcome);
  }
  return out;
}

// A fresh database on the binary's server, or a skip reason.
struct FreshDatabase {
  PgServer* server = nullptr;
  std::string name;
  std::string skip;
  bool failed = false;  // the server is there but the database could not be made
};

FreshDatabase MakeDatabase() {
  FreshDatabase db;
  db.server = PgServerEnvironment::Server(&db.skip);
  if (db.server == nullptr) return db;
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  StatusOr<std::string> name = db.server->CreateDatabase(info->name());
  if (!name.ok()) {
    // A failure, not a skip: the fixture stops the test with it (FAIL in SetUp), so that
    // no test body runs without its database.
    db.server = nullptr;
    db.failed = true;
    db.skip = "cannot create a database: " + name.status().ToString();
    return db;
  }
  db.name = *name;
  return db;
}

// ---- the contract of every Store, run against both kinds ----

enum class StoreKind { kSqlite, kPostgres };

class StoreContractTest : public ::testing::TestWithParam<StoreKind> {
 protected:
  void SetUp() override {
    if (GetParam() == StoreKind::kSqlite) {
      sqlite_dir_ = MakeTempDir("store-contract");
      target_ = sqlite_dir_ + "/store.db";
      return;
    }
    FreshDatabase db = MakeDatabase();
    if (db.failed) FAIL() << db.skip;
    if (db.server == nullptr) GTEST_SKIP() << db.skip;
    target_ = db.server->KeywordConnInfo(db.name);
  }

  // A new connection to the store under test, through the one function that decides.
  std::unique_ptr<Store> Open(OwnerLiveness alive = {}) {
    StoreOpenOptions options;
    options.owner_is_alive = std::move(alive);
    StatusOr<std::unique_ptr<Store>> store = OpenStore(target_, options);
    EXPECT_TRUE(store.ok()) << store.status().ToString();
    return store.ok() ? std::move(store).value() : nullptr;
  }

  void TearDown() override {
    std::error_code ignored;
    if (!sqlite_dir_.empty()) std::filesystem::remove_all(sqlite_dir_, ignored);
  }

  std::string sqlite_dir_;  // SQLite only: the store's folder, removed afterwards
  std::string target_;
};

INSTANTIATE_TEST_SUITE_P(BothKinds, StoreContractTest,
                         ::testing::Values(StoreKind::kSqlite, StoreKind::kPostgres),
                         [](const ::testing::TestParamInfo<StoreKind>& info) {
                           return info.param == StoreKind::kSqlite ? "Sqlite" : "Postgres";
                         });

TEST_P(StoreContractTest, TargetChoosesTheKind) {
  EXPECT_EQ(IsPostgresStoreTarget(target_), GetParam() == StoreKind::kPostgres) << target_;
}

TEST_P(StoreContractTest, StacksAreKeptOnceAndReadBack) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  const StackFingerprint a = MakeStack("CPU A", /*emulated=*/true);
  const StackFingerprint b = MakeStack("CPU B");
  ASSERT_TRUE(store->PutStack(b).ok());
  ASSERT_TRUE(store->PutStack(a).ok());
  ASSERT_TRUE(store->PutStack(a).ok());  // idempotent
  StatusOr<std::optional<StackFingerprint>> got = store->GetStack(a.Id());
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  ASSERT_TRUE(got->has_value());
  EXPECT_EQ(**got, a);
  StatusOr<std::optional<StackFingerprint>> none = store->GetStack("no-such-stack");
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
  StatusOr<std::vector<StackFingerprint>> all = store->ListStacks();
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 2u);
  EXPECT_LT((*all)[0].Id(), (*all)[1].Id());  // in id order

  StackFingerprint no_backend = a;
  no_backend.backend.clear();
  Status s = store->PutStack(no_backend);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "stack fingerprint: backend is empty");
}

TEST_P(StoreContractTest, VerdictKeepsEveryFieldExactly) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  const StackFingerprint stack = MakeStack("CPU A", true);
  ASSERT_TRUE(store->PutStack(stack).ok());
  const Verdict v = FullVerdict(stack);
  ASSERT_TRUE(store->PutVerdict(v).ok());
  auto reopened = Open();  // another connection reads what was committed
  ASSERT_NE(reopened, nullptr);
  StatusOr<std::optional<Verdict>> got = reopened->GetVerdict(KeyOf(v));
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  ASSERT_TRUE(got->has_value());
  EXPECT_EQ(Canonical(**got), Canonical(v));
  EXPECT_TRUE(std::isinf((*got)->max_rel_error));
  StatusOr<std::optional<Verdict>> missing =
      store->GetVerdict({stack.Id(), v.problem, "other-algorithm"});
  ASSERT_TRUE(missing.ok());
  EXPECT_FALSE(missing->has_value());
}

TEST_P(StoreContractTest, VerdictNeedsItsStackAndAWholeKey) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  const StackFingerprint stack = MakeStack("CPU A");
  Status s = store->PutVerdict(MakeVerdict(stack, "p1", "direct", VerdictKind::kOk));
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  EXPECT_NE(s.message().find("stack " + stack.Id() + " is not in store"), std::string::npos)
      << s.message();
  ASSERT_TRUE(store->PutStack(stack).ok());
  Status empty = store->PutVerdict(MakeVerdict(stack, "", "direct", VerdictKind::kOk));
  EXPECT_EQ(empty.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(empty.message(), "verdict key: problem is empty");
}

TEST_P(StoreContractTest, ReplacedVerdictGoesToHistoryOnce) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  const StackFingerprint stack = MakeStack("CPU A");
  ASSERT_TRUE(store->PutStack(stack).ok());
  const Verdict hang = MakeVerdict(stack, "p1", "direct", VerdictKind::kHang);
  Verdict ok = hang;
  ok.kind = VerdictKind::kOk;
  ASSERT_TRUE(store->PutVerdict(hang).ok());
  ASSERT_TRUE(store->PutVerdict(hang).ok());  // identical: no history
  EXPECT_TRUE(Outcomes(*store, KeyOf(hang)).empty());
  ASSERT_TRUE(store->PutVerdict(ok).ok());
  StatusOr<std::vector<Attempt>> history = store->ListAttempts(KeyOf(hang));
  ASSERT_TRUE(history.ok());
  ASSERT_EQ(history->size(), 1u);
  EXPECT_EQ((*history)[0].outcome, "superseded");
  EXPECT_EQ((*history)[0].detail, Canonical(hang));
  EXPECT_EQ((*store->GetVerdict(KeyOf(hang)))->kind, VerdictKind::kOk);
}

TEST_P(StoreContractTest, ListVerdictsFiltersInKeyOrder) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  const StackFingerprint a = MakeStack("CPU A");
  const StackFingerprint b = MakeStack("CPU B");
  ASSERT_TRUE(store->PutStack(a).ok());
  ASSERT_TRUE(store->PutStack(b).ok());
  // Inserted out of order; upper and lower case, which a locale would sort together.
  for (const char* problem : {"p_b", "P_a", "p_a"}) {
    ASSERT_TRUE(store->PutVerdict(MakeVerdict(a, problem, "direct", VerdictKind::kOk)).ok());
  }
  ASSERT_TRUE(store->PutVerdict(MakeVerdict(a, "p_a", "gemm", VerdictKind::kHang)).ok());
  ASSERT_TRUE(store->PutVerdict(MakeVerdict(b, "p_a", "direct", VerdictKind::kHang)).ok());

  StatusOr<std::vector<Verdict>> of_a = store->ListVerdicts(Filter(a.Id()));
  ASSERT_TRUE(of_a.ok()) << of_a.status().ToString();
  std::vector<std::string> order;
  for (const Verdict& v : *of_a) order.push_back(v.problem + "/" + v.algorithm);
  EXPECT_EQ(order,
            (std::vector<std::string>{"P_a/direct", "p_a/direct", "p_a/gemm", "p_b/direct"}));
  EXPECT_EQ(store->ListVerdicts(Filter(std::nullopt, VerdictKind::kHang))->size(), 2u);
  EXPECT_EQ(store->ListVerdicts(Filter(a.Id(), VerdictKind::kHang))->size(), 1u);
  EXPECT_EQ(store->ListVerdicts(Filter(std::nullopt, {}, "p_a"))->size(), 3u);
  EXPECT_EQ(store->ListVerdicts(Filter(std::nullopt, {}, {}, 2))->size(), 2u);
  EXPECT_EQ(store->ListVerdicts(Filter(std::nullopt, {}, {}, 0))->size(), 0u);
  EXPECT_EQ(store->ListVerdicts(Filter(std::nullopt))->size(), 5u);
  StatusOr<std::vector<Verdict>> bad = store->ListVerdicts(Filter(std::nullopt, {}, {}, -2));
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
}

TEST_P(StoreContractTest, AttemptsAreKeptInOrder) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  const StackFingerprint stack = MakeStack("CPU A");
  Attempt a;
  a.key = {stack.Id(), "p1", "direct"};
  a.outcome = "deadline";
  EXPECT_EQ(store->AddAttempt(a).code(), StatusCode::kNotFound);  // stack unknown
  ASSERT_TRUE(store->PutStack(stack).ok());
  a.attempt_number = 1;
  a.deadline_ms = 250.5;
  a.elapsed_ms = std::nan("");
  a.worker_pid = 4242;
  a.started_at = "2026-11-25T15:10:57Z";
  a.detail = "first miss";
  ASSERT_TRUE(store->AddAttempt(a).ok());
  Attempt b = a;
  b.attempt_number = 2;
  b.outcome = "crash";
  b.elapsed_ms = 3.0;
  ASSERT_TRUE(store->AddAttempt(b).ok());
  StatusOr<std::vector<Attempt>> got = store->ListAttempts(a.key);
  ASSERT_TRUE(got.ok());
  ASSERT_EQ(got->size(), 2u);
  EXPECT_EQ((*got)[0].attempt_number, 1);
  EXPECT_EQ((*got)[0].deadline_ms, 250.5);
  EXPECT_TRUE(std::isnan((*got)[0].elapsed_ms));
  EXPECT_EQ((*got)[0].worker_pid, 4242);
  EXPECT_EQ((*got)[0].detail, "first miss");
  EXPECT_EQ((*got)[1].outcome, "crash");
  EXPECT_EQ((*got)[1].elapsed_ms, 3.0);
}

TEST_P(StoreContractTest, ClaimIsHeldUntilPutVerdictReleasesIt) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  const StackFingerprint stack = MakeStack("CPU A");
  ASSERT_TRUE(store->PutStack(stack).ok());
  const Verdict v = MakeVerdict(stack, "p1", "direct", VerdictKind::kOk);
  const double kNever = std::numeric_limits<double>::infinity();
  EXPECT_EQ(*store->Claim(KeyOf(v), "host:1:1", false, kNever), ClaimResult::kClaimed);
  EXPECT_EQ(*store->Claim(KeyOf(v), "host:1:1", false, kNever), ClaimResult::kClaimed);
  EXPECT_EQ(*store->Claim(KeyOf(v), "host:2:2", false, kNever), ClaimResult::kHeldByOther);
  ASSERT_TRUE(store->PutVerdict(v).ok());
  EXPECT_EQ(*store->Claim(KeyOf(v), "host:2:2", false, kNever), ClaimResult::kAlreadyKnown);
  // Released by the verdict: a redo by another owner gets it.
  EXPECT_EQ(*store->Claim(KeyOf(v), "host:2:2", true, kNever), ClaimResult::kClaimed);
  EXPECT_EQ(*store->Claim(KeyOf(v), "host:1:1", true, kNever), ClaimResult::kHeldByOther);
  ASSERT_TRUE(store->Release("host:2:2", std::nullopt).ok());
  EXPECT_EQ(*store->Claim(KeyOf(v), "host:1:1", true, kNever), ClaimResult::kClaimed);
  ASSERT_TRUE(store->Release("host:1:1", KeyOf(v)).ok());
  EXPECT_EQ(*store->Claim(KeyOf(v), "host:2:2", true, kNever), ClaimResult::kClaimed);
  EXPECT_TRUE(Outcomes(*store, KeyOf(v)).empty());  // nothing was taken over

  EXPECT_EQ(store->Claim(KeyOf(v), "", false, kNever).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(store->Claim(KeyOf(v), "x", false, std::nan("")).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(store->Release("", std::nullopt).code(), StatusCode::kInvalidArgument);
}

TEST_P(StoreContractTest, DeadOwnersClaimIsTakenOverWithEvidence) {
  std::set<std::string> dead = {"host:1:1"};
  auto store = Open([&](const std::string& owner) { return !dead.contains(owner); });
  ASSERT_NE(store, nullptr);
  const StackFingerprint stack = MakeStack("CPU A");
  ASSERT_TRUE(store->PutStack(stack).ok());
  const VerdictKey key{stack.Id(), "p1", "direct"};
  const double kNever = std::numeric_limits<double>::infinity();
  ASSERT_EQ(*store->Claim(key, "host:1:1", false, kNever), ClaimResult::kClaimed);
  EXPECT_EQ(*store->Claim(key, "host:2:2", false, kNever), ClaimResult::kClaimed);
  StatusOr<std::vector<Attempt>> history = store->ListAttempts(key);
  ASSERT_TRUE(history.ok());
  ASSERT_EQ(history->size(), 1u);
  EXPECT_EQ((*history)[0].outcome, "abandoned");
  EXPECT_NE((*history)[0].detail.find("claim of host:1:1"), std::string::npos);
  EXPECT_NE((*history)[0].detail.find("taken over by host:2:2: owner not alive"), std::string::npos)
      << (*history)[0].detail;
  EXPECT_EQ(*store->Claim(key, "host:3:3", false, kNever), ClaimResult::kHeldByOther);
}

TEST_P(StoreContractTest, StaleClaimIsTakenOverByAge) {
  auto store = Open();  // no liveness: every owner counts as alive
  ASSERT_NE(store, nullptr);
  const VerdictKey key{"unknown-stack", "p1", "direct"};  // claims need no stack
  ASSERT_EQ(*store->Claim(key, "a", false, 3600.0), ClaimResult::kClaimed);
  EXPECT_EQ(*store->Claim(key, "b", false, 3600.0), ClaimResult::kHeldByOther);
  EXPECT_EQ(*store->Claim(key, "b", false, 0.0), ClaimResult::kClaimed);
  EXPECT_EQ(*store->Claim(key, "a", false, 3600.0), ClaimResult::kHeldByOther);
}

TEST_P(StoreContractTest, SequenceVerdictsAreAppended) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  const StackFingerprint a = MakeStack("CPU A");
  const StackFingerprint b = MakeStack("CPU B");
  EXPECT_EQ(store->AddSequenceVerdict(MakeSequenceVerdict(a, VerdictKind::kHang)).status().code(),
            StatusCode::kNotFound);
  ASSERT_TRUE(store->PutStack(a).ok());
  ASSERT_TRUE(store->PutStack(b).ok());
  const SequenceVerdict hang = MakeSequenceVerdict(a, VerdictKind::kHang);
  StatusOr<int64_t> first = store->AddSequenceVerdict(hang);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  StatusOr<int64_t> second = store->AddSequenceVerdict(MakeSequenceVerdict(b, VerdictKind::kOk));
  ASSERT_TRUE(second.ok());
  StatusOr<int64_t> third = store->AddSequenceVerdict(hang);
  ASSERT_TRUE(third.ok());
  EXPECT_LT(*first, *second);
  EXPECT_LT(*second, *third);
  StatusOr<std::vector<SequenceVerdict>> of_a = store->ListSequenceVerdicts(a.Id());
  ASSERT_TRUE(of_a.ok());
  ASSERT_EQ(of_a->size(), 2u);
  SequenceVerdict expected = hang;
  expected.id = *first;
  EXPECT_EQ(Canonical((*of_a)[0]), Canonical(expected));
  EXPECT_EQ((*of_a)[1].id, *third);
  EXPECT_EQ(store->ListSequenceVerdicts(std::nullopt)->size(), 3u);
  SequenceVerdict no_digest = hang;
  no_digest.digest.clear();
  EXPECT_EQ(store->AddSequenceVerdict(no_digest).status().code(), StatusCode::kInvalidArgument);
}

TEST_P(StoreContractTest, JsonLinesRoundTripAndReplaceRules) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  const StackFingerprint a = MakeStack("CPU A", true);
  const StackFingerprint b = MakeStack("CPU B");
  ASSERT_TRUE(store->PutStack(a).ok());
  ASSERT_TRUE(store->PutStack(b).ok());
  ASSERT_TRUE(store->PutVerdict(FullVerdict(a)).ok());
  ASSERT_TRUE(store->PutVerdict(MakeVerdict(b, "p1", "direct", VerdictKind::kHang)).ok());
  StatusOr<std::string> text = store->ExportJsonLines(Filter(std::nullopt));
  ASSERT_TRUE(text.ok()) << text.status().ToString();
  EXPECT_EQ(std::count(text->begin(), text->end(), '\n'), 4);

  // Into the same store: everything identical.
  StatusOr<ImportReport> again = store->ImportJsonLines(*text, false);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->identical, 2);
  EXPECT_EQ(again->inserted + again->replaced + again->kept_existing, 0);

  // A changed verdict is kept without replace, replaced (into the history) with it.
  Verdict changed = MakeVerdict(b, "p1", "direct", VerdictKind::kOk);
  const std::string changed_line = DumpJson([&] {
                                     nlohmann::json j = ToJson(changed);
                                     j["type"] = "verdict";
                                     return j;
                                   }()) +
                                   "\n";
  StatusOr<ImportReport> kept = store->ImportJsonLines(changed_line, false);
  ASSERT_TRUE(kept.ok()) << kept.status().ToString();
  EXPECT_EQ(kept->kept_existing, 1);
  EXPECT_EQ((*store->GetVerdict(KeyOf(changed)))->kind, VerdictKind::kHang);
  StatusOr<ImportReport> replaced = store->ImportJsonLines(changed_line, true);
  ASSERT_TRUE(replaced.ok());
  EXPECT_EQ(replaced->replaced, 1);
  EXPECT_EQ((*store->GetVerdict(KeyOf(changed)))->kind, VerdictKind::kOk);
  EXPECT_EQ(Outcomes(*store, KeyOf(changed)), std::vector<std::string>{"superseded"});
}

TEST_P(StoreContractTest, ImportErrorChangesNothing) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  const StackFingerprint a = MakeStack("CPU A");
  ASSERT_TRUE(store->PutStack(a).ok());
  ASSERT_TRUE(store->PutVerdict(MakeVerdict(a, "p1", "direct", VerdictKind::kHang)).ok());
  const std::string before = *store->ExportJsonLines(Filter(std::nullopt));
  // Line 1 is good and would replace; line 2 refers to a stack nowhere to be found.
  const StackFingerprint ghost = MakeStack("CPU ghost");
  auto line = [](const Verdict& v) {
    nlohmann::json j = ToJson(v);
    j["type"] = "verdict";
    return DumpJson(j) + "\n";
  };
  const std::string text = line(MakeVerdict(a, "p1", "direct", VerdictKind::kOk)) +
                           line(MakeVerdict(ghost, "p2", "direct", VerdictKind::kOk));
  StatusOr<ImportReport> report = store->ImportJsonLines(text, true);
  ASSERT_FALSE(report.ok());
  EXPECT_EQ(report.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(report.status().message().rfind("line 2: verdict refers to stack " + ghost.Id(), 0), 0u)
      << report.status().message();
  StatusOr<ImportReport> garbage = store->ImportJsonLines("\n{\"type\": \"verdict\"\n", true);
  ASSERT_FALSE(garbage.ok());
  EXPECT_EQ(garbage.status().message().rfind("line 2: ", 0), 0u) << garbage.status().message();
  EXPECT_EQ(*store->ExportJsonLines(Filter(std::nullopt)), before);
  EXPECT_TRUE(Outcomes(*store, {a.Id(), "p1", "direct"}).empty());
}

TEST_P(StoreContractTest, MergedRecordsAreReadBackAndAConflictKeepsBothOnce) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  const StackFingerprint a = MakeStack("CPU A", true);
  // The incoming records: a verdict in full, its attempts (one with a NaN time, one twice),
  // a key with attempts only, and two sequence verdicts of the same content.
  StackRecords incoming;
  incoming.stack = {a.Id(), a, "2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z"};
  const Verdict full = FullVerdict(a);
  incoming.verdicts = {full, MakeVerdict(a, "p1", "direct", VerdictKind::kHang)};
  Attempt miss;
  miss.key = KeyOf(full);
  miss.attempt_number = 1;
  miss.outcome = "deadline";
  miss.deadline_ms = 1500.5;
  miss.elapsed_ms = std::nan("");
  miss.worker_pid = 4242;
  miss.started_at = "2026-11-25T15:10:57Z";
  miss.detail = "first miss";
  Attempt orphan = miss;
  orphan.key = {a.Id(), "p9", "gemm"};
  incoming.attempts = {miss, miss, orphan};
  std::sort(incoming.verdicts.begin(), incoming.verdicts.end(),
            [](const Verdict& x, const Verdict& y) { return x.problem < y.problem; });
  incoming.sequence_verdicts = {MakeSequenceVerdict(a, VerdictKind::kHang),
                                MakeSequenceVerdict(a, VerdictKind::kHang)};

  // The store already holds a different verdict for one key.
  ASSERT_TRUE(store->PutStack(a).ok());
  const Verdict theirs = MakeVerdict(a, "p1", "direct", VerdictKind::kOk);
  ASSERT_TRUE(store->PutVerdict(theirs).ok());
  MergeOptions options;
  options.source_label = "ada-laptop:/home/ada/local.sqlite";
  StatusOr<MergeReport> merged = store->MergeStackRecords(incoming, options);
  ASSERT_TRUE(merged.ok()) << merged.status().ToString();
  EXPECT_EQ(merged->stacks, (MergeCounts{0, 1}));
  EXPECT_EQ(merged->verdicts, (MergeCounts{1, 0}));
  EXPECT_EQ(merged->attempts, (MergeCounts{3, 0}));
  EXPECT_EQ(merged->sequence_verdicts, (MergeCounts{2, 0}));
  ASSERT_EQ(merged->conflicts.size(), 1u);
  EXPECT_EQ(merged->conflicts[0], KeyOf(theirs));
  EXPECT_EQ(merged->conflicts_recorded, 1);

  StatusOr<StackRecords> got = store->ReadStackRecords(a.Id());
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->stack.first_seen, "2026-01-01T00:00:00Z");  // widened
  ASSERT_EQ(got->verdicts.size(), 2u);
  EXPECT_EQ(Canonical(got->verdicts[0]), Canonical(full));
  EXPECT_EQ(Canonical(got->verdicts[1]), Canonical(theirs));  // kept current
  ASSERT_EQ(got->attempts.size(), 4u);                        // grouped by key, in key order
  EXPECT_EQ(Content(got->attempts[0]), Content(miss));
  EXPECT_EQ(Content(got->attempts[1]), Content(miss));
  EXPECT_EQ(got->attempts[2].outcome, "conflict");
  EXPECT_NE(got->attempts[2].detail.find(Canonical(incoming.verdicts[1])), std::string::npos)
      << got->attempts[2].detail;
  EXPECT_EQ(Content(got->attempts[3]), Content(orphan));
  ASSERT_EQ(got->sequence_verdicts.size(), 2u);
  EXPECT_NE(got->sequence_verdicts[0].id, got->sequence_verdicts[1].id);
  EXPECT_EQ(Content(got->sequence_verdicts[1]), Content(incoming.sequence_verdicts[0]));

  // Again: nothing added, the conflict not recorded twice.
  StatusOr<MergeReport> again = store->MergeStackRecords(incoming, options);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->verdicts, (MergeCounts{0, 1}));
  EXPECT_EQ(again->attempts, (MergeCounts{0, 3}));
  EXPECT_EQ(again->sequence_verdicts, (MergeCounts{0, 2}));
  EXPECT_EQ(again->conflicts_already_recorded, 1);
  EXPECT_EQ(Histories(*store).size(), 6u);

  // Preferring the incoming one: current now, the stored one superseded.
  options.prefer_incoming = true;
  StatusOr<MergeReport> preferred = store->MergeStackRecords(incoming, options);
  ASSERT_TRUE(preferred.ok()) << preferred.status().ToString();
  EXPECT_EQ(preferred->replaced, 1);
  EXPECT_EQ(Canonical(**store->GetVerdict(KeyOf(theirs))), Canonical(incoming.verdicts[1]));
  EXPECT_EQ(Outcomes(*store, KeyOf(theirs)), (std::vector<std::string>{"conflict", "superseded"}));
  EXPECT_EQ(store->ReadStackRecords("0000000000000000").status().code(), StatusCode::kNotFound);
}

// ---- PostgreSQL's own ----

class PostgresStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    db_ = MakeDatabase();
    if (db_.failed) FAIL() << db_.skip;
    if (db_.server == nullptr) GTEST_SKIP() << db_.skip;
    conninfo_ = db_.server->KeywordConnInfo(db_.name);
  }

  std::unique_ptr<Store> MustOpen(const PostgresStoreOptions& options = {}) {
    StatusOr<std::unique_ptr<Store>> store = OpenPostgresStore(conninfo_, options);
    EXPECT_TRUE(store.ok()) << store.status().ToString();
    return store.ok() ? std::move(store).value() : nullptr;
  }

  // One integer from `sql` in the test's database, through a connection of its own.
  int64_t QueryInt(const std::string& sql) {
    StatusOr<std::unique_ptr<pg::Connection>> conn = pg::Connection::Open(conninfo_, 10);
    EXPECT_TRUE(conn.ok()) << conn.status().ToString();
    if (!conn.ok()) return -1;
    StatusOr<int64_t> value = (*conn)->QueryInt(sql);
    EXPECT_TRUE(value.ok()) << value.status().ToString();
    return value.ok() ? *value : -1;
  }

  FreshDatabase db_;
  std::string conninfo_;
};

TEST_F(PostgresStoreTest, FreshDatabaseIsMigratedAndMarked) {
  auto store = MustOpen();
  ASSERT_NE(store, nullptr);
  const int latest = EmbeddedPostgresMigrations().back().version;
  EXPECT_EQ(latest, 3);
  EXPECT_EQ(QueryInt("SELECT schema_version FROM convguard_store"), latest);
  EXPECT_EQ(QueryInt("SELECT application_id FROM convguard_store"), kPostgresStoreApplicationId);
  EXPECT_EQ(QueryInt("SELECT count(*) FROM schema_migrations"), latest);
  EXPECT_EQ(QueryInt("SELECT count(*) FROM schema_migrations WHERE version = 1 AND"
                     " name = '001_initial'"),
            1);
  for (const char* table : {"stacks", "verdicts", "attempts", "claims", "sequence_verdicts"}) {
    EXPECT_EQ(
        QueryInt(std::string("SELECT count(*) FROM pg_tables WHERE tablename = '") + table + "'"),
        1)
        << table;
  }
  // The same version numbers as SQLite's files: either kind of store reports the same.
  ASSERT_EQ(EmbeddedPostgresMigrations().size(), 3u);
  EXPECT_STREQ(EmbeddedPostgresMigrations()[1].name, "002_sequence_verdicts");
  // Reopening migrates nothing again.
  ASSERT_NE(MustOpen(), nullptr);
  EXPECT_EQ(QueryInt("SELECT count(*) FROM schema_migrations"), latest);
}

TEST_F(PostgresStoreTest, ManyConnectionsOpeningAFreshDatabaseMigrateOnce) {
  constexpr int kOpeners = 8;
  std::latch start(kOpeners);
  std::vector<std::string> errors(kOpeners);
  std::vector<std::thread> threads;
  for (int i = 0; i < kOpeners; ++i) {
    threads.emplace_back([&, i] {
      start.arrive_and_wait();
      StatusOr<std::unique_ptr<Store>> store = OpenPostgresStore(conninfo_);
      if (!store.ok()) {
        errors[i] = store.status().ToString();
        return;
      }
      Status s = (*store)->PutStack(MakeStack("CPU " + std::to_string(i)));
      if (!s.ok()) errors[i] = s.ToString();
    });
  }
  for (std::thread& t : threads) t.join();
  for (int i = 0; i < kOpeners; ++i) EXPECT_EQ(errors[i], "") << "opener " << i;
  EXPECT_EQ(QueryInt("SELECT count(*) FROM schema_migrations"),
            static_cast<int64_t>(EmbeddedPostgresMigrations().size()));
  EXPECT_EQ(QueryInt("SELECT count(*) FROM convguard_store"), 1);
  EXPECT_EQ(QueryInt("SELECT count(*) FROM stacks"), kOpeners);
}

TEST_F(PostgresStoreTest, RefusesAStoreOfANewerSchema) {
  std::vector<SchemaMigration> newer = EmbeddedPostgresMigrations();
  const int next = static_cast<int>(newer.size()) + 1;
  newer.push_back({next, "099_future", "CREATE TABLE future_things (id BIGINT);"});
  {
    StatusOr<std::unique_ptr<Store>> future = OpenPostgresStoreWithMigrations(conninfo_, {}, newer);
    ASSERT_TRUE(future.ok()) << future.status().ToString();
  }
  StatusOr<std::unique_ptr<Store>> store = OpenPostgresStore(conninfo_);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), StatusCode::kUnsupported);
  const std::string says = "has schema version " + std::to_string(next) +
                           "; this build of convguard knows versions 1 to " +
                           std::to_string(next - 1) + " (open it with a newer convguard)";
  EXPECT_NE(store.status().message().find(says), std::string::npos) << store.status().message();
  EXPECT_NE(store.status().message().find("dbname=" + db_.name), std::string::npos)
      << store.status().message();
}

TEST_F(PostgresStoreTest, MigratesAnOlderStoreKeepingItsData) {
  const std::vector<SchemaMigration> v1(EmbeddedPostgresMigrations().begin(),
                                        EmbeddedPostgresMigrations().begin() + 1);
  const StackFingerprint stack = MakeStack("CPU A");
  {
    StatusOr<std::unique_ptr<Store>> old = OpenPostgresStoreWithMigrations(conninfo_, {}, v1);
    ASSERT_TRUE(old.ok()) << old.status().ToString();
    ASSERT_TRUE((*old)->PutStack(stack).ok());
    ASSERT_TRUE((*old)->PutVerdict(MakeVerdict(stack, "p1", "direct", VerdictKind::kHang)).ok());
  }
  EXPECT_EQ(QueryInt("SELECT schema_version FROM convguard_store"), 1);
  auto store = MustOpen();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(QueryInt("SELECT schema_version FROM convguard_store"),
            EmbeddedPostgresMigrations().back().version);
  EXPECT_EQ(store->ListVerdicts(Filter(std::nullopt))->size(), 1u);
  EXPECT_TRUE(store->AddSequenceVerdict(MakeSequenceVerdict(stack, VerdictKind::kOk)).ok());
}

TEST_F(PostgresStoreTest, RefusesAForeignDatabaseAndLeavesItAlone) {
  ASSERT_TRUE(db_.server
                  ->Exec(db_.name,
                         "CREATE TABLE people (name TEXT);"
                         " INSERT INTO people VALUES ('ada')")
                  .ok());
  StatusOr<std::unique_ptr<Store>> store = OpenPostgresStore(conninfo_);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(store.status().message().find("is a PostgreSQL database but not a convguard store"),
            std::string::npos)
      << store.status().message();
  EXPECT_NE(store.status().message().find("refusing to modify it"), std::string::npos);
  EXPECT_EQ(QueryInt("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"), 1);
  EXPECT_EQ(QueryInt("SELECT count(*) FROM people"), 1);
}

TEST_F(PostgresStoreTest, RefusesAMarkerThatIsNotConvguards) {
  ASSERT_TRUE(db_.server
                  ->Exec(db_.name,
                         "CREATE TABLE convguard_store (application_id INTEGER,"
                         " schema_version INTEGER); INSERT INTO convguard_store"
                         " VALUES (7, 1)")
                  .ok());
  StatusOr<std::unique_ptr<Store>> store = OpenPostgresStore(conninfo_);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(store.status().message().find("without convguard's marker"), std::string::npos)
      << store.status().message();
}

TEST_F(PostgresStoreTest, TwoConnectionsNeverClaimTheSameKeyTwice) {
  {
    auto setup = MustOpen();
    ASSERT_NE(setup, nullptr);
    ASSERT_TRUE(setup->PutStack(MakeStack("CPU A")).ok());
  }
  const std::string stack_id = MakeStack("CPU A").Id();
  constexpr int kThreads = 4;
  constexpr int kKeys = 60;
  const double kNever = std::numeric_limits<double>::infinity();
  std::latch start(kThreads);
  std::vector<std::vector<int>> won(kThreads);
  std::vector<std::string> errors(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      StatusOr<std::unique_ptr<Store>> store = OpenPostgresStore(conninfo_);
      start.arrive_and_wait();
      if (!store.ok()) {
        errors[t] = store.status().ToString();
        return;
      }
      const std::string owner = "host:" + std::to_string(t) + ":1";
      for (int k = 0; k < kKeys; ++k) {
        const VerdictKey key{stack_id, "p" + std::to_string(k), "direct"};
        StatusOr<ClaimResult> r = (*store)->Claim(key, owner, false, kNever);
        if (!r.ok()) {
          errors[t] = r.status().ToString();
          return;
        }
        if (*r == ClaimResult::kClaimed) won[t].push_back(k);
      }
    });
  }
  for (std::thread& t : threads) t.join();
  std::map<int, int> winners;
  for (int t = 0; t < kThreads; ++t) {
    EXPECT_EQ(errors[t], "") << "thread " << t;
    for (int k : won[t]) ++winners[k];
  }
  EXPECT_EQ(winners.size(), static_cast<size_t>(kKeys));
  for (const auto& [k, count] : winners) EXPECT_EQ(count, 1) << "key p" << k;
  EXPECT_EQ(QueryInt("SELECT count(*) FROM claims"), kKeys);
}

TEST_F(PostgresStoreTest, PutVerdictFromAnotherConnectionReleasesTheClaim) {
  auto prober = MustOpen();
  auto other = MustOpen();
  ASSERT_NE(prober, nullptr);
  ASSERT_NE(other, nullptr);
  const StackFingerprint stack = MakeStack("CPU A");
  ASSERT_TRUE(prober->PutStack(stack).ok());
  const Verdict v = MakeVerdict(stack, "p1", "direct", VerdictKind::kCrash);
  const double kNever = std::numeric_limits<double>::infinity();
  ASSERT_EQ(*prober->Claim(KeyOf(v), "host:1:1", false, kNever), ClaimResult::kClaimed);
  EXPECT_EQ(*other->Claim(KeyOf(v), "host:2:2", false, kNever), ClaimResult::kHeldByOther);
  EXPECT_EQ(QueryInt("SELECT count(*) FROM claims"), 1);
  ASSERT_TRUE(prober->PutVerdict(v).ok());
  EXPECT_EQ(QueryInt("SELECT count(*) FROM claims"), 0);
  EXPECT_EQ(*other->Claim(KeyOf(v), "host:2:2", false, kNever), ClaimResult::kAlreadyKnown);
}

TEST_F(PostgresStoreTest, SqliteExportImportsAndExportsByteIdentical) {
  const std::string dir = MakeTempDir("pg-from-sqlite");
  StatusOr<std::unique_ptr<Store>> sqlite = OpenSqliteStore(dir + "/store.db");
  ASSERT_TRUE(sqlite.ok()) << sqlite.status().ToString();
  const StackFingerprint a = MakeStack("CPU A", true);
  const StackFingerprint b = MakeStack("CPU B");
  for (const StackFingerprint& s : {a, b}) ASSERT_TRUE((*sqlite)->PutStack(s).ok());
  ASSERT_TRUE((*sqlite)->PutVerdict(FullVerdict(a)).ok());
  for (const char* problem : {"zeta", "Alpha", "alpha", "_under", "n1_c4_h8_w8"}) {
    ASSERT_TRUE((*sqlite)->PutVerdict(MakeVerdict(b, problem, "direct", VerdictKind::kOk)).ok());
  }
  Verdict nan_times = MakeVerdict(b, "nan", "gemm", VerdictKind::kError);
  nan_times.time_ms_min = std::nan("");
  nan_times.elapsed_ms = -std::numeric_limits<double>::infinity();
  ASSERT_TRUE((*sqlite)->PutVerdict(nan_times).ok());
  StatusOr<std::string> exported = (*sqlite)->ExportJsonLines(Filter(std::nullopt));
  ASSERT_TRUE(exported.ok());

  auto store = MustOpen();
  ASSERT_NE(store, nullptr);
  StatusOr<ImportReport> report = store->ImportJsonLines(*exported, false);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(report->inserted, 7);
  StatusOr<std::string> again = store->ExportJsonLines(Filter(std::nullopt));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, *exported);
  // And a filtered export is the same from either store.
  EXPECT_EQ(*store->ExportJsonLines(Filter(b.Id(), VerdictKind::kOk, {}, 3)),
            *(*sqlite)->ExportJsonLines(Filter(b.Id(), VerdictKind::kOk, {}, 3)));
  sqlite->reset();
  std::error_code ignored;
  std::filesystem::remove_all(dir, ignored);
}

// A local SQLite store with some of everything, for pushing.
void FillLocal(Store& store, const StackFingerprint& a, const StackFingerprint& b) {
  for (const StackFingerprint& s : {a, b}) ASSERT_TRUE(store.PutStack(s).ok());
  const Verdict hang = MakeVerdict(a, "p1", "direct", VerdictKind::kHang);
  ASSERT_TRUE(store.PutVerdict(hang).ok());
  Verdict ok = hang;
  ok.kind = VerdictKind::kOk;
  ok.recorded_at = "2026-11-26T08:00:00Z";
  ASSERT_TRUE(store.PutVerdict(ok).ok());  // the HANG to the history
  ASSERT_TRUE(store.PutVerdict(FullVerdict(a)).ok());
  for (const char* problem : {"zeta", "Alpha", "alpha", "_under"}) {
    ASSERT_TRUE(store.PutVerdict(MakeVerdict(b, problem, "direct", VerdictKind::kOk)).ok());
  }
  Attempt miss;
  miss.key = KeyOf(hang);
  miss.attempt_number = 1;
  miss.outcome = "deadline";
  miss.deadline_ms = 250.5;
  miss.elapsed_ms = std::nan("");
  miss.worker_pid = 4242;
  miss.started_at = "2026-11-25T15:10:57Z";
  miss.detail = "first miss";
  ASSERT_TRUE(store.AddAttempt(miss).ok());
  miss.attempt_number = 2;
  miss.elapsed_ms = 251.0;
  ASSERT_TRUE(store.AddAttempt(miss).ok());
  miss.key = {b.Id(), "never-finished", "gemm"};
  ASSERT_TRUE(store.AddAttempt(miss).ok());
  ASSERT_TRUE(store.AddSequenceVerdict(MakeSequenceVerdict(a, VerdictKind::kHang)).ok());
  ASSERT_TRUE(store.AddSequenceVerdict(MakeSequenceVerdict(b, VerdictKind::kOk)).ok());
}

TEST_F(PostgresStoreTest, PushFromSqliteThenPullIntoAFreshSqliteIsLossless) {
  const std::string dir = MakeTempDir("pg-push-pull");
  StatusOr<std::unique_ptr<Store>> local = OpenSqliteStore(dir + "/local.sqlite");
  ASSERT_TRUE(local.ok()) << local.status().ToString();
  const StackFingerprint a = MakeStack("CPU A", true);
  const StackFingerprint b = MakeStack("CPU B");
  FillLocal(**local, a, b);
  const std::string local_export = *(*local)->ExportJsonLines(Filter(std::nullopt));
  const std::vector<std::string> local_histories = Histories(**local);

  auto shared = MustOpen();
  ASSERT_NE(shared, nullptr);
  TransferOptions options;
  options.source_label = "ada-laptop:" + dir + "/local.sqlite";
  options.batch_records = 3;  // several transactions per stack
  TransferReport pushed;
  ASSERT_TRUE(TransferStore(**local, *shared, options, &pushed).ok());
  EXPECT_EQ(pushed.merged.stacks, (MergeCounts{2, 0}));
  EXPECT_EQ(pushed.merged.verdicts.added, QueryInt("SELECT count(*) FROM verdicts"));
  EXPECT_EQ(pushed.merged.attempts.added, QueryInt("SELECT count(*) FROM attempts"));
  EXPECT_EQ(pushed.merged.sequence_verdicts.added,
            QueryInt("SELECT count(*) FROM sequence_verdicts"));
  EXPECT_EQ(*shared->ExportJsonLines(Filter(std::nullopt)), local_export);
  EXPECT_EQ(Histories(*shared), local_histories);

  TransferReport again;
  ASSERT_TRUE(TransferStore(**local, *shared, options, &again).ok());
  EXPECT_EQ(again.merged.stacks.added + again.merged.verdicts.added + again.merged.attempts.added +
                again.merged.sequence_verdicts.added,
            0);
  EXPECT_EQ(again.merged.verdicts.already, pushed.merged.verdicts.added);
  EXPECT_EQ(again.merged.attempts.already, pushed.merged.attempts.added);

  StatusOr<std::unique_ptr<Store>> fresh = OpenSqliteStore(dir + "/fresh.sqlite");
  ASSERT_TRUE(fresh.ok()) << fresh.status().ToString();
  TransferReport pulled;
  options.source_label = StoreTargetLabel(conninfo_);
  ASSERT_TRUE(TransferStore(*shared, **fresh, options, &pulled).ok());
  EXPECT_EQ(*(*fresh)->ExportJsonLines(Filter(std::nullopt)), local_export);
  EXPECT_EQ(Histories(**fresh), local_histories);

  // A conflict on the shared store: its verdict stays, the pushed one is kept once.
  Verdict changed = MakeVerdict(b, "zeta", "direct", VerdictKind::kCrash);
  ASSERT_TRUE((*local)->PutVerdict(changed).ok());
  for (int round = 0; round < 2; ++round) {
    TransferReport conflicting;
    ASSERT_TRUE(TransferStore(**local, *shared, options, &conflicting).ok());
    ASSERT_EQ(conflicting.merged.conflicts.size(), 1u);
    EXPECT_EQ(conflicting.merged.conflicts_recorded, round == 0 ? 1 : 0);
  }
  EXPECT_EQ((*shared->GetVerdict(KeyOf(changed)))->kind, VerdictKind::kOk);
  EXPECT_EQ(QueryInt("SELECT count(*) FROM attempts WHERE outcome = 'conflict'"), 1);
  local->reset();
  fresh->reset();
  std::error_code ignored;
  std::filesystem::remove_all(dir, ignored);
}

TEST_F(PostgresStoreTest, TwoPushesAtOnceAddEverythingOnce) {
  const std::string dir = MakeTempDir("pg-two-pushes");
  const StackFingerprint a = MakeStack("CPU A");
  const StackFingerprint b = MakeStack("CPU B");
  constexpr int kPushers = 3;
  {
    StatusOr<std::unique_ptr<Store>> local = OpenSqliteStore(dir + "/local0.sqlite");
    ASSERT_TRUE(local.ok()) << local.status().ToString();
    FillLocal(**local, a, b);
  }
  // The same records, seen-times included, in every local store.
  for (int i = 1; i < kPushers; ++i) {
    std::filesystem::copy_file(dir + "/local0.sqlite",
                               dir + "/local" + std::to_string(i) + ".sqlite");
  }
  std::latch start(kPushers);
  std::vector<std::string> errors(kPushers);
  std::vector<std::thread> threads;
  for (int i = 0; i < kPushers; ++i) {
    threads.emplace_back([&, i] {
      StatusOr<std::unique_ptr<Store>> local =
          OpenSqliteStore(dir + "/local" + std::to_string(i) + ".sqlite");
      StatusOr<std::unique_ptr<Store>> shared = OpenPostgresStore(conninfo_);
      start.arrive_and_wait();
      if (!local.ok() || !shared.ok()) {
        errors[i] = (local.ok() ? shared.status() : local.status()).ToString();
        return;
      }
      TransferOptions options;
      options.batch_records = 2;
      TransferReport report;
      Status s = TransferStore(**local, **shared, options, &report);
      if (!s.ok()) errors[i] = s.ToString();
    });
  }
  for (std::thread& t : threads) t.join();
  for (int i = 0; i < kPushers; ++i) EXPECT_EQ(errors[i], "") << "pusher " << i;
  StatusOr<std::unique_ptr<Store>> one = OpenSqliteStore(dir + "/local0.sqlite");
  ASSERT_TRUE(one.ok());
  auto shared = MustOpen();
  ASSERT_NE(shared, nullptr);
  EXPECT_EQ(*shared->ExportJsonLines(Filter(std::nullopt)),
            *(*one)->ExportJsonLines(Filter(std::nullopt)));
  EXPECT_EQ(Histories(*shared), Histories(**one));
  std::error_code ignored;
  std::filesystem::remove_all(dir, ignored);
}

// ---- connection errors ----

TEST(PostgresConnectionTest, MalformedStringIsInvalidArgumentWithoutItsPassword) {
  struct Case {
    const char* name;
    std::string conninfo;
  };
  const std::vector<Case> cases = {
      {"unknown keyword", "host=/nowhere password=Sekr1tPw bogus_option=1"},
      {"unterminated quote", "host=/nowhere password='Sekr1tPw"},
      {"broken URI", "postgresql://ada:Sekr1tPw@[::1/db"},
      {"bad port in URI", "postgresql://ada:Sekr1tPw@localhost:notaport/db"},
      {"password in URI query", "postgresql://ada@[::1/db?password=Sekr1tPw"},
      {"bad sslmode", "host=/nowhere sslmode=sometimes password=Sekr1tPw"},
  };
  for (const Case& c : cases) {
    StatusOr<std::unique_ptr<Store>> store = OpenStore(c.conninfo);
    ASSERT_FALSE(store.ok()) << c.name;
    EXPECT_EQ(store.status().code(), StatusCode::kInvalidArgument)
        << c.name << ": " << store.status().ToString();
    EXPECT_EQ(store.status().message().find("Sekr1tPw"), std::string::npos)
        << c.name << ": " << store.status().message();
    EXPECT_EQ(store.status().message().find('\n'), std::string::npos) << c.name;
    EXPECT_NE(store.status().message().find("invalid PostgreSQL connection string"),
              std::string::npos)
        << c.name << ": " << store.status().message();
  }
}

TEST(PostgresConnectionTest, UnreachableServerIsIOErrorNamingTheTarget) {
  const std::string dir = MakeTempDir("pg-nobody-home");
  for (const std::string& conninfo :
       {"host=" + dir + " port=5999 user=ada dbname=verdicts password=Sekr1tPw",
        "postgresql://ada:Sekr1tPw@/verdicts?host=" + dir + "&port=5999"}) {
    StatusOr<std::unique_ptr<Store>> store = OpenStore(conninfo);
    ASSERT_FALSE(store.ok());
    EXPECT_EQ(store.status().code(), StatusCode::kIOError) << store.status().ToString();
    const std::string& m = store.status().message();
    EXPECT_EQ(m.find("Sekr1tPw"), std::string::npos) << m;
    EXPECT_NE(m.find("cannot connect to postgresql server (host=" + dir +
                     " port=5999 dbname=verdicts user=ada)"),
              std::string::npos)
        << m;
    EXPECT_NE(m.find(".s.PGSQL.5999"), std::string::npos) << m;  // libpq's reason
    EXPECT_EQ(m.find('\n'), std::string::npos) << m;
  }
  std::error_code ignored;
  std::filesystem::remove_all(dir, ignored);
}

TEST(PostgresConnectionTest, SecretsAreFoundInEveryForm) {
  EXPECT_EQ(pg::RedactConnectionString("postgresql://ada:p%40ss@db.lab:5432/cg?sslmode=require"),
            "postgresql://ada:***@db.lab:5432/cg?sslmode=require");
  EXPECT_EQ(pg::RedactConnectionString("postgres://db.lab/cg?user=ada&password=pw&port=1"),
            "postgres://db.lab/cg?user=ada&password=***&port=1");
  EXPECT_EQ(pg::RedactConnectionString("host=db password = 'a b\\'c' dbname=cg"),
            "host=db password = *** dbname=cg");
  EXPECT_EQ(pg::RedactConnectionString("service=convguard"), "service=convguard");
  // Percent-decoded and unquoted forms are scrubbed from messages too.
  EXPECT_EQ(pg::ScrubSecrets("user said p@ss", "postgresql://ada:p%40ss@db/cg"), "user said ***");
  EXPECT_EQ(pg::ScrubSecrets("got a b'c here", "password='a b\\'c'"), "got *** here");
}

TEST(PostgresConnectionTest, OnlyConnectionStringsGoToPostgres) {
  for (const char* pg_target : {"postgresql:///cg?host=/tmp/x", "postgres://db/cg",
                                "service=convguard", "host=/tmp/x dbname=cg"}) {
    EXPECT_TRUE(IsPostgresStoreTarget(pg_target)) << pg_target;
  }
  for (const char* file : {"verdicts.sqlite", "/home/ada/.local/share/convguard/verdicts.sqlite",
                           ":memory:", "postgresql.db", "./postgres:/x"}) {
    EXPECT_FALSE(IsPostgresStoreTarget(file)) << file;
  }
  EXPECT_EQ(StoreTargetLabel("postgresql://ada:pw@db/cg"), "postgresql://ada:***@db/cg");
  EXPECT_EQ(StoreTargetLabel("/tmp/a.sqlite"), "/tmp/a.sqlite");
}

// ---- the CLI on a PostgreSQL store ----

TEST_F(PostgresStoreTest, SweepTwiceFindsEverythingKnownAndDbShowListsIt) {
  const std::string uri = db_.server->UriConnInfo(db_.name);
  const std::string grid = "n=1 c=4 hw=8,9 k=4 rs=3 p=1";
  testing_support::CliResult first =
      RunConvguard({"sweep", "--backend", "reference", "--grid", grid, "--db", uri});
  ASSERT_EQ(first.exit_code, 0) << first.err;
  EXPECT_NE(first.err.find("verdicts are in " + uri), std::string::npos) << first.err;
  EXPECT_EQ(QueryInt("SELECT count(*) FROM verdicts"), 2);
  EXPECT_EQ(QueryInt("SELECT count(*) FROM claims"), 0);
  const int64_t attempts = QueryInt("SELECT count(*) FROM attempts");

  // The same store through the keyword form, as $CONVGUARD_DB.
  testing_support::CliResult second = RunConvguard(
      {"sweep", "--backend", "reference", "--grid", grid}, 120.0, {{"CONVGUARD_DB", conninfo_}});
  ASSERT_EQ(second.exit_code, 0) << second.err;
  EXPECT_NE(second.err.find("done, 2/2 in"), std::string::npos) << second.err;
  EXPECT_NE(second.err.find(": known 2\n"), std::string::npos) << second.err;
  EXPECT_EQ(QueryInt("SELECT count(*) FROM verdicts"), 2);
  EXPECT_EQ(QueryInt("SELECT count(*) FROM attempts"), attempts);  // nothing probed again

  testing_support::CliResult show = RunConvguard({"db", "show", "--db", conninfo_});
  ASSERT_EQ(show.exit_code, 0) << show.err;
  EXPECT_NE(show.out.find("n1_c4_h8_w8_k4_r3_s3_p1_u1_d1_g1_f32_nchw_fwd"), std::string::npos)
      << show.out;
  EXPECT_NE(show.out.find("n1_c4_h9_w9_k4_r3_s3_p1_u1_d1_g1_f32_nchw_fwd"), std::string::npos)
      << show.out;
}

TEST_F(PostgresStoreTest, DbPushAndPullThroughTheCli) {
  const std::string dir = MakeTempDir("pg-cli-push");
  const std::string local = dir + "/local.sqlite";
  {
    StatusOr<std::unique_ptr<Store>> store = OpenSqliteStore(local);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    FillLocal(**store, MakeStack("CPU A", true), MakeStack("CPU B"));
  }
  const std::string uri = db_.server->UriConnInfo(db_.name);
  testing_support::CliResult push = RunConvguard({"db", "push", uri, "--db", local});
  ASSERT_EQ(push.exit_code, 0) << push.err;
  EXPECT_NE(push.out.find("pushed into " + uri + ": 2 stacks in "), std::string::npos) << push.out;
  const int64_t verdicts = QueryInt("SELECT count(*) FROM verdicts");
  EXPECT_NE(push.out.find("verdicts:          " + std::to_string(verdicts) + " new"),
            std::string::npos)
      << push.out;
  testing_support::CliResult again = RunConvguard({"db", "push", conninfo_, "--db", local});
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_NE(
      again.out.find("verdicts:          0 new, " + std::to_string(verdicts) + " already there"),
      std::string::npos)
      << again.out;

  const std::string fresh = dir + "/fresh.sqlite";
  testing_support::CliResult pull = RunConvguard({"db", "pull", uri, "--db", fresh});
  ASSERT_EQ(pull.exit_code, 0) << pull.err;
  testing_support::CliResult a = RunConvguard({"db", "export", "--db", local});
  testing_support::CliResult b = RunConvguard({"db", "export", "--db", fresh});
  ASSERT_EQ(a.exit_code, 0);
  EXPECT_EQ(a.out, b.out);
  StatusOr<std::unique_ptr<Store>> l = OpenSqliteStore(local);
  StatusOr<std::unique_ptr<Store>> f = OpenSqliteStore(fresh);
  ASSERT_TRUE(l.ok() && f.ok());
  EXPECT_EQ(Histories(**f), Histories(**l));

  // The same database spelled the same way as --db: refused, nothing written.
  testing_support::CliResult same = RunConvguard({"db", "push", uri, "--db", uri});
  EXPECT_EQ(same.exit_code, 2) << same.err;
  EXPECT_NE(same.err.find("is the local store itself"), std::string::npos) << same.err;
  std::error_code ignored;
  std::filesystem::remove_all(dir, ignored);
}

TEST(PostgresCliTest, BadConnectionStringsExitAsTheStoreErrorsDo) {
  testing_support::CliResult malformed =
      RunConvguard({"db", "show", "--db", "host=/nowhere password=Sekr1tPw bogus_option=1"});
  EXPECT_EQ(malformed.exit_code, 2) << malformed.err;
  EXPECT_NE(malformed.err.find("invalid connection option \"bogus_option\""), std::string::npos)
      << malformed.err;
  EXPECT_EQ(malformed.err.find("Sekr1tPw"), std::string::npos) << malformed.err;
  EXPECT_EQ(std::count(malformed.err.begin(), malformed.err.end(), '\n'), 1) << malformed.err;

  const std::string dir = MakeTempDir("pg-cli-nobody");
  testing_support::CliResult unreachable =
      RunConvguard({"sweep", "--backend", "reference", "--grid", "n=1 c=4 hw=8 k=4 rs=3 p=1",
                    "--db", "postgresql://ada:Sekr1tPw@/verdicts?host=" + dir});
  EXPECT_EQ(unreachable.exit_code, 1) << unreachable.err;
  EXPECT_NE(unreachable.err.find("cannot connect to postgresql server (host=" + dir),
            std::string::npos)
      << unreachable.err;
  EXPECT_EQ(unreachable.err.find("Sekr1tPw"), std::string::npos) << unreachable.err;
  std::error_code ignored;
  std::filesystem::remove_all(dir, ignored);
}

}  // namespace
}  // namespace convguard
