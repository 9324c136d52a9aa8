// A shard's window state is kept in its streams.mapping_shard row and
// written in the transaction that moves its checkpoint.
#include "boundary/spi.hpp"
#include "dispatch/window.hpp"

extern "C" {
#include "catalog/pg_type.h"
}

namespace pgs::dispatch::window {

std::map<int32_t, ShardWindow> Load(int32_t mapping_id) {
  static const char* sql =
      "SELECT shard, (extract(epoch FROM window_start) * 1000000)::int8, coalesce(window_state::text, '{}'),"
      " window_early, (extract(epoch FROM window_floor) * 1000000)::int8"
      " FROM streams.mapping_shard WHERE mapping_id = $1";
  Oid types[1] = {INT4OID};
  Datum values[1] = {Int32GetDatum(mapping_id)};
  uint64 n = spi::ExecPrepared(sql, 1, types, values, nullptr, true);
  std::map<int32_t, ShardWindow> out;
  for (uint64 i = 0; i < n; ++i) {
    ShardWindow w;
    w.start_us = spi::Int64(i, 2).value_or(0);
    w.state = spi::Text(i, 3).value_or("{}");
    w.early = spi::Bool(i, 4).value_or(false);
    w.floor_us = spi::Int64(i, 5).value_or(0);
    out[spi::Int32(i, 1).value_or(0)] = std::move(w);
  }
  return out;
}

void Save(int32_t mapping_id, int32_t shard, const ShardWindow& w) {
  static const char* sql =
      "UPDATE streams.mapping_shard SET window_start = to_timestamp($3 / 1000000.0), window_state = $4::jsonb,"
      " window_early = $5, window_floor = to_timestamp($6 / 1000000.0)"
      " WHERE mapping_id = $1 AND shard = $2";
  Oid types[6] = {INT4OID, INT4OID, INT8OID, TEXTOID, BOOLOID, INT8OID};
  char nulls[7] = "      ";
  Datum values[6] = {};
  values[0] = Int32GetDatum(mapping_id);
  values[1] = Int32GetDatum(shard);
  if (w.start_us != 0) {
    values[2] = Int64GetDatum(w.start_us);
    values[3] = PgCall([&] { return CStringGetTextDatum(w.state.c_str()); });
  } else {
    nulls[2] = nulls[3] = 'n';  // no open window, no state
  }
  values[4] = BoolGetDatum(w.start_us != 0 && w.early);
  if (w.floor_us != 0)
    values[5] = Int64GetDatum(w.floor_us);
  else
    nulls[5] = 'n';
  spi::ExecPrepared(sql, 6, types, values, nulls, false);
}

}  // namespace pgs::dispatch::window
