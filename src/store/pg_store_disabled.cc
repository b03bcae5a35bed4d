// OpenPostgresStore of a build without PostgreSQL support (CONVGUARD_ENABLE_POSTGRES=OFF):
// a connection string is still recognised, and refused with a reason, rather than taken
// for the name of an SQLite file.
#include "convguard/queue.h"
#include "convguard/store.h"
#include "store/pg_conninfo.h"

namespace convguard {

StatusOr<std::unique_ptr<Store>> OpenPostgresStore(const std::string& conninfo,
                                                   const PostgresStoreOptions&) {
  return Status::Unsupported("cannot open PostgreSQL store \"" +
                             pg::RedactConnectionString(conninfo) +
                             "\": this convguard was built without PostgreSQL support "
                             "(configure with -DCONVGUARD_ENABLE_POSTGRES=ON and libpq-dev)");
}

StatusOr<std::unique_ptr<WorkQueue>> OpenWorkQueue(const std::string& conninfo,
                                                   const PostgresStoreOptions& options) {
  // The same refusal as the store's: the queue lives in a PostgreSQL store.
  StatusOr<std::unique_ptr<Store>> store = OpenPostgresStore(conninfo, options);
  return store.status();
}

}  // namespace convguard
