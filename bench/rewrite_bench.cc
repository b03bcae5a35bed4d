// rewrite_bench — what each exact rewrite costs against the native problem, measured side
// by side in one run on an in-process backend, and what a cached plan lookup costs.
//
// For every problem of the lists (the seed's and ResNet-50's layers by default) and every
// candidate of every rewrite, the rewrite's executable tree is built once with the
// backend as its leaves, its weights loaded once, and then timed per call against the
// native problem run through the same backend (wall time of a call, host tensors in and
// out, as guarded execution runs it). Each variant's calls alternate with native calls,
// and its ratio is the median of its calls over the median of those native calls. Reported per
// problem: FLOPs, native median, the best candidate of each rewrite as a ratio to native, and the
// best overall (what the planner picks when every candidate is OK). Targets (issue): the best plan
// within 1.10x of native for problems of 1 GFLOP or more, within 1.50x for 10 MFLOP or more.
//
// With --device (a device backend: cudnn) the tensors live in device memory and both sides
// run device-resident, as Guard::RunOnDevice runs them: native is the problem prepared
// once (DeviceCall), each rewrite its device node over prepared leaves; every call is
// queued and waited for (wall time). Rewrites without a device node are not measured.
//
// Usage: rewrite_bench [--backend NAME] [--list FILE]... [--batch N] [--runs N]
//                      [--max-problems N] [--lookup-only] [--device]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "convguard/backend.h"
#include "convguard/fill.h"
#include "convguard/guard.h"
#include "convguard/problem_source.h"
#include "convguard/reference.h"
#include "convguard/store.h"
#include "convguard/text_forms.h"
#include "plan/internal.h"
#include "rewrite/rewrite.h"

using namespace convguard;
using Clock = std::chrono::steady_clock;

namespace {

double Ms(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0.0 : v[v.size() / 2];
}

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "rewrite_bench: %s\n", what.c_str());
  std::exit(2);
}

const char* kUsage =
    "usage: rewrite_bench [--backend NAME] [--list FILE]... [--batch N] [--runs N]\n"
    "                     [--max-problems N] [--lookup-only]\n"
    "  --backend NAME      in-process backend to time (default: onednn where built, else "
    "reference)\n"
    "  --list FILE         problem list (repeatable; default: the seed's and ResNet-50's lists)\n"
    "  --batch N           replace every problem's batch size by N (default: as listed)\n"
    "  --runs N            timed calls per variant, after one untimed call (default 5)\n"
    "  --max-problems N    stop after N problems\n"
    "  --lookup-only       only measure the cached plan lookup\n"
    "  --device            tensors in device memory, device-resident nodes (cudnn)\n";

ConvTensors<float> ExactTensors(const Problem& p) {
  ConvTensors<double> d = ConvTensors<double>::Allocate(p);
  FillExact(p, 1, d);
  ConvTensors<float> f;
  ToFloatOperands(p, d, f);
  return f;
}

// A leaf-only tree: each child slot runs on the backend as is.
StatusOr<std::unique_ptr<rewrite::ExecNode>> BuildWithBackendLeaves(Backend& backend,
                                                                    const Problem& p,
                                                                    const rewrite::Application& app,
                                                                    const std::string& algorithm) {
  std::vector<std::unique_ptr<rewrite::ExecNode>> children;
  for (const Problem& child : app.children) {
    CG_RETURN_IF_ERROR(backend.Supports(child, algorithm));
    children.push_back(plan::MakeBackendLeaf(backend, child, algorithm, nullptr));
  }
  return rewrite::FindRewrite(app.rewrite)->Build(p, app, std::move(children));
}

