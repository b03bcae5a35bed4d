// Tests of the OS seam with real processes and real pipes: no mocks.
#include "os/process.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "os/clock.h"
#include "os/pipe_io.h"
#include "worker/framing.h"

namespace convguard::os {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

// Reads `fd` until EOF (or a 10 s safety deadline, which fails the test).
std::string ReadToEof(int fd) {
  std::string out;
  const Deadline deadline = Deadline::After(seconds(10));
  uint8_t buf[4096];
  for (;;) {
    StatusOr<IoResult> r = ReadSome(fd, buf, deadline);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    if (!r.ok() || r->eof()) break;
    if (r->timed_out()) {
      ADD_FAILURE() << "no EOF within 10 s";
      break;
    }
    out.append(reinterpret_cast<const char*>(buf), r->bytes);
  }
  return out;
}

// Reads until `out` holds a '\n' (or 10 s pass).
std::string ReadLine(int fd) {
  std::string out;
  const Deadline deadline = Deadline::After(seconds(10));
  uint8_t buf[256];
  while (out.find('\n') == std::string::npos) {
    StatusOr<IoResult> r = ReadSome(fd, buf, deadline);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    if (!r.ok() || !r->data()) break;
    out.append(reinterpret_cast<const char*>(buf), r->bytes);
  }
  return out;
}

StatusOr<ChildProcess> Spawn(std::vector<std::string> argv,
                             StderrMode stderr_mode = StderrMode::kInherit) {
  SpawnOptions o;
  o.argv = std::move(argv);
  o.stderr_mode = stderr_mode;
  return SpawnChild(o);
}

std::set<int> OpenFds(const std::string& dir) {
  std::set<int> fds;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    fds.insert(std::stoi(entry.path().filename().string()));
  }
  return fds;
}

// Fields of /proc/<pid>/stat after the command name: state and ppid. State '\0' if gone.
struct ProcStat {
  char state = '\0';
  int ppid = 0;
};
ProcStat ReadProcStat(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  ProcStat st;
  if (!std::getline(in, line)) return st;
  const size_t paren = line.rfind(')');
  if (paren == std::string::npos) return st;
  std::istringstream rest(line.substr(paren + 2));
  rest >> st.state >> st.ppid;
  return st;
}

// True once `pid` is gone or is a zombie that is not our child (init will reap it).
bool WaitUntilDead(int pid, Duration timeout) {
  const Deadline deadline = Deadline::After(timeout);
  for (;;) {
    const ProcStat st = ReadProcStat(pid);
    if (st.state == '\0' || (st.state == 'Z' && st.ppid != getpid())) return true;
    if (deadline.Expired()) return false;
    RealClock().SleepFor(milliseconds(5));
  }
}

std::string ProcStatusField(int pid, const std::string& field) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field + ":", 0) == 0) {
      std::string value = line.substr(field.size() + 1);
      value.erase(0, value.find_first_not_of(" \t"));
      return value;
    }
  }
  return "";
}

// ---------------------------------------------------------------- clock

TEST(ClockTest, FakeClockMovesOnlyWhenTold) {
  FakeClock clock;
  const TimePoint t0 = clock.Now();
  EXPECT_EQ(clock.Now(), t0);
  clock.Advance(milliseconds(5));
  EXPECT_EQ(clock.Now() - t0, milliseconds(5));
  clock.SleepFor(milliseconds(20));
  EXPECT_EQ(clock.Now() - t0, milliseconds(25));
  clock.Advance(-milliseconds(100));  // time never goes back
  EXPECT_EQ(clock.Now() - t0, milliseconds(25));
  EXPECT_EQ(clock.sleep_calls(), 1);
  EXPECT_EQ(clock.total_slept(), milliseconds(20));
}

TEST(ClockTest, DeadlineOnFakeClock) {
  FakeClock clock;
  const Deadline d = Deadline::After(milliseconds(100), clock);
  EXPECT_FALSE(d.Expired(clock));
  EXPECT_EQ(d.Remaining(clock), milliseconds(100));
  clock.Advance(milliseconds(99));
  EXPECT_EQ(d.Remaining(clock), milliseconds(1));
  clock.Advance(milliseconds(1));
  EXPECT_TRUE(d.Expired(clock));
  clock.Advance(seconds(5));
  EXPECT_EQ(d.Remaining(clock), Duration::zero());  // clamped, never negative
}

