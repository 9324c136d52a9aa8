#include <type_traits>

#include "mapping/ids.hpp"
#include "decoder/plugin.hpp"
#include "decoder/attr_value.hpp"
#include "decoder/backfill.hpp"
#include "decoder/record_builder.hpp"
#include "decoder/stream_cache.hpp"

extern "C" {
#include "access/htup_details.h"
#include "access/xlog.h"
#include "catalog/pg_class.h"
#include "commands/defrem.h"
#include "replication/logical.h"
#include "replication/output_plugin.h"
#include "replication/reorderbuffer.h"
#include "utils/inval.h"
#include "utils/rel.h"
#include "utils/syscache.h"
}

namespace pgs::decoder {

CaptureSink* capture_sink = nullptr;

namespace {

struct PluginData {
  MemoryContext change_cxt;  // reset after every change
  bool capture;
  uint32 change_index;  // records emitted so far in the current transaction
  uint64 system_id;
  // The stream this transaction backfills and its token (backfill.hpp); -1: none.
  int32 backfill_stream;
  int64 backfill_token;
};

bool type_callback_registered = false;

void TypeCacheCallback(Datum, int, uint32) { ResetTypeCache(); }

void ShutdownCallback(void*) {
  StreamCacheShutdown();
}

void Startup(LogicalDecodingContext* ctx, OutputPluginOptions* opt, bool) {
  auto* data = static_cast<PluginData*>(MemoryContextAllocZero(ctx->context, sizeof(PluginData)));
  data->change_cxt = AllocSetContextCreate(ctx->context, "pg_streams change", ALLOCSET_DEFAULT_SIZES);
  data->system_id = GetSystemIdentifier();
  ListCell* lc;
  foreach (lc, ctx->output_plugin_options) {
    auto* elem = static_cast<DefElem*>(lfirst(lc));
    if (strcmp(elem->defname, "capture") == 0) {
      // Only the capture worker, which provides the sink, may give this option.
      if (capture_sink == nullptr)
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("option \"capture\" of output plugin pg_streams is reserved for the capture worker")));
      data->capture = elem->arg == nullptr ? true : defGetBoolean(elem);
    } else {
      ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                      errmsg("unrecognized pg_streams option: %s", elem->defname),
                      errhint("The pg_streams output plugin takes no options.")));
    }
  }
  opt->output_type = OUTPUT_PLUGIN_TEXTUAL_OUTPUT;
  opt->receive_rewrites = false;
  ctx->output_plugin_private = data;
  StreamCacheInit(ctx->context);
  if (!type_callback_registered) {
    CacheRegisterSyscacheCallback(TYPEOID, TypeCacheCallback, (Datum)0);
    type_callback_registered = true;
  }
  // On ERROR, shutdown_cb never runs; the context reset always does.
  auto* cb = static_cast<MemoryContextCallback*>(MemoryContextAllocZero(ctx->context, sizeof(MemoryContextCallback)));
  cb->func = ShutdownCallback;
  MemoryContextRegisterResetCallback(ctx->context, cb);
}

void Shutdown(LogicalDecodingContext*) { StreamCacheShutdown(); }

void Begin(LogicalDecodingContext* ctx, ReorderBufferTXN*) {
  auto* data = static_cast<PluginData*>(ctx->output_plugin_private);
  data->change_index = 0;
  data->backfill_stream = -1;
  data->backfill_token = 0;
}

void Commit(LogicalDecodingContext* ctx, ReorderBufferTXN* txn, XLogRecPtr) {
  auto* data = static_cast<PluginData*>(ctx->output_plugin_private);
  if (data->capture) capture_sink->commit(capture_sink->arg, txn->end_lsn, txn->xact_time.commit_time,
                                         rbtxn_has_catalog_changes(txn));
}

bool FilterByOrigin(LogicalDecodingContext* ctx, RepOriginId origin_id) {
  auto* data = static_cast<PluginData*>(ctx->output_plugin_private);
  return data->capture && origin_id != InvalidRepOriginId && origin_id == capture_sink->own_origin;
}

StringInfo NewBuffer() {
  StringInfo s = makeStringInfo();
  return s;
}

