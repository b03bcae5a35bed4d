// model_bench — what a scan costs when every layer's verdict is already in the store, the
// case a user meets on every scan after the first.
//
// For every ONNX model of a folder (the zoo that tests/zoo makes: full-size weights), the
// store is filled once (`convguard scan MODEL --probe` on the backend), then these are
// timed side by side, alternating, and the median of --runs rounds is reported:
//   full parse     the whole file parsed as a ModelProto, checked and shape-inferred
//                  (how the reader worked before it skipped the weights; the fixer still
//                  reads a model this way)
//   read           ReadModel: the structure without large tensor values, then the same
//   scan           ReadModel + ScanModel on the open store, stack identity known
//   CLI            `convguard scan MODEL --db STORE`: a process, the store opened, the stack
//                  identity remembered from an earlier run (the identity cache)
//   CLI, no cache  the same with CONVGUARD_CACHE_DIR=off: a worker says hello every time
// Target (issue): the CLI row under 100 ms for ResNet-50.
//
// Usage: model_bench --zoo DIR [--backend NAME] [--runs N] [--model NAME]...
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "convguard/probe.h"
#include "convguard/scan.h"
#include "convguard/store.h"
#include "onnx/onnx_model.h"
#include "os/pipe_io.h"
#include "os/process.h"
#include "os/system.h"

using namespace convguard;
using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

namespace {

double Ms(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0.0 : v[v.size() / 2];
}

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "model_bench: %s\n", what.c_str());
  std::exit(2);
}

const char* kUsage =
    "usage: model_bench --zoo DIR [--backend NAME] [--runs N] [--model NAME]...\n"
    "  --zoo DIR       folder of ONNX models (the zoo: build/zoo after ctest, or\n"
    "                  `python3 scripts/make_zoo.py DIR`)\n"
    "  --backend NAME  stack whose verdicts fill the store (default emulated-rdna1)\n"
    "  --runs N        rounds of every measurement (default 15)\n"
    "  --model NAME    only this model (file name without .onnx; repeatable)\n";

// Runs the convguard binary with `args` and `env`, output discarded; its exit code.
int RunConvguard(const std::vector<std::string>& args,
                 const std::vector<std::pair<std::string, std::string>>& env) {
  os::SpawnOptions o;
  o.argv = {CONVGUARD_BIN};
  o.argv.insert(o.argv.end(), args.begin(), args.end());
  o.env_set = env;
  o.stderr_mode = os::StderrMode::kDevNull;
  o.die_with_parent = true;
  StatusOr<os::ChildProcess> child = os::SpawnChild(o);
  if (!child.ok()) Die(child.status().ToString());
  child->CloseStdin();
  uint8_t buf[65536];
  const os::Deadline deadline = os::Deadline::After(std::chrono::minutes(30));
  for (;;) {
    StatusOr<os::IoResult> r = os::ReadSome(child->stdout_fd(), buf, deadline);
    if (!r.ok() || r->eof() || r->timed_out()) break;
  }
  StatusOr<os::ExitInfo> exit = child->WaitExit(std::chrono::minutes(1));
  if (!exit.ok() || !exit->exited()) Die("convguard did not exit normally");
  return exit->exit_code;
}

}  // namespace

