// Records of whole decoded transactions waiting to be appended, and the
// append itself (the appender's side of the pipeline).
#pragma once

#include "boundary/pg.hpp"

extern "C" {
#include "access/xlogdefs.h"
#include "datatype/timestamp.h"
}

namespace pgs::worker {

void BatchInit();
void BatchAdd(int32 stream_id, int32 shard, XLogRecPtr commit_lsn, uint32 change_index, TimestampTz commit_time,
              const char* data, int len);
// Marks the end of a transaction: its records may be appended now.
void BatchCommit(XLogRecPtr end_lsn, TimestampTz commit_time, bool catalog_changes);
bool BatchAtTransactionEnd();  // no record of an unfinished transaction held
bool BatchFull();
bool BatchPending();            // transactions decoded but not appended
XLogRecPtr BatchEnd();          // end LSN of the last complete transaction

// Appends the batch in one transaction that also advances the session's
// replication origin to BatchEnd(). Returns false, appending nothing, when
// the extension is not installed any more.
bool BatchAppend();

}  // namespace pgs::worker
