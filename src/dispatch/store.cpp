#include <cstring>
#include <map>
#include <sstream>
#include <utility>

#include "mapping/ids.hpp"  // first: it must not see PostgreSQL headers
#include "boundary/spi.hpp"
#include "dispatch/store.hpp"
#include "dispatch/kafka.hpp"

extern "C" {
#include "access/xlog.h"
#include "catalog/pg_type.h"
#include "utils/array.h"
#include "utils/timestamp.h"
}

namespace pgs::dispatch {
namespace {

constexpr int64_t kUnixToPgUs = int64_t{POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE} * USECS_PER_DAY;

std::vector<int64_t> ParseList(const std::optional<std::string>& s) {
  std::vector<int64_t> out;
  if (!s || s->empty()) return out;
  std::stringstream in(*s);
  std::string item;
  while (std::getline(in, item, ',')) out.push_back(std::stoll(item));
  return out;
}

}  // namespace

int64_t NowUs() { return GetCurrentTimestamp() + kUnixToPgUs; }

bool LoadMapping(int32_t mapping_id, MappingConfig* out) {
  static const char* sql =
      "SELECT m.uuid::text, m.stream_id, m.event_source_arn, m.function_name, streams._function_arn(m.function_name),"
      " m.batch_size, m.batching_window, m.maximum_retry_attempts,"
      " m.maximum_record_age, m.bisect, 'ReportBatchItemFailures' = ANY (m.response_types),"
      " m.destination_table::int8, m.destination_function,"
      " (extract(epoch FROM m.starting_timestamp) * 1000000)::int8, m.owner::int8, m.enabled, m.state,"
      " m.last_result, m.function_owner::int8, m.destination_owner::int8, m.filter_criteria::text,"
      " m.tumbling_window"
      " FROM streams.event_source_mapping m"
      " WHERE m.mapping_id = $1";
  Oid types[1] = {INT4OID};
  Datum values[1] = {Int32GetDatum(mapping_id)};
  if (spi::Exec(sql, 1, types, values, nullptr, true) == 0) return false;
  MappingConfig c;
  c.mapping_id = mapping_id;
  c.uuid = spi::Text(0, 1).value_or("");
  c.stream_id = spi::Int32(0, 2).value_or(0);
  c.stream_arn = spi::Text(0, 3).value_or("");
  c.function_name = spi::Text(0, 4).value_or("");
  c.function_arn = spi::Text(0, 5).value_or("");
  c.batch_size = spi::Int32(0, 6).value_or(100);
  c.window_s = spi::Int32(0, 7).value_or(0);
  c.max_retries = spi::Int32(0, 8).value_or(-1);
  c.max_age_s = spi::Int32(0, 9).value_or(-1);
  c.bisect = spi::Bool(0, 10).value_or(false);
  c.report_item_failures = spi::Bool(0, 11).value_or(false);
  c.dest_table = static_cast<uint32_t>(spi::Int64(0, 12).value_or(0));
  c.dest_function = spi::Text(0, 13).value_or("");
  c.start_us = spi::Int64(0, 14);
  c.owner = static_cast<uint32_t>(spi::Int64(0, 15).value_or(0));
  c.enabled = spi::Bool(0, 16).value_or(false);
  c.state = spi::Text(0, 17).value_or("");
  c.last_result = spi::Text(0, 18).value_or("");
  // The functions the mapping was bound to: same name and same owner.
  const auto function_owner = static_cast<uint32_t>(spi::Int64(0, 19).value_or(0));
  const auto destination_owner = static_cast<uint32_t>(spi::Int64(0, 20).value_or(0));
  c.filter_criteria = spi::Text(0, 21).value_or("");
  c.tumbling_s = spi::Int32(0, 22).value_or(0);
  c.target = LoadTarget(c.function_name, function_owner);
  if (!c.dest_function.empty()) c.destination = LoadTarget(c.dest_function, destination_owner);
  *out = std::move(c);
  return true;
}

TargetConfig LoadTarget(const std::string& name, uint32_t owner) {
  Oid types[2] = {TEXTOID, OIDOID};
  Datum values[2] = {PgCall([&] { return CStringGetTextDatum(name.c_str()); }), ObjectIdGetDatum(owner)};
  TargetConfig t;
  if (spi::Exec("SELECT * FROM streams._target_config($1, $2)", 2, types, values, nullptr, true) == 0) return t;
  auto kind = spi::Text(0, 1);
  if (!kind) return t;  // no such function
  t.exists = true;
  t.http = *kind == "http";
  t.handler = static_cast<uint32_t>(spi::Int64(0, 2).value_or(0));
  t.timeout_ms = spi::Int32(0, 3).value_or(3000);
  t.url = spi::Text(0, 4).value_or("");
  std::string headers = spi::Text(0, 5).value_or("");
  std::stringstream in(headers);
  std::string line;
  while (std::getline(in, line, '\n'))
    if (!line.empty()) t.headers.push_back(line);
  t.verify_tls = spi::Bool(0, 6).value_or(true);
  t.ca_file = spi::Text(0, 7).value_or("");
  t.signing_secret = spi::Text(0, 8).value_or("");
  t.host_allowed = spi::Bool(0, 9).value_or(true);
  t.function_id = spi::Int32(0, 10).value_or(0);
  t.max_concurrency = spi::Int32(0, 11).value_or(0);
  if (*kind == "kafka") LoadKafkaTarget(&t);
  return t;
}

std::optional<AccessProblem> CheckAccess(int32_t mapping_id) {
  Oid types[1] = {INT4OID};
  Datum values[1] = {Int32GetDatum(mapping_id)};
  if (spi::ExecPrepared("SELECT * FROM streams._mapping_problem($1)", 1, types, values, nullptr, true) == 0)
    return std::nullopt;
  auto result = spi::Text(0, 1);
  if (!result) return std::nullopt;
  return AccessProblem{*result, spi::Text(0, 2).value_or("")};
}

std::vector<ShardState> LoadShards(int32_t mapping_id) {
  static const char* sql =
      "SELECT ms.shard, coalesce(streams._shard_id(s, ms.shard), 'shard-' || ms.shard), ms.ck_lsn, ms.ck_idx,"
      " ms.batch_end_lsn, ms.batch_end_idx, array_to_string(ms.pending_lsn, ','),"
      " array_to_string(ms.pending_idx, ','), ms.attempts,"
      " (extract(epoch FROM ms.retry_at) * 1000000)::int8, (extract(epoch FROM ms.blocked_since) * 1000000)::int8"
      " FROM streams.mapping_shard ms JOIN streams.event_source_mapping m USING (mapping_id)"
      " LEFT JOIN streams.stream s ON s.stream_id = m.stream_id"
      " WHERE ms.mapping_id = $1 ORDER BY ms.shard";
  Oid types[1] = {INT4OID};
  Datum values[1] = {Int32GetDatum(mapping_id)};
  uint64 n = spi::Exec(sql, 1, types, values, nullptr, true);
  std::vector<ShardState> shards;
  for (uint64 i = 0; i < n; ++i) {
    ShardState s;
    s.shard = spi::Int32(i, 1).value_or(0);
    s.shard_id = spi::Text(i, 2).value_or("");
    s.checkpoint = {spi::Int64(i, 3).value_or(0), spi::Int32(i, 4).value_or(-1)};
    auto end_lsn = spi::Int64(i, 5);
    if (end_lsn) s.batch_end = Position{*end_lsn, spi::Int32(i, 6).value_or(0)};
    auto lsns = ParseList(spi::Text(i, 7));
    auto idxs = ParseList(spi::Text(i, 8));
    for (size_t k = 0; k < lsns.size() && k < idxs.size(); ++k)
      s.pending.push_back(Position{lsns[k], static_cast<int32_t>(idxs[k])});
    s.attempts = spi::Int32(i, 9).value_or(0);
    s.retry_at_us = spi::Int64(i, 10).value_or(0);
    s.blocked_since_us = spi::Int64(i, 11).value_or(0);
    shards.push_back(std::move(s));
  }
  return shards;
}

namespace {

// One stored row (streams.record_batch) unpacked, kept per shard: reading a
// batch smaller than a row (BatchSize 1, say) serves the next batches from
// memory instead of unpacking the same row again. Rows never change once
// appended; `valid_from` is the position after which the row holds the next
// record (it was read as the first row whose end lies after it).
// The records are kept as stored (without eventID and SequenceNumber, see
// mapping::SpliceRecord), all texts in one buffer: a record is spliced when
// it is read, and a filter can look at it before that (ForEachStored).
struct CachedRow {
  Position valid_from;
  Position last;
  struct Entry {
    Position pos;
    int64_t arrival_us;
    size_t offset, length;  // in texts
  };
  std::vector<Entry> entries;
  std::string texts;
  bool empty() const { return entries.empty(); }
};

std::map<std::pair<int32_t, int32_t>, CachedRow>& RowCache() {
  static std::map<std::pair<int32_t, int32_t>, CachedRow> cache;
  return cache;
}

// The packed arrays of the row SPI returned, as palloc'd element arrays.
struct PackedRow {
  int n = 0;
  Datum* lsns = nullptr;
  Datum* idxs = nullptr;
  Datum* arrivals = nullptr;
  Datum* records = nullptr;
};

// Reads the first stored row of the shard whose last record lies after `cur`;
// false when there is none.
bool FetchRow(int32_t stream_id, int32_t shard, Position cur, CachedRow* out) {
  static const char* sql =
      "SELECT b.last_lsn, b.last_idx, b.lsns, b.idxs, b.arrivals, b.records FROM streams.record_batch b"
      " WHERE b.stream_id = $1 AND b.shard = $2 AND (b.last_lsn, b.last_idx) > ($3, $4)"
      " ORDER BY b.last_lsn, b.last_idx LIMIT 1";
  Oid types[4] = {INT4OID, INT4OID, INT8OID, INT4OID};
  Datum values[4] = {Int32GetDatum(stream_id), Int32GetDatum(shard), Int64GetDatum(cur.lsn), Int32GetDatum(cur.idx)};
  if (spi::ExecPrepared(sql, 4, types, values, nullptr, true) == 0) return false;
  out->valid_from = cur;
  out->last = {spi::Int64(0, 1).value_or(0), spi::Int32(0, 2).value_or(0)};
  PackedRow row = PgCall([] {
    PackedRow r;
    auto column = [](int col, Oid elem, int len, bool byval, char align, Datum** elems) {
      bool isnull;
      Datum d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, col, &isnull);
      if (isnull) elog(ERROR, "pg_streams: a stored row has a null array");
      int n;
      deconstruct_array(DatumGetArrayTypeP(d), elem, len, byval, align, elems, nullptr, &n);
      return n;
    };
    r.n = column(3, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE, &r.lsns);
    if (column(4, INT4OID, 4, true, TYPALIGN_INT, &r.idxs) != r.n ||
        column(5, TIMESTAMPTZOID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE, &r.arrivals) != r.n ||
        column(6, TEXTOID, -1, false, TYPALIGN_INT, &r.records) != r.n)
      elog(ERROR, "pg_streams: a stored row has arrays of different lengths");
    return r;
  });
  out->entries.clear();
  out->texts.clear();
  size_t bytes = 0;
  for (int i = 0; i < row.n; ++i) bytes += VARSIZE_ANY_EXHDR(DatumGetPointer(row.records[i]));
  out->entries.reserve(row.n);
  out->texts.reserve(bytes);
  for (int i = 0; i < row.n; ++i) {
    auto* t = reinterpret_cast<const varlena*>(DatumGetPointer(row.records[i]));
    size_t len = VARSIZE_ANY_EXHDR(t);
    out->entries.push_back({{DatumGetInt64(row.lsns[i]), DatumGetInt32(row.idxs[i])},
                            DatumGetTimestampTz(row.arrivals[i]) + kUnixToPgUs, out->texts.size(), len});
    out->texts.append(VARDATA_ANY(t), len);
  }
  return true;
}

}  // namespace

