// A real PostgreSQL server for the tests. Contract: pg_server.h.
#include "support/pg_server.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

#include "os/pipe_io.h"
#include "os/system.h"
#include "store/pg_db.h"

namespace convguard::testing_support {
namespace {

namespace fs = std::filesystem;

constexpr const char* kSuperuser = "postgres";
constexpr const char* kServerUser = "postgres";  // the system user of Debian's package
constexpr int kPort = 5432;  // names the socket file only: nothing listens on TCP

bool IsExecutable(const fs::path& p) {
  std::error_code ec;
  return fs::is_regular_file(p, ec) && access(p.c_str(), X_OK) == 0;
}

bool HasServer(const fs::path& bin) {
  return IsExecutable(bin / "initdb") && IsExecutable(bin / "postgres");
}

// The folder with initdb and postgres; empty when there is none.
fs::path FindServerBinDir() {
  if (auto env = os::GetEnv("CONVGUARD_PG_BINDIR"); env && !env->empty()) {
    return HasServer(*env) ? fs::path(*env) : fs::path();
  }
  std::vector<std::pair<int, fs::path>> debian;
  std::error_code ec;
  for (const fs::directory_entry& e : fs::directory_iterator("/usr/lib/postgresql", ec)) {
    const std::string name = e.path().filename().string();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    if (HasServer(e.path() / "bin")) debian.emplace_back(std::stoi(name), e.path() / "bin");
  }
  std::sort(debian.begin(), debian.end());
  if (!debian.empty()) return debian.back().second;
  if (HasServer("/usr/local/pgsql/bin")) return "/usr/local/pgsql/bin";
  return {};
}

// PostgreSQL refuses to run as root: then its programs run as kServerUser.
bool RunningAsRoot() { return geteuid() == 0; }

std::vector<std::string> AsServerUser(std::vector<std::string> argv) {
  if (!RunningAsRoot()) return argv;
  std::vector<std::string> wrapped = {"setpriv", std::string("--reuid=") + kServerUser,
                                      std::string("--regid=") + kServerUser, "--init-groups", "--"};
  wrapped.insert(wrapped.end(), argv.begin(), argv.end());
  return wrapped;
}

std::string DrainAvailable(int fd) {
  std::string out;
  if (fd < 0) return out;
  uint8_t buf[4096];
  while (true) {
    StatusOr<os::IoResult> r = os::ReadSome(fd, buf, os::Deadline::After(os::Duration::zero()));
    if (!r.ok() || r->eof() || !r->data()) return out;
    out.append(reinterpret_cast<const char*>(buf), r->bytes);
  }
}

// Runs a short program to its end in `dir`. Its output is read after it exits: the
// programs run here (initdb, chown) print far less than a pipe holds.
Status RunToEnd(const std::vector<std::string>& argv, const std::string& dir) {
  os::SpawnOptions options;
  options.argv = argv;
  options.working_dir = dir;  // readable by the server user, unlike root's home
  options.stderr_mode = os::StderrMode::kPipe;
  CG_ASSIGN_OR_RETURN(os::ChildProcess child, os::SpawnChild(options));
  child.CloseStdin();
  CG_ASSIGN_OR_RETURN(os::ExitInfo exit, child.WaitExit(std::chrono::seconds(120)));
  const std::string output = DrainAvailable(child.stdout_fd()) + DrainAvailable(child.stderr_fd());
  if (exit.running()) {
    (void)child.KillAndReap(std::chrono::seconds(5));
    return Status::IOError(argv.front() + " did not finish in 120 s");
  }
  if (!exit.exited() || exit.exit_code != 0) {
    std::string command;
    for (const std::string& a : argv) command += (command.empty() ? "" : " ") + a;
    return Status::IOError(command + ": " + exit.ToString() + ":\n" + output);
  }
  return Status::Ok();
}

std::string ReadText(const fs::path& p) {
  std::ifstream in(p);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

}  // namespace

StatusOr<std::unique_ptr<PgServer>> PgServer::Start(const PgServerOptions& options) {
  if (!options.tcp_address.empty() && options.tcp_trusted_cidr.empty()) {
    return Status::InvalidArgument("PgServerOptions: tcp_address needs tcp_trusted_cidr");
  }
  const fs::path bin = FindServerBinDir();
  if (bin.empty()) {
    return Status::NotFound(
        "no PostgreSQL server binaries (initdb and postgres in /usr/lib/postgresql/N/bin, or "
        "$CONVGUARD_PG_BINDIR): install Debian's postgresql package (bash scripts/setup.sh "
        "installs it)");
  }
  std::unique_ptr<PgServer> server(new PgServer());
  server->version_ = bin.parent_path().filename().string();
  // Short: a Unix socket path must fit in 107 bytes. /tmp rather than $TMPDIR, which may
  // be a folder the server user cannot enter.
  // Several servers of one process (a test that needs one of its own) get folders apart.
  static std::atomic<int> started{0};
  const int nth = started.fetch_add(1);
  server->dir_ = "/tmp/convguard-pg-" + std::to_string(os::CurrentPid()) +
                 (nth == 0 ? "" : "-" + std::to_string(nth));
  server->tcp_address_ = options.tcp_address;
  std::error_code ec;
  fs::remove_all(server->dir_, ec);
  fs::create_directories(server->dir_, ec);
  if (ec) return Status::IOError("cannot create " + server->dir_ + ": " + ec.message());
  if (RunningAsRoot()) {
    CG_RETURN_IF_ERROR(RunToEnd(
        {"chown", std::string(kServerUser) + ":" + kServerUser, server->dir_}, server->dir_));
  }
  const std::string data = server->dir_ + "/data";
  CG_RETURN_IF_ERROR(
      RunToEnd(AsServerUser({(bin / "initdb").string(), "-D", data, "-U", kSuperuser, "-A", "trust",
                             "-E", "UTF8", "--no-locale", "--no-sync", "--no-instructions"}),
               server->dir_));

  if (!options.tcp_address.empty()) {
    std::ofstream hba(data + "/pg_hba.conf", std::ios::app);
    hba << "host all all " << options.tcp_trusted_cidr << " trust\n";
    if (!hba) return Status::IOError("cannot append to " + data + "/pg_hba.conf");
  }
  server->postgres_argv_ =
      AsServerUser({(bin / "postgres").string(), "-D", data, "-k", server->dir_, "-p",
                    std::to_string(kPort), "-c", "listen_addresses=" + options.tcp_address, "-c",
                    "fsync=off", "-c", "max_connections=200", "-c", "logging_collector=on", "-c",
                    "log_directory=" + server->dir_, "-c", "log_filename=server.log"});
  CG_RETURN_IF_ERROR(server->Launch());
  return server;
}

Status PgServer::Launch() {
  os::SpawnOptions options;
  options.argv = postgres_argv_;
  options.working_dir = dir_;
  options.stderr_mode = os::StderrMode::kDevNull;  // the log goes to server.log
  options.die_with_parent = true;                  // (cleared where setpriv changes user)
  CG_ASSIGN_OR_RETURN(postmaster_, os::SpawnChild(options));
  postmaster_.CloseStdin();

  // Ready when a connection succeeds.
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  Status last = Status::Ok();
  while (true) {
    StatusOr<std::unique_ptr<pg::Connection>> conn =
        pg::Connection::Open(KeywordConnInfo("postgres"), 2);
    if (conn.ok()) return Status::Ok();
    last = conn.status();
    StatusOr<os::ExitInfo> exit = postmaster_.WaitExit(std::chrono::milliseconds(50));
    if (exit.ok() && !exit->running()) {
      postmaster_ = os::ChildProcess();
      return Status::IOError("postgres " + exit->ToString() + "; server.log:\n" +
                             ReadText(dir_ + "/server.log"));
    }
    if (std::chrono::steady_clock::now() > give_up) {
      return Status::IOError("postgres did not accept connections in 60 s: " + last.message());
    }
  }
}

Status PgServer::Stop() {
  if (postmaster_.empty()) return Status::Ok();
  // SIGINT is PostgreSQL's fast shutdown: sessions end, transactions roll back, the data
  // is checkpointed. Only the postmaster is in its process group: every backend puts
  // itself in a group of its own.
  (void)postmaster_.KillGroup(SIGINT);
  StatusOr<os::ExitInfo> exit = postmaster_.WaitExit(std::chrono::seconds(30));
  Status s = Status::Ok();
  if (!exit.ok() || exit->running()) {
    (void)postmaster_.KillAndReap(std::chrono::seconds(5));
    s = Status::IOError("postgres did not stop in 30 s after SIGINT (killed)");
  }
  postmaster_ = os::ChildProcess();
  return s;
}

Status PgServer::StartAgain() {
  if (!postmaster_.empty()) return Status::Ok();
  return Launch();
}

PgServer::~PgServer() {
  (void)Stop();
  std::error_code ec;
  if (!dir_.empty()) fs::remove_all(dir_, ec);
}

int PgServer::port() const { return kPort; }

std::string PgServer::KeywordConnInfo(const std::string& db) const {
  return "host=" + dir_ + " port=" + std::to_string(kPort) + " user=" + kSuperuser +
         " dbname=" + db;
}

std::string PgServer::TcpConnInfo(const std::string& db) const {
  if (tcp_address_.empty()) return "";
  return "host=" + tcp_address_ + " port=" + std::to_string(kPort) + " user=" + kSuperuser +
         " dbname=" + db;
}

std::string PgServer::UriConnInfo(const std::string& db) const {
  return std::string("postgresql://") + kSuperuser + "@/" + db + "?host=" + dir_ +
         "&port=" + std::to_string(kPort);
}

StatusOr<std::string> PgServer::CreateDatabase(const std::string& tag) {
  std::string name = "cg_" + std::to_string(++databases_) + "_";
  for (char c : tag) {
    name += (std::isalnum(static_cast<unsigned char>(c)) != 0)
                ? static_cast<char>(std::tolower(static_cast<unsigned char>(c)))
                : '_';
  }
  name = name.substr(0, 60);
  // An identifier cannot be a query parameter; `name` is made of [a-z0-9_] above.
  // The database sorts text as people do (ICU's en-US: case and punctuation count for
  // little), not bytewise as the cluster's C locale would: the store must not depend on
  // the database's collation. Servers without ICU get the cluster's default.
  if (Exec("postgres",
           "CREATE DATABASE " + name + " TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US'")
          .ok()) {
    return name;
  }
  CG_RETURN_IF_ERROR(Exec("postgres", "CREATE DATABASE " + name));
  return name;
}

Status PgServer::Exec(const std::string& db, const std::string& sql) const {
  CG_ASSIGN_OR_RETURN(std::unique_ptr<pg::Connection> conn,
                      pg::Connection::Open(KeywordConnInfo(db), 10));
  return conn->ExecScript(sql.c_str(), "test SQL");
}

std::unique_ptr<PgServer>& PgServerEnvironment::server() {
  static std::unique_ptr<PgServer> s;
  return s;
}

std::string& PgServerEnvironment::reason() {
  static std::string r;
  return r;
}

void PgServerEnvironment::SetUp() {
  StatusOr<std::unique_ptr<PgServer>> s = PgServer::Start();
  if (s.ok()) {
    server() = std::move(*s);
  } else {
    reason() = s.status().message();
  }
}

void PgServerEnvironment::TearDown() { server().reset(); }

PgServer* PgServerEnvironment::Server(std::string* why) {
  if (!server() && why != nullptr) *why = reason();
  return server().get();
}

}  // namespace convguard::testing_support
