// store/pg_db.h — a thin, Status-returning layer over libpq, private to the store layer
// (src/store/).
//
// Only pg_db.cc includes <libpq-fe.h>: the rest of the store speaks Connection, Result
// and Transaction, every libpq failure becomes a Status in one place (Connection::Error),
// and every query is sent with its values as parameters (PQexecParams): no value is ever
// spliced into SQL text.
//
// Secrets: a connection string may carry a password (a URI's user:password@, or
// password=...). No message made here contains it: a connection is named by Target()
// (host, port, database and user only), and libpq's own messages, some of which quote
// the string they could not parse, pass through ScrubSecrets first.
//
// Ownership: a Connection owns its PGconn and closes it when destroyed. A Result owns its
// PGresult. A Transaction borrows its Connection and rolls back unless committed.
//
// Thread-safety: none. A Connection, and every Result and Transaction made from it, is
// used from one thread; other threads and processes open their own Connection.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "convguard/status.h"
#include "store/pg_conninfo.h"

struct pg_conn;
struct pg_result;

namespace convguard::pg {

// A query parameter in PostgreSQL's text form; nullopt is SQL NULL.
using Param = std::optional<std::string>;

inline Param Text(std::string_view s) { return std::string(s); }
inline Param OptText(const std::optional<std::string>& s) { return s; }
Param Int(int64_t i);
// Non-finite doubles are stored as NULL, as in the SQLite store: the authoritative JSON
// record keeps the exact value. Finite ones are written with 17 significant digits, so
// they read back bit for bit.
Param Real(double d);

class Result {
 public:
  explicit Result(pg_result* result) : result_(result) {}
  Result(Result&& other) noexcept;
  Result& operator=(Result&&) = delete;
  ~Result();

  int Rows() const;
  bool IsNull(int row, int col) const;
  std::string GetText(int row, int col) const;  // "" for NULL
  int64_t GetInt(int row, int col) const;       // 0 for NULL
  double GetReal(int row, int col) const;       // NaN for NULL (see Real)

 private:
  pg_result* result_;
};

// What Connection::Open sets unless the user did (connection string, service file entry,
// or PGCONNECT_TIMEOUT): TCP keepalives and a user timeout, so that a server that vanished
// from the network (cut cable, a host that died without a word) surfaces as an error in
// about 20 to 25 s instead of TCP's 15 minutes or more. Idle: a probe after 10 s of
// silence, then every 5 s, dead after 3 unanswered; sending: data unacknowledged for 20 s.
// They apply to TCP only (a Unix socket has no peer to lose).
inline constexpr int kDefaultKeepalivesIdleS = 10;
inline constexpr int kDefaultKeepalivesIntervalS = 5;
inline constexpr int kDefaultKeepalivesCount = 3;
inline constexpr int kDefaultTcpUserTimeoutMs = 20000;

class Connection {
 public:
  // Connects with `conninfo` (any libpq connection string or URI; a plain word is a
  // database name), waiting at most `connect_timeout_s` unless the user set their own
  // connect_timeout, and with the keepalive defaults above for what the user left unset.
  // What the user set wins: in the string, in the service file entry it (or PGSERVICE)
  // names, or PGCONNECT_TIMEOUT.
  // Errors: kInvalidArgument for a string libpq cannot parse; kIOError for a server that
  // cannot be reached or refuses the connection. Messages name the target, never the
  // password, and say libpq's reason on one line.
  static StatusOr<std::unique_ptr<Connection>> Open(const std::string& conninfo,
                                                    int connect_timeout_s);

  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  ~Connection();

  // "postgresql server (host=... port=... dbname=... user=...)": for messages.
  const std::string& Target() const { return target_; }

  // Runs one statement with `params` as $1, $2, ... (text format).
  StatusOr<Result> Exec(std::string_view sql, const std::vector<Param>& params = {});
  // Runs a script of several statements without parameters (a migration).
  Status ExecScript(const char* sql, std::string_view doing);
  // One integer from a query returning one row (0 when no row or NULL).
  StatusOr<int64_t> QueryInt(std::string_view sql, const std::vector<Param>& params = {});

  // Whether a transaction is open (also one aborted by an error).
  bool InTransaction() const;

  // Whether this connection is gone: libpq found it broken (the server closed it, it could
  // not be written to, keepalives went unanswered), or the server said it is shutting down
  // or the connection failed (SQLSTATE class 08, 57P01..57P03). Then every statement fails
  // and only a new Connection helps; a statement that failed any other way (a constraint,
  // bad SQL) leaves the connection usable and Lost() false.
  bool Lost() const;
  // libpq's reason for the last failure, on one line, without secrets ("" before any).
  const std::string& LastReason() const { return last_reason_; }
  // The value libpq uses for connection option `keyword` ("keepalives_idle", "host",
  // ...), whoever set it; nullopt when unset or unknown. Never the password.
  std::optional<std::string> Option(std::string_view keyword) const;

 private:
  friend class Transaction;

  Connection(pg_conn* conn, std::string conninfo, std::string target)
      : conn_(conn), conninfo_(std::move(conninfo)), target_(std::move(target)) {}

  // A Status for the failed `result` (or the connection's last error when null), naming
  // the target and what was being done.
  Status Error(const pg_result* result, std::string_view doing) const;

  pg_conn* conn_;
  std::string conninfo_;  // kept only to scrub its secrets from messages
  std::string target_;
  // Set by Error (a const method: it only reports) from the failure it describes.
  mutable std::string last_reason_;
  mutable bool server_said_lost_ = false;
};

// A transaction that rolls back unless committed.
class Transaction {
 public:
  explicit Transaction(Connection& conn) : conn_(conn) {}
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  ~Transaction();

  // "BEGIN" (read committed) by default; e.g. "BEGIN ISOLATION LEVEL REPEATABLE READ" for
  // a consistent read.
  Status Begin(const char* begin = "BEGIN");
  Status Commit();

 private:
  Connection& conn_;
  bool active_ = false;
};

}  // namespace convguard::pg
