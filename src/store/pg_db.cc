// libpq behind pg_db.h. What it owns and who may use it: the header.
#include "store/pg_db.h"

#include <libpq-fe.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <utility>
#include <vector>

namespace convguard::pg {
namespace {

// libpq's messages end in a newline and may span lines ("...failed: ...\n\tIs the server
// running...?"); a store error is one line.
std::string OneLine(std::string_view text) {
  std::string out;
  bool space = false;
  for (char c : text) {
    if (c == '\n' || c == '\r' || c == '\t' || c == ' ') {
      space = !out.empty();
      continue;
    }
    if (space) out += ' ';
    space = false;
    out += c;
  }
  return out;
}

bool StartsWith(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

// The start of `sql`, quoted, for messages: enough to recognise the statement.
std::string Quoted(std::string_view sql) { return "\"" + OneLine(sql.substr(0, 80)) + "\""; }

// Names a connection by what is safe to print: libpq's view of the host (or socket
// folder), port, database and user, whatever the string, the service file or the
// environment said.
std::string DescribeTarget(const PGconn* conn) {
  std::string out = "postgresql server (";
  bool first = true;
  auto add = [&](const char* name, const char* value) {
    if (value == nullptr || value[0] == '\0') return;
    out += (first ? "" : " ") + std::string(name) + "=" + value;
    first = false;
  };
  add("host", PQhost(conn));
  add("port", PQport(conn));
  add("dbname", PQdb(conn));
  add("user", PQuser(conn));
  return out + ")";
}

void IgnoreNotice(void*, const char*) {}

// libpq checks some values only when it connects, and then says so as it says that a
// server cannot be reached. The ones people mistype are checked here, so that a
// malformed string is always kInvalidArgument. "" when every value is well-formed.
std::string InvalidOptionValue(const PQconninfoOption* options) {
  for (const PQconninfoOption* o = options; o->keyword != nullptr; ++o) {
    if (o->val == nullptr) continue;
    const std::string_view keyword = o->keyword;
    const std::string_view value = o->val;
    if (keyword == "port" || keyword == "connect_timeout") {
      // A port may be a comma-separated list, one per host; an element may be empty.
      size_t start = 0;
      while (start <= value.size()) {
        size_t end = value.find(',', start);
        if (end == std::string_view::npos) end = value.size();
        const std::string_view item = value.substr(start, end - start);
        if (item.find_first_not_of(" 0123456789") != std::string_view::npos) {
          return "invalid integer value \"" + std::string(item) + "\" for connection option \"" +
                 std::string(keyword) + "\"";
        }
        start = end + 1;
      }
    }
    if (keyword == "sslmode" && value != "disable" && value != "allow" && value != "prefer" &&
        value != "require" && value != "verify-ca" && value != "verify-full") {
      return "invalid sslmode value: \"" + std::string(value) +
             "\" (allowed: disable, allow, prefer, require, verify-ca, verify-full)";
    }
  }
  return "";
}

}  // namespace

Param Int(int64_t i) { return std::to_string(i); }

Param Real(double d) {
  if (!std::isfinite(d)) return std::nullopt;
  char text[32];
  std::snprintf(text, sizeof text, "%.17g", d);
  return std::string(text);
}

// ---------------------------------------------------------------------------------------
// Result

Result::Result(Result&& other) noexcept : result_(std::exchange(other.result_, nullptr)) {}

Result::~Result() { PQclear(result_); }

int Result::Rows() const { return PQntuples(result_); }

bool Result::IsNull(int row, int col) const { return PQgetisnull(result_, row, col) != 0; }

std::string Result::GetText(int row, int col) const {
  if (IsNull(row, col)) return "";
  return std::string(PQgetvalue(result_, row, col),
                     static_cast<size_t>(PQgetlength(result_, row, col)));
}

int64_t Result::GetInt(int row, int col) const {
  if (IsNull(row, col)) return 0;
  return std::strtoll(PQgetvalue(result_, row, col), nullptr, 10);
}

double Result::GetReal(int row, int col) const {
  if (IsNull(row, col)) return std::nan("");
  return std::strtod(PQgetvalue(result_, row, col), nullptr);
}

// ---------------------------------------------------------------------------------------
// Connection

StatusOr<std::unique_ptr<Connection>> Connection::Open(const std::string& conninfo,
                                                       int connect_timeout_s) {
  if (conninfo.empty()) return Status::InvalidArgument("PostgreSQL connection string is empty");
  if (IsConnectionString(conninfo)) {
    // Parsed first, so that a malformed string is told apart from a server that cannot be
    // reached.
    char* error = nullptr;
    PQconninfoOption* options = PQconninfoParse(conninfo.c_str(), &error);
    if (options == nullptr) {
      std::string reason = error != nullptr ? OneLine(error) : "out of memory";
      PQfreemem(error);
      return Status::InvalidArgument("invalid PostgreSQL connection string \"" +
                                     RedactConnectionString(conninfo) +
                                     "\": " + ScrubSecrets(reason, conninfo));
    }
    const std::string invalid = InvalidOptionValue(options);
    PQconninfoFree(options);
    if (!invalid.empty()) {
      return Status::InvalidArgument("invalid PostgreSQL connection string \"" +
                                     RedactConnectionString(conninfo) + "\": " + invalid);
    }
  }
  const std::string timeout = std::to_string(connect_timeout_s);
  // Ours first: with expand_dbname, what the string itself sets comes later and wins.
  const char* const keywords[] = {"connect_timeout", "fallback_application_name", "client_encoding",
                                  "dbname", nullptr};
  const char* const values[] = {timeout.c_str(), "convguard", "UTF8", conninfo.c_str(), nullptr};
  PGconn* raw = PQconnectdbParams(keywords, values, /*expand_dbname=*/1);
  if (raw == nullptr) return Status::ResourceExhausted("libpq: out of memory connecting");
  std::unique_ptr<Connection> conn(new Connection(raw, conninfo, DescribeTarget(raw)));
  if (PQstatus(raw) != CONNECTION_OK) {
    return Status::IOError("cannot connect to " + conn->target_ + ": " +
                           ScrubSecrets(OneLine(PQerrorMessage(raw)), conninfo));
  }
  // Notices ("relation exists, skipping", ...) would go to our stderr otherwise.
  PQsetNoticeProcessor(raw, IgnoreNotice, nullptr);
  return conn;
}

Connection::~Connection() { PQfinish(conn_); }

Status Connection::Error(const pg_result* result, std::string_view doing) const {
  const char* state = result != nullptr ? PQresultErrorField(result, PG_DIAG_SQLSTATE) : nullptr;
  const std::string detail = result != nullptr && PQresultErrorMessage(result)[0] != '\0'
                                 ? PQresultErrorMessage(result)
                                 : PQerrorMessage(conn_);
  const std::string message = "store " + target_ + ": " + std::string(doing) + ": " +
                              ScrubSecrets(OneLine(detail), conninfo_);
  const std::string_view sqlstate = state != nullptr ? state : "";
  // 22 data exception, 23 integrity violation, 42 syntax or undefined object (except 42501,
  // a missing privilege): a statement or a schema that does not fit is a broken invariant.
  // The rest (a lost connection, an administrator's shutdown, a full disk, a deadlock) is
  // the environment's.
  if (sqlstate == "42501") return Status::IOError(message);
  if (StartsWith(sqlstate, "22") || StartsWith(sqlstate, "23") || StartsWith(sqlstate, "42")) {
    return Status::Internal(message);
  }
  if (StartsWith(sqlstate, "53")) return Status::ResourceExhausted(message);
  return Status::IOError(message);
}

StatusOr<Result> Connection::Exec(std::string_view sql, const std::vector<Param>& params) {
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const Param& p : params) values.push_back(p ? p->c_str() : nullptr);
  const std::string text(sql);
  PGresult* raw = PQexecParams(conn_, text.c_str(), static_cast<int>(values.size()), nullptr,
                               values.data(), nullptr, nullptr, /*resultFormat=*/0);
  Result result(raw);  // owns `raw` from here, on every return
  const ExecStatusType status = PQresultStatus(raw);
  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
    return Error(raw, "running " + Quoted(sql));
  }
  return result;
}

