// os/process.h — starting a worker process in its own process group, and ending it.
//
// This is where isolation is made. A child runs in a new process group (it is the group
// leader, pgid == pid) so that the watchdog can end it and every helper it forked with one
// kill(-pgid, SIGKILL). It talks to us only through the pipes set up here: its stdin
// carries requests, its stdout replies, its stderr goes where SpawnOptions says. It
// inherits no other descriptor of ours, no ignored signal disposition and no blocked
// signal mask.
//
// How a child is started (fork + execve, never a shell):
//   - everything the child needs (argv, envp, the resolved program path) is built before
//     fork; between fork and execve the child calls only async-signal-safe functions;
//     fork is glibc's _Fork, which skips pthread_atfork handlers of libraries in this
//     process (the child execs at once and needs none of them);
//   - all signals are blocked in the parent around fork so that no handler of ours runs in
//     the child; the child resets every disposition to SIG_DFL and unblocks all signals;
//   - setpgid(0, 0) in the child and setpgid(pid, pid) in the parent: whichever runs first
//     wins, so the group exists by the time SpawnChild returns (no kill-before-setpgid race);
//   - the child closes every descriptor except 0, 1, 2 (close_range; a loop up to
//     RLIMIT_NOFILE where that system call is missing), so nothing leaks into workers even
//     from code that opened descriptors without O_CLOEXEC;
//   - a failure anywhere in the child before execve succeeds (chdir, dup2, execve...) is
//     written, as a stage and an errno, to an O_CLOEXEC error pipe; execve closes that
//     pipe on success, so SpawnChild waits for exactly one of: EOF (running the program) or
//     a failure report, which becomes a Status naming the program and the stage. SpawnChild
//     therefore returns only after execve has succeeded or failed.
//
// Reaping and process groups: WaitExit notices the leader's death without reaping it
// (waitid WNOWAIT), sends SIGKILL to the whole group while the unreaped leader still pins
// the group id, and only then reaps. So helpers a worker forked into its group die with it
// even when the leader exits normally, and a group id is never signalled after the kernel
// could have recycled it. Killed helpers are reparented to init (or to the nearest
// subreaper), which reaps them; they are not our children and cannot become our zombies.
// A helper that left the group (setsid, setpgid) escapes all of this; workers must not do
// that.
//
// Why convguard is not a subreaper (prctl PR_SET_CHILD_SUBREAPER): orphaned helpers would
// become our children, and reaping them needs waitpid(-1), which would also steal the exit
// status of children that other code in this process (a host Python program, a library)
// started and waits for. Group-kill already ends the helpers; init reaps them.
//
// Contract: nothing else in this process may reap a ChildProcess's pid (no waitpid(-1), no
// SIGCHLD set to SIG_IGN). If the pid is reaped elsewhere, WaitExit reports kInternal.
//
// Descriptors held here are O_CLOEXEC and O_NONBLOCK: use pipe_io's ReadSome/WriteAll.
//
// Thread-safety: a ChildProcess is owned by one thread. Its descriptors may be used by
// other threads (one thread can block in ReadSome on stdout_fd() while the owner calls
// KillGroup), but its methods must not be called concurrently with each other.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "convguard/status.h"
#include "os/clock.h"
#include "os/pipe_io.h"

namespace convguard::os {

// Where the child's stderr goes.
enum class StderrMode {
  kInherit,  // the parent's stderr (fd 2): the default, and it never needs draining
  kDevNull,  // /dev/null
  kPipe,     // a pipe the parent reads from ChildProcess::stderr_fd(). The parent MUST drain
             // it: a child that fills the pipe (64 KiB on Linux) blocks in write() and looks
             // hung.
};

struct SpawnOptions {
  // argv[0] names the program. A name containing '/' is used as is (relative to
  // working_dir when that is set); a bare name is searched on the child's PATH (after the
  // overrides below; "/bin:/usr/bin" if unset). No shell is involved, and a script
  // without a "#!" line fails with ENOEXEC rather than being run by /bin/sh.
  // REQUIRED: non-empty, no element contains a NUL byte.
  std::vector<std::string> argv;

