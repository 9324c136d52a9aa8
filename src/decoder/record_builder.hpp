// Building DynamoDB stream records from decoded tuples (decoding callbacks
// only; PostgreSQL memory, may raise ERROR).
#pragma once

#include "decoder/stream_cache.hpp"

extern "C" {
#include "access/htup.h"
#include "lib/stringinfo.h"
}

namespace pgs::decoder {

// One row, in the streamed table's column order.
struct Image {
  int natts;
  Datum* values;
  bool* nulls;
  bool* unchanged_toast;  // value not in WAL (unchanged TOASTed column)
  bool keys_only;         // only the key columns are known (replica identity DEFAULT/INDEX)
};

void DeformImage(const StreamInfo* info, TupleDesc desc, HeapTuple tuple, bool keys_only, Image* out);

// Takes the values of unchanged TOASTed columns of `new_img` from `old_img`.
void FillUnchangedToast(Image* new_img, const Image* old_img);

// {"k":{...},...} of the key columns; returns the DynamoDB size.
long AppendKeys(StringInfo out, const StreamInfo* info, const Image* img);

// {"col":{...},...} of a whole row; returns the DynamoDB size. Columns whose
// value is unknown are left out, with one WARNING per stream.
long AppendImage(StringInfo out, StreamInfo* info, const Image* img);

struct RecordParts {
  const char* event_name;  // INSERT, MODIFY, REMOVE
  StringInfo keys;
  long keys_size;
  StringInfo new_image;  // nullptr when the record has no NewImage
  long new_size;
  StringInfo old_image;  // nullptr when the record has no OldImage
  long old_size;
};

// The full record, fields in the order DynamoDB Streams delivers them;
// compact: without eventID and SequenceNumber, as the capture worker stores
// it (mapping::SpliceRecord puts them back). user_identity: the record's
// userIdentity object (JSON), after dynamodb; nullptr: none.
void AppendRecord(StringInfo out, const StreamInfo* info, const RecordParts& parts, uint64 system_id,
                  XLogRecPtr commit_lsn, uint32 change_index, TimestampTz commit_time, bool compact,
                  const char* user_identity = nullptr);

}  // namespace pgs::decoder
