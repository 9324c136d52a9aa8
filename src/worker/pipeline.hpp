// The capture pipeline of one database: the capture worker decodes and sends
// records through a shared memory queue to its appender, which writes
// transactions to the stream tables. Decoding and writing run side by side.
#pragma once

#include "boundary/pg.hpp"

extern "C" {
#include "access/xlogdefs.h"
#include "datatype/timestamp.h"
#include "replication/origin.h"
#include "storage/latch.h"
#include "storage/spin.h"
}

namespace pgs::worker {

constexpr uint64 kPipelineMagic = 0x70677331;  // "pgs1"
constexpr uint64 kTocShared = 1;
constexpr uint64 kTocQueue = 2;
constexpr Size kQueueSize = 16 * 1024 * 1024;

// pg_streams.append_delay (milliseconds): once woken by a commit, the capture
// worker lets commits gather this long before it decodes them and hands them
// to the appender in one go. Fewer, bigger appends cost less (one commit and
// transaction each), committers and the capture worker signal and wake each
// other less often, and latency grows by at most this much.
extern int append_delay_ms;

struct PipelineShared {
  Oid dbid;
  RepOriginId origin;                // the appender's session origin
  // The last append: the end LSN of its last source transaction, and the end
  // of its own commit record. The appender commits asynchronously (its
  // commits would otherwise flush WAL once each): the slot may move past a
  // source transaction only once the append holding it is flushed.
  slock_t mutex;
  XLogRecPtr appended_upto;
  XLogRecPtr append_commit_end;
  Latch* capture_latch;              // set after each append
};

// kFlush (the kind byte alone) ends a decoding pass: the queue is flushed to the
// appender only then, so the appender sees the pass's transactions at once.
enum class MessageKind : uint8 { kRecord = 1, kCommit = 2, kFlush = 3 };

// A record message is this header followed by the record's JSON text.
struct RecordMessage {
  MessageKind kind;
  int32 stream_id;
  int32 shard;
  uint32 change_index;
  XLogRecPtr commit_lsn;
  TimestampTz commit_time;
};

struct CommitMessage {
  MessageKind kind;
  bool catalog_changes;
  XLogRecPtr end_lsn;
  TimestampTz commit_time;
};

}  // namespace pgs::worker

extern "C" {
PGDLLEXPORT void pgs_append_main(Datum arg);
}
