// pg_streams: module initialisation and settings.
#include "mapping/ids.hpp"  // first: it must not see PostgreSQL headers
#include "boundary/guard.hpp"
#include "dispatch/dispatcher.hpp"
#include "worker/hooks.hpp"
#include "worker/launcher.hpp"
#include "worker/pipeline.hpp"
#include "worker/reconcile.hpp"
#include "worker/shmem.hpp"

extern "C" {
#include "replication/slot.h"
#include "storage/latch.h"
#include "utils/guc.h"
#include "utils/inval.h"
#include "utils/wait_event.h"
#include "access/xlog.h"

PG_MODULE_MAGIC;
PGDLLEXPORT void _PG_init(void);
}

namespace {

char* aws_region = nullptr;
char* aws_account_id = nullptr;
char* http_allowed_hosts = nullptr;
char* kafka_allowed_brokers = nullptr;
int slot_wait_seconds = 30;
int max_mappings_per_role = 20;
bool preloaded = false;

bool CheckAccountId(char** newval, void**, GucSource) {
  if (*newval == nullptr || strlen(*newval) != 12 || strspn(*newval, "0123456789") != 12) {
    GUC_check_errdetail("pg_streams.aws_account_id must be 12 digits.");
    return false;
  }
  return true;
}

bool CheckRegion(char** newval, void**, GucSource) {
  if (*newval == nullptr || **newval == '\0' || strspn(*newval, "abcdefghijklmnopqrstuvwxyz0123456789-") != strlen(*newval)) {
    GUC_check_errdetail("pg_streams.aws_region must be lowercase letters, digits and hyphens, like us-east-1.");
    return false;
  }
  return true;
}

}  // namespace

void _PG_init(void) {
  DefineCustomStringVariable("pg_streams.aws_region", "Region shown in stream records and ARNs (awsRegion).", nullptr,
                             &aws_region, "us-east-1", PGC_SUSET, 0, CheckRegion, nullptr, nullptr);
  DefineCustomStringVariable("pg_streams.aws_account_id", "Account id (12 digits) shown in ARNs.", nullptr,
                             &aws_account_id, "000000000000", PGC_SUSET, 0, CheckAccountId, nullptr, nullptr);
  DefineCustomIntVariable("pg_streams.slot_wait_timeout",
                          "Seconds enable_stream waits for the capture worker to create its slot.", nullptr,
                          &slot_wait_seconds, 30, 0, 3600, PGC_USERSET, GUC_UNIT_S, nullptr, nullptr, nullptr);
  DefineCustomIntVariable("pg_streams.append_delay",
                          "Milliseconds the capture worker lets commits gather, once woken, before decoding "
                          "and appending them: fewer, bigger appends; at most this much more latency.",
                          nullptr, &pgs::worker::append_delay_ms, 20, 0, 1000, PGC_SIGHUP, GUC_UNIT_MS, nullptr,
                          nullptr, nullptr);
  DefineCustomStringVariable("pg_streams.http_allowed_hosts",
                             "Comma-separated host names HTTP targets may use; empty allows any host.", nullptr,
                             &http_allowed_hosts, "", PGC_SIGHUP, 0, nullptr, nullptr, nullptr);
  DefineCustomStringVariable("pg_streams.kafka_allowed_brokers",
                             "Comma-separated brokers (host, or host:port) Kafka targets may use as bootstrap "
                             "servers; empty allows any.",
                             nullptr, &kafka_allowed_brokers, "", PGC_SIGHUP, 0, nullptr, nullptr, nullptr);
  DefineCustomIntVariable("pg_streams.max_mappings_per_role",
                          "Enabled event source mappings a role may own in a database (they share the database's "
                          "dispatcher workers); -1: no limit. Superusers are exempt.",
                          nullptr, &max_mappings_per_role, 20, -1, 100000, PGC_SIGHUP, 0, nullptr, nullptr, nullptr);
  DefineCustomIntVariable("pg_streams.dispatch_workers",
                          "Dispatcher background workers per database; together they serve every enabled event "
                          "source mapping of the database.",
                          nullptr, &pgs::worker::dispatch_workers, 2, 1, pgs::worker::kMaxDispatchWorkers, PGC_SIGHUP,
                          0, nullptr, nullptr, nullptr);
  DefineCustomIntVariable("pg_streams.max_requests_per_worker",
                          "HTTP requests a dispatcher worker has in flight at once, over all the mappings it serves.",
                          nullptr, &pgs::dispatch::max_requests_per_worker, 64, 1, 10000, PGC_SIGHUP, 0, nullptr,
                          nullptr, nullptr);
  DefineCustomIntVariable("pg_streams.blocked_shard_warning",
                          "Seconds a shard of an event source mapping may retry one failing batch before a WARNING "
                          "says so (once per batch); 0: never.",
                          nullptr, &pgs::dispatch::blocked_shard_warning_s, 300, 0, 7 * 24 * 3600, PGC_SIGHUP,
                          GUC_UNIT_S, nullptr, nullptr, nullptr);
  MarkGUCPrefixReserved("pg_streams");
  if (!process_shared_preload_libraries_in_progress) return;
  preloaded = true;
  pgs::worker::InstallShmemHooks();
  // pg_upgrade starts both clusters in binary upgrade mode: capture nothing
  // there (no slot in the cluster being built, no worker on the old one).
  if (!IsBinaryUpgrade) pgs::worker::RegisterLauncherWorker();
  pgs::worker::InstallBackendHooks();
}

