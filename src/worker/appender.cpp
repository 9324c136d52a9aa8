// The appender: receives decoded records from its capture worker and appends
// transactions, each append committing with the replication origin
// advanced to the end of its last transaction (see capture.cpp). A
// transaction bigger than a batch is appended in pieces; each piece records
// in streams.partial_append how far its transaction is appended, and the
// origin moves past the transaction with its last piece (batch.cpp).
#include <malloc.h>

#include "worker/batch.hpp"
#include "worker/hooks.hpp"
#include "worker/pipeline.hpp"
#include "worker/shmem.hpp"

extern "C" {
#include "access/xact.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/dsm.h"
#include "storage/ipc.h"
#include "storage/proc.h"
#include "storage/shm_mq.h"
#include "storage/shm_toc.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/resowner.h"
}

namespace pgs::worker {
namespace {

PipelineShared* shared = nullptr;

void AppendAndReport() {
  // The extension is gone: stop; the capture worker cleans up.
  if (!BatchAppend()) proc_exit(0);
  SpinLockAcquire(&shared->mutex);
  shared->appended_upto = BatchEnd();
  shared->append_commit_end = XactLastCommitEnd;
  SpinLockRelease(&shared->mutex);
  SetLatch(shared->capture_latch);  // the slot may advance
  const int32* streams;
  int n = BatchAppendedStreams(&streams);
  WakeStreams(shared->dbid, streams, n);  // new records to deliver
}

}  // namespace
}  // namespace pgs::worker

void pgs_append_main(Datum arg) {
  using namespace pgs::worker;
  pqsignal(SIGTERM, die);
  pqsignal(SIGHUP, SignalHandlerForConfigReload);
  BackgroundWorkerUnblockSignals();
  am_capture_worker = true;  // it wakes the capture worker itself after each append
  // Batches of up to 16 MB are built and freed again and again: keep that
  // memory in the process instead of mapping it anew (and faulting it in) each time.
  mallopt(M_MMAP_THRESHOLD, 64 * 1024 * 1024);
  mallopt(M_TRIM_THRESHOLD, 256 * 1024 * 1024);
  CurrentResourceOwner = ResourceOwnerCreate(nullptr, "pg_streams appender");
  dsm_segment* seg = dsm_attach(DatumGetUInt32(arg));
  if (seg == nullptr) proc_exit(0);  // the capture worker is gone already
  shm_toc* toc = shm_toc_attach(kPipelineMagic, dsm_segment_address(seg));
  if (toc == nullptr) elog(ERROR, "pg_streams: bad capture pipeline segment");
  shared = static_cast<PipelineShared*>(shm_toc_lookup(toc, kTocShared, false));
  auto* mq = static_cast<shm_mq*>(shm_toc_lookup(toc, kTocQueue, false));
  shm_mq_set_receiver(mq, MyProc);
  shm_mq_handle* mqh = shm_mq_attach(mq, seg, nullptr);

  BackgroundWorkerInitializeConnectionByOid(shared->dbid, InvalidOid, 0);
  pgstat_report_appname("pg_streams append");
  // A batch (up to 16 MB of records) is unnested in memory, not in temp files.
  SetConfigOption("work_mem", "65536", PGC_SUSET, PGC_S_OVERRIDE);
  // No WAL flush per append: the capture worker moves the slot only past
  // appends that are flushed (a crash loses an unflushed append together with
  // its origin progress, and decoding restarts before it).
  SetConfigOption("synchronous_commit", "off", PGC_SUSET, PGC_S_OVERRIDE);
  replorigin_session_setup(shared->origin);
  replorigin_session_origin = shared->origin;
  BatchInit();

  for (;;) {
    CHECK_FOR_INTERRUPTS();
    if (ConfigReloadPending) {
      ConfigReloadPending = false;
      ProcessConfigFile(PGC_SIGHUP);
    }
    // Block only when nothing is ready to be appended; append once the queue
    // runs empty (the capture worker flushes it at the end of each pass).
    bool ready = BatchPending() && BatchAtTransactionEnd();
    Size nbytes;
    void* data;
    shm_mq_result res = shm_mq_receive(mqh, &nbytes, &data, ready);
    if (res == SHM_MQ_DETACHED) proc_exit(0);  // the capture worker stopped
    if (res == SHM_MQ_WOULD_BLOCK) {
      AppendAndReport();
      continue;
    }
    auto kind = *static_cast<MessageKind*>(data);
    if (kind == MessageKind::kRecord && nbytes >= sizeof(RecordMessage)) {
      RecordMessage m;
      memcpy(&m, data, sizeof(m));
      BatchAdd(m.stream_id, m.shard, m.commit_lsn, m.change_index, m.commit_time,
               static_cast<const char*>(data) + sizeof(m), static_cast<int>(nbytes - sizeof(m)));
      // A transaction bigger than a batch goes in pieces: memory stays bounded.
      if (BatchPieceDue()) AppendAndReport();
    } else if (kind == MessageKind::kFlush && nbytes == 1) {
      // the end of a decoding pass: nothing to do
    } else if (kind == MessageKind::kCommit && nbytes == sizeof(CommitMessage)) {
      CommitMessage m;
      memcpy(&m, data, sizeof(m));
      BatchCommit(m.end_lsn, m.commit_time, m.catalog_changes);
      if (BatchFull()) AppendAndReport();
    } else {
      elog(ERROR, "pg_streams: malformed message from the capture worker");
    }
  }
}
