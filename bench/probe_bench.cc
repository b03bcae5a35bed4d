// probe_bench — the probe engine's costs, each measured side by side in one run:
//   overhead  per-probe overhead on tiny problems (reference backend): in-process vs a
//             warm worker vs a fresh `convguard probe` process per probe;
//   hang      time from start to a HANG verdict, with the default and a short confirmation;
//   sweep     a sweep of 1,000 problems on the emulated RDNA1 stack vs the seed report's
//             method (one fresh process at a time, fixed 10 s timeout), the latter run on a
//             subset and extrapolated;
//   backends  for every backend available here (reference, onednn, cudnn, torch), on a
//             small and a medium problem: a probe in-process, a probe through a warm
//             worker, and the first verdict including worker start-up.
// Run with --help for the options. Prints Markdown tables; bench/RESULTS.md keeps the
// numbers with the machine they ran on.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "backends/reference/reference_backend.h"
#include "convguard/backend.h"
#include "convguard/compare.h"
#include "convguard/fill.h"
#include "convguard/probe.h"
#include "convguard/problem_source.h"
#include "convguard/reference.h"
#include "convguard/text_forms.h"
#include "os/pipe_io.h"
#include "os/process.h"
#include "os/system.h"
#include "probe/torch_launcher.h"
#include "worker/framing.h"
#include "worker/protocol.h"

#ifdef CONVGUARD_HAVE_CUDNN
#include "backends/cudnn/cudnn_backend.h"  // CudnnDevicePresent()
#endif

using namespace convguard;
using Clock = std::chrono::steady_clock;

namespace {

constexpr const char* kUsage = R"(usage: probe_bench PATH/TO/convguard [options]

Measures the probe engine's costs and prints Markdown tables (stdout). Every number of a
table is measured in this one run, side by side; compare ratios, not machines.

Sections (--sections; default: the first four, in this order):
  overhead  1,404 tiny problems on the reference backend: per probe in-process, through
            one warm worker (2, 1 and 0 requests written ahead of the current one), 5
            rounds alternated (--quick 1), and as a fresh `convguard probe` process (20
            probes; --quick 5).
  hang      start to HANG on the emulated RDNA1 stack (16->16 at 34x34 and the seed's
            16->32 at 64x64), confirmation floor 3000 ms (default) and 700 ms, each
            confirmed in place (default) and in a fresh worker.
  sweep     1,000 problems on the emulated RDNA1 stack with 2 workers, against the seed
            report's method (a fresh process per problem, fixed 10 s timeout) measured on
            2 hanging + 10 finishing problems and extrapolated (--quick: 20 problems,
            1 + 3 measured).
  backends  per backend (--backends), on a small and a medium problem:
              in-process   the backend created and initialised once in a process of its
                           own (this program, --in-process-child), then per probe what a
                           worker does: fill, run (warm-up 1 + 3 timed, the engine's
                           defaults), sampled check; no protocol, no pipe. For torch, which
                           has no C++ backend, the worker script runs its own probe code in
                           a loop in one Python process (--time-in-process). A fresh
                           process per round, its start-up not timed: a CPU backend's speed
                           depends on where its buffers land in memory, so a young process
                           is compared with a young worker.
              warm worker  ProbeEngine with one worker per device, no store:
                           one untimed probe of the problem, then the same job run N times
                           (each Run is one probe), start-up excluded.
                           The N probes of both alternate in --rounds blocks, so that a
                           change in the machine's load falls on both columns alike;
                           each column shows the median of its blocks' per-probe times.
              first verdict  ProbeEngine::Start (worker start-up, hello, calibration) plus
                           Run of one job, no store: what `convguard probe --no-store`
                           pays after parsing its arguments (for torch, after its one
                           interpreter search, which is timed and shown on its own).
            Each in-process and warm-worker measurement first runs one untimed probe of the
            problem (first-call compilation); N is --count-small / --count-medium.
            A second table takes a probe apart: each stage (prep: allocate and fill; run:
            the backend; check) in-process and in the worker (its own account, stage_ms in
            its replies), the worker's whole time per request, the round trip the engine
            saw, and the engine's Run call: round trip - worker total is the protocol,
            Run - round trip the engine.
            Unavailable backends are listed as skipped, with the reason. A GPU backend
            starts one worker per visible GPU: set CUDA_VISIBLE_DEVICES=0 to measure one.
  replay    (only when named) a list of 10,000 calls (--quick 2,000) cycling over 20 tiny
            problems, and one of 2,000 (--quick 500) over 8 small ones (0.3 to 2.4 MFLOP),
            on the reference backend: `convguard replay LIST --no-alone
            --no-store` (its whole wall time, and the run of the calls alone as the verdict
            reports it) against the same calls in-process (each run once, no warm-up,
            sampled check: what a replayed call does). Alternated, 3 rounds, medians.
  pipe      (only when named) the protocol with no probe in it: a child of this program
            (--echo-child WORK_US) answers real protocol frames the way a worker does (a
            request read where a worker reads it, two phase notices, a reply with its own
            time in stage_ms), computing WORK_US microseconds in between, for 0, 0.3, 1, 4
            and 20 ms. Round trip - the child's own time is what the pipes, the frames and
            the scheduler cost, with this process blocked in poll while it waits (what the
            engine does) and, alternated with it, polling without blocking (a core kept
            busy). The backends section's "protocol" column, without a backend.

Options:
  --sections LIST     comma-separated subset of overhead,hang,sweep,backends,replay,pipe
  --backends LIST     backends for the per-backend table (default: every available one of
                      cudnn, torch, onednn, reference; any registered name is allowed:
                      emulated-rdna1 hangs, by design, on the default medium problem)
  --small PROBLEM     the small problem (default n1_c8_h16_w16_k8_r3_s3_p1)
  --medium PROBLEM    the medium problem (default n1_c32_h56_w56_k32_r3_s3_p1)
  --count-small N     timed probes per measurement on the small problem (default 200)
  --count-medium N    timed probes per measurement on the medium problem (default 20)
  --starts N          first-verdict starts per backend and problem; the median is shown
                      (default 1)
  --rounds N          alternating blocks of in-process and warm-worker probes (default 8;
                      torch starts one Python process per block, untimed)
  --quick             fewer probes: the overhead and sweep sections as above, and counts
                      of 40 (small) and 5 (medium) unless given
  -h, --help          this text

Internal: probe_bench --in-process-child BACKEND PROBLEM ALGORITHM COUNT is what the
backends section runs for its in-process figure; it prints one JSON line.
probe_bench --echo-child WORK_US is the pipe section's child.

Exit status: 0, or 1 when a measurement could not run (an engine that does not start,
a probe that does not end OK), 2 for a bad command line.
)";

double Seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "probe_bench: %s\n", what.c_str());
  std::exit(1);
}

[[noreturn]] void Usage(const std::string& what) {
  std::fprintf(stderr, "probe_bench: %s (see --help)\n", what.c_str());
  std::exit(2);
}

std::vector<Problem> Grid(const std::string& spec) {
  StatusOr<GridExpansion> g = ExpandGrid(spec);
  if (!g.ok()) Die("grid: " + g.status().ToString());
  return g->problems;
}

std::vector<std::string> SplitList(const std::string& list) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= list.size()) {
    const size_t comma = std::min(list.find(',', start), list.size());
    if (comma > start) out.push_back(list.substr(start, comma - start));
    start = comma + 1;
  }
  return out;
}

// What a worker does per probe (src/worker/worker_main.cc RunProbe), done in this
// process: allocate, fill exactly, poison the result, run, sampled check. False when the
// probe did not end OK (the message says why).
// Milliseconds per stage, summed over probes: the in-process counterpart of the worker's
// own account (ProbeRunResult::worker_time).
struct StageMs {
  double prep = 0;
  double run = 0;
  double check = 0;
};

double MsSince(Clock::time_point since) {
  return std::chrono::duration<double, std::milli>(Clock::now() - since).count();
}

bool ProbeInProcess(Backend& backend, const Problem& p, const std::string& algorithm,
                    std::string* why, int warmup = 1, int repeats = 3, StageMs* stages = nullptr) {
  auto stage_start = Clock::now();
  if (Status s = backend.Supports(p, algorithm); !s.ok()) {
    *why = s.message();
    return false;
  }
  ConvTensors<double> exact = ConvTensors<double>::Allocate(p);
  FillExact(p, 1, exact);
  ConvTensors<float> io;
  ToFloatOperands(p, exact, io);
  if (stages != nullptr) stages->prep += MsSince(stage_start);
  RunOptions o;  // by default warm-up 1, repeats 3: the engine's defaults
  o.warmup = warmup;
  o.repeats = repeats;
  stage_start = Clock::now();
  StatusOr<RunResult> r = backend.Run(p, algorithm, io, o);
  if (stages != nullptr) stages->run += MsSince(stage_start);
  if (!r.ok()) {
    *why = r.status().ToString();
    return false;
  }
  stage_start = Clock::now();
  std::vector<int64_t> points = ChooseSamplePoints(p, 256, 1);
  std::vector<double> expected = ReferenceValuesAt(p, exact, points);
  Comparison c =
      CompareSampled(p, ResultTensor(p, io), points, expected, DefaultTolerance(p, r->exact));
  if (stages != nullptr) stages->check += MsSince(stage_start);
  if (!c.passed()) {
    *why = c.Summary();
    return false;
  }
  return true;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t m = v.size() / 2;
  return v.size() % 2 == 1 ? v[m] : 0.5 * (v[m - 1] + v[m]);
}

// The overhead section's in-process figure: the reference backend over `problems`.
double InProcessSeconds(const std::vector<Problem>& problems) {
  std::unique_ptr<Backend> backend = MakeReferenceBackend();
  (void)backend->Init();
  const auto start = Clock::now();
  for (const Problem& p : problems) {
    std::string why;
    if (!ProbeInProcess(*backend, p, "direct", &why))
      std::fprintf(stderr, "in-process probe failed: %s\n", why.c_str());
  }
  return Seconds(start, Clock::now());
}

ProbeOptions Options(const std::string& exe, const std::string& backend, int workers) {
  ProbeOptions o;
  o.backend = backend;
  o.worker_executable = exe;
  o.workers_per_device = workers;
  return o;
}

struct Timed {
  double seconds = 0;
  ProbeRunResult result;
};

Timed EngineRun(const ProbeOptions& o, const std::vector<Problem>& problems, bool include_start) {
  std::vector<ProbeJob> jobs;
  for (const Problem& p : problems) jobs.push_back({p, ""});
  const auto start = Clock::now();
  auto engine = ProbeEngine::Start(o, nullptr);
  if (!engine.ok()) Die("engine: " + engine.status().ToString());
  const auto ready = Clock::now();
  auto r = (*engine)->Run(jobs);
  if (!r.ok()) Die("run: " + r.status().ToString());
  Timed t;
  t.seconds = Seconds(include_start ? start : ready, Clock::now());
  t.result = std::move(*r);
  return t;
}

// One fresh `convguard probe` process per problem, killed after `timeout_s` from outside:
// the seed report's method (its in-process alarm cannot end a GPU hang; an outside kill
// is the most it could do). Returns wall seconds and whether it was killed.
std::pair<double, bool> FreshProcess(const std::string& exe, const std::string& backend,
                                     const Problem& p, double timeout_s) {
  os::SpawnOptions s;
  s.argv = {exe,         "probe", ToCanonical(p), "--backend", backend,           "--no-store",
            "--workers", "1",     "--timeout",    "86400000",  "--confirm-floor", "86400000"};
  s.stderr_mode = os::StderrMode::kDevNull;
  const auto start = Clock::now();
  auto child = os::SpawnChild(s);
  if (!child.ok()) return {0, false};
  child->CloseStdin();
  auto exit = child->WaitExit(
      std::chrono::duration_cast<os::Duration>(std::chrono::duration<double>(timeout_s)));
  bool killed = false;
  if (exit.ok() && exit->running()) {
    (void)child->KillAndReap(std::chrono::seconds(5));
    killed = true;
  } else if (!exit.ok() || !exit->exited() || (exit->exit_code != 0 && exit->exit_code < 10)) {
    Die("fresh probe of " + ToCanonical(p) +
        " failed: " + (exit.ok() ? exit->ToString() : exit.status().ToString()));
  }
  return {Seconds(start, Clock::now()), killed};
}

// ---- the sections that RESULTS.md's first table cites ------------------------------

