#include <initializer_list>

#include "worker/batch.hpp"
#include "worker/segment_insert.hpp"
#include "worker/work.hpp"

extern "C" {
#include "access/toast_internals.h"
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
// One stored row (streams.record_batch) packs at most this many records of a
// shard, or about this many bytes of them: big enough for TOAST to compress
// well, small enough that reading one record unpacks little.
constexpr int kMaxRowRecords = 256;
constexpr Size kMaxRowBytes = 512 * 1024;

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
  // The transaction being received, whose end has not been seen: whether it
  // has records (in the batch, in pieces appended before, or skipped), its
  // commit LSN, the change index after its last record, and the number and
  // size of its records in the batch.
  bool open_txn;
  XLogRecPtr open_lsn;
  int64 open_next_idx;
  int open_records;
  Size open_bytes;
  bool pending;      // complete transactions (or a piece's last one) not appended yet
  XLogRecPtr end_lsn;
  TimestampTz commit_time;
  bool catalog_changes;
};

Batch batch;
SPIPlanPtr segments_plan = nullptr;
SPIPlanPtr partial_plan = nullptr;

// A transaction partly appended before a restart (streams.partial_append):
// its records with a change index below resume_idx are stored already.
XLogRecPtr resume_lsn = InvalidXLogRecPtr;
int64 resume_idx = 0;
int64 skipped = 0;

// Segments known to exist, per stream: appends whose time range lies inside
// skip the call to _ensure_segments. An entry is trusted for one second after
// it was checked, and only for records committed less than a second ago: no
// retention is shorter than a second, so trimming cannot have dropped their
// segment meanwhile.
struct KnownSegments {
  int32 stream_id;
  int32 width;
  TimestampTz lo, hi;  // [lo, hi) is covered by existing segments
  TimestampTz checked_at;
};
constexpr int kKnownStreams = 64;
KnownSegments known[kKnownStreams];
int n_known = 0;

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
  batch.open_txn = false;
  batch.open_records = 0;
  batch.open_bytes = 0;
  batch.end_lsn = InvalidXLogRecPtr;
  Reset();
  BeginWork();
  if (ExtensionInstalled()) {
    if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "pg_streams: SPI_connect failed");
    int rc = SPI_execute("SELECT commit_lsn, next_idx FROM streams.partial_append", true, 1);
    if (rc != SPI_OK_SELECT) elog(ERROR, "pg_streams: could not read streams.partial_append");
    if (SPI_processed == 1) {
      bool isnull;
      resume_lsn = static_cast<XLogRecPtr>(
          DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull)));
      resume_idx = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
    }
    SPI_finish();
  }
  EndWork();
}

void BatchAdd(int32 stream_id, int32 shard, XLogRecPtr commit_lsn, uint32 change_index, TimestampTz commit_time,
              const char* data, int len) {
  batch.open_txn = true;
  if (commit_lsn == resume_lsn && static_cast<int64>(change_index) < resume_idx) {
    // Appended before the restart, in a piece that committed.
    if (skipped++ == 0)
      ereport(LOG, (errmsg("pg_streams: transaction %X/%X was partly appended before a restart; its first %lld "
                           "records are skipped",
                           static_cast<uint32>(commit_lsn >> 32), static_cast<uint32>(commit_lsn),
                           static_cast<long long>(resume_idx))));
    return;
  }
  batch.open_lsn = commit_lsn;
  batch.open_next_idx = static_cast<int64>(change_index) + 1;
  batch.open_bytes += len;
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
  if (batch.open_txn) batch.pending = true;
  batch.open_txn = false;
  batch.open_records = 0;
  batch.open_bytes = 0;
}

bool BatchAtTransactionEnd() { return !batch.open_txn; }
bool BatchFull() { return batch.count >= kMaxBatchRecords || batch.bytes >= kMaxBatchBytes; }
bool BatchPieceDue() { return batch.open_records >= kMaxBatchRecords || batch.open_bytes >= kMaxBatchBytes; }
bool BatchPending() { return batch.pending; }
XLogRecPtr BatchEnd() { return batch.end_lsn; }

