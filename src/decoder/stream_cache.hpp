// Which relations have an enabled stream, as of the change being decoded.
//
// Read from streams.stream (a user catalog table) under the historic
// snapshot, cached per relation and invalidated through relcache callbacks
// (enable_stream and disable_stream invalidate every relcache entry).
#pragma once

#include "boundary/pg.hpp"

extern "C" {
#include "access/attmap.h"
#include "access/tupdesc.h"
#include "utils/rel.h"
}

namespace pgs::decoder {

enum class ViewType { kKeysOnly, kNewImage, kOldImage, kNewAndOldImages };

struct StreamInfo {
  int32 stream_id;
  int32 shard_count;
  ViewType view;
  const char* view_name;
  const char* arn;
  const char* region;
  Oid root_relid;         // the streamed table (a partition's ancestor, or the table itself)
  TupleDesc root_desc;    // column layout of records
  AttrMap* attrmap;       // changed relation's columns -> root columns; nullptr if identical
  int nkeys;
  AttrNumber* key_attnums;  // in root_desc (0: column gone)
  char** key_names;
  char** json_names;      // per root column: the quoted, escaped name followed by ':'
  int* json_name_lens;    // per root column: bytes of json_names[i]
  int* name_lengths;      // per root column: UTF-8 length of the name
  bool warned_identity;   // warned once about missing image columns
  // The record envelope's fixed text around the per-record parts: after
  // eventName up to ApproximateCreationDateTime's value, and after SizeBytes'
  // value to the end (see AppendRecord).
  StringInfoData envelope_mid;
  StringInfoData envelope_tail;
};

// Sets up the cache in `parent` (the decoding context's memory).
void StreamCacheInit(MemoryContext parent);
// Stops using the cache (its memory goes with `parent`).
void StreamCacheShutdown();
// The enabled stream covering `relation`, or nullptr.
StreamInfo* StreamCacheLookup(Relation relation);

}  // namespace pgs::decoder