void CachedLookup() {
  const std::string dir = (std::filesystem::temp_directory_path() /
                           ("rewrite-bench-" + std::to_string(std::random_device{}())))
                              .string();
  std::filesystem::create_directories(dir);
  {
    StatusOr<std::unique_ptr<Store>> store = OpenSqliteStore(dir + "/v.sqlite");
    if (!store.ok()) Die(store.status().ToString());
    GuardOptions o;
    o.backend = "emulated-rdna1";
    o.probe.worker_executable = CONVGUARD_BIN;
    StatusOr<std::unique_ptr<Guard>> guard = Guard::Open(o, store->get());
    if (!guard.ok()) Die(guard.status().ToString());
    StatusOr<Problem> p = ParseProblem("n1_c16_h64_w64_k32_r3_s3_p1");
    StatusOr<Problem> child = ParseProblem("n1_c17_h64_w64_k32_r3_s3_p1");
    for (const auto& [problem, kind] :
         {std::pair{*p, VerdictKind::kHang}, std::pair{*child, VerdictKind::kOk}}) {
      Verdict v;
      v.kind = kind;
      v.stack_id = (*guard)->stack().Id();
      v.problem = ToCanonical(problem);
      v.algorithm = "direct";
      v.time_ms_median = 1;
      if (!(*store)->PutVerdict(v).ok()) Die("store write failed");
    }
    const auto plan_start = Clock::now();
    StatusOr<const Plan*> first = (*guard)->PlanFor(*p);
    const auto plan_stop = Clock::now();
    if (!first.ok()) Die(first.status().ToString());
    constexpr int kLookups = 2'000'000;
    int64_t leaves = 0;
    const auto start = Clock::now();
    for (int i = 0; i < kLookups; ++i) leaves += (*(*guard)->PlanFor(*p))->leaves;
    const auto stop = Clock::now();
    std::printf(
        "plan lookup: first (planning, store reads) %.3f ms; cached %.1f ns per lookup "
        "(%d lookups, checksum %lld)\n",
        Ms(plan_start, plan_stop), Ms(start, stop) * 1e6 / kLookups, kLookups,
        static_cast<long long>(leaves));
  }
  std::filesystem::remove_all(dir);
}

// The device node of `app` over device leaves, or an error (no device node, a child the
// backend does not support).
StatusOr<std::unique_ptr<rewrite::DeviceNode>> BuildOnDeviceWithLeaves(
    Backend& backend, const Problem& p, const rewrite::Application& app,
    const std::string& algorithm) {
  const rewrite::Rewrite* r = rewrite::FindRewrite(app.rewrite);
  if (!r->has_device_node()) return Status::Unsupported("no device node");
  std::vector<std::unique_ptr<rewrite::DeviceNode>> children;
  for (const Problem& child : app.children) {
    CG_RETURN_IF_ERROR(backend.Supports(child, algorithm));
    CG_ASSIGN_OR_RETURN(std::unique_ptr<rewrite::DeviceNode> leaf,
                        plan::MakeDeviceLeaf(backend, child, algorithm, nullptr));
    children.push_back(std::move(leaf));
  }
  return r->BuildOnDevice(p, app, std::move(children), *backend.device_memory());
}

}  // namespace

