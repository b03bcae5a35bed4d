// os/pipe_io.h — file descriptors and pipes with deadlines; errno -> Status.
//
// The watchdog talks to a worker through two pipes. Every read and write here is bounded by
// a Deadline (poll() with the time remaining), so a worker that stops reading or stops
// writing can never block the deciding process. A timeout is a normal event for the
// watchdog, not an error: it comes back as IoResult::kTimeout inside an OK StatusOr, cheap
// to test for. A Status that is not OK means the operation itself failed (a closed or
// invalid descriptor, EPIPE, ...).
//
// SIGPIPE: writing to a pipe whose reader has gone raises SIGPIPE, whose default action
// kills the writer — the deciding process, because a worker crashed. IgnoreSigpipe() sets
// the disposition to SIG_IGN (only if it is SIG_DFL, so a host program's own handler
// survives); writes then fail with EPIPE, which WriteAll reports as kIOError. MakePipe()
// and SpawnChild() call it, so code holding such a descriptor is already protected.
// Children do not inherit the ignored disposition: SpawnChild resets all signals.
//
// Thread-safety: free functions are safe from any thread on distinct descriptors.
// UniqueFd is a value owned by one thread at a time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "convguard/status.h"
#include "os/clock.h"

namespace convguard::os {

// The one conversion of an errno value into a Status: "<context>: <description> (<NAME>)",
// e.g. "open '/x': No such file or directory (ENOENT)". ENOENT maps to kNotFound; every
// other value to kIOError.
Status ErrnoToStatus(std::string_view context, int errnum);

// Owns one file descriptor and closes it on destruction. Move-only.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  ~UniqueFd() { reset(); }
  UniqueFd(UniqueFd&& other) noexcept : fd_(other.release()) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept;
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  // Gives up ownership without closing; returns the descriptor (or -1).
  int release();
  // Closes the held descriptor (if any; close errors are ignored, as close() has already
  // released the descriptor on Linux even when it fails) and holds `fd` instead.
  void reset(int fd = -1);

 private:
  int fd_ = -1;
};

// Both ends of a pipe, each O_CLOEXEC and O_NONBLOCK.
struct Pipe {
  UniqueFd read;
  UniqueFd write;
};
StatusOr<Pipe> MakePipe();

// Sets the process-wide SIGPIPE disposition to SIG_IGN if it is SIG_DFL. Idempotent and
// cheap after the first call; safe from any thread.
void IgnoreSigpipe();

// What a bounded read or write did.
struct IoResult {
  enum Kind {
    kData,     // ReadSome: `bytes` > 0 were read. WriteAll: all bytes were written.
    kEof,      // ReadSome only: the writing end is closed and the pipe is drained.
    kTimeout,  // the deadline passed first; `bytes` says how much was done before it.
  };
  Kind kind = kData;
  size_t bytes = 0;

  bool data() const { return kind == kData; }
  bool eof() const { return kind == kEof; }
  bool timed_out() const { return kind == kTimeout; }
};

// Writes every byte of `data` to `fd` unless `deadline` passes first (kTimeout, with the
// number of bytes already written; the stream is then mid-message and the caller should
// treat the peer as stuck). Retries EINTR and partial writes. An already-passed deadline
// still writes what fits without waiting.
// Errors: EPIPE (the reader closed its end, typically because the worker died) and every
// other write/poll failure return kIOError naming the descriptor.
// Deadlines hold for non-blocking descriptors (all of ours are). On a blocking pipe each
// write() is limited to PIPE_BUF bytes after poll() reports room, so it does not block
// either, as long as no other thread writes to the same pipe.
StatusOr<IoResult> WriteAll(int fd, std::span<const uint8_t> data, Deadline deadline);
StatusOr<IoResult> WriteAll(int fd, std::string_view data, Deadline deadline);

// Waits until `fd` is readable (data, EOF, or an error condition the next read reports) or
// `deadline` passes. Returns true when readable, false on timeout. Also works for a pidfd,
// which becomes readable when its process ends.
// Errors: a descriptor that is not open, or poll failing, is kIOError.
StatusOr<bool> WaitReadable(int fd, Deadline deadline);

// Reads at most buffer.size() bytes from `fd`, waiting until data arrives, the writer
// closes (kEof), or `deadline` passes (kTimeout, bytes == 0). Returns as soon as any data
// is available: it does not try to fill the buffer. An already-passed deadline still
// returns data that is already waiting.
// Errors: an empty buffer is kInvalidArgument; a bad descriptor or read failure kIOError.
StatusOr<IoResult> ReadSome(int fd, std::span<uint8_t> buffer, Deadline deadline);

}  // namespace convguard::os