TEST(ClockTest, DeadlineNeverAndSaturation) {
  FakeClock clock;
  EXPECT_TRUE(Deadline::Never().is_never());
  EXPECT_FALSE(Deadline::Never().Expired(clock));
  EXPECT_EQ(Deadline::Never().Remaining(clock), Duration::max());
  EXPECT_TRUE(Deadline::After(Duration::max(), clock).is_never());
  EXPECT_TRUE(Deadline::After(-seconds(1), clock).Expired(clock));
  EXPECT_TRUE(Deadline::After(Duration::zero(), clock).Expired(clock));
}

TEST(ClockTest, RealClockSleepsAtLeastAsLongAsAsked) {
  Clock& clock = RealClock();
  const TimePoint t0 = clock.Now();
  clock.SleepFor(milliseconds(20));
  EXPECT_GE(clock.Now() - t0, milliseconds(20));
}

TEST(ClockTest, FormatDuration) {
  EXPECT_EQ(FormatDuration(milliseconds(1500)), "1500 ms");
  EXPECT_EQ(FormatDuration(std::chrono::microseconds(250)), "0.25 ms");
  EXPECT_EQ(FormatDuration(std::chrono::microseconds(2500)), "2.5 ms");
  EXPECT_EQ(FormatDuration(Duration::max()), "never");
}

// ---------------------------------------------------------------- pipe_io

TEST(PipeIoTest, WriteThenReadRoundTrip) {
  StatusOr<Pipe> p = MakePipe();
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  StatusOr<IoResult> w =
      WriteAll(p->write.get(), std::string_view("hello"), Deadline::After(seconds(1)));
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  EXPECT_TRUE(w->data());
  EXPECT_EQ(w->bytes, 5u);
  uint8_t buf[16];
  StatusOr<IoResult> r = ReadSome(p->read.get(), buf, Deadline::After(seconds(1)));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_TRUE(r->data());
  EXPECT_EQ(std::string(reinterpret_cast<char*>(buf), r->bytes), "hello");
}

TEST(PipeIoTest, ReadSomeTimesOutOnSilentPipe) {
  StatusOr<Pipe> p = MakePipe();
  ASSERT_TRUE(p.ok());
  uint8_t buf[16];
  const TimePoint t0 = RealClock().Now();
  StatusOr<IoResult> r = ReadSome(p->read.get(), buf, Deadline::After(milliseconds(50)));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->timed_out());
  EXPECT_EQ(r->bytes, 0u);
  EXPECT_GE(RealClock().Now() - t0, milliseconds(50));
}

TEST(PipeIoTest, ExpiredDeadlineStillReturnsWaitingData) {
  StatusOr<Pipe> p = MakePipe();
  ASSERT_TRUE(p.ok());
  ASSERT_TRUE(WriteAll(p->write.get(), std::string_view("x"), Deadline::Never()).ok());
  uint8_t buf[4];
  StatusOr<IoResult> r = ReadSome(p->read.get(), buf, Deadline::After(Duration::zero()));
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->data());
  EXPECT_EQ(r->bytes, 1u);
}

TEST(PipeIoTest, ReadSomeReportsEofWhenWriterCloses) {
  StatusOr<Pipe> p = MakePipe();
  ASSERT_TRUE(p.ok());
  p->write.reset();
  uint8_t buf[16];
  StatusOr<IoResult> r = ReadSome(p->read.get(), buf, Deadline::After(seconds(1)));
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->eof());
}

TEST(PipeIoTest, ReadSomeRejectsEmptyBufferAndClosedFd) {
  StatusOr<Pipe> p = MakePipe();
  ASSERT_TRUE(p.ok());
  StatusOr<IoResult> r = ReadSome(p->read.get(), std::span<uint8_t>(), Deadline::Never());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);

  const int fd = p->read.get();
  p->read.reset();
  uint8_t buf[4];
  r = ReadSome(fd, buf, Deadline::After(milliseconds(100)));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kIOError);
  EXPECT_NE(r.status().message().find("not open"), std::string::npos) << r.status().ToString();
}

