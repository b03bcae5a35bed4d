// probe/identity_cache.h — answers that cost a worker start, remembered across processes
// for as long as nothing they depend on has changed.
//
// Two answers need a process that loads vendor code: which stack a backend presents (a
// worker's hello, seconds for PyTorch on a GPU) and which interpreter imports torch. A
// command that only reads the store (scan, plan, report) would spend almost all of its
// time there. So each answer is kept in a small file with what it depends on:
//   - every file the answering process had mapped (its executable and each shared
//     library it loaded: the vendor library, the driver's user-space library, the
//     interpreter), by path, size and modification time;
//   - the machine: this boot's id (kernel drivers and devices change across reboots, and a
//     home folder shared between machines holds entries of other boots) and every
//     environment variable that steers a vendor library or convguard (CUDA_*, HIP_*,
//     MIOPEN_*, LD_*, CONVGUARD_*, ... see MachineKey());
//   - what the caller puts in the key (the backend, the fault rules' contents, devices).
// An entry is used only when its key is the same and every file still has its size and
// modification time; otherwise the answer is asked for again and the entry replaced.
//
// Where: the caller says (DefaultIdentityCacheDir in convguard/probe.h:
// $CONVGUARD_CACHE_DIR, else $XDG_CACHE_HOME/convguard, else ~/.cache/convguard;
// CONVGUARD_CACHE_DIR=off remembers nothing). One file per entry, written to a temporary
// name and renamed, so concurrent processes see an old entry or a new one, never half of
// one. A damaged or unreadable entry is a miss, never an error: this is a cache, the
// store is elsewhere.
//
// Thread-safety: an IdentityCache is immutable; concurrent use from threads and processes
// is safe.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "convguard/status.h"

namespace convguard::probe {

// The boot id and the steering environment variables, one per line.
std::string MachineKey();

class IdentityCache {
 public:
  // An empty `dir` remembers nothing (Find misses, Remember does nothing).
  explicit IdentityCache(std::string dir) : dir_(std::move(dir)) {}

  bool enabled() const { return !dir_.empty(); }
  const std::string& dir() const { return dir_; }

  // The value remembered for (`kind`, `key`) when every file it depends on is unchanged.
  // Otherwise nullopt, and `why` (when given) says what changed or that there was none.
  std::optional<nlohmann::json> Find(const std::string& kind, const std::string& key,
                                     std::string* why = nullptr) const;

  // Remembers `value` for (`kind`, `key`), depending on `files` (paths that cannot be
  // read are left out of the dependencies). Errors (the folder cannot be made or written)
  // are returned for a log; callers go on without the cache.
  Status Remember(const std::string& kind, const std::string& key, const nlohmann::json& value,
                  const std::vector<std::string>& files) const;

  // The entry file of (`kind`, `key`): DIR/KIND-<16 hex digits of the key's hash>.json.
  std::string EntryPath(const std::string& kind, const std::string& key) const;

 private:
  std::string dir_;
};

}  // namespace convguard::probe
