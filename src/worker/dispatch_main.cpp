// The dispatcher of one event source mapping: a background worker started
// by the capture worker of its database (reconcile.cpp), woken by appends
// and by changes to mappings; it exits when its mapping is disabled or gone.
#include <malloc.h>

#include <algorithm>
#include <exception>

#include "boundary/guard.hpp"
#include "dispatch/dispatcher.hpp"
#include "targets/run_as.hpp"
#include "worker/hooks.hpp"
#include "worker/reconcile.hpp"
#include "worker/shmem.hpp"

extern "C" {
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/wait_event.h"
}

namespace pgs::worker {
namespace {

constexpr int64 kMaxSleepMs = 5000;
Oid my_dbid = InvalidOid;

void OnExit(int, Datum) { ReleaseDispatchSlot(); }

// The loop; C++ frames only. Returns when the worker should exit.
void Run(int32 mapping_id) {
  dispatch::Dispatcher dispatcher(mapping_id);
  uint64 generation = 0;
  for (;;) {
    // A reloaded configuration (pg_streams.http_allowed_hosts,
    // kafka_allowed_brokers) applies to the mapping's targets at once.
    bool reloaded = PgCall([] {
      CHECK_FOR_INTERRUPTS();
      if (!ConfigReloadPending) return false;
      ConfigReloadPending = false;
      ProcessConfigFile(PGC_SIGHUP);
      return true;
    });
    if (ExitRequested(my_dbid)) return;
    uint64 now_generation = MappingsGeneration();
    if (now_generation != generation || reloaded) {
      generation = now_generation;
      if (!dispatcher.Reload()) return;
    }
    int64 wait_us = dispatcher.RunDue();
    long wait_ms = static_cast<long>(std::min<int64>(kMaxSleepMs, (wait_us + 999) / 1000));
    if (wait_ms > 0) {
      int rc = WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, wait_ms, PG_WAIT_EXTENSION);
      ResetLatch(MyLatch);
      if (rc & WL_LATCH_SET) dispatcher.Woken();
    }
  }
}

}  // namespace
}  // namespace pgs::worker

void pgs_dispatch_main(Datum arg) {
  using namespace pgs::worker;
  int32 mapping_id = DatumGetInt32(arg);
  memcpy(&my_dbid, MyBgworkerEntry->bgw_extra, sizeof(Oid));
  pqsignal(SIGTERM, die);
  pqsignal(SIGHUP, SignalHandlerForConfigReload);
  BackgroundWorkerUnblockSignals();
  if (!ClaimDispatchSlot(my_dbid, mapping_id)) proc_exit(0);  // already running
  before_shmem_exit(OnExit, 0);
  BackgroundWorkerInitializeConnectionByOid(my_dbid, InvalidOid, 0);
  pgstat_report_appname("pg_streams dispatch");
  wake_only_for_user_work = true;
  // A handler's effects and its checkpoint commit together, so losing the
  // last commits in a crash only means delivering those batches again,
  // still exactly once: no WAL flush wait per batch.
  SetConfigOption("synchronous_commit", "off", PGC_SUSET, PGC_S_OVERRIDE);
  // The dispatcher's own SQL resolves no name through a schema a user can
  // create objects in; handlers get the database's search_path back.
  const char* db_search_path = GetConfigOption("search_path", false, false);
  pgs::targets::UseSearchPathForUserCode(db_search_path != nullptr ? db_search_path : "\"$user\", public");
  SetConfigOption("search_path", "pg_catalog, pg_temp", PGC_SUSET, PGC_S_OVERRIDE);
  // Batches are allocated and freed again and again (events of up to 6 MB):
  // keep that memory in the process instead of mapping it anew each time.
  mallopt(M_MMAP_THRESHOLD, 64 * 1024 * 1024);
  mallopt(M_TRIM_THRESHOLD, 256 * 1024 * 1024);

  ErrorData* error = nullptr;
  static char message[256];
  message[0] = '\0';
  try {
    Run(mapping_id);
  } catch (const pgs::PgError& e) {
    // A copy that outlives the exception (~Session has freed SPI's memory
    // while it unwound; the PgError's own copy goes with the exception).
    error = e.ForRethrow();
    if (error == nullptr) strlcpy(message, "out of memory", sizeof(message));
  } catch (const std::exception& e) {
    strlcpy(message, e.what(), sizeof(message));
  }
  if (error != nullptr) ReThrowError(error);
  if (message[0] != '\0') elog(ERROR, "pg_streams: dispatcher of mapping %d: %s", mapping_id, message);
  proc_exit(0);
}