void OverheadSection(const std::string& exe, bool quick) {
  // Per-probe overhead on tiny problems (4x4..8x8, 2..4 channels): in-process, and through
  // one warm worker with 2 (the default), 1 and 0 requests written ahead of the current
  // one, alternated round by round; medians.
  const std::vector<Problem> tiny = Grid("c=2,3,4 k=2,3,4 hw=4..8 r=1,3 n=1,2 p=0,1 s=1,2 d=1,2");
  const int rounds = quick ? 1 : 5;
  const std::vector<int> depths = {4, 2, 1, 0};
  std::vector<double> in_process;
  std::map<int, std::vector<double>> engine;
  for (int round = 0; round < rounds; ++round) {
    in_process.push_back(InProcessSeconds(tiny));
    for (int depth : depths) {
      ProbeOptions o = Options(exe, "reference", 1);
      o.standby_workers = 0;
      o.requests_ahead = depth;
      engine[depth].push_back(EngineRun(o, tiny, /*include_start=*/false).seconds);
    }
  }
  const size_t fresh_n = quick ? 5 : 20;
  double fresh_total = 0;
  for (size_t i = 0; i < fresh_n; ++i)
    fresh_total += FreshProcess(exe, "reference", tiny[i], 60).first;
  const double n = static_cast<double>(tiny.size());
  const double base = 1e3 * Median(in_process) / n;
  std::printf("| tiny problems (medians of %d rounds) | %zu |\n", rounds, tiny.size());
  std::printf("| in-process, per probe | %.3f ms |\n", base);
  for (int depth : depths) {
    const double per = 1e3 * Median(engine[depth]) / n;
    std::printf("| warm worker (1), %d request(s) written ahead%s, per probe | %.3f ms (+%.3f) |\n",
                depth, depth == ProbeOptions{}.requests_ahead ? " (default)" : "", per, per - base);
  }
  std::printf("| fresh process per probe (%zu probes) | %.1f ms |\n", fresh_n,
              1e3 * fresh_total / fresh_n);
}

// A replay of `calls` calls cycling over the problems of `grid`, in one worker, against
// the same calls in this process; one table row group.
void ReplayRows(const std::string& exe, const std::string& grid, size_t calls);

void ReplaySection(const std::string& exe, bool quick) {
  std::printf("| measurement | value |\n| --- | --- |\n");
  ReplayRows(exe, "c=2,4 k=2,4 hw=4..8 r=3 p=same", quick ? 2000 : 10000);
  ReplayRows(exe, "c=8,16 k=8,16 hw=16,32 r=3 p=same", quick ? 500 : 2000);
}

void ReplayRows(const std::string& exe, const std::string& grid, size_t calls) {
  const std::vector<Problem> tiny = Grid(grid);
  std::vector<Problem> sequence;
  std::string list;
  for (size_t i = 0; i < calls; ++i) {
    sequence.push_back(tiny[(i * 7) % tiny.size()]);
    list += ToCanonical(sequence.back()) + "\n";
  }
  char dir_template[] = "/tmp/probe_bench_replay_XXXXXX";
  const char* dir = mkdtemp(dir_template);
  if (dir == nullptr) Die("cannot make a temporary folder");
  const std::string path = std::string(dir) + "/sequence.list";
  if (FILE* f = std::fopen(path.c_str(), "w")) {
    std::fwrite(list.data(), 1, list.size(), f);
    std::fclose(f);
  } else {
    Die("cannot write " + path);
  }
  std::unique_ptr<Backend> backend = MakeReferenceBackend();
  (void)backend->Init();
  std::vector<double> in_process, replay_wall, replay_run;
  for (int round = 0; round < 3; ++round) {
    const auto start = Clock::now();
    for (const Problem& p : sequence) {
      std::string why;
      if (!ProbeInProcess(*backend, p, "direct", &why, /*warmup=*/0, /*repeats=*/1))
        Die("in-process call failed: " + why);
    }
    in_process.push_back(Seconds(start, Clock::now()));

    os::SpawnOptions s;
    s.argv = {exe,          "replay",     path,       "--backend", "reference",
              "--no-store", "--no-alone", "--format", "json",      "--quiet"};
    s.stderr_mode = os::StderrMode::kDevNull;
    const auto spawned = Clock::now();
    auto child = os::SpawnChild(s);
    if (!child.ok()) Die("replay: " + child.status().ToString());
    child->CloseStdin();
    std::string out;
    std::vector<uint8_t> buffer(1 << 16);
    for (;;) {
      StatusOr<os::IoResult> got = os::ReadSome(child->stdout_fd(), buffer, os::Deadline::Never());
      if (!got.ok() || !got->data()) break;
      out.append(reinterpret_cast<const char*>(buffer.data()), got->bytes);
    }
    auto exit = child->WaitExit(std::chrono::minutes(10));
    replay_wall.push_back(Seconds(spawned, Clock::now()));
    if (!exit.ok() || !exit->exited() || exit->exit_code != 0) {
      Die("replay did not end OK: " + (exit.ok() ? exit->ToString() : exit.status().ToString()));
    }
    const nlohmann::json j = nlohmann::json::parse(out, nullptr, false);
    if (!j.is_object() || !j.contains("elapsed_ms") || j["calls_run"] != calls) {
      Die("replay printed no verdict of " + std::to_string(calls) + " calls");
    }
    replay_run.push_back(j["elapsed_ms"].get<double>() / 1000.0);
  }
  std::remove(path.c_str());
  rmdir(dir);
  auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  const double ip = median(in_process), wall = median(replay_wall), run = median(replay_run);
  double flops = 0;
  for (const Problem& p : sequence) flops += static_cast<double>(p.flops());
  std::printf("| calls (%zu problems of `%s`, cycled; %.2f MFLOP per call) | %zu |\n", tiny.size(),
              grid.c_str(), flops / calls / 1e6, calls);
  std::printf("| in-process: each call once + sampled check | %.2f s (%.3f ms per call) |\n", ip,
              1e3 * ip / calls);
  std::printf(
      "| replay, the calls in one worker (the verdict's elapsed) | %.2f s (%.3f ms per "
      "call) |\n",
      run, 1e3 * run / calls);
  std::printf("| replay, whole command (start, calibration, reading the list) | %.2f s |\n", wall);
  std::printf("| replay / in-process (calls) | %.2fx |\n", run / ip);
  std::printf("| replay / in-process (whole command) | %.2fx |\n", wall / ip);
}

