// streams._capture_progress(): what the capture worker of this database last
// reported (shared memory; read by the view streams.capture_lag).
#include "boundary/guard.hpp"
#include "worker/shmem.hpp"

extern "C" {
#include "access/htup_details.h"
#include "funcapi.h"
#include "utils/timestamp.h"
}

PGS_FUNCTION(pgs_capture_progress) {
  return pgs::PgCall([&] {
    TupleDesc desc;
    if (get_call_result_type(fcinfo, nullptr, &desc) != TYPEFUNC_COMPOSITE)
      elog(ERROR, "pg_streams: _capture_progress must return a record");
    TimestampTz caught_up_at;
    TimestampTz last_commit_at;
    pgs::worker::CaptureProgress(MyDatabaseId, &caught_up_at, &last_commit_at);
    Datum values[2] = {TimestampTzGetDatum(caught_up_at), TimestampTzGetDatum(last_commit_at)};
    bool nulls[2] = {caught_up_at == 0, last_commit_at == 0};
    return HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(desc), values, nulls));
  });
}