void ForEachStored(const MappingConfig& cfg, int32_t shard, Position after, std::optional<Position> upto,
                   const std::function<bool(const StoredRecord&)>& visit) {
  Position end = upto.value_or(Position{INT64_MAX, INT32_MAX});
  int64_t start_us = cfg.start_us.value_or(INT64_MIN);
  CachedRow& row = RowCache()[{cfg.stream_id, shard}];
  Position cur = after;
  while (cur < end) {
    bool cached = !row.empty() && row.valid_from <= cur && cur < row.last;
    if (!cached && !FetchRow(cfg.stream_id, shard, cur, &row)) {
      row = CachedRow{};
      return;
    }
    for (const CachedRow::Entry& e : row.entries) {
      if (end < e.pos) return;
      if (e.pos <= cur) continue;
      if (e.arrival_us < start_us) continue;  // AT_TIMESTAMP skips older records
      if (!visit({e.pos, e.arrival_us, std::string_view(row.texts.data() + e.offset, e.length)})) return;
    }
    cur = row.last;
  }
}

void Splice(const StoredRecord& stored, Record* out) {
  static const uint64_t system_id = GetSystemIdentifier();  // cannot fail
  out->pos = stored.pos;
  out->arrival_us = stored.arrival_us;
  out->text.resize(stored.text.size() + mapping::kSpliceExtra);
  out->text.resize(static_cast<size_t>(mapping::SpliceRecord(stored.text.data(), static_cast<int>(stored.text.size()),
                                                             system_id, static_cast<uint64_t>(stored.pos.lsn),
                                                             static_cast<uint32_t>(stored.pos.idx), out->text.data())));
}

