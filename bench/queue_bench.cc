// queue_bench: the work queue of a shared PostgreSQL store under many hosts
// (docs/work-queue.md), against a private PostgreSQL server it starts
// (tests/support/pg_server.h).
//
//   queue_bench CONVGUARD_BIN [--section simulate|hosts|all] [--hosts 100]
//               [--problems 100000] [--claim 16] [--real-problems 48] [--slow-ms 250]
//
// simulate: N simulated hosts — processes of this program, each with its own connection,
//   whose fake backend decides every problem at once — drain a queue of P problems:
//   claims per second, problems per second, the time to drain, and whether any problem
//   was leased twice (none may be: no host dies here).
// hosts: 1, 2 and 4 real hosts — `convguard sweep --from-queue` processes, one worker
//   each, on a slow emulated stack (the reference backend with every probe sleeping
//   --slow-ms, so a host's throughput is bound by its probes, not this machine's cores) —
//   drain the same queue; throughput per host count and its ratio to one host.
//
// The simulated host (internal): queue_bench --simulated-host CONNINFO INDEX CLAIM.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "convguard/queue.h"
#include "os/pipe_io.h"
#include "os/process.h"
#include "os/system.h"
#include "store/pg_db.h"
#include "support/pg_server.h"

namespace {

using convguard::OpenWorkQueue;
using convguard::QueueClaimRequest;
using convguard::QueueLease;
using convguard::QueueSweepSpec;
using convguard::StatusOr;
using convguard::WorkQueue;
using convguard::testing_support::PgServer;
using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point since) {
  return std::chrono::duration<double>(Clock::now() - since).count();
}

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "queue_bench: %s\n", what.c_str());
  std::exit(1);
}

// One simulated host: claim, decide at once, complete, until the stack's queue is done.
// Prints "CLAIMS PROBLEMS" on stdout.
int SimulatedHost(const std::string& conninfo, const std::string& index, int64_t claim) {
  StatusOr<std::unique_ptr<WorkQueue>> q = OpenWorkQueue(conninfo);
  if (!q.ok()) Die("host " + index + ": " + q.status().ToString());
  const std::string owner = "sim-" + index + ":" + std::to_string(convguard::os::CurrentPid());
  int64_t claims = 0;
  int64_t problems = 0;
  while (true) {
    StatusOr<std::vector<QueueLease>> got =
        (*q)->Claim(QueueClaimRequest{"simulated-stack", "sim-" + index, owner, claim, 60.0});
    if (!got.ok()) Die("host " + index + ": " + got.status().ToString());
    ++claims;
    if (got->empty()) {
      StatusOr<int64_t> left = (*q)->Remaining("simulated-stack");
      if (!left.ok()) Die("host " + index + ": " + left.status().ToString());
      if (*left == 0) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      continue;
    }
    problems += static_cast<int64_t>(got->size());
    StatusOr<std::vector<bool>> done =
        (*q)->Complete(*got, std::vector<std::string>(got->size(), "OK"), owner);
    if (!done.ok()) Die("host " + index + ": " + done.status().ToString());
  }
  std::printf("%lld %lld\n", static_cast<long long>(claims), static_cast<long long>(problems));
  return 0;
}

int64_t QueryInt(const std::string& conninfo, const std::string& sql) {
  auto conn = convguard::pg::Connection::Open(conninfo, 10);
  if (!conn.ok()) Die(conn.status().ToString());
  StatusOr<int64_t> v = (*conn)->QueryInt(sql);
  if (!v.ok()) Die(v.status().ToString());
  return *v;
}

std::string NewDatabase(PgServer& server, const std::string& tag) {
  StatusOr<std::string> db = server.CreateDatabase(tag);
  if (!db.ok()) Die(db.status().ToString());
  return server.KeywordConnInfo(*db);
}

