// The SQLite C API behind sqlite_db.h. What it owns and who may use it: the header.
#include "store/sqlite_db.h"

#include <sqlite3.h>

#include <chrono>
#include <cmath>
#include <thread>

namespace convguard::sqlite {
namespace {

// The start of `sql`, quoted, for messages: enough to recognise the statement.
std::string Quoted(std::string_view sql) { return "\"" + std::string(sql.substr(0, 60)) + "\""; }

bool IsBusy(int rc) {
  const int primary = rc & 0xff;
  return primary == SQLITE_BUSY || primary == SQLITE_LOCKED;
}

}  // namespace

SqlValue Real(double d) { return std::isfinite(d) ? SqlValue(d) : SqlValue(nullptr); }

// ---------------------------------------------------------------------------------------
// Statement

Statement::Statement(Statement&& other) noexcept
    : conn_(other.conn_), stmt_(std::exchange(other.stmt_, nullptr)) {}

Statement::~Statement() { sqlite3_finalize(stmt_); }

Status Statement::Bind(std::initializer_list<SqlValue> values) {
  int index = 1;
  for (const SqlValue& value : values) {
    int rc = SQLITE_OK;
    if (std::holds_alternative<std::nullptr_t>(value)) {
      rc = sqlite3_bind_null(stmt_, index);
    } else if (const auto* i = std::get_if<int64_t>(&value)) {
      rc = sqlite3_bind_int64(stmt_, index, *i);
    } else if (const auto* d = std::get_if<double>(&value)) {
      rc = sqlite3_bind_double(stmt_, index, *d);
    } else {
      std::string_view s = std::get<std::string_view>(value);
      rc = sqlite3_bind_text64(stmt_, index, s.data(), s.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
    }
    if (rc != SQLITE_OK) return conn_->Error(rc, "binding parameter " + std::to_string(index));
    ++index;
  }
  return Status::Ok();
}

StatusOr<bool> Statement::Step() {
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  const char* sql = sqlite3_sql(stmt_);
  return conn_->Error(rc, "running " + Quoted(sql ? sql : ""));
}

bool Statement::IsNull(int col) const { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }

int64_t Statement::ColumnInt(int col) const { return sqlite3_column_int64(stmt_, col); }

double Statement::ColumnReal(int col) const {
  return IsNull(col) ? std::nan("") : sqlite3_column_double(stmt_, col);
}

std::string Statement::ColumnText(int col) const {
  const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, col));
  return text ? std::string(text, sqlite3_column_bytes(stmt_, col)) : std::string();
}

// ---------------------------------------------------------------------------------------
// Connection

StatusOr<std::unique_ptr<Connection>> Connection::Open(const std::string& path,
                                                       int busy_timeout_ms) {
  sqlite3* db = nullptr;
  const int rc = sqlite3_open_v2(
      path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  // Owned at once: SQLite hands out a handle (holding the error message) even when the
  // open fails, and it must be closed on every return.
  std::unique_ptr<Connection> conn(new Connection(db, path, busy_timeout_ms));
  if (rc != SQLITE_OK) return conn->Error(rc, "cannot open");
  sqlite3_extended_result_codes(db, 1);
  sqlite3_busy_timeout(db, busy_timeout_ms);
  return conn;
}

Connection::~Connection() { sqlite3_close_v2(db_); }

Status Connection::Error(int rc, std::string_view doing) const {
  const char* detail = db_ != nullptr ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
  std::string message = "store " + path_ + ": " + std::string(doing) + ": " + detail;
  switch (rc & 0xff) {
    case SQLITE_NOTADB:
      return Status::InvalidArgument(path_ + " is not an SQLite database (" + detail + ")");
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return Status::IOError(message +
                             " (another connection held the lock longer than "
                             "the busy timeout)");
    case SQLITE_NOMEM: return Status::ResourceExhausted(message);
    case SQLITE_CANTOPEN:
    case SQLITE_IOERR:
    case SQLITE_CORRUPT:
    case SQLITE_FULL:
    case SQLITE_READONLY:
    case SQLITE_PERM:
    case SQLITE_PROTOCOL: return Status::IOError(message);
    default: return Status::Internal(message);
  }
}

StatusOr<Statement> Connection::Prepare(std::string_view sql) {
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v2(db_, sql.data(), static_cast<int>(sql.size()), &stmt, nullptr);
  if (rc != SQLITE_OK) {
    sqlite3_finalize(stmt);
    return Error(rc, "preparing " + Quoted(sql));
  }
  return Statement(this, stmt);
}

Status Connection::Exec(std::string_view sql, std::initializer_list<SqlValue> values) {
  CG_ASSIGN_OR_RETURN(Statement stmt, Prepare(sql));
  CG_RETURN_IF_ERROR(stmt.Bind(values));
  while (true) {
    CG_ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) return Status::Ok();
  }
}

Status Connection::ExecScript(const char* sql, std::string_view doing) {
  char* error = nullptr;
  int rc = sqlite3_exec(db_, sql, nullptr, nullptr, &error);
  if (rc == SQLITE_OK) return Status::Ok();
  std::string detail = error ? error : sqlite3_errstr(rc);
  sqlite3_free(error);
  Status s = Error(rc, doing);
  return Status(s.code(), "store " + path_ + ": " + std::string(doing) + ": " + detail);
}

StatusOr<int64_t> Connection::QueryInt(std::string_view sql,
                                       std::initializer_list<SqlValue> values) {
  CG_ASSIGN_OR_RETURN(Statement stmt, Prepare(sql));
  CG_RETURN_IF_ERROR(stmt.Bind(values));
  CG_ASSIGN_OR_RETURN(bool row, stmt.Step());
  return row ? stmt.ColumnInt(0) : 0;
}

StatusOr<std::string> Connection::QueryTextRetryingBusy(std::string_view sql) {
  const auto give_up =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(busy_timeout_ms_);
  for (;;) {
    sqlite3_stmt* raw = nullptr;
    int rc = sqlite3_prepare_v2(db_, sql.data(), static_cast<int>(sql.size()), &raw, nullptr);
    std::string text;
    if (rc == SQLITE_OK) {
      rc = sqlite3_step(raw);
      if (rc == SQLITE_ROW) {
        const unsigned char* column = sqlite3_column_text(raw, 0);
        text = column != nullptr ? reinterpret_cast<const char*>(column) : "";
        rc = SQLITE_OK;
      }
    }
    sqlite3_finalize(raw);
    if (rc == SQLITE_OK || rc == SQLITE_DONE) return text;
    if (!IsBusy(rc) || std::chrono::steady_clock::now() >= give_up) {
      return Error(rc, "running " + Quoted(sql));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

bool Connection::InTransaction() const { return !sqlite3_get_autocommit(db_); }

bool Connection::IsReadOnly() const { return sqlite3_db_readonly(db_, "main") == 1; }

// ---------------------------------------------------------------------------------------
// Transaction

Transaction::~Transaction() {
  if (active_ && conn_.InTransaction()) {
    sqlite3_exec(conn_.db_, "ROLLBACK", nullptr, nullptr, nullptr);
  }
}

Status Transaction::Begin(const char* begin) {
  CG_RETURN_IF_ERROR(conn_.Exec(begin));
  active_ = true;
  return Status::Ok();
}

Status Transaction::Commit() {
  CG_RETURN_IF_ERROR(conn_.Exec("COMMIT"));
  active_ = false;
  return Status::Ok();
}

}  // namespace convguard::sqlite
