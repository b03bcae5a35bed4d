// tests/support/pg_server.h — a real PostgreSQL server for one test binary.
//
// PgServer::Start runs initdb into a new temporary folder and starts `postgres` on it,
// listening on a Unix socket in that folder only (no TCP port), with trust
// authentication for local connections; the destructor stops it (fast shutdown: SIGINT
// to the postmaster) and removes the folder. PostgreSQL refuses to run as root, so when
// the tests run as root the server runs as the `postgres` system user that Debian's
// postgresql package creates (setpriv), in a folder given to that user.
//
// The server binaries are looked for in $CONVGUARD_PG_BINDIR, then the newest
// /usr/lib/postgresql/N/bin (Debian), then /usr/local/pgsql/bin. When none holds both
// initdb and postgres, Start returns kNotFound with a message for GTEST_SKIP() that says
// what is missing and that `bash scripts/setup.sh` installs it.
//
// PgServerEnvironment starts one server for the whole test binary (register it with
// ::testing::AddGlobalTestEnvironment); tests take a fresh database each with
// CreateDatabase, which keeps the suite fast (one initdb per binary).
//
// Stop and StartAgain take the server away and bring it back on the same data folder and
// socket (a restart, as an administrator's or a failover's): for the tests of a store
// whose server goes away mid-run.
//
// Processes are started through the os layer (os::SpawnChild).
//
// Thread-safety: Start, Stop, StartAgain and the destructor from one thread at a time
// (a test may stop and start the server from a thread of its own while another uses it);
// the const methods and CreateDatabase (which opens its own connection) from any.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "convguard/status.h"
#include "os/process.h"

namespace convguard::testing_support {

struct PgServerOptions {
  // Also listen on TCP at this address (e.g. one end of a veth link), port port(); empty:
  // the Unix socket only.
  std::string tcp_address;
  // Clients of this network (CIDR, e.g. "10.213.5.2/32") may log in over TCP with trust
  // authentication. Required with tcp_address.
  std::string tcp_trusted_cidr;
};

class PgServer {
 public:
  static StatusOr<std::unique_ptr<PgServer>> Start(const PgServerOptions& options = {});
  ~PgServer();
  PgServer(const PgServer&) = delete;
  PgServer& operator=(const PgServer&) = delete;

  // The folder holding the server's Unix socket (its "host" for libpq), and the port that
  // names the socket file (.s.PGSQL.<port>) and, with PgServerOptions::tcp_address, the
  // TCP port (nothing listens on TCP otherwise).
  const std::string& socket_dir() const { return dir_; }
  int port() const;
  // The server's major version, from its binaries' folder ("15"), or "" when unknown.
  const std::string& version() const { return version_; }

  // keyword=value and URI connection strings for database `db`, as the superuser.
  std::string KeywordConnInfo(const std::string& db) const;
  std::string UriConnInfo(const std::string& db) const;
  // keyword=value over TCP to PgServerOptions::tcp_address ("" when not listening on TCP).
  std::string TcpConnInfo(const std::string& db) const;

  // Creates a new, empty database with a name unique in this server, collating text with
  // ICU's en-US where the server has ICU (so that bytewise order is not a given); returns
  // its name.
  StatusOr<std::string> CreateDatabase(const std::string& tag);
  // Runs `sql` (no parameters) as the superuser in database `db`.
  Status Exec(const std::string& db, const std::string& sql) const;

  // Stops the server (fast shutdown: every session is ended, as in a restart) and waits
  // until it has exited; its data and socket folder stay. No-op when it is stopped.
  Status Stop();
  // Starts the stopped server again on the same data and socket and waits until it
  // accepts connections. No-op when it is running.
  Status StartAgain();
  bool running() const { return !postmaster_.empty(); }

 private:
  PgServer() = default;
  // Starts `postgres` with postgres_argv_ and waits until a connection succeeds.
  Status Launch();

  std::string dir_;
  std::string version_;
  std::string tcp_address_;
  std::vector<std::string> postgres_argv_;
  os::ChildProcess postmaster_;
  int databases_ = 0;
};

// The one server of this test binary: started in SetUp, stopped in TearDown.
class PgServerEnvironment : public ::testing::Environment {
 public:
  void SetUp() override;
  void TearDown() override;

  // The server, or null with the reason (a skip message) in `why`.
  static PgServer* Server(std::string* why);

 private:
  static std::unique_ptr<PgServer>& server();
  static std::string& reason();
};

}  // namespace convguard::testing_support
