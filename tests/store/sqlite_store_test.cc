// The SQLite store (src/store/sqlite_store.cc): opening, refusing, migrating, records,
// history, claims, JSON Lines, and two writers on one file (threads and processes).
#include "store/sqlite_store.h"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <latch>
#include <limits>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "convguard/store.h"
#include "core/json_records.h"

namespace convguard {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// ---- helpers ----

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

// Every field set to something other than its default.
Verdict FullVerdict(const StackFingerprint& stack) {
  Verdict v;
  v.kind = VerdictKind::kWrong;
  v.stack_id = stack.Id();
  v.problem = "n1_c16_h64_w64_k32_r3_s3_p1_u1_d1_g1_f32_nchw_fwd";
  v.algorithm = "direct";
  v.time_ms_min = 0.125;
  v.time_ms_median = 0.1875;
  v.crash_signal = 11;
  v.exit_code = 3;
  v.message = "y[0,5,63,0]: got 17, want 18 'quoted' \"too\"\nsecond line";
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
  v.tool_version = "0.1.0";
  v.recorded_at = "2026-11-25T15:10:57Z";
  v.repro = "convguard probe --backend reference n1_c16_h64_w64_k32_r3_s3_p1_u1_d1_g1_f32_nchw_fwd";
  v.emulated = true;
  return v;
}

void ExpectSameDouble(double a, double b, const char* field) {
  if (std::isnan(a) || std::isnan(b)) {
    EXPECT_TRUE(std::isnan(a) && std::isnan(b)) << field << ": " << a << " vs " << b;
  } else {
    EXPECT_EQ(a, b) << field;
  }
}

void ExpectSameVerdict(const Verdict& a, const Verdict& b) {
  EXPECT_EQ(a.kind, b.kind);
  EXPECT_EQ(a.stack_id, b.stack_id);
  EXPECT_EQ(a.problem, b.problem);
  EXPECT_EQ(a.algorithm, b.algorithm);
  ExpectSameDouble(a.time_ms_min, b.time_ms_min, "time_ms_min");
  ExpectSameDouble(a.time_ms_median, b.time_ms_median, "time_ms_median");
  EXPECT_EQ(a.crash_signal, b.crash_signal);
  EXPECT_EQ(a.exit_code, b.exit_code);
  EXPECT_EQ(a.message, b.message);
  EXPECT_EQ(a.check, b.check);
  ExpectSameDouble(a.tolerance, b.tolerance, "tolerance");
  ExpectSameDouble(a.max_abs_error, b.max_abs_error, "max_abs_error");
  ExpectSameDouble(a.max_rel_error, b.max_rel_error, "max_rel_error");
  EXPECT_EQ(a.mismatches, b.mismatches);
  EXPECT_EQ(a.non_finite, b.non_finite);
  EXPECT_EQ(a.implementation, b.implementation);
  EXPECT_EQ(a.attempts, b.attempts);
  ExpectSameDouble(a.deadline_ms, b.deadline_ms, "deadline_ms");
  ExpectSameDouble(a.elapsed_ms, b.elapsed_ms, "elapsed_ms");
  EXPECT_EQ(a.tool_version, b.tool_version);
  EXPECT_EQ(a.recorded_at, b.recorded_at);
  EXPECT_EQ(a.repro, b.repro);
  EXPECT_EQ(a.emulated, b.emulated);
}

VerdictKey KeyOf(const Verdict& v) { return {v.stack_id, v.problem, v.algorithm}; }

// A filter, spelled without designated initializers (GCC's -Wextra flags omitted fields).
VerdictFilter Filter(std::optional<std::string> stack_id, std::optional<VerdictKind> kind = {},
                     std::optional<std::string> problem = {}, int64_t limit = -1) {
  VerdictFilter f;
  f.stack_id = std::move(stack_id);
  f.kind = kind;
  f.problem = std::move(problem);
  f.limit = limit;
  return f;
}

std::string ReadBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

void WriteBytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out << bytes;
}

// A raw SQLite connection, for looking at (and tampering with) a store from outside.
class RawDb {
 public:
  explicit RawDb(const std::string& path) {
    EXPECT_EQ(
        sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr),
        SQLITE_OK);
    sqlite3_busy_timeout(db_, 10000);
  }
  ~RawDb() { sqlite3_close_v2(db_); }
  RawDb(const RawDb&) = delete;
  RawDb& operator=(const RawDb&) = delete;

  void Exec(const std::string& sql) {
    char* error = nullptr;
    int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &error);
    EXPECT_EQ(rc, SQLITE_OK) << sql << ": " << (error ? error : "");
    sqlite3_free(error);
  }
  // The first column of the first row as text ("" when no row).
  std::string Text(const std::string& sql) {
    sqlite3_stmt* stmt = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(db_, sql.c_str(), -1, &stmt, nullptr), SQLITE_OK)
        << sql << ": " << sqlite3_errmsg(db_);
    std::string out;
    if (stmt != nullptr && sqlite3_step(stmt) == SQLITE_ROW) {
      const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0));
      if (text) out = text;
    }
    sqlite3_finalize(stmt);
    return out;
  }
  int64_t Int(const std::string& sql) { return std::stoll("0" + Text(sql)); }

 private:
  sqlite3* db_ = nullptr;
};

class SqliteStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::path(::testing::TempDir()) /
           ("convguard_store_" + std::string(info->name()) + "_" + std::to_string(getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override {
    std::error_code ignored;
    fs::remove_all(dir_, ignored);
  }

  std::string Path(const std::string& name) const { return (dir_ / name).string(); }

  static std::unique_ptr<Store> MustOpen(const std::string& path,
                                         const SqliteStoreOptions& options = {}) {
    StatusOr<std::unique_ptr<Store>> store = OpenSqliteStore(path, options);
    EXPECT_TRUE(store.ok()) << store.status().ToString();
    return store.ok() ? std::move(store).value() : nullptr;
  }

  fs::path dir_;
};

// ---- opening ----

TEST_F(SqliteStoreTest, CreatesAndReopensKeepingData) {
  const std::string path = Path("store.db");
  const StackFingerprint stack = MakeStack("CPU A");
  const Verdict v = MakeVerdict(stack, "p1", "direct", VerdictKind::kHang);
  {
    auto store = MustOpen(path);
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(store->PutStack(stack).ok());
    ASSERT_TRUE(store->PutVerdict(v).ok());
    Attempt a;
    a.key = KeyOf(v);
    a.outcome = "deadline";
    ASSERT_TRUE(store->AddAttempt(a).ok());
  }
  auto store = MustOpen(path);
  ASSERT_NE(store, nullptr);
  StatusOr<std::optional<StackFingerprint>> got_stack = store->GetStack(stack.Id());
  ASSERT_TRUE(got_stack.ok());
  ASSERT_TRUE(got_stack->has_value());
  EXPECT_EQ(**got_stack, stack);
  StatusOr<std::optional<Verdict>> got = store->GetVerdict(KeyOf(v));
  ASSERT_TRUE(got.ok());
  ASSERT_TRUE(got->has_value());
  ExpectSameVerdict(**got, v);
  EXPECT_EQ(store->ListAttempts(KeyOf(v))->size(), 1u);
}

TEST_F(SqliteStoreTest, NewFileIsWalWithMarkerAndVersion) {
  const std::string path = Path("store.db");
  auto store = MustOpen(path);
  ASSERT_NE(store, nullptr);
  RawDb raw(path);
  EXPECT_EQ(raw.Text("PRAGMA journal_mode"), "wal");
  EXPECT_EQ(raw.Int("PRAGMA application_id"), kSqliteStoreApplicationId);
  EXPECT_EQ(raw.Int("PRAGMA user_version"), EmbeddedMigrations().back().version);
  EXPECT_EQ(raw.Int("SELECT count(*) FROM schema_migrations"),
            static_cast<int64_t>(EmbeddedMigrations().size()));
  EXPECT_EQ(raw.Text("SELECT name FROM schema_migrations WHERE version = 1"), "001_initial");
  for (const char* table : {"stacks", "verdicts", "attempts", "claims"}) {
    EXPECT_EQ(raw.Int(std::string("SELECT count(*) FROM sqlite_master WHERE type = 'table' "
                                  "AND name = '") +
                      table + "'"),
              1)
        << table;
  }
}

TEST_F(SqliteStoreTest, EmptyFileIsMigrated) {
  const std::string path = Path("empty.db");
  WriteBytes(path, "");
  auto store = MustOpen(path);
  ASSERT_NE(store, nullptr);
  EXPECT_TRUE(store->PutStack(MakeStack("CPU A")).ok());
  RawDb raw(path);
  EXPECT_EQ(raw.Int("PRAGMA user_version"), EmbeddedMigrations().back().version);
}

TEST_F(SqliteStoreTest, InMemoryStoreWorks) {
  auto store = MustOpen(":memory:");
  ASSERT_NE(store, nullptr);
  EXPECT_TRUE(store->PutStack(MakeStack("CPU A")).ok());
  EXPECT_EQ(store->ListStacks()->size(), 1u);
}

TEST_F(SqliteStoreTest, RefusesAFileThatIsNotSqlite) {
  const std::string path = Path("notes.txt");
  std::string text;
  for (int i = 0; i < 200; ++i) text += "line " + std::to_string(i) + " of someone's notes\n";
  WriteBytes(path, text);
  StatusOr<std::unique_ptr<Store>> store = OpenSqliteStore(path);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(store.status().message().find(path + " is not an SQLite database"), std::string::npos)
      << store.status().message();
  EXPECT_EQ(ReadBytes(path), text);
  EXPECT_FALSE(fs::exists(path + "-wal"));
}

TEST_F(SqliteStoreTest, RefusesAForeignSqliteDatabase) {
  const std::string path = Path("people.db");
  {
    RawDb raw(path);
    raw.Exec("CREATE TABLE people (name TEXT); INSERT INTO people VALUES ('ada')");
  }
  const std::string before = ReadBytes(path);
  StatusOr<std::unique_ptr<Store>> store = OpenSqliteStore(path);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(store.status().message(),
            path +
                " is an SQLite database but not a convguard store (schema objects: 1, "
                "application_id 0x00000000, user_version 0; a convguard store has "
                "application_id 0x43764764); refusing to modify it");
  EXPECT_EQ(ReadBytes(path), before);
  RawDb raw(path);
  EXPECT_EQ(raw.Text("PRAGMA journal_mode"), "delete");  // not switched to WAL
  EXPECT_EQ(raw.Text("SELECT name FROM people"), "ada");
}

TEST_F(SqliteStoreTest, RefusesAnEmptyDatabaseMarkedByAnotherApplication) {
  const std::string path = Path("other.db");
  {
    RawDb raw(path);
    raw.Exec("PRAGMA user_version = 5");
  }
  StatusOr<std::unique_ptr<Store>> store = OpenSqliteStore(path);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(store.status().message().find("not a convguard store"), std::string::npos);
  RawDb raw(path);
  EXPECT_EQ(raw.Int("PRAGMA user_version"), 5);
}

TEST_F(SqliteStoreTest, RefusesANewerSchema) {
  const std::string path = Path("store.db");
  const StackFingerprint stack = MakeStack("CPU A");
  {
    auto store = MustOpen(path);
    ASSERT_TRUE(store->PutStack(stack).ok());
  }
  {
    RawDb raw(path);
    raw.Exec("PRAGMA user_version = 99");
  }
  StatusOr<std::unique_ptr<Store>> store = OpenSqliteStore(path);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), StatusCode::kUnsupported);
  const int newest = EmbeddedMigrations().back().version;
  EXPECT_EQ(
      store.status().message(),
      "store " + path + " has schema version 99; this build of convguard knows " +
          (newest == 1 ? std::string("version 1") : "versions 1 to " + std::to_string(newest)) +
          " (open it with a newer convguard)");
  RawDb raw(path);
  EXPECT_EQ(raw.Int("SELECT count(*) FROM stacks"), 1);
  EXPECT_EQ(raw.Int("PRAGMA user_version"), 99);
}

TEST_F(SqliteStoreTest, BadPathsAndOptionsAreErrors) {
  StatusOr<std::unique_ptr<Store>> missing_dir = OpenSqliteStore(Path("no/such/dir/store.db"));
  ASSERT_FALSE(missing_dir.ok());
  EXPECT_EQ(missing_dir.status().code(), StatusCode::kIOError);
  EXPECT_NE(missing_dir.status().message().find(Path("no/such/dir/store.db")), std::string::npos);

  StatusOr<std::unique_ptr<Store>> directory = OpenSqliteStore(dir_.string());
  ASSERT_FALSE(directory.ok());
  EXPECT_EQ(directory.status().code(), StatusCode::kIOError);

  EXPECT_EQ(OpenSqliteStore("").status().code(), StatusCode::kInvalidArgument);
  SqliteStoreOptions negative;
  negative.busy_timeout_ms = -1;
  StatusOr<std::unique_ptr<Store>> bad = OpenSqliteStore(Path("x.db"), negative);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(), "busy_timeout_ms = -1 is out of range; allowed 0 and above");
  EXPECT_FALSE(fs::exists(Path("x.db")));
}

TEST_F(SqliteStoreTest, ConcurrentFirstOpensMigrateOnce) {
  const std::string path = Path("store.db");
  constexpr int kThreads = 6;
  std::latch start(kThreads);
  std::vector<Status> results(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      start.arrive_and_wait();
      StatusOr<std::unique_ptr<Store>> store = OpenSqliteStore(path);
      results[t] =
          store.ok() ? (*store)->PutStack(MakeStack("CPU " + std::to_string(t))) : store.status();
    });
  }
  for (auto& th : threads) th.join();
  for (int t = 0; t < kThreads; ++t) EXPECT_TRUE(results[t].ok()) << results[t].ToString();
  RawDb raw(path);
  EXPECT_EQ(raw.Int("SELECT count(*) FROM schema_migrations"),
            static_cast<int64_t>(EmbeddedMigrations().size()));
  EXPECT_EQ(raw.Int("SELECT count(*) FROM stacks"), kThreads);
}

// ---- migrations ----

std::vector<SchemaMigration> WithMigration2(const char* name, const char* sql) {
  std::vector<SchemaMigration> m(EmbeddedMigrations().begin(), EmbeddedMigrations().end());
  m.push_back({static_cast<int>(m.size()) + 1, name, sql});
  return m;
}

TEST_F(SqliteStoreTest, MigratesAnOlderStoreAndKeepsItsData) {
  const std::string path = Path("store.db");
  const StackFingerprint stack = MakeStack("CPU A");
  const Verdict v = MakeVerdict(stack, "p1", "direct", VerdictKind::kOk);
  {
    auto store = MustOpen(path);
    ASSERT_TRUE(store->PutStack(stack).ok());
    ASSERT_TRUE(store->PutVerdict(v).ok());
  }
  const auto migrations =
      WithMigration2("002_notes",
                     "CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT NOT NULL);\n"
                     "INSERT INTO notes (text) SELECT 'verdicts: ' || count(*) FROM verdicts;\n");
  const int v2 = migrations.back().version;
  for (int open = 0; open < 2; ++open) {  // the second open applies nothing
    StatusOr<std::unique_ptr<Store>> store = OpenSqliteStoreWithMigrations(path, {}, migrations);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    StatusOr<std::optional<Verdict>> got = (*store)->GetVerdict(KeyOf(v));
    ASSERT_TRUE(got.ok() && got->has_value());
    ExpectSameVerdict(**got, v);
  }
  {
    RawDb raw(path);
    EXPECT_EQ(raw.Int("PRAGMA user_version"), v2);
    EXPECT_EQ(raw.Text("SELECT group_concat(text) FROM notes"), "verdicts: 1");
    EXPECT_EQ(raw.Int("SELECT count(*) FROM schema_migrations"), v2);
    EXPECT_EQ(raw.Text("SELECT name FROM schema_migrations ORDER BY version DESC"), "002_notes");
  }
  // This build's own migrations stop below: the store is now too new for it.
  StatusOr<std::unique_ptr<Store>> old_build = OpenSqliteStore(path);
  ASSERT_FALSE(old_build.ok());
  EXPECT_EQ(old_build.status().code(), StatusCode::kUnsupported);
  EXPECT_NE(old_build.status().message().find("has schema version " + std::to_string(v2)),
            std::string::npos)
      << old_build.status().message();
}