void HangSection(const std::string& exe) {
  // A problem that should take milliseconds (16->16 at 34x34, about 5 MFLOP) and the
  // seed's 64x64 problem, with the default and a short confirmation floor, confirmed in
  // place (the default: the problem is its worker's first) and in a fresh worker. Worker
  // start-up and calibration are included.
  for (const char* spec : {"c=16 k=16 hw=34 r=3 p=same", "c=16 k=32 hw=64 r=3 p=same"}) {
    const std::vector<Problem> hang = Grid(spec);
    for (double floor_ms : {3000.0, 700.0}) {
      for (bool in_place : {true, false}) {
        ProbeOptions o = Options(exe, "emulated-rdna1", 1);
        o.deadlines.confirm_floor_ms = floor_ms;
        o.confirm_first_probe_in_place = in_place;
        const Timed t = EngineRun(o, hang, true);
        const Verdict& v = t.result.verdicts.at(0);
        std::printf("| start to %s, %s, confirm floor %.0f ms, %s | %.2f s (deadlines %s) |\n",
                    std::string(VerdictName(v.kind)).c_str(), spec, floor_ms,
                    in_place ? "confirmed in place (default)" : "confirmed in a fresh worker",
                    t.seconds, v.message.substr(0, v.message.find("; worker")).c_str());
      }
    }
  }
}

void SweepSection(const std::string& exe, bool quick) {
  const std::string spec = quick ? "c=3,16 k=16,32 hw=28..44:4 r=3 p=same"
                                 : "c=3,4,8,16,32 k=4,8,16,32,64 hw=8..44:4 r=1,3 p=same n=1,2";
  const std::vector<Problem> sweep = Grid(spec);
  const Timed ours = EngineRun(Options(exe, "emulated-rdna1", 2), sweep, true);
  int64_t hangs = ours.result.progress.by_kind[static_cast<int>(VerdictKind::kHang)];
  std::printf("| sweep problems (%s) | %zu, %lld HANG |\n", spec.c_str(), sweep.size(),
              static_cast<long long>(hangs));
  std::printf("| convguard sweep, 2 workers | %.1f s |\n", ours.seconds);

  // The seed's method on a subset: every hanging problem costs the full 10 s; the others
  // cost a fresh process. Extrapolated by class to the whole sweep.
  std::vector<Problem> hanging, finishing;
  for (const Verdict& v : ours.result.verdicts) {
    StatusOr<Problem> p = ParseProblem(v.problem);
    (v.kind == VerdictKind::kHang ? hanging : finishing).push_back(*p);
  }
  const size_t sub_hang = std::min<size_t>(quick ? 1 : 2, hanging.size());
  const size_t sub_ok = std::min<size_t>(quick ? 3 : 10, finishing.size());
  double hang_s = 0, ok_s = 0;
  for (size_t i = 0; i < sub_hang; ++i)
    hang_s +=
        FreshProcess(exe, "emulated-rdna1", hanging[i * hanging.size() / sub_hang], 10.0).first;
  for (size_t i = 0; i < sub_ok; ++i)
    ok_s +=
        FreshProcess(exe, "emulated-rdna1", finishing[i * finishing.size() / sub_ok], 10.0).first;
  const double per_hang = sub_hang ? hang_s / sub_hang : 10.0;
  const double per_ok = sub_ok ? ok_s / sub_ok : 0.0;
  const double seed_total = per_hang * hanging.size() + per_ok * finishing.size();
  std::printf(
      "| seed method, measured on %zu hanging + %zu finishing | %.2f s per hang, %.3f s per other "
      "|\n",
      sub_hang, sub_ok, per_hang, per_ok);
  std::printf("| seed method, extrapolated to the sweep | %.0f s |\n", seed_total);
  std::printf("| ratio seed / convguard | %.1fx |\n", seed_total / ours.seconds);
}

// ---- per backend ---------------------------------------------------------------------

struct BenchConfig {
  std::string exe;
  std::vector<std::string> backends;  // empty: every available one
  std::string small = "n1_c8_h16_w16_k8_r3_s3_p1";
  std::string medium = "n1_c32_h56_w56_k32_r3_s3_p1";
  int count_small = 200;
  int count_medium = 20;
  int starts = 1;
  int rounds = 8;
};

// Why `name` cannot be measured here, or nullopt when it can.
std::optional<std::string> Unavailable(const std::string& name) {
  const std::vector<std::string> registered = RegisteredBackends();
  const bool listed = std::find(registered.begin(), registered.end(), name) != registered.end();
  if (name == "cudnn") {
#ifdef CONVGUARD_HAVE_CUDNN
    if (!CudnnDevicePresent()) return "built with cuDNN, but no NVIDIA GPU is present";
    return std::nullopt;
#else
    return "not built (configure where CUDA and cuDNN are found, -DCONVGUARD_ENABLE_CUDA=ON)";
#endif
  }
  if (name == "onednn" && !listed)
    return "not built (oneDNN was not found when configuring; Debian: libdnnl-dev)";
  if (name == "torch") {
    StatusOr<std::string> python = FindTorchPython("");
    if (!python.ok()) return python.status().message();
    StatusOr<std::vector<std::string>> command = TorchWorkerCommand("");
    if (!command.ok()) return command.status().message();
    return std::nullopt;
  }
  if (!listed) return "not a backend of this build";
  return std::nullopt;
}

struct Row {
  std::string backend;
  std::string problem_label;
  std::string algorithm;
  std::string implementation;
  double in_process_ms = 0;
  double warm_ms = 0;
  double first_verdict_s = 0;
  // Per probe, over every timed probe of the column: where the time went.
  std::optional<StageMs> in_process_stages;  // absent: the child did not say
  WorkerTime worker;                         // summed over the warm worker's replies
  double warm_total_ms = 0;                  // the warm worker's timed Runs, summed
};

// The algorithm a probe without one gets (the backend's first), as the worker says.
std::string DefaultAlgorithm(const ProbeRunResult& r) {
  return r.verdicts.empty() ? std::string("?") : r.verdicts.front().algorithm;
}

void ExpectOk(const ProbeRunResult& r, const std::string& what) {
  if (r.verdicts.size() != 1)
    Die(what + ": expected one verdict, got " + std::to_string(r.verdicts.size()));
  const Verdict& v = r.verdicts.front();
  if (v.kind != VerdictKind::kOk) {
    Die(what + ": " + std::string(VerdictName(v.kind)) + ": " + v.message);
  }
}

ProbeOptions PerBackendOptions(const BenchConfig& c, const std::string& backend) {
  // One worker per device; every visible GPU gets one (CUDA_VISIBLE_DEVICES=0 measures
  // one GPU alone on a machine with several).
  ProbeOptions o = Options(c.exe, backend, 1);
  o.redo = true;  // (no store: every Run probes again)
  return o;
}

