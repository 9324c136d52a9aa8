#include "worker/reconcile.hpp"

#include <map>

#include "worker/shmem.hpp"
#include "worker/work.hpp"

extern "C" {
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "utils/lsyscache.h"
#include "executor/spi.h"
#include "postmaster/bgworker.h"
#include "utils/timestamp.h"
}

namespace pgs::worker {
namespace {

struct Started {
  BackgroundWorkerHandle* handle;
  TimestampTz at;
};
// Dispatchers this capture worker registered (plain data; the map lives as
// long as the process).
std::map<int32, Started>* started = nullptr;
std::map<int32, TimestampTz>* stopped_at = nullptr;  // start time of dispatchers that stopped

constexpr int kRestartDelayMs = 1000;  // a dispatcher that failed is restarted after this

bool Alive(const Started& s) {
  pid_t pid;
  BgwHandleStatus st = GetBackgroundWorkerPid(s.handle, &pid);
  return st == BGWH_STARTED || st == BGWH_NOT_YET_STARTED;
}

bool Start(Oid dbid, int32 mapping_id) {
  BackgroundWorker w;
  memset(&w, 0, sizeof(w));
  w.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
  w.bgw_start_time = BgWorkerStart_RecoveryFinished;
  w.bgw_restart_time = BGW_NEVER_RESTART;  // the capture worker starts it again
  snprintf(w.bgw_library_name, BGW_MAXLEN, "pg_streams");
  snprintf(w.bgw_function_name, BGW_MAXLEN, "pgs_dispatch_main");
  snprintf(w.bgw_name, BGW_MAXLEN, "pg_streams dispatcher for mapping %d in database %u", mapping_id, dbid);
  snprintf(w.bgw_type, BGW_MAXLEN, "pg_streams dispatch");
  w.bgw_main_arg = Int32GetDatum(mapping_id);
  memcpy(w.bgw_extra, &dbid, sizeof(Oid));
  w.bgw_notify_pid = MyProcPid;
  BackgroundWorkerHandle* handle;
  // The handle outlives this transaction.
  MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);
  bool ok = RegisterDynamicBackgroundWorker(&w, &handle);
  MemoryContextSwitchTo(old);
  if (!ok) return false;
  (*started)[mapping_id] = Started{handle, GetCurrentTimestamp()};
  return true;
}

}  // namespace

bool DispatcherStopped() {
  if (started == nullptr) return false;
  bool any = false;
  for (auto it = started->begin(); it != started->end();) {
    if (Alive(it->second)) {
      ++it;
      continue;
    }
    (*stopped_at)[it->first] = it->second.at;
    pfree(it->second.handle);
    it = started->erase(it);
    any = true;
  }
  return any;
}

bool ReconcileDispatchers(Oid dbid) {
  if (started == nullptr) {
    started = new std::map<int32, Started>();
    stopped_at = new std::map<int32, TimestampTz>();
  }
  (void)DispatcherStopped();
  bool retry_soon = false;
  BeginWork();
  Oid nsp = get_namespace_oid("streams", true);
  if (!ExtensionInstalled() || !OidIsValid(get_relname_relid("event_source_mapping", nsp))) {
    EndWork();
    return false;
  }
  if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "pg_streams: SPI_connect failed");
  int rc = SPI_execute("SELECT mapping_id, enabled, state FROM streams.event_source_mapping", true, 0);
  if (rc != SPI_OK_SELECT) elog(ERROR, "pg_streams: could not read event source mappings");
  uint64 n = SPI_processed;
  SPITupleTable* tab = SPI_tuptable;
  TimestampTz now = GetCurrentTimestamp();
  for (uint64 i = 0; i < n; ++i) {
    bool isnull;
    int32 id = DatumGetInt32(SPI_getbinval(tab->vals[i], tab->tupdesc, 1, &isnull));
    bool enabled = DatumGetBool(SPI_getbinval(tab->vals[i], tab->tupdesc, 2, &isnull));
    char* state = SPI_getvalue(tab->vals[i], tab->tupdesc, 3);
    bool alive = started->count(id) > 0 || DispatcherRunning(dbid, id);
    if (enabled && !alive) {
      auto last = stopped_at->find(id);
      if (last != stopped_at->end() && !TimestampDifferenceExceeds(last->second, now, kRestartDelayMs)) {
        retry_soon = true;
        continue;
      }
      if (!Start(dbid, id)) {
        retry_soon = true;
        ereport(WARNING, (errmsg("pg_streams: no background worker slot for the dispatcher of mapping %d", id),
                          errhint("Raise max_worker_processes: pg_streams needs one per enabled event source "
                                  "mapping, plus two per database.")));
      }
    } else if (!enabled && !alive && strcmp(state, "Disabled") != 0) {
      Oid types[1] = {INT4OID};
      Datum values[1] = {Int32GetDatum(id)};
      SPI_execute_with_args("UPDATE streams.event_source_mapping SET state = 'Disabled' WHERE mapping_id = $1", 1,
                            types, values, nullptr, false, 0);
    }
  }
  for (auto it = stopped_at->begin(); it != stopped_at->end();) {
    if (TimestampDifferenceExceeds(it->second, now, kRestartDelayMs))
      it = stopped_at->erase(it);
    else
      ++it;
  }
  SPI_finish();
  EndWork();
  return retry_soon;
}

}  // namespace pgs::worker
