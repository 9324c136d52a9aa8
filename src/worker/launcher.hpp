// The launcher: one static background worker that starts a capture worker
// for every database (each exits at once where pg_streams is not installed)
// and restarts them on request.
#pragma once

#include "boundary/pg.hpp"

namespace pgs::worker {

void RegisterLauncherWorker();

}  // namespace pgs::worker

extern "C" {
PGDLLEXPORT void pgs_launcher_main(Datum arg);
PGDLLEXPORT void pgs_capture_main(Datum arg);
}