  // The child's environment: this process's environment, or an empty one when
  // clear_environment is set; then every name in env_unset is removed; then each
  // (name, value) of env_set is added or replaces the existing value (a later entry with
  // the same name wins). Names must be non-empty and contain neither '=' nor NUL.
  bool clear_environment = false;
  std::vector<std::string> env_unset;
  std::vector<std::pair<std::string, std::string>> env_set;

  // Directory the child starts in; empty means this process's current directory.
  std::string working_dir;

  StderrMode stderr_mode = StderrMode::kInherit;

  // The child gets SIGKILL when the thread that spawned it dies (PR_SET_PDEATHSIG), so
  // that a worker never outlives a deciding process that was itself killed. Spawn from a
  // thread that lives as long as the child should. Only the group leader is covered;
  // helpers it forked die when the leader's ChildProcess sweeps the group, or live on if
  // nobody does.
  bool die_with_parent = false;

  // Resource caps set in the child before execve (setrlimit); 0 leaves the inherited one.
  // The address space cap (RLIMIT_AS, bytes) makes allocations beyond it fail; the CPU
  // time cap (RLIMIT_CPU, seconds of CPU the process may use in all) sends SIGXCPU when
  // reached and SIGKILL 5 s of CPU later.
  uint64_t address_space_limit_bytes = 0;
  uint64_t cpu_time_limit_s = 0;

  // How long the ChildProcess destructor waits for the group leader to die after SIGKILL.
  // If it does not (a process stuck in an uninterruptible driver call), the pid is put on a
  // process-wide list that later SpawnChild calls (and ReapAbandonedChildren) retry without
  // blocking, so it is reaped once it finally dies.
  Duration destructor_grace = std::chrono::seconds(2);
};

// How a process ended, or that it has not.
struct ExitInfo {
  enum State { kRunning, kExited, kSignaled };
  State state = kRunning;
  int exit_code = 0;         // kExited: the status passed to exit()
  int signal = 0;            // kSignaled: the signal that ended it
  bool core_dumped = false;  // kSignaled: the kernel reported a core dump

  static ExitInfo Running() { return {}; }
  static ExitInfo Exited(int code) { return {kExited, code, 0, false}; }
  static ExitInfo Signaled(int sig, bool core) { return {kSignaled, 0, sig, core}; }

  bool running() const { return state == kRunning; }
  bool exited() const { return state == kExited; }
  bool signaled() const { return state == kSignaled; }
  // Killed by SIGKILL: what an outside hand (a person, the kernel's OOM killer) sends; a
  // process that crashes on its own dies of SIGSEGV, SIGBUS, SIGABRT, ... or exits.
  bool killed_by_sigkill() const;
  // Ended by SIGXCPU: the CPU time cap (SpawnOptions::cpu_time_limit_s) was reached.
  bool cpu_limit_reached() const;

