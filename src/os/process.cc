#include "os/process.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <mutex>
#include <string_view>
#include <type_traits>

extern char** environ;

namespace convguard::os {

static_assert(std::is_same_v<pid_t, int>, "ChildProcess stores pids as int");

namespace {

// ---- the child side: only async-signal-safe code from fork to execve ----

// Where the child failed; sent with errno over the error pipe.
enum ChildStage : int32_t {
  kStageSetpgid = 1,
  kStageDup = 2,
  kStageChdir = 3,
  kStageCloseFds = 4,
  kStageExec = 5,
  kStageRlimit = 6,
};

struct ChildReport {
  int32_t stage;
  int32_t err;
};

// Everything the child needs, prepared before fork. Descriptors are all >= 3.
struct ChildPlan {
  const char* path;
  char* const* argv;
  char* const* envp;
  const char* working_dir;  // nullptr: stay
  int stdin_fd;
  int stdout_fd;
  int stderr_fd;  // -1: inherit fd 2
  int error_fd;
  bool die_with_parent;
  pid_t parent_pid;
  uint64_t address_space_limit_bytes;  // 0: unchanged
  uint64_t cpu_time_limit_s;           // 0: unchanged
};

[[noreturn]] void ChildFail(int error_fd, ChildStage stage) {
  const ChildReport report = {stage, errno};
  ssize_t n;
  do {
    n = ::write(error_fd, &report, sizeof report);
  } while (n < 0 && errno == EINTR);
  _exit(127);
}

// Closes every descriptor from `first` to `last` inclusive.
bool CloseRange(unsigned first, unsigned last) {
  if (first > last) return true;
#ifdef SYS_close_range
  if (syscall(SYS_close_range, first, last, 0) == 0) return true;
  if (errno != ENOSYS) return false;
#endif
  // Kernels before 5.9: close one by one up to the descriptor limit.
  struct rlimit lim;
  unsigned limit = 65536;
  if (getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur != RLIM_INFINITY) {
    limit = static_cast<unsigned>(std::min<rlim_t>(lim.rlim_cur, 1u << 20));
  }
  for (unsigned fd = first; fd <= last && fd < limit; ++fd) ::close(static_cast<int>(fd));
  return true;
}

[[noreturn]] void RunChild(const ChildPlan& plan) {
  const int err = plan.error_fd;

  // Our own group, so that kill(-pgid) reaches this process and everything it forks.
  if (setpgid(0, 0) != 0) ChildFail(err, kStageSetpgid);

  // SIGKILL when the parent dies, so a worker never outlives the process that judges it,
  // even if that process is itself SIGKILLed. If the parent died before prctl ran, we
  // are already an orphan: leave at once.
  if (plan.die_with_parent) {
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) ChildFail(err, kStageSetpgid);
    if (getppid() != plan.parent_pid) _exit(127);
  }

  // Sources are all >= 3 (the parent made sure), so no dup2 below clobbers another source.
  const int sources[3] = {plan.stdin_fd, plan.stdout_fd, plan.stderr_fd};
  for (int target = 0; target < 3; ++target) {
    if (sources[target] < 0) continue;
    int r;
    do {
      r = dup2(sources[target], target);  // the copy at 0..2 is not close-on-exec
    } while (r < 0 && errno == EINTR);
    if (r < 0) ChildFail(err, kStageDup);
  }

  if (plan.working_dir != nullptr && chdir(plan.working_dir) != 0) ChildFail(err, kStageChdir);

  // Caps that outlive execve: a runaway allocation fails (the program sees ENOMEM /
  // bad_alloc) instead of taking the host's memory; CPU time past the soft cap raises
  // SIGXCPU, and a few seconds more the kernel's SIGKILL.
  if (plan.address_space_limit_bytes > 0) {
    const struct rlimit as = {plan.address_space_limit_bytes, plan.address_space_limit_bytes};
    if (setrlimit(RLIMIT_AS, &as) != 0) ChildFail(err, kStageRlimit);
  }
  if (plan.cpu_time_limit_s > 0) {
    const struct rlimit cpu = {plan.cpu_time_limit_s, plan.cpu_time_limit_s + 5};
    if (setrlimit(RLIMIT_CPU, &cpu) != 0) ChildFail(err, kStageRlimit);
  }

  // Close everything but 0, 1, 2 and the error pipe (which execve closes: O_CLOEXEC), so that
  // even descriptors opened elsewhere without O_CLOEXEC do not reach the program.
  if (!CloseRange(3, static_cast<unsigned>(err) - 1) ||
      !CloseRange(static_cast<unsigned>(err) + 1, ~0u)) {
    ChildFail(err, kStageCloseFds);
  }

