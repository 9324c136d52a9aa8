#include "worker/hooks.hpp"
#include "worker/shmem.hpp"

extern "C" {
#include "catalog/namespace.h"
#include "commands/dbcommands.h"
#include "commands/defrem.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "nodes/parsenodes.h"
#include "replication/origin.h"
#include "tcop/utility.h"
#include "utils/fmgrprotos.h"
#include "utils/lsyscache.h"
}

namespace pgs::worker {

bool am_capture_worker = false;
bool wake_only_for_user_work = false;

namespace {

ProcessUtility_hook_type prev_utility = nullptr;
bool pending_start = false;    // this transaction created pg_streams
bool pending_recheck = false;  // this transaction dropped pg_streams
bool pending_mappings = false; // this transaction changed mappings or targets
bool wrote = false;
bool user_work = false;  // this transaction ran user code (see NoteUserWork)

// Databases to hand back to the launcher when this transaction ends: their
// worker was stopped for DROP/CREATE/ALTER DATABASE, or they were created.
constexpr int kMaxDeferred = 4;
Oid release_at_end[kMaxDeferred];
int n_release = 0;
Oid start_at_commit[kMaxDeferred];
int n_start = 0;

void Defer(Oid* list, int* n, Oid dbid) {
  if (*n < kMaxDeferred) list[(*n)++] = dbid;
}

constexpr int kStopTimeoutMs = 10000;

void XactCallback(XactEvent event, void*) {
  switch (event) {
    case XACT_EVENT_PRE_COMMIT:
      wrote = TransactionIdIsValid(GetTopTransactionIdIfAny());
      break;
    case XACT_EVENT_COMMIT:
      if (wrote && !am_capture_worker && (!wake_only_for_user_work || user_work)) WakeCapture(MyDatabaseId);
      if (pending_start) RequestStart(MyDatabaseId);
      if (pending_recheck) RequestRecheck(MyDatabaseId);
      if (pending_mappings) MappingsChanged(MyDatabaseId);
      for (int i = 0; i < n_start; ++i) RequestStart(start_at_commit[i]);
      for (int i = 0; i < n_release; ++i) ReleaseHoldOff(release_at_end[i]);
      wrote = user_work = pending_start = pending_recheck = pending_mappings = false;
      n_start = n_release = 0;
      break;
    case XACT_EVENT_ABORT:
      for (int i = 0; i < n_release; ++i) ReleaseHoldOff(release_at_end[i]);
      wrote = user_work = pending_start = pending_recheck = pending_mappings = false;
      n_start = n_release = 0;
      break;
    default:
      break;
  }
}

}  // namespace

void NoteMappingsChanged() { pending_mappings = true; }

void NoteUserWork() { user_work = true; }

namespace {

// A session that creates pg_streams or copies rows into its tables may be
// restoring a dump: it holds this advisory lock (shared, until it ends), and
// the capture worker rebinds restored streams only once nobody holds it
// (streams._rebind_restored, which uses the same keys).
constexpr int32 kRestoreLockKey1 = 1885827956;  // 'pgst'
constexpr int32 kRestoreLockKey2 = 1;
bool holds_restore_lock = false;

void HoldRestoreLock() {
  if (holds_restore_lock) return;
  (void)DirectFunctionCall2(pg_advisory_lock_shared_int4, Int32GetDatum(kRestoreLockKey1),
                            Int32GetDatum(kRestoreLockKey2));
  holds_restore_lock = true;
}

bool CopiesIntoStreams(CopyStmt* stmt) {
  return stmt->is_from && stmt->relation != nullptr && stmt->relation->schemaname != nullptr &&
         strcmp(stmt->relation->schemaname, "streams") == 0;
}

bool NamesPgStreams(List* objects) {
  ListCell* lc;
  foreach (lc, objects) {
    Node* n = static_cast<Node*>(lfirst(lc));
    if (IsA(n, String) && strcmp(strVal(n), "pg_streams") == 0) return true;
  }
  return false;
}

// Refuses TRUNCATE of a table whose stream (or an ancestor's) is on: the
// removed rows would leave no REMOVE records.
void CheckTruncate(TruncateStmt* stmt) {
  if (!OidIsValid(get_extension_oid("pg_streams", true))) return;
  ListCell* lc;
  foreach (lc, stmt->relations) {
    auto* rv = static_cast<RangeVar*>(lfirst(lc));
    Oid relid = RangeVarGetRelid(rv, NoLock, true);
    if (!OidIsValid(relid)) continue;
    if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "pg_streams: SPI_connect failed");
    Oid types[1] = {OIDOID};
    Datum args[1] = {ObjectIdGetDatum(relid)};
    int rc = SPI_execute_with_args(
        "SELECT 1 FROM streams.stream WHERE status = 'ENABLED' AND (relid = $1 OR relid IN "
        "(SELECT relid FROM pg_catalog.pg_partition_tree($1) UNION SELECT relid FROM pg_catalog.pg_partition_ancestors($1)))"
        // A stream restored from a dump captures nothing until it is rebound
        // (pg_restore -j truncates each table it has just created before loading it).
        " AND pg_catalog.to_regclass(pg_catalog.format('streams.%I', 'record_' || stream_id)) IS NOT NULL",
        1, types, args, nullptr, true, 1);
    bool streamed = rc == SPI_OK_SELECT && SPI_processed > 0;
    SPI_finish();
    if (streamed)
      ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                      errmsg("cannot truncate table \"%s\": it has a stream", rv->relname),
                      errdetail("TRUNCATE removes rows without REMOVE records, so stream readers would miss them."),
                      errhint("Use DELETE to stream the removals, or call streams.disable_stream first.")));
  }
}

