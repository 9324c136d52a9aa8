// Inserting stored rows straight into their segment: the leaf partition of
// streams.record_batch that holds a stream's records of one time segment.
// The appender knows the segment of every row it writes, so it skips what an
// INSERT through the partitioned table costs per row (planning, executor
// start-up, tuple routing) and writes the heap tuple and its index entries
// itself, as PostgreSQL's own catalog inserts do.
#pragma once

#include "boundary/pg.hpp"

namespace pgs::worker {

struct Segment;

// The segment streams.record_<stream_id>_<segment * width> (it must exist),
// opened and locked for this transaction; opened once per transaction.
Segment* OpenSegment(int32 stream_id, int64 segment, int32 width);

// Inserts one row (the columns of streams.record_batch in their order).
void SegmentInsert(Segment* s, Datum* values, bool* nulls);

// Closes the segments opened in this transaction (their locks are kept to
// its end). Call before committing; an abort releases everything itself.
void CloseSegments();

}  // namespace pgs::worker
