// The stack-identity service: which stack a backend presents, from a worker's hello.
//
// Planning, guarded execution and every view over the store need a stack id before they
// can read a verdict. Learning it by initialising the backend here would run vendor code
// in the deciding process (a driver that hangs at init would hang the tool), so a worker
// says hello and is sent away. One worker per device for a GPU backend, since identical
// cards are one stack only if their workers say so (a fault rule may name one card).
#include "probe/stack_identity.h"

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "convguard/probe.h"
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

StatusOr<std::vector<DeviceStack>> AskWorkers(const ProbeOptions& options) {
  CG_ASSIGN_OR_RETURN(const probe::WorkerSpec base, probe::BaseWorkerSpec(options));
  const double startup_ms = options.deadlines.startup_ms;
  const double grace_ms = options.deadlines.reap_grace_ms;
  CG_ASSIGN_OR_RETURN(std::unique_ptr<probe::WorkerClient> first,
                      probe::WorkerClient::Start(base, startup_ms));
  const worker::Hello hello = first->hello();
  SendAway(*first, grace_ms);
  CG_RETURN_IF_ERROR(
      probe::CheckDeviceSelection(options.devices, hello.visible_devices, options.backend));
  if (hello.visible_devices <= 0)
    return std::vector<DeviceStack>{DeviceStack{-1, hello.fingerprint}};

  // The first worker ran on device 0 as it is; every other device gets a pinned worker,
  // all started at once so that their start-ups overlap.
  std::vector<DeviceStack> stacks;
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
    SendAway(*w, grace_ms);
  }
  return stacks;
}

}  // namespace

namespace probe {

void RememberStacks(const ProbeOptions& options, const std::vector<DeviceStack>& stacks) {
  std::lock_guard<std::mutex> lock(cache_mutex);
  Cache()[CacheKey(options)] = stacks;
}

}  // namespace probe

StatusOr<std::vector<DeviceStack>> IdentifyStacks(const ProbeOptions& options, Store* store) {
  if (options.backend.empty()) return Status::InvalidArgument("no backend named");
  const std::string key = CacheKey(options);
  std::vector<DeviceStack> stacks;
  {
    std::lock_guard<std::mutex> lock(cache_mutex);
    if (auto it = Cache().find(key); it != Cache().end()) stacks = it->second;
  }
  if (stacks.empty()) {
    CG_ASSIGN_OR_RETURN(stacks, AskWorkers(options));
    std::lock_guard<std::mutex> lock(cache_mutex);
    Cache()[key] = stacks;
  }
  if (store != nullptr) {
    for (const DeviceStack& d : stacks) CG_RETURN_IF_ERROR(store->PutStack(d.stack));
  }
  return stacks;
}

}  // namespace convguard