std::vector<Record> ReadRecords(const MappingConfig& cfg, int32_t shard, Position after,
                                std::optional<Position> upto, int limit) {
  std::vector<Record> out;
  if (limit <= 0) return out;
  ForEachStored(cfg, shard, after, upto, [&](const StoredRecord& r) {
    out.emplace_back();
    Splice(r, &out.back());
    return static_cast<int>(out.size()) < limit;
  });
  return out;
}

bool SaveShard(int32_t mapping_id, const ShardState& s, const StepStats& st, bool invoked) {
  static const char* sql =
      "UPDATE streams.mapping_shard SET ck_lsn = $3, ck_idx = $4, batch_end_lsn = $5, batch_end_idx = $6,"
      " pending_lsn = string_to_array($7, ',')::int8[], pending_idx = string_to_array($8, ',')::int4[],"
      " attempts = $9, retry_at = to_timestamp($10 / 1000000.0),"
      " records_read = records_read + $11, records_filtered = records_filtered + $12,"
      " records_delivered = records_delivered + $13, records_failed = records_failed + $14,"
      " invocations = invocations + $15, function_errors = function_errors + $16, retries = retries + $17,"
      " bisects = bisects + $18, failed_batches = failed_batches + $19,"
      " discarded_batches = discarded_batches + $20, throttles = throttles + $21,"
      " iterator_age_ms = coalesce($22, iterator_age_ms),"
      " last_invoke_at = CASE WHEN $23 THEN clock_timestamp() ELSE last_invoke_at END,"
      " last_error = coalesce($24, last_error),"
      " last_error_at = CASE WHEN $24 IS NULL THEN last_error_at ELSE clock_timestamp() END,"
      " blocked_since = to_timestamp($25 / 1000000.0)"
      " WHERE mapping_id = $1 AND shard = $2";
  std::string lsns, idxs;
  for (const auto& p : s.pending) {
    if (!lsns.empty()) {
      lsns += ',';
      idxs += ',';
    }
    lsns += std::to_string(p.lsn);
    idxs += std::to_string(p.idx);
  }
  constexpr int kArgs = 25;
  Oid types[kArgs] = {INT4OID, INT4OID, INT8OID, INT4OID, INT8OID, INT4OID, TEXTOID, TEXTOID, INT4OID,
                      INT8OID, INT8OID, INT8OID, INT8OID, INT8OID, INT8OID, INT8OID, INT8OID, INT8OID,
                      INT8OID, INT8OID, INT8OID, INT8OID, BOOLOID, TEXTOID, INT8OID};
  char nulls[kArgs + 1];
  memset(nulls, ' ', kArgs);
  nulls[kArgs] = '\0';
  Datum values[kArgs] = {};
  values[0] = Int32GetDatum(mapping_id);
  values[1] = Int32GetDatum(s.shard);
  values[2] = Int64GetDatum(s.checkpoint.lsn);
  values[3] = Int32GetDatum(s.checkpoint.idx);
  if (s.batch_end) {
    values[4] = Int64GetDatum(s.batch_end->lsn);
    values[5] = Int32GetDatum(s.batch_end->idx);
  } else {
    nulls[4] = nulls[5] = 'n';
  }
  PgCall([&] {
    values[6] = CStringGetTextDatum(lsns.c_str());
    values[7] = CStringGetTextDatum(idxs.c_str());
    if (st.error) values[23] = CStringGetTextDatum(st.error->c_str());
  });
  if (!st.error) nulls[23] = 'n';
  values[8] = Int32GetDatum(s.attempts);
  if (s.retry_at_us > 0)
    values[9] = Int64GetDatum(s.retry_at_us);
  else
    nulls[9] = 'n';
  const int64_t counters[11] = {st.read,           st.filtered, st.delivered, st.failed_records,
                                st.invocations,    st.function_errors, st.retries, st.bisects,
                                st.failed_batches, st.discarded_batches, st.throttles};
  for (int i = 0; i < 11; ++i) values[10 + i] = Int64GetDatum(counters[i]);
  if (st.iterator_age_ms)
    values[21] = Int64GetDatum(*st.iterator_age_ms);
  else
    nulls[21] = 'n';
  values[22] = BoolGetDatum(invoked);
  if (s.blocked_since_us > 0)
    values[24] = Int64GetDatum(s.blocked_since_us);
  else
    nulls[24] = 'n';
  return spi::ExecPrepared(sql, kArgs, types, values, nulls, false) == 1;
}

void SetMappingState(int32_t mapping_id, const char* state) {
  Oid types[2] = {INT4OID, TEXTOID};
  Datum values[2] = {Int32GetDatum(mapping_id), PgCall([&] { return CStringGetTextDatum(state); })};
  spi::Exec("UPDATE streams.event_source_mapping SET state = $2, state_reason = 'User action'"
            " WHERE mapping_id = $1 AND state <> $2",
            2, types, values, nullptr, false);
}

void SetLastResult(int32_t mapping_id, const std::string& result) {
  Oid types[2] = {INT4OID, TEXTOID};
  Datum values[2] = {Int32GetDatum(mapping_id), PgCall([&] { return CStringGetTextDatum(result.c_str()); })};
  spi::ExecPrepared("UPDATE streams.event_source_mapping SET last_result = $2 WHERE mapping_id = $1", 2, types, values,
                    nullptr, false);
}

}  // namespace pgs::dispatch
