#include "worker/work.hpp"

extern "C" {
#include "commands/extension.h"
#include "pgstat.h"
#include "utils/snapmgr.h"
}

namespace pgs::worker {

void BeginWork() {
  SetCurrentStatementStartTimestamp();
  StartTransactionCommand();
  PushActiveSnapshot(GetTransactionSnapshot());
}

void EndWork() {
  PopActiveSnapshot();
  CommitTransactionCommand();
  pgstat_report_stat(false);
}

bool ExtensionInstalled() { return OidIsValid(get_extension_oid("pg_streams", true)); }

}  // namespace pgs::worker
