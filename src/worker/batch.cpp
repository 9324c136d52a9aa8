#include <initializer_list>

#include "worker/batch.hpp"
#include "worker/work.hpp"

extern "C" {
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "replication/origin.h"
#include "utils/array.h"
#include "utils/inval.h"
#include "utils/timestamp.h"
}

namespace pgs::worker {
namespace {

constexpr int kMaxBatchRecords = 10000;
constexpr Size kMaxBatchBytes = 16 * 1024 * 1024;

struct Range {
  int32 stream_id;
  TimestampTz lo, hi;  // commit times of the stream's records in the batch
};

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
  int nstreams;
  int stream_capacity;
  Range* ranges;
  int open_records;  // records of a transaction whose end has not been seen
  bool pending;      // complete transactions not appended yet
  XLogRecPtr end_lsn;
  TimestampTz commit_time;
  bool catalog_changes;
};

Batch batch;
SPIPlanPtr insert_plan = nullptr;
SPIPlanPtr insert_filtered_plan = nullptr;
SPIPlanPtr segments_plan = nullptr;

void Reset() {
  MemoryContextReset(batch.cxt);
  MemoryContext old = MemoryContextSwitchTo(batch.cxt);
  batch.capacity = 1024;
  for (Datum** a : {&batch.stream_ids, &batch.shards, &batch.lsns, &batch.idxs, &batch.arrivals, &batch.records})
    *a = static_cast<Datum*>(palloc(sizeof(Datum) * batch.capacity));
  batch.stream_capacity = 8;
  batch.ranges = static_cast<Range*>(palloc(sizeof(Range) * batch.stream_capacity));
  MemoryContextSwitchTo(old);
  batch.nstreams = 0;
  batch.count = 0;
  batch.bytes = 0;
  batch.pending = false;
  batch.catalog_changes = false;
}

void NoteRange(int32 stream_id, TimestampTz t) {
  for (int i = 0; i < batch.nstreams; ++i) {
    Range& r = batch.ranges[i];
    if (r.stream_id == stream_id) {
      r.lo = Min(r.lo, t);
      r.hi = Max(r.hi, t);
      return;
    }
  }
  if (batch.nstreams == batch.stream_capacity) {
    batch.stream_capacity *= 2;
    batch.ranges = static_cast<Range*>(repalloc(batch.ranges, sizeof(Range) * batch.stream_capacity));
  }
  batch.ranges[batch.nstreams++] = Range{stream_id, t, t};
}

SPIPlanPtr KeepPlan(const char* sql, int nargs, Oid* types) {
  SPIPlanPtr plan = SPI_prepare(sql, nargs, types);
  if (plan == nullptr) elog(ERROR, "pg_streams: could not prepare \"%s\": %s", sql, SPI_result_code_string(SPI_result));
  SPI_keepplan(plan);
  return plan;
}

}  // namespace

void BatchInit() {
  batch.cxt = AllocSetContextCreate(TopMemoryContext, "pg_streams batch", ALLOCSET_DEFAULT_SIZES);
  batch.open_records = 0;
  batch.end_lsn = InvalidXLogRecPtr;
  Reset();
}

void BatchAdd(int32 stream_id, int32 shard, XLogRecPtr commit_lsn, uint32 change_index, TimestampTz commit_time,
              const char* data, int len) {
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

void BatchCommit(XLogRecPtr end_lsn, TimestampTz commit_time, bool catalog_changes) {
  batch.end_lsn = end_lsn;
  batch.commit_time = commit_time;
  batch.catalog_changes |= catalog_changes;
  if (batch.open_records > 0) batch.pending = true;
  batch.open_records = 0;
}

bool BatchAtTransactionEnd() { return batch.open_records == 0; }
bool BatchFull() { return batch.count >= kMaxBatchRecords || batch.bytes >= kMaxBatchBytes; }
bool BatchPending() { return batch.pending; }
XLogRecPtr BatchEnd() { return batch.end_lsn; }

bool BatchAppend() {
  BeginWork();
  // Decoding filled the caches under historic snapshots. Appending only uses
  // the extension's own tables, whose definitions decoding never sees change;
  // still, after decoding catalog changes, start from clean caches.
  if (batch.catalog_changes) InvalidateSystemCaches();
  if (!ExtensionInstalled()) {
    AbortCurrentTransaction();
    return false;
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
  replorigin_session_origin_lsn = batch.end_lsn;
  replorigin_session_origin_timestamp = batch.commit_time;
  EndWork();
  Reset();
  return true;
}

}  // namespace pgs::worker
