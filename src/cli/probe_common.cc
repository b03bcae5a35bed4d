#include "cli/probe_common.h"

#include <algorithm>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "backends/inject/fault_rules.h"
#include "convguard/backend.h"
#include "convguard/exit_status.h"
#include "os/system.h"
#include "worker/protocol.h"

namespace convguard::cli {

std::vector<FlagSpec> EngineFlagSpecs() {
  std::string backends;
  for (const std::string& b : RegisteredBackends()) backends += (backends.empty() ? "" : ", ") + b;
  return {
      {"--backend", "NAME",
       "backend to probe, one of: " + backends +
           " (default: the GPU's stack where there is a GPU, else onednn)"},
      {"--python", "PATH",
       "interpreter for the torch backend (default: the first that imports torch)"},
      {"--algo", "NAME",
       "algorithm; '*' for every one the backend offers (default: its own choice)"},
      {"--inject", "FILE", "fault-injection rules wrapping the backend (docs/fault-injection.md)"},
      {"--db", "PATH|CONNINFO",
       "verdict store: an SQLite file, or a PostgreSQL connection string (postgresql://..., "
       "service=NAME, host=... dbname=...; docs/store-postgresql.md) (default: $CONVGUARD_DB "
       "or ~/.local/share/convguard/verdicts.sqlite)"},
      DbWaitFlagSpec(),
      {"--no-store", "", "do not read or write a store"},
      {"--redo", "", "probe again even when the store already has a verdict"},
      {"--workers", "N", "workers per device (default: one per CPU core, or one per GPU)"},
      {"--standby", "N",
       "workers per device kept started beside the busy ones, so a killed worker is swapped, "
       "not restarted (default 1, and one more, up to 3, each time a swap has to wait for a "
       "start; N: exactly N; 0: none)"},
      {"--devices", "LIST", "GPU indices to use, e.g. 0,1 (default: every visible GPU)"},
      {"--check", "MODE", "none, sampled (default) or full comparison against float64"},
      {"--samples", "N", "random interior points of a sampled check (default 256)"},
      {"--seed", "N", "seed of the exact input filling (default 1)"},
      {"--warmup", "N", "untimed runs before timing (default 1)"},
      {"--repeats", "N", "timed runs (default 3)"},
      {"--timeout", "MS", "fixed first-attempt run deadline in ms (default: derived, see below)"},
      {"--deadline-floor", "MS", "smallest first-attempt run deadline (default 250)"},
      {"--deadline-factor", "X", "multiple of the expected run time allowed (default 10)"},
      {"--deadline-cap", "MS", "largest deadline of any attempt (default 120000)"},
      {"--compile-allowance", "MS", "first-call compilation allowance (default: the backend's)"},
      {"--confirm-floor", "MS", "smallest deadline of the hang confirmation (default 3000)"},
      {"--confirm-factor", "X", "confirmation deadline as a multiple of the first (default 3)"},
      {"--confirm-fresh", "",
       "confirm every first-deadline miss in another fresh worker, also a worker's first "
       "problem (default: that one is waited for in place, in its own fresh worker)"},
      {"--startup-deadline", "MS", "worker start-up until ready (default 60000)"},
      {"--worker-memory", "SIZE",
       "address-space cap of each worker, e.g. 8G or 512M; 'none' (default: the machine's "
       "memory for CPU backends, none for GPU and PyTorch workers)"},
      {"--worker-cpu-seconds", "N", "CPU seconds each worker may use in all (default: no cap)"},
  };
}

std::string BackendsHelp() {
  std::string out =
      "backends on this machine (where each runs; the knobs that make a stack variant):\n";
  for (const BackendDescriptor& d : AvailableBackends()) {
    out += "  " + d.name + ": " + d.summary + "\n      runs in " +
           (d.worker == WorkerKind::kPython ? "a Python worker" : "convguard worker") +
           (d.in_process ? "; may run in this process (run, guard)" : "; never in this process");
    if (!d.knobs.empty()) {
      std::string knobs;
      for (const std::string& k : d.knobs) knobs += (knobs.empty() ? "" : ", ") + k;
      out += "; knobs: " + knobs;
    }
    out += "\n";
  }
  return out;
}

std::string EngineFlagsHelp() {
  return BackendsHelp() +
         "deadlines: the first attempt's run stage may take floor + compile allowance +\n"
         "factor x the expected time (from calibration, then learned), at most the cap. A\n"
         "probe that misses it is killed (SIGKILL to its worker's process group) and re-run\n"
         "once in a fresh worker under the confirmation deadline: finishing then gives SLOW,\n"
         "missing it again gives HANG. So a hang of a millisecond problem is decided in about\n"
         "floor + confirm-floor (3.3 s by default); lower --confirm-floor decides faster but\n"
         "calls problems that take longer than it hangs.\n";
}

namespace {

Status SetDouble(const FlagParser& f, const std::string& flag, double lo, double hi, double& out) {
  if (!f.Has(flag)) return Status::Ok();
  CG_ASSIGN_OR_RETURN(out, ParseDoubleFlag(flag, f.Get(flag), lo, hi));
  return Status::Ok();
}

Status SetInt(const FlagParser& f, const std::string& flag, int64_t lo, int64_t hi, int64_t& out) {
  if (!f.Has(flag)) return Status::Ok();
  CG_ASSIGN_OR_RETURN(out, ParseIntFlag(flag, f.Get(flag), lo, hi));
  return Status::Ok();
}

// --worker-memory: "none" (0: no cap), or a size with an optional binary suffix K, M, G, T
// (no suffix: bytes), at least 64M: less than that cannot even load a backend.
StatusOr<int64_t> ParseWorkerMemory(const std::string& text) {
  if (text == "none") return int64_t{0};
  const auto bad = [&] {
    return Status::InvalidArgument("--worker-memory '" + text +
                                   "' is not a size; allowed: a number with K, M, G or T "
                                   "(e.g. 8G, 512M), at least 64M, or 'none'");
  };
  if (text.empty() || text.size() > 20) return bad();
  size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
  if (digits == 0 || digits > 19) return bad();  // 19 digits always fit unsigned 64 bits
  const std::string suffix = text.substr(digits);
  int shift = 0;
  if (suffix == "K" || suffix == "k")
    shift = 10;
  else if (suffix == "M" || suffix == "m")
    shift = 20;
  else if (suffix == "G" || suffix == "g")
    shift = 30;
  else if (suffix == "T" || suffix == "t")
    shift = 40;
  else if (!suffix.empty())
    return bad();
  const unsigned long long number = std::stoull(text.substr(0, digits));
  if (number > (static_cast<unsigned long long>(INT64_MAX) >> shift)) return bad();
  const int64_t bytes = static_cast<int64_t>(number << shift);
  if (bytes < (int64_t{64} << 20)) return bad();
  return bytes;
}

}  // namespace

StatusOr<ProbeOptions> ProbeOptionsFromFlags(const FlagParser& f) {
  ProbeOptions o;
  o.identity_cache_dir = DefaultIdentityCacheDir();
  const std::vector<std::string> known = RegisteredBackends();
  o.backend = f.Has("--backend") ? f.Get("--backend") : DefaultBackend(o.identity_cache_dir);
  if (std::find(known.begin(), known.end(), o.backend) == known.end()) {
    std::string list;
    for (const std::string& k : known) list += (list.empty() ? "" : ", ") + k;
    return Status::InvalidArgument("--backend '" + o.backend +
                                   "' is not available in this build (allowed: " + list + ")");
  }
  o.python = f.Get("--python");
  o.fault_rules_path = f.Get("--inject");
  if (!o.fault_rules_path.empty()) {
    std::error_code ec;
    if (!std::filesystem::is_regular_file(o.fault_rules_path, ec)) {
      return Status::InvalidArgument("--inject '" + o.fault_rules_path +
                                     "' is not a readable file");
    }
    o.fault_rules_path = std::filesystem::absolute(o.fault_rules_path).string();
    // Checked here, before any worker starts: a rules file with an error is bad input
    // (exit 2 with the parser's message), not a worker that cannot start its backend.
    std::ifstream file(o.fault_rules_path, std::ios::binary);
    std::ostringstream text;
    text << file.rdbuf();
    if (!file.good() && !file.eof())
      return Status::InvalidArgument("--inject '" + o.fault_rules_path + "' cannot be read");
    if (StatusOr<inject::FaultRules> rules = inject::ParseFaultRules(text.str(), f.Get("--inject"));
        !rules.ok())
      return Status::InvalidArgument("--inject: " + rules.status().message());
  }
  int64_t v = 0;
  if (f.Has("--standby")) {
    CG_RETURN_IF_ERROR(SetInt(f, "--standby", 0, 16, v));
    o.standby_workers = static_cast<int>(v);
    o.standby_workers_max = o.standby_workers;  // a number the user chose is kept
  }
  if (f.Has("--workers")) {
    CG_RETURN_IF_ERROR(SetInt(f, "--workers", 1, 256, v));
    o.workers_per_device = static_cast<int>(v);
  }
  if (f.Has("--devices")) {
    const std::string list = f.Get("--devices");
    size_t start = 0;
    while (start <= list.size()) {
      const size_t comma = std::min(list.find(',', start), list.size());
      CG_ASSIGN_OR_RETURN(int64_t d,
                          ParseIntFlag("--devices", list.substr(start, comma - start), 0, 1023));
      o.devices.push_back(static_cast<int>(d));
      start = comma + 1;
    }
  }
  if (f.Has("--check")) {
    CG_ASSIGN_OR_RETURN(o.check, ParseCheckMode(f.Get("--check")));
  }
  CG_RETURN_IF_ERROR(SetInt(f, "--samples", 0, 1 << 20, o.sample_points));
  int64_t seed = 1;
  CG_RETURN_IF_ERROR(SetInt(f, "--seed", 0, INT64_MAX, seed));
  o.seed = static_cast<uint64_t>(seed);
  int64_t warmup = o.warmup, repeats = o.repeats;
  CG_RETURN_IF_ERROR(SetInt(f, "--warmup", 0, 1000, warmup));
  CG_RETURN_IF_ERROR(SetInt(f, "--repeats", 1, 1000, repeats));
  o.warmup = static_cast<int>(warmup);
  o.repeats = static_cast<int>(repeats);
  DeadlineOptions& d = o.deadlines;
  CG_RETURN_IF_ERROR(SetDouble(f, "--deadline-floor", 1, 86400e3, d.floor_ms));
  CG_RETURN_IF_ERROR(SetDouble(f, "--deadline-factor", 0, 1e6, d.factor));
  CG_RETURN_IF_ERROR(SetDouble(f, "--deadline-cap", 1, 86400e3, d.cap_ms));
  CG_RETURN_IF_ERROR(SetDouble(f, "--compile-allowance", 0, 86400e3, d.compile_allowance_ms));
  CG_RETURN_IF_ERROR(SetDouble(f, "--confirm-floor", 1, 86400e3, d.confirm_floor_ms));
  CG_RETURN_IF_ERROR(SetDouble(f, "--confirm-factor", 1, 1e6, d.confirm_factor));
  CG_RETURN_IF_ERROR(SetDouble(f, "--startup-deadline", 100, 86400e3, d.startup_ms));
  if (f.Has("--timeout")) {
    double t = 0;
    CG_RETURN_IF_ERROR(SetDouble(f, "--timeout", 1, 86400e3, t));
    d.floor_ms = t;
    d.factor = 0;
    d.compile_allowance_ms = 0;
    d.cap_ms = std::max(d.cap_ms, t);
  }
  if (d.cap_ms < d.floor_ms) {
    return Status::InvalidArgument("--deadline-cap must not be below --deadline-floor");
  }
  if (f.Has("--worker-memory")) {
    CG_ASSIGN_OR_RETURN(o.worker_memory_limit_bytes, ParseWorkerMemory(f.Get("--worker-memory")));
  }
  CG_RETURN_IF_ERROR(SetInt(f, "--worker-cpu-seconds", 1, 86400 * 365, o.worker_cpu_seconds));
  o.redo = f.Has("--redo");
  o.confirm_first_probe_in_place = !f.Has("--confirm-fresh");
  return o;
}

FlagSpec DbWaitFlagSpec() {
  return {"--db-wait", "SECONDS",
          "PostgreSQL store: how long to wait for its server when it goes away mid-run "
          "(restart, failover, network cut) before stopping; 0: stop at once (default: "
          "$CONVGUARD_DB_WAIT or 60)"};
}

std::string StorePathFromFlags(const FlagParser& f) {
  if (f.Has("--no-store")) return "";
  if (f.Has("--db")) return f.Get("--db");
  if (auto env = os::GetEnv("CONVGUARD_DB"); env && !env->empty()) return *env;
  std::string base;
  if (auto xdg = os::GetEnv("XDG_DATA_HOME"); xdg && !xdg->empty()) {
    base = *xdg;
  } else if (auto home = os::GetEnv("HOME"); home && !home->empty()) {
    base = *home + "/.local/share";
  } else {
    base = ".";
  }
  return base + "/convguard/verdicts.sqlite";
}

namespace {

// The longest --db-wait: a week, far beyond any restart, and still a finite wait.
constexpr double kMaxDbWaitS = 7 * 86400.0;

// --db-wait, else $CONVGUARD_DB_WAIT, else the store's default; checked even for an
// SQLite store (where it does nothing), so that a typo is heard of at once.
StatusOr<double> DbWaitFromFlags(const FlagParser& f) {
  if (f.Has("--db-wait")) return ParseDoubleFlag("--db-wait", f.Get("--db-wait"), 0, kMaxDbWaitS);
  if (auto env = os::GetEnv("CONVGUARD_DB_WAIT"); env && !env->empty()) {
    return ParseDoubleFlag("$CONVGUARD_DB_WAIT", *env, 0, kMaxDbWaitS);
  }
  return StoreOpenOptions{}.reconnect_wait_s;
}

// Store notices go to stderr at once, above a progress bar when there is one (it is drawn
// again at the next report).
void PrintStoreNotice(const std::string& text) {
  std::fprintf(stderr, "%sconvguard: %s\n", os::IsTerminal(2) ? "\r\033[K" : "", text.c_str());
  std::fflush(stderr);
}

}  // namespace

StatusOr<std::unique_ptr<Store>> OpenStoreFromFlags(const FlagParser& f) {
  CG_ASSIGN_OR_RETURN(double wait_s, DbWaitFromFlags(f));
  const std::string target = StorePathFromFlags(f);
  if (target.empty()) return std::unique_ptr<Store>();
  StoreOpenOptions options;
  options.owner_is_alive = LocalClaimOwnerLiveness();
  options.create_folder = true;
  options.reconnect_wait_s = wait_s;
  options.on_notice = PrintStoreNotice;
  return OpenStore(target, options);
}

StatusOr<PostgresStoreOptions> PostgresOptionsFromFlags(const FlagParser& f) {
  PostgresStoreOptions options;
  CG_ASSIGN_OR_RETURN(options.reconnect_wait_s, DbWaitFromFlags(f));
  options.on_notice = PrintStoreNotice;
  options.owner_is_alive = LocalClaimOwnerLiveness();
  return options;
}

std::string StoreLabelFromFlags(const FlagParser& f) {
  return StoreTargetLabel(StorePathFromFlags(f));
}

std::string FormatVerdict(const Verdict& v, const StackFingerprint* stack) {
  char line[512];
  std::string out;
  std::snprintf(line, sizeof line, "%-11s %s  algo %s\n", std::string(VerdictName(v.kind)).c_str(),
                v.problem.c_str(), v.algorithm.c_str());
  out += line;
  if (stack != nullptr) out += "  stack     " + v.stack_id + "  " + stack->Summary() + "\n";
  if (v.emulated) out += "  NOTE      this stack is an EMULATION, not real hardware\n";
  if (v.time_ms_median > 0) {
    std::snprintf(line, sizeof line, "  time      median %.4g ms, min %.4g ms\n", v.time_ms_median,
                  v.time_ms_min);
    out += line;
  }
  if (v.kind == VerdictKind::kCrash) {
    out += v.crash_signal != 0 ? "  signal    " + std::to_string(v.crash_signal) + "\n"
                               : "  exit      " + std::to_string(v.exit_code) + "\n";
  }
  if (v.kind == VerdictKind::kWrong) {
    std::snprintf(line, sizeof line,
                  "  errors    %lld mismatches, %lld non-finite, max abs %.4g, max rel %.4g\n",
                  static_cast<long long>(v.mismatches), static_cast<long long>(v.non_finite),
                  v.max_abs_error, v.max_rel_error);
    out += line;
  }
  if (!v.message.empty()) out += "  evidence  " + v.message + "\n";
  if (!v.implementation.empty()) out += "  impl      " + v.implementation + "\n";
  std::string check = v.check.empty() ? "-" : v.check;
  if (v.tolerance == 0.0) {
    check += " (bit-exact)";
  } else if (v.tolerance > 0.0) {
    char tolerance[64];
    std::snprintf(tolerance, sizeof tolerance, " (rounds: within %.3g)", v.tolerance);
    check += tolerance;
  }
  std::snprintf(line, sizeof line, "  attempts  %d, deadline %.0f ms, elapsed %.0f ms, check %s\n",
                v.attempts, v.deadline_ms, v.elapsed_ms, check.c_str());
  out += line;
  out += "  recorded  " + v.recorded_at + " by convguard " + v.tool_version + "\n";
  out += "  repro     " + v.repro + "\n";
  return out;
}

int ExitStatusForVerdicts(const std::vector<Verdict>& verdicts) {
  // Most severe first: what a person must hear about before anything else.
  const VerdictKind order[] = {VerdictKind::kHang,  VerdictKind::kCrash,
                               VerdictKind::kWrong, VerdictKind::kOom,
                               VerdictKind::kError, VerdictKind::kMistrusted,
                               VerdictKind::kSlow,  VerdictKind::kUnsupported};
  for (VerdictKind k : order) {
    for (const Verdict& v : verdicts) {
      if (v.kind == k) return ExitStatusForVerdict(k);
    }
  }
  return kExitOk;
}

}  // namespace convguard::cli
