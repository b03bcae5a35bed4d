// `convguard db push` and `db pull` end to end on SQLite files: what a real sweep stored
// moves whole and once, conflicts are listed and kept both ways, --stack filters, and bad
// input is refused with exit status 2 before anything is opened or written (an
// unreachable server: 1). Against a real PostgreSQL server: tests/store/pg_store_test.cc.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "convguard/store.h"
#include "core/json_records.h"
#include "support/cli_runner.h"

namespace convguard {
namespace {

namespace fs = std::filesystem;
using testing_support::CliResult;
using testing_support::MakeTempDir;
using testing_support::RunConvguard;

StackFingerprint MakeStack(const std::string& device) {
  StackFingerprint s;
  s.backend = "reference";
  s.device = device;
  s.architecture = "x86_64";
  s.compute_units = 2;
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

std::unique_ptr<Store> MustOpen(const std::string& path) {
  StatusOr<std::unique_ptr<Store>> store = OpenSqliteStore(path);
  EXPECT_TRUE(store.ok()) << store.status().ToString();
  return store.ok() ? std::move(store).value() : nullptr;
}

std::string Export(const std::string& path) {
  auto store = MustOpen(path);
  if (store == nullptr) return "";
  StatusOr<std::string> text = store->ExportJsonLines(VerdictFilter{});
  EXPECT_TRUE(text.ok()) << text.status().ToString();
  return text.ok() ? *text : "";
}

// Every attempt and sequence verdict of a store, as text (ids of sequence verdicts left out).
std::vector<std::string> History(const std::string& path) {
  std::vector<std::string> out;
  auto store = MustOpen(path);
  if (store == nullptr) return out;
  const StatusOr<std::vector<StackFingerprint>> stacks = store->ListStacks();
  EXPECT_TRUE(stacks.ok()) << stacks.status().ToString();
  if (!stacks.ok()) return out;
  for (const StackFingerprint& s : *stacks) {
    StatusOr<StackRecords> records = store->ReadStackRecords(s.Id());
    EXPECT_TRUE(records.ok()) << records.status().ToString();
    if (!records.ok()) continue;
    for (const Attempt& a : records->attempts) {
      out.push_back(a.key.problem + "|" + a.key.algorithm + "|" + std::to_string(a.attempt_number) +
                    "|" + a.outcome + "|" + a.started_at + "|" + std::to_string(a.worker_pid) +
                    "|" + a.detail);
    }
    for (SequenceVerdict v : records->sequence_verdicts) {
      v.id = 0;
      out.push_back(DumpJson(ToJson(v)));
    }
  }
  return out;
}

std::string ReadBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

class DbPushPullCli : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = MakeTempDir("db-push-pull"); }
  void TearDown() override {
    std::error_code ignored;
    fs::remove_all(dir_, ignored);
  }
  std::string Path(const std::string& name) const { return dir_ + "/" + name; }

