// A program with one planted error per mode, built in every sanitized build (CMakeLists.txt,
// CONVGUARD_SANITIZE). scripts/sanitize.sh runs it before the tests, under the tests'
// sanitizer options, and expects a report in the log folder for each mode: a run that
// reports nothing because reporting is broken (a log_path that is never written, the UBSan
// hook not linked, LeakSanitizer unable to run on the machine) must not pass as clean.
//
//   sanitizer_canary heap-overflow | undefined | leak | race
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <thread>

namespace {

volatile int sink = 0;

int HeapOverflow() {
  volatile size_t bytes = 5 * sizeof(int);
  int* block = new int[4];
  std::memset(block, 0, bytes);  // one int past the end (ASan's memset interceptor sees it)
  sink = block[0];
  delete[] block;
  return 0;
}

int Undefined() {
  volatile int big = 0x7fffffff;
  const int sum = big + 1;  // signed overflow
  sink = sum;
  return 0;
}

int* leaked = nullptr;

int Leak() {
  leaked = new int[64];
  leaked[0] = 1;
  leaked = nullptr;  // the last pointer to the block is gone
  return 0;
}

int counter = 0;

int Race() {
  std::thread other([] { ++counter; });
  ++counter;
  other.join();
  sink = counter;
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const char* mode = argc == 2 ? argv[1] : "";
  if (std::strcmp(mode, "heap-overflow") == 0) return HeapOverflow();
  if (std::strcmp(mode, "undefined") == 0) return Undefined();
  if (std::strcmp(mode, "leak") == 0) return Leak();
  if (std::strcmp(mode, "race") == 0) return Race();
  std::fprintf(stderr, "usage: sanitizer_canary heap-overflow | undefined | leak | race\n");
  return 2;
}
