#include "targets/run_as.hpp"

extern "C" {
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "utils/acl.h"
#include "utils/guc.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/regproc.h"
#include "utils/resowner.h"
#include "utils/timeout.h"
}

#include "worker/hooks.hpp"

namespace pgs::targets {

namespace {
// The caller's context and resource owner while a kept-open call is pending.
MemoryContext open_cxt = nullptr;
ResourceOwner open_resowner = nullptr;
}  // namespace

ErrorData* RunAsOwner(Oid owner, int timeout_ms, void (*fn)(void*), void* arg, bool keep_open) noexcept {
  MemoryContext cxt = CurrentMemoryContext;
  ResourceOwner resowner = CurrentResourceOwner;
  Oid save_user;
  int save_sec;
  GetUserIdAndSecContext(&save_user, &save_sec);
  worker::NoteUserWork();  // what it writes may be streamed: wake capture at commit
  BeginInternalSubTransaction(nullptr);
  MemoryContextSwitchTo(cxt);
  ErrorData* volatile err = nullptr;
  PG_TRY();
  {
    int nest = NewGUCNestLevel();
    SetUserIdAndSecContext(owner, save_sec | SECURITY_LOCAL_USERID_CHANGE);
    if (timeout_ms > 0) enable_timeout_after(STATEMENT_TIMEOUT, timeout_ms);
    fn(arg);
    if (timeout_ms > 0) disable_timeout(STATEMENT_TIMEOUT, false);
    AtEOXact_GUC(true, nest);
    SetUserIdAndSecContext(save_user, save_sec);
    if (!keep_open) ReleaseCurrentSubTransaction();
  }
  PG_CATCH();
  {
    disable_timeout(STATEMENT_TIMEOUT, false);
    MemoryContextSwitchTo(cxt);
    err = CopyErrorData();
    FlushErrorState();
    // Also restores the user id and the GUCs of before the subtransaction.
    RollbackAndReleaseCurrentSubTransaction();
  }
  PG_END_TRY();
  MemoryContextSwitchTo(cxt);
  QueryCancelPending = false;  // a timeout that fired as fn returned
  if (keep_open && err == nullptr) {
    open_cxt = cxt;
    open_resowner = resowner;
  } else {
    CurrentResourceOwner = resowner;
  }
  return err;
}

void EndCall(bool commit) {
  if (commit)
    ReleaseCurrentSubTransaction();
  else
    RollbackAndReleaseCurrentSubTransaction();
  MemoryContextSwitchTo(open_cxt);
  CurrentResourceOwner = open_resowner;
}

namespace {

void CallHandler(void* p) {
  auto* call = static_cast<SqlCall*>(p);
  if (pg_proc_aclcheck(call->handler, GetUserId(), ACL_EXECUTE) != ACLCHECK_OK)
    ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
                    errmsg("permission denied for function %s", format_procedure(call->handler)),
                    errdetail("Handlers run as the owner of the event source mapping.")));
  Oid rettype = get_func_rettype(call->handler);
  if (rettype != JSONBOID && rettype != JSONOID && rettype != VOIDOID)
    ereport(ERROR, (errmsg("handler %s must return jsonb, json or void", format_procedure(call->handler))));
  Datum arg = DirectFunctionCall1(jsonb_in, CStringGetDatum(call->arg_json));
  FmgrInfo flinfo;
  fmgr_info(call->handler, &flinfo);
  LOCAL_FCINFO(fcinfo, 1);
  InitFunctionCallInfoData(*fcinfo, &flinfo, 1, InvalidOid, nullptr, nullptr);
  fcinfo->args[0].value = arg;
  fcinfo->args[0].isnull = false;
  Datum r = FunctionCallInvoke(fcinfo);
  call->result = nullptr;
  if (fcinfo->isnull || rettype == VOIDOID) return;
  if (rettype == JSONBOID) {
    Jsonb* jb = DatumGetJsonbP(r);
    call->result = JsonbToCString(nullptr, &jb->root, VARSIZE(jb));
  } else {
    call->result = TextDatumGetCString(r);
  }
}

struct RowInsert {
  Oid table;
  const char* json;
};

void InsertRow(void* p) {
  auto* ins = static_cast<RowInsert*>(p);
  char* relname = get_rel_name(ins->table);
  if (relname == nullptr) ereport(ERROR, (errmsg("the OnFailure destination table (oid %u) no longer exists", ins->table)));
  StringInfoData sql;
  initStringInfo(&sql);
  appendStringInfo(&sql, "INSERT INTO %s (record) VALUES ($1::jsonb)",
                   quote_qualified_identifier(get_namespace_name(get_rel_namespace(ins->table)), relname));
  if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "pg_streams: SPI_connect failed");
  Oid types[1] = {TEXTOID};
  Datum values[1] = {CStringGetTextDatum(ins->json)};
  int rc = SPI_execute_with_args(sql.data, 1, types, values, nullptr, false, 0);
  if (rc != SPI_OK_INSERT) elog(ERROR, "pg_streams: could not write the failure record: %s", SPI_result_code_string(rc));
  SPI_finish();
}

}  // namespace

ErrorData* CallSqlFunction(Oid owner, int timeout_ms, SqlCall* call, bool keep_open) noexcept {
  return RunAsOwner(owner, timeout_ms, CallHandler, call, keep_open);
}

ErrorData* InsertRecordRow(Oid owner, Oid table, const char* json) noexcept {
  RowInsert ins{table, json};
  return RunAsOwner(owner, 0, InsertRow, &ins);
}

}  // namespace pgs::targets
