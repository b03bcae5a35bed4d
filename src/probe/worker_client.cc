#include "probe/worker_client.h"

#include <chrono>

#include "os/pipe_io.h"
#include "os/system.h"

namespace convguard::probe {
namespace {

os::Duration Millis(double ms) {
  return std::chrono::duration_cast<os::Duration>(std::chrono::duration<double, std::milli>(ms));
}

}  // namespace

StatusOr<std::unique_ptr<WorkerClient>> WorkerClient::Start(const WorkerSpec& spec,
                                                            double startup_ms) {
  CG_ASSIGN_OR_RETURN(std::unique_ptr<WorkerClient> client, Spawn(spec));
  CG_RETURN_IF_ERROR(client->AwaitHello(startup_ms));
  return client;
}

StatusOr<std::unique_ptr<WorkerClient>> WorkerClient::Spawn(const WorkerSpec& spec) {
  os::SpawnOptions options;
  options.argv = spec.command;
  options.argv.push_back("--backend");
  options.argv.push_back(spec.backend);
  if (!spec.fault_rules_path.empty()) {
    options.argv.push_back("--inject");
    options.argv.push_back(spec.fault_rules_path);
  }
  options.env_set = spec.env;
  options.stderr_mode = os::StderrMode::kPipe;
  options.die_with_parent = true;
  options.address_space_limit_bytes = spec.memory_limit_bytes;
  options.cpu_time_limit_s = spec.cpu_limit_s;
  std::unique_ptr<WorkerClient> client(new WorkerClient());
  CG_ASSIGN_OR_RETURN(client->child_, os::SpawnChild(options));
  return client;
}

Status WorkerClient::AwaitHello(double startup_ms) {
  const os::Deadline deadline = os::Deadline::After(Millis(startup_ms));
  const std::string who = "worker " + child_.Describe();
  for (;;) {
    CG_ASSIGN_OR_RETURN(std::vector<worker::Message> messages, Pump());
    for (worker::Message& m : messages) {
      if (m.hello) {
        hello_ = std::move(*m.hello);
        return Status::Ok();
      }
      if (m.fatal) {
        (void)Kill(2000.0);
        return Status::Internal(who + " could not start its backend: " + *m.fatal);
      }
    }
    if (eof()) {
      StatusOr<os::ExitInfo> exit = AwaitExit(2000.0);
      const std::string tail = TakeStderrTail();
      return Status::Internal(who + " ended before saying hello (" +
                              (exit.ok() ? exit->ToString() : exit.status().message()) + ")" +
                              (tail.empty() ? "" : "; its stderr: " + tail));
    }
    const int fds[2] = {read_fd(), stderr_fd()};
    CG_ASSIGN_OR_RETURN(std::vector<int> ready, os::PollReadable(fds, deadline));
    PumpStderr();
    if (ready.empty() && deadline.RemainingAt(os::RealClock().Now()) == os::Duration::zero()) {
      (void)Kill(2000.0);
      return Status::Internal(who + " did not say hello within " +
                              os::FormatDuration(Millis(startup_ms)) +
                              " (raise --startup-deadline if its backend is slow to start)");
    }
    if (ready.empty() && os::InterruptRequested()) {
      return Status::Internal("interrupted while starting " + who);
    }
  }
}

Status WorkerClient::Send(const std::string& payload) { return SendAll({payload}); }

Status WorkerClient::SendAll(const std::vector<std::string>& payloads) {
  std::string frames;
  for (const std::string& payload : payloads) {
    CG_ASSIGN_OR_RETURN(std::string frame, worker::EncodeFrame(payload));
    frames += frame;
  }
  CG_ASSIGN_OR_RETURN(os::IoResult r, os::WriteAll(child_.stdin_fd(), frames,
                                                   os::Deadline::After(std::chrono::seconds(5))));
  if (r.timed_out()) return Status::IOError("the worker stopped reading its requests");
  return Status::Ok();
}

StatusOr<std::vector<worker::Message>> WorkerClient::Pump() {
  std::vector<worker::Message> out;
  if (!eof_) {
    uint8_t buf[65536];
    // Drain what is there now; an already-passed deadline never waits.
    for (int i = 0; i < 64; ++i) {
      CG_ASSIGN_OR_RETURN(os::IoResult r, os::ReadSome(child_.stdout_fd(), buf,
                                                       os::Deadline::After(os::Duration::zero())));
      if (r.eof()) {
        eof_ = true;
        break;
      }
      if (r.timed_out()) break;
      decoder_.Feed(std::span<const uint8_t>(buf, r.bytes));
      if (r.bytes < sizeof buf) break;
    }
  }
  while (std::optional<worker::DecodedFrame> frame = decoder_.Next()) {
    StatusOr<worker::Message> m = worker::DecodeMessage(frame->payload, /*from_worker=*/true);
    if (m.ok()) {
      out.push_back(std::move(*m));
    } else {
      ++bad_messages_;
    }
  }
  if (eof_ && decoder_.buffered_bytes() > 0) {
    died_mid_frame_ = true;
    decoder_.DiscardBuffered();
  }
  return out;
}

void WorkerClient::PumpStderr() {
  if (stderr_fd() < 0) return;
  uint8_t buf[8192];
  for (int i = 0; i < 16; ++i) {
    StatusOr<os::IoResult> r =
        os::ReadSome(child_.stderr_fd(), buf, os::Deadline::After(os::Duration::zero()));
    if (!r.ok() || r->eof()) {
      stderr_open_ = false;  // polling a closed pipe would wake us forever
      return;
    }
    if (!r->data()) return;
    stderr_tail_.append(reinterpret_cast<const char*>(buf), r->bytes);
    constexpr size_t kKeep = 4096;
    if (stderr_tail_.size() > kKeep) stderr_tail_.erase(0, stderr_tail_.size() - kKeep);
  }
}

std::string WorkerClient::TakeStderrTail(size_t max_bytes) {
  PumpStderr();
  std::string tail = std::move(stderr_tail_);
  stderr_tail_.clear();
  while (!tail.empty() && (tail.back() == '\n' || tail.back() == ' ')) tail.pop_back();
  if (const size_t nl = tail.rfind('\n'); nl != std::string::npos) tail.erase(0, nl + 1);
  if (tail.size() > max_bytes) tail = "..." + tail.substr(tail.size() - max_bytes);
  return tail;
}

int64_t WorkerClient::TakeGarbageBytes() {
  const int64_t total = decoder_.garbage_bytes_skipped() + bad_messages_;
  const int64_t fresh = total - garbage_reported_;
  garbage_reported_ = total;
  return fresh;
}

StatusOr<os::ExitInfo> WorkerClient::Kill(double grace_ms) {
  return child_.KillAndReap(Millis(grace_ms));
}

StatusOr<os::ExitInfo> WorkerClient::AwaitExit(double grace_ms) {
  CG_ASSIGN_OR_RETURN(os::ExitInfo info, child_.WaitExit(Millis(grace_ms)));
  if (info.running()) {
    // It closed its stdout but lives on: end it, it is of no use to us any more.
    return child_.KillAndReap(Millis(grace_ms));
  }
  return info;
}

}  // namespace convguard::probe
