// The stack-identity service: which stack a backend presents, from a worker's hello.
//
// Planning, guarded execution and every view over the store need a stack id before they
// can read a verdict. Learning it by initialising the backend here would run vendor code
// in the deciding process (a driver that hangs at init would hang the tool), so a worker
// says hello and is sent away. One worker per device for a GPU backend, since identical
// cards are one stack only if their workers say so (a fault rule may name one card).
//
// Across processes the answer is remembered in the identity cache (probe/identity_cache.h)
// when ProbeOptions::identity_cache_dir names one: keyed by the options, the fault rules'
// text and the machine, valid while every file the workers had mapped is unchanged.
#include "probe/stack_identity.h"

#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "backends/inject/fault_rules.h"
#include "convguard/probe.h"
#include "core/hash.h"
#include "core/json_records.h"
#include "os/system.h"
#include "probe/identity_cache.h"
#include "probe/launcher.h"
#include "probe/worker_client.h"
#include "worker/protocol.h"

namespace convguard {
namespace {

std::string CacheKey(const ProbeOptions& o) {
  std::string key =
      o.backend + '\n' + o.fault_rules_path + '\n' + o.worker_executable + '\n' + o.python + '\n';
  for (int d : o.devices) key += std::to_string(d) + ',';
  return key;
}

std::mutex cache_mutex;
std::map<std::string, std::vector<DeviceStack>>& Cache() {
  static auto* cache = new std::map<std::string, std::vector<DeviceStack>>();
  return *cache;
}

void SendAway(probe::WorkerClient& w, double grace_ms) {
  (void)w.Send(worker::EncodeBye());
  (void)w.Kill(grace_ms);
}

struct Asked {
  std::vector<DeviceStack> stacks;
  std::set<std::string> files;  // every file any of the workers had mapped
};

StatusOr<Asked> AskWorkers(const ProbeOptions& options) {
  CG_ASSIGN_OR_RETURN(const probe::WorkerSpec base, probe::BaseWorkerSpec(options));
  const double startup_ms = options.deadlines.startup_ms;
  const double grace_ms = options.deadlines.reap_grace_ms;
  CG_ASSIGN_OR_RETURN(std::unique_ptr<probe::WorkerClient> first,
                      probe::WorkerClient::Start(base, startup_ms));
  const worker::Hello hello = first->hello();
  SendAway(*first, grace_ms);
  CG_RETURN_IF_ERROR(
      probe::CheckDeviceSelection(options.devices, hello.visible_devices, options.backend));
  Asked out;
  out.files.insert(hello.mapped_files.begin(), hello.mapped_files.end());
  if (hello.visible_devices <= 0) {
    out.stacks = {DeviceStack{-1, hello.fingerprint}};
    return out;
  }

  // The first worker ran on device 0 as it is; every other device gets a pinned worker,
  // all started at once so that their start-ups overlap.
  std::vector<DeviceStack>& stacks = out.stacks;
  std::vector<std::pair<size_t, std::unique_ptr<probe::WorkerClient>>> asked;
  for (int d : probe::DevicesToUse(options.devices, hello.visible_devices)) {
    stacks.push_back(DeviceStack{d, hello.fingerprint});
    if (d == 0 && probe::UnpinnedWorkerServesDeviceZero()) continue;
    CG_ASSIGN_OR_RETURN(std::unique_ptr<probe::WorkerClient> w,
                        probe::WorkerClient::Spawn(probe::PinnedWorkerSpec(base, d)));
    asked.emplace_back(stacks.size() - 1, std::move(w));
  }
  for (auto& [index, w] : asked) {
    CG_RETURN_IF_ERROR(w->AwaitHello(startup_ms));
    stacks[index].stack = w->hello().fingerprint;
    out.files.insert(w->hello().mapped_files.begin(), w->hello().mapped_files.end());
    SendAway(*w, grace_ms);
  }
  return out;
}

// What the remembered answer depends on besides files: the options, the rules' text (a
// rules file edited in place keeps its path), this executable, and the machine.
std::string PersistentKey(const ProbeOptions& options) {
  std::string key = "stacks\n" + CacheKey(options) + "\n";
  if (!options.fault_rules_path.empty()) {
    std::ifstream in(options.fault_rules_path, std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    key += "rules " + Fnv1a64Hex(text.str()) + "\n";
  }
  StatusOr<std::string> self = os::SelfExecutablePath();
  key += "self " + (self.ok() ? *self : std::string("?")) + "\n";
  return key + probe::MachineKey();
}

std::optional<std::vector<DeviceStack>> StacksFromJson(const nlohmann::json& value) {
  if (!value.is_array() || value.empty()) return std::nullopt;
  std::vector<DeviceStack> stacks;
  for (const nlohmann::json& entry : value) {
    if (!entry.is_object() || !entry.contains("device") || !entry["device"].is_number_integer() ||
        !entry.contains("stack")) {
      return std::nullopt;
    }
    StatusOr<StackFingerprint> fp = StackFromJson(entry["stack"]);
    if (!fp.ok()) return std::nullopt;
    stacks.push_back(DeviceStack{entry["device"].get<int>(), *std::move(fp)});
  }
  return stacks;
}

nlohmann::json StacksToJson(const std::vector<DeviceStack>& stacks) {
  nlohmann::json out = nlohmann::json::array();
  for (const DeviceStack& d : stacks)
    out.push_back({{"device", d.device}, {"stack", ToJson(d.stack)}});
  return out;
}

}  // namespace

namespace probe {

void RememberStacks(const ProbeOptions& options, const std::vector<DeviceStack>& stacks) {
  std::lock_guard<std::mutex> lock(cache_mutex);
  Cache()[CacheKey(options)] = stacks;
}

}  // namespace probe

StatusOr<std::vector<DeviceStack>> IdentifyStacks(const ProbeOptions& options, Store* store,
                                                  std::string* how) {
  if (options.backend.empty()) return Status::InvalidArgument("no backend named");
  const std::string key = CacheKey(options);
  std::vector<DeviceStack> stacks;
  {
    std::lock_guard<std::mutex> lock(cache_mutex);
    if (auto it = Cache().find(key); it != Cache().end()) stacks = it->second;
  }
  if (!stacks.empty()) {
    if (how != nullptr) *how = "known in this process";
  } else {
    const probe::IdentityCache remembered(options.identity_cache_dir);
    std::string persistent_key;
    std::string why_not;
    if (remembered.enabled()) {
      persistent_key = PersistentKey(options);
      if (auto value = remembered.Find("stacks", persistent_key, &why_not)) {
        if (auto from_cache = StacksFromJson(*value)) {
          stacks = *std::move(from_cache);
          if (how != nullptr)
            *how = "remembered in " + remembered.EntryPath("stacks", persistent_key);
        } else {
          why_not = "the remembered entry is damaged";
        }
      }
    } else {
      why_not = "the identity cache is off";
    }
    if (stacks.empty()) {
      CG_ASSIGN_OR_RETURN(Asked asked, AskWorkers(options));
      stacks = std::move(asked.stacks);
      std::string note;
      if (remembered.enabled()) {
        std::vector<std::string> files(asked.files.begin(), asked.files.end());
        if (StatusOr<std::string> self = os::SelfExecutablePath(); self.ok())
          files.push_back(*self);
        if (!options.fault_rules_path.empty()) files.push_back(options.fault_rules_path);
        if (Status s = remembered.Remember("stacks", persistent_key, StacksToJson(stacks), files);
            !s.ok()) {
          note = "; not remembered: " + s.message();
        }
      }
      if (how != nullptr) *how = "asked a worker (" + why_not + ")" + note;
    }
    std::lock_guard<std::mutex> lock(cache_mutex);
    Cache()[key] = stacks;
  }
  if (store != nullptr) {
    for (const DeviceStack& d : stacks) CG_RETURN_IF_ERROR(store->PutStack(d.stack));
  }
  return stacks;
}

}  // namespace convguard