TEST(PipeIoTest, WriteAllToClosedReaderIsIOErrorNotSigpipe) {
  StatusOr<Pipe> p = MakePipe();  // ignores SIGPIPE, or this test process would die here
  ASSERT_TRUE(p.ok());
  p->read.reset();
  StatusOr<IoResult> w =
      WriteAll(p->write.get(), std::string_view("data"), Deadline::After(seconds(1)));
  ASSERT_FALSE(w.ok());
  EXPECT_EQ(w.status().code(), StatusCode::kIOError);
  EXPECT_NE(w.status().message().find("EPIPE"), std::string::npos) << w.status().ToString();
  EXPECT_NE(w.status().message().find("reading end is closed"), std::string::npos);
}

TEST(PipeIoTest, WriteAllTimesOutWhenNobodyReads) {
  StatusOr<Pipe> p = MakePipe();
  ASSERT_TRUE(p.ok());
  const std::string big(4 << 20, 'x');  // far more than a pipe holds
  StatusOr<IoResult> w = WriteAll(p->write.get(), big, Deadline::After(milliseconds(50)));
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  EXPECT_TRUE(w->timed_out());
  EXPECT_GT(w->bytes, 0u);
  EXPECT_LT(w->bytes, big.size());
}

TEST(PipeIoTest, WriteAllTimesOutOnBlockingPipeToo) {
  int fds[2];
  ASSERT_EQ(pipe2(fds, O_CLOEXEC), 0);  // blocking ends
  UniqueFd rd(fds[0]), wr(fds[1]);
  const std::string big(4 << 20, 'x');
  StatusOr<IoResult> w = WriteAll(wr.get(), big, Deadline::After(milliseconds(50)));
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  EXPECT_TRUE(w->timed_out());
  EXPECT_LT(w->bytes, big.size());
}

TEST(PipeIoTest, WriteAllCompletesLargeWriteWithConcurrentReader) {
  StatusOr<Pipe> p = MakePipe();
  ASSERT_TRUE(p.ok());
  std::string big(3 << 20, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 131 + 7);
  std::string received;
  std::thread reader([&] { received = ReadToEof(p->read.get()); });
  StatusOr<IoResult> w = WriteAll(p->write.get(), big, Deadline::After(seconds(10)));
  p->write.reset();
  reader.join();
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  EXPECT_TRUE(w->data());
  EXPECT_EQ(w->bytes, big.size());
  EXPECT_TRUE(received == big);
}

TEST(PipeIoTest, ErrnoToStatusNamesTheError) {
  Status s = ErrnoToStatus("open '/x'", ENOENT);
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  EXPECT_EQ(s.message(), "open '/x': No such file or directory (ENOENT)");
  s = ErrnoToStatus("write", EACCES);
  EXPECT_EQ(s.code(), StatusCode::kIOError);
  EXPECT_EQ(s.message(), "write: Permission denied (EACCES)");
}

// ---------------------------------------------------------------- spawning

TEST(SpawnTest, TrueAndFalseExitCodes) {
  StatusOr<ChildProcess> t = Spawn({"/bin/true"});
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  StatusOr<ExitInfo> e = t->WaitExit(seconds(10));
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  EXPECT_TRUE(e->exited());
  EXPECT_EQ(e->exit_code, 0);
  EXPECT_EQ(e->ToString(), "exited with code 0");

  StatusOr<ChildProcess> f = Spawn({"/bin/false"});
  ASSERT_TRUE(f.ok());
  e = f->WaitExit(seconds(10));
  ASSERT_TRUE(e.ok());
  EXPECT_TRUE(e->exited());
  EXPECT_EQ(e->exit_code, 1);
  ASSERT_TRUE(f->exit_info().has_value());
  EXPECT_EQ(f->exit_info()->exit_code, 1);
  // Later calls return the same answer without waiting.
  e = f->WaitExit(Duration::zero());
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->exit_code, 1);
}