int main(int argc, char** argv) {
  std::string backend_name;
  std::vector<std::string> lists;
  int64_t batch = 0, runs = 5, max_problems = 1 << 30;
  bool lookup_only = false;
  bool on_device = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) Die(a + " needs a value");
      return argv[++i];
    };
    if (a == "--help" || a == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    } else if (a == "--backend") {
      backend_name = value();
    } else if (a == "--list") {
      lists.push_back(value());
    } else if (a == "--batch") {
      batch = std::atoll(value().c_str());
      if (batch < 1 || batch > 4096) Die("--batch must be 1..4096");
    } else if (a == "--runs") {
      runs = std::atoll(value().c_str());
      if (runs < 1 || runs > 10000) Die("--runs must be 1..10000");
    } else if (a == "--max-problems") {
      max_problems = std::atoll(value().c_str());
      if (max_problems < 1) Die("--max-problems must be at least 1");
    } else if (a == "--lookup-only") {
      lookup_only = true;
    } else if (a == "--device") {
      on_device = true;
    } else {
      Die("unknown argument '" + a + "'\n" + kUsage);
    }
  }
  CachedLookup();
  if (lookup_only) return 0;

  if (backend_name.empty()) {
    const std::vector<std::string> known = RegisteredBackends();
    backend_name =
        std::find(known.begin(), known.end(), "onednn") != known.end() ? "onednn" : "reference";
  }
  if (lists.empty()) {
    lists = {std::string(CONVGUARD_SOURCE_DIR) + "/tests/inputs/seed.list",
             std::string(CONVGUARD_SOURCE_DIR) + "/tests/inputs/resnet50.list"};
  }
  StatusOr<std::unique_ptr<Backend>> created = CreateBackend(backend_name);
  if (!created.ok()) Die(created.status().ToString());
  Backend& backend = **created;
  if (Status s = backend.Init(); !s.ok()) Die("backend init: " + s.ToString());
  std::printf("backend: %s\n", backend.Fingerprint().Summary().c_str());
  DeviceMemory* memory = backend.device_memory();
  if (on_device && memory == nullptr)
    Die("--device needs a backend with device memory (cudnn); " + backend_name + " has none");
  std::printf("tensors: %s\n", on_device ? "in device memory, device-resident nodes (--device)"
                                         : "host tensors in and out");

  std::vector<Problem> problems;
  for (const std::string& list : lists) {
    StatusOr<std::vector<ListedProblem>> listed = ReadProblemList(list);
    if (!listed.ok()) Die(listed.status().ToString());
    for (const ListedProblem& lp : *listed) {
      Problem p = lp.problem;
      if (batch > 0) p.n = batch;
      if (std::find(problems.begin(), problems.end(), p) == problems.end()) problems.push_back(p);
    }
  }
  if (static_cast<int64_t>(problems.size()) > max_problems)
    problems.resize(static_cast<size_t>(max_problems));

  std::printf(
      "\n| problem | GFLOP | native ms | pad-input-channels | pad-output-channels | spatial-tiling "
      "| "
      "batch-split | group-split | best rewrite |\n|---|---|---|---|---|---|---|---|---|\n");
  int met_big = 0, n_big = 0, met_mid = 0, n_mid = 0;
  for (const Problem& p : problems) {
    const std::string algorithm = backend.Algorithms(p).front();
    if (!backend.Supports(p, algorithm).ok()) continue;
    ConvTensors<float> native_io = ExactTensors(p);
    RunOptions once;
    once.warmup = 0;
    once.repeats = 1;
    std::unique_ptr<DeviceTensorCopy> device_io;
    std::unique_ptr<DeviceCall> native_call;
    if (on_device) {
      StatusOr<std::unique_ptr<DeviceTensorCopy>> uploaded =
          DeviceTensorCopy::Upload(*memory, p, native_io);
      if (!uploaded.ok()) Die(ToCanonical(p) + ": " + uploaded.status().ToString());
      device_io = std::move(*uploaded);
      StatusOr<std::unique_ptr<DeviceCall>> call = backend.PrepareDeviceCall(p, algorithm);
      if (!call.ok()) Die(ToCanonical(p) + ": " + call.status().ToString());
      native_call = std::move(*call);
    }
    // One call, waited for: what a guarded call costs.
    auto on_device_call = [&](auto&& enqueue) {
      Status s = memory->Begin(nullptr);
      if (s.ok()) s = enqueue();
      if (s.ok()) s = memory->Finish();
      return s;
    };
    // Every candidate of every rewrite, built once, weights loaded once.
    struct Variant {
      std::string rewrite, parameters;
      std::unique_ptr<rewrite::ExecNode> node;
      std::unique_ptr<rewrite::DeviceNode> device_node;
      std::vector<double> times;
    };
    std::vector<Variant> variants;
    for (const rewrite::Rewrite* r : rewrite::AllRewrites()) {
      for (const rewrite::Application& app : r->Candidates(p)) {
        if (on_device) {
          StatusOr<std::unique_ptr<rewrite::DeviceNode>> node =
              BuildOnDeviceWithLeaves(backend, p, app, algorithm);
          if (!node.ok()) continue;
          if (!(*node)->LoadWeights(device_io->tensors()).ok()) continue;
          variants.push_back(Variant{app.rewrite, app.parameters, nullptr, std::move(*node), {}});
          continue;
        }
        StatusOr<std::unique_ptr<rewrite::ExecNode>> node =
            BuildWithBackendLeaves(backend, p, app, algorithm);
        if (!node.ok()) continue;
        if (!(*node)->LoadWeights(native_io.weight, native_io.bias).ok()) continue;
        variants.push_back(
            Variant{app.rewrite, app.parameters, std::move(node).value(), nullptr, {}});
      }
    }
    // Each variant is timed against native calls interleaved with its own, after one
    // untimed call of each: a backend that caches a few prepared problems (oneDNN keeps
    // 16) holds both, as it does when a plan runs alone.
    std::vector<double> native_times;
    std::vector<double> variant_ratio(variants.size(), 0.0);
    bool failed = false;
    auto run_native = [&]() {
      const auto a = Clock::now();
      if (on_device) {
        failed = failed ||
                 !on_device_call([&] { return native_call->Enqueue(device_io->tensors()); }).ok();
      } else {
        failed = failed || !backend.Run(p, algorithm, native_io, once).ok();
      }
      return Ms(a, Clock::now());
    };
    run_native();
    for (size_t vi = 0; vi < variants.size() && !failed; ++vi) {
      Variant& v = variants[vi];
      std::vector<double> paired_native;
      for (int64_t i = 0; i <= runs && !failed; ++i) {  // i == 0: untimed
        const double n = run_native();
        const auto c = Clock::now();
        const Status s =
            on_device ? on_device_call([&] { return v.device_node->Execute(device_io->tensors()); })
                      : v.node->Execute(native_io);
        const auto d = Clock::now();
        if (!s.ok()) Die(ToCanonical(p) + " " + v.parameters + ": " + s.ToString());
        if (i > 0) {
          paired_native.push_back(n);
          native_times.push_back(n);
          v.times.push_back(Ms(c, d));
        }
      }
      variant_ratio[vi] = Median(v.times) / Median(paired_native);
    }
    if (variants.empty()) {
      for (int64_t i = 0; i < runs; ++i) native_times.push_back(run_native());
    }
    const double native = Median(native_times);
    std::map<std::string, std::pair<double, std::string>> best_of;  // rewrite -> (ratio, params)
    double best = 0;
    std::string best_name;
    for (size_t vi = 0; vi < variants.size(); ++vi) {
      const Variant& v = variants[vi];
      const double ratio = variant_ratio[vi];
      auto it = best_of.find(v.rewrite);
      if (it == best_of.end() || ratio < it->second.first)
        best_of[v.rewrite] = {ratio, v.parameters};
      if (best_name.empty() || ratio < best) {
        best = ratio;
        best_name = v.rewrite + " " + v.parameters;
      }
    }
    auto cell = [&](const char* name) -> std::string {
      auto it = best_of.find(name);
      if (it == best_of.end()) return "-";
      char buf[96];
      std::snprintf(buf, sizeof buf, "%.2fx (%s)", it->second.first, it->second.second.c_str());
      return buf;
    };
    const double gflop = static_cast<double>(p.flops()) / 1e9;
    std::printf("| %s | %.3f | %.3f | %s | %s | %s | %s | %s | %.2fx %s |\n",
                ToCanonical(p).c_str(), gflop, native, cell("pad-input-channels").c_str(),
                cell("pad-output-channels").c_str(), cell("spatial-tiling").c_str(),
                cell("batch-split").c_str(), cell("group-split").c_str(), best, best_name.c_str());
    std::fflush(stdout);
    if (!best_name.empty() && p.flops() >= 1'000'000'000) {
      ++n_big;
      met_big += best <= 1.10;
    }
    if (!best_name.empty() && p.flops() >= 10'000'000) {
      ++n_mid;
      met_mid += best <= 1.50;
    }
  }
  std::printf("\nbest rewrite within 1.10x of native, problems >= 1 GFLOP: %d of %d\n", met_big,
              n_big);
  std::printf("best rewrite within 1.50x of native, problems >= 10 MFLOP: %d of %d\n", met_mid,
              n_mid);
  return 0;
}