// Spawns every argv at once and waits for all; returns the wall time. Each child's stdout
// is read to its end (into `outs`).
double RunAll(const std::vector<std::vector<std::string>>& argvs, std::vector<std::string>& outs,
              bool quiet = false) {
  std::vector<convguard::os::ChildProcess> children;
  const Clock::time_point start = Clock::now();
  for (const auto& argv : argvs) {
    convguard::os::SpawnOptions spawn;
    spawn.argv = argv;
    spawn.stderr_mode =
        quiet ? convguard::os::StderrMode::kDevNull : convguard::os::StderrMode::kInherit;
    StatusOr<convguard::os::ChildProcess> child = convguard::os::SpawnChild(spawn);
    if (!child.ok()) Die(child.status().ToString());
    children.push_back(std::move(*child));
  }
  outs.assign(children.size(), "");
  for (size_t i = 0; i < children.size(); ++i) {
    children[i].CloseStdin();
    uint8_t buf[4096];
    while (true) {
      StatusOr<convguard::os::IoResult> n =
          convguard::os::ReadSome(children[i].stdout_fd(), buf, convguard::os::Deadline::Never());
      if (!n.ok() || !n->data()) break;
      outs[i].append(reinterpret_cast<const char*>(buf), n->bytes);
    }
    StatusOr<convguard::os::ExitInfo> how = children[i].WaitExit(std::chrono::minutes(30));
    if (!how.ok() || !how->exited() || how->exit_code != 0) {
      Die("child " + std::to_string(i) + " " + (how.ok() ? how->ToString() : "not reaped"));
    }
  }
  return Seconds(start);
}

void Simulate(PgServer& server, const std::string& self, int hosts, int64_t problems,
              int64_t claim) {
  const std::string conninfo = NewDatabase(server, "simulate");
  StatusOr<std::unique_ptr<WorkQueue>> q = OpenWorkQueue(conninfo);
  if (!q.ok()) Die(q.status().ToString());
  QueueSweepSpec sweep;
  sweep.label = "simulated";
  for (int64_t i = 0; i < problems; ++i) {
    sweep.problems.push_back({"n1_c" + std::to_string(1 + i % 512) + "_h" +
                                  std::to_string(1 + i / 512) + "_w8_k4_r3_s3_p1",
                              ""});
  }
  const Clock::time_point add_start = Clock::now();
  if (StatusOr<int64_t> id = (*q)->AddSweep(sweep); !id.ok()) Die(id.status().ToString());
  const double add_s = Seconds(add_start);
  std::vector<std::vector<std::string>> argvs;
  for (int i = 0; i < hosts; ++i) {
    argvs.push_back({self, "--simulated-host", conninfo, std::to_string(i), std::to_string(claim)});
  }
  std::vector<std::string> outs;
  const double drain_s = RunAll(argvs, outs);
  int64_t claims = 0;
  int64_t leased = 0;
  int64_t busy_hosts = 0;
  for (const std::string& out : outs) {
    long long c = 0, p = 0;
    if (std::sscanf(out.c_str(), "%lld %lld", &c, &p) != 2) Die("bad host output: " + out);
    claims += c;
    leased += p;
    busy_hosts += p > 0 ? 1 : 0;
  }
  const int64_t twice = QueryInt(conninfo, "SELECT count(*) FROM queue_work WHERE leases <> 1");
  const int64_t done = QueryInt(conninfo, "SELECT count(*) FROM queue_work WHERE state = 'done'");
  std::printf("\n## simulate: %d hosts, %lld problems, %lld per claim\n\n", hosts,
              static_cast<long long>(problems), static_cast<long long>(claim));
  std::printf("| measurement | value |\n| --- | --- |\n");
  std::printf("| queue add of %lld problems | %.2f s |\n", static_cast<long long>(problems), add_s);
  std::printf("| drain (spawn of the first host to exit of the last) | %.2f s |\n", drain_s);
  std::printf("| claim statements (incl. empty ones at the end) | %lld (%.0f /s) |\n",
              static_cast<long long>(claims), static_cast<double>(claims) / drain_s);
  std::printf("| problems leased and completed | %lld (%.0f /s) |\n",
              static_cast<long long>(leased), static_cast<double>(leased) / drain_s);
  std::printf("| hosts that got work | %lld of %d |\n", static_cast<long long>(busy_hosts), hosts);
  std::printf("| problems leased more than once | %lld |\n", static_cast<long long>(twice));
  std::printf("| problems done | %lld of %lld |\n", static_cast<long long>(done),
              static_cast<long long>(problems));
  if (twice != 0 || done != problems || leased != problems) Die("the queue was not drained once");
}

