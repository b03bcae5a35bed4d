// Linked into every program and shared library of a sanitized build (CONVGUARD_SANITIZE,
// CMakeLists.txt; scripts/sanitize.sh, docs/sanitizers.md). Two hooks:
//
// 1. setrlimit(RLIMIT_AS, ...) does nothing (the build links with -Wl,--wrap=setrlimit);
//    every other resource is set as asked. AddressSanitizer and ThreadSanitizer reserve
//    their shadow memory, terabytes of address space, when a program starts, so a worker
//    started under an address-space cap (src/os/process.cc sets it between fork and
//    execve; by default the machine's physical memory for CPU-only backends) dies in the
//    sanitizer's start-up, before main ("ReserveShadowMemoryRange failed ... Perhaps
//    you're using ulimit -v"). A sanitized convguard runs its workers without that cap;
//    the cap itself is tested by the regular build.
//
// 2. Every UndefinedBehaviorSanitizer report is also appended to <log_path>.<pid>, log_path
//    being UBSAN_OPTIONS's. GCC 12 links UBSan's runtime next to ASan's, and that runtime
//    prints to stderr whatever log_path says; a worker's stderr is kept as a verdict's
//    evidence, where nobody would see the report. The runtime calls __ubsan_on_report
//    (a weak function it defines) for every report before it stops the program.
#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

extern "C" int __real_setrlimit(int resource, const struct rlimit* limit);

extern "C" int __wrap_setrlimit(int resource, const struct rlimit* limit) {
  if (resource == RLIMIT_AS) return 0;
  return __real_setrlimit(resource, limit);
}

// Weak: a ThreadSanitizer build has no UBSan runtime (and never calls the hook).
extern "C" __attribute__((weak)) void __ubsan_get_current_report_data(
    const char** issue_kind, const char** message, const char** filename, unsigned* line,
    unsigned* column, char** memory_address);

// No allocation: the report may be about the heap.
extern "C" void __ubsan_on_report() {
  const char* options = std::getenv("UBSAN_OPTIONS");
  const char* at = options == nullptr ? nullptr : std::strstr(options, "log_path=");
  if (at == nullptr || __ubsan_get_current_report_data == nullptr) return;
  at += std::strlen("log_path=");
  char path[4096];
  const int length = static_cast<int>(std::strcspn(at, ": "));
  std::snprintf(path, sizeof path, "%.*s.%d", length, at, static_cast<int>(getpid()));

  const char *kind = "", *message = "", *file = "";
  unsigned line = 0, column = 0;
  char* address = nullptr;
  __ubsan_get_current_report_data(&kind, &message, &file, &line, &column, &address);
  char text[8192];
  const int n = std::snprintf(text, sizeof text, "%s:%u:%u: runtime error: %s (%s)\n", file, line,
                              column, message, kind);
  const int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return;
  if (n > 0) {
    const ssize_t written = write(fd, text, std::strlen(text));
    (void)written;
  }
  close(fd);
}