  // "still running", "exited with code 3", "killed by signal 9 (SIGKILL)",
  // "killed by signal 11 (SIGSEGV), core dumped".
  std::string ToString() const;
};

class ChildProcess;

// Starts a child as described above. Returns only after execve has succeeded in the child.
// Reads this process's environment (environ): do not call setenv/putenv concurrently.
// Errors (all before or instead of a running child; nothing is left behind):
//   kInvalidArgument  empty argv, a NUL byte in a string, a bad environment name;
//   kNotFound         a bare program name not on PATH; execve or chdir gave ENOENT;
//   kIOError          pipe/fork failure, or execve/chdir/dup2 failing in the child with
//                     any other errno (EACCES, ENOEXEC, ...). Messages name the program
//                     and the failing step, with the errno text.
StatusOr<ChildProcess> SpawnChild(const SpawnOptions& options);

// Retries, without blocking, the reaping of children whose ChildProcess gave up waiting
// for them. Returns how many are still not reaped. SpawnChild calls it.
int ReapAbandonedChildren();

// A running (or ended but not yet destroyed) child process and the parent's ends of its
// pipes. Movable, not copyable. The destructor kills the group (SIGKILL) and reaps the
// leader if that has not happened yet, so a ChildProcess never leaks a running worker or a
// zombie. A default-constructed or moved-from ChildProcess is empty (pid() == -1) and its
// destructor does nothing.
class ChildProcess {
 public:
  ChildProcess() = default;
  ~ChildProcess();
  ChildProcess(ChildProcess&& other) noexcept;
  ChildProcess& operator=(ChildProcess&& other) noexcept;  // ends the current child first
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  bool empty() const { return pid_ <= 0; }
  int pid() const { return pid_; }    // pid_t; -1 when empty
  int pgid() const { return pgid_; }  // == pid(): the child leads its own group
  // "pid 1234 (/usr/bin/worker)": for messages.
  std::string Describe() const;

  // The parent's ends: write requests to stdin_fd(), read replies from stdout_fd(). Both are
  // -1 once closed or when empty. stderr_fd() is -1 unless StderrMode::kPipe.
  int stdin_fd() const { return stdin_.get(); }
  int stdout_fd() const { return stdout_.get(); }
  int stderr_fd() const { return stderr_.get(); }
  // Closes our end of the child's stdin, so the child reads EOF (asks it to finish).
  void CloseStdin() { stdin_.reset(); }

  // Sends `signal` to every process in the child's group (kill(-pgid, signal)).
  // After the leader has been reaped this does nothing and returns OK: the group was swept
  // with SIGKILL just before reaping, and its id may since have been recycled.
  // Errors: kInternal if empty; kIOError if kill() fails other than with ESRCH (no process
  // left in the group is not an error).
  Status KillGroup(int signal);

  // Waits up to `timeout` (zero: just checks) for the group leader to end. When it has
  // ended: SIGKILLs the rest of its group, reaps it, and returns how it ended; later calls
  // return the same ExitInfo. When it has not: ExitInfo::Running(). Uses a pidfd (poll
  // wakes at the moment of death) where the kernel has pidfd_open, else polls waitid with
  // short sleeps.
  // Errors: kInternal if empty or if the pid was reaped by someone else; kIOError if a
  // system call fails.
  StatusOr<ExitInfo> WaitExit(Duration timeout);

  // SIGKILL to the group, then WaitExit(grace). Returns the ExitInfo (normally "killed by
  // signal 9"; it may show an earlier natural exit). If the leader has not died within
  // `grace` — it is stuck in the kernel, typically an uninterruptible driver call — returns
  // kIOError "process N did not die within X ms after SIGKILL ..." for the caller to report;
  // SIGKILL cannot be escalated, so calling again later (or destroying) is the only remedy.
  StatusOr<ExitInfo> KillAndReap(Duration grace);

  // How the leader ended, once WaitExit/KillAndReap has reaped it.
  const std::optional<ExitInfo>& exit_info() const { return exit_info_; }

 private:
  friend StatusOr<ChildProcess> SpawnChild(const SpawnOptions& options);

  // Kills and reaps (bounded by destructor_grace_), abandoning the pid if it will not die.
  void Terminate();
  void Clear();

  int pid_ = -1;
  int pgid_ = -1;
  std::string program_;
  UniqueFd stdin_;   // write end of the child's stdin
  UniqueFd stdout_;  // read end of the child's stdout
  UniqueFd stderr_;  // read end of the child's stderr (kPipe only)
  UniqueFd pidfd_;   // -1 where pidfd_open is unavailable, and after reaping
  Duration destructor_grace_ = std::chrono::seconds(2);
  std::optional<ExitInfo> exit_info_;
};

}  // namespace convguard::os
