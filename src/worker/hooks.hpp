// Hooks in every backend: wake the capture worker on commit, start it after
// CREATE EXTENSION, stop it around DROP/CREATE/ALTER DATABASE, and refuse
// TRUNCATE of streamed tables.
#pragma once

namespace pgs::worker {

void InstallBackendHooks();

// True in the capture worker itself (its commits must not wake it).
extern bool am_capture_worker;

// Called by streams._mappings_changed(): at commit, tell the workers.
void NoteMappingsChanged();

}  // namespace pgs::worker
