// Backfill records (streams.backfill, src/sql/25_backfill.sql).
//
// A backfill chunk reads rows of a streamed table in its own transaction and
// passes each one to streams._backfill_emit, which writes it to WAL as a
// transactional logical message (prefix kBackfillPrefix: the table's oid,
// then the row as a heap tuple). The output plugin turns each message into an
// INSERT record of the table's stream with a userIdentity, positioned at the
// chunk's commit like any change of that transaction.
//
// Any role may write logical messages, so the plugin trusts one only in a
// transaction that wrote a row of streams.backfill_grant (which no role but the
// extension's own functions can write) earlier, only for that job's stream,
// and only with the random token that row holds: streams._backfill_emit
// puts it into its messages, and no role can read it (nor call the function
// that makes it), so no role can forge a message the plugin accepts.
#pragma once

#include "boundary/pg.hpp"

extern "C" {
#include "access/htup.h"
#include "replication/reorderbuffer.h"
#include "utils/rel.h"
}

namespace pgs::decoder {

inline constexpr char kBackfillPrefix[] = "pg_streams.backfill";
inline constexpr char kBackfillIdentity[] = "{\"type\":\"Service\",\"principalId\":\"pg_streams.backfill\"}";

// Whether `relation` is streams.backfill_grant.
bool IsBackfillGrantTable(Relation relation);

// The stream and token a change of streams.backfill_grant authorizes its
// transaction to backfill with; false when the change carries none.
bool BackfillGrant(Relation relation, ReorderBufferChange* change, int32* stream_id, int64* token);

// Reads a backfill message: the table's oid, the token and the row (a copy,
// in the current memory context). False when the message is malformed.
bool ParseBackfillMessage(const char* message, Size size, Oid* relid, int64* token, HeapTupleData* tuple);

}  // namespace pgs::decoder
