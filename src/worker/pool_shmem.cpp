#include "worker/pool_shmem.hpp"

#include "worker/shmem.hpp"

extern "C" {
#include "miscadmin.h"
#include "port/atomics.h"
#include "storage/latch.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "utils/timestamp.h"
}

namespace pgs::worker {

int dispatch_workers = 2;

namespace {

constexpr int kMaxPoolWorkers = 1024;   // in the cluster
constexpr int kMaxMappingSlots = 16384;  // enabled mappings in the cluster

struct PoolWorker {
  Oid dbid;  // InvalidOid: free entry
  int32 index;
  pid_t pid;
  Latch* latch;
  TimestampTz started_at;
  int64 busy_us;
  int32 in_flight;
};

// One enabled mapping: the worker that serves it, the process holding it,
// and the SQL handler call in progress (the call mark): a worker ended
// because a handler ran past its timeout leaves the mark fired in the slot,
// and the mapping's next dispatcher takes it.
struct MappingSlot {
  Oid dbid;  // InvalidOid: free slot
  int32 mapping_id;
  int32 stream_id;
  int32 worker;  // assigned worker index
  pid_t pid;     // holder, 0: none
  volatile uint32 appends;  // bumped by the database's appender (one writer)
  int32 mark_shard;
  int64 mark_lsn;
  int32 mark_idx;
  int32 mark_timeout_ms;
  volatile sig_atomic_t mark_armed;
  volatile sig_atomic_t mark_fired;
};

struct PoolShared {
  slock_t mutex;
  pg_atomic_uint64 assign_generation;
  // Slots at or past this index have never been used: scans stop here.
  volatile int32 slots_used;
  PoolWorker workers[kMaxPoolWorkers];
  MappingSlot slots[kMaxMappingSlots];
};

PoolShared* pool = nullptr;

// The slots that may be in use (read without the lock by WakeStreams: a
// slot taken meanwhile was empty at the append).
MappingSlot* SlotsBegin() { return pool->slots; }
MappingSlot* SlotsEnd() { return pool->slots + pool->slots_used; }

struct UsedSlots {
  MappingSlot* begin() const { return SlotsBegin(); }
  MappingSlot* end() const { return SlotsEnd(); }
};
PoolWorker* me = nullptr;              // this process's worker entry
MappingSlot* volatile current = nullptr;  // for the call marks

// Caller holds the mutex.
PoolWorker* FindWorker(Oid dbid, int index) {
  for (auto& w : pool->workers)
    if (w.dbid == dbid && w.index == index) return &w;
  return nullptr;
}

// Caller holds the mutex; the latch is set after releasing it.
Latch* LatchOf(Oid dbid, int index) {
  PoolWorker* w = FindWorker(dbid, index);
  return w != nullptr && w->pid != 0 ? w->latch : nullptr;
}

}  // namespace

Size PoolShmemSize() { return MAXALIGN(sizeof(PoolShared)); }

void PoolShmemInit(void* at, bool found) {
  pool = static_cast<PoolShared*>(at);
  if (found) return;
  memset(pool, 0, sizeof(PoolShared));
  SpinLockInit(&pool->mutex);
  pg_atomic_init_u64(&pool->assign_generation, 1);
}

void AssignMappings(Oid dbid, const MappingRef* enabled, int n, int workers, bool* placed) {
  workers = Max(1, Min(workers, kMaxDispatchWorkers));
  int count[kMaxDispatchWorkers] = {0};
  bool changed = false;
  bool wake[kMaxDispatchWorkers] = {false};
  for (int i = 0; i < n; ++i) placed[i] = false;
  SpinLockAcquire(&pool->mutex);
  // Known slots: keep, or free those of mappings no longer enabled.
  for (auto& s : UsedSlots{}) {
    if (s.dbid != dbid) continue;
    int lo = 0, hi = n - 1, at = -1;
    while (lo <= hi) {
      int mid = (lo + hi) / 2;
      if (enabled[mid].mapping_id == s.mapping_id) {
        at = mid;
        break;
      }
      if (enabled[mid].mapping_id < s.mapping_id)
        lo = mid + 1;
      else
        hi = mid - 1;
    }
    if (at >= 0 && !placed[at]) {
      placed[at] = true;
      if (s.worker >= 0 && s.worker < workers) ++count[s.worker];
    } else if (s.pid == 0) {
      s = MappingSlot{};  // disabled or gone (or a duplicate), held by nobody
      changed = true;
    }
  }
  auto least = [&] {
    int best = 0;
    for (int w = 1; w < workers; ++w)
      if (count[w] < count[best]) best = w;
    return best;
  };
  // Mappings of workers that are no more (the pool shrank).
  for (auto& s : UsedSlots{}) {
    if (s.dbid != dbid || (s.worker >= 0 && s.worker < workers)) continue;
    bool enabled_one = false;
    for (int i = 0; i < n && !enabled_one; ++i) enabled_one = enabled[i].mapping_id == s.mapping_id;
    if (!enabled_one) continue;
    s.worker = least();
    ++count[s.worker];
    wake[s.worker] = changed = true;
  }
  // New mappings.
  MappingSlot* free_slot = pool->slots;
  MappingSlot* end = pool->slots + kMaxMappingSlots;  // free slots may lie past slots_used
  for (int i = 0; i < n; ++i) {
    if (placed[i]) continue;
    while (free_slot < end && free_slot->dbid != InvalidOid) ++free_slot;
    if (free_slot == end) break;
    *free_slot = MappingSlot{};
    free_slot->dbid = dbid;
    free_slot->mapping_id = enabled[i].mapping_id;
    free_slot->stream_id = enabled[i].stream_id;
    free_slot->worker = least();
    if (free_slot - pool->slots >= pool->slots_used) {
      pg_write_barrier();  // the slot is filled in before scans reach it
      pool->slots_used = static_cast<int32>(free_slot - pool->slots) + 1;
    }
    ++count[free_slot->worker];
    wake[free_slot->worker] = changed = true;
    placed[i] = true;
  }
  // Even out: move mappings from the busiest worker to the least busy one
  // (a moved mapping is taken up once its old worker has let go of it).
  for (;;) {
    int hi = 0, lo = least();
    for (int w = 1; w < workers; ++w)
      if (count[w] > count[hi]) hi = w;
    if (count[hi] - count[lo] <= 1) break;
    MappingSlot* move = nullptr;
    for (auto& s : UsedSlots{})
      if (s.dbid == dbid && s.worker == hi && (move == nullptr || s.mapping_id > move->mapping_id)) move = &s;
    if (move == nullptr) break;
    move->worker = lo;
    --count[hi];
    ++count[lo];
    wake[hi] = wake[lo] = changed = true;
  }
  Latch* latches[kMaxDispatchWorkers];
  int n_latches = 0;
  if (changed) {
    pg_atomic_fetch_add_u64(&pool->assign_generation, 1);
    for (int w = 0; w < workers; ++w)
      if (wake[w] && (latches[n_latches] = LatchOf(dbid, w)) != nullptr) ++n_latches;
  }
  SpinLockRelease(&pool->mutex);
  for (int i = 0; i < n_latches; ++i) SetLatch(latches[i]);
}

bool MappingHeld(Oid dbid, int32 mapping_id) {
  SpinLockAcquire(&pool->mutex);
  bool held = false;
  for (auto& s : UsedSlots{})
    if (s.dbid == dbid && s.mapping_id == mapping_id && s.pid != 0) held = true;
  SpinLockRelease(&pool->mutex);
  return held;
}

bool PoolWorkerRunning(Oid dbid, int index) {
  SpinLockAcquire(&pool->mutex);
  PoolWorker* w = FindWorker(dbid, index);
  bool running = w != nullptr && w->pid != 0;
  SpinLockRelease(&pool->mutex);
  return running;
}

bool ClaimPoolWorker(Oid dbid, int index) {
  SpinLockAcquire(&pool->mutex);
  PoolWorker* w = FindWorker(dbid, index);
  if (w == nullptr)
    for (auto& f : pool->workers)
      if (f.dbid == InvalidOid) {
        w = &f;
        break;
      }
  bool ok = w != nullptr && w->pid == 0;
  if (ok) {
    w->dbid = dbid;
    w->index = index;
    w->pid = MyProcPid;
    w->latch = MyLatch;
    w->started_at = GetCurrentTimestamp();
    w->busy_us = 0;
    w->in_flight = 0;
    me = w;
  }
  SpinLockRelease(&pool->mutex);
  return ok;
}

void ReleasePoolWorker() {
  if (me == nullptr) return;
  current = nullptr;
  SpinLockAcquire(&pool->mutex);
  for (auto& s : UsedSlots{})
    if (s.pid == MyProcPid) s.pid = 0;  // a fired call mark stays with the slot
  *me = PoolWorker{};
  me = nullptr;
  SpinLockRelease(&pool->mutex);
}

uint64 AssignmentGeneration() { return pg_atomic_read_u64(&pool->assign_generation); }

int AssignedMappings(int32* out, int max) {
  int n = 0;
  SpinLockAcquire(&pool->mutex);
  for (auto& s : UsedSlots{})
    if (s.dbid == me->dbid && s.worker == me->index && n < max) out[n++] = s.mapping_id;
  SpinLockRelease(&pool->mutex);
  return n;
}

bool DatabaseHasMappings(Oid dbid) {
  SpinLockAcquire(&pool->mutex);
  bool any = false;
  for (auto& s : UsedSlots{})
    if (s.dbid == dbid) any = true;
  SpinLockRelease(&pool->mutex);
  return any;
}

int ClaimMapping(int32 mapping_id) {
  int found = -1;
  SpinLockAcquire(&pool->mutex);
  for (int i = 0; i < pool->slots_used; ++i) {
    MappingSlot& s = pool->slots[i];
    if (s.dbid == me->dbid && s.mapping_id == mapping_id && s.worker == me->index &&
        (s.pid == 0 || s.pid == MyProcPid)) {
      s.pid = MyProcPid;
      found = i;
      break;
    }
  }
  SpinLockRelease(&pool->mutex);
  return found;
}

void ReleaseMapping(int slot, bool forget) {
  MappingSlot& s = pool->slots[slot];
  if (current == &s) current = nullptr;
  Oid dbid = s.dbid;
  Latch* latch = nullptr;
  SpinLockAcquire(&pool->mutex);
  if (s.pid == MyProcPid) {
    s.pid = 0;
    if (forget && !s.mark_fired)
      s = MappingSlot{};
    else
      latch = LatchOf(dbid, s.worker);  // moved: its new worker may take it now
  }
  SpinLockRelease(&pool->mutex);
  if (latch != nullptr) SetLatch(latch);
  if (forget) RequestReconcile(dbid);
}

uint32 MappingAppends(int slot) {
  uint32 n = pool->slots[slot].appends;
  pg_read_barrier();
  return n;
}

void SetCurrentMapping(int slot) { current = slot < 0 ? nullptr : &pool->slots[slot]; }

void AddBusyTime(int64 us) {
  if (me != nullptr) me->busy_us += us;  // read unlocked by the stats view: a torn read is harmless there
}

void NoteInFlight(int32 requests) {
  if (me != nullptr) me->in_flight = requests;
}

void WakeStreams(Oid dbid, const int32* streams, int n) {
  if (pool == nullptr) return;
  // After every append: no lock. The appender is the only writer of
  // `appends`; a slot freed or reused meanwhile gets a needless wake-up.
  bool wake[kMaxDispatchWorkers] = {false};
  bool any = false;
  for (auto& s : UsedSlots{}) {
    if (s.dbid != dbid) continue;
    bool hit = n < 0;
    for (int i = 0; i < n && !hit; ++i) hit = streams[i] == s.stream_id;
    if (!hit) continue;
    s.appends = s.appends + 1;
    int w = s.worker;
    if (w >= 0 && w < kMaxDispatchWorkers) wake[w] = any = true;
  }
  if (!any) return;
  pg_write_barrier();
  for (auto& w : pool->workers) {
    Latch* l = w.latch;
    if (w.dbid == dbid && w.pid != 0 && l != nullptr && w.index >= 0 && w.index < kMaxDispatchWorkers &&
        wake[w.index])
      SetLatch(l);
  }
}

void WakeDispatchers(Oid dbid) {
  if (pool == nullptr) return;
  for (auto& w : pool->workers) {
    Latch* l = w.latch;
    if (w.dbid == dbid && w.pid != 0 && l != nullptr) SetLatch(l);
  }
}

bool DatabaseHasDispatchers(Oid dbid) {
  SpinLockAcquire(&pool->mutex);
  bool any = false;
  for (auto& w : pool->workers)
    if (w.dbid == dbid && w.pid != 0) any = true;
  SpinLockRelease(&pool->mutex);
  return any;
}

int PoolWorkersOf(Oid dbid, PoolWorkerInfo* out, int max) {
  int n = Min(max, Max(dispatch_workers, 0));
  for (int i = 0; i < n; ++i) out[i] = PoolWorkerInfo{i, 0, 0, 0, 0, 0, 0};
  SpinLockAcquire(&pool->mutex);
  for (auto& w : pool->workers) {
    if (w.dbid != dbid || w.index < 0) continue;
    if (w.index >= n) {  // still running after the pool shrank
      if (n >= max) continue;
      out[n++] = PoolWorkerInfo{w.index, 0, 0, 0, 0, 0, 0};
      out[n - 1].index = w.index;
    }
    for (int i = 0; i < n; ++i)
      if (out[i].index == w.index) {
        out[i].pid = w.pid;
        out[i].started_at = w.started_at;
        out[i].busy_us = w.busy_us;
        out[i].in_flight = w.in_flight;
      }
  }
  for (auto& s : UsedSlots{}) {
    if (s.dbid != dbid) continue;
    for (int i = 0; i < n; ++i)
      if (out[i].index == s.worker) {
        ++out[i].mappings;
        if (s.pid != 0) ++out[i].held;
      }
  }
  SpinLockRelease(&pool->mutex);
  return n;
}

int AssignmentsOf(Oid dbid, AssignmentInfo* out, int max) {
  int n = 0;
  SpinLockAcquire(&pool->mutex);
  for (auto& s : UsedSlots{})
    if (s.dbid == dbid && n < max) out[n++] = AssignmentInfo{s.mapping_id, s.worker, s.pid};
  SpinLockRelease(&pool->mutex);
  return n;
}

// The call marks (declared in shmem.hpp): on the slot of the mapping whose
// handler runs.
void ArmCallMark(int32 shard, int64 lsn, int32 idx, int timeout_ms) {
  MappingSlot* s = current;
  if (s == nullptr) return;
  s->mark_armed = 0;
  pg_write_barrier();
  s->mark_shard = shard;
  s->mark_lsn = lsn;
  s->mark_idx = idx;
  s->mark_timeout_ms = timeout_ms;
  s->mark_fired = 0;
  pg_write_barrier();
  s->mark_armed = 1;
}

void DisarmCallMark() {
  MappingSlot* s = current;
  if (s != nullptr) s->mark_armed = 0;
}

void FireCallMark() {
  MappingSlot* s = current;
  if (s != nullptr && s->mark_armed) s->mark_fired = 1;
}

bool TakeFiredCallMark(int32* shard, int64* lsn, int32* idx, int* timeout_ms) {
  MappingSlot* s = current;
  if (s == nullptr || !s->mark_fired) return false;
  *shard = s->mark_shard;
  *lsn = s->mark_lsn;
  *idx = s->mark_idx;
  *timeout_ms = s->mark_timeout_ms;
  s->mark_fired = 0;
  s->mark_armed = 0;
  return true;
}

}  // namespace pgs::worker