TEST(SpawnTest, CatEchoesThroughThePipes) {
  StatusOr<ChildProcess> cat = Spawn({"/bin/cat"});
  ASSERT_TRUE(cat.ok()) << cat.status().ToString();
  const std::string msg = "request one\nrequest two\n";
  StatusOr<IoResult> w = WriteAll(cat->stdin_fd(), msg, Deadline::After(seconds(5)));
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  ASSERT_TRUE(w->data());
  cat->CloseStdin();
  EXPECT_EQ(cat->stdin_fd(), -1);
  EXPECT_EQ(ReadToEof(cat->stdout_fd()), msg);
  StatusOr<ExitInfo> e = cat->WaitExit(seconds(10));
  ASSERT_TRUE(e.ok());
  EXPECT_TRUE(e->exited());
  EXPECT_EQ(e->exit_code, 0);
}

TEST(SpawnTest, CatEchoesFramesThatDecode) {
  StatusOr<ChildProcess> cat = Spawn({"cat"});  // bare name: found on PATH
  ASSERT_TRUE(cat.ok()) << cat.status().ToString();
  worker::FrameDecoder decoder;
  std::vector<std::string> sent = {R"({"op":"ping"})", R"({"op":"run","id":2})", ""};
  for (const std::string& payload : sent) {
    StatusOr<std::string> frame = worker::EncodeFrame(payload);
    ASSERT_TRUE(frame.ok());
    ASSERT_TRUE(WriteAll(cat->stdin_fd(), *frame, Deadline::After(seconds(5))).ok());
  }
  std::vector<std::string> got;
  const Deadline deadline = Deadline::After(seconds(10));
  uint8_t buf[7];  // small reads: frames arrive in pieces
  while (got.size() < sent.size()) {
    StatusOr<IoResult> r = ReadSome(cat->stdout_fd(), buf, deadline);
    ASSERT_TRUE(r.ok());
    ASSERT_TRUE(r->data()) << "stream ended early";
    decoder.Feed(std::span<const uint8_t>(buf, r->bytes));
    while (auto f = decoder.Next()) got.push_back(f->payload);
  }
  EXPECT_EQ(got, sent);
  EXPECT_EQ(decoder.garbage_bytes_skipped(), 0);
}

TEST(SpawnTest, NonexistentPathIsNotFoundNamingThePath) {
  StatusOr<ChildProcess> c = Spawn({"/nonexistent/convguard-no-such-worker", "--x"});
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(c.status().message(),
            "spawning '/nonexistent/convguard-no-such-worker': execve "
            "'/nonexistent/convguard-no-such-worker': No such file or directory (ENOENT)");
}

TEST(SpawnTest, BareNameNotOnPathIsNotFound) {
  SpawnOptions o;
  o.argv = {"convguard-no-such-program"};
  o.env_set = {{"PATH", "/bin:/usr/bin"}};
  StatusOr<ChildProcess> c = SpawnChild(o);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(c.status().message(),
            "spawning 'convguard-no-such-program': no executable named "
            "'convguard-no-such-program' on PATH=/bin:/usr/bin");
}

TEST(SpawnTest, NonExecutableFileIsIOErrorFromExecve) {
  const std::string path = testing::TempDir() + "/convguard_not_executable.txt";
  { std::ofstream(path) << "not a program\n"; }
  StatusOr<ChildProcess> c = Spawn({path});
  std::filesystem::remove(path);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), StatusCode::kIOError);
  EXPECT_NE(c.status().message().find("execve '" + path + "'"), std::string::npos);
  EXPECT_NE(c.status().message().find("(EACCES)"), std::string::npos) << c.status().ToString();
}

TEST(SpawnTest, BadWorkingDirIsReportedFromTheChild) {
  SpawnOptions o;
  o.argv = {"/bin/true"};
  o.working_dir = "/nonexistent/convguard-dir";
  StatusOr<ChildProcess> c = SpawnChild(o);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(c.status().message(),
            "spawning '/bin/true': chdir '/nonexistent/convguard-dir': No such file or "
            "directory (ENOENT)");
}

TEST(SpawnTest, WorkingDirIsApplied) {
  SpawnOptions o;
  o.argv = {"/bin/pwd"};
  o.working_dir = "/";
  StatusOr<ChildProcess> c = SpawnChild(o);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(ReadToEof(c->stdout_fd()), "/\n");
}