namespace {

// Orders record indexes by (stream, shard), keeping the append order (which is
// position order) within a shard.
int CompareByShard(const void* a, const void* b) {
  int i = *static_cast<const int*>(a), j = *static_cast<const int*>(b);
  int32 si = DatumGetInt32(batch.stream_ids[i]), sj = DatumGetInt32(batch.stream_ids[j]);
  if (si != sj) return si < sj ? -1 : 1;
  int32 hi = DatumGetInt32(batch.shards[i]), hj = DatumGetInt32(batch.shards[j]);
  if (hi != hj) return hi < hj ? -1 : 1;
  return i < j ? -1 : (i > j ? 1 : 0);
}

// The segment width of a stream of the batch (0: the stream is gone).
int32 WidthOf(const int32* widths, int32 stream_id) {
  for (int i = 0; i < batch.nstreams; ++i)
    if (batch.ranges[i].stream_id == stream_id) return widths[i];
  return 0;
}

// PostgreSQL's epoch (2000-01-01) in microseconds after the Unix epoch.
constexpr int64 kPgEpochUnixUs = int64{POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE} * SECS_PER_DAY * USECS_PER_SEC;

// The segment of a commit time: seconds since the Unix epoch floored to the
// segment width (as _ensure_segments does), counted in widths.
int64 SegmentOf(TimestampTz t, int32 width) {
  int64 unix_us = t + kPgEpochUnixUs;
  int64 w = static_cast<int64>(width) * USECS_PER_SEC;
  return unix_us >= 0 ? unix_us / w : -((-unix_us + w - 1) / w);
}

// Inserts records order[from, to) (one shard, one segment) as one row.
// The records array, compressed whatever its size: TOAST would compress only
// rows over 2 kB, and then store most of them out of line. The segments keep
// rows up to toast_tuple_target (4080 bytes) in the row itself, and readers
// decompress such an array like any compressed value.
Datum PackedRecords(Datum* records, int n) {
  Datum array = PointerGetDatum(construct_array(records, n, TEXTOID, -1, false, TYPALIGN_INT));
#ifdef USE_LZ4
  Datum packed = toast_compress_datum(array, TOAST_LZ4_COMPRESSION);
#else
  Datum packed = toast_compress_datum(array, TOAST_PGLZ_COMPRESSION);
#endif
  if (DatumGetPointer(packed) == nullptr) return array;  // incompressible
  pfree(DatumGetPointer(array));
  return packed;
}

void InsertRow(Segment* segment, const int* order, int from, int to) {
  int n = to - from;
  Datum* lsns = static_cast<Datum*>(palloc(sizeof(Datum) * n));
  Datum* idxs = static_cast<Datum*>(palloc(sizeof(Datum) * n));
  Datum* arrivals = static_cast<Datum*>(palloc(sizeof(Datum) * n));
  Datum* records = static_cast<Datum*>(palloc(sizeof(Datum) * n));
  for (int k = 0; k < n; ++k) {
    int i = order[from + k];
    lsns[k] = batch.lsns[i];
    idxs[k] = batch.idxs[i];
    arrivals[k] = batch.arrivals[i];
    records[k] = batch.records[i];
  }
  int first = order[from], last = order[to - 1];
  Datum args[12] = {
      batch.stream_ids[first],
      batch.shards[first],
      batch.lsns[first],
      batch.idxs[first],
      batch.lsns[last],
      batch.idxs[last],
      batch.arrivals[first],
      Int32GetDatum(n),
      PointerGetDatum(construct_array(lsns, n, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE)),
      PointerGetDatum(construct_array(idxs, n, INT4OID, 4, true, TYPALIGN_INT)),
      PointerGetDatum(construct_array(arrivals, n, TIMESTAMPTZOID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE)),
      PackedRecords(records, n),
  };
  bool nulls[12] = {};
  SegmentInsert(segment, args, nulls);
  for (int k = 8; k < 12; ++k) pfree(DatumGetPointer(args[k]));
  pfree(lsns);
  pfree(idxs);
  pfree(arrivals);
  pfree(records);
}

// The segment width of a stream whose range [lo, hi] lies in segments known
// to exist (0: not known, ask _ensure_segments).
int32 KnownWidth(const Range& r, TimestampTz now) {
  for (int k = 0; k < n_known; ++k) {
    const KnownSegments& e = known[k];
    if (e.stream_id == r.stream_id)
      return now - e.checked_at < USECS_PER_SEC && r.lo > now - USECS_PER_SEC && e.lo <= r.lo && r.hi < e.hi
                 ? e.width
                 : 0;
  }
  return 0;
}

// Remembers that the segments of [r.lo, r.hi] exist (whole segments of width).
void NoteKnown(const Range& r, int32 width, TimestampTz now) {
  int64 w = static_cast<int64>(width) * USECS_PER_SEC;
  TimestampTz lo = SegmentOf(r.lo, width) * w - kPgEpochUnixUs;
  TimestampTz hi = (SegmentOf(r.hi, width) + 1) * w - kPgEpochUnixUs;
  int k = 0;
  while (k < n_known && known[k].stream_id != r.stream_id) ++k;
  if (k == n_known) {
    if (n_known == kKnownStreams) return;
    ++n_known;
  }
  known[k] = KnownSegments{r.stream_id, width, lo, hi, now};
}

}  // namespace

