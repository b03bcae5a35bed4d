// worker/worker_main.h — the worker process: one backend, kept warm, answering probes.
//
// Started by the probe engine as `convguard worker --backend NAME [--inject FILE]`
// (argv, never a shell), in its own process group. Reads request frames on stdin,
// writes reply frames on a private copy of stdout (fd 1 itself is pointed at stderr so
// that vendor libraries printing to stdout cannot corrupt the stream). Exits 0 on EOF or
// "bye", 3 when its backend cannot start (after sending "fatal").
#pragma once

#include <string>
#include <vector>

namespace convguard::worker {

int WorkerMain(const std::vector<std::string>& args);

}  // namespace convguard::worker