TEST(SpawnTest, InvalidOptionsAreRejectedBeforeSpawning) {
  struct Case {
    const char* name;
    SpawnOptions options;
    const char* message;
  };
  std::vector<Case> cases;
  cases.push_back(
      {"empty argv", SpawnOptions{}, "spawn: argv is empty; argv[0] must name the program"});
  SpawnOptions nul;
  nul.argv = {"/bin/echo", std::string("a\0b", 3)};
  cases.push_back({"nul in argv", nul, "spawn: argv[1] contains a NUL byte"});
  SpawnOptions bad_env;
  bad_env.argv = {"/bin/true"};
  bad_env.env_set = {{"A=B", "x"}};
  cases.push_back({"= in env name", bad_env,
                   "env_set name 'A=B' is invalid; a name must be non-empty and contain "
                   "neither '=' nor a NUL byte"});
  SpawnOptions empty_unset;
  empty_unset.argv = {"/bin/true"};
  empty_unset.env_unset = {""};
  cases.push_back({"empty unset name", empty_unset,
                   "env_unset name '' is invalid; a name must be non-empty and contain "
                   "neither '=' nor a NUL byte"});
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    StatusOr<ChildProcess> child = SpawnChild(c.options);
    ASSERT_FALSE(child.ok());
    EXPECT_EQ(child.status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(child.status().message(), c.message);
  }
}

TEST(SpawnTest, EnvironmentOverridesAndUnsets) {
  ASSERT_EQ(setenv("CONVGUARD_TEST_KEEP", "kept", 1), 0);
  ASSERT_EQ(setenv("CONVGUARD_TEST_DROP", "dropped", 1), 0);
  ASSERT_EQ(setenv("CONVGUARD_TEST_REPLACE", "old", 1), 0);
  SpawnOptions o;
  o.argv = {"/usr/bin/env"};
  o.env_unset = {"CONVGUARD_TEST_DROP"};
  o.env_set = {{"CONVGUARD_TEST_REPLACE", "new"}, {"CONVGUARD_TEST_ADDED", "a=b"}};
  StatusOr<ChildProcess> c = SpawnChild(o);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  const std::string env = "\n" + ReadToEof(c->stdout_fd());
  EXPECT_NE(env.find("\nCONVGUARD_TEST_KEEP=kept\n"), std::string::npos) << env;
  EXPECT_EQ(env.find("CONVGUARD_TEST_DROP"), std::string::npos) << env;
  EXPECT_NE(env.find("\nCONVGUARD_TEST_REPLACE=new\n"), std::string::npos) << env;
  EXPECT_EQ(env.find("CONVGUARD_TEST_REPLACE=old"), std::string::npos) << env;
  EXPECT_NE(env.find("\nCONVGUARD_TEST_ADDED=a=b\n"), std::string::npos) << env;

  o.clear_environment = true;
  o.env_unset.clear();
  o.env_set = {{"ONLY", "this"}};
  StatusOr<ChildProcess> bare = SpawnChild(o);
  ASSERT_TRUE(bare.ok()) << bare.status().ToString();
  EXPECT_EQ(ReadToEof(bare->stdout_fd()), "ONLY=this\n");
}

TEST(SpawnTest, StderrCapturedIntoPipe) {
  StatusOr<ChildProcess> c =
      Spawn({"/bin/sh", "-c", "echo to-stderr >&2; echo to-stdout"}, StderrMode::kPipe);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  ASSERT_GE(c->stderr_fd(), 0);
  EXPECT_EQ(ReadToEof(c->stderr_fd()), "to-stderr\n");
  EXPECT_EQ(ReadToEof(c->stdout_fd()), "to-stdout\n");
}

TEST(SpawnTest, StderrModesReachTheChild) {
  const std::string our_stderr = std::filesystem::read_symlink("/proc/self/fd/2").string();
  struct Case {
    StderrMode mode;
    std::string expected_target;
  };
  for (const Case& c :
       {Case{StderrMode::kDevNull, "/dev/null"}, Case{StderrMode::kInherit, our_stderr}}) {
    StatusOr<ChildProcess> child = Spawn({"/bin/sleep", "1000"}, c.mode);
    ASSERT_TRUE(child.ok()) << child.status().ToString();
    EXPECT_EQ(child->stderr_fd(), -1);
    const std::string target =
        std::filesystem::read_symlink("/proc/" + std::to_string(child->pid()) + "/fd/2").string();
    EXPECT_EQ(target, c.expected_target);
  }
}