PGS_FUNCTION(pgs_caller) { PG_RETURN_OID(GetOuterUserId()); }

// A stored record with its eventID and SequenceNumber (see mapping::SpliceRecord).
PGS_FUNCTION(pgs_full_record) {
  return pgs::PgCall([&] {
    text* stored = PG_GETARG_TEXT_PP(0);
    int64 lsn = PG_GETARG_INT64(1);
    int32 idx = PG_GETARG_INT32(2);
    int len = static_cast<int>(VARSIZE_ANY_EXHDR(stored));
    auto* out = static_cast<text*>(palloc(VARHDRSZ + len + pgs::mapping::kSpliceExtra));
    int n = pgs::mapping::SpliceRecord(VARDATA_ANY(stored), len, GetSystemIdentifier(), static_cast<uint64>(lsn),
                                       static_cast<uint32>(idx), VARDATA(out));
    SET_VARSIZE(out, VARHDRSZ + n);
    return PointerGetDatum(out);
  });
}

PGS_FUNCTION(pgs_invalidate) {
  pgs::PgCall([] { CacheInvalidateRelcacheAll(); });
  PG_RETURN_VOID();
}

// Waits until the capture slot of this database exists, so that a stream
// enabled now misses no change committed after it.
PGS_FUNCTION(pgs_capture_ready) {
  pgs::PgCall([] {
    if (!preloaded || !pgs::worker::ShmemReady())
      ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                      errmsg("pg_streams is not loaded through shared_preload_libraries"),
                      errhint("Add pg_streams to shared_preload_libraries and to output_plugin_libraries, "
                              "set wal_level = logical, and restart the server.")));
    if (wal_level < WAL_LEVEL_LOGICAL)
      ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                      errmsg("pg_streams needs wal_level = logical")));
    char name[NAMEDATALEN];
    snprintf(name, sizeof(name), "pg_streams_%u", MyDatabaseId);
    for (int waited_ms = 0;; waited_ms += 100) {
      LWLockAcquire(ReplicationSlotControlLock, LW_SHARED);
      ReplicationSlot* slot = SearchNamedReplicationSlot(name, false);
      bool ready = slot != nullptr && slot->data.persistency == RS_PERSISTENT;
      LWLockRelease(ReplicationSlotControlLock);
      if (ready) return;
      if (TransactionIdIsValid(GetTopTransactionIdIfAny()))
        ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                        errmsg("the capture slot \"%s\" of this database does not exist yet", name),
                        errdetail("The capture worker creates it once CREATE EXTENSION pg_streams has committed, "
                                  "and it cannot be waited for in a transaction that has already written."),
                        errhint("Call streams.enable_stream in a transaction of its own.")));
      if (waited_ms >= slot_wait_seconds * 1000)
        ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                        errmsg("the capture worker did not create slot \"%s\" within %d s", name, slot_wait_seconds),
                        errhint("Check the server log; max_replication_slots and max_worker_processes may be too low.")));
      pgs::worker::RequestStart(MyDatabaseId);
      (void)WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, 100, PG_WAIT_EXTENSION);
      ResetLatch(MyLatch);
      CHECK_FOR_INTERRUPTS();
    }
  });
  PG_RETURN_VOID();
}

// Mappings or targets changed: at commit the capture worker starts/stops
// dispatchers and running dispatchers reload their configuration.
PGS_FUNCTION(pgs_mappings_changed) {
  pgs::worker::NoteMappingsChanged();
  PG_RETURN_VOID();
}
