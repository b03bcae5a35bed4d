// convguard worker: the process the probe engine starts; not for people to run.
#include "cli/commands.h"
#include "worker/worker_main.h"

namespace convguard::cli {

int WorkerCommandMain(const Args& args) { return worker::WorkerMain(args); }

}  // namespace convguard::cli