namespace {
constexpr int kMaxAppendedStreams = 64;
int32 appended_streams[kMaxAppendedStreams];
int n_appended_streams = 0;
}  // namespace

int BatchAppendedStreams(const int32** streams) {
  *streams = appended_streams;
  return n_appended_streams;
}

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
  if (segments_plan == nullptr) {
    Oid seg_types[3] = {INT4OID, TIMESTAMPTZOID, TIMESTAMPTZOID};
    segments_plan = KeepPlan("SELECT streams._ensure_segments($1, $2, $3)", 3, seg_types);
  }
  if (batch.open_records > 0) {
    // A piece: how far its transaction is appended commits with its records.
    if (partial_plan == nullptr) {
      Oid types[2] = {INT8OID, INT8OID};
      partial_plan = KeepPlan(
          "INSERT INTO streams.partial_append VALUES (true, $1, $2) ON CONFLICT (one) DO UPDATE "
          "SET commit_lsn = excluded.commit_lsn, next_idx = excluded.next_idx",
          2, types);
    }
    Datum args[2] = {Int64GetDatum(static_cast<int64>(batch.open_lsn)), Int64GetDatum(batch.open_next_idx)};
    if (SPI_execute_plan(partial_plan, args, nullptr, false, 0) != SPI_OK_INSERT)
      elog(ERROR, "pg_streams: could not update streams.partial_append");
  }
  // Storage segments for the batch's time range, and their width; streams
  // that are gone (trimmed while capture lagged behind) have nowhere to go.
  int32* widths = static_cast<int32*>(palloc(sizeof(int32) * (batch.nstreams + 1)));
  TimestampTz now = GetCurrentTimestamp();
  for (int i = 0; i < batch.nstreams; ++i) {
    const Range& r = batch.ranges[i];
    widths[i] = KnownWidth(r, now);
    if (widths[i] > 0) continue;
    Datum seg_args[3] = {Int32GetDatum(r.stream_id), TimestampTzGetDatum(r.lo), TimestampTzGetDatum(r.hi)};
    int rc = SPI_execute_plan(segments_plan, seg_args, nullptr, false, 1);
    bool isnull;
    if (rc != SPI_OK_SELECT || SPI_processed != 1) elog(ERROR, "pg_streams: could not prepare storage segments");
    Datum w = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
    widths[i] = isnull ? 0 : DatumGetInt32(w);
    if (widths[i] > 0) NoteKnown(r, widths[i], now);
  }
  SPI_finish();
  CommandCounterIncrement();  // segments just created are visible
  // Runs of consecutive records of one shard and one segment, cut at the
  // row limits, each stored as one row.
  int* order = static_cast<int*>(palloc(sizeof(int) * (batch.count + 1)));
  for (int i = 0; i < batch.count; ++i) order[i] = i;
  qsort(order, batch.count, sizeof(int), CompareByShard);
  int from = 0;
  while (from < batch.count) {
    int i = order[from];
    int32 stream_id = DatumGetInt32(batch.stream_ids[i]);
    int32 width = WidthOf(widths, stream_id);
    int to = from + 1;
    if (width > 0) {
      int64 segment = SegmentOf(DatumGetTimestampTz(batch.arrivals[i]), width);
      Size bytes = VARSIZE_ANY(DatumGetPointer(batch.records[i]));
      while (to < batch.count && to - from < kMaxRowRecords && bytes < kMaxRowBytes) {
        int j = order[to];
        if (DatumGetInt32(batch.stream_ids[j]) != stream_id || batch.shards[j] != batch.shards[i] ||
            SegmentOf(DatumGetTimestampTz(batch.arrivals[j]), width) != segment)
          break;
        bytes += VARSIZE_ANY(DatumGetPointer(batch.records[j]));
        ++to;
      }
      InsertRow(OpenSegment(stream_id, segment, width), order, from, to);
    } else {
      while (to < batch.count && DatumGetInt32(batch.stream_ids[order[to]]) == stream_id) ++to;
    }
    from = to;
  }
  CloseSegments();
  // Progress commits atomically with the records.
  replorigin_session_origin_lsn = batch.end_lsn;
  replorigin_session_origin_timestamp = batch.commit_time;
  EndWork();
  n_appended_streams = batch.nstreams <= kMaxAppendedStreams ? batch.nstreams : -1;
  for (int i = 0; i < batch.nstreams && i < kMaxAppendedStreams; ++i) appended_streams[i] = batch.ranges[i].stream_id;
  Reset();
  batch.open_records = 0;
  batch.open_bytes = 0;
  return true;
}

}  // namespace pgs::worker
