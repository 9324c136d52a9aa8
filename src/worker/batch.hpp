// Decoded records waiting to be appended (whole transactions, or a piece of a
// big one), and the append itself (the appender's side of the pipeline).
#pragma once

#include "boundary/pg.hpp"

extern "C" {
#include "access/xlogdefs.h"
#include "datatype/timestamp.h"
}

namespace pgs::worker {

// Also reads where a transaction appended in pieces stopped before a restart
// (streams.partial_append): its records up to there are skipped.
void BatchInit();
void BatchAdd(int32 stream_id, int32 shard, XLogRecPtr commit_lsn, uint32 change_index, TimestampTz commit_time,
              const char* data, int len);
// Marks the end of a transaction: its records may be appended now.
void BatchCommit(XLogRecPtr end_lsn, TimestampTz commit_time, bool catalog_changes);
bool BatchAtTransactionEnd();  // no transaction has records but no end yet
bool BatchFull();
// The unfinished transaction has a piece's worth of records in the batch:
// append them now (a transaction bigger than a batch is appended in pieces).
bool BatchPieceDue();
bool BatchPending();            // transactions decoded but not appended
XLogRecPtr BatchEnd();          // end LSN of the last complete transaction

// Appends the batch in one transaction that also advances the session's
// replication origin to BatchEnd(); with records of an unfinished transaction
// (a piece), it also records in streams.partial_append how far that
// transaction is appended. Returns false, appending nothing, when the
// extension is not installed any more.
bool BatchAppend();
// The streams the last BatchAppend wrote to; -1 when there were too many to
// list (then any stream may have new records).
int BatchAppendedStreams(const int32** streams);

}  // namespace pgs::worker
