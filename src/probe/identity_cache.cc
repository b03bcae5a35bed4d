// Answers that cost a worker start, remembered across processes (probe/identity_cache.h).
#include "probe/identity_cache.h"

#include <array>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string_view>
#include <system_error>

#include "backends/inject/fault_rules.h"
#include "convguard/probe.h"
#include "core/hash.h"
#include "os/system.h"

namespace convguard::probe {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

constexpr int kEntryVersion = 1;

// Variables that change what a vendor library does or which one is loaded, and convguard's
// own (its fault injection and test knobs among them).
constexpr std::array<std::string_view, 20> kSteeringPrefixes = {
    "CONVGUARD_", "CUDA_",   "CUDNN_",  "CUBLAS", "NVIDIA_", "HIP_",  "HSA_",
    "ROCR_",      "ROCM_",   "MIOPEN_", "AMD_",   "GPU_",    "DNNL_", "ONEDNN_",
    "TORCH_",     "PYTORCH", "PYTHON",  "LD_",    "OMP_",    "PATH="};

struct Stamp {
  int64_t size = 0;
  int64_t mtime_ns = 0;
};

std::optional<Stamp> StampOf(const std::string& path) {
  std::error_code ec;
  const auto size = fs::file_size(path, ec);
  if (ec) return std::nullopt;
  const auto mtime = fs::last_write_time(path, ec);
  if (ec) return std::nullopt;
  const auto since_unix_epoch = std::chrono::file_clock::to_sys(mtime).time_since_epoch();
  return Stamp{static_cast<int64_t>(size),
               static_cast<int64_t>(
                   std::chrono::duration_cast<std::chrono::nanoseconds>(since_unix_epoch).count())};
}

}  // namespace
}  // namespace convguard::probe

namespace convguard {

std::string DefaultIdentityCacheDir() {
  if (auto dir = os::GetEnv("CONVGUARD_CACHE_DIR"); dir && !dir->empty()) {
    return *dir == "off" ? std::string() : *dir;
  }
  if (auto xdg = os::GetEnv("XDG_CACHE_HOME"); xdg && !xdg->empty()) return *xdg + "/convguard";
  if (auto home = os::GetEnv("HOME"); home && !home->empty()) return *home + "/.cache/convguard";
  return "";
}

}  // namespace convguard

namespace convguard::probe {

std::string MachineKey() {
  std::string key = "boot " + os::BootId() + "\n";
  for (const std::string& entry : os::EnvironmentWithPrefixes(kSteeringPrefixes)) {
    key += entry + "\n";
  }
  return key;
}

std::string IdentityCache::EntryPath(const std::string& kind, const std::string& key) const {
  return dir_ + "/" + kind + "-" + Fnv1a64Hex(key) + ".json";
}

std::optional<json> IdentityCache::Find(const std::string& kind, const std::string& key,
                                        std::string* why) const {
  const auto miss = [&](std::string reason) -> std::optional<json> {
    if (why != nullptr) *why = std::move(reason);
    return std::nullopt;
  };
  if (!enabled()) return miss("the identity cache is off");
  const std::string path = EntryPath(kind, key);
  std::ifstream in(path);
  if (!in) return miss("nothing remembered yet");
  json entry = json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (entry.is_discarded() || !entry.is_object() || entry.value("version", 0) != kEntryVersion ||
      !entry.contains("value") || !entry["files"].is_array() || !entry["key"].is_string()) {
    return miss("the remembered entry " + path + " is damaged");
  }
  if (entry["key"].get<std::string>() != key) {
    return miss("the environment or the options changed");
  }
  for (const json& f : entry["files"]) {
    if (!f.is_array() || f.size() != 3 || !f[0].is_string() || !f[1].is_number_integer() ||
        !f[2].is_number_integer()) {
      return miss("the remembered entry " + path + " is damaged");
    }
    const std::string file = f[0].get<std::string>();
    const std::optional<Stamp> now = StampOf(file);
    if (!now) return miss(file + " is gone");
    if (now->size != f[1].get<int64_t>() || now->mtime_ns != f[2].get<int64_t>()) {
      return miss(file + " changed");
    }
  }
  return entry["value"];
}

Status IdentityCache::Remember(const std::string& kind, const std::string& key, const json& value,
                               const std::vector<std::string>& files) const {
  if (!enabled()) return Status::Ok();
  std::error_code ec;
  fs::create_directories(dir_, ec);
  if (ec) {
    return Status::IOError("cannot create the identity cache folder '" + dir_ +
                           "': " + ec.message());
  }
  json entry;
  entry["version"] = kEntryVersion;
  entry["key"] = key;
  entry["written"] = os::UtcNowIso8601();
  json stamps = json::array();
  for (const std::string& file : files) {
    if (std::optional<Stamp> s = StampOf(file)) stamps.push_back({file, s->size, s->mtime_ns});
  }
  entry["files"] = std::move(stamps);
  entry["value"] = value;

  const std::string path = EntryPath(kind, key);
  const std::string temp = path + ".tmp." + std::to_string(os::CurrentPid());
  {
    std::ofstream out(temp, std::ios::trunc);
    out << entry.dump() << "\n";
    out.close();
    if (!out) {
      fs::remove(temp, ec);
      return Status::IOError("cannot write the identity cache entry '" + temp + "'");
    }
  }
  fs::rename(temp, path, ec);
  if (ec) {
    fs::remove(temp, ec);
    return Status::IOError("cannot write the identity cache entry '" + path + "'");
  }
  return Status::Ok();
}

}  // namespace convguard::probe