TEST(SpawnTest, ParentEndsAreCloexecAndNonBlocking) {
  StatusOr<ChildProcess> c = Spawn({"/bin/cat"}, StderrMode::kPipe);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  for (int fd : {c->stdin_fd(), c->stdout_fd(), c->stderr_fd()}) {
    SCOPED_TRACE(fd);
    ASSERT_GE(fd, 3);
    EXPECT_NE(fcntl(fd, F_GETFD) & FD_CLOEXEC, 0);
    EXPECT_NE(fcntl(fd, F_GETFL) & O_NONBLOCK, 0);
  }
}

TEST(SpawnTest, ChildLeadsItsOwnProcessGroup) {
  StatusOr<ChildProcess> c = Spawn({"/bin/sleep", "1000"});
  ASSERT_TRUE(c.ok());
  EXPECT_GT(c->pid(), 1);
  EXPECT_EQ(c->pgid(), c->pid());
  EXPECT_EQ(getpgid(c->pid()), c->pid());
  EXPECT_NE(getpgid(c->pid()), getpgrp());
}

TEST(SpawnTest, ChildGetsDefaultSignalsAndEmptyMask) {
  IgnoreSigpipe();  // ignored here; must not be ignored in the child
  StatusOr<ChildProcess> c = Spawn({"/bin/sleep", "1000"});
  ASSERT_TRUE(c.ok());
  const unsigned long long ignored = std::stoull(ProcStatusField(c->pid(), "SigIgn"), nullptr, 16);
  const unsigned long long blocked = std::stoull(ProcStatusField(c->pid(), "SigBlk"), nullptr, 16);
  EXPECT_EQ(ignored & (1ull << (SIGPIPE - 1)), 0u);
  EXPECT_EQ(ignored, 0u);
  EXPECT_EQ(blocked, 0u);
}

TEST(SpawnTest, ChildSeesOnlyStdioDescriptors) {
  // A descriptor deliberately opened WITHOUT O_CLOEXEC, at a high number: only the child's
  // explicit close keeps it out.
  const int leaky = open("/dev/null", O_RDONLY);
  ASSERT_GE(leaky, 0);
  ASSERT_EQ(dup2(leaky, 200), 200);
  for (StderrMode mode : {StderrMode::kInherit, StderrMode::kDevNull, StderrMode::kPipe}) {
    // cat, once it has echoed a line, is past the dynamic loader (which briefly holds its
    // own descriptors while mapping libraries) and sits in its main loop.
    StatusOr<ChildProcess> c = Spawn({"/bin/cat"}, mode);
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    ASSERT_TRUE(
        WriteAll(c->stdin_fd(), std::string_view("ping\n"), Deadline::After(seconds(5))).ok());
    ASSERT_EQ(ReadLine(c->stdout_fd()), "ping\n");
    EXPECT_EQ(OpenFds("/proc/" + std::to_string(c->pid()) + "/fd"), (std::set<int>{0, 1, 2}));
  }
  // The same seen from inside: the shell lists its own descriptors.
  StatusOr<ChildProcess> sh = Spawn({"/bin/sh", "-c", "exec ls /proc/$$/fd"});
  ASSERT_TRUE(sh.ok()) << sh.status().ToString();
  std::istringstream listing(ReadToEof(sh->stdout_fd()));
  std::set<int> seen;
  for (std::string line; std::getline(listing, line);) seen.insert(std::stoi(line));
  // ls itself holds one more: the directory it is reading.
  seen.erase(3);
  EXPECT_EQ(seen, (std::set<int>{0, 1, 2}));
  close(200);
  close(leaky);
}

