// The capture worker of one database: decodes WAL through the pg_streams
// output plugin (in-process, like a walsender) and appends the records of
// whole transactions to the stream tables.
//
// Exactly once: each append transaction commits with the replication origin
// "pg_streams_<dboid>" advanced to the end LSN of its last decoded
// transaction; decoding restarts from that LSN, so a crash before the commit
// re-decodes the transactions and a crash after it skips them. The worker's
// own transactions carry that origin and are filtered out of decoding.
#include <initializer_list>

#include "decoder/plugin.hpp"
#include "worker/launcher.hpp"
#include "worker/shmem.hpp"

extern "C" {
#include "access/xlog.h"
#include "access/xlogreader.h"
#include "access/xlogrecovery.h"
#include "access/xlogutils.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "nodes/makefuncs.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "replication/decode.h"
#include "replication/logical.h"
#include "replication/origin.h"
#include "replication/slot.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/array.h"
#include "utils/inval.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"
}

namespace pgs::worker {
namespace {

constexpr int kMaxBatchRecords = 10000;
constexpr Size kMaxBatchBytes = 16 * 1024 * 1024;
constexpr long kMaxSleepMs = 1000;      // commits without synchronous_commit wake nobody
constexpr long kMaxTrimIntervalMs = 10000;

// Records of whole decoded transactions, not yet appended.
struct Batch {
  MemoryContext cxt;
  int count;
  int capacity;
  Datum* stream_ids;
  Datum* shards;
  Datum* lsns;
  Datum* idxs;
  Datum* arrivals;
  Datum* records;
  Size bytes;
  // Per stream in the batch: the commit time range, for storage segments.
  int nstreams;
  int stream_capacity;
  struct Range {
    int32 stream_id;
    TimestampTz lo, hi;
  }* ranges;
  int open_records;          // records of the transaction being decoded
  XLogRecPtr last_end_lsn;   // end of the last decoded transaction
  TimestampTz last_commit_time;
  bool catalog_changes;
};

Batch batch;
Oid my_dbid = InvalidOid;
char slot_name[NAMEDATALEN];
SPIPlanPtr insert_plan = nullptr;
SPIPlanPtr insert_filtered_plan = nullptr;
SPIPlanPtr segments_plan = nullptr;

void NoteRange(int32 stream_id, TimestampTz t) {
  for (int i = 0; i < batch.nstreams; ++i) {
    auto& r = batch.ranges[i];
    if (r.stream_id == stream_id) {
      r.lo = Min(r.lo, t);
      r.hi = Max(r.hi, t);
      return;
    }
  }
  if (batch.nstreams == batch.stream_capacity) {
    batch.stream_capacity *= 2;
    batch.ranges = static_cast<Batch::Range*>(repalloc(batch.ranges, sizeof(Batch::Range) * batch.stream_capacity));
  }
  batch.ranges[batch.nstreams++] = Batch::Range{stream_id, t, t};
}

SPIPlanPtr KeepPlan(const char* sql, int nargs, Oid* types) {
  SPIPlanPtr plan = SPI_prepare(sql, nargs, types);
  if (plan == nullptr) elog(ERROR, "pg_streams: could not prepare \"%s\": %s", sql, SPI_result_code_string(SPI_result));
  SPI_keepplan(plan);
  return plan;
}

void SinkAppend(void*, int32 stream_id, int32 shard, XLogRecPtr commit_lsn, uint32 change_index,
                TimestampTz commit_time, const char* data, int len) {
  MemoryContext old = MemoryContextSwitchTo(batch.cxt);
  if (batch.count == batch.capacity) {
    int cap = batch.capacity * 2;
    for (Datum** a : {&batch.stream_ids, &batch.shards, &batch.lsns, &batch.idxs, &batch.arrivals, &batch.records})
      *a = static_cast<Datum*>(repalloc(*a, sizeof(Datum) * cap));
    batch.capacity = cap;
  }
  int i = batch.count++;
  batch.stream_ids[i] = Int32GetDatum(stream_id);
  batch.shards[i] = Int32GetDatum(shard);
  batch.lsns[i] = Int64GetDatum(static_cast<int64>(commit_lsn));
  batch.idxs[i] = Int32GetDatum(static_cast<int32>(change_index));
  batch.arrivals[i] = TimestampTzGetDatum(commit_time);
  batch.records[i] = PointerGetDatum(cstring_to_text_with_len(data, len));
  batch.bytes += len;
  batch.open_records++;
  NoteRange(stream_id, commit_time);
  MemoryContextSwitchTo(old);
}

void SinkCommit(void*, XLogRecPtr end_lsn, TimestampTz commit_time, bool catalog_changes) {
  batch.last_end_lsn = end_lsn;
  batch.last_commit_time = commit_time;
  batch.catalog_changes |= catalog_changes;
  batch.open_records = 0;
}

decoder::CaptureSink sink{SinkAppend, SinkCommit, nullptr, InvalidRepOriginId};

void ResetBatch() {
  MemoryContextReset(batch.cxt);
  MemoryContext old = MemoryContextSwitchTo(batch.cxt);
  batch.capacity = 1024;
  for (Datum** a : {&batch.stream_ids, &batch.shards, &batch.lsns, &batch.idxs, &batch.arrivals, &batch.records})
    *a = static_cast<Datum*>(palloc(sizeof(Datum) * batch.capacity));
  batch.stream_capacity = 8;
  batch.ranges = static_cast<Batch::Range*>(palloc(sizeof(Batch::Range) * batch.stream_capacity));
  MemoryContextSwitchTo(old);
  batch.nstreams = 0;
  batch.count = 0;
  batch.bytes = 0;
  batch.catalog_changes = false;
}

// Reads WAL up to the flush pointer; waits (on the latch) only when a record
// is not completely flushed yet.
int PageRead(XLogReaderState* state, XLogRecPtr target_page, int req_len, XLogRecPtr, char* cur_page) {
  XLogRecPtr loc = target_page + req_len;
  XLogRecPtr read_upto;
  TimeLineID tli;
  for (;;) {
    read_upto = GetFlushRecPtr(&tli);
    XLogReadDetermineTimeline(state, target_page, req_len, tli);
    if (loc <= read_upto) break;
    (void)WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, 10, PG_WAIT_EXTENSION);
    ResetLatch(MyLatch);
    CHECK_FOR_INTERRUPTS();
  }
  int count = target_page + XLOG_BLCKSZ <= read_upto ? XLOG_BLCKSZ : static_cast<int>(read_upto - target_page);
  WALReadError errinfo;
  if (!WALRead(state, cur_page, target_page, XLOG_BLCKSZ, tli, &errinfo)) WALReadRaiseError(&errinfo);
  return count;
}

void NoWrite(LogicalDecodingContext*, XLogRecPtr, TransactionId, bool) {}

void BeginWork() {
  SetCurrentStatementStartTimestamp();
  StartTransactionCommand();
  PushActiveSnapshot(GetTransactionSnapshot());
}

void EndWork() {
  PopActiveSnapshot();
  CommitTransactionCommand();
  pgstat_report_stat(false);
}

bool ExtensionInstalled() { return OidIsValid(get_extension_oid("pg_streams", true)); }

// The extension is gone from this database: drop the slot and the origin.
[[noreturn]] void CleanUpAndExit() {
  if (MyReplicationSlot != nullptr) ReplicationSlotRelease();
  if (SearchNamedReplicationSlot(slot_name, true) != nullptr) ReplicationSlotDrop(slot_name, true);
  if (replorigin_session_origin != InvalidRepOriginId) {
    replorigin_session_reset();
    replorigin_session_origin = InvalidRepOriginId;
  }
  BeginWork();
  replorigin_drop_by_name(slot_name, true, false);
  EndWork();
  ereport(LOG, (errmsg("pg_streams: extension not installed in this database; capture worker stops")));
  proc_exit(0);
}

void AppendBatch() {
  BeginWork();
  // Decoding filled the caches under historic snapshots. Appending only uses
  // the extension's own tables, whose definitions decoding never sees change;
  // still, after decoding catalog changes, start from clean caches.
  if (batch.catalog_changes) InvalidateSystemCaches();
  if (!ExtensionInstalled()) {
    AbortCurrentTransaction();
    CleanUpAndExit();
  }
  if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "pg_streams: SPI_connect failed");
  if (insert_plan == nullptr) {
    Oid types[7] = {INT4ARRAYOID, INT4ARRAYOID, INT8ARRAYOID, INT4ARRAYOID, TIMESTAMPTZARRAYOID, TEXTARRAYOID,
                    INT4ARRAYOID};
    const char* insert =
        "INSERT INTO streams.record (stream_id, shard, lsn, idx, arrival, record) "
        "SELECT * FROM unnest($1, $2, $3, $4, $5, $6)";
    insert_plan = KeepPlan(insert, 6, types);
    insert_filtered_plan = KeepPlan(psprintf("%s AS u(s) WHERE u.s <> ALL ($7)", insert), 7, types);
    Oid seg_types[3] = {INT4OID, TIMESTAMPTZOID, TIMESTAMPTZOID};
    segments_plan = KeepPlan("SELECT streams._ensure_segments($1, $2, $3)", 3, seg_types);
  }
  // Storage segments for the batch's time range; streams that are gone
  // (trimmed while capture lagged behind) have nowhere to go.
  Datum* gone = static_cast<Datum*>(palloc(sizeof(Datum) * (batch.nstreams + 1)));
  int ngone = 0;
  for (int i = 0; i < batch.nstreams; ++i) {
    Datum seg_args[3] = {Int32GetDatum(batch.ranges[i].stream_id), TimestampTzGetDatum(batch.ranges[i].lo),
                         TimestampTzGetDatum(batch.ranges[i].hi)};
    int rc = SPI_execute_plan(segments_plan, seg_args, nullptr, false, 1);
    bool isnull;
    if (rc != SPI_OK_SELECT || SPI_processed != 1) elog(ERROR, "pg_streams: could not prepare storage segments");
    if (!DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull)))
      gone[ngone++] = Int32GetDatum(batch.ranges[i].stream_id);
  }
  Datum args[7] = {
      PointerGetDatum(construct_array(batch.stream_ids, batch.count, INT4OID, 4, true, TYPALIGN_INT)),
      PointerGetDatum(construct_array(batch.shards, batch.count, INT4OID, 4, true, TYPALIGN_INT)),
      PointerGetDatum(construct_array(batch.lsns, batch.count, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE)),
      PointerGetDatum(construct_array(batch.idxs, batch.count, INT4OID, 4, true, TYPALIGN_INT)),
      PointerGetDatum(construct_array(batch.arrivals, batch.count, TIMESTAMPTZOID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE)),
      PointerGetDatum(construct_array(batch.records, batch.count, TEXTOID, -1, false, TYPALIGN_INT)),
      PointerGetDatum(construct_array(gone, ngone, INT4OID, 4, true, TYPALIGN_INT)),
  };
  int rc = SPI_execute_plan(ngone == 0 ? insert_plan : insert_filtered_plan, args, nullptr, false, 0);
  if (rc != SPI_OK_INSERT) elog(ERROR, "pg_streams: append failed: %s", SPI_result_code_string(rc));
  SPI_finish();
  // Progress commits atomically with the records.
  replorigin_session_origin_lsn = batch.last_end_lsn;
  replorigin_session_origin_timestamp = batch.last_commit_time;
  EndWork();
  LogicalConfirmReceivedLocation(batch.last_end_lsn);
  ResetBatch();
}