  // Ignored dispositions survive execve (SIGPIPE is ignored in the parent); reset them all,
  // then unblock the mask the parent blocked around fork.
  struct sigaction dfl;
  memset(&dfl, 0, sizeof dfl);
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  for (int sig = 1; sig < NSIG; ++sig) {
    if (sig == SIGKILL || sig == SIGSTOP) continue;
    sigaction(sig, &dfl, nullptr);  // fails harmlessly for signals reserved by libc
  }
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);

  execve(plan.path, plan.argv, plan.envp);
  ChildFail(err, kStageExec);
}

// ---- the parent side ----

pid_t ForkWithoutAtforkHandlers() {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
  return _Fork();
#else
  return fork();
#endif
}

int PidfdOpen(pid_t pid) {
#ifdef SYS_pidfd_open
  return static_cast<int>(syscall(SYS_pidfd_open, pid, 0));  // always O_CLOEXEC
#else
  (void)pid;
  errno = ENOSYS;
  return -1;
#endif
}

bool HasNul(std::string_view s) { return s.find('\0') != std::string_view::npos; }

std::string_view EnvName(std::string_view entry) { return entry.substr(0, entry.find('=')); }

// Builds the child's environment as "NAME=value" strings.
StatusOr<std::vector<std::string>> BuildEnvironment(const SpawnOptions& o) {
  auto check_name = [](std::string_view name, std::string_view where) -> Status {
    if (name.empty() || name.find('=') != std::string_view::npos || HasNul(name)) {
      return Status::InvalidArgument(std::string(where) + " name '" + std::string(name) +
                                     "' is invalid; a name must be non-empty and contain "
                                     "neither '=' nor a NUL byte");
    }
    return Status::Ok();
  };
  for (const std::string& name : o.env_unset) CG_RETURN_IF_ERROR(check_name(name, "env_unset"));
  for (const auto& [name, value] : o.env_set) {
    CG_RETURN_IF_ERROR(check_name(name, "env_set"));
    if (HasNul(value)) {
      return Status::InvalidArgument("env_set value of '" + name + "' contains a NUL byte");
    }
  }

  std::vector<std::string> env;
  if (!o.clear_environment && environ != nullptr) {
    for (char** e = environ; *e != nullptr; ++e) env.emplace_back(*e);
  }
  auto remove = [&env](std::string_view name) {
    std::erase_if(env, [name](const std::string& entry) { return EnvName(entry) == name; });
  };
  for (const std::string& name : o.env_unset) remove(name);
  for (const auto& [name, value] : o.env_set) {
    remove(name);
    env.push_back(name + "=" + value);
  }
  return env;
}

// The path execve will be given: argv[0] if it contains '/', else the first executable
// regular file named argv[0] in the child's PATH.
StatusOr<std::string> ResolveProgram(const std::string& name, const std::vector<std::string>& env) {
  if (name.find('/') != std::string::npos) return name;
  std::string path = "/bin:/usr/bin";
  for (const std::string& entry : env) {
    if (EnvName(entry) == "PATH") path = entry.substr(5);
  }
  size_t begin = 0;
  for (;;) {
    const size_t end = std::min(path.find(':', begin), path.size());
    std::string dir = path.substr(begin, end - begin);
    if (dir.empty()) dir = ".";
    const std::string candidate = dir + "/" + name;
    struct stat st;
    if (stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
        access(candidate.c_str(), X_OK) == 0) {
      return candidate;
    }
    if (end == path.size()) break;
    begin = end + 1;
  }
  return Status::NotFound("spawning '" + name + "': no executable named '" + name +
                          "' on PATH=" + path);
}

// Moves `fd` to a number >= 3 (keeping O_CLOEXEC), so that in the child no dup2 onto 0..2
// can clobber it. Only matters when this process runs with 0, 1 or 2 closed.
Status MoveAboveStdio(UniqueFd& fd) {
  if (!fd.valid() || fd.get() >= 3) return Status::Ok();
  const int moved = fcntl(fd.get(), F_DUPFD_CLOEXEC, 3);
  if (moved < 0) return ErrnoToStatus("fcntl(F_DUPFD_CLOEXEC)", errno);
  fd.reset(moved);
  return Status::Ok();
}

Status SetNonBlocking(const UniqueFd& fd) {
  const int flags = fcntl(fd.get(), F_GETFL);
  if (flags < 0 || fcntl(fd.get(), F_SETFL, flags | O_NONBLOCK) < 0) {
    return ErrnoToStatus("fcntl(O_NONBLOCK)", errno);
  }
  return Status::Ok();
}

