// The dispatcher pool in shared memory: per database a fixed number of
// dispatcher workers (pg_streams.dispatch_workers), and one slot per enabled
// event source mapping saying which worker serves it. The capture worker of
// the database assigns mappings to workers (AssignMappings); a worker serves
// a mapping only while it holds its slot (ClaimMapping), so no two processes
// ever run one mapping. Appends wake only the workers serving mappings of the
// streams written to (WakeStreams), through a counter in each slot.
#pragma once

#include "boundary/pg.hpp"

namespace pgs::worker {

constexpr int kMaxDispatchWorkers = 64;  // per database (the setting's upper bound)

// pg_streams.dispatch_workers: dispatcher workers per database.
extern int dispatch_workers;

Size PoolShmemSize();
void PoolShmemInit(void* at, bool found);

// --- Capture worker side -------------------------------------------------
struct MappingRef {
  int32 mapping_id;
  int32 stream_id;
};
// Gives every enabled mapping of dbid (`enabled`, sorted by mapping_id) a
// worker in [0, workers): a mapping keeps its worker, new ones go to the
// worker with the fewest, and mappings move from the busiest to the least
// busy worker while they differ by more than one. Slots of mappings not in
// `enabled` and held by no worker are freed. placed[i] is false for mappings
// that found no free slot (the cluster-wide limit). Wakes the workers whose
// mappings changed.
void AssignMappings(Oid dbid, const MappingRef* enabled, int n, int workers, bool* placed);
// A worker of dbid holds the mapping's slot (its dispatcher runs).
bool MappingHeld(Oid dbid, int32 mapping_id);
bool PoolWorkerRunning(Oid dbid, int index);

// --- Dispatcher worker side ----------------------------------------------
// Fails when another live process is worker `index` of dbid.
bool ClaimPoolWorker(Oid dbid, int index);
// At exit: lets go of the mappings it holds (a fired call mark stays in its
// slot for the mapping's next dispatcher) and of its worker entry.
void ReleasePoolWorker();
// Bumped whenever any assignment changes.
uint64 AssignmentGeneration();
// The mappings assigned to this worker (at most max).
int AssignedMappings(int32* out, int max);
bool DatabaseHasMappings(Oid dbid);
// The slot of a mapping assigned to this worker and held by no other
// process; -1 when it is not (yet) free.
int ClaimMapping(int32 mapping_id);
// forget: the mapping is disabled or gone, its slot is freed (unless it
// keeps a fired call mark), and the capture worker is asked to look again.
void ReleaseMapping(int slot, bool forget);
// Appends to the mapping's stream so far (compare to see new records).
uint32 MappingAppends(int slot);
// The slot whose SQL handler calls the call marks below refer to; -1: none.
void SetCurrentMapping(int slot);
// Time this worker spent working (not waiting), for dispatch_worker_stats.
void AddBusyTime(int64 us);
void NoteInFlight(int32 requests);  // HTTP requests in flight now

// --- Appender side -------------------------------------------------------
// New records in these streams of dbid (n < 0: in any stream).
void WakeStreams(Oid dbid, const int32* streams, int n);

// --- Anyone --------------------------------------------------------------
void WakeDispatchers(Oid dbid);  // every worker of dbid (mappings changed, stop)
bool DatabaseHasDispatchers(Oid dbid);

// What streams.dispatch_worker_stats shows.
struct PoolWorkerInfo {
  int32 index;
  pid_t pid;  // 0: not running
  TimestampTz started_at;
  int64 busy_us;
  int32 in_flight;  // HTTP requests
  int32 mappings;  // assigned
  int32 held;      // being served
};
int PoolWorkersOf(Oid dbid, PoolWorkerInfo* out, int max);
struct AssignmentInfo {
  int32 mapping_id;
  int32 worker;
  pid_t held_by;  // 0: not served now
};
int AssignmentsOf(Oid dbid, AssignmentInfo* out, int max);

}  // namespace pgs::worker
