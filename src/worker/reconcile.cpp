#include "worker/reconcile.hpp"

#include "worker/pool_shmem.hpp"
#include "worker/shmem.hpp"
#include "worker/work.hpp"

extern "C" {
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "utils/lsyscache.h"
#include "executor/spi.h"
#include "postmaster/bgworker.h"
#include "utils/hsearch.h"
#include "utils/timestamp.h"
}

namespace pgs::worker {

namespace {

// Dispatcher workers (by pool index) this capture worker registered, and
// when workers that stopped had started. A PostgreSQL hash table in TopMemoryContext: an
// allocation failure is an ERROR of this worker, not a C++ exception.
struct Entry {
  int32 index;  // key: the worker's place in the pool
  BackgroundWorkerHandle* handle;  // nullptr: not running (stopped_at is set)
  TimestampTz started_at;
  TimestampTz stopped_at;  // start time of the run that stopped; 0 when none
};
HTAB* dispatchers = nullptr;

Entry* Find(int32 index, bool create) {
  bool found = false;
  auto* e = static_cast<Entry*>(hash_search(dispatchers, &index, create ? HASH_ENTER : HASH_FIND, &found));
  if (e != nullptr && !found) {
    e->handle = nullptr;
    e->started_at = 0;
    e->stopped_at = 0;
  }
  return e;
}

constexpr int kRestartDelayMs = 1000;  // a worker that failed is restarted after this

// Makes a mapping that has no dispatcher say why (LastProcessingResult).
void NoteNoSlot(int32 mapping_id, const char* why) {
  Oid types[2] = {INT4OID, TEXTOID};
  Datum values[2] = {Int32GetDatum(mapping_id), CStringGetTextDatum(why)};
  SPI_execute_with_args(
      "UPDATE streams.event_source_mapping SET last_result = $2 WHERE mapping_id = $1 AND last_result <> $2", 2,
      types, values, nullptr, false, 0);
}

bool Alive(const Entry& s) {
  pid_t pid;
  BgwHandleStatus st = GetBackgroundWorkerPid(s.handle, &pid);
  return st == BGWH_STARTED || st == BGWH_NOT_YET_STARTED;
}

bool Start(Oid dbid, int32 index) {
  BackgroundWorker w;
  memset(&w, 0, sizeof(w));
  w.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
  w.bgw_start_time = BgWorkerStart_RecoveryFinished;
  w.bgw_restart_time = BGW_NEVER_RESTART;  // the capture worker starts it again
  snprintf(w.bgw_library_name, BGW_MAXLEN, "pg_streams");
  snprintf(w.bgw_function_name, BGW_MAXLEN, "pgs_dispatch_main");
  snprintf(w.bgw_name, BGW_MAXLEN, "pg_streams dispatcher %d for database %u", index, dbid);
  snprintf(w.bgw_type, BGW_MAXLEN, "pg_streams dispatch");
  w.bgw_main_arg = Int32GetDatum(index);
  memcpy(w.bgw_extra, &dbid, sizeof(Oid));
  w.bgw_notify_pid = MyProcPid;
  BackgroundWorkerHandle* handle;
  // The handle outlives this transaction.
  MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);
  bool ok = RegisterDynamicBackgroundWorker(&w, &handle);
  MemoryContextSwitchTo(old);
  if (!ok) return false;
  Entry* e = Find(index, true);
  e->handle = handle;
  e->started_at = GetCurrentTimestamp();
  return true;
}

// Rebinds streams and mappings restored from a dump (streams._rebind_restored),
// in a transaction of its own: dispatchers started next see its result.
// Returns true while a restore is still loading (try again soon).
bool RebindRestored() {
  BeginWork();
  Oid nsp = get_namespace_oid("streams", true);
  if (!ExtensionInstalled() || !OidIsValid(get_relname_relid("event_source_mapping", nsp))) {
    EndWork();
    return false;
  }
  if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "pg_streams: SPI_connect failed");
  int rc = SPI_execute("SELECT streams._rebind_restored()", false, 1);
  if (rc != SPI_OK_SELECT) elog(ERROR, "pg_streams: could not rebind restored streams");
  bool isnull;
  int32 n = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
  SPI_finish();
  EndWork();
  if (n > 0) ereport(LOG, (errmsg("pg_streams: %d stream(s) restored from a dump now capture as new streams", n)));
  return n < 0;
}

}  // namespace

bool DispatcherStopped() {
  if (dispatchers == nullptr) return false;
  bool any = false;
  HASH_SEQ_STATUS scan;
  hash_seq_init(&scan, dispatchers);
  while (auto* e = static_cast<Entry*>(hash_seq_search(&scan))) {
    if (e->handle == nullptr || Alive(*e)) continue;
    e->stopped_at = e->started_at;
    pfree(e->handle);
    e->handle = nullptr;
    any = true;
  }
  return any;
}

