#include "worker/launcher.hpp"
#include "worker/shmem.hpp"

extern "C" {
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/pg_database.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/wait_event.h"
}

namespace pgs::worker {
namespace {

constexpr int kMaxBatch = 64;

void StartCaptureWorker(Oid dbid) {
  BackgroundWorker w;
  memset(&w, 0, sizeof(w));
  w.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
  w.bgw_start_time = BgWorkerStart_RecoveryFinished;
  w.bgw_restart_time = 1;  // an ERROR exits with 1: restart; exit(0) means done
  snprintf(w.bgw_library_name, BGW_MAXLEN, "pg_streams");
  snprintf(w.bgw_function_name, BGW_MAXLEN, "pgs_capture_main");
  snprintf(w.bgw_name, BGW_MAXLEN, "pg_streams capture worker for database %u", dbid);
  snprintf(w.bgw_type, BGW_MAXLEN, "pg_streams capture");
  w.bgw_main_arg = ObjectIdGetDatum(dbid);
  w.bgw_notify_pid = 0;
  BackgroundWorkerHandle* handle;
  if (!RegisterDynamicBackgroundWorker(&w, &handle))
    ereport(WARNING, (errmsg("pg_streams: could not start the capture worker for database %u", dbid),
                      errhint("Raise max_worker_processes.")));
}

// Every database a worker may run in; `only` restricts to one database.
int ConnectableDatabases(Oid* out, int max, Oid only) {
  int n = 0;
  StartTransactionCommand();
  PushActiveSnapshot(GetTransactionSnapshot());
  Relation rel = table_open(DatabaseRelationId, AccessShareLock);
  TableScanDesc scan = table_beginscan_catalog(rel, 0, nullptr);
  HeapTuple tup;
  while (n < max && HeapTupleIsValid(tup = heap_getnext(scan, ForwardScanDirection))) {
    auto* db = reinterpret_cast<Form_pg_database>(GETSTRUCT(tup));
    if (db->datistemplate || !db->datallowconn) continue;
    if (OidIsValid(only) && db->oid != only) continue;
    out[n++] = db->oid;
  }
  table_endscan(scan);
  table_close(rel, AccessShareLock);
  PopActiveSnapshot();
  CommitTransactionCommand();
  return n;
}

void StartIfNeeded(Oid dbid) {
  if (DatabaseHeldOff(dbid) || DatabaseHasWorker(dbid)) return;
  Oid found[1];
  if (ConnectableDatabases(found, 1, dbid) == 0) return;  // dropped, or a template
  StartCaptureWorker(dbid);
}

}  // namespace

void RegisterLauncherWorker() {
  BackgroundWorker w;
  memset(&w, 0, sizeof(w));
  w.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
  w.bgw_start_time = BgWorkerStart_RecoveryFinished;
  w.bgw_restart_time = 1;
  snprintf(w.bgw_library_name, BGW_MAXLEN, "pg_streams");
  snprintf(w.bgw_function_name, BGW_MAXLEN, "pgs_launcher_main");
  snprintf(w.bgw_name, BGW_MAXLEN, "pg_streams launcher");
  snprintf(w.bgw_type, BGW_MAXLEN, "pg_streams launcher");
  RegisterBackgroundWorker(&w);
}

}  // namespace pgs::worker

void pgs_launcher_main(Datum) {
  using namespace pgs::worker;
  pqsignal(SIGTERM, die);
  pqsignal(SIGHUP, SignalHandlerForConfigReload);
  BackgroundWorkerUnblockSignals();
  BackgroundWorkerInitializeConnection(nullptr, nullptr, 0);
  RegisterLauncher();

  Oid dbs[1024];
  int n = ConnectableDatabases(dbs, 1024, InvalidOid);
  for (int i = 0; i < n; ++i) StartIfNeeded(dbs[i]);

  for (;;) {
    (void)WaitLatch(MyLatch, WL_LATCH_SET | WL_EXIT_ON_PM_DEATH, -1, PG_WAIT_EXTENSION);
    ResetLatch(MyLatch);
    CHECK_FOR_INTERRUPTS();
    if (ConfigReloadPending) {
      ConfigReloadPending = false;
      ProcessConfigFile(PGC_SIGHUP);
    }
    Oid requested[kMaxBatch];
    int count;
    while ((count = TakeStartRequests(requested, kMaxBatch)) > 0)
      for (int i = 0; i < count; ++i) StartIfNeeded(requested[i]);
  }
}
