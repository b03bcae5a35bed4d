#include "os/pipe_io.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include <algorithm>
#include <mutex>
#include <string>

namespace convguard::os {
namespace {

std::string FdName(int fd) { return "fd " + std::to_string(fd); }

// Waits until `fd` reports one of `events` or the deadline passes. Returns true when ready
// (including error/hang-up conditions, which the following read/write will report), false
// on timeout.
StatusOr<bool> WaitReady(int fd, short events, Deadline deadline, std::string_view op) {
  for (;;) {
    struct pollfd p = {fd, events, 0};
    const Duration left = deadline.Remaining();
    struct timespec ts;
    struct timespec* timeout = nullptr;
    if (!deadline.is_never()) {
      ts.tv_sec = static_cast<time_t>(left.count() / 1000000000);
      ts.tv_nsec = static_cast<long>(left.count() % 1000000000);
      timeout = &ts;
    }
    const int n = ppoll(&p, 1, timeout, nullptr);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoToStatus(std::string(op) + " on " + FdName(fd) + ": poll", errno);
    }
    if (n == 0) {
      // ppoll may wake a hair early on some kernels; only report a timeout once it is one.
      if (deadline.Expired()) return false;
      continue;
    }
    if (p.revents & POLLNVAL) {
      return Status::IOError(std::string(op) + " on " + FdName(fd) +
                             ": the descriptor is not open");
    }
    return true;
  }
}

}  // namespace

Status ErrnoToStatus(std::string_view context, int errnum) {
  const char* desc = strerrordesc_np(errnum);
  const char* name = strerrorname_np(errnum);
  std::string message(context);
  message += ": ";
  message += desc != nullptr ? desc : "unknown error";
  message += " (";
  message += name != nullptr ? name : ("errno " + std::to_string(errnum));
  message += ")";
  if (errnum == ENOENT) return Status::NotFound(std::move(message));
  return Status::IOError(std::move(message));
}

UniqueFd& UniqueFd::operator=(UniqueFd&& other) noexcept {
  if (this != &other) reset(other.release());
  return *this;
}

int UniqueFd::release() {
  const int fd = fd_;
  fd_ = -1;
  return fd;
}

void UniqueFd::reset(int fd) {
  // close() is not retried on EINTR: on Linux the descriptor is released regardless, and a
  // retry could close a descriptor another thread has just been given.
  if (fd_ >= 0) ::close(fd_);
  fd_ = fd;
}

StatusOr<Pipe> MakePipe() {
  IgnoreSigpipe();
  int fds[2];
  if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0) return ErrnoToStatus("pipe2", errno);
  Pipe p;
  p.read.reset(fds[0]);
  p.write.reset(fds[1]);
  return p;
}

void IgnoreSigpipe() {
  static std::once_flag once;
  std::call_once(once, [] {
    struct sigaction old;
    if (sigaction(SIGPIPE, nullptr, &old) != 0) return;
    if (!(old.sa_flags & SA_SIGINFO) && old.sa_handler == SIG_DFL) {
      struct sigaction ign = {};
      ign.sa_handler = SIG_IGN;
      sigemptyset(&ign.sa_mask);
      sigaction(SIGPIPE, &ign, nullptr);
    }
  });
}

StatusOr<IoResult> WriteAll(int fd, std::string_view data, Deadline deadline) {
  return WriteAll(
      fd, std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(data.data()), data.size()),
      deadline);
}

StatusOr<IoResult> WriteAll(int fd, std::span<const uint8_t> data, Deadline deadline) {
  const int flags = fcntl(fd, F_GETFL);
  if (flags < 0) return ErrnoToStatus("write to " + FdName(fd), errno);
  const bool blocking = (flags & O_NONBLOCK) == 0;

  size_t done = 0;
  bool must_wait = blocking;  // a blocking descriptor is written only after poll says room
  while (done < data.size()) {
    if (must_wait) {
      CG_ASSIGN_OR_RETURN(const bool ready, WaitReady(fd, POLLOUT, deadline, "write"));
      if (!ready) return IoResult{IoResult::kTimeout, done};
    }
    size_t chunk = data.size() - done;
    if (blocking) chunk = std::min<size_t>(chunk, PIPE_BUF);
    const ssize_t n = ::write(fd, data.data() + done, chunk);
    if (n > 0) {
      done += static_cast<size_t>(n);
      must_wait = blocking;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      must_wait = true;
      continue;
    }
    if (n < 0 && errno == EPIPE) {
      return Status::IOError("write to " + FdName(fd) + " failed after " + std::to_string(done) +
                             " of " + std::to_string(data.size()) +
                             " bytes: the reading end is closed (EPIPE; the peer process has "
                             "probably exited)");
    }
    if (n < 0) return ErrnoToStatus("write to " + FdName(fd), errno);
    return Status::IOError("write to " + FdName(fd) + " wrote nothing");  // n == 0
  }
  return IoResult{IoResult::kData, done};
}

StatusOr<bool> WaitReadable(int fd, Deadline deadline) {
  return WaitReady(fd, POLLIN, deadline, "wait");
}

StatusOr<IoResult> ReadSome(int fd, std::span<uint8_t> buffer, Deadline deadline) {
  if (buffer.empty()) {
    return Status::InvalidArgument("read from " + FdName(fd) +
                                   ": the buffer is empty; it must hold at least 1 byte");
  }
  for (;;) {
    CG_ASSIGN_OR_RETURN(const bool ready, WaitReady(fd, POLLIN, deadline, "read"));
    if (!ready) return IoResult{IoResult::kTimeout, 0};
    const ssize_t n = ::read(fd, buffer.data(), buffer.size());
    if (n > 0) return IoResult{IoResult::kData, static_cast<size_t>(n)};
    if (n == 0) return IoResult{IoResult::kEof, 0};
    if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) {
      // Spurious readiness (or another reader took the data): wait again, unless out of time.
      if (deadline.Expired()) return IoResult{IoResult::kTimeout, 0};
      continue;
    }
    return ErrnoToStatus("read from " + FdName(fd), errno);
  }
}

}  // namespace convguard::os
