// probe/worker_client.h — the deciding process's handle on one worker process.
//
// Starts `convguard worker --backend NAME ...` in its own process group, waits (bounded)
// for its hello, sends requests and decodes whatever it writes back without ever
// blocking: the engine polls read_fd() and calls Pump(). Kill() ends the whole group.
//
// Ownership: owns the ChildProcess; destroying a WorkerClient kills and reaps the worker.
// Thread-safety: one thread.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "convguard/status.h"
#include "os/process.h"
#include "worker/framing.h"
#include "worker/protocol.h"

namespace convguard::probe {

struct WorkerSpec {
  // The program and its leading arguments, e.g. {convguard, "worker"} or {python3,
  // convguard_torch_worker.py}; "--backend NAME [--inject FILE]" follow.
  std::vector<std::string> command;
  std::string backend;
  std::string fault_rules_path;
  std::vector<std::pair<std::string, std::string>> env;  // e.g. CUDA_VISIBLE_DEVICES
  // Caps of the worker process (os::SpawnOptions); 0: none.
  uint64_t memory_limit_bytes = 0;
  uint64_t cpu_limit_s = 0;
};

class WorkerClient {
 public:
  // Spawns the worker and waits up to `startup_ms` for hello. A worker that sends
  // "fatal", dies, or stays silent is an error naming the reason (and is killed).
  static StatusOr<std::unique_ptr<WorkerClient>> Start(const WorkerSpec& spec, double startup_ms);

  // Start in two steps, so that several workers start at once: Spawn() starts the process
  // without waiting; AwaitHello() then waits up to `startup_ms` for its hello, with the
  // errors of Start() (the worker is killed on failure). Call AwaitHello() once, before
  // anything else.
  static StatusOr<std::unique_ptr<WorkerClient>> Spawn(const WorkerSpec& spec);
  Status AwaitHello(double startup_ms);

  const worker::Hello& hello() const { return hello_; }
  int pid() const { return child_.pid(); }
  int read_fd() const { return child_.stdout_fd(); }

  // Writes one message (bounded: a worker that stops reading cannot block us).
  Status Send(const std::string& payload);
  // Writes several messages with one write (one wake-up of a worker waiting for them).
  Status SendAll(const std::vector<std::string>& payloads);

  // Reads whatever is available now and returns the complete messages. Undecodable frames
  // and junk are counted, not returned. Sets eof() when the worker closed its end.
  StatusOr<std::vector<worker::Message>> Pump();
  bool eof() const { return eof_; }
  // Protocol junk seen since the last call of TakeGarbageBytes().
  int64_t TakeGarbageBytes();
  // At EOF: whether a frame had begun and not ended (the worker died mid-reply).
  bool died_mid_frame() const { return died_mid_frame_; }

  // SIGKILL to the worker's group and a bounded reap. An error means it would not die.
  StatusOr<os::ExitInfo> Kill(double grace_ms);
  // The worker's stderr: drained by PumpStderr() whenever stderr_fd() is readable; the
  // last few KiB are kept as evidence for verdicts (vendor messages, injected faults).
  int stderr_fd() const { return stderr_open_ ? child_.stderr_fd() : -1; }
  void PumpStderr();
  // The last non-empty line of stderr since the last call (at most `max_bytes` of its end),
  // and forgets what was read.
  std::string TakeStderrTail(size_t max_bytes = 300);
  // After eof(): waits (bounded) for the exit and reports how it ended.
  StatusOr<os::ExitInfo> AwaitExit(double grace_ms);

 private:
  WorkerClient() = default;

  os::ChildProcess child_;
  worker::FrameDecoder decoder_;
  worker::Hello hello_;
  bool eof_ = false;
  bool died_mid_frame_ = false;
  int64_t garbage_reported_ = 0;
  int64_t bad_messages_ = 0;
  std::string stderr_tail_;
  bool stderr_open_ = true;
};

}  // namespace convguard::probe
