// Moving records between two SQLite stores (TransferStore, convguard/store_transfer.h, and
// Store::MergeStackRecords): everything moves, a second transfer adds nothing, conflicts
// keep both verdicts either way, attempts and sequence verdicts are compared by content,
// --stack filters, and an error part way leaves a report of exactly what was committed.
// The same against PostgreSQL: tests/store/pg_store_test.cc.
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "convguard/store.h"
#include "convguard/store_transfer.h"
#include "core/json_records.h"

namespace convguard {
namespace {

namespace fs = std::filesystem;

// ---- records ----

StackFingerprint MakeStack(const std::string& device) {
  StackFingerprint s;
  s.backend = "reference";
  s.device = device;
  s.architecture = "x86_64";
  s.compute_units = 2;
  s.library = "convguard reference";
  s.knobs = {{"OMP_NUM_THREADS", "2"}};
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
  return v;
}

Attempt MakeAttempt(const VerdictKey& key, int number, const std::string& outcome,
                    const std::string& detail) {
  Attempt a;
  a.key = key;
  a.attempt_number = number;
  a.outcome = outcome;
  a.deadline_ms = 250.5;
  a.elapsed_ms = 251.25;
  a.worker_pid = 4242;
  a.started_at = "2026-11-25T15:10:57Z";
  a.detail = detail;
  return a;
}

SequenceVerdict MakeSequenceVerdict(const StackFingerprint& stack, const std::string& source) {
  SequenceVerdict v;
  v.stack_id = stack.Id();
  v.digest = "0123456789abcdef";
  v.source = source;
  v.calls = 60;
  v.calls_run = 40;
  v.kind = VerdictKind::kHang;
  v.failed_at = 39;
  v.failed_problem = "n1_c16_h64_w64_k32_r3_s3_p1_u1_d1_g1_f32_nchw_fwd";
  v.message = "call 40 of 60 missed the run-stage deadline";
  v.minimal = {"n1_c16_h64_w64_k32_r3_s3_p1_u1_d1_g1_f32_nchw_fwd"};
  v.tool_version = "0.1.0";
  v.recorded_at = "2026-11-25T15:10:57Z";
  return v;
}

VerdictKey KeyOf(const Verdict& v) { return {v.stack_id, v.problem, v.algorithm}; }
std::string Canonical(const Verdict& v) { return DumpJson(ToJson(v)); }

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

VerdictFilter All() { return VerdictFilter{}; }

// ---- looking at a store ----

// Every attempt of every key with a verdict or attempts, in key order, as text.
std::vector<std::string> AllAttempts(Store& store) {
  std::vector<std::string> out;
  StatusOr<std::vector<StackFingerprint>> stacks = store.ListStacks();
  EXPECT_TRUE(stacks.ok()) << stacks.status().ToString();
  if (!stacks.ok()) return out;
  for (const StackFingerprint& s : *stacks) {
    StatusOr<StackRecords> records = store.ReadStackRecords(s.Id());
    EXPECT_TRUE(records.ok()) << records.status().ToString();
    if (!records.ok()) continue;
    for (const Attempt& a : records->attempts) out.push_back(Content(a));
  }
  return out;
}

// Every sequence verdict, stack by stack (ids are each store's own), each stack's oldest
// first.
std::vector<std::string> AllSequenceVerdicts(Store& store) {
  std::vector<std::string> out;
  StatusOr<std::vector<StackFingerprint>> stacks = store.ListStacks();
  EXPECT_TRUE(stacks.ok()) << stacks.status().ToString();
  if (!stacks.ok()) return out;
  for (const StackFingerprint& s : *stacks) {
    StatusOr<std::vector<SequenceVerdict>> of_stack = store.ListSequenceVerdicts(s.Id());
    EXPECT_TRUE(of_stack.ok()) << of_stack.status().ToString();
    if (!of_stack.ok()) continue;
    for (const SequenceVerdict& v : *of_stack) out.push_back(Content(v));
  }
  return out;
}

std::string Export(Store& store) {
  StatusOr<std::string> text = store.ExportJsonLines(All());
  EXPECT_TRUE(text.ok()) << text.status().ToString();
  return text.ok() ? *text : "";
}

std::vector<Attempt> AttemptsOf(Store& store, const VerdictKey& key) {
  StatusOr<std::vector<Attempt>> attempts = store.ListAttempts(key);
  EXPECT_TRUE(attempts.ok()) << attempts.status().ToString();
  return attempts.ok() ? *attempts : std::vector<Attempt>{};
}

// ---- the fixture ----

class StoreTransferTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::path(::testing::TempDir()) /
           ("convguard_transfer_" + std::string(info->name()) + "_" + std::to_string(getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override {
    std::error_code ignored;
    fs::remove_all(dir_, ignored);
  }

  std::unique_ptr<Store> Open(const std::string& name) {
    StatusOr<std::unique_ptr<Store>> store = OpenSqliteStore((dir_ / name).string());
    EXPECT_TRUE(store.ok()) << store.status().ToString();
    return store.ok() ? std::move(store).value() : nullptr;
  }

  // Fills `store` with two stacks and some of everything: verdicts (one replaced, so the
  // history holds a "superseded" row; one with an infinity), attempts of keys with and
  // without a verdict (one with a NaN time, one twice over), sequence verdicts.
  void Fill(Store& store) {
    for (const StackFingerprint& s : {a_, b_}) ASSERT_TRUE(store.PutStack(s).ok());
    Verdict hang = MakeVerdict(a_, "p1", "direct", VerdictKind::kHang);
    ASSERT_TRUE(store.PutVerdict(hang).ok());
    Verdict ok = hang;
    ok.kind = VerdictKind::kOk;
    ok.recorded_at = "2026-11-26T08:00:00Z";
    ASSERT_TRUE(store.PutVerdict(ok).ok());  // the HANG goes to the history
    Verdict wrong = MakeVerdict(a_, "p2", "gemm", VerdictKind::kWrong);
    wrong.max_rel_error = std::numeric_limits<double>::infinity();
    wrong.message = "y[0]: got 17, want 18 'quoted' \"too\"\nsecond line";
    ASSERT_TRUE(store.PutVerdict(wrong).ok());
    ASSERT_TRUE(store.PutVerdict(MakeVerdict(b_, "p1", "direct", VerdictKind::kCrash)).ok());

    const VerdictKey p1{a_.Id(), "p1", "direct"};
    ASSERT_TRUE(store.AddAttempt(MakeAttempt(p1, 1, "deadline", "first miss")).ok());
    ASSERT_TRUE(store.AddAttempt(MakeAttempt(p1, 2, "deadline", "confirmed")).ok());
    Attempt nan_time = MakeAttempt({a_.Id(), "p3", "direct"}, 1, "crash", "no verdict yet");
    nan_time.elapsed_ms = std::nan("");
    ASSERT_TRUE(store.AddAttempt(nan_time).ok());
    const Attempt twice = MakeAttempt({b_.Id(), "p1", "direct"}, 1, "crash", "signal 11");
    ASSERT_TRUE(store.AddAttempt(twice).ok());
    ASSERT_TRUE(store.AddAttempt(twice).ok());

    ASSERT_TRUE(store.AddSequenceVerdict(MakeSequenceVerdict(a_, "app.log")).ok());
    ASSERT_TRUE(store.AddSequenceVerdict(MakeSequenceVerdict(b_, "other.log")).ok());
    ASSERT_TRUE(store.AddSequenceVerdict(MakeSequenceVerdict(a_, "app.log")).ok());  // again
  }

  static TransferReport Transfer(Store& from, Store& to, TransferOptions options = {}) {
    if (options.source_label.empty()) options.source_label = "ada-laptop:/home/ada/local.sqlite";
    TransferReport report;
    Status s = TransferStore(from, to, options, &report);
    EXPECT_TRUE(s.ok()) << s.ToString();
    return report;
  }

  fs::path dir_;
  const StackFingerprint a_ = MakeStack("CPU A");
  const StackFingerprint b_ = MakeStack("CPU B");
};

// ---- everything moves, once ----

TEST_F(StoreTransferTest, PushCopiesEverythingAndASecondPushAddsNothing) {
  // The same result whether a key's records share a transaction with others or not.
  for (int64_t batch : {int64_t{1}, int64_t{3}, int64_t{1000}}) {
    SCOPED_TRACE("batch_records = " + std::to_string(batch));
    auto local = Open("local" + std::to_string(batch) + ".sqlite");
    auto remote = Open("remote" + std::to_string(batch) + ".sqlite");
    ASSERT_NE(local, nullptr);
    ASSERT_NE(remote, nullptr);
    Fill(*local);
    const std::string local_export = Export(*local);
    const std::vector<std::string> local_attempts = AllAttempts(*local);
    const std::vector<std::string> local_sequences = AllSequenceVerdicts(*local);
    const int64_t verdicts = static_cast<int64_t>((*local->ListVerdicts(All())).size());

    TransferOptions options;
    options.batch_records = batch;
    const TransferReport first = Transfer(*local, *remote, options);
    EXPECT_EQ(first.merged.stacks, (MergeCounts{2, 0}));
    EXPECT_EQ(first.merged.verdicts, (MergeCounts{verdicts, 0}));
    EXPECT_EQ(first.merged.attempts, (MergeCounts{static_cast<int64_t>(local_attempts.size()), 0}));
    EXPECT_EQ(first.merged.sequence_verdicts,
              (MergeCounts{static_cast<int64_t>(local_sequences.size()), 0}));
    EXPECT_TRUE(first.merged.conflicts.empty());
    EXPECT_EQ(first.stacks_done, 2);
    EXPECT_GE(first.transactions, 2);
    // Stacks with their seen-times, verdicts byte for byte; history and replays whole.
    EXPECT_EQ(Export(*remote), local_export);
    EXPECT_EQ(AllAttempts(*remote), local_attempts);
    EXPECT_EQ(AllSequenceVerdicts(*remote), local_sequences);

    const TransferReport second = Transfer(*local, *remote, options);
    EXPECT_EQ(second.merged.stacks, (MergeCounts{0, 2}));
    EXPECT_EQ(second.merged.verdicts, (MergeCounts{0, verdicts}));
    EXPECT_EQ(second.merged.attempts,
              (MergeCounts{0, static_cast<int64_t>(local_attempts.size())}));
    EXPECT_EQ(second.merged.sequence_verdicts,
              (MergeCounts{0, static_cast<int64_t>(local_sequences.size())}));
    EXPECT_EQ(Export(*remote), local_export);
    EXPECT_EQ(AllAttempts(*remote), local_attempts);
    EXPECT_EQ(AllSequenceVerdicts(*remote), local_sequences);
    // The source is only read.
    EXPECT_EQ(Export(*local), local_export);
    EXPECT_EQ(AllAttempts(*local), local_attempts);
  }
}

TEST_F(StoreTransferTest, PullingBackIntoAFreshStoreGivesTheSameStore) {
  auto local = Open("local.sqlite");
  auto remote = Open("remote.sqlite");
  auto fresh = Open("fresh.sqlite");
  Fill(*local);
  Transfer(*local, *remote);
  Transfer(*remote, *fresh);
  EXPECT_EQ(Export(*fresh), Export(*local));
  EXPECT_EQ(AllAttempts(*fresh), AllAttempts(*local));
  EXPECT_EQ(AllSequenceVerdicts(*fresh), AllSequenceVerdicts(*local));
}

TEST_F(StoreTransferTest, SeenTimesAreWidenedNeverNarrowed) {
  auto local = Open("local.sqlite");
  auto remote = Open("remote.sqlite");
  auto stack_line = [&](const std::string& first, const std::string& last) {
    nlohmann::json j = ToJson(a_);
    j["type"] = "stack";
    j["first_seen"] = first;
    j["last_seen"] = last;
    return DumpJson(j) + "\n";
  };
  ASSERT_TRUE(
      local->ImportJsonLines(stack_line("2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z"), false)
          .ok());
  ASSERT_TRUE(
      remote->ImportJsonLines(stack_line("2026-01-15T00:00:00Z", "2026-03-01T00:00:00Z"), false)
          .ok());
  TransferReport report = Transfer(*local, *remote);
  EXPECT_EQ(report.merged.stacks, (MergeCounts{0, 1}));
  StatusOr<StackRecords> got = remote->ReadStackRecords(a_.Id());
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->stack.first_seen, "2026-01-01T00:00:00Z");
  EXPECT_EQ(got->stack.last_seen, "2026-03-01T00:00:00Z");
  const std::string after = Export(*remote);
  Transfer(*local, *remote);
  EXPECT_EQ(Export(*remote), after);
}

// ---- conflicts ----

class StoreTransferConflictTest : public StoreTransferTest {
 protected:
  void SetUp() override {
    StoreTransferTest::SetUp();
    local_ = Open("local.sqlite");
    remote_ = Open("remote.sqlite");
    ASSERT_NE(local_, nullptr);
    ASSERT_NE(remote_, nullptr);
    for (Store* s : {local_.get(), remote_.get()}) ASSERT_TRUE(s->PutStack(a_).ok());
    mine_ = MakeVerdict(a_, "p1", "direct", VerdictKind::kHang);
    mine_.message = "no reply within 5000 ms, twice";
    theirs_ = MakeVerdict(a_, "p1", "direct", VerdictKind::kOk);
    theirs_.time_ms_median = 1.5;
    ASSERT_TRUE(local_->PutVerdict(mine_).ok());
    ASSERT_TRUE(remote_->PutVerdict(theirs_).ok());
  }

