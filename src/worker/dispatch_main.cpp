// A dispatcher worker: one of the fixed pool of a database (started by its
// capture worker, reconcile.cpp). It runs a Dispatcher for every mapping
// assigned to it (pool_shmem.hpp), one step at a time, and sleeps on its
// latch until an append to one of their streams, a change of mappings, or
// the next retry or batching window is due. HTTP requests of all its
// mappings' shards are in flight at once (one libcurl multi handle): while
// any is, the worker waits on their sockets in slices of kHttpSliceMs instead
// of on its latch, and checks the same counters after each slice.
#include <malloc.h>

#include <algorithm>
#include <exception>
#include <memory>
#include <vector>

#include "boundary/guard.hpp"
#include "dispatch/dispatcher.hpp"
#include "targets/http_client.hpp"
#include "targets/run_as.hpp"
#include "worker/hooks.hpp"
#include "worker/reconcile.hpp"
#include "worker/shmem.hpp"

extern "C" {
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/pmsignal.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/wait_event.h"
}

namespace pgs::worker {
namespace {

constexpr int64 kMaxSleepMs = 5000;
constexpr long kClaimRetryMs = 100;  // a mapping its previous worker still holds
constexpr long kHttpSliceMs = 10;   // latency of appends while requests are in flight
constexpr int kMaxAssigned = 16384;
Oid my_dbid = InvalidOid;
int my_index = 0;

void OnExit(int, Datum) {
  ReleaseAllHttpSlots();
  ReleasePoolWorker();
}

struct Served {
  int32 mapping_id;
  int slot;
  uint32 appends_seen;
  std::unique_ptr<dispatch::Dispatcher> dispatcher;
};

// Takes up the mappings assigned to this worker and lets go of the others;
// reloads every mapping when mappings changed. Returns whether a mapping
// could not be taken yet (its previous worker still has it).
bool Sync(std::vector<Served>& served, bool reload_all) {
  std::vector<int32> assigned(kMaxAssigned);
  assigned.resize(static_cast<size_t>(AssignedMappings(assigned.data(), kMaxAssigned)));
  std::sort(assigned.begin(), assigned.end());
  std::vector<Served> kept;
  for (auto& s : served) {
    if (std::binary_search(assigned.begin(), assigned.end(), s.mapping_id))
      kept.push_back(std::move(s));
    else
      ReleaseMapping(s.slot, false);  // moved to another worker
  }
  served = std::move(kept);
  size_t old_count = served.size();
  bool pending = false;
  for (int32 id : assigned) {
    bool have = false;
    for (size_t i = 0; i < old_count && !have; ++i) have = served[i].mapping_id == id;
    if (have) continue;
    int slot = ClaimMapping(id);
    if (slot < 0) {
      pending = true;
      continue;
    }
    served.push_back(Served{id, slot, MappingAppends(slot), std::make_unique<dispatch::Dispatcher>(id)});
  }
  std::vector<Served> live;
  for (size_t i = 0; i < served.size(); ++i) {
    Served& s = served[i];
    if (reload_all || i >= old_count) {
      SetCurrentMapping(s.slot);
      bool ok = s.dispatcher->Reload();
      SetCurrentMapping(-1);
      if (!ok) {
        ReleaseMapping(s.slot, true);  // disabled or deleted
        continue;
      }
    }
    live.push_back(std::move(s));
  }
  served = std::move(live);
  return pending;
}

// The loop; C++ frames only. Returns when the worker should exit.
void Run() {
  std::vector<Served> served;
  uint64 mappings_generation = 0;
  uint64 assignment_generation = 0;
  bool pending = false;
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
    if (ExitRequested(my_dbid) || my_index >= dispatch_workers) return;
    int64 began = dispatch::NowUs();
    if (targets::HttpInFlight() > 0) {
      // Answers that came in during the last slice (or the last pass).
      for (auto& [tag, response] : targets::HttpWait(0)) (void)dispatch::Dispatcher::Deliver(tag, response);
    }
    uint64 now_mappings = MappingsGeneration();
    uint64 now_assignment = AssignmentGeneration();
    if (now_mappings != mappings_generation || now_assignment != assignment_generation || pending || reloaded) {
      bool reload_all = now_mappings != mappings_generation || reloaded;
      mappings_generation = now_mappings;
      assignment_generation = now_assignment;
      pending = Sync(served, reload_all);
      if (served.empty() && !pending && !DatabaseHasMappings(my_dbid)) return;  // nothing left to serve
    }
    int64 wait_us = kMaxSleepMs * 1000;
    for (auto& s : served) {
      uint32 appends = MappingAppends(s.slot);
      if (appends != s.appends_seen) {
        s.appends_seen = appends;
        s.dispatcher->Woken();
      }
      SetCurrentMapping(s.slot);
      wait_us = std::min(wait_us, s.dispatcher->RunDue());
      SetCurrentMapping(-1);
    }
    AddBusyTime(dispatch::NowUs() - began);
    NoteInFlight(static_cast<int32>(targets::HttpInFlight()));
    long wait_ms = static_cast<long>((wait_us + 999) / 1000);
    if (pending) wait_ms = std::min(wait_ms, kClaimRetryMs);
    if (targets::HttpInFlight() > 0) {
      // Appends and changes are seen through counters, checked every pass:
      // the latch is only reset here, not waited on.
      ResetLatch(MyLatch);
      if (!PostmasterIsAlive()) return;
      for (auto& [tag, response] : targets::HttpWait(static_cast<int>(std::min(wait_ms, kHttpSliceMs))))
        (void)dispatch::Dispatcher::Deliver(tag, response);
    } else if (wait_ms > 0) {
      (void)WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, wait_ms, PG_WAIT_EXTENSION);
      ResetLatch(MyLatch);
    }
  }
}

}  // namespace
}  // namespace pgs::worker

void pgs_dispatch_main(Datum arg) {
  using namespace pgs::worker;
  my_index = DatumGetInt32(arg);
  memcpy(&my_dbid, MyBgworkerEntry->bgw_extra, sizeof(Oid));
  pqsignal(SIGTERM, die);
  pqsignal(SIGHUP, SignalHandlerForConfigReload);
  BackgroundWorkerUnblockSignals();
  if (!ClaimPoolWorker(my_dbid, my_index)) proc_exit(0);  // already running
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
    Run();
  } catch (const pgs::PgError& e) {
    // A copy that outlives the exception (~Session has freed SPI's memory
    // while it unwound; the PgError's own copy goes with the exception).
    error = e.ForRethrow();
    if (error == nullptr) strlcpy(message, "out of memory", sizeof(message));
  } catch (const std::exception& e) {
    strlcpy(message, e.what(), sizeof(message));
  }
  if (error != nullptr) ReThrowError(error);
  if (message[0] != '\0') elog(ERROR, "pg_streams: dispatcher worker %d: %s", my_index, message);
  proc_exit(0);
}
