// Hooks in every backend: wake the capture worker on commit, start it after
// CREATE EXTENSION, stop it around DROP/CREATE/ALTER DATABASE, and refuse
// TRUNCATE of streamed tables.
#pragma once

namespace pgs::worker {

void InstallBackendHooks();

// True in the capture worker and its appender (their commits must not wake it;
// the appender wakes it itself once a batch is appended).
extern bool am_capture_worker;

// True in dispatchers: a commit wakes the capture worker only when the
// transaction ran user code or wrote a user table (NoteUserWork), not for the
// dispatcher's own bookkeeping (a checkpoint after an HTTP request): that WAL
// holds no change of a streamed table and would only cost a wake-up per batch.
extern bool wake_only_for_user_work;

// Called before user code runs or a user table is written in this transaction.
void NoteUserWork();

// Called by streams._mappings_changed(): at commit, tell the workers.
void NoteMappingsChanged();

}  // namespace pgs::worker
