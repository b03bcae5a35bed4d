// Choosing a store kind from a target text. Contract: convguard/store.h (OpenStore).
#include <filesystem>
#include <string>
#include <system_error>

#include "convguard/store.h"
#include "store/pg_conninfo.h"

namespace convguard {

bool IsPostgresStoreTarget(const std::string& target) { return pg::IsConnectionString(target); }

std::string StoreTargetLabel(const std::string& target) {
  return IsPostgresStoreTarget(target) ? pg::RedactConnectionString(target) : target;
}

StatusOr<std::unique_ptr<Store>> OpenStore(const std::string& target,
                                           const StoreOpenOptions& options) {
  if (IsPostgresStoreTarget(target)) {
    PostgresStoreOptions pg_options;
    pg_options.owner_is_alive = options.owner_is_alive;
    pg_options.reconnect_wait_s = options.reconnect_wait_s;
    pg_options.on_notice = options.on_notice;
    return OpenPostgresStore(target, pg_options);
  }
  if (options.create_folder) {
    const std::filesystem::path parent = std::filesystem::path(target).parent_path();
    if (!parent.empty()) {
      std::error_code ec;
      std::filesystem::create_directories(parent, ec);
      if (ec) {
        return Status::IOError("cannot create the store's folder '" + parent.string() +
                               "': " + ec.message());
      }
    }
  }
  SqliteStoreOptions sqlite_options;
  sqlite_options.owner_is_alive = options.owner_is_alive;
  return OpenSqliteStore(target, sqlite_options);
}

}  // namespace convguard
