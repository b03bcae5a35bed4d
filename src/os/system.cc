#include "os/system.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <set>
#include <sstream>

#include "os/pipe_io.h"

namespace convguard::os {
namespace {

std::atomic<int> g_interrupt_signal{0};
std::atomic<bool> g_handlers_installed{false};

void OnInterrupt(int sig) {
  int expected = 0;
  if (!g_interrupt_signal.compare_exchange_strong(expected, sig) && expected == sig) {
    // Second time: the user insists. Restore the default action and re-raise.
    signal(sig, SIG_DFL);
    raise(sig);
  }
}

}  // namespace

StatusOr<int> DetachStdoutForProtocol() {
  const int protocol_fd = fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 3);
  if (protocol_fd < 0) return ErrnoToStatus("duplicating stdout for the protocol", errno);
  if (dup2(STDERR_FILENO, STDOUT_FILENO) < 0) {
    const int err = errno;
    close(protocol_fd);
    return ErrnoToStatus("pointing stdout at stderr", err);
  }
  return protocol_fd;
}

StatusOr<std::string> SelfExecutablePath() {
  char buf[PATH_MAX];
  const ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n < 0) return ErrnoToStatus("readlink /proc/self/exe", errno);
  return std::string(buf, static_cast<size_t>(n));
}

std::string Hostname() {
  char buf[256] = {};
  if (gethostname(buf, sizeof buf - 1) != 0) return "localhost";
  return buf;
}

int CurrentPid() { return static_cast<int>(getpid()); }

StatusOr<uint64_t> ProcessStartTicks(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  if (!in) return Status::NotFound("no process " + std::to_string(pid));
  std::string line;
  std::getline(in, line);
  // The command name (field 2) is in parentheses and may contain spaces or ')'; the
  // fields after the LAST ')' are plain numbers: state is field 3, starttime field 22.
  const size_t close = line.rfind(')');
  if (close == std::string::npos) return Status::IOError("unreadable /proc/PID/stat");
  std::istringstream rest(line.substr(close + 1));
  std::string field;
  for (int index = 3; rest >> field; ++index) {
    if (index == 22) {
      uint64_t ticks = 0;
      for (char ch : field) {
        if (ch < '0' || ch > '9') return Status::IOError("bad starttime in /proc/PID/stat");
        ticks = ticks * 10 + static_cast<uint64_t>(ch - '0');
      }
      return ticks;
    }
  }
  return Status::IOError("short /proc/PID/stat");
}

bool IsProcessAlive(int pid, uint64_t start_ticks) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  if (!in) return false;
  std::string line;
  std::getline(in, line);
  const size_t close = line.rfind(')');
  if (close == std::string::npos || close + 2 >= line.size()) return false;
  const char state = line[close + 2];
  if (state == 'Z' || state == 'X') return false;
  StatusOr<uint64_t> ticks = ProcessStartTicks(pid);
  return ticks.ok() && *ticks == start_ticks;
}

bool IsTerminal(int fd) { return isatty(fd) == 1; }

int TerminalColumns(int fd) {
  winsize ws{};
  if (ioctl(fd, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
  return 80;
}

void InstallInterruptHandlers() {
  if (g_handlers_installed.exchange(true)) return;
  struct sigaction sa {};
  sa.sa_handler = OnInterrupt;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART: a blocked poll() returns with EINTR
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

bool InterruptRequested() { return g_interrupt_signal.load() != 0; }
int InterruptSignal() { return g_interrupt_signal.load(); }
void ClearInterrupt() { g_interrupt_signal.store(0); }

StatusOr<std::vector<int>> PollReadable(std::span<const int> fds, Deadline deadline) {
  std::vector<pollfd> pfds;
  pfds.reserve(fds.size());
  for (int fd : fds) {
    if (fd >= 0) pfds.push_back(pollfd{fd, POLLIN, 0});
  }
  int timeout_ms = -1;
  if (!deadline.is_never()) {
    const Duration left = deadline.RemainingAt(RealClock().Now());
    // Round up so that we never wake before the deadline and spin.
    const auto ms = std::chrono::ceil<std::chrono::milliseconds>(left).count();
    timeout_ms = static_cast<int>(std::min<int64_t>(ms, INT_MAX));
  }
  const int n = poll(pfds.data(), pfds.size(), timeout_ms);
  std::vector<int> ready;
  if (n < 0) {
    if (errno == EINTR) return ready;
    return ErrnoToStatus("poll", errno);
  }
  for (const pollfd& p : pfds) {
    if (p.revents & (POLLIN | POLLHUP | POLLERR | POLLNVAL)) ready.push_back(p.fd);
  }
  return ready;
}

uint64_t PhysicalMemoryBytes() {
  const long pages = sysconf(_SC_PHYS_PAGES);
  const long page = sysconf(_SC_PAGESIZE);
  if (pages <= 0 || page <= 0) return 0;
  return static_cast<uint64_t>(pages) * static_cast<uint64_t>(page);
}

std::string UtcNowIso8601() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::optional<std::string> GetEnv(const std::string& name) {
  const char* v = std::getenv(name.c_str());
  if (v == nullptr) return std::nullopt;
  return std::string(v);
}

std::vector<std::string> EnvironmentWithPrefixes(std::span<const std::string_view> prefixes) {
  std::vector<std::string> out;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    const std::string_view entry(*e);
    for (std::string_view prefix : prefixes) {
      if (entry.starts_with(prefix)) {
        out.emplace_back(entry);
        break;
      }
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

StatusOr<std::vector<std::string>> MappedFiles() {
  std::ifstream maps("/proc/self/maps");
  if (!maps) return Status::Unsupported("/proc/self/maps cannot be read");
  std::set<std::string> files;
  std::string line;
  while (std::getline(maps, line)) {
    // "ADDRESS PERMS OFFSET DEV INODE   PATH": the path starts at the first '/' after the
    // five fixed fields; a deleted file ends in " (deleted)".
    const size_t slash = line.find('/');
    if (slash == std::string::npos) continue;
    const std::string path = line.substr(slash);
    if (path.starts_with("/dev/") || path.ends_with(" (deleted)") ||
        path.find("memfd:") != std::string::npos) {
      continue;
    }
    files.insert(path);
  }
  return std::vector<std::string>(files.begin(), files.end());
}

std::string BootId() {
  std::ifstream in("/proc/sys/kernel/random/boot_id");
  std::string id;
  std::getline(in, id);
  return in ? id : std::string();
}

void BlockForeverInSystemCall() {
  // sigsuspend with every blockable signal in the mask sleeps in the kernel until SIGKILL
  // (or SIGSTOP): the shape of a worker stuck inside a driver call.
  sigset_t all_blockable;
  sigfillset(&all_blockable);
  for (;;) sigsuspend(&all_blockable);
}

}  // namespace convguard::os
