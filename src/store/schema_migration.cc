// Checking an embedded migration list. Contract: schema_migration.h.
#include "store/schema_migration.h"

#include <string>

namespace convguard {

Status CheckMigrations(std::span<const SchemaMigration> migrations) {
  if (migrations.empty()) return Status::Internal("no schema migrations are embedded");
  for (size_t i = 0; i < migrations.size(); ++i) {
    const SchemaMigration& m = migrations[i];
    const std::string name = m.name ? m.name : "(null)";
    if (m.version != static_cast<int>(i) + 1) {
      return Status::Internal("schema migration " + name + " has version " +
                              std::to_string(m.version) + " at position " + std::to_string(i + 1) +
                              "; versions must be 1, 2, 3, ... in order");
    }
    if (m.name == nullptr || m.sql == nullptr || m.sql[0] == '\0') {
      return Status::Internal("schema migration " + name + " has no SQL");
    }
  }
  return Status::Ok();
}

}  // namespace convguard