TEST_F(SqliteStoreTest, NewFileGetsEveryMigration) {
  const std::string path = Path("store.db");
  const auto migrations = WithMigration2("002_notes", "CREATE TABLE notes (text TEXT);");
  ASSERT_TRUE(OpenSqliteStoreWithMigrations(path, {}, migrations).ok());
  RawDb raw(path);
  EXPECT_EQ(raw.Int("PRAGMA user_version"), migrations.back().version);
  EXPECT_EQ(raw.Int("SELECT count(*) FROM sqlite_master WHERE name = 'notes'"), 1);
}

TEST_F(SqliteStoreTest, AFailingMigrationChangesNothing) {
  const std::string path = Path("store.db");
  const StackFingerprint stack = MakeStack("CPU A");
  {
    auto store = MustOpen(path);
    ASSERT_TRUE(store->PutStack(stack).ok());
  }
  const auto migrations = WithMigration2(
      "002_broken", "CREATE TABLE half_done (a);\nINSERT INTO no_such_table VALUES (1);\n");
  StatusOr<std::unique_ptr<Store>> store = OpenSqliteStoreWithMigrations(path, {}, migrations);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), StatusCode::kInternal);
  EXPECT_NE(store.status().message().find("applying schema migration 002_broken: no such table"),
            std::string::npos)
      << store.status().message();
  RawDb raw(path);
  EXPECT_EQ(raw.Int("PRAGMA user_version"), EmbeddedMigrations().back().version);
  EXPECT_EQ(raw.Int("SELECT count(*) FROM sqlite_master WHERE name = 'half_done'"), 0);
  EXPECT_EQ(raw.Int("SELECT count(*) FROM stacks"), 1);
  EXPECT_NE(MustOpen(path), nullptr);
}

TEST_F(SqliteStoreTest, AMigrationMustNotEndTheTransaction) {
  const std::string path = Path("store.db");
  ASSERT_NE(MustOpen(path), nullptr);
  const auto migrations = WithMigration2("002_commits", "CREATE TABLE x (a); COMMIT;");
  StatusOr<std::unique_ptr<Store>> store = OpenSqliteStoreWithMigrations(path, {}, migrations);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), StatusCode::kInternal);
  EXPECT_NE(store.status().message().find("must not BEGIN, COMMIT or ROLLBACK"), std::string::npos)
      << store.status().message();
  RawDb raw(path);
  EXPECT_EQ(raw.Int("PRAGMA user_version"), EmbeddedMigrations().back().version);
}

TEST_F(SqliteStoreTest, AMigrationMustKeepForeignKeys) {
  const std::string path = Path("store.db");
  ASSERT_NE(MustOpen(path), nullptr);
  const auto migrations = WithMigration2(
      "002_orphan",
      "INSERT INTO attempts (stack_id, problem, algorithm, attempt_number, outcome,"
      " worker_pid, started_at, detail, stored_at) VALUES ('nope', 'p', 'a', 1, 'x', 0, '',"
      " '', '');");
  StatusOr<std::unique_ptr<Store>> store = OpenSqliteStoreWithMigrations(path, {}, migrations);
  ASSERT_FALSE(store.ok());
  EXPECT_NE(store.status().message().find("foreign key violation in table attempts"),
            std::string::npos)
      << store.status().message();
  RawDb raw(path);
  EXPECT_EQ(raw.Int("SELECT count(*) FROM attempts"), 0);
}

TEST(SchemaMigrationsTest, EmbeddedListIsWellFormed) {
  EXPECT_TRUE(CheckMigrations(EmbeddedMigrations()).ok());
  ASSERT_FALSE(EmbeddedMigrations().empty());
  EXPECT_EQ(EmbeddedMigrations()[0].version, 1);
  EXPECT_STREQ(EmbeddedMigrations()[0].name, "001_initial");
  EXPECT_NE(std::string(EmbeddedMigrations()[0].sql).find("CREATE TABLE verdicts"),
            std::string::npos);
}

TEST(SchemaMigrationsTest, BadListsAreRefused) {
  EXPECT_EQ(CheckMigrations({}).code(), StatusCode::kInternal);
  const std::vector<SchemaMigration> gap = {{1, "001_a", "SELECT 1;"}, {3, "003_c", "SELECT 1;"}};
  EXPECT_EQ(CheckMigrations(gap).message(),
            "schema migration 003_c has version 3 at position 2; versions must be 1, 2, 3, ... "
            "in order");
  const std::vector<SchemaMigration> empty_sql = {{1, "001_a", ""}};
  EXPECT_EQ(CheckMigrations(empty_sql).message(), "schema migration 001_a has no SQL");
}

// ---- stacks and verdicts ----

TEST_F(SqliteStoreTest, VerdictRoundTripsEveryField) {
  auto store = MustOpen(Path("store.db"));
  const StackFingerprint stack = MakeStack("CPU A", /*emulated=*/true);
  ASSERT_TRUE(store->PutStack(stack).ok());
  Verdict v = FullVerdict(stack);
  ASSERT_TRUE(store->PutVerdict(v).ok());
  StatusOr<std::optional<Verdict>> got = store->GetVerdict(KeyOf(v));
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  ASSERT_TRUE(got->has_value());
  ExpectSameVerdict(**got, v);

  // NaN too, and the queryable columns.
  v.problem = "other";
  v.time_ms_min = std::numeric_limits<double>::quiet_NaN();
  ASSERT_TRUE(store->PutVerdict(v).ok());
  got = store->GetVerdict(KeyOf(v));
  ASSERT_TRUE(got.ok() && got->has_value());
  ExpectSameVerdict(**got, v);

  RawDb raw(Path("store.db"));
  EXPECT_EQ(raw.Text("SELECT kind || ' ' || crash_signal || ' ' || check_method || ' ' ||"
                     " mismatches || ' ' || emulated || ' ' || attempts FROM verdicts"
                     " WHERE problem = 'other'"),
            "WRONG 11 sampled:512 1099511627776 1 2");
  EXPECT_EQ(raw.Text("SELECT typeof(time_ms_min) || typeof(max_rel_error) FROM verdicts"
                     " WHERE problem = 'other'"),
            "nullnull");
}

TEST_F(SqliteStoreTest, MissingVerdictAndStackAreEmptyNotErrors) {
  auto store = MustOpen(Path("store.db"));
  StatusOr<std::optional<Verdict>> v = store->GetVerdict({"0000000000000000", "p", "a"});
  ASSERT_TRUE(v.ok());
  EXPECT_FALSE(v->has_value());
  StatusOr<std::optional<StackFingerprint>> s = store->GetStack("0000000000000000");
  ASSERT_TRUE(s.ok());
  EXPECT_FALSE(s->has_value());
}

TEST_F(SqliteStoreTest, VerdictNeedsItsStackAndAKey) {
  auto store = MustOpen(Path("store.db"));
  const StackFingerprint stack = MakeStack("CPU A");
  Verdict v = MakeVerdict(stack, "p1", "direct", VerdictKind::kOk);
  Status s = store->PutVerdict(v);
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  EXPECT_EQ(s.message(), "stack " + stack.Id() + " is not in store " + Path("store.db") +
                             " (PutStack it first)");
  ASSERT_TRUE(store->PutStack(stack).ok());
  v.algorithm = "";
  EXPECT_EQ(store->PutVerdict(v).message(), "verdict key: algorithm is empty");
  StackFingerprint nameless = stack;
  nameless.backend = "";
  EXPECT_EQ(store->PutStack(nameless).code(), StatusCode::kInvalidArgument);
}