void RealHosts(PgServer& server, const std::string& convguard_bin, int64_t problems, int slow_ms) {
  const std::string dir = server.socket_dir();
  const std::string rules = dir + "/slow.rules";
  {
    FILE* f = std::fopen(rules.c_str(), "w");
    if (f == nullptr) Die("cannot write " + rules);
    std::fprintf(f, "slow(%d) when n >= 1\n", slow_ms);
    std::fclose(f);
  }
  std::string list_text;
  for (int64_t i = 0; i < problems; ++i) {
    list_text += "n1_c4_h" + std::to_string(8 + i % 32) + "_w" + std::to_string(8 + i / 32) +
                 "_k4_r3_s3_p1\n";
  }
  const std::string list = dir + "/problems.txt";
  {
    FILE* f = std::fopen(list.c_str(), "w");
    if (f == nullptr) Die("cannot write " + list);
    std::fputs(list_text.c_str(), f);
    std::fclose(f);
  }
  std::printf(
      "\n## hosts: `convguard sweep --from-queue`, one worker each, %lld problems, "
      "every probe sleeping %d ms (slow(%d) on the reference backend)\n\n",
      static_cast<long long>(problems), slow_ms, slow_ms);
  std::printf("| hosts | drain | problems/s | vs 1 host |\n| --- | --- | --- | --- |\n");
  double one = 0.0;
  for (int hosts : {1, 2, 4}) {
    const std::string conninfo = NewDatabase(server, "hosts" + std::to_string(hosts));
    std::vector<std::string> outs;
    RunAll({{convguard_bin, "queue", "add", "--list", list, "--db", conninfo}}, outs, true);
    std::vector<std::vector<std::string>> argvs;
    for (int h = 0; h < hosts; ++h) {
      argvs.push_back({convguard_bin,
                       "sweep",
                       "--from-queue",
                       "--db",
                       conninfo,
                       "--backend",
                       "reference",
                       "--inject",
                       rules,
                       "--warmup",
                       "0",
                       "--repeats",
                       "1",
                       "--timeout",
                       "30000",
                       "--workers",
                       "1",
                       "--standby",
                       "0",
                       "--claim",
                       "4",
                       "--quiet",
                       "--table",
                       "none",
                       "--host-label",
                       "host" + std::to_string(h)});
    }
    const double s = RunAll(argvs, outs, true);
    const double rate = static_cast<double>(problems) / s;
    if (hosts == 1) one = rate;
    const int64_t verdicts = QueryInt(conninfo, "SELECT count(*) FROM verdicts");
    const int64_t twice = QueryInt(conninfo, "SELECT count(*) FROM queue_work WHERE leases <> 1");
    if (verdicts != problems || twice != 0) Die("hosts did not decide every problem once");
    std::printf("| %d | %.2f s | %.2f | %.2fx |\n", hosts, s, rate, rate / one);
    std::fflush(stdout);
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 5 && std::string(argv[1]) == "--simulated-host") {
    return SimulatedHost(argv[2], argv[3], std::atoll(argv[4]));
  }
  if (argc < 2 || argv[1][0] == '-') {
    std::fprintf(stderr,
                 "usage: queue_bench CONVGUARD_BIN [--section simulate|hosts|all] [--hosts N] "
                 "[--problems N] [--claim N] [--real-problems N] [--slow-ms MS]\n");
    return 2;
  }
  const std::string convguard_bin = argv[1];
  std::string section = "all";
  int hosts = 100;
  int64_t problems = 100000;
  int64_t claim = 16;
  int64_t real_problems = 48;
  int slow_ms = 250;
  for (int i = 2; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    const std::string value = argv[i + 1];
    if (flag == "--section")
      section = value;
    else if (flag == "--hosts")
      hosts = std::atoi(value.c_str());
    else if (flag == "--problems")
      problems = std::atoll(value.c_str());
    else if (flag == "--claim")
      claim = std::atoll(value.c_str());
    else if (flag == "--real-problems")
      real_problems = std::atoll(value.c_str());
    else if (flag == "--slow-ms")
      slow_ms = std::atoi(value.c_str());
    else
      Die("unknown flag " + flag);
  }
  StatusOr<std::unique_ptr<PgServer>> server = PgServer::Start();
  if (!server.ok()) Die(server.status().ToString());
  std::printf(
      "# queue_bench: PostgreSQL %s on a Unix socket (fsync off, as the tests run it), "
      "%d CPUs\n",
      (*server)->version().c_str(), static_cast<int>(std::thread::hardware_concurrency()));
  StatusOr<std::string> self = convguard::os::SelfExecutablePath();
  if (!self.ok()) Die(self.status().ToString());
  if (section == "simulate" || section == "all") Simulate(**server, *self, hosts, problems, claim);
  if (section == "hosts" || section == "all") {
    RealHosts(**server, convguard_bin, real_problems, slow_ms);
  }
  return 0;
}
