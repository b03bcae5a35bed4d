// A relay that cuts PostgreSQL connections on cue. Contract: pg_proxy.h.
#include "support/pg_proxy.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <vector>

#include "os/system.h"

namespace convguard::testing_support {
namespace {

namespace fs = std::filesystem;

// A Unix socket address for `path`; false when it does not fit.
bool SocketAddress(const std::string& path, sockaddr_un* address) {
  std::memset(address, 0, sizeof *address);
  address->sun_family = AF_UNIX;
  if (path.size() >= sizeof address->sun_path) return false;
  std::memcpy(address->sun_path, path.c_str(), path.size() + 1);
  return true;
}

bool WriteAll(int fd, const char* data, size_t size) {
  while (size > 0) {
    const ssize_t n = ::send(fd, data, size, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

struct Relayed {
  int client = -1;
  int server = -1;
};

void CloseBoth(Relayed& r) {
  if (r.client >= 0) ::close(r.client);
  if (r.server >= 0) ::close(r.server);
  r.client = r.server = -1;
}

}  // namespace

StatusOr<std::unique_ptr<PgProxy>> PgProxy::Start(const std::string& server_socket_dir, int port) {
  std::unique_ptr<PgProxy> proxy(new PgProxy());
  static std::atomic<int> count{0};
  // Short: a socket path must fit in 107 bytes.
  proxy->dir_ =
      "/tmp/convguard-pgproxy-" + std::to_string(os::CurrentPid()) + "-" + std::to_string(++count);
  std::error_code ec;
  fs::remove_all(proxy->dir_, ec);
  fs::create_directories(proxy->dir_, ec);
  if (ec) return Status::IOError("cannot create " + proxy->dir_ + ": " + ec.message());
  proxy->server_socket_ = server_socket_dir + "/.s.PGSQL." + std::to_string(port);
  sockaddr_un address;
  if (!SocketAddress(proxy->dir_ + "/.s.PGSQL." + std::to_string(port), &address)) {
    return Status::InvalidArgument("socket path too long in " + proxy->dir_);
  }
  proxy->listen_fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (proxy->listen_fd_ < 0 ||
      ::bind(proxy->listen_fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
      ::listen(proxy->listen_fd_, 16) != 0) {
    return Status::IOError("relay socket in " + proxy->dir_ + ": " + std::strerror(errno));
  }
  proxy->thread_ = std::thread([p = proxy.get()] { p->Serve(); });
  return proxy;
}

PgProxy::~PgProxy() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
  if (listen_fd_ >= 0) ::close(listen_fd_);
  std::error_code ec;
  if (!dir_.empty()) fs::remove_all(dir_, ec);
}

void PgProxy::CutOnce(const std::string& needle, Cut when) {
  std::lock_guard<std::mutex> lock(mutex_);
  needle_ = needle;
  when_ = when;
}

void PgProxy::Serve() {
  std::vector<Relayed> relayed;
  char buffer[65536];
  while (!stop_) {
    std::vector<pollfd> fds = {{listen_fd_, POLLIN, 0}};
    for (const Relayed& r : relayed) {
      fds.push_back({r.client, POLLIN, 0});
      fds.push_back({r.server, POLLIN, 0});
    }
    // Short, so that the destructor is heard soon.
    if (::poll(fds.data(), fds.size(), 50) <= 0) continue;
    // Only the connections polled above have revents; one accepted now waits for the next
    // poll (reading it now could block this thread on a socket with nothing to read).
    const size_t polled = relayed.size();
    if ((fds[0].revents & POLLIN) != 0) {
      Relayed r;
      r.client = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      sockaddr_un address;
      r.server = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
      if (r.client < 0 || r.server < 0 || !SocketAddress(server_socket_, &address) ||
          ::connect(r.server, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
        CloseBoth(r);  // the client sees the server gone, as it is
      } else {
        relayed.push_back(r);
      }
    }
    for (size_t i = 0; i < polled; ++i) {
      Relayed& r = relayed[i];
      const short from_client = fds[1 + 2 * i].revents;
      const short from_server = fds[2 + 2 * i].revents;
      if ((from_client & (POLLIN | POLLHUP | POLLERR)) != 0) {
        const ssize_t n = ::read(r.client, buffer, sizeof buffer);
        if (n <= 0) {
          CloseBoth(r);
          continue;
        }
        const std::string_view chunk(buffer, static_cast<size_t>(n));
        std::string needle;
        Cut when;
        {
          std::lock_guard<std::mutex> lock(mutex_);
          if (!needle_.empty() && chunk.find(needle_) != std::string_view::npos) {
            needle.swap(needle_);
            when = when_;
          }
        }
        if (!needle.empty()) {
          if (when == Cut::kAfterReply && WriteAll(r.server, buffer, chunk.size())) {
            // The server's answer says it is done with the message; it is not relayed.
            pollfd answer = {r.server, POLLIN, 0};
            if (::poll(&answer, 1, 10000) > 0) (void)::read(r.server, buffer, sizeof buffer);
          }
          CloseBoth(r);
          ++cuts_;
          continue;
        }
        if (!WriteAll(r.server, buffer, chunk.size())) {
          CloseBoth(r);
          continue;
        }
      }
      if ((from_server & (POLLIN | POLLHUP | POLLERR)) != 0) {
        const ssize_t n = ::read(r.server, buffer, sizeof buffer);
        if (n <= 0 || !WriteAll(r.client, buffer, static_cast<size_t>(n))) CloseBoth(r);
      }
    }
    std::erase_if(relayed, [](const Relayed& r) { return r.client < 0; });
  }
  for (Relayed& r : relayed) CloseBoth(r);
}

}  // namespace convguard::testing_support