TEST_F(SqliteStoreTest, PutStackIsIdempotentAndKeepsFirstSeen) {
  const std::string path = Path("store.db");
  auto store = MustOpen(path);
  StackFingerprint stack = MakeStack("CPU A");
  ASSERT_TRUE(store->PutStack(stack).ok());
  RawDb raw(path);
  raw.Exec(
      "UPDATE stacks SET first_seen = '2020-01-01T00:00:00Z', last_seen = "
      "'2020-01-02T00:00:00Z'");
  stack.tool_version = "0.2.0";  // same stack, newer convguard
  ASSERT_TRUE(store->PutStack(stack).ok());
  EXPECT_EQ(store->ListStacks()->size(), 1u);
  EXPECT_EQ(raw.Text("SELECT first_seen FROM stacks"), "2020-01-01T00:00:00Z");
  EXPECT_GT(raw.Text("SELECT last_seen FROM stacks"), "2026");
  // The fingerprint is kept as first recorded.
  EXPECT_EQ((*store->GetStack(stack.Id()))->tool_version, "0.1.0");

  const StackFingerprint emulated = MakeStack("CPU B", true);
  ASSERT_TRUE(store->PutStack(emulated).ok());
  EXPECT_EQ(raw.Int("SELECT emulated FROM stacks WHERE id = '" + emulated.Id() + "'"), 1);
  StatusOr<std::vector<StackFingerprint>> all = store->ListStacks();
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 2u);
  EXPECT_LT((*all)[0].Id(), (*all)[1].Id());
}

TEST_F(SqliteStoreTest, PutStackRefusesAnIdCollision) {
  const std::string path = Path("store.db");
  auto store = MustOpen(path);
  const StackFingerprint stack = MakeStack("CPU A");
  ASSERT_TRUE(store->PutStack(stack).ok());
  // Simulate a 64-bit hash collision: another stack stored under this stack's id.
  StackFingerprint other = MakeStack("CPU Z");
  RawDb raw(path);
  raw.Exec("UPDATE stacks SET fingerprint = '" + DumpJson(ToJson(other)) + "'");
  Status s = store->PutStack(stack);
  EXPECT_EQ(s.code(), StatusCode::kInternal);
  EXPECT_NE(s.message().find("is already used by a different stack"), std::string::npos)
      << s.message();
  EXPECT_EQ((*store->GetStack(stack.Id()))->device, "CPU Z");  // untouched
}

TEST_F(SqliteStoreTest, ReplacingAVerdictKeepsTheOldOneInHistory) {
  auto store = MustOpen(Path("store.db"));
  const StackFingerprint stack = MakeStack("CPU A");
  ASSERT_TRUE(store->PutStack(stack).ok());
  Verdict hang = MakeVerdict(stack, "p1", "direct", VerdictKind::kHang);
  hang.deadline_ms = 300;
  hang.elapsed_ms = 301;
  ASSERT_TRUE(store->PutVerdict(hang).ok());
  ASSERT_TRUE(store->PutVerdict(hang).ok());  // identical: nothing to keep
  EXPECT_TRUE(store->ListAttempts(KeyOf(hang))->empty());

  Verdict ok = MakeVerdict(stack, "p1", "direct", VerdictKind::kOk);
  ASSERT_TRUE(store->PutVerdict(ok).ok());
  EXPECT_EQ((*store->GetVerdict(KeyOf(ok)))->kind, VerdictKind::kOk);
  StatusOr<std::vector<Attempt>> history = store->ListAttempts(KeyOf(ok));
  ASSERT_TRUE(history.ok());
  ASSERT_EQ(history->size(), 1u);
  const Attempt& old = (*history)[0];
  EXPECT_EQ(old.outcome, "superseded");
  EXPECT_EQ(old.attempt_number, 0);
  EXPECT_EQ(old.deadline_ms, 300);
  EXPECT_EQ(old.elapsed_ms, 301);
  EXPECT_EQ(old.started_at, hang.recorded_at);
  StatusOr<Verdict> kept = VerdictFromJson(*ParseJson(old.detail));
  ASSERT_TRUE(kept.ok()) << old.detail;
  ExpectSameVerdict(*kept, hang);
}

TEST_F(SqliteStoreTest, FiltersSelectAndOrderVerdicts) {
  auto store = MustOpen(Path("store.db"));
  const StackFingerprint a = MakeStack("CPU A"), b = MakeStack("CPU B");
  ASSERT_TRUE(store->PutStack(a).ok());
  ASSERT_TRUE(store->PutStack(b).ok());
  const std::vector<Verdict> all = {
      MakeVerdict(a, "p2", "direct", VerdictKind::kHang),
      MakeVerdict(a, "p1", "winograd", VerdictKind::kHang),
      MakeVerdict(b, "p1", "direct", VerdictKind::kCrash),
      MakeVerdict(a, "p1", "direct", VerdictKind::kOk),
      MakeVerdict(b, "p2", "direct", VerdictKind::kOk),
  };
  for (const Verdict& v : all) ASSERT_TRUE(store->PutVerdict(v).ok());

  auto keys = [](const std::vector<Verdict>& vs) {
    std::vector<std::string> out;
    for (const Verdict& v : vs) out.push_back(v.stack_id + "/" + v.problem + "/" + v.algorithm);
    return out;
  };
  auto expected = [&](auto pick, int64_t limit = -1) {
    std::vector<Verdict> out;
    for (const Verdict& v : all) {
      if (pick(v)) out.push_back(v);
    }
    std::vector<std::string> k = keys(out);
    std::sort(k.begin(), k.end());
    if (limit >= 0 && static_cast<int64_t>(k.size()) > limit) k.resize(limit);
    return k;
  };
  auto list = [&](const VerdictFilter& f) {
    StatusOr<std::vector<Verdict>> got = store->ListVerdicts(f);
    EXPECT_TRUE(got.ok()) << got.status().ToString();
    return got.ok() ? keys(*got) : std::vector<std::string>{"error"};
  };

  EXPECT_EQ(list({}), expected([](const Verdict&) { return true; }));
  EXPECT_EQ(list(Filter(a.Id())), expected([&](const Verdict& v) { return v.stack_id == a.Id(); }));
  EXPECT_EQ(list(Filter({}, VerdictKind::kHang)),
            expected([](const Verdict& v) { return v.kind == VerdictKind::kHang; }));
  EXPECT_EQ(list(Filter({}, {}, "p1")),
            expected([](const Verdict& v) { return v.problem == "p1"; }));
  EXPECT_EQ(list(Filter(a.Id(), VerdictKind::kOk)), expected([&](const Verdict& v) {
              return v.stack_id == a.Id() && v.kind == VerdictKind::kOk;
            }));
  EXPECT_EQ(list(Filter(b.Id(), VerdictKind::kHang)), std::vector<std::string>{});
  EXPECT_EQ(list(Filter({}, {}, {}, 2)), expected([](const Verdict&) { return true; }, 2));
  EXPECT_EQ(list(Filter({}, {}, {}, 0)), std::vector<std::string>{});
  EXPECT_EQ(list(Filter("ffffffffffffffff")), std::vector<std::string>{});
  EXPECT_EQ(list({}).size(), 5u);

  StatusOr<std::vector<Verdict>> bad = store->ListVerdicts(Filter({}, {}, {}, -2));
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
}

// ---- attempts ----

