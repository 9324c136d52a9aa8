#include "worker/shmem.hpp"
#include "worker/pool_shmem.hpp"

extern "C" {
#include "pgstat.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "utils/wait_event.h"
}

namespace pgs::worker {
namespace {

constexpr int kMaxDatabases = 256;
constexpr int kMaxHttpFunctions = 1024;
// HTTP slots this process holds (released at exit): per function, how many.
struct HeldHttp {
  Oid dbid;
  int32 function_id;
  int32 count;
};
HeldHttp held_http[kMaxHttpFunctions];

struct DbEntry {
  Oid dbid;
  pid_t pid;            // capture worker, 0 when none
  Latch* latch;
  bool start_requested;
  bool exit_requested;
  bool recheck;
  bool held_off;
  bool reconcile;       // mappings changed: assign them to dispatcher workers
  // Capture progress (streams.capture_lag), kept across worker restarts:
  TimestampTz caught_up_at;    // all WAL flushed by then was captured
  TimestampTz last_commit_at;  // commit time of the last transaction captured
};

// Requests in flight to one HTTP function (for its MaxConcurrency).
struct HttpSlot {
  Oid dbid;
  int32 function_id;
  int32 in_flight;
};

struct Shared {
  slock_t mutex;
  Latch* launcher_latch;
  DbEntry dbs[kMaxDatabases];
  pg_atomic_uint64 generation;  // bumped whenever mappings or targets change
  HttpSlot http[kMaxHttpFunctions];
};

Shared* shared = nullptr;
shmem_request_hook_type prev_request_hook = nullptr;
shmem_startup_hook_type prev_startup_hook = nullptr;

void Request() {
  if (prev_request_hook) prev_request_hook();
  RequestAddinShmemSpace(MAXALIGN(sizeof(Shared)));
  RequestAddinShmemSpace(PoolShmemSize());
}

void Startup() {
  if (prev_startup_hook) prev_startup_hook();
  LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
  bool found;
  shared = static_cast<Shared*>(ShmemInitStruct("pg_streams", sizeof(Shared), &found));
  if (!found) {
    memset(shared, 0, sizeof(Shared));
    SpinLockInit(&shared->mutex);
    pg_atomic_init_u64(&shared->generation, 1);
  }
  PoolShmemInit(ShmemInitStruct("pg_streams dispatcher pool", PoolShmemSize(), &found), found);
  LWLockRelease(AddinShmemInitLock);
}

// Caller holds the mutex. Creates the entry when `create`.
DbEntry* Find(Oid dbid, bool create) {
  DbEntry* free_slot = nullptr;
  for (auto& e : shared->dbs) {
    if (e.dbid == dbid) return &e;
    if (free_slot == nullptr && e.dbid == InvalidOid) free_slot = &e;
  }
  if (!create || free_slot == nullptr) return nullptr;
  memset(free_slot, 0, sizeof(DbEntry));
  free_slot->dbid = dbid;
  return free_slot;
}

void SetLauncherLatch() {
  Latch* l = shared->launcher_latch;
  if (l != nullptr) SetLatch(l);
}

}  // namespace

void InstallShmemHooks() {
  prev_request_hook = shmem_request_hook;
  shmem_request_hook = Request;
  prev_startup_hook = shmem_startup_hook;
  shmem_startup_hook = Startup;
}

bool ShmemReady() { return shared != nullptr; }

void RegisterLauncher() {
  SpinLockAcquire(&shared->mutex);
  shared->launcher_latch = MyLatch;
  SpinLockRelease(&shared->mutex);
}

int TakeStartRequests(Oid* out, int max) {
  int n = 0;
  SpinLockAcquire(&shared->mutex);
  for (auto& e : shared->dbs) {
    if (e.dbid != InvalidOid && e.start_requested && n < max) {
      e.start_requested = false;
      out[n++] = e.dbid;
    }
  }
  SpinLockRelease(&shared->mutex);
  return n;
}

bool DatabaseHeldOff(Oid dbid) {
  SpinLockAcquire(&shared->mutex);
  DbEntry* e = Find(dbid, false);
  bool held = e != nullptr && e->held_off;
  SpinLockRelease(&shared->mutex);
  return held;
}

bool DatabaseHasWorker(Oid dbid) {
  SpinLockAcquire(&shared->mutex);
  DbEntry* e = Find(dbid, false);
  bool has = e != nullptr && e->pid != 0;
  SpinLockRelease(&shared->mutex);
  return has;
}

bool ClaimDatabase(Oid dbid) {
  SpinLockAcquire(&shared->mutex);
  DbEntry* e = Find(dbid, true);
  bool ok = e != nullptr && e->pid == 0 && !e->held_off;
  if (ok) {
    e->pid = MyProcPid;
    e->latch = MyLatch;
    e->exit_requested = false;
    e->recheck = false;
  }
  SpinLockRelease(&shared->mutex);
  return ok;
}

void ReleaseDatabase(Oid dbid) {
  SpinLockAcquire(&shared->mutex);
  DbEntry* e = Find(dbid, false);
  if (e != nullptr && e->pid == MyProcPid) {
    e->pid = 0;
    e->latch = nullptr;
  }
  SpinLockRelease(&shared->mutex);
}

bool ExitRequested(Oid dbid) {
  SpinLockAcquire(&shared->mutex);
  DbEntry* e = Find(dbid, false);
  bool req = e != nullptr && e->exit_requested;
  SpinLockRelease(&shared->mutex);
  return req;
}

bool TakeRecheck(Oid dbid) {
  SpinLockAcquire(&shared->mutex);
  DbEntry* e = Find(dbid, false);
  bool req = e != nullptr && e->recheck;
  if (req) e->recheck = false;
  SpinLockRelease(&shared->mutex);
  return req;
}

void RequestStart(Oid dbid) {
  if (shared == nullptr) return;
  SpinLockAcquire(&shared->mutex);
  DbEntry* e = Find(dbid, true);
  if (e != nullptr) e->start_requested = true;
  SpinLockRelease(&shared->mutex);
  SetLauncherLatch();
}

void RequestRecheck(Oid dbid) {
  if (shared == nullptr) return;
  MappingsChanged(dbid);
  SpinLockAcquire(&shared->mutex);
  DbEntry* e = Find(dbid, false);
  Latch* latch = nullptr;
  if (e != nullptr) {
    e->recheck = true;
    latch = e->latch;
  }
  SpinLockRelease(&shared->mutex);
  if (latch != nullptr) SetLatch(latch);
}

void WakeCapture(Oid dbid) {
  if (shared == nullptr) return;
  // Hot path (every commit): no lock. A stale latch belongs to a PGPROC that
  // stays in shared memory, so setting it is harmless.
  for (auto& e : shared->dbs) {
    if (e.dbid == dbid) {
      Latch* l = e.latch;
      if (l != nullptr) SetLatch(l);
      return;
    }
  }
}

bool HoldOffAndStop(Oid dbid, int timeout_ms) {
  if (shared == nullptr) return true;
  SpinLockAcquire(&shared->mutex);
  DbEntry* e = Find(dbid, true);
  Latch* latch = nullptr;
  if (e != nullptr) {
    e->held_off = true;
    e->exit_requested = true;
    latch = e->latch;
  }
  SpinLockRelease(&shared->mutex);
  if (latch != nullptr) SetLatch(latch);
  WakeDispatchers(dbid);
  for (int waited = 0; waited < timeout_ms; waited += 10) {
    if (!DatabaseHasWorker(dbid) && !DatabaseHasDispatchers(dbid)) return true;
    (void)WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, 10, PG_WAIT_EXTENSION);
    ResetLatch(MyLatch);
    CHECK_FOR_INTERRUPTS();
  }
  return !DatabaseHasWorker(dbid) && !DatabaseHasDispatchers(dbid);
}