// Drops expired segments; returns milliseconds until the next trim is due.
long Trim() {
  BeginWork();
  if (!ExtensionInstalled()) {
    AbortCurrentTransaction();
    CleanUpAndExit();
  }
  if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "pg_streams: SPI_connect failed");
  int rc = SPI_execute("SELECT streams._trim()", false, 1);
  if (rc != SPI_OK_SELECT) elog(ERROR, "pg_streams: trim failed: %s", SPI_result_code_string(rc));
  bool isnull;
  Datum d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
  double seconds = isnull ? kMaxTrimIntervalMs / 1000.0 : DatumGetFloat8(d);
  SPI_finish();
  EndWork();
  long ms = static_cast<long>(seconds * 1000.0) + 1;
  return ms < 1 ? 1 : (ms > kMaxTrimIntervalMs ? kMaxTrimIntervalMs : ms);
}

// Creates the slot (and the origin) on first start. The slot must be created
// in a transaction that has not written anything.
RepOriginId Prepare() {
  BeginWork();
  if (!ExtensionInstalled()) {
    AbortCurrentTransaction();
    CleanUpAndExit();
  }
  RepOriginId origin = replorigin_by_name(slot_name, true);
  EndWork();
  if (SearchNamedReplicationSlot(slot_name, true) == nullptr) {
    BeginWork();
    if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "pg_streams: SPI_connect failed");
    Oid types[1] = {NAMEOID};
    Datum args[1] = {DirectFunctionCall1(namein, CStringGetDatum(slot_name))};
    int rc = SPI_execute_with_args("SELECT pg_create_logical_replication_slot($1, 'pg_streams')", 1, types, args,
                                   nullptr, false, 1);
    if (rc != SPI_OK_SELECT) elog(ERROR, "pg_streams: could not create slot %s", slot_name);
    SPI_finish();
    EndWork();
    ereport(LOG, (errmsg("pg_streams: created logical replication slot \"%s\"", slot_name)));
  }
  if (origin == InvalidRepOriginId) {
    BeginWork();
    origin = replorigin_create(slot_name);
    EndWork();
  }
  return origin;
}

