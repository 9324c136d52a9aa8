#include "dispatch/dispatcher.hpp"

#include <algorithm>
#include <climits>

#include "boundary/guard.hpp"
#include "boundary/spi.hpp"
#include "dispatch/event.hpp"
#include "dispatch/policy.hpp"
#include "targets/run_as.hpp"
#include "worker/work.hpp"

namespace pgs::dispatch {
namespace {

constexpr size_t kMaxPayload = 6 * 1024 * 1024;  // Lambda's synchronous payload limit
constexpr int kMaxBatchRecords = 10000;
constexpr int64_t kIdle = INT64_MAX / 4;

void Begin() { PgCall([] { worker::BeginWork(); }); }
void Commit() { PgCall([] { worker::EndWork(); }); }

std::string ErrorText(ErrorData* e) {
  return PgCall([&] { return e->message != nullptr ? pstrdup(e->message) : pstrdup("error"); });
}

}  // namespace

bool Dispatcher::Reload() {
  Begin();
  bool ok;
  {
    if (!PgCall([] { return worker::ExtensionInstalled(); })) {
      Commit();
      return false;
    }
    spi::Session spi;
    ok = LoadMapping(mapping_id_, &cfg_);
    if (ok && !cfg_.enabled) {
      SetMappingState(mapping_id_, "Disabled");
      ok = false;
    } else if (ok) {
      if (cfg_.state != "Enabled") SetMappingState(mapping_id_, "Enabled");
      std::vector<ShardState> loaded = LoadShards(mapping_id_);
      std::vector<Shard> shards;
      for (auto& st : loaded) {
        Shard sh;
        // Keep the timing of shards already known; their durable state is
        // only written by this process, so memory and table agree.
        for (auto& old : shards_)
          if (old.state.shard == st.shard) sh = old;
        sh.state = std::move(st);
        sh.due_us = 0;
        shards.push_back(std::move(sh));
      }
      shards_ = std::move(shards);
    }
  }
  Commit();
  return ok;
}

void Dispatcher::Woken() {
  int64_t now = NowUs();
  for (auto& sh : shards_) sh.due_us = std::min(sh.due_us, now);
}

int64_t Dispatcher::RunDue() {
  int64_t next = kIdle;
  for (auto& sh : shards_) {
    int64_t now = NowUs();
    if (sh.due_us <= now) Step(sh, now);
    next = std::min(next, sh.due_us - NowUs());
  }
  return std::max<int64_t>(next, 0);
}

void Dispatcher::NextBatch(ShardState& s) {
  if (s.pending.empty()) {
    s.batch_end.reset();
  } else {
    s.batch_end = s.pending.back();
    s.pending.pop_back();
  }
  s.attempts = 0;
  s.retry_at_us = 0;
}

void Dispatcher::SetResult(const char* result) {
  if (cfg_.last_result == result) return;
  SetLastResult(mapping_id_, result);
  cfg_.last_result = result;
}

bool Dispatcher::SendToFailureDestination(Shard& sh, const std::vector<Record>& records, size_t from, size_t to,
                                          const char* condition, int invoke_count, bool has_response,
                                          const std::optional<std::string>& function_error, StepStats& stats) {
  FailureInfo info;
  info.request_id = RandomUuid();
  info.function_arn = cfg_.function_arn;
  info.condition = condition;
  info.invoke_count = invoke_count;
  info.has_response = has_response;
  info.function_error = function_error;
  info.now_us = NowUs();
  info.shard_id = sh.state.shard_id;
  info.stream_arn = cfg_.stream_arn;
  std::string doc = BuildFailureRecord(info, records, from, to);
  ErrorData* err = nullptr;
  if (cfg_.dest_table != 0) {
    err = PgCall([&] { return targets::InsertRecordRow(cfg_.owner, cfg_.dest_table, doc.c_str()); });
  } else if (!cfg_.dest_function.empty()) {
    if (cfg_.dest_handler == 0) {
      stats.error = "OnFailure destination function " + cfg_.dest_function + " does not exist";
      return false;
    }
    targets::SqlCall call{cfg_.dest_handler, doc.c_str(), nullptr};
    err = PgCall([&] { return targets::CallSqlFunction(cfg_.owner, cfg_.dest_timeout_ms, &call); });
  } else {
    std::string first = SequenceNumber(records[from].pos), last = SequenceNumber(records[to - 1].pos);
    PgCall([&] {
      ereport(LOG, (errmsg("pg_streams: event source mapping %s discarded %zu records of %s (%s to %s): %s",
                               cfg_.uuid.c_str(), to - from, sh.state.shard_id.c_str(), first.c_str(), last.c_str(),
                               condition),
                        errhint("Set DestinationConfig.OnFailure.Destination to keep failed batches.")));
    });
    ++stats.discarded_batches;
    stats.failed_records += static_cast<int64_t>(to - from);
    return true;
  }
  if (err != nullptr) {
    stats.error = "OnFailure destination: " + ErrorText(err);
    return false;
  }
  ++stats.failed_batches;
  stats.failed_records += static_cast<int64_t>(to - from);
  return true;
}

void Dispatcher::Step(Shard& sh, int64_t now) {
  Begin();
  {
    spi::Session spi;
    StepInTransaction(sh, now);
  }
  Commit();
}

void Dispatcher::StepInTransaction(Shard& sh, int64_t now) {
  ShardState& s = sh.state;
  StepStats stats;
  bool invoked = false;
  sh.due_us = kIdle;

  std::vector<Record> records =
      ReadRecords(cfg_, s.shard, s.checkpoint, s.batch_end, s.batch_end ? kMaxBatchRecords : cfg_.batch_size);
  if (records.empty()) {
    if (s.batch_end) {
      // The batch's records were trimmed (retention) while it was retried.
      s.checkpoint = *s.batch_end;
      NextBatch(s);
      sh.due_us = now;
      if (!SaveShard(mapping_id_, s, stats, false)) sh.due_us = kIdle;
    }
    return;
  }

  // A new batch: cut at 6 MB, wait for the batching window, then fix its end
  // so that retries see exactly the same records.
  size_t n = records.size();
  if (!s.batch_end) {
    size_t bytes = 0;
    for (size_t i = 0; i < records.size(); ++i) {
      if (i > 0 && EventSize(bytes + records[i].text.size(), i + 1) > kMaxPayload) {
        n = i;
        break;
      }
      bytes += records[i].text.size();
    }
    bool full = n < records.size() || static_cast<int>(n) >= cfg_.batch_size;
    if (sh.window_start_us == 0) sh.window_start_us = now;
    int64_t window_end = sh.window_start_us + int64_t{cfg_.window_s} * 1000000;
    if (!full && now < window_end) {
      sh.due_us = window_end;
      return;
    }
    records.resize(n);
    s.batch_end = records.back().pos;
    s.attempts = 0;
    stats.read += static_cast<int64_t>(n);
  }

  // Records older than MaximumRecordAgeInSeconds are split off first.
  if (cfg_.max_age_s >= 0) {
    int64_t cutoff = now - int64_t{cfg_.max_age_s} * 1000000;
    size_t k = 0;
    while (k < n && records[k].arrival_us <= cutoff) ++k;
    if (k > 0) {
      if (SendToFailureDestination(sh, records, 0, k, "RecordAgeExceeded", std::max(s.attempts, 1), false,
                                   std::nullopt, stats)) {
        s.checkpoint = records[k - 1].pos;
        if (k == n)
          NextBatch(s);
        else
          s.attempts = 0;  // the rest is a new batch
        sh.due_us = now;
      } else {
        sh.due_us = now + BackoffMs(++sh.unavailable) * 1000;
      }
      if (!SaveShard(mapping_id_, s, stats, false)) sh.due_us = kIdle;
      return;
    }
  }

  if (now < s.retry_at_us) {
    sh.due_us = s.retry_at_us;
    return;
  }

  // Retries used up earlier, but the destination could not take the batch.
  if (cfg_.max_retries >= 0 && s.attempts > cfg_.max_retries) {
    if (SendToFailureDestination(sh, records, 0, n, "RetryAttemptsExhausted", s.attempts, true,
                                 sh.last_function_error, stats)) {
      s.checkpoint = records[n - 1].pos;
      NextBatch(s);
      sh.due_us = now;
    } else {
      s.retry_at_us = now + BackoffMs(++sh.unavailable) * 1000;
      sh.due_us = s.retry_at_us;
    }
    if (!SaveShard(mapping_id_, s, stats, false)) sh.due_us = kIdle;
    return;
  }

  // A batch that never reached a function does not use up retries.
  if (!cfg_.function_exists) {
    stats.error = "Function not found: " + cfg_.function_arn;
    s.retry_at_us = now + BackoffMs(++sh.unavailable) * 1000;
    sh.due_us = s.retry_at_us;
    SetResult("PROBLEM: Function not found");
    if (!SaveShard(mapping_id_, s, stats, false)) sh.due_us = kIdle;
    return;
  }
  sh.unavailable = 0;

  std::string event = BuildEvent(records, 0, n);
  stats.iterator_age_ms = (now - records[n - 1].arrival_us) / 1000;
  targets::SqlCall call{cfg_.handler, event.c_str(), nullptr};
  ErrorData* err = PgCall([&] { return targets::CallSqlFunction(cfg_.owner, cfg_.timeout_ms, &call, true); });
  invoked = true;
  ++s.attempts;
  ++stats.invocations;
  sh.window_start_us = 0;
  int64_t done = NowUs();

  ResponseVerdict verdict;
  std::optional<std::string> function_error;
  if (err != nullptr) {
    verdict.kind = ResponseVerdict::kFailure;
    function_error = "Unhandled";
    ++stats.function_errors;
    stats.error = ErrorText(err);
  } else if (cfg_.report_item_failures) {
    std::optional<std::string> body;
    if (call.result != nullptr) body = std::string(call.result);
    std::vector<std::string> seqs;
    seqs.reserve(n);
    for (size_t i = 0; i < n; ++i) seqs.push_back(SequenceNumber(records[i].pos));
    verdict = ReadBatchItemFailures(body, seqs);
    if (verdict.kind == ResponseVerdict::kFailure) stats.error = "invalid batchItemFailures response";
  }
  if (err == nullptr) {
    // Exactly once: what the function did stays only when records are
    // checkpointed with it; a batch judged failed is undone and retried.
    bool keep = verdict.kind == ResponseVerdict::kSuccess ||
                (verdict.kind == ResponseVerdict::kPartial && verdict.first_failed > 0);
    PgCall([&] { targets::EndCall(keep); });
  }

  if (verdict.kind == ResponseVerdict::kSuccess) {
    s.checkpoint = records[n - 1].pos;
    stats.delivered += static_cast<int64_t>(n);
    NextBatch(s);
    sh.due_us = done;
    SetResult("OK");
  } else if (verdict.kind == ResponseVerdict::kPartial && verdict.first_failed > 0) {
    // Records before the lowest reported one are done; the rest is retried
    // as a new batch with a fresh retry count (semantics 3.5).
    s.checkpoint = records[verdict.first_failed - 1].pos;
    stats.delivered += static_cast<int64_t>(verdict.first_failed);
    s.attempts = 0;
    s.retry_at_us = 0;
    sh.due_us = done;
    SetResult("OK");
  } else {
    bool error = verdict.kind == ResponseVerdict::kFailure;
    sh.last_function_error = function_error;
    SetResult("PROBLEM: Function call failed");
    if (error && cfg_.bisect && n > 1) {
      // Halve; splitting does not use up retries (semantics 3.4).
      size_t left = (n + 1) / 2;
      s.pending.push_back(*s.batch_end);
      s.batch_end = records[left - 1].pos;
      s.attempts = 0;
      ++stats.bisects;
      s.retry_at_us = done + BackoffMs(1) * 1000;
      sh.due_us = s.retry_at_us;
    } else if (cfg_.max_retries >= 0 && s.attempts > cfg_.max_retries) {
      if (SendToFailureDestination(sh, records, 0, n, "RetryAttemptsExhausted", s.attempts, true, function_error,
                                   stats)) {
        s.checkpoint = records[n - 1].pos;
        NextBatch(s);
        sh.due_us = done;
      } else {
        s.retry_at_us = done + BackoffMs(++sh.unavailable) * 1000;
        sh.due_us = s.retry_at_us;
      }
    } else {
      ++stats.retries;
      s.retry_at_us = done + BackoffMs(s.attempts) * 1000;
      sh.due_us = s.retry_at_us;
    }
  }
  if (!SaveShard(mapping_id_, s, stats, invoked)) sh.due_us = kIdle;
}

}  // namespace pgs::dispatch
