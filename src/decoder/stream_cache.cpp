#include "decoder/stream_cache.hpp"
#include "decoder/json_out.hpp"

extern "C" {
#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/namespace.h"
#include "catalog/partition.h"
#include "utils/array.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/relcache.h"
#include "utils/snapmgr.h"
#include "catalog/pg_class.h"
#include "utils/fmgroids.h"
}

namespace pgs::decoder {
namespace {

void BuildEnvelope(StreamInfo* info) {
  StringInfo mid = &info->envelope_mid;
  initStringInfo(mid);
  AppendLiteral(mid, "\",\"eventVersion\":\"1.1\",\"eventSource\":\"aws:dynamodb\",\"awsRegion\":");
  AppendJsonString(mid, info->region, static_cast<int>(strlen(info->region)));
  AppendLiteral(mid, ",\"dynamodb\":{\"ApproximateCreationDateTime\":");
  StringInfo tail = &info->envelope_tail;
  initStringInfo(tail);
  AppendLiteral(tail, ",\"StreamViewType\":\"");
  appendStringInfoString(tail, info->view_name);
  AppendLiteral(tail, "\"},\"eventSourceARN\":");
  AppendJsonString(tail, info->arn, static_cast<int>(strlen(info->arn)));
  appendStringInfoChar(tail, '}');
}

struct Entry {
  Oid relid;  // hash key
  bool valid;
  MemoryContext cxt;  // holds info; replaced on rebuild
  StreamInfo* info;
};

HTAB* cache = nullptr;
MemoryContext cache_parent = nullptr;
bool callback_registered = false;

void InvalidateCallback(Datum, Oid relid) {
  if (cache == nullptr) return;
  HASH_SEQ_STATUS status;
  hash_seq_init(&status, cache);
  while (auto* e = static_cast<Entry*>(hash_seq_search(&status))) {
    if (relid == InvalidOid || e->relid == relid || (e->info != nullptr && e->info->root_relid == relid))
      e->valid = false;
  }
}

ViewType ParseView(const char* v) {
  if (strcmp(v, "KEYS_ONLY") == 0) return ViewType::kKeysOnly;
  if (strcmp(v, "NEW_IMAGE") == 0) return ViewType::kNewImage;
  if (strcmp(v, "OLD_IMAGE") == 0) return ViewType::kOldImage;
  return ViewType::kNewAndOldImages;
}

int ColumnNumber(TupleDesc desc, const char* name) {
  for (int i = 0; i < desc->natts; ++i)
    if (strcmp(NameStr(TupleDescAttr(desc, i)->attname), name) == 0) return i + 1;
  elog(ERROR, "pg_streams: streams.stream has no column \"%s\"", name);
  return 0;
}

// Whether relid exists now, not as of the historic snapshot. A user catalog
// table that has been dropped since cannot be opened while decoding (its
// current pg_class row is gone): that happens to streams.stream when WAL
// from before a DROP EXTENSION is decoded.
bool ExistsNow(Oid relid) {
  Relation pg_class = table_open(RelationRelationId, AccessShareLock);
  ScanKeyData key;
  ScanKeyInit(&key, Anum_pg_class_oid, BTEqualStrategyNumber, F_OIDEQ, ObjectIdGetDatum(relid));
  SysScanDesc scan = systable_beginscan(pg_class, ClassOidIndexId, true,
                                        GetNonHistoricCatalogSnapshot(RelationRelationId), 1, &key);
  bool exists = HeapTupleIsValid(systable_getnext(scan));
  systable_endscan(scan);
  table_close(pg_class, AccessShareLock);
  return exists;
}

// Whether the stream's partition of streams.record_batch exists (as of the
// change being decoded). enable_stream creates it with the stream row; a
// stream row restored from a dump has none until the capture worker rebinds
// it once the restore is over (streams._rebind_restored): the restore's own
// data load is not captured.
bool HasStorage(int32 stream_id, Oid nsp) {
  char name[NAMEDATALEN];
  snprintf(name, sizeof(name), "record_%d", stream_id);
  return OidIsValid(get_relname_relid(name, nsp));
}

// The enabled stream row for one of `candidates`, copied into `cxt`.
StreamInfo* FindStream(List* candidates, MemoryContext cxt, Oid* root) {
  Oid nsp = get_namespace_oid("streams", true);
  Oid config = OidIsValid(nsp) ? get_relname_relid("stream", nsp) : InvalidOid;
  if (!OidIsValid(config) || !ExistsNow(config)) return nullptr;
  Relation rel = table_open(config, AccessShareLock);
  TupleDesc desc = RelationGetDescr(rel);
  int c_id = ColumnNumber(desc, "stream_id"), c_relid = ColumnNumber(desc, "relid"),
      c_arn = ColumnNumber(desc, "stream_arn"), c_region = ColumnNumber(desc, "aws_region"),
      c_view = ColumnNumber(desc, "view_type"), c_shards = ColumnNumber(desc, "shard_count"),
      c_keys = ColumnNumber(desc, "key_columns"), c_status = ColumnNumber(desc, "status");
  SysScanDesc scan = systable_beginscan(rel, InvalidOid, false, nullptr, 0, nullptr);
  StreamInfo* info = nullptr;
  HeapTuple tup;
  while (info == nullptr && HeapTupleIsValid(tup = systable_getnext(scan))) {
    bool isnull;
    char* status = TextDatumGetCString(heap_getattr(tup, c_status, desc, &isnull));
    if (strcmp(status, "ENABLED") != 0) continue;
    Oid relid = DatumGetObjectId(heap_getattr(tup, c_relid, desc, &isnull));
    if (!list_member_oid(candidates, relid)) continue;
    int32 stream_id = DatumGetInt32(heap_getattr(tup, c_id, desc, &isnull));
    if (!HasStorage(stream_id, nsp)) continue;
    MemoryContext old = MemoryContextSwitchTo(cxt);
    info = static_cast<StreamInfo*>(palloc0(sizeof(StreamInfo)));
    info->stream_id = stream_id;
    info->shard_count = DatumGetInt32(heap_getattr(tup, c_shards, desc, &isnull));
    info->arn = TextDatumGetCString(heap_getattr(tup, c_arn, desc, &isnull));
    info->region = TextDatumGetCString(heap_getattr(tup, c_region, desc, &isnull));
    info->view_name = TextDatumGetCString(heap_getattr(tup, c_view, desc, &isnull));
    info->view = ParseView(info->view_name);
    BuildEnvelope(info);
    Datum* keys;
    int nkeys;
    deconstruct_array(DatumGetArrayTypeP(heap_getattr(tup, c_keys, desc, &isnull)), TEXTOID, -1, false,
                      TYPALIGN_INT, &keys, nullptr, &nkeys);
    info->nkeys = nkeys;
    info->key_attnums = static_cast<AttrNumber*>(palloc0(sizeof(AttrNumber) * (nkeys + 1)));
    // Key names are resolved against the root descriptor by the caller.
    info->key_names = static_cast<char**>(palloc(sizeof(char*) * (nkeys + 1)));
    for (int i = 0; i < nkeys; ++i) info->key_names[i] = TextDatumGetCString(keys[i]);
    MemoryContextSwitchTo(old);
    *root = relid;
  }
  systable_endscan(scan);
  table_close(rel, AccessShareLock);
  return info;
}

void Build(Entry* e, Relation relation) {
  if (e->cxt != nullptr) MemoryContextDelete(e->cxt);
  e->cxt = nullptr;
  e->info = nullptr;
  Oid relid = RelationGetRelid(relation);
  List* candidates = list_make1_oid(relid);
  if (relation->rd_rel->relispartition) candidates = list_concat(candidates, get_partition_ancestors(relid));
  MemoryContext cxt = AllocSetContextCreate(cache_parent, "pg_streams stream entry", ALLOCSET_SMALL_SIZES);
  Oid root = InvalidOid;
  StreamInfo* info = FindStream(candidates, cxt, &root);
  if (info == nullptr) {
    MemoryContextDelete(cxt);
    e->valid = true;
    return;
  }
  MemoryContext old = MemoryContextSwitchTo(cxt);
  info->root_relid = root;
  TupleDesc leaf_desc = RelationGetDescr(relation);
  if (root == relid) {
    info->root_desc = CreateTupleDescCopy(leaf_desc);
  } else {
    Relation root_rel = RelationIdGetRelation(root);
    if (!RelationIsValid(root_rel)) elog(ERROR, "pg_streams: could not open relation %u", root);
    info->root_desc = CreateTupleDescCopy(RelationGetDescr(root_rel));
    RelationClose(root_rel);
    info->attrmap = build_attrmap_by_name_if_req(leaf_desc, info->root_desc);
  }
  char** key_names = info->key_names;
  for (int k = 0; k < info->nkeys; ++k) {
    for (int i = 0; i < info->root_desc->natts; ++i) {
      Form_pg_attribute att = TupleDescAttr(info->root_desc, i);
      if (!att->attisdropped && strcmp(NameStr(att->attname), key_names[k]) == 0) info->key_attnums[k] = i + 1;
    }
    if (info->key_attnums[k] == 0)
      ereport(WARNING, (errmsg("pg_streams: key column \"%s\" of stream %s no longer exists", key_names[k], info->arn)));
  }
  int natts = info->root_desc->natts;
  info->json_names = static_cast<char**>(palloc0(sizeof(char*) * natts));
  info->json_name_lens = static_cast<int*>(palloc0(sizeof(int) * natts));
  info->name_lengths = static_cast<int*>(palloc0(sizeof(int) * natts));
  for (int i = 0; i < natts; ++i) {
    Form_pg_attribute att = TupleDescAttr(info->root_desc, i);
    if (att->attisdropped) continue;
    const char* name = NameStr(att->attname);
    int name_len = static_cast<int>(strlen(name));
    StringInfoData buf;
    initStringInfo(&buf);
    AppendJsonString(&buf, name, name_len);
    appendStringInfoCharMacro(&buf, ':');
    info->json_names[i] = buf.data;
    info->json_name_lens[i] = buf.len;
    info->name_lengths[i] = Utf8Length(name, name_len);
  }
  MemoryContextSwitchTo(old);
  e->cxt = cxt;
  e->info = info;
  e->valid = true;
}

}  // namespace

void StreamCacheInit(MemoryContext parent) {
  cache_parent = AllocSetContextCreate(parent, "pg_streams stream cache", ALLOCSET_DEFAULT_SIZES);
  HASHCTL ctl;
  ctl.keysize = sizeof(Oid);
  ctl.entrysize = sizeof(Entry);
  ctl.hcxt = cache_parent;
  cache = hash_create("pg_streams stream cache", 128, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
  if (!callback_registered) {
    CacheRegisterRelcacheCallback(InvalidateCallback, (Datum)0);
    callback_registered = true;
  }
}

void StreamCacheShutdown() {
  cache = nullptr;
  cache_parent = nullptr;
}

StreamInfo* StreamCacheLookup(Relation relation) {
  Oid relid = RelationGetRelid(relation);
  bool found;
  auto* e = static_cast<Entry*>(hash_search(cache, &relid, HASH_ENTER, &found));
  if (!found) {
    e->valid = false;
    e->cxt = nullptr;
    e->info = nullptr;
  }
  if (!e->valid) Build(e, relation);
  return e->info;
}

}  // namespace pgs::decoder
