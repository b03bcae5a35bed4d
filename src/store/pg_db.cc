// libpq behind pg_db.h. What it owns and who may use it: the header.
#include "store/pg_db.h"

#include <libpq-fe.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <set>
#include <utility>
#include <vector>

#include "os/system.h"

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

std::string Trimmed(std::string_view text) {
  const size_t begin = text.find_first_not_of(" \t\r\n");
  if (begin == std::string_view::npos) return "";
  const size_t end = text.find_last_not_of(" \t\r\n");
  return std::string(text.substr(begin, end - begin + 1));
}

// The keywords that the entry [`service`] of a connection service file sets, found where
// libpq looks: $PGSERVICEFILE, else ~/.pg_service.conf; then pg_service.conf in
// $PGSYSCONFDIR, else in the folders distributions build libpq with. The first file that
// has the entry is the one libpq reads. Only the names matter here (so that the user's
// settings win over ours); libpq itself reads the values and reports any error.
std::set<std::string> ServiceKeywords(const std::string& service) {
  std::vector<std::string> files;
  if (auto file = os::GetEnv("PGSERVICEFILE"); file && !file->empty()) {
    files.push_back(*file);
  } else if (auto home = os::GetEnv("HOME"); home && !home->empty()) {
    files.push_back(*home + "/.pg_service.conf");
  }
  if (auto dir = os::GetEnv("PGSYSCONFDIR"); dir && !dir->empty()) {
    files.push_back(*dir + "/pg_service.conf");
  } else {
    // libpq's built-in folder is not visible to programs; these are Debian's and the
    // source build's. Looking in one libpq skips only makes us leave a default out.
    files.push_back("/etc/postgresql-common/pg_service.conf");
    files.push_back("/usr/local/pgsql/etc/pg_service.conf");
  }
  std::set<std::string> keywords;
  for (const std::string& path : files) {
    std::ifstream in(path);
    if (!in) continue;
    bool in_entry = false;
    bool found = false;
    for (std::string raw; std::getline(in, raw);) {
      const std::string line = Trimmed(raw);
      if (line.empty() || line[0] == '#') continue;
      if (line[0] == '[') {
        const size_t close = line.find(']');
        in_entry = close != std::string::npos && line.substr(1, close - 1) == service;
        found |= in_entry;
        continue;
      }
      const size_t eq = line.find('=');
      if (in_entry && eq != std::string::npos) keywords.insert(Trimmed(line.substr(0, eq)));
    }
    if (found) break;
  }
  return keywords;
}

// SQLSTATEs with which the server says the connection is over: class 08 (connection
// exception), 57P01 admin shutdown, 57P02 crash shutdown, 57P03 cannot connect now.
bool MeansConnectionLost(std::string_view sqlstate) {
  return StartsWith(sqlstate, "08") || sqlstate == "57P01" || sqlstate == "57P02" ||
         sqlstate == "57P03";
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
  // What the user set, so that ours stays out of its way.
  std::set<std::string> user_set;
  std::optional<std::string> service = os::GetEnv("PGSERVICE");
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
    for (const PQconninfoOption* o = options; o->keyword != nullptr; ++o) {
      if (o->val == nullptr) continue;
      user_set.insert(o->keyword);
      if (std::string_view(o->keyword) == "service") service = o->val;
    }
    PQconninfoFree(options);
    if (!invalid.empty()) {
      return Status::InvalidArgument("invalid PostgreSQL connection string \"" +
                                     RedactConnectionString(conninfo) + "\": " + invalid);
    }
  }
  if (service && !service->empty()) user_set.merge(ServiceKeywords(*service));
  if (auto env = os::GetEnv("PGCONNECT_TIMEOUT"); env && !env->empty()) {
    user_set.insert("connect_timeout");
  }

  // Ours first, then the string as "dbname" with expand_dbname: what the string sets comes
  // later and would win anyway; what a service file sets is applied by libpq only where
  // nothing is set yet, hence the defaults it sets are left out here.
  std::vector<std::pair<const char*, std::string>> ours = {
      {"connect_timeout", std::to_string(connect_timeout_s)},
      {"keepalives_idle", std::to_string(kDefaultKeepalivesIdleS)},
      {"keepalives_interval", std::to_string(kDefaultKeepalivesIntervalS)},
      {"keepalives_count", std::to_string(kDefaultKeepalivesCount)},
      {"tcp_user_timeout", std::to_string(kDefaultTcpUserTimeoutMs)},
      {"fallback_application_name", "convguard"},
      {"client_encoding", "UTF8"},
  };
  std::vector<const char*> keywords;
  std::vector<const char*> values;
  for (const auto& [keyword, value] : ours) {
    if (user_set.contains(keyword)) continue;
    keywords.push_back(keyword);
    values.push_back(value.c_str());
  }
  keywords.push_back("dbname");
  values.push_back(conninfo.c_str());
  keywords.push_back(nullptr);
  values.push_back(nullptr);
  PGconn* raw = PQconnectdbParams(keywords.data(), values.data(), /*expand_dbname=*/1);
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
  last_reason_ = ScrubSecrets(OneLine(detail), conninfo_);
  const std::string message = "store " + target_ + ": " + std::string(doing) + ": " + last_reason_;
  const std::string_view sqlstate = state != nullptr ? state : "";
  server_said_lost_ = MeansConnectionLost(sqlstate);
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

bool Connection::Lost() const { return PQstatus(conn_) == CONNECTION_BAD || server_said_lost_; }

std::optional<std::string> Connection::Option(std::string_view keyword) const {
  if (keyword == "password") return std::nullopt;
  PQconninfoOption* options = PQconninfo(conn_);
  if (options == nullptr) return std::nullopt;
  std::optional<std::string> value;
  for (const PQconninfoOption* o = options; o->keyword != nullptr; ++o) {
    if (keyword == o->keyword && o->val != nullptr) value = o->val;
  }
  PQconninfoFree(options);
  return value;
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
