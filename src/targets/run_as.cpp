#include "targets/run_as.hpp"

extern "C" {
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "storage/latch.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "utils/acl.h"
#include "utils/guc.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/regproc.h"
#include "utils/resowner.h"
#include "utils/syscache.h"
#include "utils/timeout.h"
}

#include "worker/hooks.hpp"
#include "worker/shmem.hpp"

namespace pgs::targets {

namespace {
// The caller's context and resource owner while a kept-open call is pending.
MemoryContext open_cxt = nullptr;
ResourceOwner open_resowner = nullptr;

// A handler may catch the statement timeout's cancel (EXCEPTION WHEN
// query_canceled) and go on. Two timers of our own back the timeout up:
// at the deadline one notes that it passed (a call that returns after it
// is a timeout, whatever it returned); kKillGraceMs later the other ends the
// process (FATAL cannot be caught) after firing the call mark, so that the
// next dispatcher counts the call as timed out. Its work is rolled back.
constexpr int kKillGraceMs = 250;
TimeoutId deadline_timer = MAX_TIMEOUTS;
TimeoutId kill_timer = MAX_TIMEOUTS;
volatile sig_atomic_t deadline_passed = 0;

void OnDeadline() { deadline_passed = 1; }

void OnKillDeadline() {
  worker::FireCallMark();
  InterruptPending = true;
  ProcDiePending = true;
  SetLatch(MyLatch);
}

void StartTimers(int timeout_ms) {
  if (deadline_timer == MAX_TIMEOUTS) {
    deadline_timer = RegisterTimeout(USER_TIMEOUT, OnDeadline);
    kill_timer = RegisterTimeout(USER_TIMEOUT, OnKillDeadline);
  }
  deadline_passed = 0;
  EnableTimeoutParams timers[3] = {{STATEMENT_TIMEOUT, TMPARAM_AFTER, timeout_ms, 0},
                                   {deadline_timer, TMPARAM_AFTER, timeout_ms, 0},
                                   {kill_timer, TMPARAM_AFTER, timeout_ms + kKillGraceMs, 0}};
  enable_timeouts(timers, 3);
}

void StopTimers() {
  if (deadline_timer == MAX_TIMEOUTS) return;
  DisableTimeoutParams timers[3] = {{kill_timer, false}, {deadline_timer, false}, {STATEMENT_TIMEOUT, false}};
  disable_timeouts(timers, 3);
}

// The search_path user code sees: the database's (and worker role's)
// setting as the worker started, not the worker's own pg_catalog-only path.
char* user_search_path = nullptr;
}  // namespace

void UseSearchPathForUserCode(const char* path) {
  if (user_search_path != nullptr) pfree(user_search_path);
  user_search_path = path != nullptr ? MemoryContextStrdup(TopMemoryContext, path) : nullptr;
}

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
    // As PostgreSQL runs index expressions and REFRESH MATERIALIZED VIEW:
    // as the owner, security-restricted (no SET ROLE, no temporary objects,
    // no changes that outlive the call), every setting rolled back after it.
    int nest = NewGUCNestLevel();
    if (user_search_path != nullptr)
      (void)set_config_option("search_path", user_search_path, PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, 0,
                              false);
    SetUserIdAndSecContext(owner, save_sec | SECURITY_LOCAL_USERID_CHANGE | SECURITY_RESTRICTED_OPERATION);
    if (timeout_ms > 0) StartTimers(timeout_ms);
    fn(arg);
    if (timeout_ms > 0) {
      StopTimers();
      if (deadline_passed)
        ereport(ERROR, (errcode(ERRCODE_QUERY_CANCELED),
                        errmsg("canceling statement due to statement timeout"),
                        errdetail("The handler went on after its timeout of %d ms had canceled it.", timeout_ms)));
    }
    AtEOXact_GUC(false, nest);
    SetUserIdAndSecContext(save_user, save_sec);
    if (!keep_open) ReleaseCurrentSubTransaction();
  }
  PG_CATCH();
  {
    StopTimers();
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

// The handler as it is now (it may have been dropped, or its oid reused,
// since it was registered): a function of one jsonb or json argument
// returning jsonb, json or void. Anything else is the call's ERROR.
void CheckHandler(Oid handler, Oid* argtype, Oid* rettype) {
  if (handler == InvalidOid)  // streams._handler_oid found none
    ereport(ERROR, (errcode(ERRCODE_UNDEFINED_FUNCTION), errmsg("the handler function does not exist"),
                    errhint("It was dropped or renamed, or it belongs to another role than when the target was "
                            "created. A handler created again is used once the mapping is updated.")));
  HeapTuple tup = SearchSysCache1(PROCOID, ObjectIdGetDatum(handler));
  if (!HeapTupleIsValid(tup))
    ereport(ERROR, (errcode(ERRCODE_UNDEFINED_FUNCTION), errmsg("handler function (oid %u) does not exist", handler)));
  auto* p = reinterpret_cast<Form_pg_proc>(GETSTRUCT(tup));
  bool ok = p->prokind == PROKIND_FUNCTION && !p->proretset && p->pronargs == 1 &&
            (p->proargtypes.values[0] == JSONBOID || p->proargtypes.values[0] == JSONOID) &&
            (p->prorettype == JSONBOID || p->prorettype == JSONOID || p->prorettype == VOIDOID);
  *argtype = p->pronargs == 1 ? p->proargtypes.values[0] : InvalidOid;
  *rettype = p->prorettype;
  ReleaseSysCache(tup);
  if (!ok)
    ereport(ERROR, (errcode(ERRCODE_WRONG_OBJECT_TYPE),
                    errmsg("handler %s must be a function taking one jsonb (or json) argument and returning jsonb, "
                           "json or void",
                           format_procedure(handler))));
}

void CallHandler(void* p) {
  auto* call = static_cast<SqlCall*>(p);
  Oid argtype, rettype;
  CheckHandler(call->handler, &argtype, &rettype);
  if (pg_proc_aclcheck(call->handler, GetUserId(), ACL_EXECUTE) != ACLCHECK_OK)
    ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
                    errmsg("permission denied for function %s", format_procedure(call->handler)),
                    errdetail("Handlers run as the owner of the event source mapping.")));
  Datum arg = argtype == JSONBOID ? DirectFunctionCall1(jsonb_in, CStringGetDatum(call->arg_json))
                                  : CStringGetTextDatum(call->arg_json);
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
  appendStringInfo(&sql, "INSERT INTO %s (record) VALUES ($1::pg_catalog.jsonb)",
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
