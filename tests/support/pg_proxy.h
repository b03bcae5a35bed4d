// tests/support/pg_proxy.h — a relay between PostgreSQL clients and a PgServer, on a Unix
// socket of its own, that cuts a connection at the moment a test chooses: before a
// message reaches the server, or after the server answered it (the answer never reaches
// the client). The second is the one case a restart cannot make on purpose: a COMMIT
// that the server carried out while the client never heard so.
//
// The relay listens on <socket_dir()>/.s.PGSQL.<port> (the server's port number, so a
// connection string differs from the server's in its host only) and relays bytes both
// ways without reading them, except to look for the armed needle in what clients send.
//
// Ownership: the PgProxy owns its thread, its socket and every relayed connection; the
// destructor stops the thread, closes them all and removes its folder. The server must
// outlive it. Thread-safety: CutOnce and cuts() from any thread.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "convguard/status.h"

namespace convguard::testing_support {

class PgProxy {
 public:
  enum class Cut {
    kBeforeForwarding,  // the server never gets the message holding the needle
    kAfterReply,        // the server gets it and answers; the answer is dropped
  };

  // Relays to the server whose socket is <server_socket_dir>/.s.PGSQL.<port>.
  static StatusOr<std::unique_ptr<PgProxy>> Start(const std::string& server_socket_dir, int port);
  ~PgProxy();
  PgProxy(const PgProxy&) = delete;
  PgProxy& operator=(const PgProxy&) = delete;

  // The folder holding the relay's socket (the "host" of a connection string).
  const std::string& socket_dir() const { return dir_; }

  // The next message a client sends that contains `needle` (in one read) cuts that
  // client's connection, `when`; once, then the relay is transparent again.
  void CutOnce(const std::string& needle, Cut when);
  // How many connections were cut so far.
  int cuts() const { return cuts_.load(); }

 private:
  PgProxy() = default;
  void Serve();

  std::string dir_;
  std::string server_socket_;
  int listen_fd_ = -1;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<int> cuts_{0};
  std::mutex mutex_;  // guards needle_ and when_
  std::string needle_;
  Cut when_ = Cut::kBeforeForwarding;
};

}  // namespace convguard::testing_support