Status Connection::ExecScript(const char* sql, std::string_view doing) {
  PGresult* result = PQexec(conn_, sql);
  const ExecStatusType status = PQresultStatus(result);
  Status s =
      status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK ? Status::Ok() : Error(result, doing);
  PQclear(result);
  return s;
}

StatusOr<int64_t> Connection::QueryInt(std::string_view sql, const std::vector<Param>& params) {
  CG_ASSIGN_OR_RETURN(Result result, Exec(sql, params));
  if (result.Rows() == 0) return int64_t{0};
  return result.GetInt(0, 0);
}

bool Connection::InTransaction() const {
  const PGTransactionStatusType status = PQtransactionStatus(conn_);
  return status == PQTRANS_INTRANS || status == PQTRANS_INERROR || status == PQTRANS_ACTIVE;
}

// ---------------------------------------------------------------------------------------
// Transaction

Transaction::~Transaction() {
  if (active_ && conn_.InTransaction()) PQclear(PQexec(conn_.conn_, "ROLLBACK"));
}

Status Transaction::Begin(const char* begin) {
  CG_RETURN_IF_ERROR(conn_.ExecScript(begin, begin));
  active_ = true;
  return Status::Ok();
}

Status Transaction::Commit() {
  PGresult* result = PQexec(conn_.conn_, "COMMIT");
  const ExecStatusType status = PQresultStatus(result);
  // COMMIT of a transaction that an error aborted answers "ROLLBACK", not an error.
  const char* tag = PQcmdStatus(result);
  const bool rolled_back = tag != nullptr && std::string_view(tag) == "ROLLBACK";
  Status s = Status::Ok();
  if (status != PGRES_COMMAND_OK) {
    s = conn_.Error(result, "COMMIT");
  } else if (rolled_back) {
    s = Status::Internal("store " + conn_.Target() +
                         ": COMMIT: the transaction had failed and was rolled back");
  }
  PQclear(result);
  active_ = false;
  return s;
}

}  // namespace convguard::pg