  std::string dir_;
};

TEST_F(DbPushPullCli, ASweepIsPushedWholeOnceAndPulledBackIntoAFreshStore) {
  const std::string local = Path("local.sqlite");
  CliResult sweep = RunConvguard({"sweep", "--backend", "reference", "--grid",
                                  "n=1 c=4 hw=8,9 k=4 rs=3 p=1", "--db", local, "--quiet"});
  ASSERT_EQ(sweep.exit_code, 0) << sweep.err;
  {
    // A replay's result too, which export leaves out and push must not.
    auto store = MustOpen(local);
    ASSERT_NE(store, nullptr);
    const std::vector<StackFingerprint> stacks = *store->ListStacks();
    ASSERT_EQ(stacks.size(), 1u);
    SequenceVerdict replay;
    replay.stack_id = stacks[0].Id();
    replay.digest = "0123456789abcdef";
    replay.source = "app.log";
    replay.calls = 2;
    replay.calls_run = 2;
    replay.recorded_at = "2026-11-25T15:10:57Z";
    ASSERT_TRUE(store->AddSequenceVerdict(replay).ok());
  }
  const std::string local_export = Export(local);
  const std::vector<std::string> local_history = History(local);
  const size_t verdicts = static_cast<size_t>(
      std::count(local_export.begin(), local_export.end(), '\n') - 1);  // one stack line
  ASSERT_GT(local_history.size(), 1u);

  const std::string remote = Path("shared.sqlite");
  CliResult first = RunConvguard({"db", "push", remote, "--db", local});
  ASSERT_EQ(first.exit_code, 0) << first.err;
  EXPECT_NE(first.out.find("pushed into " + remote + ": 1 stack in "), std::string::npos)
      << first.out;
  EXPECT_NE(first.out.find("verdicts:          " + std::to_string(verdicts) +
                           " new, 0 already there, 0 conflicts"),
            std::string::npos)
      << first.out;
  EXPECT_NE(first.out.find("sequence verdicts: 1 new, 0 already there"), std::string::npos)
      << first.out;
  EXPECT_NE(first.err.find("push: stack "), std::string::npos) << first.err;  // progress
  EXPECT_EQ(Export(remote), local_export);
  EXPECT_EQ(History(remote), local_history);

  CliResult second = RunConvguard({"db", "push", remote, "--db", local});
  ASSERT_EQ(second.exit_code, 0) << second.err;
  EXPECT_NE(second.out.find("verdicts:          0 new, " + std::to_string(verdicts) +
                            " already there, 0 conflicts"),
            std::string::npos)
      << second.out;
  EXPECT_NE(second.out.find("attempts:          0 new, "), std::string::npos) << second.out;
  EXPECT_NE(second.out.find("sequence verdicts: 0 new, 1 already there"), std::string::npos)
      << second.out;
  EXPECT_EQ(History(remote), local_history);

  const std::string fresh = Path("fresh/verdicts.sqlite");  // its folder is created, as --db's
  CliResult pulled = RunConvguard({"db", "pull", remote, "--db", fresh});
  ASSERT_EQ(pulled.exit_code, 0) << pulled.err;
  EXPECT_NE(pulled.out.find("pulled from " + remote + " into " + fresh), std::string::npos)
      << pulled.out;
  EXPECT_EQ(Export(fresh), local_export);
  EXPECT_EQ(History(fresh), local_history);
}

TEST_F(DbPushPullCli, ConflictsAreListedKeptBothWaysAndExitZero) {
  const std::string local = Path("local.sqlite");
  const std::string remote = Path("remote.sqlite");
  const StackFingerprint stack = MakeStack("CPU A");
  constexpr int kConflicts = 7;
  {
    auto l = MustOpen(local);
    auto r = MustOpen(remote);
    ASSERT_TRUE(l->PutStack(stack).ok());
    ASSERT_TRUE(r->PutStack(stack).ok());
    for (int i = 0; i < kConflicts; ++i) {
      const std::string problem = "p" + std::to_string(i);
      ASSERT_TRUE(l->PutVerdict(MakeVerdict(stack, problem, VerdictKind::kHang)).ok());
      ASSERT_TRUE(r->PutVerdict(MakeVerdict(stack, problem, VerdictKind::kOk)).ok());
    }
    ASSERT_TRUE(l->PutVerdict(MakeVerdict(stack, "only-local", VerdictKind::kOk)).ok());
  }
  CliResult push = RunConvguard({"db", "push", remote, "--db", local});
  ASSERT_EQ(push.exit_code, 0) << push.err;
  EXPECT_NE(push.out.find("verdicts:          1 new, 0 already there, 7 conflicts"),
            std::string::npos)
      << push.out;
  EXPECT_NE(push.err.find("7 conflicts: the two stores hold different verdicts for these keys; "
                          "both are kept."),
            std::string::npos)
      << push.err;
  EXPECT_NE(push.err.find("keeps its verdict current; the incoming one is in its history "
                          "(outcome \"conflict\"): 7 recorded now, 0 by an earlier push"),
            std::string::npos)
      << push.err;
  EXPECT_NE(push.err.find("  " + stack.Id() + " p0 direct\n"), std::string::npos) << push.err;
  EXPECT_EQ(push.err.find(" p5 direct\n"), std::string::npos) << push.err;  // five shown
  EXPECT_NE(push.err.find("  ... and 2 more (--long lists them all)"), std::string::npos)
      << push.err;
  {
    auto r = MustOpen(remote);
    for (int i = 0; i < kConflicts; ++i) {
      const VerdictKey key{stack.Id(), "p" + std::to_string(i), "direct"};
      EXPECT_EQ((*r->GetVerdict(key))->kind, VerdictKind::kOk);
      const std::vector<Attempt> history = *r->ListAttempts(key);
      ASSERT_EQ(history.size(), 1u);
      EXPECT_EQ(history[0].outcome, "conflict");
      EXPECT_NE(history[0].detail.find("\"kind\":\"HANG\""), std::string::npos);
      EXPECT_NE(history[0].detail.find(":" + fs::absolute(local).lexically_normal().string()),
                std::string::npos)
          << history[0].detail;
    }
  }

  CliResult again = RunConvguard({"db", "push", remote, "--db", local, "--long"});
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_NE(again.err.find("0 recorded now, 7 by an earlier push"), std::string::npos) << again.err;
  EXPECT_NE(again.err.find(" p6 direct\n"), std::string::npos) << again.err;  // all listed
  EXPECT_EQ(again.err.find("more (--long"), std::string::npos) << again.err;

  // Pulled the other way, the local store keeps its own (and gains the remote's history).
  CliResult pull = RunConvguard({"db", "pull", remote, "--db", local});
  ASSERT_EQ(pull.exit_code, 0) << pull.err;
  EXPECT_NE(pull.out.find("7 conflicts"), std::string::npos) << pull.out;
  EXPECT_EQ((*MustOpen(local)->GetVerdict({stack.Id(), "p0", "direct"}))->kind, VerdictKind::kHang);

  CliResult prefer = RunConvguard({"db", "push", remote, "--db", local, "--prefer-incoming"});
  ASSERT_EQ(prefer.exit_code, 0) << prefer.err;
  EXPECT_NE(prefer.err.find("The incoming verdict is now current in " + remote), std::string::npos)
      << prefer.err;
  {
    auto r = MustOpen(remote);
    const VerdictKey key{stack.Id(), "p0", "direct"};
    EXPECT_EQ((*r->GetVerdict(key))->kind, VerdictKind::kHang);
    std::vector<std::string> outcomes;
    const StatusOr<std::vector<Attempt>> history = r->ListAttempts(key);
    ASSERT_TRUE(history.ok()) << history.status().ToString();
    for (const Attempt& a : *history) outcomes.push_back(a.outcome);
    EXPECT_EQ(outcomes, (std::vector<std::string>{"conflict", "conflict", "superseded"}));
  }
  CliResult settled = RunConvguard({"db", "push", remote, "--db", local});
  ASSERT_EQ(settled.exit_code, 0) << settled.err;
  EXPECT_NE(settled.out.find("0 conflicts"), std::string::npos) << settled.out;
  EXPECT_EQ(settled.err.find("conflicts:"), std::string::npos) << settled.err;
}

TEST_F(DbPushPullCli, StackFilterPushesOnlyThatStack) {
  const std::string local = Path("local.sqlite");
  const std::string remote = Path("remote.sqlite");
  const StackFingerprint a = MakeStack("CPU A");
  const StackFingerprint b = MakeStack("CPU B");
  {
    auto l = MustOpen(local);
    for (const StackFingerprint& s : {a, b}) {
      ASSERT_TRUE(l->PutStack(s).ok());
      ASSERT_TRUE(l->PutVerdict(MakeVerdict(s, "p1", VerdictKind::kOk)).ok());
    }
  }
  CliResult push = RunConvguard({"db", "push", remote, "--db", local, "--stack", b.Id()});
  ASSERT_EQ(push.exit_code, 0) << push.err;
  auto r = MustOpen(remote);
  const std::vector<StackFingerprint> stacks = *r->ListStacks();
  ASSERT_EQ(stacks.size(), 1u);
  EXPECT_EQ(stacks[0].Id(), b.Id());
  EXPECT_EQ(r->ListVerdicts(VerdictFilter{})->size(), 1u);
}

TEST_F(DbPushPullCli, BadInputIsRefusedBeforeAnythingIsOpenedOrWritten) {
  const std::string local = Path("local.sqlite");
  const StackFingerprint stack = MakeStack("CPU A");
  {
    auto l = MustOpen(local);
    ASSERT_TRUE(l->PutStack(stack).ok());
    ASSERT_TRUE(l->PutVerdict(MakeVerdict(stack, "p1", VerdictKind::kOk)).ok());
  }
  const std::string local_before = Export(local);
  const std::string remote = Path("remote.sqlite");

  struct Case {
    std::vector<std::string> args;
    std::string message;  // a part of the one line on stderr
  };
  const std::string not_a_store = testing_support::WriteFile(Path("notes.txt"), "my notes\n");
  std::vector<Case> cases = {
      {{"db", "push", "--db", local}, "convguard db push: give exactly one TARGET"},
      {{"db", "pull", "--db", local}, "convguard db pull: give exactly one SOURCE"},
      {{"db", "push", remote, Path("other.sqlite"), "--db", local}, "give exactly one TARGET"},
      {{"db", "push", "", "--db", local}, "give exactly one TARGET"},
      {{"db", "push", local, "--db", local}, "is the local store itself"},
      {{"db", "push", dir_ + "/./local.sqlite", "--db", local}, "is the local store itself"},
      {{"db", "pull", local, "--db", local}, "is the local store itself"},
      {{"db", "push", remote, "--db", local, "--verdict", "HANG"},
       "--verdict does not apply to push (allowed: --db, --stack, --prefer-incoming, --long)"},
      {{"db", "pull", remote, "--db", local, "--replace"}, "--replace does not apply to pull"},
      {{"db", "show", "--db", local, "--prefer-incoming"},
       "--prefer-incoming applies to push and pull only"},
      {{"db", "push", remote, "--db", Path("missing.sqlite")}, "no store at '"},
      {{"db", "pull", Path("missing.sqlite"), "--db", local}, "no store at '"},
      {{"db", "pull", dir_, "--db", local}, "is a folder"},
      {{"db", "push", Path("no/such/folder/remote.sqlite"), "--db", local},
       "the folder of TARGET '"},
      {{"db", "push", remote, "--db", local, "--stack", "0000000000000000"},
       "stack 0000000000000000 is not in " + local},
      {{"db", "push", not_a_store, "--db", local}, "is not an SQLite database"},
  };
#ifdef CONVGUARD_HAVE_POSTGRES
  cases.push_back({{"db", "push", "host=/nowhere password=Sekr1tPw bogus_option=1", "--db", local},
                   "invalid connection option \"bogus_option\""});
#endif
  for (const Case& c : cases) {
    std::string joined;
    for (const std::string& a : c.args) joined += " '" + a + "'";
    SCOPED_TRACE(joined);
    CliResult r = RunConvguard(c.args);
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_NE(r.err.find(c.message), std::string::npos) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_EQ(r.err.find("Sekr1tPw"), std::string::npos) << r.err;
    EXPECT_TRUE(r.out.empty()) << r.out;
    EXPECT_FALSE(fs::exists(remote));
    EXPECT_FALSE(fs::exists(Path("missing.sqlite")));
    EXPECT_FALSE(fs::exists(Path("no")));
    EXPECT_EQ(ReadBytes(not_a_store), "my notes\n");
  }
  EXPECT_EQ(Export(local), local_before);

  // A server that does not answer is a failure of a valid request (1), not bad input; so is
  // a connection string given to a build without the PostgreSQL store (it says so).
  const std::string nobody = MakeTempDir("db-push-nobody");
  CliResult unreachable = RunConvguard(
      {"db", "push", "postgresql://ada:Sekr1tPw@/verdicts?host=" + nobody, "--db", local});
  EXPECT_EQ(unreachable.exit_code, 1) << unreachable.err;
#ifdef CONVGUARD_HAVE_POSTGRES
  EXPECT_NE(unreachable.err.find("cannot connect to postgresql server (host=" + nobody),
            std::string::npos)
      << unreachable.err;
#else
  EXPECT_NE(unreachable.err.find("built without PostgreSQL support"), std::string::npos)
      << unreachable.err;
#endif
  EXPECT_EQ(unreachable.err.find("Sekr1tPw"), std::string::npos) << unreachable.err;
  EXPECT_EQ(Export(local), local_before);
  std::error_code ignored;
  fs::remove_all(nobody, ignored);

  CliResult help = RunConvguard({"db", "--help"});
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_NE(help.out.find("convguard db push TARGET [--stack ID] [--prefer-incoming] [--long]"),
            std::string::npos)
      << help.out;
  EXPECT_NE(help.out.find("convguard db pull SOURCE"), std::string::npos) << help.out;
}

}  // namespace
}  // namespace convguard
