// The backend registry: names -> backends, best real backend first.
#include <string>
#include <vector>

#include "backends/embedded_stacks.h"
#include "backends/inject/injecting_backend.h"
#include "backends/reference/reference_backend.h"
#include "convguard/backend.h"

namespace convguard {

std::vector<std::string> RegisteredBackends() {
  // Vendor backends (oneDNN, PyTorch, cuDNN) are listed ahead of the reference when this
  // build has them. Emulations come last: they are never a default.
  return {"reference", "emulated-rdna1"};
}

StatusOr<std::unique_ptr<Backend>> CreateBackend(std::string_view name, const BackendOptions& options) {
  std::unique_ptr<Backend> backend;
  if (name == "reference") {
    backend = MakeReferenceBackend();
  } else if (name == "emulated-rdna1") {
    CG_ASSIGN_OR_RETURN(backend, inject::WrapWithFaultRules(MakeReferenceBackend(), EmulatedRdna1Rules(),
                                                            "builtin:emulated-rdna1.rules",
                                                            "emulated-rdna1"));
  } else {
    std::string known;
    for (const std::string& n : RegisteredBackends()) known += (known.empty() ? "" : ", ") + n;
    return Status::NotFound("backend '" + std::string(name) + "' is not in this build (known: " + known + ")");
  }
  if (!options.fault_rules.empty()) {
    const std::string registry_name(backend->name());
    CG_ASSIGN_OR_RETURN(backend, inject::WrapWithFaultRules(std::move(backend), options.fault_rules,
                                                            options.fault_rules_origin, registry_name));
  }
  return backend;
}

}  // namespace convguard