// What a timing child printed: per probe, the whole and (where it said) each stage.
struct ChildTiming {
  double per_probe_ms = 0;
  std::optional<StageMs> stages;  // per probe
};

// Runs a timing child (argv) and returns the per-probe milliseconds of the JSON line it
// prints last: {"per_probe_ms": ..., "outcomes": {"ok": N}, "stage_ms": {...}, ...}.
ChildTiming TimingChildMs(const std::vector<std::string>& argv, const std::string& what) {
  os::SpawnOptions s;
  s.argv = argv;
  s.stderr_mode = os::StderrMode::kInherit;
  s.die_with_parent = true;
  auto child = os::SpawnChild(s);
  if (!child.ok()) Die(what + ": " + child.status().ToString());
  child->CloseStdin();
  std::string out;
  uint8_t buf[4096];
  const os::Deadline deadline = os::Deadline::After(std::chrono::minutes(30));
  for (;;) {
    StatusOr<os::IoResult> r = os::ReadSome(child->stdout_fd(), buf, deadline);
    if (!r.ok() || !r->data()) break;
    out.append(reinterpret_cast<const char*>(buf), r->bytes);
  }
  auto exit = child->WaitExit(std::chrono::seconds(60));
  if (!exit.ok() || !exit->exited() || exit->exit_code != 0) {
    Die(what + " failed: " + (exit.ok() ? exit->ToString() : exit.status().ToString()));
  }
  const size_t end = out.find_last_not_of("\r\n");
  const size_t begin = end == std::string::npos ? std::string::npos : out.rfind('\n', end);
  const std::string line =
      end == std::string::npos ? "" : out.substr(begin == std::string::npos ? 0 : begin + 1);
  const nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || !j.contains("per_probe_ms") || !j.contains("outcomes")) {
    Die(what + " printed no result: '" + line + "'");
  }
  const nlohmann::json& outcomes = j["outcomes"];
  if (outcomes.size() != 1 || !outcomes.contains("ok")) {
    Die(what + ": the probes did not all end OK: " + outcomes.dump() + " " +
        j.value("first_message", ""));
  }
  ChildTiming t;
  t.per_probe_ms = j["per_probe_ms"].get<double>();
  if (j.contains("stage_ms") && j["stage_ms"].is_object()) {
    const nlohmann::json& st = j["stage_ms"];
    t.stages = StageMs{st.value("prep", 0.0), st.value("run", 0.0), st.value("check", 0.0)};
  }
  return t;
}

// The in-process figure of one round: `count` probes in a fresh process that holds the
// backend itself. For torch, the worker script's own probe code (--time-in-process); for
// the others, this program's --in-process-child. A fresh process each time, so that its
// memory starts out like a fresh worker's: a CPU backend's speed depends on where its
// buffers land, and a long-lived process (this one) would be compared with a young one.
ChildTiming InProcessRound(const std::string& backend, const Problem& p,
                           const std::string& algorithm, int count) {
  std::vector<std::string> argv;
  if (backend == "torch") {
    StatusOr<std::vector<std::string>> command = TorchWorkerCommand("");
    if (!command.ok()) Die("torch: " + command.status().message());
    argv = *command;
    for (const std::string& a :
         {std::string("--backend"), std::string("torch"), std::string("--time-in-process"),
          ToCanonical(p), std::string("--count"), std::to_string(count)}) {
      argv.push_back(a);
    }
  } else {
    StatusOr<std::string> self = os::SelfExecutablePath();
    if (!self.ok()) Die("cannot find this program: " + self.status().ToString());
    argv = {*self, "--in-process-child", backend, ToCanonical(p), algorithm, std::to_string(count)};
  }
  return TimingChildMs(argv, backend + " in-process timing of " + ToCanonical(p));
}

// --in-process-child BACKEND PROBLEM ALGORITHM COUNT: the backend created and initialised
// once in this process, one untimed probe, then COUNT timed ones; one JSON line.
int InProcessChild(const std::string& backend, const std::string& problem,
                   const std::string& algorithm, const std::string& count_text) {
  StatusOr<Problem> p = ParseProblem(problem);
  if (!p.ok()) Usage("--in-process-child: " + p.status().message());
  const int count = std::atoi(count_text.c_str());
  if (count < 1) Usage("--in-process-child: the count must be >= 1");
  StatusOr<std::unique_ptr<Backend>> created = CreateBackend(backend);
  if (!created.ok()) Die(created.status().ToString());
  std::unique_ptr<Backend> b = std::move(created).value();
  if (Status s = b->Init(); !s.ok()) Die("init: " + s.ToString());
  std::string why;
  if (!ProbeInProcess(*b, *p, algorithm, &why)) Die("in-process: " + why);  // first call
  StageMs stages;
  const auto start = Clock::now();
  for (int i = 0; i < count; ++i) {
    if (!ProbeInProcess(*b, *p, algorithm, &why, 1, 3, &stages)) Die("in-process: " + why);
  }
  const double total = Seconds(start, Clock::now());
  const nlohmann::json j = {{"backend", backend},
                            {"problem", ToCanonical(*p)},
                            {"algorithm", algorithm},
                            {"count", count},
                            {"total_s", total},
                            {"per_probe_ms", 1e3 * total / count},
                            {"stage_ms",
                             {{"prep", stages.prep / count},
                              {"run", stages.run / count},
                              {"check", stages.check / count}}},
                            {"outcomes", {{"ok", count}}}};
  std::printf("%s\n", j.dump().c_str());
  return 0;
}

// ---- pipe: the protocol's cost with no backend -----------------------------------------

// The request and reply a worker exchanges for the small problem, with the fields a real
// reply carries, so that the frames are as long as real ones.
worker::ProbeRequest EchoRequest(int64_t id) {
  worker::ProbeRequest r;
  r.id = id;
  r.problem = "n1_c8_h16_w16_k8_r3_s3_p1";
  r.algorithm = "implicit_gemm";
  return r;
}

void SpinFor(double us) {
  const auto start = Clock::now();
  while (std::chrono::duration<double, std::micro>(Clock::now() - start).count() < us) {
  }
}