TEST(SpawnTest, NoDescriptorLeakAcross50Children) {
  // Warm up once: the first spawn may open lazily-created process-wide descriptors.
  { ASSERT_TRUE(Spawn({"/bin/true"}).ok()); }
  const size_t before = OpenFds("/proc/self/fd").size();
  for (int i = 0; i < 50; ++i) {
    const StderrMode mode = i % 3 == 0   ? StderrMode::kPipe
                            : i % 3 == 1 ? StderrMode::kDevNull
                                         : StderrMode::kInherit;
    int pid = -1;
    {
      StatusOr<ChildProcess> c = Spawn({"/bin/sleep", "1000"}, mode);
      ASSERT_TRUE(c.ok()) << c.status().ToString();
      pid = c->pid();
      if (i % 2 == 0) {
        StatusOr<ExitInfo> e = c->KillAndReap(seconds(5));
        ASSERT_TRUE(e.ok()) << e.status().ToString();
      }
      // else: the destructor kills and reaps
    }
    EXPECT_EQ(ReadProcStat(pid).state, '\0') << "child " << pid << " was not reaped";
  }
  // A failed spawn must not leak either.
  for (int i = 0; i < 10; ++i) ASSERT_FALSE(Spawn({"/nonexistent/x"}).ok());
  EXPECT_EQ(OpenFds("/proc/self/fd").size(), before);
}

// ---------------------------------------------------------------- waiting and killing

TEST(WaitTest, WaitExitTimeoutReturnsStillRunning) {
  StatusOr<ChildProcess> c = Spawn({"/bin/sleep", "1000"});
  ASSERT_TRUE(c.ok());
  const TimePoint t0 = RealClock().Now();
  StatusOr<ExitInfo> e = c->WaitExit(milliseconds(100));
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  EXPECT_TRUE(e->running());
  EXPECT_EQ(e->ToString(), "still running");
  EXPECT_GE(RealClock().Now() - t0, milliseconds(100));
  EXPECT_FALSE(c->exit_info().has_value());
  // Zero timeout: a check that does not wait.
  e = c->WaitExit(Duration::zero());
  ASSERT_TRUE(e.ok());
  EXPECT_TRUE(e->running());
}

TEST(WaitTest, KillAndReapEndsAHungChildWithSigkill) {
  StatusOr<ChildProcess> c = Spawn({"/bin/sleep", "1000"});
  ASSERT_TRUE(c.ok());
  const int pid = c->pid();
  StatusOr<ExitInfo> e = c->KillAndReap(seconds(1));
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  EXPECT_TRUE(e->signaled());
  EXPECT_EQ(e->signal, SIGKILL);
  EXPECT_EQ(e->ToString(), "killed by signal 9 (SIGKILL)");
  EXPECT_EQ(ReadProcStat(pid).state, '\0');  // reaped: no zombie
  // Repeating is harmless and returns the same.
  e = c->KillAndReap(seconds(1));
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->signal, SIGKILL);
  EXPECT_TRUE(c->KillGroup(SIGKILL).ok());  // after reaping: a no-op
}

TEST(WaitTest, KillAndReapWithZeroGraceReportsOrReaps) {
  // With no grace the kernel may not have finished the kill when we look; either outcome is
  // legitimate, and the error must say what happened.
  StatusOr<ChildProcess> c = Spawn({"/bin/sleep", "1000"});
  ASSERT_TRUE(c.ok());
  StatusOr<ExitInfo> e = c->KillAndReap(Duration::zero());
  if (e.ok()) {
    EXPECT_EQ(e->signal, SIGKILL);
  } else {
    EXPECT_EQ(e.status().code(), StatusCode::kIOError);
    EXPECT_EQ(
        e.status().message().rfind(
            "process " + std::to_string(c->pid()) + " did not die within 0 ms after SIGKILL", 0),
        0u)
        << e.status().ToString();
    e = c->WaitExit(seconds(5));
    ASSERT_TRUE(e.ok());
    EXPECT_EQ(e->signal, SIGKILL);
  }
}

TEST(WaitTest, SignalOtherThanKillIsReported) {
  StatusOr<ChildProcess> c = Spawn({"/bin/sleep", "1000"});
  ASSERT_TRUE(c.ok());
  ASSERT_TRUE(c->KillGroup(SIGTERM).ok());
  StatusOr<ExitInfo> e = c->WaitExit(seconds(5));
  ASSERT_TRUE(e.ok());
  EXPECT_TRUE(e->signaled());
  EXPECT_EQ(e->signal, SIGTERM);
  EXPECT_EQ(e->ToString(), "killed by signal 15 (SIGTERM)");
}