void Emit(LogicalDecodingContext* ctx, ReorderBufferTXN* txn, const StreamInfo* info, const RecordParts& parts,
          const char* user_identity = nullptr) {
  auto* data = static_cast<PluginData*>(ctx->output_plugin_private);
  uint32 index = data->change_index++;
  uint32 shard = mapping::ShardOfKeys(parts.keys->data, parts.keys->len, static_cast<uint32>(info->shard_count));
  if (data->capture) {
    StringInfoData rec;
    initStringInfo(&rec);
    AppendRecord(&rec, info, parts, data->system_id, txn->final_lsn, index, txn->xact_time.commit_time, true,
                 user_identity);
    capture_sink->append(capture_sink->arg, info->stream_id, static_cast<int32>(shard), txn->final_lsn, index,
                         txn->xact_time.commit_time, rec.data, rec.len);
    return;
  }
  OutputPluginPrepareWrite(ctx, true);
  AppendRecord(ctx->out, info, parts, data->system_id, txn->final_lsn, index, txn->xact_time.commit_time, false,
               user_identity);
  OutputPluginWrite(ctx, true);
}

bool WantsNew(const StreamInfo* info) {
  return info->view == ViewType::kNewImage || info->view == ViewType::kNewAndOldImages;
}
bool WantsOld(const StreamInfo* info) {
  return info->view == ViewType::kOldImage || info->view == ViewType::kNewAndOldImages;
}

// Emits a record whose images are built here (INSERT or REMOVE).
void EmitSimple(LogicalDecodingContext* ctx, ReorderBufferTXN* txn, StreamInfo* info, const char* event,
                Image* img, StringInfo keys, long keys_size, const char* user_identity = nullptr) {
  RecordParts parts{event, keys, keys_size, nullptr, 0, nullptr, 0};
  bool insert = strcmp(event, "INSERT") == 0;
  if (insert ? WantsNew(info) : WantsOld(info)) {
    StringInfo image = NewBuffer();
    long size = AppendImage(image, info, img);
    if (insert) {
      parts.new_image = image;
      parts.new_size = size;
    } else {
      parts.old_image = image;
      parts.old_size = size;
    }
  }
  Emit(ctx, txn, info, parts, user_identity);
}

void HandleChange(LogicalDecodingContext* ctx, ReorderBufferTXN* txn, Relation relation,
                  ReorderBufferChange* change) {
  StreamInfo* info = StreamCacheLookup(relation);
  if (info == nullptr) return;
  TupleDesc desc = RelationGetDescr(relation);
  bool full_identity = relation->rd_rel->relreplident == REPLICA_IDENTITY_FULL;
  ReorderBufferTupleBuf* newtuple = change->data.tp.newtuple;
  ReorderBufferTupleBuf* oldtuple = change->data.tp.oldtuple;
  Image new_img, old_img;
  if (newtuple != nullptr) DeformImage(info, desc, &newtuple->tuple, false, &new_img);
  if (oldtuple != nullptr) DeformImage(info, desc, &oldtuple->tuple, !full_identity, &old_img);

  switch (change->action) {
    case REORDER_BUFFER_CHANGE_INSERT: {
      if (newtuple == nullptr) return;
      StringInfo keys = NewBuffer();
      long keys_size = AppendKeys(keys, info, &new_img);
      EmitSimple(ctx, txn, info, "INSERT", &new_img, keys, keys_size);
      return;
    }
    case REORDER_BUFFER_CHANGE_DELETE: {
      if (oldtuple == nullptr) {
        ereport(WARNING, (errmsg("pg_streams: DELETE on %s without old key not streamed", info->arn),
                          errhint("The table needs a primary key or replica identity.")));
        return;
      }
      StringInfo keys = NewBuffer();
      long keys_size = AppendKeys(keys, info, &old_img);
      EmitSimple(ctx, txn, info, "REMOVE", &old_img, keys, keys_size);
      return;
    }
    case REORDER_BUFFER_CHANGE_UPDATE: {
      if (newtuple == nullptr) return;
      // Unchanged TOASTed columns are not in the new tuple: take them from
      // the old one, for a MODIFY as well as for the INSERT of a new key.
      if (oldtuple != nullptr) FillUnchangedToast(&new_img, &old_img);
      StringInfo keys = NewBuffer();
      long keys_size = AppendKeys(keys, info, &new_img);
      if (oldtuple != nullptr) {
        StringInfo old_keys = NewBuffer();
        long old_keys_size = AppendKeys(old_keys, info, &old_img);
        if (old_keys->len != keys->len || memcmp(old_keys->data, keys->data, keys->len) != 0) {
          // The item's key changed: DynamoDB sees a removal and a new item.
          EmitSimple(ctx, txn, info, "REMOVE", &old_img, old_keys, old_keys_size);
          EmitSimple(ctx, txn, info, "INSERT", &new_img, keys, keys_size);
          return;
        }
      }
      RecordParts parts{"MODIFY", keys, keys_size, nullptr, 0, nullptr, 0};
      bool both_known = oldtuple != nullptr && !old_img.keys_only;
      if (WantsNew(info) || both_known) {
        parts.new_image = NewBuffer();
        parts.new_size = AppendImage(parts.new_image, info, &new_img);
      }
      if (both_known) {
        parts.old_image = NewBuffer();
        parts.old_size = AppendImage(parts.old_image, info, &old_img);
        // Identical content: DynamoDB writes no record.
        if (parts.old_image->len == parts.new_image->len &&
            memcmp(parts.old_image->data, parts.new_image->data, parts.new_image->len) == 0)
          return;
      }
      if (!WantsNew(info)) parts.new_image = nullptr;
      if (!WantsOld(info)) parts.old_image = nullptr;
      Emit(ctx, txn, info, parts);
      return;
    }
    default:
      return;
  }
}