// --echo-child WORK_US: reads request frames on stdin the way worker_main does (blocking
// in ReadSome), and per request sends the two phase notices and a reply whose stage_ms
// "total" is its own time from having the request to having encoded the reply, computing
// (spinning) WORK_US microseconds in between.
int EchoChild(const std::string& work_text) {
  char* end = nullptr;
  const double work_us = std::strtod(work_text.c_str(), &end);
  if (end == work_text.c_str() || *end != '\0' || work_us < 0) Usage("--echo-child: bad WORK_US");
  worker::FrameDecoder decoder;
  uint8_t buf[65536];
  auto send = [](const std::string& payload) {
    StatusOr<std::string> frame = worker::EncodeFrame(payload);
    if (!frame.ok()) Die("echo child: " + frame.status().ToString());
    if (!os::WriteAll(1, *frame, os::Deadline::Never()).ok()) std::exit(1);
  };
  for (;;) {
    std::optional<worker::DecodedFrame> frame = decoder.Next();
    if (!frame) {
      StatusOr<os::IoResult> r = os::ReadSome(0, buf, os::Deadline::Never());
      if (!r.ok() || !r->data()) return 0;
      decoder.Feed(std::span<const uint8_t>(buf, r->bytes));
      continue;
    }
    const auto start = Clock::now();
    StatusOr<worker::Message> m = worker::DecodeMessage(frame->payload, /*from_worker=*/false);
    if (!m.ok() || !m->probe) Die("echo child: not a probe request");
    const int64_t id = m->probe->id;
    send(worker::EncodePhase({id, worker::ProbeStage::kRun}));
    SpinFor(work_us);
    send(worker::EncodePhase({id, worker::ProbeStage::kCheck}));
    worker::ProbeReply reply;
    reply.id = id;
    reply.outcome = worker::ProbeOutcome::kOk;
    reply.algorithm = m->probe->algorithm;
    reply.times_ms = {0.0123, 0.0121, 0.0122};
    reply.implementation = "echo";
    reply.check = "sampled:256";
    reply.tolerance = 1.2e-5;
    reply.max_abs_error = 2.3e-7;
    reply.max_rel_error = 4.5e-8;
    reply.stage_ms = {{"prep", 0.01}, {"run", work_us / 1e3}, {"check", 0.01}};
    reply.stage_ms["total"] = MsSince(start);
    send(worker::EncodeProbeReply(reply));
  }
}

// One round trip to an echo child: request out, frames in until the reply. Returns the
// round trip and the child's own total, in ms. `block`: wait in poll (as the engine does);
// otherwise poll without waiting, again and again.
std::pair<double, double> EchoRoundTrip(os::ChildProcess& child, worker::FrameDecoder& decoder,
                                        int64_t id, bool block) {
  StatusOr<std::string> frame = worker::EncodeFrame(worker::EncodeProbeRequest(EchoRequest(id)));
  if (!frame.ok()) Die("pipe: " + frame.status().ToString());
  const auto start = Clock::now();
  if (!os::WriteAll(child.stdin_fd(), *frame, os::Deadline::After(std::chrono::seconds(5))).ok())
    Die("pipe: the echo child stopped reading");
  uint8_t buf[65536];
  const int fds[1] = {child.stdout_fd()};
  for (;;) {
    while (std::optional<worker::DecodedFrame> f = decoder.Next()) {
      StatusOr<worker::Message> m = worker::DecodeMessage(f->payload, /*from_worker=*/true);
      if (!m.ok()) Die("pipe: a bad frame from the echo child: " + m.status().ToString());
      if (m->result) return {MsSince(start), m->result->stage_ms.at("total")};
    }
    const os::Deadline wait = block ? os::Deadline::After(std::chrono::seconds(10))
                                    : os::Deadline::After(os::Duration::zero());
    StatusOr<std::vector<int>> ready = os::PollReadable(fds, wait);
    if (!ready.ok()) Die("pipe: " + ready.status().ToString());
    if (ready->empty()) {
      if (block) Die("pipe: the echo child did not answer within 10 s");
      continue;
    }
    StatusOr<os::IoResult> r =
        os::ReadSome(child.stdout_fd(), buf, os::Deadline::After(os::Duration::zero()));
    if (!r.ok() || r->eof()) Die("pipe: the echo child is gone");
    if (r->data()) decoder.Feed(std::span<const uint8_t>(buf, r->bytes));
  }
}

void PipeSection(bool quick) {
  StatusOr<std::string> self = os::SelfExecutablePath();
  if (!self.ok()) Die("cannot find this program: " + self.status().ToString());
  const int count = quick ? 100 : 400;  // per mode and work, in 8 alternating blocks
  std::printf(
      "Round trip minus the child's own time (median; p90 in brackets), %d round "
      "trips per cell.\n\n",
      count);
  std::printf(
      "| work per request | this process blocked in poll | polling, not blocking | "
      "blocked - polling |\n| --- | --- | --- | --- |\n");
  for (const double work_us : {0.0, 300.0, 1000.0, 4000.0, 20000.0}) {
    os::SpawnOptions s;
    s.argv = {*self, "--echo-child", std::to_string(work_us)};
    s.die_with_parent = true;
    StatusOr<os::ChildProcess> child = os::SpawnChild(s);
    if (!child.ok()) Die("pipe: " + child.status().ToString());
    worker::FrameDecoder decoder;
    int64_t id = 0;
    (void)EchoRoundTrip(*child, decoder, ++id, true);  // the child's first request: untimed
    const int n = work_us >= 20000 ? count / 4 : count;
    std::vector<double> extra[2];
    for (int block = 0; block < 8; ++block) {
      for (const bool blocked : {true, false}) {
        for (int i = 0; i < n / 8; ++i) {
          const auto [round_trip, own] = EchoRoundTrip(*child, decoder, ++id, blocked);
          extra[blocked ? 0 : 1].push_back(round_trip - own);
        }
      }
    }
    auto cell = [](std::vector<double> v) {
      std::sort(v.begin(), v.end());
      char text[64];
      std::snprintf(text, sizeof text, "%.3f ms (%.3f)", v[v.size() / 2], v[v.size() * 9 / 10]);
      return std::string(text);
    };
    std::printf("| %g ms | %s | %s | %+.3f ms |\n", work_us / 1e3, cell(extra[0]).c_str(),
                cell(extra[1]).c_str(), Median(extra[0]) - Median(extra[1]));
    child->CloseStdin();
    (void)child->WaitExit(std::chrono::seconds(5));
  }
}