void OnExit(int, Datum) { ReleaseDatabase(my_dbid); }

}  // namespace
}  // namespace pgs::worker

void pgs_capture_main(Datum arg) {
  using namespace pgs::worker;
  my_dbid = DatumGetObjectId(arg);
  pqsignal(SIGTERM, die);
  pqsignal(SIGHUP, SignalHandlerForConfigReload);
  BackgroundWorkerUnblockSignals();
  if (!ClaimDatabase(my_dbid)) proc_exit(0);  // another worker has this database
  before_shmem_exit(OnExit, 0);
  BackgroundWorkerInitializeConnectionByOid(my_dbid, InvalidOid, 0);
  pgstat_report_appname("pg_streams capture");
  snprintf(slot_name, sizeof(slot_name), "pg_streams_%u", my_dbid);

  batch.cxt = AllocSetContextCreate(TopMemoryContext, "pg_streams capture batch", ALLOCSET_DEFAULT_SIZES);
  ResetBatch();
  RepOriginId origin = Prepare();
  replorigin_session_setup(origin);
  replorigin_session_origin = origin;
  sink.own_origin = origin;
  XLogRecPtr progress = replorigin_session_get_progress(false);

  ReplicationSlotAcquire(slot_name, true);
  pgs::decoder::capture_sink = &sink;
  MemoryContext decoding_cxt = AllocSetContextCreate(TopMemoryContext, "pg_streams decoding", ALLOCSET_DEFAULT_SIZES);
  MemoryContext old = MemoryContextSwitchTo(decoding_cxt);
  static XLogReaderRoutine routine;
  routine.page_read = PageRead;
  routine.segment_open = wal_segment_open;
  routine.segment_close = wal_segment_close;
  LogicalDecodingContext* ctx = CreateDecodingContext(
      progress, list_make1(makeDefElem(pstrdup("capture"), nullptr, -1)), false, &routine, NoWrite, NoWrite, nullptr);
  MemoryContextSwitchTo(old);
  XLogBeginRead(ctx->reader, MyReplicationSlot->data.restart_lsn);
  batch.last_end_lsn = MyReplicationSlot->data.confirmed_flush;
  ereport(LOG, (errmsg("pg_streams: capture started from %X/%X", static_cast<uint32>(progress >> 32),
                       static_cast<uint32>(progress))));

  TimestampTz next_trim = 0;
  for (;;) {
    CHECK_FOR_INTERRUPTS();
    if (ConfigReloadPending) {
      ConfigReloadPending = false;
      ProcessConfigFile(PGC_SIGHUP);
    }
    if (ExitRequested(my_dbid)) proc_exit(0);
    if (TakeRecheck(my_dbid)) {
      BeginWork();
      bool installed = ExtensionInstalled();
      EndWork();
      if (!installed) CleanUpAndExit();
    }

    XLogRecPtr flush = GetFlushRecPtr(nullptr);
    while (ctx->reader->EndRecPtr < flush && batch.count < kMaxBatchRecords && batch.bytes < kMaxBatchBytes) {
      char* errm = nullptr;
      XLogRecord* record = XLogReadRecord(ctx->reader, &errm);
      if (errm != nullptr) elog(ERROR, "pg_streams: could not read WAL for decoding: %s", errm);
      if (record != nullptr) LogicalDecodingProcessRecord(ctx, ctx->reader);
      CHECK_FOR_INTERRUPTS();
    }

    if (batch.count > 0) {
      AppendBatch();
    } else if (batch.last_end_lsn < ctx->reader->EndRecPtr && batch.open_records == 0) {
      // Nothing to keep: let the slot release WAL and catalog rows.
      LogicalConfirmReceivedLocation(ctx->reader->EndRecPtr);
      batch.last_end_lsn = ctx->reader->EndRecPtr;
    }

    TimestampTz now = GetCurrentTimestamp();
    if (now >= next_trim) next_trim = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), Trim());

    if (ctx->reader->EndRecPtr >= GetFlushRecPtr(nullptr)) {
      long sleep_ms = Min(kMaxSleepMs, TimestampDifferenceMilliseconds(GetCurrentTimestamp(), next_trim) + 1);
      (void)WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, sleep_ms, PG_WAIT_EXTENSION);
      ResetLatch(MyLatch);
    }
  }
}