// A row a backfill chunk read (backfill.hpp): an INSERT record with a
// userIdentity, if the transaction was granted this stream and token.
void HandleBackfill(LogicalDecodingContext* ctx, ReorderBufferTXN* txn, Size size, const char* message) {
  auto* data = static_cast<PluginData*>(ctx->output_plugin_private);
  Oid relid;
  int64 token;
  HeapTupleData tuple;
  if (data->backfill_stream < 0 || !ParseBackfillMessage(message, size, &relid, &token, &tuple) ||
      token != data->backfill_token)
    return;
  Relation rel = RelationIdGetRelation(relid);
  if (rel == nullptr) return;
  StreamInfo* info = StreamCacheLookup(rel);
  if (info != nullptr && info->stream_id == data->backfill_stream && info->root_relid == relid &&
      HeapTupleHeaderGetNatts(tuple.t_data) == RelationGetDescr(rel)->natts) {
    Image img;
    DeformImage(info, RelationGetDescr(rel), &tuple, false, &img);
    StringInfo keys = NewBuffer();
    long keys_size = AppendKeys(keys, info, &img);
    EmitSimple(ctx, txn, info, "INSERT", &img, keys, keys_size, kBackfillIdentity);
  }
  RelationClose(rel);
}

void Message(LogicalDecodingContext* ctx, ReorderBufferTXN* txn, XLogRecPtr, bool transactional, const char* prefix,
             Size size, const char* message) {
  if (!transactional || txn == nullptr || strcmp(prefix, kBackfillPrefix) != 0) return;
  auto* data = static_cast<PluginData*>(ctx->output_plugin_private);
  MemoryContext old = MemoryContextSwitchTo(data->change_cxt);
  HandleBackfill(ctx, txn, size, message);
  MemoryContextSwitchTo(old);
  MemoryContextReset(data->change_cxt);
}

void Change(LogicalDecodingContext* ctx, ReorderBufferTXN* txn, Relation relation, ReorderBufferChange* change) {
  auto* data = static_cast<PluginData*>(ctx->output_plugin_private);
  MemoryContext old = MemoryContextSwitchTo(data->change_cxt);
  if (IsBackfillGrantTable(relation))
    BackfillGrant(relation, change, &data->backfill_stream, &data->backfill_token);
  else
    HandleChange(ctx, txn, relation, change);
  MemoryContextSwitchTo(old);
  MemoryContextReset(data->change_cxt);
}

void Truncate(LogicalDecodingContext* ctx, ReorderBufferTXN*, int nrelations, Relation relations[],
              ReorderBufferChange*) {
  auto* data = static_cast<PluginData*>(ctx->output_plugin_private);
  MemoryContext old = MemoryContextSwitchTo(data->change_cxt);
  for (int i = 0; i < nrelations; ++i) {
    StreamInfo* info = StreamCacheLookup(relations[i]);
    if (info != nullptr)
      ereport(WARNING, (errmsg("pg_streams: TRUNCATE of %s is not streamed: its rows leave no REMOVE records",
                               RelationGetRelationName(relations[i]))));
  }
  MemoryContextSwitchTo(old);
  MemoryContextReset(data->change_cxt);
}

}  // namespace
}  // namespace pgs::decoder

extern "C" {
PGDLLEXPORT void _PG_output_plugin_init(OutputPluginCallbacks* cb);

static_assert(std::is_same_v<decltype(&_PG_output_plugin_init), LogicalOutputPluginInit>);

void _PG_output_plugin_init(OutputPluginCallbacks* cb) {
  cb->startup_cb = pgs::decoder::Startup;
  cb->begin_cb = pgs::decoder::Begin;
  cb->change_cb = pgs::decoder::Change;
  cb->truncate_cb = pgs::decoder::Truncate;
  cb->commit_cb = pgs::decoder::Commit;
  cb->message_cb = pgs::decoder::Message;
  cb->filter_by_origin_cb = pgs::decoder::FilterByOrigin;
  cb->shutdown_cb = pgs::decoder::Shutdown;
}
}
