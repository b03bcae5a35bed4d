// os/system.h — the rest of the operating-system seam: who we are, the terminal,
// interruption, waiting on many descriptors, and the worker's protocol channel.
//
// Thread-safety: every function is safe from any thread except where noted.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "convguard/status.h"
#include "os/clock.h"

namespace convguard::os {

// Worker side. Duplicates the original stdout to a new O_CLOEXEC descriptor reserved for
// protocol frames, then points fd 1 at stderr: vendor libraries that print to stdout
// (some do, on first use) then land in the log instead of corrupting the frame stream.
// Returns the protocol descriptor. Call once, before any backend code runs.
StatusOr<int> DetachStdoutForProtocol();

// The absolute path of the running executable (/proc/self/exe).
StatusOr<std::string> SelfExecutablePath();

std::string Hostname();
int CurrentPid();

// The start time of process `pid` in clock ticks after boot (/proc/PID/stat field 22).
// Together with the pid it names a process unambiguously: pids are reused, start times
// of a reused pid differ.
StatusOr<uint64_t> ProcessStartTicks(int pid);

// Whether the process (pid, start ticks) still exists and is not a zombie.
bool IsProcessAlive(int pid, uint64_t start_ticks);

// Whether `fd` is a terminal, and its width in columns (80 when unknown).
bool IsTerminal(int fd);
int TerminalColumns(int fd);

// Installs SIGINT and SIGTERM handlers that only set a flag (no SA_RESTART, so a blocked
// poll returns early). The first signal asks for a clean stop; a second one of the same
// kind restores the default action and re-raises it, so a user can always get out.
// Call from the main thread. Idempotent.
void InstallInterruptHandlers();
// Whether SIGINT or SIGTERM arrived since InstallInterruptHandlers; which one (0: none).
bool InterruptRequested();
int InterruptSignal();
// For tests: forget an earlier interrupt.
void ClearInterrupt();

// Waits until at least one of `fds` is readable (data, EOF, or error/hang-up), the
// deadline passes, or a signal interrupts the wait. Returns the readable descriptors
// (empty on timeout or interruption). Negative entries are ignored.
StatusOr<std::vector<int>> PollReadable(std::span<const int> fds, Deadline deadline);

// The machine's physical memory in bytes (0 when it cannot be read).
uint64_t PhysicalMemoryBytes();

// The current UTC time as ISO 8601, e.g. "2026-11-25T15:10:57Z".
std::string UtcNowIso8601();

// Reads an environment variable; nullopt when unset.
std::optional<std::string> GetEnv(const std::string& name);

// Every environment variable whose name starts with one of `prefixes`, as "NAME=value",
// sorted by name.
std::vector<std::string> EnvironmentWithPrefixes(std::span<const std::string_view> prefixes);

// The files mapped into this process (/proc/self/maps): its executable and every shared
// library it has loaded, each once, sorted. Anonymous and special mappings ([heap],
// /dev/..., memfd:, deleted files) are left out.
StatusOr<std::vector<std::string>> MappedFiles();

// This boot's id (/proc/sys/kernel/random/boot_id): it changes at every reboot, which
// is when kernel drivers and devices change. "" where the system does not say.
std::string BootId();

// Blocks this thread forever inside a system call (a fault that fault injection uses to
// emulate a worker stuck in a driver). Never returns.
[[noreturn]] void BlockForeverInSystemCall();

}  // namespace convguard::os
