// The dispatcher pool of a database: its capture worker assigns every enabled
// event source mapping to one of pg_streams.dispatch_workers dispatcher
// workers, starts those workers while the database has enabled mappings,
// and settles the state of mappings no worker holds (Disabling/Creating ->
// Disabled).
#pragma once

#include "boundary/pg.hpp"

namespace pgs::worker {

// Run in the capture worker, outside a transaction. Returns true when a
// worker could not be started and the check should be repeated soon.
bool ReconcileDispatchers(Oid dbid);

// Whether a dispatcher worker started by this process has stopped since the last call.
bool DispatcherStopped();

}  // namespace pgs::worker

extern "C" {
PGDLLEXPORT void pgs_dispatch_main(Datum arg);
}