Row MeasureBackend(const BenchConfig& c, const std::string& backend, const std::string& label,
                   const Problem& p, int count) {
  Row row;
  row.backend = backend;
  row.problem_label = label;
  const std::string what = backend + " " + label + " " + ToCanonical(p);

  // A warm worker: started, then one untimed probe of the problem, which also says which
  // algorithm a probe without one gets.
  auto engine = ProbeEngine::Start(PerBackendOptions(c, backend), nullptr);
  if (!engine.ok()) Die(what + ": engine: " + engine.status().ToString());
  auto warm_up = (*engine)->Run({{p, ""}});
  if (!warm_up.ok()) Die(what + ": " + warm_up.status().ToString());
  ExpectOk(*warm_up, what);
  row.algorithm = DefaultAlgorithm(*warm_up);
  row.implementation = warm_up->verdicts.front().implementation;
  const std::vector<ProbeJob> job = {{p, row.algorithm}};  // no algorithms round trip

  // Alternating rounds, so that a change in the machine's load falls on both columns;
  // each column is the median of its rounds' per-probe times (a burst of load elsewhere
  // spoils a round, not the figure).
  const int rounds = std::min(c.rounds, count);
  std::vector<double> warm_ms, in_process_ms;
  StageMs in_process_stages;
  bool stages_said = true;
  for (int round = 0; round < rounds; ++round) {
    const int n = count / rounds + (round < count % rounds ? 1 : 0);
    auto start = Clock::now();
    for (int i = 0; i < n; ++i) {
      auto r = (*engine)->Run(job);
      if (!r.ok()) Die(what + ": " + r.status().ToString());
      ExpectOk(*r, what);
      const WorkerTime& w = r->worker_time;
      row.worker.replies += w.replies;
      row.worker.round_trip_ms += w.round_trip_ms;
      row.worker.worker_total_ms += w.worker_total_ms;
      row.worker.prep_ms += w.prep_ms;
      row.worker.run_ms += w.run_ms;
      row.worker.check_ms += w.check_ms;
    }
    const double round_ms = 1e3 * Seconds(start, Clock::now());
    row.warm_total_ms += round_ms;
    warm_ms.push_back(round_ms / n);
    const ChildTiming in_process = InProcessRound(backend, p, row.algorithm, n);
    in_process_ms.push_back(in_process.per_probe_ms);
    if (in_process.stages) {
      in_process_stages.prep += in_process.stages->prep * n;
      in_process_stages.run += in_process.stages->run * n;
      in_process_stages.check += in_process.stages->check * n;
    } else {
      stages_said = false;
    }
  }
  if (stages_said) {
    row.in_process_stages = StageMs{in_process_stages.prep / count, in_process_stages.run / count,
                                    in_process_stages.check / count};
  }
  row.warm_ms = Median(warm_ms);
  row.in_process_ms = Median(in_process_ms);
  engine->reset();

  // The first verdict, start-up included.
  std::vector<double> starts;
  for (int i = 0; i < c.starts; ++i) {
    const Timed t = EngineRun(PerBackendOptions(c, backend), {p}, /*include_start=*/true);
    ExpectOk(t.result, what);
    starts.push_back(t.seconds);
  }
  row.first_verdict_s = Median(starts);
  return row;
}

