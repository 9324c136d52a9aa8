// Starting dispatchers: the capture worker of a database makes sure every
// enabled event source mapping has a running dispatcher, and settles the
// state of mappings that have none (Disabling/Creating -> Disabled).
#pragma once

#include "boundary/pg.hpp"

namespace pgs::worker {

// pg_streams.max_dispatchers: dispatchers running at once in the cluster
// (-1: half of max_worker_processes).
extern int max_dispatchers;

// Run in the capture worker, outside a transaction. Returns true when a
// dispatcher could not be started and the check should be repeated soon.
bool ReconcileDispatchers(Oid dbid);

// Whether a dispatcher started by this process has stopped since the last call.
bool DispatcherStopped();

}  // namespace pgs::worker

extern "C" {
PGDLLEXPORT void pgs_dispatch_main(Datum arg);
}
