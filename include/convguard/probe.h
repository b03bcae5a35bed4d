// convguard/probe.h — the probe engine: warm workers under a watchdog.
//
// The engine runs (problem, algorithm) probes in worker processes (one backend each,
// kept warm), enforces a deadline on every stage of every probe from this process, kills
// a worker's whole process group when a deadline passes, confirms a suspected hang once
// in a fresh worker with a generous deadline, and turns what it saw into verdicts that it
// writes to a store as they arrive. Nothing that can hang runs in the calling process.
//
// Design and policy: docs/probe-engine.md. Deadline knobs and their defaults: DeadlineOptions.
//
// Thread-safety: a ProbeEngine is used from one thread. It forks workers; the calling
// process must not reap children it did not start (no SIGCHLD = SIG_IGN, no waitpid(-1)).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "convguard/compare.h"
#include "convguard/problem.h"
#include "convguard/stack.h"
#include "convguard/status.h"
#include "convguard/store.h"
#include "convguard/verdict.h"

namespace convguard {

// Every knob of the deadline policy (docs/probe-engine.md explains each).
struct DeadlineOptions {
  // The first attempt's deadline for the run stage: floor + first-call allowance +
  // factor * expected time, clamped to cap.
  double floor_ms = 250.0;
  double factor = 10.0;
  double cap_ms = 120000.0;
  // Compilation allowance of a first call; negative: what the backend declares.
  double compile_allowance_ms = -1.0;
  // The confirmation attempt (fresh worker) gets max(confirm_floor, confirm_factor *
  // first deadline), clamped to cap. A problem that finishes only then is SLOW; one that
  // misses this too is HANG. The floor is what keeps a problem that takes 2 s from ever
  // being called a hang.
  double confirm_floor_ms = 3000.0;
  double confirm_factor = 3.0;
  // Worker start-up (process, backend init, device context) until its hello.
  double startup_ms = 60000.0;
  // Throughput assumed before calibration, GFLOP/s (deliberately low).
  double assumed_gflops = 0.2;
  // Waiting for a killed worker to be reaped before reporting it as unkillable.
  double reap_grace_ms = 2000.0;
};

struct ProbeJob {
  Problem problem;
  std::string algorithm;  // empty: the backend's default; "*": every algorithm it offers
  // Only with Run's stop_when: decided even after the caller said enough (the problem the
  // caller asked about, say), and confirmed at once rather than after the other jobs'
  // first attempts. With "*", only the backend's default algorithm's job is: the problem
  // as the caller would run it (the others are candidates like any other job).
  bool always_decide = false;
};

struct ProbeOptions {
  std::string backend;            // registry name (see RegisteredBackends())
  std::string fault_rules_path;   // --inject FILE; empty for none
  std::string worker_executable;  // empty: this executable (must have `worker` command)
  std::string python;             // interpreter for the PyTorch worker; empty: auto-detect
  int workers_per_device = 0;     // 0: one per CPU core for CPU backends, one per GPU
  // Workers each device pool keeps started (spawned, hello pending or read) beside the
  // busy ones, so that a worker killed for a hang or a crash is replaced by a swap, not
  // a start (a PyTorch worker's start is seconds: importing torch). 0: none.
  int standby_workers = 1;
  // When a swap finds its standby worker still starting (its hello was not there: the
  // engine waited for it), the pool keeps one more standby from then on, up to this many:
  // worker starts slower than the time between kills (a PyTorch worker on an H100 takes
  // about 7 s to start, a HANG there about 4 s) need more than one in the pipeline.
  // 0..16; a value not above standby_workers, or standby_workers 0, keeps the count fixed.
  int standby_workers_max = 3;
  // Requests written to a worker while it runs the current one, so that it starts the
  // next probe as soon as it has replied, without waiting for the engine to read the
  // reply and answer (a pipe round trip and two process wake-ups per probe). Requests
  // sent ahead are taken back, unanswered and unrecorded, when their worker is killed or
  // dies. Never done for a confirmation, which runs alone in a fresh worker, nor in a run
  // with a stop_when (the planner's), where it could start a probe nobody needs.
  // 0: one request at a time (the benchmark's comparison).
  int requests_ahead = 2;
  // A worker's first job that misses its run-stage deadline is confirmed in place: waited
  // for in the same worker, which is fresh for it, up to the confirmation deadline, instead
  // of killed and run again in another fresh worker (docs/probe-engine.md, "Confirmed in
  // place"). false: always the fresh-worker confirmation (the benchmark's comparison).
  bool confirm_first_probe_in_place = true;
  std::vector<int> devices;  // GPU indices to use; empty: every visible one
  int warmup = 1;
  int repeats = 3;
  CheckMode check = CheckMode::kSampled;
  int64_t sample_points = 256;
  uint64_t seed = 1;
  bool redo = false;  // probe again even when the store has a verdict
  DeadlineOptions deadlines;
  // Claims older than this are taken over (their owner is presumed gone).
  double claim_stale_after_s = 3600.0;
  // How the repro line starts (the command a person would type).
  std::string repro_command = "convguard";
  // Caps of every worker process, so that a runaway allocation is an OOM verdict, not a
  // host brought down, and a runaway computation ends. The address space (bytes; RLIMIT_AS):
  // -1 is the default, the machine's physical memory for backends that run on the CPU only
  // (reference, onednn, emulations) and none for the others (a GPU driver reserves address
  // space far beyond what it uses; PyTorch's interpreter too); 0 is none. CPU seconds a
  // worker may use in all (RLIMIT_CPU; SIGXCPU ends it): 0 is none (the default; the
  // watchdog's deadlines already end a probe that runs too long).
  int64_t worker_memory_limit_bytes = -1;
  int64_t worker_cpu_seconds = 0;
  // Where IdentifyStacks remembers stacks across processes (see IdentifyStacks); empty:
  // not remembered. The command line uses the default folder (DefaultIdentityCacheDir).
  std::string identity_cache_dir;
};

// Progress of a run, reported after every verdict and every skipped job.
struct ProbeProgress {
  int64_t total = 0;  // jobs in this run (after expanding "*" algorithms)
  int64_t done = 0;   // verdicts recorded plus jobs skipped
  int64_t skipped_known = 0;
  int64_t by_kind[9] = {};  // indexed by VerdictKind
  double elapsed_s = 0.0;
  int64_t in_flight = 0;
};

struct ProbeCallbacks {
  std::function<void(const Verdict&)> on_verdict;
  std::function<void(const ProbeProgress&)> on_progress;
  // Free-text events worth a line in a log (worker restarts, kills, calibration).
  std::function<void(const std::string&)> on_event;
  // What a person waiting should know even without a log: a probe missed its first
  // deadline and is being confirmed in a fresh worker (seconds during which no verdict
  // arrives). One line, e.g. "n1_c16_... direct missed its first deadline (485 ms);
  // confirming in a fresh worker (up to 3000 ms)".
  std::function<void(const std::string&)> on_notice;
};

// Where the probes' time went, summed over the replies whose worker accounted for its
// own time (the C++ and PyTorch workers do) to requests written while it was idle (one
// written ahead waits in the pipe behind another): the round trip as the engine's
// watchdog saw it (request written to reply read), the worker's time from reading the
// request to writing the reply, and that time's stages. round_trip - worker_total is the
// protocol and the wake-ups; what a caller measures beyond round_trip is the engine.
// Measured, never stored.
struct WorkerTime {
  int64_t replies = 0;
  double round_trip_ms = 0;
  double worker_total_ms = 0;
  double prep_ms = 0;   // parsing, allocating and filling
  double run_ms = 0;    // the backend's warm-up and timed repeats
  double check_ms = 0;  // the float64 reference and the comparison
};

struct ProbeRunResult {
  std::vector<Verdict> verdicts;  // new verdicts, in completion order
  std::vector<Verdict> known;     // verdicts the store already had (skipped jobs)
  bool interrupted = false;       // stopped by SIGINT/SIGTERM before the end
  // The caller's stop_when said enough: jobs not yet started were dropped (nothing is
  // recorded for them); every probe already started was finished, confirmation included.
  bool stopped_early = false;
  int64_t dropped = 0;  // jobs dropped that way
  ProbeProgress progress;
  WorkerTime worker_time;
};

// A device the engine probes on, with its stack. Devices whose stacks are equal (identical
// cards, drivers and libraries) share one queue of work; different stacks each get every
// job, since their verdicts may differ.
struct DeviceStack {
  int device =
      -1;  // index among the GPUs this process sees (as --devices numbers them); -1: the CPU
  StackFingerprint stack;
};

class ProbeEngine {
 public:
  virtual ~ProbeEngine() = default;