StatusOr<Pipe> MakeCloexecPipe() {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return ErrnoToStatus("pipe2", errno);
  Pipe p;
  p.read.reset(fds[0]);
  p.write.reset(fds[1]);
  CG_RETURN_IF_ERROR(MoveAboveStdio(p.read));
  CG_RETURN_IF_ERROR(MoveAboveStdio(p.write));
  return p;
}

ExitInfo FromSiginfo(const siginfo_t& info) {
  switch (info.si_code) {
    case CLD_EXITED: return ExitInfo::Exited(info.si_status);
    case CLD_KILLED: return ExitInfo::Signaled(info.si_status, false);
    case CLD_DUMPED: return ExitInfo::Signaled(info.si_status, true);
    default: return ExitInfo::Running();  // stopped/continued: not requested (WEXITED only)
  }
}

std::mutex& AbandonedMutex() {
  static auto* mu = new std::mutex();
  return *mu;
}
std::vector<pid_t>& AbandonedPids() {
  static auto* pids = new std::vector<pid_t>();
  return *pids;
}

void Abandon(pid_t pid) {
  std::lock_guard<std::mutex> lock(AbandonedMutex());
  AbandonedPids().push_back(pid);
}

}  // namespace

bool ExitInfo::killed_by_sigkill() const { return state == kSignaled && signal == SIGKILL; }
bool ExitInfo::cpu_limit_reached() const { return state == kSignaled && signal == SIGXCPU; }

std::string ExitInfo::ToString() const {
  switch (state) {
    case kRunning: return "still running";
    case kExited: return "exited with code " + std::to_string(exit_code);
    case kSignaled: {
      const char* abbrev = sigabbrev_np(signal);
      std::string s = "killed by signal " + std::to_string(signal);
      if (abbrev != nullptr) s += std::string(" (SIG") + abbrev + ")";
      if (core_dumped) s += ", core dumped";
      return s;
    }
  }
  return "unknown";
}

int ReapAbandonedChildren() {
  std::lock_guard<std::mutex> lock(AbandonedMutex());
  std::erase_if(AbandonedPids(), [](pid_t pid) {
    siginfo_t info;
    memset(&info, 0, sizeof info);
    if (waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG) != 0) {
      return errno == ECHILD;  // not ours any more: nothing left to reap
    }
    return info.si_pid == pid;
  });
  return static_cast<int>(AbandonedPids().size());
}