TEST_F(SqliteStoreTest, AttemptsAreKeptInOrderPerKey) {
  auto store = MustOpen(Path("store.db"));
  const StackFingerprint stack = MakeStack("CPU A");
  const VerdictKey key{stack.Id(), "p1", "direct"};
  Attempt first;
  first.key = key;
  first.attempt_number = 1;
  first.outcome = "deadline";
  first.deadline_ms = 250;
  first.elapsed_ms = 250.5;
  first.worker_pid = 4242;
  first.started_at = "2026-11-25T15:10:50Z";
  first.detail = "no reply";
  EXPECT_EQ(store->AddAttempt(first).code(), StatusCode::kNotFound);  // stack unknown
  ASSERT_TRUE(store->PutStack(stack).ok());
  ASSERT_TRUE(store->AddAttempt(first).ok());
  Attempt second = first;
  second.attempt_number = 2;
  second.outcome = "deadline";
  second.deadline_ms = 5000;
  second.worker_pid = 4343;
  ASSERT_TRUE(store->AddAttempt(second).ok());
  Attempt elsewhere = first;
  elsewhere.key.problem = "p2";
  ASSERT_TRUE(store->AddAttempt(elsewhere).ok());

  StatusOr<std::vector<Attempt>> got = store->ListAttempts(key);
  ASSERT_TRUE(got.ok());
  ASSERT_EQ(got->size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    const Attempt& want = i == 0 ? first : second;
    const Attempt& a = (*got)[i];
    EXPECT_EQ(a.key, want.key);
    EXPECT_EQ(a.attempt_number, want.attempt_number);
    EXPECT_EQ(a.outcome, want.outcome);
    EXPECT_EQ(a.deadline_ms, want.deadline_ms);
    EXPECT_EQ(a.elapsed_ms, want.elapsed_ms);
    EXPECT_EQ(a.worker_pid, want.worker_pid);
    EXPECT_EQ(a.started_at, want.started_at);
    EXPECT_EQ(a.detail, want.detail);
  }
  EXPECT_TRUE(store->ListAttempts({stack.Id(), "p3", "direct"})->empty());
}

// ---- claims ----

class ClaimTest : public SqliteStoreTest {
 protected:
  void SetUp() override {
    SqliteStoreTest::SetUp();
    SqliteStoreOptions options;
    options.owner_is_alive = [this](const std::string& owner) {
      asked_.push_back(owner);
      return !dead_.contains(owner);
    };
    store_ = MustOpen(Path("store.db"), options);
    ASSERT_NE(store_, nullptr);
    ASSERT_TRUE(store_->PutStack(stack_).ok());
  }

  ClaimResult Claim(const std::string& owner, bool redo = false, double stale_s = 3600) {
    StatusOr<ClaimResult> r = store_->Claim(key_, owner, redo, stale_s);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : ClaimResult::kHeldByOther;
  }

  const StackFingerprint stack_ = MakeStack("CPU A");
  const VerdictKey key_{stack_.Id(), "p1", "direct"};
  std::set<std::string> dead_;
  std::vector<std::string> asked_;
  std::unique_ptr<Store> store_;
};

TEST_F(ClaimTest, AFreeKeyIsClaimedAndAHeldOneIsNot) {
  EXPECT_EQ(Claim("host:1:100"), ClaimResult::kClaimed);
  EXPECT_EQ(Claim("host:1:100"), ClaimResult::kClaimed);  // its own claim, renewed
  EXPECT_EQ(Claim("host:2:200"), ClaimResult::kHeldByOther);
  EXPECT_EQ(asked_, std::vector<std::string>{"host:1:100"});
  EXPECT_EQ(Claim("host:2:200", /*redo=*/true), ClaimResult::kHeldByOther);
}

TEST_F(ClaimTest, AKnownVerdictIsNotClaimedUnlessRedo) {
  ASSERT_EQ(Claim("host:1:100"), ClaimResult::kClaimed);
  ASSERT_TRUE(store_->PutVerdict(MakeVerdict(stack_, "p1", "direct", VerdictKind::kOk)).ok());
  RawDb raw(Path("store.db"));
  EXPECT_EQ(raw.Int("SELECT count(*) FROM claims"), 0);  // PutVerdict released it
  EXPECT_EQ(Claim("host:2:200"), ClaimResult::kAlreadyKnown);
  EXPECT_EQ(Claim("host:1:100"), ClaimResult::kAlreadyKnown);
  EXPECT_EQ(Claim("host:2:200", /*redo=*/true), ClaimResult::kClaimed);
  EXPECT_EQ(raw.Text("SELECT owner FROM claims"), "host:2:200");
}

TEST_F(ClaimTest, ClaimsFromDeadOwnersAreTakenOver) {
  ASSERT_EQ(Claim("host:1:100"), ClaimResult::kClaimed);
  EXPECT_EQ(Claim("host:2:200"), ClaimResult::kHeldByOther);  // alive
  dead_.insert("host:1:100");
  EXPECT_EQ(Claim("host:2:200"), ClaimResult::kClaimed);
  EXPECT_EQ(Claim("host:3:300"), ClaimResult::kHeldByOther);  // host:2:200 is alive
  RawDb raw(Path("store.db"));
  EXPECT_EQ(raw.Text("SELECT owner FROM claims"), "host:2:200");
  StatusOr<std::vector<Attempt>> history = store_->ListAttempts(key_);
  ASSERT_TRUE(history.ok());
  ASSERT_EQ(history->size(), 1u);
  EXPECT_EQ((*history)[0].outcome, "abandoned");
  EXPECT_NE((*history)[0].detail.find("claim of host:1:100"), std::string::npos);
  EXPECT_NE((*history)[0].detail.find("taken over by host:2:200: owner not alive"),
            std::string::npos)
      << (*history)[0].detail;
}

TEST_F(ClaimTest, StaleClaimsAreTakenOverByAge) {
  ASSERT_EQ(Claim("host:1:100"), ClaimResult::kClaimed);
  RawDb raw(Path("store.db"));
  raw.Exec("UPDATE claims SET claimed_at = claimed_at - 100");  // claimed 100 s ago
  EXPECT_EQ(Claim("host:2:200", false, /*stale_s=*/1000), ClaimResult::kHeldByOther);
  EXPECT_EQ(Claim("host:2:200", false, /*stale_s=*/60), ClaimResult::kClaimed);
  EXPECT_EQ(raw.Text("SELECT owner FROM claims"), "host:2:200");
  StatusOr<std::vector<Attempt>> history = store_->ListAttempts(key_);
  ASSERT_TRUE(history.ok());
  ASSERT_EQ(history->size(), 1u);
  EXPECT_NE((*history)[0].detail.find(": stale"), std::string::npos) << (*history)[0].detail;
  EXPECT_GE((*history)[0].elapsed_ms, 100000.0);  // the claim's age
}

TEST_F(ClaimTest, WithoutALivenessCheckOnlyAgeFreesAClaim) {
  auto plain = MustOpen(Path("store.db"));  // no owner_is_alive
  ASSERT_EQ(*plain->Claim(key_, "host:1:100", false, 3600), ClaimResult::kClaimed);
  EXPECT_EQ(*plain->Claim(key_, "host:2:200", false, 3600), ClaimResult::kHeldByOther);
  EXPECT_EQ(*plain->Claim(key_, "host:2:200", false, 0), ClaimResult::kClaimed);
}

TEST_F(ClaimTest, ReleaseFreesOneKeyOrAllOfAnOwner) {
  const VerdictKey other{stack_.Id(), "p2", "direct"};
  ASSERT_EQ(Claim("host:1:100"), ClaimResult::kClaimed);
  ASSERT_EQ(*store_->Claim(other, "host:1:100", false, 3600), ClaimResult::kClaimed);
  ASSERT_TRUE(store_->Release("host:2:200", key_).ok());  // not its claim: nothing happens
  EXPECT_EQ(Claim("host:2:200"), ClaimResult::kHeldByOther);
  ASSERT_TRUE(store_->Release("host:1:100", key_).ok());
  EXPECT_EQ(Claim("host:2:200"), ClaimResult::kClaimed);
  EXPECT_EQ(*store_->Claim(other, "host:2:200", false, 3600), ClaimResult::kHeldByOther);
  ASSERT_TRUE(store_->Release("host:1:100", std::nullopt).ok());
  EXPECT_EQ(*store_->Claim(other, "host:2:200", false, 3600), ClaimResult::kClaimed);
}