bool ReconcileDispatchers(Oid dbid) {
  if (dispatchers == nullptr) {
    HASHCTL ctl;
    memset(&ctl, 0, sizeof(ctl));
    ctl.keysize = sizeof(int32);
    ctl.entrysize = sizeof(Entry);
    ctl.hcxt = TopMemoryContext;
    dispatchers = hash_create("pg_streams dispatchers", 64, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
  }
  (void)DispatcherStopped();
  bool retry_soon = RebindRestored();
  BeginWork();
  Oid nsp = get_namespace_oid("streams", true);
  if (!ExtensionInstalled() || !OidIsValid(get_relname_relid("event_source_mapping", nsp))) {
    EndWork();
    return false;
  }
  if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "pg_streams: SPI_connect failed");
  // A mapping restored from a dump has no positions until it is rebound.
  int rc = SPI_execute(
      "SELECT mapping_id, stream_id, enabled, state FROM streams.event_source_mapping e "
      "WHERE EXISTS (SELECT 1 FROM streams.mapping_shard ms WHERE ms.mapping_id = e.mapping_id) "
      "ORDER BY mapping_id",
      true, 0);
  if (rc != SPI_OK_SELECT) elog(ERROR, "pg_streams: could not read event source mappings");
  uint64 n = SPI_processed;
  SPITupleTable* tab = SPI_tuptable;
  TimestampTz now = GetCurrentTimestamp();
  auto* enabled = static_cast<MappingRef*>(palloc(sizeof(MappingRef) * (n + 1)));
  auto* placed = static_cast<bool*>(palloc(sizeof(bool) * (n + 1)));
  int n_enabled = 0;
  for (uint64 i = 0; i < n; ++i) {
    bool isnull;
    int32 id = DatumGetInt32(SPI_getbinval(tab->vals[i], tab->tupdesc, 1, &isnull));
    int32 stream_id = DatumGetInt32(SPI_getbinval(tab->vals[i], tab->tupdesc, 2, &isnull));
    bool on = DatumGetBool(SPI_getbinval(tab->vals[i], tab->tupdesc, 3, &isnull));
    if (on) enabled[n_enabled++] = MappingRef{id, stream_id};
  }
  int workers = Max(1, dispatch_workers);
  AssignMappings(dbid, enabled, n_enabled, workers, placed);
  for (int i = 0; i < n_enabled; ++i) {
    if (placed[i]) continue;
    NoteNoSlot(enabled[i].mapping_id,
               "PROBLEM: Waiting for a dispatcher: more event source mappings are enabled in the cluster than "
               "pg_streams can serve");
    retry_soon = true;
  }
  // Mappings disabled (or never started) that no worker holds: settled.
  for (uint64 i = 0; i < n; ++i) {
    bool isnull;
    int32 id = DatumGetInt32(SPI_getbinval(tab->vals[i], tab->tupdesc, 1, &isnull));
    bool on = DatumGetBool(SPI_getbinval(tab->vals[i], tab->tupdesc, 3, &isnull));
    char* state = SPI_getvalue(tab->vals[i], tab->tupdesc, 4);
    if (!on && strcmp(state, "Disabled") != 0 && !MappingHeld(dbid, id)) {
      Oid types[1] = {INT4OID};
      Datum values[1] = {Int32GetDatum(id)};
      SPI_execute_with_args("UPDATE streams.event_source_mapping SET state = 'Disabled' WHERE mapping_id = $1", 1,
                            types, values, nullptr, false, 0);
    }
  }
  // The pool runs while the database has enabled mappings; a worker with
  // nothing to serve exits by itself.
  for (int index = 0; n_enabled > 0 && index < workers; ++index) {
    Entry* known = Find(index, false);
    if ((known != nullptr && known->handle != nullptr) || PoolWorkerRunning(dbid, index)) continue;
    if (known != nullptr && known->stopped_at != 0 &&
        !TimestampDifferenceExceeds(known->stopped_at, now, kRestartDelayMs)) {
      retry_soon = true;
      continue;
    }
    if (!Start(dbid, index)) {
      retry_soon = true;
      ereport(WARNING, (errmsg("pg_streams: no background worker slot for dispatcher worker %d of database %u", index,
                               dbid),
                        errhint("Raise max_worker_processes: pg_streams needs 2 + pg_streams.dispatch_workers "
                                "per database, plus one.")));
      for (int i = 0; i < n_enabled; ++i)
        NoteNoSlot(enabled[i].mapping_id,
                   "PROBLEM: Waiting for a dispatcher: no background worker slot (max_worker_processes)");
      break;
    }
  }
  HASH_SEQ_STATUS scan;
  hash_seq_init(&scan, dispatchers);
  while (auto* e = static_cast<Entry*>(hash_seq_search(&scan))) {
    if (e->handle == nullptr && TimestampDifferenceExceeds(e->stopped_at, now, kRestartDelayMs)) {
      int32 key = e->index;
      (void)hash_search(dispatchers, &key, HASH_REMOVE, nullptr);  // removing the current entry is allowed
    }
  }
  SPI_finish();
  EndWork();
  return retry_soon;
}

}  // namespace pgs::worker
