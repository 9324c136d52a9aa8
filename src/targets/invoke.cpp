// streams._invoke_sql: one call of a SQL handler as a given role, exactly as
// a mapping calls it (targets/run_as.cpp), for streams.invoke.
#include "boundary/guard.hpp"
#include "targets/run_as.hpp"

extern "C" {
#include "utils/builtins.h"
#include "utils/jsonb.h"
}

// (caller oid, handler regprocedure, timeout_seconds int, event jsonb,
//  search_path text) -> jsonb
PGS_FUNCTION(pgs_invoke_sql) {
  Oid caller = PG_GETARG_OID(0);
  Oid handler = PG_GETARG_OID(1);
  int timeout_s = PG_GETARG_INT32(2);
  struct Args {
    char* event;
    char* search_path;
  };
  Args a = pgs::PgCall([&] {
    Jsonb* ev = PG_GETARG_JSONB_P(3);
    return Args{JsonbToCString(nullptr, &ev->root, VARSIZE(ev)), text_to_cstring(PG_GETARG_TEXT_PP(4))};
  });
  pgs::targets::SqlCall call{handler, a.event, nullptr};
  pgs::targets::UseSearchPathForUserCode(a.search_path);
  ErrorData* err = pgs::targets::CallSqlFunction(caller, timeout_s * 1000, &call);
  pgs::targets::UseSearchPathForUserCode(nullptr);
  if (err != nullptr) throw pgs::PgError(err);
  if (call.result == nullptr) PG_RETURN_NULL();
  return pgs::PgCall([&] { return DirectFunctionCall1(jsonb_in, CStringGetDatum(call.result)); });
}
