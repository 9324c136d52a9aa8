// Backfill messages: written by streams._backfill_emit in the backfilling
// session, read by the output plugin (see backfill.hpp).
#include "boundary/guard.hpp"
#include "decoder/backfill.hpp"

extern "C" {
#include "access/htup_details.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "replication/message.h"
#include "storage/proc.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"
}

namespace pgs::decoder {
namespace {

constexpr char kMagic[4] = {'P', 'G', 'B', '1'};

// magic, table oid, token; the row follows (at a MAXALIGNed offset).
struct MessageHeader {
  char magic[4];
  Oid relid;
  int64 token;
};
static_assert(sizeof(MessageHeader) == 16);

// What the current transaction of this backend may emit: set by
// streams._backfill_authorize (called by streams._backfill_chunk_begin
// after its checks), valid until the transaction ends.
struct Grant {
  LocalTransactionId lxid;
  Oid relid;
  int64 token;
};
Grant grant{InvalidLocalTransactionId, InvalidOid, 0};

int AttnumOf(TupleDesc desc, const char* name) {
  for (int i = 0; i < desc->natts; ++i) {
    Form_pg_attribute a = TupleDescAttr(desc, i);
    if (!a->attisdropped && strcmp(NameStr(a->attname), name) == 0) return i + 1;
  }
  return 0;
}

}  // namespace

bool IsBackfillGrantTable(Relation relation) {
  if (strcmp(RelationGetRelationName(relation), "backfill_grant") != 0) return false;
  char* nsp = get_namespace_name(RelationGetNamespace(relation));
  return nsp != nullptr && strcmp(nsp, "streams") == 0;
}

bool BackfillGrant(Relation relation, ReorderBufferChange* change, int32* stream_id, int64* token) {
  if (change->action != REORDER_BUFFER_CHANGE_INSERT && change->action != REORDER_BUFFER_CHANGE_UPDATE) return false;
  ReorderBufferTupleBuf* t = change->data.tp.newtuple;
  if (t == nullptr) return false;
  TupleDesc desc = RelationGetDescr(relation);
  int stream_att = AttnumOf(desc, "stream_id");
  int token_att = AttnumOf(desc, "chunk_token");
  if (stream_att == 0 || token_att == 0) return false;
  bool stream_null, token_null;
  Datum s = heap_getattr(&t->tuple, stream_att, desc, &stream_null);
  Datum k = heap_getattr(&t->tuple, token_att, desc, &token_null);
  if (stream_null || token_null) return false;
  *stream_id = DatumGetInt32(s);
  *token = DatumGetInt64(k);
  return true;
}

bool ParseBackfillMessage(const char* message, Size size, Oid* relid, int64* token, HeapTupleData* tuple) {
  if (size < sizeof(MessageHeader) + SizeofHeapTupleHeader) return false;
  MessageHeader h;
  memcpy(&h, message, sizeof(h));
  if (memcmp(h.magic, kMagic, sizeof(kMagic)) != 0) return false;
  Size len = size - sizeof(MessageHeader);
  auto* copy = static_cast<HeapTupleHeader>(palloc(len));
  memcpy(copy, message + sizeof(MessageHeader), len);
  if (copy->t_hoff > len || copy->t_hoff < SizeofHeapTupleHeader) return false;
  *relid = h.relid;
  *token = h.token;
  tuple->t_len = static_cast<uint32>(len);
  ItemPointerSetInvalid(&tuple->t_self);
  tuple->t_tableOid = h.relid;
  tuple->t_data = copy;
  return true;
}

namespace {

// PostgreSQL code only (palloc, ERROR); called through PgCall.
int64 Authorize(Oid relid) {
  int64 token = 0;
  while (token == 0)
    if (!pg_strong_random(&token, sizeof(token)))
      ereport(ERROR, (errmsg("pg_streams: could not generate a random backfill token")));
  grant = Grant{MyProc->lxid, relid, token};
  return token;
}

int RelationNatts(Oid relid) {
  HeapTuple tp = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
  if (!HeapTupleIsValid(tp)) return -1;
  int natts = reinterpret_cast<Form_pg_class>(GETSTRUCT(tp))->relnatts;
  ReleaseSysCache(tp);
  return natts;
}

Datum Emit(HeapTupleHeader row) {
  Oid relid = get_typ_typrelid(HeapTupleHeaderGetTypeId(row));
  if (grant.lxid != MyProc->lxid || !OidIsValid(relid) || relid != grant.relid)
    ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
                    errmsg("streams._backfill_emit may only be called by streams.backfill, with rows of the table "
                           "it backfills")));
  if (HeapTupleHeaderGetNatts(row) != RelationNatts(relid))
    ereport(ERROR, (errcode(ERRCODE_DATATYPE_MISMATCH),
                    errmsg("streams._backfill_emit: the row does not have the columns of table %s",
                           get_rel_name(relid))));
  Size len = HeapTupleHeaderGetDatumLength(row);
  char* buf = static_cast<char*>(palloc(sizeof(MessageHeader) + len));
  MessageHeader h;
  memcpy(h.magic, kMagic, sizeof(kMagic));
  h.relid = relid;
  h.token = grant.token;
  memcpy(buf, &h, sizeof(h));
  memcpy(buf + sizeof(h), row, len);
  LogLogicalMessage(kBackfillPrefix, buf, sizeof(h) + len, true);
  pfree(buf);
  return Int32GetDatum(1);
}

}  // namespace
}  // namespace pgs::decoder

// (tbl regclass) -> bigint: lets this transaction emit rows of tbl; returns
// the token its messages carry (to be written to the job row). Not granted
// to PUBLIC: only streams._backfill_chunk_begin calls it, after its checks.
PGS_FUNCTION(pgs_backfill_authorize) {
  Oid relid = PG_GETARG_OID(0);
  return pgs::PgCall([&] { return Int64GetDatum(pgs::decoder::Authorize(relid)); });
}

// (row record) -> integer (1): writes the row to WAL for the output plugin.
PGS_FUNCTION(pgs_backfill_emit) {
  return pgs::PgCall([&] {
    if (PG_ARGISNULL(0))
      ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("streams._backfill_emit: row is null")));
    return pgs::decoder::Emit(PG_GETARG_HEAPTUPLEHEADER(0));
  });
}
