// Shared state between backends, the launcher and the capture workers.
#pragma once

#include "boundary/pg.hpp"
#include "worker/pool_shmem.hpp"

namespace pgs::worker {

// Reserves and attaches the shared memory (shmem_request/startup hooks).
void InstallShmemHooks();
bool ShmemReady();

// Launcher side.
void RegisterLauncher();
// Takes the databases whose worker should be (re)started; returns how many
// were written to `out` (at most `max`).
int TakeStartRequests(Oid* out, int max);
bool DatabaseHeldOff(Oid dbid);
bool DatabaseHasWorker(Oid dbid);

// Capture worker side. ClaimDatabase fails when another live worker has it.
bool ClaimDatabase(Oid dbid);
void ReleaseDatabase(Oid dbid);
bool ExitRequested(Oid dbid);
bool TakeRecheck(Oid dbid);

// Capture progress of dbid (streams.capture_lag); 0: unchanged / unknown.
void NoteCaptureProgress(Oid dbid, TimestampTz caught_up_at, TimestampTz last_commit_at);
void CaptureProgress(Oid dbid, TimestampTz* caught_up_at, TimestampTz* last_commit_at);

// Backend side.
void RequestStart(Oid dbid);    // launcher: make sure dbid has a worker
void RequestRecheck(Oid dbid);  // worker: check whether the extension still exists
void WakeCapture(Oid dbid);     // worker: new commits to decode
// Makes the worker of dbid exit and keeps the launcher from restarting it
// until ReleaseHoldOff; waits up to timeout_ms for it to be gone.
bool HoldOffAndStop(Oid dbid, int timeout_ms);
void ReleaseHoldOff(Oid dbid);

// Event source mappings. MappingsChanged (at commit of a change) makes the
// capture worker assign mappings to dispatcher workers and the workers reload.
void MappingsChanged(Oid dbid);
// Makes the capture worker look at the mappings again (no reload).
void RequestReconcile(Oid dbid);
bool TakeReconcile(Oid dbid);
uint64 MappingsGeneration();
// The SQL handler call in progress of the mapping being run
// (SetCurrentMapping, pool_shmem.hpp): shard, the checkpoint its batch starts
// after, its timeout. FireCallMark (async-signal-safe) marks it when the
// dispatcher worker is ended because the handler ran past its timeout; the
// mapping's next dispatcher takes the fired mark once and counts that call as
// timed out. Marks live in shared memory: a crash-restart drops them.
void ArmCallMark(int32 shard, int64 lsn, int32 idx, int timeout_ms);
void DisarmCallMark();
void FireCallMark();
bool TakeFiredCallMark(int32* shard, int64* lsn, int32* idx, int* timeout_ms);
// MaxConcurrency of HTTP functions: one slot per request in flight.
bool AcquireHttpSlot(Oid dbid, int32 function_id, int cap);
void ReleaseHttpSlot(Oid dbid, int32 function_id);
void ReleaseAllHttpSlots();  // at exit

}  // namespace pgs::worker