TEST_F(ClaimTest, BadArgumentsAreErrors) {
  EXPECT_EQ(store_->Claim(key_, "", false, 1).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->Claim({stack_.Id(), "", "a"}, "o", false, 1).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->Claim(key_, "o", false, std::nan("")).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->Release("", std::nullopt).code(), StatusCode::kInvalidArgument);
}

TEST_F(SqliteStoreTest, ABusyStoreFailsAfterTheBusyTimeout) {
  const std::string path = Path("store.db");
  SqliteStoreOptions options;
  options.busy_timeout_ms = 50;
  auto store = MustOpen(path, options);
  ASSERT_NE(store, nullptr);
  RawDb other(path);
  other.Exec("BEGIN IMMEDIATE");  // another process holds the write lock
  Status s = store->PutStack(MakeStack("CPU A"));
  EXPECT_EQ(s.code(), StatusCode::kIOError);
  EXPECT_NE(s.message().find("busy timeout"), std::string::npos) << s.message();
  other.Exec("ROLLBACK");
  EXPECT_TRUE(store->PutStack(MakeStack("CPU A")).ok());
}

// ---- JSON Lines ----

class JsonLinesTest : public SqliteStoreTest {
 protected:
  // Two stacks (one emulated) and six verdicts, one of every awkward kind of value.
  void Fill(Store& store) {
    ASSERT_TRUE(store.PutStack(a_).ok());
    ASSERT_TRUE(store.PutStack(b_).ok());
    std::vector<Verdict> vs = {
        MakeVerdict(a_, "p1", "direct", VerdictKind::kOk),
        MakeVerdict(a_, "p1", "winograd", VerdictKind::kHang),
        MakeVerdict(a_, "p2", "direct", VerdictKind::kCrash),
        MakeVerdict(b_, "p1", "direct", VerdictKind::kUnsupported),
        MakeVerdict(b_, "p2", "direct", VerdictKind::kSlow),
        FullVerdict(b_),
    };
    vs[0].time_ms_min = 0.1;
    vs[0].time_ms_median = 1.0 / 3.0;
    vs[2].crash_signal = 11;
    vs[3].message = "multi\nline \"message\" with unicode \xc3\xa9";
    vs[4].time_ms_min = std::numeric_limits<double>::quiet_NaN();
    for (const Verdict& v : vs) ASSERT_TRUE(store.PutVerdict(v).ok());
  }

  static std::vector<std::string> Lines(const std::string& text) {
    std::vector<std::string> lines;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    return lines;
  }

  const StackFingerprint a_ = MakeStack("CPU A");
  const StackFingerprint b_ = MakeStack("CPU B", /*emulated=*/true);
};

TEST_F(JsonLinesTest, ExportImportExportIsIdentical) {
  auto source = MustOpen(Path("source.db"));
  Fill(*source);
  StatusOr<std::string> exported = source->ExportJsonLines({});
  ASSERT_TRUE(exported.ok()) << exported.status().ToString();
  const std::vector<std::string> lines = Lines(*exported);
  ASSERT_EQ(lines.size(), 8u);
  EXPECT_EQ(exported->back(), '\n');
  for (size_t i = 0; i < lines.size(); ++i) {
    json j = *ParseJson(lines[i]);
    EXPECT_EQ(j["type"], i < 2 ? "stack" : "verdict") << lines[i];
  }
  EXPECT_EQ((*ParseJson(lines[0]))["id"], std::min(a_.Id(), b_.Id()));

  auto copy = MustOpen(Path("copy.db"));
  StatusOr<ImportReport> report = copy->ImportJsonLines(*exported, /*replace=*/false);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(report->inserted, 6);
  EXPECT_EQ(report->replaced + report->kept_existing + report->identical, 0);
  StatusOr<std::string> again = copy->ExportJsonLines({});
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, *exported);

  // Importing the same again changes nothing.
  report = copy->ImportJsonLines(*exported, /*replace=*/true);
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(report->identical, 6);
  EXPECT_EQ(report->inserted + report->replaced + report->kept_existing, 0);
  EXPECT_EQ(*copy->ExportJsonLines({}), *exported);
}

TEST_F(JsonLinesTest, FilteredExportCarriesOnlyTheStacksItNeeds) {
  auto store = MustOpen(Path("store.db"));
  Fill(*store);
  StatusOr<std::string> hangs = store->ExportJsonLines(Filter({}, VerdictKind::kHang));
  ASSERT_TRUE(hangs.ok());
  const std::vector<std::string> lines = Lines(*hangs);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ((*ParseJson(lines[0]))["id"], a_.Id());
  EXPECT_EQ((*ParseJson(lines[1]))["kind"], "HANG");
  StatusOr<std::string> by_stack = store->ExportJsonLines(Filter(b_.Id()));
  ASSERT_TRUE(by_stack.ok());
  EXPECT_EQ(Lines(*by_stack).size(), 4u);  // stack b and its three verdicts
}

TEST_F(JsonLinesTest, ConflictsAreKeptUnlessReplacedAndReplacedOnesGoToHistory) {
  auto store = MustOpen(Path("store.db"));
  ASSERT_TRUE(store->PutStack(a_).ok());
  const Verdict hang = MakeVerdict(a_, "p1", "direct", VerdictKind::kHang);
  const Verdict same = MakeVerdict(a_, "p2", "direct", VerdictKind::kOk);
  ASSERT_TRUE(store->PutVerdict(hang).ok());
  ASSERT_TRUE(store->PutVerdict(same).ok());

  json ok_line = ToJson(MakeVerdict(a_, "p1", "direct", VerdictKind::kOk));
  ok_line["type"] = "verdict";
  json same_line = ToJson(same);
  same_line["type"] = "verdict";
  json new_line = ToJson(MakeVerdict(a_, "p3", "direct", VerdictKind::kOom));
  new_line["type"] = "verdict";
  const std::string text =
      DumpJson(ok_line) + "\n" + DumpJson(same_line) + "\n" + DumpJson(new_line) + "\n";

  StatusOr<ImportReport> kept = store->ImportJsonLines(text, /*replace=*/false);
  ASSERT_TRUE(kept.ok()) << kept.status().ToString();
  EXPECT_EQ(kept->kept_existing, 1);
  EXPECT_EQ(kept->identical, 1);
  EXPECT_EQ(kept->inserted, 1);
  EXPECT_EQ(kept->replaced, 0);
  EXPECT_EQ((*store->GetVerdict(KeyOf(hang)))->kind, VerdictKind::kHang);
  EXPECT_TRUE(store->ListAttempts(KeyOf(hang))->empty());

  StatusOr<ImportReport> replaced = store->ImportJsonLines(text, /*replace=*/true);
  ASSERT_TRUE(replaced.ok());
  EXPECT_EQ(replaced->replaced, 1);
  EXPECT_EQ(replaced->identical, 2);
  EXPECT_EQ(replaced->kept_existing + replaced->inserted, 0);
  EXPECT_EQ((*store->GetVerdict(KeyOf(hang)))->kind, VerdictKind::kOk);
  StatusOr<std::vector<Attempt>> history = store->ListAttempts(KeyOf(hang));
  ASSERT_TRUE(history.ok());
  ASSERT_EQ(history->size(), 1u);
  EXPECT_EQ((*history)[0].outcome, "superseded");
  EXPECT_EQ(VerdictFromJson(*ParseJson((*history)[0].detail))->kind, VerdictKind::kHang);
}

