// probe_bench — the probe engine's costs, each measured side by side in one run:
//   1. per-probe overhead: in-process vs a warm worker vs a fresh process per probe;
//   2. time from start to a HANG verdict, with the default and a short confirmation;
//   3. a sweep of 1,000 problems on the emulated RDNA1 stack vs the seed report's method
//      (one fresh process at a time, fixed 10 s timeout), the latter run on a subset and
//      extrapolated.
// Usage: probe_bench PATH/TO/convguard [--quick]. Prints a table; bench/RESULTS.md keeps
// the numbers with the machine they ran on.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "backends/reference/reference_backend.h"
#include "convguard/compare.h"
#include "convguard/fill.h"
#include "convguard/probe.h"
#include "convguard/problem_source.h"
#include "convguard/reference.h"
#include "convguard/text_forms.h"
#include "os/process.h"

using namespace convguard;
using Clock = std::chrono::steady_clock;

namespace {

double Seconds(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); }

std::vector<Problem> Grid(const std::string& spec) {
  StatusOr<GridExpansion> g = ExpandGrid(spec);
  if (!g.ok()) {
    std::fprintf(stderr, "grid: %s\n", g.status().ToString().c_str());
    std::exit(1);
  }
  return g->problems;
}

// What a worker does per probe, done in this process.
double InProcessSeconds(const std::vector<Problem>& problems) {
  std::unique_ptr<Backend> backend = MakeReferenceBackend();
  (void)backend->Init();
  const auto start = Clock::now();
  for (const Problem& p : problems) {
    ConvTensors<double> exact = ConvTensors<double>::Allocate(p);
    FillExact(p, 1, exact);
    ConvTensors<float> io = ConvTensors<float>::Allocate(p);
    for (size_t i = 0; i < exact.input.size(); ++i) io.input[i] = static_cast<float>(exact.input[i]);
    for (size_t i = 0; i < exact.weight.size(); ++i) io.weight[i] = static_cast<float>(exact.weight[i]);
    RunOptions o;
    StatusOr<RunResult> r = backend->Run(p, "direct", io, o);
    std::vector<int64_t> points = ChooseSamplePoints(p, 256, 1);
    std::vector<double> expected = ReferenceValuesAt(p, exact, points);
    Comparison c = CompareSampled(p, ResultTensor(p, io), points, expected, 0.0);
    if (!r.ok() || !c.passed()) std::fprintf(stderr, "in-process probe failed\n");
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
  if (!engine.ok()) {
    std::fprintf(stderr, "engine: %s\n", engine.status().ToString().c_str());
    std::exit(1);
  }
  const auto ready = Clock::now();
  auto r = (*engine)->Run(jobs);
  if (!r.ok()) {
    std::fprintf(stderr, "run: %s\n", r.status().ToString().c_str());
    std::exit(1);
  }
  Timed t;
  t.seconds = Seconds(include_start ? start : ready, Clock::now());
  t.result = std::move(*r);
  return t;
}

// One fresh `convguard probe` process per problem, killed after `timeout_s` from outside:
// the seed report's method (its in-process alarm cannot end a GPU hang; an outside kill
// is the most it could do). Returns wall seconds and whether it was killed.
std::pair<double, bool> FreshProcess(const std::string& exe, const std::string& backend, const Problem& p,
                                     double timeout_s) {
  os::SpawnOptions s;
  s.argv = {exe, "probe", ToCanonical(p), "--backend", backend, "--no-store", "--workers", "1",
            "--timeout", "86400000", "--confirm-floor", "86400000"};
  s.stderr_mode = os::StderrMode::kDevNull;
  const auto start = Clock::now();
  auto child = os::SpawnChild(s);
  if (!child.ok()) return {0, false};
  child->CloseStdin();
  auto exit = child->WaitExit(std::chrono::duration_cast<os::Duration>(std::chrono::duration<double>(timeout_s)));
  bool killed = false;
  if (exit.ok() && exit->running()) {
    (void)child->KillAndReap(std::chrono::seconds(5));
    killed = true;
  } else if (!exit.ok() || !exit->exited() || (exit->exit_code != 0 && exit->exit_code < 10)) {
    std::fprintf(stderr, "fresh probe of %s failed: %s\n", ToCanonical(p).c_str(),
                 exit.ok() ? exit->ToString().c_str() : exit.status().ToString().c_str());
    std::exit(1);
  }
  return {Seconds(start, Clock::now()), killed};
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: probe_bench PATH/TO/convguard [--quick]\n");
    return 2;
  }
  const std::string exe = argv[1];
  const bool quick = argc > 2 && std::string(argv[2]) == "--quick";
  std::printf("| measurement | value |\n| --- | --- |\n");

  // 1. Per-probe overhead on 200 tiny problems (4x4..8x8, 2..4 channels).
  const std::vector<Problem> tiny = Grid("c=2,4 k=2,4 hw=4..8 r=1,3 n=1,2 p=same");
  const double in_process = InProcessSeconds(tiny);
  const Timed warm = EngineRun(Options(exe, "reference", 1), tiny, /*include_start=*/false);
  const size_t fresh_n = quick ? 5 : 20;
  double fresh_total = 0;
  for (size_t i = 0; i < fresh_n; ++i) fresh_total += FreshProcess(exe, "reference", tiny[i], 60).first;
  std::printf("| tiny problems | %zu |\n", tiny.size());
  std::printf("| in-process, per probe | %.3f ms |\n", 1e3 * in_process / tiny.size());
  std::printf("| warm worker (1), per probe | %.3f ms |\n", 1e3 * warm.seconds / tiny.size());
  std::printf("| fresh process per probe (%zu probes) | %.1f ms |\n", fresh_n, 1e3 * fresh_total / fresh_n);

  // 2. Time to a HANG verdict: a problem that should take milliseconds (16->16 at 34x34,
  // about 5 MFLOP) and the seed's 64x64 problem, with the default and a short
  // confirmation floor. Worker start-up and calibration are included.
  for (const char* spec : {"c=16 k=16 hw=34 r=3 p=same", "c=16 k=32 hw=64 r=3 p=same"}) {
    const std::vector<Problem> hang = Grid(spec);
    for (double floor_ms : {3000.0, 700.0}) {
      ProbeOptions o = Options(exe, "emulated-rdna1", 1);
      o.deadlines.confirm_floor_ms = floor_ms;
      const Timed t = EngineRun(o, hang, true);
      const Verdict& v = t.result.verdicts.at(0);
      std::printf("| start to %s, %s, confirm floor %.0f ms | %.2f s (deadlines %s) |\n",
                  std::string(VerdictName(v.kind)).c_str(), spec, floor_ms, t.seconds, v.message.substr(0, v.message.find("; worker")).c_str());
    }
  }

  // 3. A 1,000-problem sweep on the emulated stack vs the seed's method.
  const std::string spec = quick ? "c=3,16 k=16,32 hw=28..44:4 r=3 p=same"
                                 : "c=3,4,8,16,32 k=4,8,16,32,64 hw=8..44:4 r=1,3 p=same n=1,2";
  const std::vector<Problem> sweep = Grid(spec);
  const Timed ours = EngineRun(Options(exe, "emulated-rdna1", 2), sweep, true);
  int64_t hangs = ours.result.progress.by_kind[static_cast<int>(VerdictKind::kHang)];
  std::printf("| sweep problems (%s) | %zu, %lld HANG |\n", spec.c_str(), sweep.size(), static_cast<long long>(hangs));
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
  for (size_t i = 0; i < sub_hang; ++i) hang_s += FreshProcess(exe, "emulated-rdna1", hanging[i * hanging.size() / sub_hang], 10.0).first;
  for (size_t i = 0; i < sub_ok; ++i) ok_s += FreshProcess(exe, "emulated-rdna1", finishing[i * finishing.size() / sub_ok], 10.0).first;
  const double per_hang = sub_hang ? hang_s / sub_hang : 10.0;
  const double per_ok = sub_ok ? ok_s / sub_ok : 0.0;
  const double seed_total = per_hang * hanging.size() + per_ok * finishing.size();
  std::printf("| seed method, measured on %zu hanging + %zu finishing | %.2f s per hang, %.3f s per other |\n",
              sub_hang, sub_ok, per_hang, per_ok);
  std::printf("| seed method, extrapolated to the sweep | %.0f s |\n", seed_total);
  std::printf("| ratio seed / convguard | %.1fx |\n", seed_total / ours.seconds);
  return 0;
}
