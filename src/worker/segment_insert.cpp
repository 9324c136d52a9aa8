#include <cstring>

#include "worker/segment_insert.hpp"

extern "C" {
#include "access/genam.h"
#include "access/heapam.h"
#include "access/hio.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/index.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "nodes/execnodes.h"
#include "storage/bufmgr.h"
#include "storage/lmgr.h"
#include "storage/proc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
}

namespace pgs::worker {

struct Segment {
  int32 stream_id;
  int64 segment;
  Relation rel;
  int nindexes;
  Relation* indexes;
  IndexInfo** infos;
  // The page last inserted into stays pinned between rows; no buffer access
  // strategy: the pages just written are the ones dispatchers read next.
  BulkInsertStateData bistate;
};

namespace {

// streams.record_batch's columns; a segment is created LIKE it.
struct Column {
  const char* name;
  Oid type;
};
constexpr Column kColumns[] = {
    {"stream_id", INT4OID},  {"shard", INT4OID},       {"first_lsn", INT8OID},
    {"first_idx", INT4OID},  {"last_lsn", INT8OID},    {"last_idx", INT4OID},
    {"arrival", TIMESTAMPTZOID}, {"n_records", INT4OID}, {"lsns", INT8ARRAYOID},
    {"idxs", INT4ARRAYOID},  {"arrivals", TIMESTAMPTZARRAYOID}, {"records", TEXTARRAYOID},
};
constexpr int kNumColumns = sizeof(kColumns) / sizeof(kColumns[0]);

// The segments open in the current transaction (identified by its local id:
// after an abort, the list and its memory are gone with the transaction).
Segment** open_segments = nullptr;
int n_open = 0;
int open_capacity = 0;
LocalTransactionId open_lxid = InvalidLocalTransactionId;

void CheckLayout(Relation rel) {
  TupleDesc desc = RelationGetDescr(rel);
  bool ok = desc->natts == kNumColumns && rel->rd_rel->relkind == RELKIND_RELATION;
  for (int i = 0; ok && i < kNumColumns; ++i) {
    Form_pg_attribute a = TupleDescAttr(desc, i);
    ok = !a->attisdropped && a->atttypid == kColumns[i].type && strcmp(NameStr(a->attname), kColumns[i].name) == 0;
  }
  if (!ok)
    ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                    errmsg("pg_streams: storage segment streams.%s does not have the columns of streams.record_batch",
                           RelationGetRelationName(rel))));
}

void OpenIndexes(Segment* s) {
  List* ids = RelationGetIndexList(s->rel);
  s->indexes = static_cast<Relation*>(palloc(sizeof(Relation) * (list_length(ids) + 1)));
  s->infos = static_cast<IndexInfo**>(palloc(sizeof(IndexInfo*) * (list_length(ids) + 1)));
  s->nindexes = 0;
  ListCell* lc;
  foreach (lc, ids) {
    Relation index = index_open(lfirst_oid(lc), RowExclusiveLock);
    IndexInfo* info = BuildIndexInfo(index);
    if (info->ii_Expressions != NIL || info->ii_Predicate != NIL || info->ii_ExclusionOps != nullptr)
      ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                      errmsg("pg_streams: index %s on storage segment streams.%s has expressions, a predicate or "
                             "exclusion constraints",
                             RelationGetRelationName(index), RelationGetRelationName(s->rel))));
    s->indexes[s->nindexes] = index;
    s->infos[s->nindexes] = info;
    ++s->nindexes;
  }
  list_free(ids);
}

}  // namespace

Segment* OpenSegment(int32 stream_id, int64 segment, int32 width) {
  if (open_lxid != MyProc->lxid) {
    open_segments = nullptr;
    n_open = open_capacity = 0;
    open_lxid = MyProc->lxid;
  }
  for (int i = 0; i < n_open; ++i)
    if (open_segments[i]->stream_id == stream_id && open_segments[i]->segment == segment) return open_segments[i];

  MemoryContext old = MemoryContextSwitchTo(CurTransactionContext);
  char name[NAMEDATALEN];
  snprintf(name, sizeof(name), "record_%d_%lld", stream_id, static_cast<long long>(segment * width));
  Oid relid = get_relname_relid(name, get_namespace_oid("streams", false));
  // Locked, then looked up again: a segment dropped meanwhile is not opened.
  Relation rel = OidIsValid(relid) ? try_table_open(relid, RowExclusiveLock) : nullptr;
  if (rel == nullptr || !rel->rd_rel->relispartition)
    ereport(ERROR, (errcode(ERRCODE_UNDEFINED_TABLE),
                    errmsg("pg_streams: storage segment streams.%s of stream %d is missing", name, stream_id)));
  CheckLayout(rel);
  auto* s = static_cast<Segment*>(palloc0(sizeof(Segment)));
  s->stream_id = stream_id;
  s->segment = segment;
  s->rel = rel;
  s->bistate.strategy = nullptr;
  s->bistate.current_buf = InvalidBuffer;
  OpenIndexes(s);
  if (n_open == open_capacity) {
    open_capacity = open_capacity == 0 ? 8 : open_capacity * 2;
    open_segments = open_segments == nullptr
                        ? static_cast<Segment**>(palloc(sizeof(Segment*) * open_capacity))
                        : static_cast<Segment**>(repalloc(open_segments, sizeof(Segment*) * open_capacity));
  }
  open_segments[n_open++] = s;
  MemoryContextSwitchTo(old);
  return s;
}

void SegmentInsert(Segment* s, Datum* values, bool* nulls) {
  HeapTuple tuple = heap_form_tuple(RelationGetDescr(s->rel), values, nulls);
  // Segments only grow (retention drops them whole): no free space to look for.
  heap_insert(s->rel, tuple, GetCurrentCommandId(true), HEAP_INSERT_SKIP_FSM, &s->bistate);
  for (int i = 0; i < s->nindexes; ++i) {
    IndexInfo* info = s->infos[i];
    if (!info->ii_ReadyForInserts) continue;
    Datum key[INDEX_MAX_KEYS];
    bool key_nulls[INDEX_MAX_KEYS];
    for (int k = 0; k < info->ii_NumIndexAttrs; ++k) {
      AttrNumber a = info->ii_IndexAttrNumbers[k];
      key[k] = values[a - 1];
      key_nulls[k] = nulls[a - 1];
    }
    Relation index = s->indexes[i];
    index_insert(index, key, key_nulls, &tuple->t_self, s->rel,
                 index->rd_index->indisunique ? UNIQUE_CHECK_YES : UNIQUE_CHECK_NO, false, info);
  }
  heap_freetuple(tuple);
}

void CloseSegments() {
  if (open_lxid != MyProc->lxid) return;
  for (int i = 0; i < n_open; ++i) {
    Segment* s = open_segments[i];
    if (s->bistate.current_buf != InvalidBuffer) ReleaseBuffer(s->bistate.current_buf);
    for (int k = 0; k < s->nindexes; ++k) index_close(s->indexes[k], NoLock);
    table_close(s->rel, NoLock);
    pfree(s->indexes);
    pfree(s->infos);
    pfree(s);
  }
  if (open_segments != nullptr) pfree(open_segments);
  open_segments = nullptr;
  n_open = open_capacity = 0;
  open_lxid = InvalidLocalTransactionId;
}

}  // namespace pgs::worker