void ReleaseHoldOff(Oid dbid) {
  if (shared == nullptr) return;
  SpinLockAcquire(&shared->mutex);
  DbEntry* e = Find(dbid, false);
  if (e != nullptr) {
    e->held_off = false;
    e->exit_requested = false;
    e->start_requested = true;
  }
  SpinLockRelease(&shared->mutex);
  SetLauncherLatch();
}

bool TakeReconcile(Oid dbid) {
  SpinLockAcquire(&shared->mutex);
  DbEntry* e = Find(dbid, false);
  bool req = e != nullptr && e->reconcile;
  if (req) e->reconcile = false;
  SpinLockRelease(&shared->mutex);
  return req;
}

void MappingsChanged(Oid dbid) {
  if (shared == nullptr) return;
  pg_atomic_fetch_add_u64(&shared->generation, 1);
  SpinLockAcquire(&shared->mutex);
  DbEntry* e = Find(dbid, false);
  Latch* latch = nullptr;
  if (e != nullptr) {
    e->reconcile = true;
    latch = e->latch;
  }
  SpinLockRelease(&shared->mutex);
  if (latch != nullptr) SetLatch(latch);
  WakeDispatchers(dbid);
}

void RequestReconcile(Oid dbid) {
  if (shared == nullptr) return;
  SpinLockAcquire(&shared->mutex);
  DbEntry* e = Find(dbid, false);
  Latch* latch = nullptr;
  if (e != nullptr) {
    e->reconcile = true;
    latch = e->latch;
  }
  SpinLockRelease(&shared->mutex);
  if (latch != nullptr) SetLatch(latch);
}