  std::unique_ptr<Store> local_;
  std::unique_ptr<Store> remote_;
  Verdict mine_;
  Verdict theirs_;
};

TEST_F(StoreTransferConflictTest, DestinationKeepsItsVerdictAndTheIncomingGoesToHistoryOnce) {
  const std::string local_before = Export(*local_);
  TransferOptions options;
  options.source_label = "ada-laptop:/home/ada/local.sqlite";
  const TransferReport report = Transfer(*local_, *remote_, options);
  ASSERT_EQ(report.merged.conflicts.size(), 1u);
  EXPECT_EQ(report.merged.conflicts[0], KeyOf(mine_));
  EXPECT_EQ(report.merged.conflicts_recorded, 1);
  EXPECT_EQ(report.merged.conflicts_already_recorded, 0);
  EXPECT_EQ(report.merged.replaced, 0);
  EXPECT_EQ(report.merged.verdicts, (MergeCounts{0, 0}));

  EXPECT_EQ(Canonical(**remote_->GetVerdict(KeyOf(mine_))), Canonical(theirs_));
  std::vector<Attempt> history = AttemptsOf(*remote_, KeyOf(mine_));
  ASSERT_EQ(history.size(), 1u);
  EXPECT_EQ(history[0].outcome, "conflict");
  EXPECT_EQ(history[0].attempt_number, 0);
  EXPECT_EQ(history[0].started_at, mine_.recorded_at);
  StatusOr<nlohmann::json> detail = ParseJson(history[0].detail);
  ASSERT_TRUE(detail.ok()) << history[0].detail;
  EXPECT_EQ((*detail)["from"], "ada-laptop:/home/ada/local.sqlite");
  StatusOr<Verdict> kept = VerdictFromJson((*detail)["verdict"]);
  ASSERT_TRUE(kept.ok()) << kept.status().ToString();
  EXPECT_EQ(Canonical(*kept), Canonical(mine_));

  // Recorded once, even from a source named differently.
  options.source_label = "ada-laptop:/home/ada/./local.sqlite";
  const TransferReport again = Transfer(*local_, *remote_, options);
  ASSERT_EQ(again.merged.conflicts.size(), 1u);
  EXPECT_EQ(again.merged.conflicts_recorded, 0);
  EXPECT_EQ(again.merged.conflicts_already_recorded, 1);
  EXPECT_EQ(AttemptsOf(*remote_, KeyOf(mine_)).size(), 1u);
  EXPECT_EQ(Export(*local_), local_before);  // the source is only read
}

TEST_F(StoreTransferConflictTest, PullingTheOtherWayKeepsTheLocalVerdictAndBothHistories) {
  Transfer(*local_, *remote_);  // the remote records the local verdict as a conflict
  TransferOptions options;
  options.source_label = "postgresql server (host=db.lab port=5432 dbname=cg user=ada)";
  const TransferReport pulled = Transfer(*remote_, *local_, options);
  ASSERT_EQ(pulled.merged.conflicts.size(), 1u);
  EXPECT_EQ(pulled.merged.conflicts_recorded, 1);
  EXPECT_EQ(pulled.merged.attempts, (MergeCounts{1, 0}));  // the remote's conflict row
  EXPECT_EQ(Canonical(**local_->GetVerdict(KeyOf(mine_))), Canonical(mine_));
  std::vector<Attempt> history = AttemptsOf(*local_, KeyOf(mine_));
  ASSERT_EQ(history.size(), 2u);
  EXPECT_EQ(history[1].outcome, "conflict");
  EXPECT_NE(history[1].detail.find("\"from\":\"postgresql server (host=db.lab"), std::string::npos)
      << history[1].detail;
  EXPECT_NE(history[1].detail.find(Canonical(theirs_)), std::string::npos) << history[1].detail;

  // Back and forth once more: the histories are the same and nothing more is added.
  Transfer(*local_, *remote_);
  const TransferReport settled_push = Transfer(*local_, *remote_);
  const TransferReport settled_pull = Transfer(*remote_, *local_, options);
  EXPECT_EQ(settled_push.merged.attempts.added, 0);
  EXPECT_EQ(settled_push.merged.conflicts_recorded, 0);
  EXPECT_EQ(settled_pull.merged.attempts.added, 0);
  EXPECT_EQ(settled_pull.merged.conflicts_recorded, 0);
  std::vector<std::string> local_history, remote_history;
  for (const Attempt& a : AttemptsOf(*local_, KeyOf(mine_))) local_history.push_back(Content(a));
  for (const Attempt& a : AttemptsOf(*remote_, KeyOf(mine_))) remote_history.push_back(Content(a));
  std::sort(local_history.begin(), local_history.end());
  std::sort(remote_history.begin(), remote_history.end());
  EXPECT_EQ(local_history, remote_history);
}

TEST_F(StoreTransferConflictTest, PreferIncomingMakesItCurrentAndKeepsTheOtherInHistory) {
  TransferOptions options;
  options.prefer_incoming = true;
  const TransferReport report = Transfer(*local_, *remote_, options);
  ASSERT_EQ(report.merged.conflicts.size(), 1u);
  EXPECT_EQ(report.merged.replaced, 1);
  EXPECT_EQ(report.merged.conflicts_recorded, 0);
  EXPECT_EQ(Canonical(**remote_->GetVerdict(KeyOf(mine_))), Canonical(mine_));
  std::vector<Attempt> history = AttemptsOf(*remote_, KeyOf(mine_));
  ASSERT_EQ(history.size(), 1u);
  EXPECT_EQ(history[0].outcome, "superseded");
  EXPECT_EQ(history[0].detail, Canonical(theirs_));

  const TransferReport again = Transfer(*local_, *remote_, options);
  EXPECT_TRUE(again.merged.conflicts.empty());
  EXPECT_EQ(again.merged.verdicts, (MergeCounts{0, 1}));
  EXPECT_EQ(AttemptsOf(*remote_, KeyOf(mine_)).size(), 1u);
}

// ---- attempts and sequence verdicts ----

TEST_F(StoreTransferTest, AttemptsAreAddedUnlessTheSameOneIsThereAndEveryFieldCounts) {
  auto local = Open("local.sqlite");
  auto remote = Open("remote.sqlite");
  for (Store* s : {local.get(), remote.get()}) ASSERT_TRUE(s->PutStack(a_).ok());
  const VerdictKey key{a_.Id(), "p1", "direct"};
  const Attempt shared = MakeAttempt(key, 1, "deadline", "first miss");
  Attempt other_detail = shared;  // the same number, outcome, times and pid
  other_detail.detail = "first miss, worker restarted";
  const Attempt only_remote = MakeAttempt(key, 2, "crash", "signal 11");
  for (const Attempt& a : {other_detail, shared, shared}) ASSERT_TRUE(local->AddAttempt(a).ok());
  for (const Attempt& a : {shared, only_remote}) ASSERT_TRUE(remote->AddAttempt(a).ok());

  const TransferReport report = Transfer(*local, *remote);
  // `shared` twice in the source and once in the destination: one more copy.
  EXPECT_EQ(report.merged.attempts, (MergeCounts{2, 1}));
  std::vector<std::string> got;
  for (const Attempt& a : AttemptsOf(*remote, key)) got.push_back(Content(a));
  EXPECT_EQ(got, (std::vector<std::string>{Content(shared), Content(only_remote),
                                           Content(other_detail), Content(shared)}));
  EXPECT_EQ(Transfer(*local, *remote).merged.attempts, (MergeCounts{0, 3}));
}

TEST_F(StoreTransferTest, SequenceVerdictsAreComparedByContentNotByTheirIds) {
  auto local = Open("local.sqlite");
  auto remote = Open("remote.sqlite");
  for (Store* s : {local.get(), remote.get()}) {
    ASSERT_TRUE(s->PutStack(a_).ok());
    ASSERT_TRUE(s->PutStack(b_).ok());
  }
  // The remote numbers its replays differently: another stack's came first.
  ASSERT_TRUE(remote->AddSequenceVerdict(MakeSequenceVerdict(b_, "b.log")).ok());
  const SequenceVerdict shared = MakeSequenceVerdict(a_, "app.log");
  SequenceVerdict later = shared;
  later.recorded_at = "2026-11-27T09:00:00Z";
  later.kind = VerdictKind::kOk;
  later.failed_at = -1;
  ASSERT_TRUE(local->AddSequenceVerdict(shared).ok());
  ASSERT_TRUE(local->AddSequenceVerdict(later).ok());
  ASSERT_TRUE(remote->AddSequenceVerdict(shared).ok());
  ASSERT_NE((*local->ListSequenceVerdicts(a_.Id()))[0].id,
            (*remote->ListSequenceVerdicts(a_.Id()))[0].id);

  TransferOptions only_a;
  only_a.stack_id = a_.Id();
  const TransferReport report = Transfer(*local, *remote, only_a);
  EXPECT_EQ(report.merged.sequence_verdicts, (MergeCounts{1, 1}));
  StatusOr<std::vector<SequenceVerdict>> got = remote->ListSequenceVerdicts(a_.Id());
  ASSERT_TRUE(got.ok());
  ASSERT_EQ(got->size(), 2u);
  EXPECT_EQ(Content((*got)[0]), Content(shared));
  EXPECT_EQ(Content((*got)[1]), Content(later));
  EXPECT_GT((*got)[1].id, (*got)[0].id);  // a new id of the remote, carried in its record
  EXPECT_EQ(Transfer(*local, *remote, only_a).merged.sequence_verdicts, (MergeCounts{0, 2}));
}

// ---- filters and refusals ----

TEST_F(StoreTransferTest, StackFilterMovesOnlyThatStacksRecords) {
  auto local = Open("local.sqlite");
  auto remote = Open("remote.sqlite");
  Fill(*local);
  TransferOptions only_b;
  only_b.stack_id = b_.Id();
  const TransferReport report = Transfer(*local, *remote, only_b);
  EXPECT_EQ(report.merged.stacks, (MergeCounts{1, 0}));
  EXPECT_EQ(report.stacks_done, 1);
  StatusOr<std::vector<StackFingerprint>> stacks = remote->ListStacks();
  ASSERT_TRUE(stacks.ok());
  ASSERT_EQ(stacks->size(), 1u);
  EXPECT_EQ((*stacks)[0].Id(), b_.Id());
  VerdictFilter of_b;
  of_b.stack_id = b_.Id();
  EXPECT_EQ(Export(*remote), *local->ExportJsonLines(of_b));
  EXPECT_EQ(AllSequenceVerdicts(*remote),
            (std::vector<std::string>{Content((*local->ListSequenceVerdicts(b_.Id()))[0])}));
  StatusOr<StackRecords> b_records = local->ReadStackRecords(b_.Id());
  ASSERT_TRUE(b_records.ok());
  EXPECT_EQ(report.merged.attempts.added, static_cast<int64_t>(b_records->attempts.size()));

  TransferOptions unknown;
  unknown.stack_id = "0000000000000000";
  TransferReport refused;
  Status s = TransferStore(*local, *remote, unknown, &refused);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s.ToString();
  EXPECT_NE(s.message().find("stack 0000000000000000 is not in the source store; it holds " +
                             std::min(a_.Id(), b_.Id())),
            std::string::npos)
      << s.message();
  EXPECT_EQ(refused.transactions, 0);
}

TEST_F(StoreTransferTest, RefusesOneStoreAsBothAndAnEmptyBatch) {
  auto local = Open("local.sqlite");
  auto remote = Open("remote.sqlite");
  Fill(*local);
  TransferReport report;
  Status same = TransferStore(*local, *local, {}, &report);
  EXPECT_EQ(same.code(), StatusCode::kInvalidArgument);
  TransferOptions zero;
  zero.batch_records = 0;
  Status batch = TransferStore(*local, *remote, zero, &report);
  EXPECT_EQ(batch.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(batch.message().find("allowed 1 and above"), std::string::npos) << batch.message();
  EXPECT_TRUE(remote->ListStacks()->empty());
  EXPECT_EQ(TransferStore(*local, *remote, {}, nullptr).code(), StatusCode::kInvalidArgument);
}

TEST_F(StoreTransferTest, MergeChecksEveryRecordBeforeWritingAny) {
  auto local = Open("local.sqlite");
  auto remote = Open("remote.sqlite");
  Fill(*local);
  StatusOr<StackRecords> records = local->ReadStackRecords(a_.Id());
  ASSERT_TRUE(records.ok()) << records.status().ToString();
  EXPECT_EQ(local->ReadStackRecords("0000000000000000").status().code(), StatusCode::kNotFound);

  StackRecords foreign = *records;  // a verdict of another stack, last
  foreign.verdicts.push_back(MakeVerdict(b_, "p9", "direct", VerdictKind::kOk));
  StatusOr<MergeReport> r = remote->MergeStackRecords(foreign, {});
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("hold a verdict of stack " + b_.Id()), std::string::npos)
      << r.status().message();

  StackRecords twice = *records;
  twice.verdicts.push_back(twice.verdicts.front());
  EXPECT_EQ(remote->MergeStackRecords(twice, {}).status().code(), StatusCode::kInvalidArgument);

  StackRecords wrong_id = *records;
  wrong_id.stack.id = b_.Id();
  EXPECT_EQ(remote->MergeStackRecords(wrong_id, {}).status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(remote->ListStacks()->empty());
  EXPECT_TRUE(AllAttempts(*remote).empty());

  // A stack stored under the same id with another identity (a 64-bit hash collision, or
  // a hand-edited file) is never merged into.
  const std::string tampered_path = (dir_ / "tampered.sqlite").string();
  auto tampered = Open("tampered.sqlite");
  ASSERT_TRUE(tampered->PutStack(a_).ok());
  {
    sqlite3* raw = nullptr;
    ASSERT_EQ(sqlite3_open(tampered_path.c_str(), &raw), SQLITE_OK);
    const std::string sql =
        "UPDATE stacks SET fingerprint = '" + DumpJson(ToJson(MakeStack("CPU Z"))) + "'";
    EXPECT_EQ(sqlite3_exec(raw, sql.c_str(), nullptr, nullptr, nullptr), SQLITE_OK);
    sqlite3_close(raw);
  }
  StatusOr<MergeReport> collision = tampered->MergeStackRecords(*records, {});
  EXPECT_EQ(collision.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(collision.status().message().find("differs from the stack stored under the same id"),
            std::string::npos)
      << collision.status().message();
  EXPECT_TRUE(tampered->ListVerdicts(All())->empty());
  EXPECT_TRUE(AttemptsOf(*tampered, {a_.Id(), "p1", "direct"}).empty());
}

// ---- an error part way ----

// A store that commits the first `allowed` merges into `inner` and refuses the rest.
class FailingStore final : public Store {
 public:
  FailingStore(Store& inner, int allowed) : inner_(inner), allowed_(allowed) {}
  Status PutStack(const StackFingerprint& s) override { return inner_.PutStack(s); }
  StatusOr<std::optional<StackFingerprint>> GetStack(const std::string& id) override {
    return inner_.GetStack(id);
  }
  StatusOr<std::vector<StackFingerprint>> ListStacks() override { return inner_.ListStacks(); }
  Status PutVerdict(const Verdict& v) override { return inner_.PutVerdict(v); }
  StatusOr<std::optional<Verdict>> GetVerdict(const VerdictKey& k) override {
    return inner_.GetVerdict(k);
  }
  StatusOr<std::vector<Verdict>> ListVerdicts(const VerdictFilter& f) override {
    return inner_.ListVerdicts(f);
  }
  Status AddAttempt(const Attempt& a) override { return inner_.AddAttempt(a); }
  StatusOr<std::vector<Attempt>> ListAttempts(const VerdictKey& k) override {
    return inner_.ListAttempts(k);
  }
  StatusOr<ClaimResult> Claim(const VerdictKey& k, const std::string& owner, bool redo,
                              double stale) override {
    return inner_.Claim(k, owner, redo, stale);
  }
  Status Release(const std::string& owner, const std::optional<VerdictKey>& k) override {
    return inner_.Release(owner, k);
  }
  StatusOr<int64_t> AddSequenceVerdict(const SequenceVerdict& v) override {
    return inner_.AddSequenceVerdict(v);
  }
  StatusOr<std::vector<SequenceVerdict>> ListSequenceVerdicts(
      const std::optional<std::string>& id) override {
    return inner_.ListSequenceVerdicts(id);
  }
  StatusOr<StackRecords> ReadStackRecords(const std::string& id) override {
    return inner_.ReadStackRecords(id);
  }
  StatusOr<MergeReport> MergeStackRecords(const StackRecords& r, const MergeOptions& o) override {
    if (allowed_-- <= 0) return Status::IOError("server went away (refused by the test)");
    return inner_.MergeStackRecords(r, o);
  }
  StatusOr<std::string> ExportJsonLines(const VerdictFilter& f) override {
    return inner_.ExportJsonLines(f);
  }
  StatusOr<ImportReport> ImportJsonLines(const std::string& text, bool replace) override {
    return inner_.ImportJsonLines(text, replace);
  }

 private:
  Store& inner_;
  int allowed_;
};

TEST_F(StoreTransferTest, AnErrorPartWayReportsExactlyWhatWasCommitted) {
  auto local = Open("local.sqlite");
  auto remote = Open("remote.sqlite");
  Fill(*local);
  const int64_t verdicts = static_cast<int64_t>(local->ListVerdicts(All())->size());
  const int64_t attempts = static_cast<int64_t>(AllAttempts(*local).size());
  FailingStore failing(*remote, 2);
  TransferOptions options;
  options.batch_records = 2;
  options.source_label = "ada-laptop:/home/ada/local.sqlite";
  TransferReport report;
  Status s = TransferStore(*local, failing, options, &report);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kIOError);
  EXPECT_NE(s.message().find("server went away"), std::string::npos) << s.message();
  EXPECT_EQ(report.transactions, 2);
  // What the report counts is what the destination holds.
  EXPECT_EQ(report.merged.stacks.added, static_cast<int64_t>(remote->ListStacks()->size()));
  EXPECT_EQ(report.merged.verdicts.added,
            static_cast<int64_t>(remote->ListVerdicts(All())->size()));
  EXPECT_EQ(report.merged.attempts.added, static_cast<int64_t>(AllAttempts(*remote).size()));
  EXPECT_LT(report.merged.verdicts.added + report.merged.attempts.added, verdicts + attempts);

  // Once the destination is back, the rest follows and nothing is there twice.
  const TransferReport rest = Transfer(*local, *remote, options);
  EXPECT_EQ(rest.merged.verdicts.added + report.merged.verdicts.added, verdicts);
  EXPECT_EQ(rest.merged.verdicts.already, report.merged.verdicts.added);
  EXPECT_EQ(rest.merged.attempts.added + report.merged.attempts.added, attempts);
  EXPECT_EQ(Export(*remote), Export(*local));
  EXPECT_EQ(AllAttempts(*remote), AllAttempts(*local));
}

TEST_F(StoreTransferTest, ProgressIsReportedPerStackAndPerBatch) {
  auto local = Open("local.sqlite");
  auto remote = Open("remote.sqlite");
  Fill(*local);
  std::vector<TransferProgress> seen;
  TransferOptions options;
  options.batch_records = 2;
  options.progress = [&seen](const TransferProgress& p) { seen.push_back(p); };
  const TransferReport report = Transfer(*local, *remote, options);
  ASSERT_FALSE(seen.empty());
  int starts = 0;
  for (const TransferProgress& p : seen) {
    EXPECT_EQ(p.stacks, 2);
    EXPECT_LE(p.records_done, p.records);
    if (p.records_done == 0) ++starts;
  }
  EXPECT_EQ(starts, 2);
  EXPECT_EQ(static_cast<int64_t>(seen.size()) - starts, report.transactions);
  EXPECT_EQ(seen.back().records_done, seen.back().records);
}

}  // namespace
}  // namespace convguard
