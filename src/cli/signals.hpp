// Clean stops for the long-running commands (tail, stats --watch): SIGINT and
// SIGTERM set a flag that the loops check between SQL calls.
#pragma once

namespace pgs::cli {

void install_stop_handlers();
bool stop_requested();

// Sleeps up to ms milliseconds; returns early (false) once a stop is requested.
bool sleep_unless_stopped(int ms);

}  // namespace pgs::cli
