// The capture worker of one database: decodes WAL through the pg_streams
// output plugin (in-process, like a walsender) and sends the records through
// a shared memory queue to its appender, which appends transactions to
// the stream tables (appender.cpp). Decoding and appending run side by side.
//
// Exactly once: each append transaction commits with the replication origin
// "pg_streams_<dboid>" advanced to the end LSN of its last transaction;
// decoding restarts from that LSN, so a crash before the commit re-decodes
// the transactions and a crash after it skips them. The appender's
// transactions carry that origin and are filtered out of decoding.
#include "decoder/plugin.hpp"
#include "worker/hooks.hpp"
#include "worker/launcher.hpp"
#include "worker/pipeline.hpp"
#include "worker/reconcile.hpp"
#include "worker/shmem.hpp"
#include "worker/work.hpp"

extern "C" {
#include "access/xlog.h"
#include "access/xlogreader.h"
#include "access/xlogrecovery.h"
#include "access/xlogutils.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "nodes/makefuncs.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "replication/decode.h"
#include "replication/logical.h"
#include "replication/origin.h"
#include "replication/slot.h"
#include "storage/dsm.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "storage/shm_mq.h"
#include "storage/shm_toc.h"
#include "tcop/tcopprot.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"
}

namespace pgs::worker {

int append_delay_ms = 20;

namespace {

constexpr long kMaxSleepMs = 1000;  // commits without synchronous_commit wake nobody
constexpr long kMaxTrimIntervalMs = 10000;
constexpr int kRecordsPerPass = 10000;  // decoding pass between progress checks

Oid my_dbid = InvalidOid;
char slot_name[NAMEDATALEN];
dsm_segment* pipeline_seg = nullptr;
PipelineShared* pipeline = nullptr;
shm_mq_handle* queue = nullptr;
XLogRecPtr last_sent_end = InvalidXLogRecPtr;  // end of the last transaction sent with records
int open_records = 0;                            // records sent of the transaction being decoded
int pass_records = 0;
bool unflushed = false;                          // messages sent that the appender cannot see yet
TimestampTz last_sent_commit_time = 0;           // commit time of the last transaction sent

void Send(shm_mq_iovec* iov, int n, bool flush) {
  shm_mq_result res = shm_mq_sendv(queue, iov, n, false, flush);
  if (res != SHM_MQ_SUCCESS) ereport(ERROR, (errmsg("pg_streams: the appender of this database stopped")));
}

void SinkAppend(void*, int32 stream_id, int32 shard, XLogRecPtr commit_lsn, uint32 change_index,
                TimestampTz commit_time, const char* data, int len) {
  RecordMessage m{MessageKind::kRecord, stream_id, shard, change_index, commit_lsn, commit_time};
  shm_mq_iovec iov[2] = {{reinterpret_cast<const char*>(&m), sizeof(m)}, {data, static_cast<Size>(len)}};
  Send(iov, 2, false);
  ++open_records;
  ++pass_records;
}

void SinkCommit(void*, XLogRecPtr end_lsn, TimestampTz commit_time, bool catalog_changes) {
  if (open_records == 0) return;  // nothing of this transaction to append
  CommitMessage m{MessageKind::kCommit, catalog_changes, end_lsn, commit_time};
  shm_mq_iovec iov[1] = {{reinterpret_cast<const char*>(&m), sizeof(m)}};
  Send(iov, 1, false);
  unflushed = true;
  last_sent_end = end_lsn;
  last_sent_commit_time = commit_time;
  open_records = 0;
}

decoder::CaptureSink sink{SinkAppend, SinkCommit, nullptr, InvalidRepOriginId};

// Ends a decoding pass: what was sent becomes visible to the appender.
void FlushToAppender() {
  if (!unflushed) return;
  MessageKind kind = MessageKind::kFlush;
  shm_mq_iovec iov[1] = {{reinterpret_cast<const char*>(&kind), 1}};
  Send(iov, 1, true);
  unflushed = false;
}

// Reads WAL up to the flush pointer; waits (on the latch) only when a record
// is not completely flushed yet. Decoding starts only on records that begin
// before the flush pointer, so the rest of such a record is written or being
// written: the writers' commits (or the WAL writer) flush it soon; if none
// did within append_delay, the worker flushes it itself (asynchronous commits,
// the appender's among them, would otherwise hold it up for wal_writer_delay).
int PageRead(XLogReaderState* state, XLogRecPtr target_page, int req_len, XLogRecPtr, char* cur_page) {
  XLogRecPtr loc = target_page + req_len;
  XLogRecPtr read_upto;
  TimeLineID tli;
  TimestampTz waiting_since = 0;
  for (;;) {
    read_upto = GetFlushRecPtr(&tli);
    XLogReadDetermineTimeline(state, target_page, req_len, tli);
    if (loc <= read_upto) break;
    TimestampTz now = GetCurrentTimestamp();
    if (waiting_since == 0) waiting_since = now;
    if (TimestampDifferenceExceeds(waiting_since, now, append_delay_ms)) {
      XLogRecPtr written = GetXLogInsertRecPtr();
      if (written > read_upto) XLogFlush(Min(loc, written));
    }
    (void)WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, 10, PG_WAIT_EXTENSION);
    ResetLatch(MyLatch);
    CHECK_FOR_INTERRUPTS();
  }
  int count = target_page + XLOG_BLCKSZ <= read_upto ? XLOG_BLCKSZ : static_cast<int>(read_upto - target_page);
  WALReadError errinfo;
  if (!WALRead(state, cur_page, target_page, XLOG_BLCKSZ, tli, &errinfo)) WALReadRaiseError(&errinfo);
  return count;
}

// How far the slot may move: up to the end of the last flushed append, or to
// all that was decoded if that append holds everything sent to the appender.
// An append not flushed yet is remembered and taken once it is.
XLogRecPtr DurablyAppended(XLogRecPtr decoded) {
  static XLogRecPtr durable_upto = InvalidXLogRecPtr;
  static XLogRecPtr waiting_upto = InvalidXLogRecPtr;
  static XLogRecPtr waiting_commit = InvalidXLogRecPtr;
  SpinLockAcquire(&pipeline->mutex);
  XLogRecPtr upto = pipeline->appended_upto;
  XLogRecPtr commit = pipeline->append_commit_end;
  SpinLockRelease(&pipeline->mutex);
  XLogRecPtr flushed = GetFlushRecPtr(nullptr);
  if (waiting_upto != InvalidXLogRecPtr && waiting_commit <= flushed) {
    durable_upto = Max(durable_upto, waiting_upto);
    waiting_upto = InvalidXLogRecPtr;
  }
  if (commit <= flushed) {
    durable_upto = Max(durable_upto, upto);
  } else if (upto > durable_upto) {
    waiting_upto = upto;
    waiting_commit = commit;
  }
  if (durable_upto < upto) return durable_upto;
  return durable_upto >= last_sent_end && open_records == 0 ? decoded : durable_upto;
}

// The end of the last append's commit record if it is not flushed yet.
XLogRecPtr UnflushedAppend() {
  SpinLockAcquire(&pipeline->mutex);
  XLogRecPtr commit = pipeline->append_commit_end;
  SpinLockRelease(&pipeline->mutex);
  return commit > GetFlushRecPtr(nullptr) ? commit : InvalidXLogRecPtr;
}

void NoWrite(LogicalDecodingContext*, XLogRecPtr, TransactionId, bool) {}

// The extension is gone from this database: drop the slot and the origin.
[[noreturn]] void CleanUpAndExit() {
  if (pipeline_seg != nullptr) {
    dsm_detach(pipeline_seg);  // the appender sees it and exits
    pipeline_seg = nullptr;
  }
  if (MyReplicationSlot != nullptr) ReplicationSlotRelease();
  bool had_slot = SearchNamedReplicationSlot(slot_name, true) != nullptr;
  if (had_slot) ReplicationSlotDrop(slot_name, true);
  BeginWork();
  bool had_origin = replorigin_by_name(slot_name, true) != InvalidRepOriginId;
  replorigin_drop_by_name(slot_name, true, false);  // waits for the appender to let go of it
  EndWork();
  // The launcher starts a worker in every database after a restart: in
  // those that never had pg_streams, stopping is routine, not news.
  ereport(had_slot || had_origin ? LOG : DEBUG1,
          (errmsg("pg_streams: extension not installed in this database; capture worker stops")));
  proc_exit(0);
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

// Starts the appender and connects the queue to it.
void StartAppender(RepOriginId origin, XLogRecPtr progress) {
  shm_toc_estimator e;
  shm_toc_initialize_estimator(&e);
  shm_toc_estimate_chunk(&e, sizeof(PipelineShared));
  shm_toc_estimate_chunk(&e, kQueueSize);
  shm_toc_estimate_keys(&e, 2);
  Size size = shm_toc_estimate(&e);
  pipeline_seg = dsm_create(size, 0);
  dsm_pin_mapping(pipeline_seg);
  shm_toc* toc = shm_toc_create(kPipelineMagic, dsm_segment_address(pipeline_seg), size);
  pipeline = static_cast<PipelineShared*>(shm_toc_allocate(toc, sizeof(PipelineShared)));
  pipeline->dbid = my_dbid;
  pipeline->origin = origin;
  SpinLockInit(&pipeline->mutex);
  pipeline->appended_upto = progress;
  pipeline->append_commit_end = InvalidXLogRecPtr;
  pipeline->capture_latch = MyLatch;
  shm_toc_insert(toc, kTocShared, pipeline);
  shm_mq* mq = shm_mq_create(shm_toc_allocate(toc, kQueueSize), kQueueSize);
  shm_toc_insert(toc, kTocQueue, mq);
  shm_mq_set_sender(mq, MyProc);

  BackgroundWorker w;
  memset(&w, 0, sizeof(w));
  w.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
  w.bgw_start_time = BgWorkerStart_RecoveryFinished;
  w.bgw_restart_time = BGW_NEVER_RESTART;  // the capture worker starts a new one
  snprintf(w.bgw_library_name, BGW_MAXLEN, "pg_streams");
  snprintf(w.bgw_function_name, BGW_MAXLEN, "pgs_append_main");
  snprintf(w.bgw_name, BGW_MAXLEN, "pg_streams appender for database %u", my_dbid);
  snprintf(w.bgw_type, BGW_MAXLEN, "pg_streams append");
  w.bgw_main_arg = UInt32GetDatum(dsm_segment_handle(pipeline_seg));
  w.bgw_notify_pid = MyProcPid;
  BackgroundWorkerHandle* handle;
  if (!RegisterDynamicBackgroundWorker(&w, &handle))
    ereport(ERROR, (errmsg("pg_streams: could not start the appender of database %u", my_dbid),
                    errhint("Raise max_worker_processes.")));
  queue = shm_mq_attach(mq, pipeline_seg, handle);
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
  am_capture_worker = true;
  snprintf(slot_name, sizeof(slot_name), "pg_streams_%u", my_dbid);

  RepOriginId origin = Prepare();
  sink.own_origin = origin;
  XLogRecPtr progress = replorigin_get_progress(origin, false);
  StartAppender(origin, progress);

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
  XLogRecPtr confirmed = MyReplicationSlot->data.confirmed_flush;
  ereport(LOG, (errmsg("pg_streams: capture started from %X/%X", static_cast<uint32>(progress >> 32),
                       static_cast<uint32>(progress))));

  TimestampTz next_trim = 0;
  TimestampTz next_reconcile = 0;
  // For streams.capture_lag: a pass that decoded all WAL flushed when it
  // began sets a mark; once the slot is confirmed past it, everything
  // committed before the pass began is in the streams.
  XLogRecPtr mark_lsn = InvalidXLogRecPtr;
  TimestampTz mark_time = 0;
  TimestampTz mark_commit = 0;
  for (;;) {
    CHECK_FOR_INTERRUPTS();
    if (ConfigReloadPending) {
      ConfigReloadPending = false;
      ProcessConfigFile(PGC_SIGHUP);
      next_reconcile = 0;  // pg_streams.dispatch_workers may have changed
    }
    if (ExitRequested(my_dbid)) proc_exit(0);
    if (TakeRecheck(my_dbid)) {
      BeginWork();
      bool installed = ExtensionInstalled();
      EndWork();
      if (!installed) CleanUpAndExit();
    }

    XLogRecPtr flush = GetFlushRecPtr(nullptr);
    TimestampTz pass_start = GetCurrentTimestamp();
    pass_records = 0;
    while (ctx->reader->EndRecPtr < flush && pass_records < kRecordsPerPass) {
      char* errm = nullptr;
      XLogRecord* record = XLogReadRecord(ctx->reader, &errm);
      if (errm != nullptr) elog(ERROR, "pg_streams: could not read WAL for decoding: %s", errm);
      if (record != nullptr) LogicalDecodingProcessRecord(ctx, ctx->reader);
      CHECK_FOR_INTERRUPTS();
    }
    FlushToAppender();
    bool caught_up = ctx->reader->EndRecPtr >= flush;  // the pass reached what was flushed when it began

    // Let the slot release WAL and catalog rows up to what is in the stream:
    // everything decoded once the appender has caught up with what was sent.
    XLogRecPtr safe = DurablyAppended(ctx->reader->EndRecPtr);
    if (safe > confirmed) {
      LogicalConfirmReceivedLocation(safe);
      confirmed = safe;
    }
    if (caught_up && mark_lsn == InvalidXLogRecPtr) {
      mark_lsn = flush;
      mark_time = pass_start;
      mark_commit = last_sent_commit_time;
    }
    if (mark_lsn != InvalidXLogRecPtr && confirmed >= mark_lsn) {
      NoteCaptureProgress(my_dbid, mark_time, mark_commit);
      mark_lsn = InvalidXLogRecPtr;
    }

    TimestampTz now = GetCurrentTimestamp();
    if (now >= next_trim) next_trim = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), Trim());
    if (TakeReconcile(my_dbid) || DispatcherStopped() || now >= next_reconcile) {
      bool soon = ReconcileDispatchers(my_dbid);
      next_reconcile = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), soon ? 1000 : kMaxTrimIntervalMs);
    }

    if (caught_up) {
      bool flushed_append = false;
      if (ctx->reader->EndRecPtr >= GetFlushRecPtr(nullptr)) {
        // Under load, the writers' commits flush the last append soon; when
        // no commit comes within append_delay, flush it here, so that the
        // slot (and whoever waits for it) need not wait for the WAL writer.
        XLogRecPtr unflushed = UnflushedAppend();
        long sleep_ms = Min(kMaxSleepMs, TimestampDifferenceMilliseconds(GetCurrentTimestamp(), next_trim) + 1);
        if (unflushed != InvalidXLogRecPtr) sleep_ms = Min(sleep_ms, append_delay_ms);
        int rc = WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, sleep_ms, PG_WAIT_EXTENSION);
        ResetLatch(MyLatch);
        if ((rc & WL_TIMEOUT) && unflushed != InvalidXLogRecPtr && unflushed > GetFlushRecPtr(nullptr)) {
          XLogFlush(unflushed);
          flushed_append = true;
        }
      }
      // New commits: let more gather before decoding them. The latch is not
      // waited on meanwhile, so committers setting it send no signal.
      if (!flushed_append && append_delay_ms > 0 && ctx->reader->EndRecPtr < GetFlushRecPtr(nullptr)) {
        (void)WaitLatch(MyLatch, WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, append_delay_ms, PG_WAIT_EXTENSION);
        CHECK_FOR_INTERRUPTS();
      }
    }
  }
}