TEST_F(JsonLinesTest, ABadLineImportsNothingAndIsNamed) {
  auto source = MustOpen(Path("source.db"));
  Fill(*source);
  std::vector<std::string> lines = Lines(*source->ExportJsonLines({}));
  ASSERT_EQ(lines.size(), 8u);

  auto target = MustOpen(Path("target.db"));
  ASSERT_TRUE(target->PutStack(a_).ok());
  const Verdict existing = MakeVerdict(a_, "p1", "direct", VerdictKind::kWrong);
  ASSERT_TRUE(target->PutVerdict(existing).ok());
  const std::string before = *target->ExportJsonLines({});

  struct Case {
    const char* name;
    int line;  // 1-based line to replace, or 0 to append
    std::string text;
    std::string message;
  };
  json unknown_stack = ToJson(MakeVerdict(MakeStack("CPU Q"), "p", "a", VerdictKind::kOk));
  unknown_stack["type"] = "verdict";
  json wrong_id = *ParseJson(lines[0]);
  wrong_id["id"] = "0123456789abcdef";
  const std::vector<Case> cases = {
      {"bad kind", 7,
       [&] {
         json j = *ParseJson(lines[6]);
         j["kind"] = "HUNG";
         return DumpJson(j);
       }(),
       "line 7: verdict: field 'kind': unknown verdict 'HUNG'; allowed: OK, SLOW, HANG, CRASH, "
       "WRONG, MISTRUSTED, ERROR, UNSUPPORTED, OOM"},
      {"not json", 4, "{\"type\": \"verdict\",", "line 4: not valid JSON: "},
      {"no type", 3, "{\"kind\": \"OK\"}",
       "line 3: field 'type' is missing or not a string; allowed \"stack\", \"verdict\""},
      {"unknown type", 5, "{\"type\": \"note\"}",
       "line 5: field 'type': unknown record type 'note'; allowed \"stack\", \"verdict\""},
      {"array", 8, "[1, 2]", "line 8: expected a JSON object"},
      {"unknown stack", 0, DumpJson(unknown_stack),
       "line 9: verdict refers to stack " + MakeStack("CPU Q").Id() +
           ", which is neither in the input nor in the store"},
      {"wrong stack id", 1, DumpJson(wrong_id),
       "line 1: stack id 0123456789abcdef does not match its fingerprint"},
      {"duplicate verdict", 0, lines[3], "line 9: a second verdict for "},
  };
  for (const Case& c : cases) {
    std::vector<std::string> edited = lines;
    if (c.line == 0) {
      edited.push_back(c.text);
    } else {
      edited[c.line - 1] = c.text;
    }
    std::string text;
    for (const std::string& l : edited) text += l + "\n";
    StatusOr<ImportReport> report = target->ImportJsonLines(text, /*replace=*/true);
    ASSERT_FALSE(report.ok()) << c.name;
    EXPECT_EQ(report.status().code(), StatusCode::kInvalidArgument) << c.name;
    EXPECT_EQ(report.status().message().substr(0, c.message.size()), c.message)
        << c.name << ": " << report.status().message();
    EXPECT_EQ(*target->ExportJsonLines({}), before) << c.name;  // nothing written
    EXPECT_TRUE(target->ListAttempts(KeyOf(existing))->empty()) << c.name;
  }
}

TEST_F(JsonLinesTest, BlankLinesCarriageReturnsAndRepeatedStacksAreAccepted) {
  auto source = MustOpen(Path("source.db"));
  Fill(*source);
  const std::vector<std::string> lines = Lines(*source->ExportJsonLines({}));
  std::string text = "\n";
  for (const std::string& l : lines) text += l + "\r\n  \n";
  text += lines[0];  // the same stack again (concatenated exports), no final newline
  auto copy = MustOpen(Path("copy.db"));
  StatusOr<ImportReport> report = copy->ImportJsonLines(text, false);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(report->inserted, 6);
  EXPECT_EQ(*copy->ExportJsonLines({}), *source->ExportJsonLines({}));
  EXPECT_TRUE(copy->ImportJsonLines("", false).ok());
}

// ---- two writers on one file ----

std::string KeyProblem(int i) { return "n1_c" + std::to_string(i + 1) + "_h8_w8_k4_r3_s3"; }

TEST_F(SqliteStoreTest, TwoConnectionsInThreadsNeverClaimTheSameKeyTwice) {
  const std::string path = Path("store.db");
  const StackFingerprint stack = MakeStack("CPU A");
  ASSERT_TRUE(MustOpen(path)->PutStack(stack).ok());

  constexpr int kKeys = 500;
  constexpr int kThreads = 2;
  std::vector<std::atomic<int>> times_claimed(kKeys);
  std::vector<std::vector<int>> won(kThreads);
  std::vector<Status> errors(kThreads);
  std::latch start(kThreads);
  auto work = [&](int t) {
    SqliteStoreOptions options;
    options.busy_timeout_ms = 60000;
    StatusOr<std::unique_ptr<Store>> opened = OpenSqliteStore(path, options);
    start.arrive_and_wait();
    if (!opened.ok()) {
      errors[t] = opened.status();
      return;
    }
    Store& store = **opened;
    const std::string owner = "thread-" + std::to_string(t);
    for (int i = 0; i < kKeys; ++i) {  // both in the same order: the most contention
      const VerdictKey key{stack.Id(), KeyProblem(i), "direct"};
      StatusOr<ClaimResult> r = store.Claim(key, owner, false, 3600);
      if (!r.ok()) {
        errors[t] = r.status();
        return;
      }
      if (*r != ClaimResult::kClaimed) continue;
      times_claimed[i].fetch_add(1);
      won[t].push_back(i);
      Verdict v = MakeVerdict(stack, key.problem, key.algorithm, VerdictKind::kOk);
      v.message = owner;
      Status put = store.PutVerdict(v);
      if (!put.ok()) {
        errors[t] = put;
        return;
      }
    }
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) threads.emplace_back(work, t);
  for (auto& th : threads) th.join();
  for (int t = 0; t < kThreads; ++t) ASSERT_TRUE(errors[t].ok()) << errors[t].ToString();

  for (int i = 0; i < kKeys; ++i) EXPECT_EQ(times_claimed[i].load(), 1) << KeyProblem(i);
  EXPECT_EQ(won[0].size() + won[1].size(), static_cast<size_t>(kKeys));
  auto store = MustOpen(path);
  StatusOr<std::vector<Verdict>> verdicts = store->ListVerdicts({});
  ASSERT_TRUE(verdicts.ok());
  ASSERT_EQ(verdicts->size(), static_cast<size_t>(kKeys));
  std::map<std::string, std::string> winner;
  for (int t = 0; t < kThreads; ++t) {
    for (int i : won[t]) winner[KeyProblem(i)] = "thread-" + std::to_string(t);
  }
  for (const Verdict& v : *verdicts) EXPECT_EQ(v.message, winner[v.problem]) << v.problem;
  RawDb raw(path);
  EXPECT_EQ(raw.Int("SELECT count(*) FROM claims"), 0);
  EXPECT_EQ(raw.Text("PRAGMA integrity_check"), "ok");
}

TEST_F(SqliteStoreTest, TwoProcessesNeverClaimTheSameKeyTwice) {
  const std::string path = Path("store.db");
  const StackFingerprint stack = MakeStack("CPU A");
  {
    auto store = MustOpen(path);  // closed before fork: children open their own
    ASSERT_TRUE(store->PutStack(stack).ok());
  }
  constexpr int kKeys = 300;
  constexpr int kChildren = 2;
  std::vector<pid_t> children;
  for (int c = 0; c < kChildren; ++c) {
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      // Child: no gtest assertions, only an exit code.
      SqliteStoreOptions options;
      options.busy_timeout_ms = 60000;
      StatusOr<std::unique_ptr<Store>> opened = OpenSqliteStore(path, options);
      if (!opened.ok()) _exit(2);
      const std::string owner = "process-" + std::to_string(c);
      std::ofstream winners(Path("winners-" + std::to_string(c)));
      for (int i = 0; i < kKeys; ++i) {
        const VerdictKey key{stack.Id(), KeyProblem(i), "direct"};
        StatusOr<ClaimResult> r = (*opened)->Claim(key, owner, false, 3600);
        if (!r.ok()) _exit(3);
        if (*r != ClaimResult::kClaimed) continue;
        winners << i << "\n" << std::flush;
        Verdict v = MakeVerdict(stack, key.problem, key.algorithm, VerdictKind::kOk);
        v.message = owner;
        if (!(*opened)->PutVerdict(v).ok()) _exit(4);
      }
      winners.close();
      opened->reset();
      _exit(0);
    }
    children.push_back(pid);
  }
  for (pid_t pid : children) {
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status)) << status;
    EXPECT_EQ(WEXITSTATUS(status), 0);
  }
  std::vector<int> times_claimed(kKeys, 0);
  std::map<std::string, std::string> winner;
  for (int c = 0; c < kChildren; ++c) {
    std::ifstream in(Path("winners-" + std::to_string(c)));
    for (int i; in >> i;) {
      ++times_claimed.at(i);
      winner[KeyProblem(i)] = "process-" + std::to_string(c);
    }
  }
  for (int i = 0; i < kKeys; ++i) EXPECT_EQ(times_claimed[i], 1) << KeyProblem(i);
  auto store = MustOpen(path);
  StatusOr<std::vector<Verdict>> verdicts = store->ListVerdicts({});
  ASSERT_TRUE(verdicts.ok());
  ASSERT_EQ(verdicts->size(), static_cast<size_t>(kKeys));
  for (const Verdict& v : *verdicts) EXPECT_EQ(v.message, winner[v.problem]) << v.problem;
  RawDb raw(path);
  EXPECT_EQ(raw.Text("PRAGMA integrity_check"), "ok");
}