TEST(WaitTest, CrashIsSignaledWithItsSignal) {
  StatusOr<ChildProcess> c = Spawn({"/bin/sh", "-c", "kill -SEGV $$"});
  ASSERT_TRUE(c.ok());
  StatusOr<ExitInfo> e = c->WaitExit(seconds(5));
  ASSERT_TRUE(e.ok());
  EXPECT_TRUE(e->signaled());
  EXPECT_EQ(e->signal, SIGSEGV);
  EXPECT_EQ(e->ToString().rfind("killed by signal 11 (SIGSEGV)", 0), 0u) << e->ToString();
}

TEST(WaitTest, KillGroupEndsGrandchildrenToo) {
  StatusOr<ChildProcess> c = Spawn({"/bin/sh", "-c", "sleep 1000 & echo $!; sleep 1000"});
  ASSERT_TRUE(c.ok());
  const std::string line = ReadLine(c->stdout_fd());
  ASSERT_FALSE(line.empty());
  const int grandchild = std::stoi(line);
  // Alive in any state (just forked, it may still be in exec: 'D'), not dead or a zombie.
  const char state = ReadProcStat(grandchild).state;
  ASSERT_TRUE(state != 'Z' && state != 'X' && state != '\0') << "state " << state;
  EXPECT_EQ(getpgid(grandchild), c->pgid());

  ASSERT_TRUE(c->KillGroup(SIGKILL).ok());
  StatusOr<ExitInfo> e = c->WaitExit(seconds(5));
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->signal, SIGKILL);
  EXPECT_TRUE(WaitUntilDead(grandchild, seconds(5)))
      << "grandchild " << grandchild << " state " << ReadProcStat(grandchild).state;
}

TEST(WaitTest, HelpersLeftInTheGroupDieWhenTheLeaderExits) {
  // The leader exits normally at once, leaving a helper in its group.
  StatusOr<ChildProcess> c = Spawn({"/bin/sh", "-c", "sleep 1000 & echo $!"});
  ASSERT_TRUE(c.ok());
  const int helper = std::stoi(ReadLine(c->stdout_fd()));
  StatusOr<ExitInfo> e = c->WaitExit(seconds(5));
  ASSERT_TRUE(e.ok());
  EXPECT_TRUE(e->exited());
  EXPECT_EQ(e->exit_code, 0);
  EXPECT_TRUE(WaitUntilDead(helper, seconds(5)))
      << "helper " << helper << " state " << ReadProcStat(helper).state;
}

TEST(WaitTest, DestructorKillsAndReaps) {
  int pid = -1;
  {
    StatusOr<ChildProcess> c = Spawn({"/bin/sleep", "1000"});
    ASSERT_TRUE(c.ok());
    pid = c->pid();
    ASSERT_NE(ReadProcStat(pid).state, '\0');
  }
  EXPECT_EQ(ReadProcStat(pid).state, '\0');
}

TEST(WaitTest, MoveTransfersOwnership) {
  StatusOr<ChildProcess> c = Spawn({"/bin/cat"});
  ASSERT_TRUE(c.ok());
  const int pid = c->pid();
  ChildProcess moved = std::move(*c);
  EXPECT_TRUE(c->empty());
  EXPECT_EQ(c->pid(), -1);
  EXPECT_EQ(c->stdout_fd(), -1);
  EXPECT_FALSE(c->KillGroup(SIGKILL).ok());  // empty: an error, never kill(-(-1))
  EXPECT_EQ(moved.pid(), pid);
  ASSERT_TRUE(
      WriteAll(moved.stdin_fd(), std::string_view("ping\n"), Deadline::After(seconds(5))).ok());
  EXPECT_EQ(ReadLine(moved.stdout_fd()), "ping\n");

  // Move-assigning over a live child ends that child first.
  StatusOr<ChildProcess> other = Spawn({"/bin/sleep", "1000"});
  ASSERT_TRUE(other.ok());
  const int other_pid = other->pid();
  moved = std::move(*other);
  EXPECT_EQ(ReadProcStat(pid).state, '\0');
  EXPECT_EQ(moved.pid(), other_pid);
  EXPECT_TRUE(other->empty());
  std::vector<ChildProcess> pool;
  pool.push_back(std::move(moved));
  EXPECT_TRUE(moved.empty());
  EXPECT_FALSE(pool[0].empty());
}

}  // namespace
}  // namespace convguard::os