  // Starts the first worker, reads the stack fingerprint and calibrates the deadline
  // policy. `store` may be null (nothing is remembered); when set it must outlive the
  // engine. Errors: unknown backend, a worker that cannot start (its message), a bad
  // fault rules file.
  static StatusOr<std::unique_ptr<ProbeEngine>> Start(const ProbeOptions& options, Store* store,
                                                      ProbeCallbacks callbacks = {});

  // The stack of the first device (every device's stack is in the store).
  virtual const StackFingerprint& stack() const = 0;
  // Every device's stack, in the order of the device selection (one entry for the CPU).
  virtual std::vector<DeviceStack> stacks() const = 0;

  // Probes every job not already known to the store (unless redo). Returns when all are
  // decided, or early when SIGINT/SIGTERM arrives (interrupted = true; claims of
  // unfinished jobs are released, workers killed).
  StatusOr<ProbeRunResult> Run(const std::vector<ProbeJob>& jobs) { return Run(jobs, {}); }
  // The same, asking `stop_when` after each new verdict whether the caller has learned
  // enough (a planner that found a good plan). With a stop_when, hang confirmations wait
  // until every job's first attempt has run (a first attempt is bounded by its short
  // deadline, a confirmation takes seconds), so an OK answer is found before any
  // confirmation is waited for. Once stop_when says enough, no further task starts (first
  // attempts and confirmations alike; a job whose first attempt missed its deadline is then
  // left without a verdict) except for jobs marked always_decide, the probes in flight
  // finish, and Run returns with stopped_early set.
  virtual StatusOr<ProbeRunResult> Run(const std::vector<ProbeJob>& jobs,
                                       const std::function<bool(const Verdict&)>& stop_when) = 0;
};

// The claim owner of this process in a shared store ("HOST:PID:START", START the
// process's start time so that a recycled pid is not mistaken for it); the engine claims
// work under it.
StatusOr<std::string> ThisProcessClaimOwner();
// Says whether a claim owner is alive: a process of this host that still exists with the
// same start time; owners on other hosts count as alive (their claims expire by age).
// For SqliteStoreOptions::owner_is_alive.
OwnerLiveness LocalClaimOwnerLiveness();

// Which stack options.backend presents on each device it would probe (devices as
// options.devices selects them; one entry with device -1 for a CPU backend), read from the
// hello of a worker: the deciding process never initialises a backend to learn it. The
// answer is cached for the life of the process per (backend, fault rules, worker,
// interpreter, devices), since the environment that shapes a stack does not change under
// a running process, and the stacks are recorded in `store` when one is given.
//
// With options.identity_cache_dir set, the answer is also remembered in that folder and
// reused by later processes without starting a worker, for as long as the machine has not
// rebooted, no variable that steers a vendor library or convguard has changed (CUDA_*,
// HIP_*, MIOPEN_*, LD_*, CONVGUARD_*, ...), the fault rules' text is the same, and every
// file the workers had mapped (the vendor and driver libraries, the interpreter, convguard
// itself) has the size and modification time it had. `how`, when given, says where the
// answer came from ("asked a worker (why not remembered)" or "remembered in FILE").
// Errors: those of starting a worker (ProbeEngine::Start), a bad device selection.
StatusOr<std::vector<DeviceStack>> IdentifyStacks(const ProbeOptions& options, Store* store,
                                                  std::string* how = nullptr);

// The identity cache's default folder: $CONVGUARD_CACHE_DIR (the value "off" turns the
// cache off: ""), else $XDG_CACHE_HOME/convguard, else ~/.cache/convguard.
std::string DefaultIdentityCacheDir();

// The backend a user means when naming none: the GPU's stack where there is a GPU (cuDNN,
// or PyTorch reaching MIOpen/cuDNN), else oneDNN on the CPU, else the reference.
// With `identity_cache_dir`, the search for an interpreter that imports torch is
// remembered there (see IdentifyStacks).
std::string DefaultBackend(const std::string& identity_cache_dir = "");

}  // namespace convguard