StatusOr<ChildProcess> SpawnChild(const SpawnOptions& options) {
  if (options.argv.empty() || options.argv[0].empty()) {
    return Status::InvalidArgument("spawn: argv is empty; argv[0] must name the program");
  }
  for (size_t i = 0; i < options.argv.size(); ++i) {
    if (HasNul(options.argv[i])) {
      return Status::InvalidArgument("spawn: argv[" + std::to_string(i) + "] contains a NUL byte");
    }
  }
  if (HasNul(options.working_dir)) {
    return Status::InvalidArgument("spawn: working_dir contains a NUL byte");
  }
  const std::string& name = options.argv[0];

  ReapAbandonedChildren();
  IgnoreSigpipe();

  CG_ASSIGN_OR_RETURN(std::vector<std::string> env, BuildEnvironment(options));
  CG_ASSIGN_OR_RETURN(const std::string path, ResolveProgram(name, env));

  // Descriptors: the child's ends are dup2'ed onto 0..2; ours stay CLOEXEC and become
  // non-blocking (separate open file descriptions, so the child's ends stay blocking).
  CG_ASSIGN_OR_RETURN(Pipe in, MakeCloexecPipe());
  CG_ASSIGN_OR_RETURN(Pipe out, MakeCloexecPipe());
  CG_ASSIGN_OR_RETURN(Pipe errpipe, MakeCloexecPipe());
  Pipe err;
  UniqueFd child_stderr;
  if (options.stderr_mode == StderrMode::kPipe) {
    CG_ASSIGN_OR_RETURN(err, MakeCloexecPipe());
    CG_RETURN_IF_ERROR(SetNonBlocking(err.read));
    child_stderr = std::move(err.write);
  } else if (options.stderr_mode == StderrMode::kDevNull) {
    child_stderr.reset(open("/dev/null", O_WRONLY | O_CLOEXEC));
    if (!child_stderr.valid())
      return ErrnoToStatus("spawning '" + name + "': open /dev/null", errno);
    CG_RETURN_IF_ERROR(MoveAboveStdio(child_stderr));
  }
  CG_RETURN_IF_ERROR(SetNonBlocking(in.write));
  CG_RETURN_IF_ERROR(SetNonBlocking(out.read));

  // argv and envp as the char* arrays execve wants; the strings outlive the fork.
  std::vector<std::string> argv_storage = options.argv;
  std::vector<char*> argv_ptrs;
  for (std::string& a : argv_storage) argv_ptrs.push_back(a.data());
  argv_ptrs.push_back(nullptr);
  std::vector<char*> env_ptrs;
  for (std::string& e : env) env_ptrs.push_back(e.data());
  env_ptrs.push_back(nullptr);

  const ChildPlan plan = {
      path.c_str(),
      argv_ptrs.data(),
      env_ptrs.data(),
      options.working_dir.empty() ? nullptr : options.working_dir.c_str(),
      in.read.get(),
      out.write.get(),
      child_stderr.valid() ? child_stderr.get() : -1,
      errpipe.write.get(),
      options.die_with_parent,
      getpid(),
      options.address_space_limit_bytes,
      options.cpu_time_limit_s,
  };

  // No handler of ours may run in the child before it resets dispositions.
  sigset_t all, saved;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &saved);
  const pid_t pid = ForkWithoutAtforkHandlers();
  if (pid == 0) RunChild(plan);
  const int fork_errno = errno;
  pthread_sigmask(SIG_SETMASK, &saved, nullptr);
  if (pid < 0) return ErrnoToStatus("spawning '" + name + "': fork", fork_errno);

  // Also from this side, so the group exists before we return whichever runs first. EACCES
  // (the child has already exec'ed) and ESRCH are expected and harmless.
  setpgid(pid, pid);

  in.read.reset();
  out.write.reset();
  child_stderr.reset();
  errpipe.write.reset();

  ChildReport report;
  size_t got = 0;
  while (got < sizeof report) {
    const ssize_t n =
        ::read(errpipe.read.get(), reinterpret_cast<char*>(&report) + got, sizeof report - got);
    if (n > 0) {
      got += static_cast<size_t>(n);
    } else if (n == 0) {
      break;
    } else if (errno != EINTR) {
      break;  // cannot happen on a valid pipe; treated as "no report"
    }
  }

  if (got == sizeof report) {
    // The child failed before or in execve and exits with 127 at once: reap it.
    siginfo_t info;
    while (waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED) != 0 && errno == EINTR) {
    }
    std::string context = "spawning '" + name + "': ";
    switch (report.stage) {
      case kStageSetpgid: context += "setpgid in the child"; break;
      case kStageDup: context += "dup2 of the child's standard descriptors"; break;
      case kStageChdir: context += "chdir '" + options.working_dir + "'"; break;
      case kStageCloseFds: context += "closing inherited descriptors in the child"; break;
      case kStageExec: context += "execve '" + path + "'"; break;
      case kStageRlimit: context += "setrlimit (address space or CPU time) in the child"; break;
      default: context += "unknown step " + std::to_string(report.stage); break;
    }
    return ErrnoToStatus(context, report.err);
  }

  ChildProcess child;
  child.pid_ = pid;
  child.pgid_ = pid;
  child.program_ = path;
  child.stdin_ = std::move(in.write);
  child.stdout_ = std::move(out.read);
  child.stderr_ = std::move(err.read);
  child.pidfd_.reset(PidfdOpen(pid));  // -1 (polling fallback) on old kernels
  child.destructor_grace_ = options.destructor_grace;
  if (got != 0) {
    // A truncated report: the child is in an unknown state. Kill it; report.
    (void)child.KillAndReap(options.destructor_grace);
    return Status::Internal("spawning '" + name + "': truncated report from the child");
  }
  return child;
}

ChildProcess::~ChildProcess() { Terminate(); }

ChildProcess::ChildProcess(ChildProcess&& other) noexcept
    : pid_(other.pid_),
      pgid_(other.pgid_),
      program_(std::move(other.program_)),
      stdin_(std::move(other.stdin_)),
      stdout_(std::move(other.stdout_)),
      stderr_(std::move(other.stderr_)),
      pidfd_(std::move(other.pidfd_)),
      destructor_grace_(other.destructor_grace_),
      exit_info_(other.exit_info_) {
  other.Clear();
}

