#include "mapping/ids.hpp"
#include "decoder/record_builder.hpp"
#include "decoder/attr_value.hpp"
#include "decoder/json_out.hpp"

extern "C" {
#include "access/detoast.h"
#include "access/htup_details.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"
}

namespace pgs::decoder {

void DeformImage(const StreamInfo* info, TupleDesc desc, HeapTuple tuple, bool keys_only, Image* out) {
  int natts = info->root_desc->natts;
  out->values = static_cast<Datum*>(palloc0(sizeof(Datum) * natts));
  out->nulls = static_cast<bool*>(palloc(sizeof(bool) * natts));
  out->unchanged_toast = static_cast<bool*>(palloc0(sizeof(bool) * natts));
  out->keys_only = keys_only;
  out->natts = natts;
  Datum* values = out->values;
  bool* nulls = out->nulls;
  if (info->attrmap != nullptr) {
    values = static_cast<Datum*>(palloc(sizeof(Datum) * desc->natts));
    nulls = static_cast<bool*>(palloc(sizeof(bool) * desc->natts));
  }
  heap_deform_tuple(tuple, desc, values, nulls);
  for (int i = 0; i < natts; ++i) {
    if (info->attrmap != nullptr) {
      AttrNumber from = info->attrmap->attnums[i];
      out->values[i] = from > 0 ? values[from - 1] : (Datum)0;
      out->nulls[i] = from > 0 ? nulls[from - 1] : true;
    }
    Form_pg_attribute att = TupleDescAttr(info->root_desc, i);
    out->unchanged_toast[i] = !out->nulls[i] && att->attlen == -1 &&
                              VARATT_IS_EXTERNAL_ONDISK(DatumGetPointer(out->values[i]));
  }
}

void FillUnchangedToast(Image* new_img, const Image* old_img) {
  if (old_img == nullptr || old_img->keys_only) return;
  // Both images have the streamed table's layout, so columns line up.
  for (int i = 0; i < new_img->natts; ++i) {
    if (new_img->unchanged_toast[i] && !old_img->unchanged_toast[i]) {
      new_img->values[i] = old_img->values[i];
      new_img->nulls[i] = old_img->nulls[i];
      new_img->unchanged_toast[i] = false;
    }
  }
}

namespace {

bool IsKeyColumn(const StreamInfo* info, int attnum) {
  for (int k = 0; k < info->nkeys; ++k)
    if (info->key_attnums[k] == attnum) return true;
  return false;
}

long AppendColumn(StringInfo out, const StreamInfo* info, const Image* img, int i, bool* first) {
  if (!*first) appendStringInfoCharMacro(out, ',');
  *first = false;
  appendBinaryStringInfo(out, info->json_names[i], info->json_name_lens[i]);
  Form_pg_attribute att = TupleDescAttr(info->root_desc, i);
  return info->name_lengths[i] + AppendAttrValue(out, att->atttypid, img->values[i], img->nulls[i]);
}

}  // namespace

long AppendKeys(StringInfo out, const StreamInfo* info, const Image* img) {
  appendStringInfoCharMacro(out, '{');
  bool first = true;
  long size = 0;
  for (int k = 0; k < info->nkeys; ++k) {
    int attnum = info->key_attnums[k];
    if (attnum > 0) size += AppendColumn(out, info, img, attnum - 1, &first);
  }
  appendStringInfoCharMacro(out, '}');
  return size;
}

long AppendImage(StringInfo out, StreamInfo* info, const Image* img) {
  appendStringInfoCharMacro(out, '{');
  bool first = true;
  long size = 0;
  bool incomplete = false;
  for (int i = 0; i < info->root_desc->natts; ++i) {
    if (TupleDescAttr(info->root_desc, i)->attisdropped) continue;
    if (img->unchanged_toast[i] || (img->keys_only && !IsKeyColumn(info, i + 1))) {
      incomplete = true;
      continue;
    }
    size += AppendColumn(out, info, img, i, &first);
  }
  appendStringInfoCharMacro(out, '}');
  if (incomplete && !info->warned_identity) {
    info->warned_identity = true;
    ereport(WARNING,
            (errmsg("pg_streams: records of stream %s lack columns that are not in WAL", info->arn),
             errhint("Run ALTER TABLE ... REPLICA IDENTITY FULL on the table and its partitions: "
                     "view type %s needs complete row images.", info->view_name)));
  }
  return size;
}

void AppendRecord(StringInfo out, const StreamInfo* info, const RecordParts& parts, uint64 system_id,
                  XLogRecPtr commit_lsn, uint32 change_index, TimestampTz commit_time, bool compact,
                  const char* user_identity) {
  char event_id[mapping::kEventIdLength + 1];
  char seq[mapping::kSequenceNumberLength + 1];
  if (!compact) {
    mapping::FormatEventId(system_id, commit_lsn, change_index, event_id);
    mapping::FormatSequenceNumber(commit_lsn, change_index, seq);
  }
  // ApproximateCreationDateTime: commit time in epoch seconds, rounded down.
  int64 epoch_seconds = commit_time / USECS_PER_SEC +
                        static_cast<int64>(POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * SECS_PER_DAY;
  if (commit_time < 0 && commit_time % USECS_PER_SEC != 0) --epoch_seconds;
  long size = parts.keys_size + (parts.new_image ? parts.new_size : 0) + (parts.old_image ? parts.old_size : 0);

  // Pieces of fixed text and integers written directly: this runs for every
  // change, and format strings cost more than the rest of the envelope.
  char num[MAXINT8LEN + 1];
  if (compact) {
    AppendLiteral(out, "{\"eventName\":\"");
  } else {
    AppendLiteral(out, "{\"eventID\":\"");
    appendBinaryStringInfo(out, event_id, mapping::kEventIdLength);
    AppendLiteral(out, "\",\"eventName\":\"");
  }
  appendStringInfoString(out, parts.event_name);
  appendBinaryStringInfo(out, info->envelope_mid.data, info->envelope_mid.len);
  appendBinaryStringInfo(out, num, pg_lltoa(epoch_seconds, num));
  AppendLiteral(out, ".0,\"Keys\":");
  appendBinaryStringInfo(out, parts.keys->data, parts.keys->len);
  if (parts.new_image != nullptr) {
    AppendLiteral(out, ",\"NewImage\":");
    appendBinaryStringInfo(out, parts.new_image->data, parts.new_image->len);
  }
  if (parts.old_image != nullptr) {
    AppendLiteral(out, ",\"OldImage\":");
    appendBinaryStringInfo(out, parts.old_image->data, parts.old_image->len);
  }
  if (!compact) {
    AppendLiteral(out, ",\"SequenceNumber\":\"");
    appendBinaryStringInfo(out, seq, mapping::kSequenceNumberLength);
    AppendLiteral(out, "\"");
  }
  AppendLiteral(out, ",\"SizeBytes\":");
  appendBinaryStringInfo(out, num, pg_lltoa(size, num));
  if (user_identity == nullptr) {
    appendBinaryStringInfo(out, info->envelope_tail.data, info->envelope_tail.len);
    return;
  }
  // The tail closes dynamodb, then eventSourceARN: userIdentity goes between.
  const char* arn = strstr(info->envelope_tail.data, "},\"eventSourceARN\"");
  int head = arn == nullptr ? info->envelope_tail.len - 1 : static_cast<int>(arn - info->envelope_tail.data) + 1;
  appendBinaryStringInfo(out, info->envelope_tail.data, head);
  AppendLiteral(out, ",\"userIdentity\":");
  appendStringInfoString(out, user_identity);
  appendBinaryStringInfo(out, info->envelope_tail.data + head, info->envelope_tail.len - head);
}

}  // namespace pgs::decoder