void BackendsSection(const BenchConfig& c) {
  std::vector<std::string> names = c.backends;
  if (names.empty()) names = {"cudnn", "torch", "onednn", "reference"};
  StatusOr<Problem> small = ParseProblem(c.small);
  StatusOr<Problem> medium = ParseProblem(c.medium);
  if (!small.ok()) Usage("--small: " + small.status().message());
  if (!medium.ok()) Usage("--medium: " + medium.status().message());

  std::vector<Row> rows;
  std::vector<std::string> skipped;
  double torch_search_s = -1;
  for (const std::string& name : names) {
    if (name == "torch") {
      // The interpreter search (`python -c "import torch"`) runs once per convguard
      // process, before its first torch worker; timed here on its own.
      const auto t0 = Clock::now();
      (void)FindTorchPython("");
      torch_search_s = Seconds(t0, Clock::now());
    }
    if (std::optional<std::string> why = Unavailable(name)) {
      skipped.push_back(name + ": " + *why);
      continue;
    }
    rows.push_back(MeasureBackend(c, name, "small", *small, c.count_small));
    rows.push_back(MeasureBackend(c, name, "medium", *medium, c.count_medium));
  }

  std::printf(
      "small = %s (%.2f MFLOP), medium = %s (%.1f MFLOP); %d and %d timed probes per "
      "measurement in %d alternating rounds (per probe: the median round); first verdict: median "
      "of %d start(s)\n\n",
      ToCanonical(*small).c_str(), 2e-6 * static_cast<double>(small->macs()),
      ToCanonical(*medium).c_str(), 2e-6 * static_cast<double>(medium->macs()), c.count_small,
      c.count_medium, c.rounds, c.starts);
  std::printf(
      "| backend | problem | algorithm | in-process, per probe | warm worker, per probe | "
      "worker - in-process | worker / in-process | first verdict (start-up + probe) | "
      "first verdict / warm probe |\n");
  std::printf("| --- | --- | --- | --- | --- | --- | --- | --- | --- |\n");
  for (const Row& r : rows) {
    std::printf("| %s | %s | %s | %.3f ms | %.3f ms | %+.3f ms | %.2fx | %.3f s | %.0fx |\n",
                r.backend.c_str(), r.problem_label.c_str(), r.algorithm.c_str(), r.in_process_ms,
                r.warm_ms, r.warm_ms - r.in_process_ms, r.warm_ms / r.in_process_ms,
                r.first_verdict_s, 1e3 * r.first_verdict_s / r.warm_ms);
  }
  std::printf("\n");
  // Where a probe's time goes: the two columns above, taken apart.
  std::printf(
      "Where a probe's time goes, ms per probe (mean over every timed probe): each stage "
      "in-process / in the warm worker (its own account in its replies), then the worker's "
      "whole time per request, the round trip as the engine's watchdog saw it (request "
      "written to reply read) and the engine's Run call\n\n");
  std::printf(
      "| backend | problem | prep | run | check | worker total | round trip | engine Run | "
      "protocol (round trip - worker total) | engine (Run - round trip) |\n");
  std::printf("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n");
  for (const Row& r : rows) {
    const WorkerTime& w = r.worker;
    if (w.replies == 0) {
      std::printf("| %s | %s | the worker gave no account of its time |||||||| \n",
                  r.backend.c_str(), r.problem_label.c_str());
      continue;
    }
    const double n = static_cast<double>(w.replies);
    const auto pair = [&](double in_process, double worker) {
      char text[64];
      if (r.in_process_stages) {
        std::snprintf(text, sizeof text, "%.3f / %.3f", in_process, worker / n);
      } else {
        std::snprintf(text, sizeof text, "- / %.3f", worker / n);
      }
      return std::string(text);
    };
    const StageMs in = r.in_process_stages.value_or(StageMs{});
    const double run_call = r.warm_total_ms / n;
    std::printf("| %s | %s | %s | %s | %s | %.3f | %.3f | %.3f | %+.3f | %+.3f |\n",
                r.backend.c_str(), r.problem_label.c_str(), pair(in.prep, w.prep_ms).c_str(),
                pair(in.run, w.run_ms).c_str(), pair(in.check, w.check_ms).c_str(),
                w.worker_total_ms / n, w.round_trip_ms / n, run_call,
                (w.round_trip_ms - w.worker_total_ms) / n, run_call - w.round_trip_ms / n);
  }
  std::printf("\n");
  for (const Row& r : rows) {
    if (r.problem_label == "small")
      std::printf("- %s runs: %s\n", r.backend.c_str(), r.implementation.c_str());
  }
  if (torch_search_s >= 0) {
    std::printf(
        "- torch: the interpreter search (`python -c \"import torch\"` per candidate) took %.2f s; "
        "a "
        "`convguard probe --backend torch` pays it once before its first worker, on top of the "
        "first-verdict column\n",
        torch_search_s);
  }
  const bool torch_measured =
      std::any_of(rows.begin(), rows.end(), [](const Row& r) { return r.backend == "torch"; });
  if (torch_measured)
    std::printf(
        "- torch in-process: the worker script's own probe code (`--time-in-process`) in one "
        "Python "
        "process, without the protocol: fill and check through libconvguard_check.so, the "
        "convolution through PyTorch\n");
  std::printf(
      "- in-process: a fresh process per round holds the backend (C++: `probe_bench "
      "--in-process-child`); "
      "the worker's own cost is the small rows' difference; on medium problems the work dominates, "
      "and a "
      "CPU backend's speed also depends on where its buffers land in memory (the same code has run "
      "up to 2x "
      "faster or slower in another process), so a medium row's ratio can fall either side of 1\n");
  for (const std::string& s : skipped) std::printf("- skipped %s\n", s.c_str());
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (std::find(args.begin(), args.end(), "--help") != args.end() ||
      std::find(args.begin(), args.end(), "-h") != args.end()) {
    std::fputs(kUsage, stdout);
    return 0;
  }
  if (!args.empty() && args[0] == "--in-process-child") {
    if (args.size() != 5) Usage("--in-process-child needs BACKEND PROBLEM ALGORITHM COUNT");
    return InProcessChild(args[1], args[2], args[3], args[4]);
  }
  if (!args.empty() && args[0] == "--echo-child") {
    if (args.size() != 2) Usage("--echo-child needs WORK_US");
    return EchoChild(args[1]);
  }
  if (args.empty() || args[0].starts_with("-")) Usage("the first argument is the convguard binary");
  BenchConfig c;
  c.exe = args[0];
  bool quick = false;
  std::vector<std::string> sections = {"overhead", "hang", "sweep", "backends"};
  std::optional<int> count_small, count_medium;
  auto int_arg = [&](size_t& i, const std::string& flag, int lo, int hi) {
    if (i + 1 >= args.size()) Usage(flag + " needs a value");
    char* end = nullptr;
    const long v = std::strtol(args[i + 1].c_str(), &end, 10);
    if (end == args[i + 1].c_str() || *end != '\0' || v < lo || v > hi) {
      Usage(flag + " '" + args[i + 1] + "' is not an integer in " + std::to_string(lo) + ".." +
            std::to_string(hi));
    }
    ++i;
    return static_cast<int>(v);
  };
  auto text_arg = [&](size_t& i, const std::string& flag) {
    if (i + 1 >= args.size()) Usage(flag + " needs a value");
    return args[++i];
  };
  for (size_t i = 1; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--quick") {
      quick = true;
    } else if (a == "--sections") {
      sections = SplitList(text_arg(i, a));
      for (const std::string& s : sections) {
        if (s != "overhead" && s != "hang" && s != "sweep" && s != "backends" && s != "replay" &&
            s != "pipe") {
          Usage("--sections: unknown section '" + s +
                "' (allowed: overhead, hang, sweep, backends, replay, pipe)");
        }
      }
    } else if (a == "--backends") {
      c.backends = SplitList(text_arg(i, a));
      const std::vector<std::string> known = RegisteredBackends();
      for (const std::string& b : c.backends) {
        if (b != "cudnn" && std::find(known.begin(), known.end(), b) == known.end()) {
          std::string list;
          for (const std::string& k : known) list += (list.empty() ? "" : ", ") + k;
          Usage("--backends: '" + b + "' is not a backend (this build knows: " + list +
                ", and cudnn where built)");
        }
      }
    } else if (a == "--small") {
      c.small = text_arg(i, a);
    } else if (a == "--medium") {
      c.medium = text_arg(i, a);
    } else if (a == "--count-small") {
      count_small = int_arg(i, a, 1, 1000000);
    } else if (a == "--count-medium") {
      count_medium = int_arg(i, a, 1, 1000000);
    } else if (a == "--starts") {
      c.starts = int_arg(i, a, 1, 100);
    } else if (a == "--rounds") {
      c.rounds = int_arg(i, a, 1, 1000);
    } else {
      Usage("unknown argument '" + a + "'");
    }
  }
  c.count_small = count_small.value_or(quick ? 40 : 200);
  c.count_medium = count_medium.value_or(quick ? 5 : 20);
  auto wanted = [&](const char* s) {
    return std::find(sections.begin(), sections.end(), s) != sections.end();
  };

  if (wanted("overhead") || wanted("hang") || wanted("sweep")) {
    std::printf("| measurement | value |\n| --- | --- |\n");
    if (wanted("overhead")) OverheadSection(c.exe, quick);
    if (wanted("hang")) HangSection(c.exe);
    if (wanted("sweep")) SweepSection(c.exe, quick);
  }
  if (wanted("backends")) {
    std::printf("\n## Per backend: in-process vs warm worker vs first verdict\n\n");
    BackendsSection(c);
  }
  if (wanted("replay")) {
    std::printf("\n## Replay: a long sequence in one worker vs in-process\n\n");
    ReplaySection(c.exe, quick);
  }
  if (wanted("pipe")) {
    std::printf("\n## The protocol without a probe: pipes, frames and wake-ups\n\n");
    PipeSection(quick);
  }
  return 0;
}