ChildProcess& ChildProcess::operator=(ChildProcess&& other) noexcept {
  if (this == &other) return *this;
  Terminate();
  pid_ = other.pid_;
  pgid_ = other.pgid_;
  program_ = std::move(other.program_);
  stdin_ = std::move(other.stdin_);
  stdout_ = std::move(other.stdout_);
  stderr_ = std::move(other.stderr_);
  pidfd_ = std::move(other.pidfd_);
  destructor_grace_ = other.destructor_grace_;
  exit_info_ = other.exit_info_;
  other.Clear();
  return *this;
}

void ChildProcess::Clear() {
  pid_ = -1;
  pgid_ = -1;
  program_.clear();
  stdin_.reset();
  stdout_.reset();
  stderr_.reset();
  pidfd_.reset();
  exit_info_.reset();
}

void ChildProcess::Terminate() {
  if (!empty() && !exit_info_.has_value()) {
    (void)KillGroup(SIGKILL);
    StatusOr<ExitInfo> info = WaitExit(destructor_grace_);
    if (info.ok() && info->running()) Abandon(pid_);
  }
  Clear();
}

std::string ChildProcess::Describe() const {
  if (empty()) return "no process";
  return "pid " + std::to_string(pid_) + " (" + program_ + ")";
}

Status ChildProcess::KillGroup(int signal) {
  if (empty()) return Status::Internal("KillGroup on an empty ChildProcess");
  if (exit_info_.has_value()) return Status::Ok();
  // kill(0, ...) would signal our own group and kill(-1, ...) every process we may signal.
  if (pgid_ <= 1)
    return Status::Internal("refusing to signal process group " + std::to_string(pgid_));
  if (kill(-pgid_, signal) != 0 && errno != ESRCH) {
    return ErrnoToStatus(
        "kill(-" + std::to_string(pgid_) + ", " + std::to_string(signal) + ") for " + Describe(),
        errno);
  }
  return Status::Ok();
}

StatusOr<ExitInfo> ChildProcess::WaitExit(Duration timeout) {
  if (empty()) return Status::Internal("WaitExit on an empty ChildProcess");
  if (exit_info_.has_value()) return *exit_info_;
  const Deadline deadline = Deadline::After(timeout);
  Duration backoff = std::chrono::microseconds(100);
  for (;;) {
    siginfo_t info;
    memset(&info, 0, sizeof info);
    if (waitid(P_PID, static_cast<id_t>(pid_), &info, WEXITED | WNOHANG | WNOWAIT) != 0) {
      if (errno == EINTR) continue;
      if (errno == ECHILD) {
        return Status::Internal(Describe() +
                                " is no longer our child: something else in this process "
                                "reaped it (waitpid(-1) or SIGCHLD set to SIG_IGN)");
      }
      return ErrnoToStatus("waitid for " + Describe(), errno);
    }
    if (info.si_pid == pid_) {
      // Dead but unreaped: its pid still pins the group id, so sweeping the group cannot hit
      // a recycled one. Helpers left in the group die here; init reaps them.
      kill(-pgid_, SIGKILL);
      siginfo_t reaped;
      memset(&reaped, 0, sizeof reaped);
      while (waitid(P_PID, static_cast<id_t>(pid_), &reaped, WEXITED) != 0) {
        if (errno != EINTR) return ErrnoToStatus("reaping " + Describe(), errno);
      }
      exit_info_ = FromSiginfo(reaped);
      pidfd_.reset();
      return *exit_info_;
    }
    if (deadline.Expired()) return ExitInfo::Running();
    if (pidfd_.valid()) {
      // Readable the moment the process ends; the loop then reaps it.
      CG_ASSIGN_OR_RETURN(const bool ended, WaitReadable(pidfd_.get(), deadline));
      (void)ended;
    } else {
      RealClock().SleepFor(std::min(backoff, deadline.Remaining()));
      backoff = std::min<Duration>(backoff * 2, std::chrono::milliseconds(10));
    }
  }
}

StatusOr<ExitInfo> ChildProcess::KillAndReap(Duration grace) {
  if (empty()) return Status::Internal("KillAndReap on an empty ChildProcess");
  if (exit_info_.has_value()) return *exit_info_;
  CG_RETURN_IF_ERROR(KillGroup(SIGKILL));
  CG_ASSIGN_OR_RETURN(ExitInfo info, WaitExit(grace));
  if (info.running()) {
    return Status::IOError("process " + std::to_string(pid_) + " did not die within " +
                           FormatDuration(std::max(grace, Duration::zero())) +
                           " after SIGKILL to its process group (" + program_ +
                           "; it is probably stuck in an uninterruptible kernel call, such as "
                           "a GPU driver wait)");
  }
  return info;
}

}  // namespace convguard::os