// Databases whose capture worker must go away for this statement to work.
Oid DatabaseToStop(Node* parsetree, Oid* also_start) {
  *also_start = InvalidOid;
  if (IsA(parsetree, DropdbStmt)) return get_database_oid(castNode(DropdbStmt, parsetree)->dbname, true);
  if (IsA(parsetree, CreatedbStmt)) {
    ListCell* lc;
    foreach (lc, castNode(CreatedbStmt, parsetree)->options) {
      auto* opt = static_cast<DefElem*>(lfirst(lc));
      if (strcmp(opt->defname, "template") == 0 && opt->arg != nullptr)
        return get_database_oid(defGetString(opt), true);
    }
    return InvalidOid;
  }
  if (IsA(parsetree, AlterDatabaseStmt)) {
    auto* stmt = castNode(AlterDatabaseStmt, parsetree);
    ListCell* lc;
    foreach (lc, stmt->options) {
      if (strcmp(static_cast<DefElem*>(lfirst(lc))->defname, "tablespace") == 0)
        return get_database_oid(stmt->dbname, true);
    }
  }
  return InvalidOid;
}

void UtilityHook(PlannedStmt* pstmt, const char* query_string, bool read_only_tree, ProcessUtilityContext context,
                 ParamListInfo params, QueryEnvironment* query_env, DestReceiver* dest, QueryCompletion* qc) {
  Node* parsetree = pstmt->utilityStmt;
  if (IsA(parsetree, CreateExtensionStmt) && strcmp(castNode(CreateExtensionStmt, parsetree)->extname, "pg_streams") == 0) {
    pending_start = true;
    HoldRestoreLock();
  }
  if (IsA(parsetree, CopyStmt) && CopiesIntoStreams(castNode(CopyStmt, parsetree))) HoldRestoreLock();
  if (IsA(parsetree, DropStmt) && castNode(DropStmt, parsetree)->removeType == OBJECT_EXTENSION &&
      NamesPgStreams(castNode(DropStmt, parsetree)->objects))
    pending_recheck = true;
  if (IsA(parsetree, TruncateStmt)) CheckTruncate(castNode(TruncateStmt, parsetree));

  Oid ignored;
  Oid stop = DatabaseToStop(parsetree, &ignored);
  auto run = [&]() {
    if (prev_utility)
      prev_utility(pstmt, query_string, read_only_tree, context, params, query_env, dest, qc);
    else
      standard_ProcessUtility(pstmt, query_string, read_only_tree, context, params, query_env, dest, qc);
  };
  if (!OidIsValid(stop)) {
    run();
  } else {
    PG_TRY();
    {
      if (!HoldOffAndStop(stop, kStopTimeoutMs))
        ereport(WARNING, (errmsg("pg_streams: the capture worker of database %u did not stop in time", stop)));
      if (IsA(parsetree, DropdbStmt)) {
        // Replication origins are cluster-wide: drop this database's with it.
        char name[NAMEDATALEN];
        snprintf(name, sizeof(name), "pg_streams_%u", stop);
        replorigin_drop_by_name(name, true, false);
      }
      run();
    }
    PG_CATCH();
    {
      ReleaseHoldOff(stop);
      PG_RE_THROW();
    }
    PG_END_TRY();
    // Only once the statement's transaction has ended may a worker connect again.
    Defer(release_at_end, &n_release, stop);
  }
  if (IsA(parsetree, CreatedbStmt)) {
    // A copy of a database with pg_streams needs its own worker.
    Oid created = get_database_oid(castNode(CreatedbStmt, parsetree)->dbname, true);
    if (OidIsValid(created)) Defer(start_at_commit, &n_start, created);
  }
}

}  // namespace

void InstallBackendHooks() {
  RegisterXactCallback(XactCallback, nullptr);
  prev_utility = ProcessUtility_hook;
  ProcessUtility_hook = UtilityHook;
}

}  // namespace pgs::worker
