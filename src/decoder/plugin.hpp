// The output plugin "pg_streams" and its capture mode.
//
// Standalone (pg_recvlogical, pg_logical_slot_get_changes): one JSON stream
// record per change of a table with an enabled stream. In capture mode (the
// capture worker only, option "capture") records go to a CaptureSink instead.
#pragma once

#include "boundary/pg.hpp"

extern "C" {
#include "access/xlogdefs.h"
#include "datatype/timestamp.h"
#include "replication/origin.h"
}

namespace pgs::decoder {

struct CaptureSink {
  // One record of the transaction being decoded.
  void (*append)(void* arg, int32 stream_id, int32 shard, XLogRecPtr commit_lsn, uint32 change_index,
                 TimestampTz commit_time, const char* data, int len);
  // End of a decoded transaction (end_lsn: end of its commit record).
  void (*commit)(void* arg, XLogRecPtr end_lsn, TimestampTz commit_time, bool catalog_changes);
  void* arg;
  RepOriginId own_origin;  // changes made by the capture worker itself: skipped
};

// Set by the capture worker (in its own process) before it creates its
// decoding context with option capture.
extern CaptureSink* capture_sink;

}  // namespace pgs::decoder
