// store/sqlite_db.h — a thin, Status-returning layer over the SQLite C API, private to
// the store layer (src/store/).
//
// Only sqlite_db.cc includes <sqlite3.h>: the rest of the store speaks Connection,
// Statement and Transaction, and every SQLite result code becomes a Status in exactly
// one place (Connection::Error), with a message that names the file and what was being
// done (the code mapping is in docs/store.md).
//
// Ownership: a Connection owns its database handle and closes it when destroyed. A
// Statement owns its prepared statement and must not outlive the Connection that
// prepared it. A Transaction borrows its Connection and rolls back unless committed.
//
// Thread-safety: none. A Connection, and every Statement and Transaction made from it,
// is used from one thread (the handle is opened without SQLite's own mutex); other
// threads and processes open their own Connection to the same file.
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

#include "convguard/status.h"

struct sqlite3;
struct sqlite3_stmt;

namespace convguard::sqlite {

using SqlValue = std::variant<std::nullptr_t, int64_t, double, std::string_view>;

// Non-finite doubles are stored as NULL: SQLite turns NaN into NULL anyway, and the
// authoritative JSON record keeps the exact value.
SqlValue Real(double d);
inline SqlValue Int(int64_t i) { return SqlValue(i); }
inline SqlValue Text(std::string_view s) { return SqlValue(s); }
inline SqlValue OptText(const std::optional<std::string>& s) {
  return s ? SqlValue(std::string_view(*s)) : SqlValue(nullptr);
}

class Connection;

class Statement {
 public:
  Statement(Connection* conn, sqlite3_stmt* stmt) : conn_(conn), stmt_(stmt) {}
  Statement(Statement&& other) noexcept;
  Statement& operator=(Statement&&) = delete;
  ~Statement();

  // Binds ?1, ?2, ... in order. A string_view is copied: it need not outlive the call.
  Status Bind(std::initializer_list<SqlValue> values);
  // true: a row is ready; false: done.
  StatusOr<bool> Step();

  bool IsNull(int col) const;
  int64_t ColumnInt(int col) const;
  double ColumnReal(int col) const;  // NaN for NULL (see Real)
  std::string ColumnText(int col) const;

 private:
  Connection* conn_;
  sqlite3_stmt* stmt_;
};

class Connection {
 public:
  // Opens (creating if absent) the file at `path` read-write, with extended result codes,
  // waiting up to `busy_timeout_ms` on a lock held by another connection. The error names
  // the path.
  static StatusOr<std::unique_ptr<Connection>> Open(const std::string& path, int busy_timeout_ms);

  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  ~Connection();

  const std::string& path() const { return path_; }

  // A Status for SQLite result code `rc`, naming the file and what was being done.
  Status Error(int rc, std::string_view doing) const;

  StatusOr<Statement> Prepare(std::string_view sql);

  // Runs one statement to completion.
  Status Exec(std::string_view sql, std::initializer_list<SqlValue> values = {});

  // Runs a script of several statements (a migration).
  Status ExecScript(const char* sql, std::string_view doing);

  // One integer from a query returning one row (0 when no row).
  StatusOr<int64_t> QueryInt(std::string_view sql, std::initializer_list<SqlValue> values = {});

  // The first column of the first row as text ("" when no row); the statement is finished
  // before this returns (an unfinished one would block COMMIT). SQLite answers some
  // statements (a journal-mode switch) SQLITE_BUSY at once, without waiting in its busy
  // handler, so a busy or locked answer is retried here until the busy timeout has passed.
  StatusOr<std::string> QueryTextRetryingBusy(std::string_view sql);

  // Whether a transaction is open: SQLite may end one by itself after some errors.
  bool InTransaction() const;
  // Whether the main database was opened read-only (e.g. a file without write permission).
  bool IsReadOnly() const;

 private:
  friend class Transaction;

  Connection(sqlite3* db, std::string path, int busy_timeout_ms)
      : db_(db), path_(std::move(path)), busy_timeout_ms_(busy_timeout_ms) {}

  sqlite3* db_;
  std::string path_;
  int busy_timeout_ms_;
};

// A transaction that rolls back unless committed.
class Transaction {
 public:
  explicit Transaction(Connection& conn) : conn_(conn) {}
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  ~Transaction();

  // "BEGIN IMMEDIATE" for writes (takes the write lock now), "BEGIN" for a consistent read.
  Status Begin(const char* begin = "BEGIN IMMEDIATE");
  Status Commit();

 private:
  Connection& conn_;
  bool active_ = false;
};

}  // namespace convguard::sqlite