// ---- sequence verdicts (convguard replay) ----

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
  v.failed_origin = "app.log:812";
  v.slow_calls = 1;
  v.unsupported_calls = 2;
  v.message = "call 40 of 60 ... missed the run-stage deadline";
  v.elapsed_ms = 3512.5;
  v.alone = {{v.failed_problem, "direct", VerdictKind::kOk},
             {"n1_c3_h8_w8_k4_r3_s3_p1_u1_d1_g1_f32_nchw_fwd", "direct", VerdictKind::kWrong}};
  v.minimal = {"n1_c3_h8_w8_k4_r3_s3_p1_u1_d1_g1_f32_nchw_fwd direct",
               v.failed_problem + " direct"};
  v.minimal_note = "minimal: removing any one call makes it pass (9 tests, 4.2 s)";
  v.repro = "convguard replay min.list --backend reference";
  v.tool_version = "0.1.0";
  v.recorded_at = "2026-12-06T08:00:00Z";
  v.emulated = true;
  return v;
}

TEST_F(SqliteStoreTest, SequenceVerdictsAreAppendedAndReadBackWhole) {
  const std::string path = Path("store.db");
  auto store = MustOpen(path);
  const StackFingerprint a = MakeStack("CPU A"), b = MakeStack("CPU B");
  ASSERT_TRUE(store->PutStack(a).ok());
  ASSERT_TRUE(store->PutStack(b).ok());
  const SequenceVerdict hang = MakeSequenceVerdict(a, VerdictKind::kHang);
  StatusOr<int64_t> first = store->AddSequenceVerdict(hang);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  // The same sequence again: a second row, the first one kept.
  SequenceVerdict ok = MakeSequenceVerdict(a, VerdictKind::kOk);
  ok.failed_at = -1;
  ok.minimal.clear();
  StatusOr<int64_t> second = store->AddSequenceVerdict(ok);
  ASSERT_TRUE(second.ok());
  EXPECT_GT(*second, *first);
  ASSERT_TRUE(store->AddSequenceVerdict(MakeSequenceVerdict(b, VerdictKind::kCrash)).ok());

  StatusOr<std::vector<SequenceVerdict>> of_a = store->ListSequenceVerdicts(a.Id());
  ASSERT_TRUE(of_a.ok()) << of_a.status().ToString();
  ASSERT_EQ(of_a->size(), 2u);
  const SequenceVerdict& got = (*of_a)[0];
  EXPECT_EQ(got.id, *first);
  EXPECT_EQ(got.kind, VerdictKind::kHang);
  EXPECT_EQ(got.digest, hang.digest);
  EXPECT_EQ(got.calls, 60);
  EXPECT_EQ(got.calls_run, 40);
  EXPECT_EQ(got.failed_at, 39);
  EXPECT_EQ(got.failed_origin, "app.log:812");
  EXPECT_EQ(got.slow_calls, 1);
  EXPECT_EQ(got.unsupported_calls, 2);
  EXPECT_DOUBLE_EQ(got.elapsed_ms, 3512.5);
  ASSERT_EQ(got.alone.size(), 2u);
  EXPECT_EQ(got.alone[1].kind, VerdictKind::kWrong);
  EXPECT_EQ(got.minimal, hang.minimal);
  EXPECT_EQ(got.minimal_note, hang.minimal_note);
  EXPECT_EQ(got.repro, hang.repro);
  EXPECT_TRUE(got.emulated);
  EXPECT_EQ((*of_a)[1].kind, VerdictKind::kOk);
  StatusOr<std::vector<SequenceVerdict>> all = store->ListSequenceVerdicts(std::nullopt);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->size(), 3u);
  RawDb raw(path);
  EXPECT_EQ(raw.Int("SELECT minimal_calls FROM sequence_verdicts ORDER BY id LIMIT 1"), 2);
  EXPECT_EQ(raw.Text("SELECT kind FROM sequence_verdicts ORDER BY id LIMIT 1"), "HANG");
}

TEST_F(SqliteStoreTest, ASequenceVerdictNeedsItsStackADigestAndAReadableRecord) {
  auto store = MustOpen(Path("store.db"));
  const StackFingerprint a = MakeStack("CPU A");
  StatusOr<int64_t> no_stack = store->AddSequenceVerdict(MakeSequenceVerdict(a, VerdictKind::kOk));
  ASSERT_FALSE(no_stack.ok());
  EXPECT_NE(no_stack.status().message().find("PutStack it first"), std::string::npos);
  ASSERT_TRUE(store->PutStack(a).ok());
  SequenceVerdict no_digest = MakeSequenceVerdict(a, VerdictKind::kOk);
  no_digest.digest.clear();
  EXPECT_EQ(store->AddSequenceVerdict(no_digest).status().code(), StatusCode::kInvalidArgument);
  ASSERT_TRUE(store->AddSequenceVerdict(MakeSequenceVerdict(a, VerdictKind::kOk)).ok());
  {
    RawDb raw(Path("store.db"));
    raw.Exec("UPDATE sequence_verdicts SET record = '{\"kind\":\"OK\"}'");
  }
  StatusOr<std::vector<SequenceVerdict>> listed = store->ListSequenceVerdicts(std::nullopt);
  ASSERT_FALSE(listed.ok());
  EXPECT_NE(listed.status().message().find("unreadable"), std::string::npos)
      << listed.status().message();
}

TEST_F(SqliteStoreTest, AVersionOneStoreGainsSequenceVerdictsAndKeepsItsVerdicts) {
  const std::string path = Path("store.db");
  const StackFingerprint stack = MakeStack("CPU A");
  const Verdict v = MakeVerdict(stack, "p1", "direct", VerdictKind::kOk);
  {
    const std::vector<SchemaMigration> v1 = {EmbeddedMigrations().front()};
    StatusOr<std::unique_ptr<Store>> old = OpenSqliteStoreWithMigrations(path, {}, v1);
    ASSERT_TRUE(old.ok()) << old.status().ToString();
    ASSERT_TRUE((*old)->PutStack(stack).ok());
    ASSERT_TRUE((*old)->PutVerdict(v).ok());
  }
  {
    RawDb raw(path);
    EXPECT_EQ(raw.Int("PRAGMA user_version"), 1);
    EXPECT_EQ(raw.Int("SELECT count(*) FROM sqlite_master WHERE name = 'sequence_verdicts'"), 0);
  }
  auto store = MustOpen(path);
  StatusOr<std::optional<Verdict>> got = store->GetVerdict(KeyOf(v));
  ASSERT_TRUE(got.ok() && got->has_value());
  ExpectSameVerdict(**got, v);
  EXPECT_TRUE(store->AddSequenceVerdict(MakeSequenceVerdict(stack, VerdictKind::kHang)).ok());
  RawDb raw(path);
  EXPECT_EQ(raw.Int("PRAGMA user_version"), EmbeddedMigrations().back().version);
}

}  // namespace
}  // namespace convguard
