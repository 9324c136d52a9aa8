// streams._dispatch_workers() and streams._dispatch_assignments(): the
// dispatcher pool of this database as shared memory has it (read by the view
// streams.dispatch_worker_stats).
#include "boundary/guard.hpp"
#include "worker/pool_shmem.hpp"

extern "C" {
#include "access/htup_details.h"
#include "funcapi.h"
#include "utils/timestamp.h"
}

namespace {

constexpr int kMaxRows = 16384;

// A materialized result set of this call.
void Emit(FunctionCallInfo fcinfo, int ncols, int nrows, const Datum* values, const bool* nulls) {
  InitMaterializedSRF(fcinfo, 0);
  auto* rsinfo = reinterpret_cast<ReturnSetInfo*>(fcinfo->resultinfo);
  for (int r = 0; r < nrows; ++r)
    tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, const_cast<Datum*>(values + r * ncols),
                         const_cast<bool*>(nulls + r * ncols));
}

}  // namespace

PGS_FUNCTION(pgs_dispatch_workers) {
  pgs::PgCall([&] {
    auto* info = static_cast<pgs::worker::PoolWorkerInfo*>(palloc(sizeof(pgs::worker::PoolWorkerInfo) *
                                                                  pgs::worker::kMaxDispatchWorkers));
    int n = pgs::worker::PoolWorkersOf(MyDatabaseId, info, pgs::worker::kMaxDispatchWorkers);
    constexpr int kCols = 7;
    auto* values = static_cast<Datum*>(palloc0(sizeof(Datum) * kCols * (n + 1)));
    auto* nulls = static_cast<bool*>(palloc0(sizeof(bool) * kCols * (n + 1)));
    for (int i = 0; i < n; ++i) {
      Datum* v = values + i * kCols;
      bool* z = nulls + i * kCols;
      v[0] = Int32GetDatum(info[i].index);
      v[1] = Int32GetDatum(info[i].pid);
      z[1] = info[i].pid == 0;
      v[2] = TimestampTzGetDatum(info[i].started_at);
      z[2] = info[i].pid == 0;
      v[3] = Int32GetDatum(info[i].mappings);
      v[4] = Int32GetDatum(info[i].held);
      v[5] = Float8GetDatum(static_cast<double>(info[i].busy_us) / 1e6);
      z[5] = info[i].pid == 0;
      v[6] = Int32GetDatum(info[i].in_flight);
      z[6] = info[i].pid == 0;
    }
    Emit(fcinfo, kCols, n, values, nulls);
  });
  return static_cast<Datum>(0);
}

PGS_FUNCTION(pgs_dispatch_assignments) {
  pgs::PgCall([&] {
    auto* info = static_cast<pgs::worker::AssignmentInfo*>(palloc(sizeof(pgs::worker::AssignmentInfo) * kMaxRows));
    int n = pgs::worker::AssignmentsOf(MyDatabaseId, info, kMaxRows);
    constexpr int kCols = 3;
    auto* values = static_cast<Datum*>(palloc0(sizeof(Datum) * kCols * (n + 1)));
    auto* nulls = static_cast<bool*>(palloc0(sizeof(bool) * kCols * (n + 1)));
    for (int i = 0; i < n; ++i) {
      Datum* v = values + i * kCols;
      v[0] = Int32GetDatum(info[i].mapping_id);
      v[1] = Int32GetDatum(info[i].worker);
      v[2] = Int32GetDatum(info[i].held_by);
      nulls[i * kCols + 2] = info[i].held_by == 0;
    }
    Emit(fcinfo, kCols, n, values, nulls);
  });
  return static_cast<Datum>(0);
}
