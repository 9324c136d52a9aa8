// streams._sample_event: a {"Records":[...]} event with one record built by
// the decoder's own code from row values given as JSON (sam local
// generate-event for pg_streams). See streams.sample_event in
// src/sql/16_testing.sql, which turns the JSON into rows of the table.
#include "boundary/guard.hpp"
#include "decoder/record_builder.hpp"
#include "decoder/stream_cache.hpp"

extern "C" {
#include "access/htup_details.h"
#include "access/table.h"
#include "access/xlog.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"
#include "utils/typcache.h"
}

namespace pgs::decoder {
namespace {

struct SampleArgs {
  Oid relid;
  const char* event_name;
  HeapTupleHeader new_row;  // nullptr when not given
  HeapTupleHeader old_row;
  const char* view;  // nullptr: the stream's
};

// `row` comes from SQL (any role may call streams._sample_event) with the
// table's columns, dropped ones left out (SELECT * of jsonb_populate_record):
// it is laid out again as a row of the table, each column checked for its
// type, so that no row of another shape is ever read as one of the table.
void Deform(StreamInfo* info, TupleDesc desc, HeapTupleHeader row, Image* img) {
  TupleDesc row_desc = lookup_rowtype_tupdesc(HeapTupleHeaderGetTypeId(row), HeapTupleHeaderGetTypMod(row));
  HeapTupleData given;
  given.t_len = HeapTupleHeaderGetDatumLength(row);
  ItemPointerSetInvalid(&given.t_self);
  given.t_tableOid = InvalidOid;
  given.t_data = row;
  Datum* row_values = static_cast<Datum*>(palloc(sizeof(Datum) * Max(row_desc->natts, 1)));
  bool* row_nulls = static_cast<bool*>(palloc(sizeof(bool) * Max(row_desc->natts, 1)));
  heap_deform_tuple(&given, row_desc, row_values, row_nulls);
  Datum* values = static_cast<Datum*>(palloc0(sizeof(Datum) * desc->natts));
  bool* nulls = static_cast<bool*>(palloc(sizeof(bool) * desc->natts));
  int j = 0;
  bool same = true;
  for (int i = 0; i < desc->natts; ++i) {
    Form_pg_attribute att = TupleDescAttr(desc, i);
    nulls[i] = true;
    if (att->attisdropped) continue;
    if (j >= row_desc->natts || TupleDescAttr(row_desc, j)->atttypid != att->atttypid) {
      same = false;
      break;
    }
    values[i] = row_values[j];
    nulls[i] = row_nulls[j];
    ++j;
  }
  same = same && j == row_desc->natts;
  ReleaseTupleDesc(row_desc);
  if (!same)
    ereport(ERROR, (errcode(ERRCODE_DATATYPE_MISMATCH),
                    errmsg("a row given to streams._sample_event does not have the columns of the table")));
  DeformImage(info, desc, heap_form_tuple(desc, values, nulls), false, img);
}

// The cache goes with its context, also when an ERROR unwinds the call (a
// relcache callback must never find it freed).
void ShutdownCache(void*) { StreamCacheShutdown(); }

ViewType ViewOf(const char* name) {
  if (strcmp(name, "KEYS_ONLY") == 0) return ViewType::kKeysOnly;
  if (strcmp(name, "NEW_IMAGE") == 0) return ViewType::kNewImage;
  if (strcmp(name, "OLD_IMAGE") == 0) return ViewType::kOldImage;
  return ViewType::kNewAndOldImages;
}

// PostgreSQL code only (palloc, ERROR); called through PgCall.
Datum Build(const SampleArgs& a) {
  Relation rel = table_open(a.relid, AccessShareLock);
  MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext, "pg_streams sample event", ALLOCSET_DEFAULT_SIZES);
  StreamCacheInit(cxt);
  auto* cb = static_cast<MemoryContextCallback*>(MemoryContextAllocZero(cxt, sizeof(MemoryContextCallback)));
  cb->func = ShutdownCache;
  MemoryContextRegisterResetCallback(cxt, cb);
  StreamInfo* found = StreamCacheLookup(rel);
  if (found == nullptr)
    ereport(ERROR, (errcode(ERRCODE_UNDEFINED_OBJECT),
                    errmsg("table %s has no enabled stream", RelationGetRelationName(rel)),
                    errdetail("ResourceNotFoundException"),
                    errhint("streams.sample_event builds the records of a table's stream: enable it first.")));
  StreamInfo info = *found;
  if (a.view != nullptr) {
    info.view = ViewOf(a.view);
    info.view_name = a.view;
  }
  bool wants_new = info.view == ViewType::kNewImage || info.view == ViewType::kNewAndOldImages;
  bool wants_old = info.view == ViewType::kOldImage || info.view == ViewType::kNewAndOldImages;
  bool insert = strcmp(a.event_name, "INSERT") == 0;
  bool remove = strcmp(a.event_name, "REMOVE") == 0;

  TupleDesc desc = RelationGetDescr(rel);
  Image new_img{}, old_img{};
  if (a.new_row != nullptr) Deform(&info, desc, a.new_row, &new_img);
  if (a.old_row != nullptr) Deform(&info, desc, a.old_row, &old_img);
  const Image* key_img = remove ? &old_img : &new_img;
  for (int k = 0; k < info.nkeys; ++k) {
    AttrNumber att = info.key_attnums[k];
    if (att <= 0 || key_img->nulls[att - 1])
      ereport(ERROR, (errcode(ERRCODE_NOT_NULL_VIOLATION),
                      errmsg("key column \"%s\" of %s must not be null in %s", info.key_names[k],
                             RelationGetRelationName(rel), remove ? "old_image" : "new_image"),
                      errdetail("ValidationException")));
  }

  StringInfoData keys;
  initStringInfo(&keys);
  RecordParts parts{a.event_name, &keys, AppendKeys(&keys, &info, key_img), nullptr, 0, nullptr, 0};
  if (!remove && wants_new) {
    parts.new_image = makeStringInfo();
    parts.new_size = AppendImage(parts.new_image, &info, &new_img);
  }
  if (!insert && wants_old) {
    parts.old_image = makeStringInfo();
    parts.old_size = AppendImage(parts.old_image, &info, &old_img);
  }
  StringInfoData out;
  initStringInfo(&out);
  appendStringInfoString(&out, "{\"Records\":[");
  AppendRecord(&out, &info, parts, GetSystemIdentifier(), GetXLogInsertRecPtr(), 0, GetCurrentTimestamp(), false);
  appendStringInfoString(&out, "]}");
  table_close(rel, AccessShareLock);
  Datum result = DirectFunctionCall1(jsonb_in, CStringGetDatum(out.data));
  MemoryContextDelete(cxt);  // and the cache with it
  return result;
}

}  // namespace
}  // namespace pgs::decoder

// (tbl regclass, event_name text, new_row record, old_row record, view_type text) -> jsonb
PGS_FUNCTION(pgs_sample_event) {
  return pgs::PgCall([&] {
    pgs::decoder::SampleArgs a{PG_GETARG_OID(0), text_to_cstring(PG_GETARG_TEXT_PP(1)),
                               PG_ARGISNULL(2) ? nullptr : PG_GETARG_HEAPTUPLEHEADER(2),
                               PG_ARGISNULL(3) ? nullptr : PG_GETARG_HEAPTUPLEHEADER(3),
                               PG_ARGISNULL(4) ? nullptr : text_to_cstring(PG_GETARG_TEXT_PP(4))};
    return pgs::decoder::Build(a);
  });
}
