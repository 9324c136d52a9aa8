// streams._capture_mark(): a point in the WAL after every change committed
// before the call, for streams.wait_for_capture (src/sql/16_testing.sql).
#include "boundary/guard.hpp"
#include "worker/shmem.hpp"

extern "C" {
#include "access/xlog.h"
#include "replication/message.h"
#include "utils/pg_lsn.h"
}

// An empty non-transactional logical message (the output plugin has no
// message callback: decoding skips it), flushed so that the capture worker
// may read it; its end is where decoding has passed every earlier commit.
// The slot's confirmed_flush_lsn reaches it once everything decoded before
// it is appended durably.
PGS_FUNCTION(pgs_capture_mark) {
  XLogRecPtr end = pgs::PgCall([] {
    XLogRecPtr e = LogLogicalMessage("pg_streams", "", 0, false);
    XLogFlush(e);
    return e;
  });
  pgs::worker::WakeCapture(MyDatabaseId);
  PG_RETURN_LSN(end);
}