uint64 MappingsGeneration() { return pg_atomic_read_u64(&shared->generation); }

bool AcquireHttpSlot(Oid dbid, int32 function_id, int cap) {
  HeldHttp* mine = nullptr;
  for (auto& h : held_http)
    if (h.count > 0 && h.dbid == dbid && h.function_id == function_id) mine = &h;
  if (mine == nullptr)
    for (auto& h : held_http)
      if (h.count == 0) {
        mine = &h;
        break;
      }
  if (mine == nullptr) return false;
  SpinLockAcquire(&shared->mutex);
  HttpSlot* found = nullptr;
  HttpSlot* free_slot = nullptr;
  for (auto& h : shared->http) {
    if (h.function_id == function_id && h.dbid == dbid) found = &h;
    if (free_slot == nullptr && h.in_flight == 0) free_slot = &h;
  }
  if (found == nullptr && free_slot != nullptr) {
    *free_slot = HttpSlot{dbid, function_id, 0};
    found = free_slot;
  }
  bool ok = found != nullptr && found->in_flight < cap;
  if (ok) ++found->in_flight;
  SpinLockRelease(&shared->mutex);
  if (ok) *mine = HeldHttp{dbid, function_id, mine->count + 1};
  return ok;
}

void ReleaseHttpSlot(Oid dbid, int32 function_id) {
  HeldHttp* mine = nullptr;
  for (auto& h : held_http)
    if (h.count > 0 && h.dbid == dbid && h.function_id == function_id) mine = &h;
  if (mine == nullptr) return;
  --mine->count;
  SpinLockAcquire(&shared->mutex);
  for (auto& h : shared->http)
    if (h.function_id == function_id && h.dbid == dbid && h.in_flight > 0) {
      --h.in_flight;
      break;
    }
  SpinLockRelease(&shared->mutex);
}

void ReleaseAllHttpSlots() {
  for (auto& h : held_http)
    while (h.count > 0) ReleaseHttpSlot(h.dbid, h.function_id);
}

void NoteCaptureProgress(Oid dbid, TimestampTz caught_up_at, TimestampTz last_commit_at) {
  SpinLockAcquire(&shared->mutex);
  DbEntry* e = Find(dbid, false);
  if (e != nullptr) {
    if (caught_up_at != 0) e->caught_up_at = caught_up_at;
    if (last_commit_at != 0) e->last_commit_at = last_commit_at;
  }
  SpinLockRelease(&shared->mutex);
}

void CaptureProgress(Oid dbid, TimestampTz* caught_up_at, TimestampTz* last_commit_at) {
  *caught_up_at = *last_commit_at = 0;
  if (shared == nullptr) return;
  SpinLockAcquire(&shared->mutex);
  DbEntry* e = Find(dbid, false);
  if (e != nullptr) {
    *caught_up_at = e->caught_up_at;
    *last_commit_at = e->last_commit_at;
  }
  SpinLockRelease(&shared->mutex);
}

}  // namespace pgs::worker