int main(int argc, char** argv) {
  std::string zoo;
  std::string backend = "emulated-rdna1";
  int runs = 15;
  std::vector<std::string> only;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) Die(a + " needs a value\n" + kUsage);
      return argv[++i];
    };
    if (a == "--zoo") {
      zoo = next();
    } else if (a == "--backend") {
      backend = next();
    } else if (a == "--runs") {
      runs = std::atoi(next().c_str());
      if (runs < 1) Die("--runs takes a number >= 1");
    } else if (a == "--model") {
      only.push_back(next());
    } else if (a == "-h" || a == "--help") {
      std::fputs(kUsage, stdout);
      return 0;
    } else {
      Die("unknown argument '" + a + "'\n" + kUsage);
    }
  }
  if (zoo.empty()) Die(std::string("--zoo is required\n") + kUsage);
  std::vector<std::string> models;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(zoo, ec)) {
    const fs::path p = entry.path();
    if (p.extension() != ".onnx" || p.stem().string().ends_with("-dynamic")) continue;
    if (!only.empty() && std::find(only.begin(), only.end(), p.stem().string()) == only.end())
      continue;
    models.push_back(p.string());
  }
  if (ec || models.empty()) Die("no ONNX models in '" + zoo + "'");
  std::sort(models.begin(), models.end());

  const fs::path work =
      fs::temp_directory_path() / ("model-bench-" + std::to_string(std::random_device{}()));
  fs::create_directories(work);
  const std::string db = (work / "verdicts.sqlite").string();
  const std::string cache = (work / "cache").string();
  const std::vector<std::pair<std::string, std::string>> cached = {{"CONVGUARD_CACHE_DIR", cache}};
  const std::vector<std::pair<std::string, std::string>> uncached = {
      {"CONVGUARD_CACHE_DIR", "off"}};

  std::printf("model_bench: backend %s, %d rounds, medians in ms; store %s\n", backend.c_str(),
              runs, db.c_str());
  std::printf(
      "| model | file MB | convolutions | full parse | read | scan (in-process) | CLI | "
      "CLI, no identity cache |\n");
  std::printf("| --- | --- | --- | --- | --- | --- | --- | --- |\n");
  for (const std::string& model : models) {
    // Fill the store (and the identity cache) once.
    const int filled = RunConvguard(
        {"scan", model, "--backend", backend, "--probe", "--quiet", "--db", db}, cached);
    if (filled != 0 && filled != 21 && filled != 22) {
      Die("filling the store for " + model + " ended with exit status " + std::to_string(filled));
    }
    StatusOr<std::unique_ptr<Store>> store = OpenSqliteStore(db);
    if (!store.ok()) Die(store.status().ToString());
    ScanOptions scan;
    scan.probe_options.backend = backend;
    scan.probe_options.worker_executable = CONVGUARD_BIN;
    scan.probe_options.identity_cache_dir = cache;

    std::vector<double> full, read, scanned, cli, cli_uncached;
    size_t convs = 0;
    for (int r = 0; r < runs; ++r) {
      auto t0 = Clock::now();
      StatusOr<onnx_internal::LoadedModel> whole = onnx_internal::LoadModel(model, {});
      auto t1 = Clock::now();
      if (!whole.ok()) Die(whole.status().ToString());
      full.push_back(Ms(t0, t1));

      t0 = Clock::now();
      StatusOr<ModelConvs> convs_read = ReadModel(model);
      t1 = Clock::now();
      if (!convs_read.ok()) Die(convs_read.status().ToString());
      read.push_back(Ms(t0, t1));
      convs = convs_read->convs.size();

      t0 = Clock::now();
      StatusOr<ModelConvs> again = ReadModel(model);
      if (!again.ok()) Die(again.status().ToString());
      StatusOr<ScanReport> report = ScanModel(*again, scan, **store);
      t1 = Clock::now();
      if (!report.ok()) Die(report.status().ToString());
      if (report->outcome == ModelOutcome::kUnknown) Die(model + ": the store lacks verdicts");
      scanned.push_back(Ms(t0, t1));

      t0 = Clock::now();
      const int code = RunConvguard({"scan", model, "--backend", backend, "--db", db}, cached);
      t1 = Clock::now();
      if (code == 23 || code == 1 || code == 2)
        Die("the CLI scan ended with " + std::to_string(code));
      cli.push_back(Ms(t0, t1));

      t0 = Clock::now();
      (void)RunConvguard({"scan", model, "--backend", backend, "--db", db}, uncached);
      t1 = Clock::now();
      cli_uncached.push_back(Ms(t0, t1));
    }
    std::printf("| %s | %.1f | %zu | %.1f | %.2f | %.2f | %.1f | %.1f |\n",
                fs::path(model).stem().c_str(),
                static_cast<double>(fs::file_size(model)) / (1024.0 * 1024.0), convs, Median(full),
                Median(read), Median(scanned), Median(cli), Median(cli_uncached));
    std::fflush(stdout);
  }
  fs::remove_all(work, ec);
  return 0;
}
