// Running user code for a mapping: in a subtransaction, as the mapping's
// owner (never as the worker's superuser), with GUC changes undone and an
// optional timeout. Plain C-style code: ERRORs are caught here, inside the
// subtransaction, and returned; no C++ object lives across them.
#pragma once

#include "boundary/pg.hpp"

namespace pgs::targets {

// Runs fn(arg); returns nullptr when it completed (its work is kept in the
// enclosing transaction), or the error it raised (its work rolled back),
// copied into the caller's memory context.
ErrorData* RunAsOwner(Oid owner, int timeout_ms, void (*fn)(void*), void* arg, bool keep_open = false) noexcept;

// handler(arg::jsonb) as a SQL function target. result: its return value as
// JSON text (palloc'd), or nullptr for NULL/void.
struct SqlCall {
  Oid handler;
  const char* arg_json;
  char* result;
};
// keep_open: on success the subtransaction stays open until EndCall(commit),
// so the caller can still undo the function's work after reading its result.
ErrorData* CallSqlFunction(Oid owner, int timeout_ms, SqlCall* call, bool keep_open = false) noexcept;
void EndCall(bool commit);

// The search_path user code runs with (the worker's own SQL uses
// pg_catalog, pg_temp): set when the worker starts, or around one call;
// nullptr: the current one.
void UseSearchPathForUserCode(const char* path);

// INSERT INTO table (record) VALUES (json::jsonb) as owner.
ErrorData* InsertRecordRow(Oid owner, Oid table, const char* json) noexcept;

}  // namespace pgs::targets
