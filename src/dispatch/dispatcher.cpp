#include "dispatch/dispatcher.hpp"

#include <algorithm>
#include <climits>
#include <map>

#include "filter/filter.hpp"

#include "boundary/guard.hpp"
#include "boundary/spi.hpp"
#include "dispatch/event.hpp"
#include "dispatch/http_request.hpp"
#include "dispatch/policy.hpp"
#include "targets/error_body.hpp"
#include "targets/run_as.hpp"
#include "targets/signing.hpp"
#include "worker/shmem.hpp"
#include "worker/work.hpp"

extern "C" {
#include "access/xlog.h"
}

namespace pgs::dispatch {

int blocked_shard_warning_s = 300;
int max_requests_per_worker = 64;

namespace {

constexpr size_t kMaxPayload = 6 * 1024 * 1024;  // Lambda's synchronous payload limit
constexpr int kMaxBatchRecords = 10000;
constexpr int64_t kIdle = INT64_MAX / 4;
constexpr int64_t kConcurrencyWaitUs = 20000;  // re-check a full MaxConcurrency after 20 ms
constexpr int64_t kAccessRecheckMs = 5000;      // a GRANT does not wake dispatchers: re-check this often
constexpr int64_t kMaxScan = 100000;             // records a step looks at for one batch, at most

void Begin() { PgCall([] { worker::BeginWork(); }); }
void Commit() { PgCall([] { worker::EndWork(); }); }

std::string First(const std::vector<Record>& r) { return SequenceNumber(r.front().pos); }

std::string ErrorText(ErrorData* e) {
  return PgCall([&] { return e->message != nullptr ? pstrdup(e->message) : pstrdup("error"); });
}

// "HTTP <status>", then the start of the response body when there is one
// (bounded, valid UTF-8, the request's secrets redacted; no headers).
std::string HttpErrorText(const targets::HttpRequest& req, const targets::HttpResponse& res) {
  std::string text = "HTTP " + std::to_string(res.status);
  std::string body = targets::ErrorBodyExcerpt(res.body, req.secrets);
  if (!body.empty()) text += ": " + body;
  return text;
}

}  // namespace

bool Dispatcher::Reload() {
  if (!call_mark_taken_) {
    call_mark_taken_ = true;
    TimedOutCall t{};
    if (worker::TakeFiredCallMark(&t.shard, &t.after.lsn, &t.after.idx, &t.timeout_ms)) timed_out_ = t;
  }
  Begin();
  bool ok;
  {
    if (!PgCall([] { return worker::ExtensionInstalled(); })) {
      Commit();
      return false;
    }
    spi::Session spi;
    std::shared_ptr<filter::Filter> old_filter = cfg_.filter;
    std::string old_criteria = cfg_.filter_criteria;
    ok = LoadMapping(mapping_id_, &cfg_);
    if (ok && !cfg_.filter_criteria.empty()) {
      // Compiled once per change of FilterCriteria (validated when it was set).
      if (old_filter && old_criteria == cfg_.filter_criteria)
        cfg_.filter = old_filter;
      else
        cfg_.filter = std::make_shared<filter::Filter>(filter::PatternsOf(cfg_.filter_criteria));
    }
    if (ok && !cfg_.enabled) {
      SetMappingState(mapping_id_, "Disabled");
      ok = false;
    } else if (ok) {
      if (cfg_.state != "Enabled") SetMappingState(mapping_id_, "Enabled");
      std::vector<ShardState> loaded = LoadShards(mapping_id_);
      std::map<int32_t, window::ShardWindow> windows = window::Load(mapping_id_);
      std::vector<Shard> shards;
      for (auto& st : loaded) {
        Shard sh;
        // Keep the timing of shards already known; their durable state is
        // only written by this process, so memory and table agree.
        for (auto& old : shards_)
          if (old.state.shard == st.shard) sh = old;
        sh.state = std::move(st);
        sh.saved_checkpoint = sh.state.checkpoint;
        sh.win = sh.saved_win = windows[sh.state.shard];
        if (cfg_.tumbling_s <= 0) sh.win = window::ShardWindow{};  // windows were turned off
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
    if (sh.flight) continue;  // its request is in flight
    int64_t now = NowUs();
    if (sh.due_us <= now) Step(sh, now);
    if (!sh.flight) next = std::min(next, sh.due_us - NowUs());
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


void Dispatcher::Save(Shard& sh, const StepStats& stats) {
  ShardState& s = sh.state;
  int64_t now = NowUs();
  if (stats.error) sh.last_error = *stats.error;
  if (!(s.checkpoint == sh.saved_checkpoint)) {
    s.blocked_since_us = 0;  // the shard moved on
    sh.warned_blocked = false;
  } else if (stats.error && s.blocked_since_us == 0) {
    s.blocked_since_us = now;
  }
  if (!SaveShard(mapping_id_, s, stats, stats.invocations > 0)) {
    sh.due_us = kIdle;  // mapping deleted
    return;
  }
  sh.saved_checkpoint = s.checkpoint;
  if (!(sh.win == sh.saved_win)) {
    window::Save(mapping_id_, s.shard, sh.win);  // with the checkpoint, in its transaction
    sh.saved_win = sh.win;
  }
  if (s.blocked_since_us != 0 && !sh.warned_blocked && blocked_shard_warning_s > 0 &&
      now - s.blocked_since_us >= int64_t{blocked_shard_warning_s} * 1000000) {
    sh.warned_blocked = true;
    std::string since = IsoUtc(s.blocked_since_us, false);
    const std::string& error = sh.last_error;
    PgCall([&] {
      ereport(WARNING,
              (errmsg("pg_streams: event source mapping %s: shard %s has been retrying the same batch since %s "
                      "(%d attempts): %s",
                      cfg_.uuid.c_str(), s.shard_id.c_str(), since.c_str(), s.attempts, error.c_str()),
               errhint("A record that always fails blocks its shard until retention removes it: fix the function, "
                       "or set MaximumRetryAttempts / MaximumRecordAgeInSeconds and an OnFailure destination.")));
    });
  }
}

targets::HttpRequest Dispatcher::HttpRequestFor(const TargetConfig& target, const std::string& body,
                                                const std::string& key) {
  return BuildHttpRequest(target, body, key, cfg_.uuid);
}

// Records [0, to) of the batch [0, n) failed for good: send them to the
// OnFailure destination. Table and SQL destinations are written here, in this
// transaction; an HTTP destination is called by the step after it commits.
Dispatcher::Plan Dispatcher::Fail(Shard& sh, std::vector<Record>& records, size_t n, size_t to,
                                  const char* condition, int invoke_count, bool has_response, int64_t now,
                                  StepStats& stats) {
  FailureInfo info;
  info.request_id = RandomUuid();
  info.function_arn = cfg_.function_arn;
  info.condition = condition;
  info.invoke_count = invoke_count;
  info.has_response = has_response;
  info.function_error = sh.last_function_error;
  info.status_code = sh.last_status;
  info.now_us = now;
  info.shard_id = sh.state.shard_id;
  info.stream_arn = cfg_.stream_arn;
  std::string doc = BuildFailureRecord(info, records, 0, to);
  Plan plan;
  bool sent = false;
  if (cfg_.dest_table != 0) {
    ErrorData* err = PgCall([&] { return targets::InsertRecordRow(cfg_.owner, cfg_.dest_table, doc.c_str()); });
    if (err != nullptr) stats.error = "OnFailure destination: " + ErrorText(err);
    sent = err == nullptr;
  } else if (!cfg_.dest_function.empty()) {
    const TargetConfig& d = cfg_.destination;
    if (!d.exists || !d.host_allowed) {
      stats.error = "OnFailure destination function " + cfg_.dest_function +
                    (d.exists ? ": " + NotAllowedText(d) : " does not exist");
    } else if (d.http || d.kafka) {
      plan.kind = Plan::kSendFailure;
      plan.n = n;
      plan.fail_to = to;
      if (d.kafka)
        plan.failure_doc = std::move(doc);
      else
        plan.request = HttpRequestFor(d, doc, targets::Sha256Hex(cfg_.uuid + "/failure/" + First(records)));
      plan.records = std::move(records);
      return plan;
    } else {
      targets::SqlCall call{d.handler, doc.c_str(), nullptr};
      ErrorData* err = PgCall([&] { return targets::CallSqlFunction(cfg_.owner, d.timeout_ms, &call); });
      if (err != nullptr) stats.error = "OnFailure destination: " + ErrorText(err);
      sent = err == nullptr;
    }
  } else {
    std::string first = First(records), last = SequenceNumber(records[to - 1].pos);
    PgCall([&] {
      ereport(LOG, (errmsg("pg_streams: event source mapping %s discarded %zu records of %s (%s to %s): %s",
                           cfg_.uuid.c_str(), to, sh.state.shard_id.c_str(), first.c_str(), last.c_str(), condition),
                    errhint("Set DestinationConfig.OnFailure.Destination to keep failed batches.")));
    });
    ++stats.discarded_batches;
    stats.failed_records += static_cast<int64_t>(to);
    AfterFailure(sh, records, n, to, true, now, stats, false);
    return plan;
  }
  AfterFailure(sh, records, n, to, sent, now, stats);
  return plan;
}

void Dispatcher::AfterFailure(Shard& sh, const std::vector<Record>& records, size_t n, size_t to, bool sent,
                              int64_t now, StepStats& stats, bool count_sent) {
  ShardState& s = sh.state;
  if (!sent) {
    // The destination could not take it: the shard waits and tries again.
    s.retry_at_us = now + BackoffMs(++sh.unavailable) * 1000;
    sh.due_us = s.retry_at_us;
    return;
  }
  sh.unavailable = 0;
  if (count_sent) {
    ++stats.failed_batches;
    stats.failed_records += static_cast<int64_t>(to);
  }
  s.checkpoint = records[to - 1].pos;
  if (to == n) {
    NextBatch(s);
  } else {
    s.attempts = 0;  // the rest of the batch is a new batch
    s.retry_at_us = 0;
  }
  sh.due_us = now;
}

Dispatcher::Scan Dispatcher::ReadMatching(const ShardState& s, filter::Filter* f, int want) {
  Scan scan;
  if (f == nullptr) {
    scan.records = ReadRecords(cfg_, s.shard, s.checkpoint, s.batch_end, want);
    scan.seen = static_cast<int64_t>(scan.records.size());
    for (int64_t i = 1; i <= scan.seen; ++i) scan.seen_upto.push_back(i);
    if (!scan.records.empty()) {
      scan.last_seen = scan.records.back().pos;
      scan.last_seen_arrival_us = scan.records.back().arrival_us;
    }
    return scan;
  }
  // Filtered records are dropped as they are read: memory holds the batch.
  // A filter that names neither eventID nor dynamodb.SequenceNumber sees
  // the record as stored; only the records it keeps are spliced.
  const bool stored_ok = !f->Reads("eventID") && !f->Reads("dynamodb.SequenceNumber");
  Record spliced;
  ForEachStored(cfg_, s.shard, s.checkpoint, s.batch_end, [&](const StoredRecord& r) {
    ++scan.seen;
    scan.last_seen = r.pos;
    scan.last_seen_arrival_us = r.arrival_us;
    if (!stored_ok) Splice(r, &spliced);
    // An event the filter cannot read is delivered.
    if (f->Match(stored_ok ? r.text : spliced.text) != filter::Filter::Result::kNoMatch) {
      scan.records.emplace_back();
      if (stored_ok)
        Splice(r, &scan.records.back());
      else
        std::swap(scan.records.back(), spliced);
      scan.seen_upto.push_back(scan.seen);
      if (static_cast<int>(scan.records.size()) >= want) return false;
    }
    if (!s.batch_end && scan.seen >= kMaxScan) {
      scan.capped = true;
      return false;
    }
    return true;
  });
  return scan;
}

// May the mapping's owner still read the stream and use its function? If
// not, the shard waits (no retry used, nothing skipped) and says why.
bool Dispatcher::MayDeliver(Shard& sh, int64_t now, StepStats& stats) {
  auto problem = CheckAccess(mapping_id_);
  if (!problem) return true;
  stats.error = problem->error;
  sh.state.retry_at_us = now + std::min<int64_t>(BackoffMs(++sh.unavailable), kAccessRecheckMs) * 1000;
  sh.due_us = sh.state.retry_at_us;
  SetResult(problem->result.c_str());
  return false;
}

Dispatcher::Plan Dispatcher::Prepare(Shard& sh, int64_t now, StepStats& stats) {
  ShardState& s = sh.state;
  Plan plan;
  // A batch being retried keeps the filter it was cut with.
  filter::Filter* f = s.batch_end && sh.batch_filter ? sh.batch_filter.get() : cfg_.filter.get();
  const bool windowed = cfg_.tumbling_s > 0;
  // A windowed mapping reads one record more than a batch: is it of another window?
  Scan scan = ReadMatching(s, f, s.batch_end ? kMaxBatchRecords : cfg_.batch_size + (windowed ? 1 : 0));
  std::vector<Record>& records = scan.records;
  // An open window whose records were all sent ends with a final invocation
  // that has none.
  const bool empty_final = windowed && !s.batch_end && FinalDue(sh, records, now);
  if (empty_final) records.clear();
  if (records.empty() && !empty_final) {
    if (s.batch_end) {
      // The batch's records were trimmed (retention) while it was retried.
      s.checkpoint = *s.batch_end;
      NextBatch(s);
      sh.due_us = now;
    } else if (scan.last_seen) {
      // Every record read was filtered out: no invocation, and the
      // checkpoint passes them (semantics 3.6), once the owner may still
      // read the stream.
      if (!MayDeliver(sh, now, stats)) return plan;
      s.checkpoint = *scan.last_seen;
      stats.read += scan.seen;
      stats.filtered += scan.seen;
      stats.iterator_age_ms = (now - scan.last_seen_arrival_us) / 1000;
      if (scan.capped) sh.due_us = now;
    }
    return plan;
  }

  // Before every batch, as the owner's rights stand now.
  if (!MayDeliver(sh, now, stats)) return plan;

  // A new batch: cut at 6 MB, wait for the batching window, then fix its end
  // so that retries see exactly the same records.
  size_t n = records.size();
  if (!s.batch_end && !empty_final) {
    // A batch never spans two windows; the window's envelope and state
    // count towards the 6 MB.
    const size_t in_window = windowed ? WindowPrefix(sh, records) : records.size();
    const size_t max_payload =
        kMaxPayload - (windowed ? window::EnvelopeExtra(sh.win.state, s.shard_id, cfg_.stream_arn) : 0);
    n = in_window;
    size_t bytes = 0;
    for (size_t i = 0; i < in_window; ++i) {
      if (i > 0 && EventSize(bytes + records[i].text.size(), i + 1) > max_payload) {
        n = i;
        break;
      }
      bytes += records[i].text.size();
    }
    // A filter that has looked at kMaxScan records sends what it found.
    n = std::min(n, static_cast<size_t>(cfg_.batch_size));
    bool full = n < records.size() || static_cast<int>(n) >= cfg_.batch_size || scan.capped;
    if (windowed) plan.win = WindowOfBatch(sh, f, records, n, scan.capped, now);
    full = full || plan.win.final;  // a window that is over does not wait for the batching window
    if (sh.window_start_us == 0) sh.window_start_us = now;
    int64_t window_end = sh.window_start_us + int64_t{cfg_.window_s} * 1000000;
    if (!full && now < window_end) {
      sh.due_us = window_end;
      if (windowed) sh.due_us = std::min(sh.due_us, plan.win.end_us + window::kCloseGraceUs);
      return plan;
    }
    records.resize(n);
    s.batch_end = records.back().pos;
    s.attempts = 0;
    sh.batch_filter = cfg_.filter;
    // Records of the batch's extent that the filter dropped are passed with it.
    stats.read += scan.seen_upto[n - 1];
    stats.filtered += scan.seen_upto[n - 1] - static_cast<int64_t>(n);
  }

  if (windowed && s.batch_end) plan.win = WindowOfBatch(sh, f, records, n, scan.capped, now);
  if (empty_final) {
    plan.win.on = plan.win.final = true;
    plan.win.start_us = sh.win.start_us;
    plan.win.end_us = sh.win.start_us + WindowSizeUs();
    plan.win.early = sh.win.early;
  }

  // Records older than MaximumRecordAgeInSeconds are split off first.
  if (cfg_.max_age_s >= 0) {
    int64_t cutoff = now - int64_t{cfg_.max_age_s} * 1000000;
    size_t k = 0;
    while (k < n && records[k].arrival_us <= cutoff) ++k;
    if (k > 0) return Fail(sh, records, n, k, "RecordAgeExceeded", std::max(s.attempts, 1), false, now, stats);
  }

  if (now < s.retry_at_us) {
    sh.due_us = s.retry_at_us;
    return plan;
  }

  // Retries used up: the batch goes to the OnFailure destination.
  if (cfg_.max_retries >= 0 && s.attempts > cfg_.max_retries) {
    if (n == 0) {
      DropWindow(sh, now, stats);
      return Plan{};
    }
    return Fail(sh, records, n, n, "RetryAttemptsExhausted", s.attempts, true, now, stats);
  }

  // A Kafka function registered under the mapped name after the mapping got
  // its window: it returns no state, so nothing is sent (no retry used).
  if (windowed && cfg_.target.kafka) {
    stats.error = "TumblingWindowInSeconds needs a SQL or HTTP function: " + cfg_.function_name +
                  " is a Kafka topic, which returns no state";
    s.retry_at_us = now + std::min<int64_t>(BackoffMs(++sh.unavailable), kAccessRecheckMs) * 1000;
    sh.due_us = s.retry_at_us;
    SetResult("PROBLEM: Function call failed");
    return plan;
  }

  // A batch that cannot reach its function does not use up retries.
  if (!cfg_.target.exists || !cfg_.target.host_allowed) {
    stats.error = cfg_.target.exists ? NotAllowedText(cfg_.target) : "Function not found: " + cfg_.function_arn;
    s.retry_at_us = now + BackoffMs(++sh.unavailable) * 1000;
    sh.due_us = s.retry_at_us;
    SetResult(cfg_.target.exists ? "PROBLEM: Function call failed" : "PROBLEM: Function not found");
    return plan;
  }

  plan.kind = Plan::kInvoke;
  plan.n = n;
  plan.event = windowed ? window::BuildEvent(records, 0, n, plan.win, plan.win.start_us == sh.win.start_us
                                                                          ? sh.win.state : std::string("{}"),
                                             s.shard_id, cfg_.stream_arn)
                        : BuildEvent(records, 0, n);
  if (n > 0) stats.iterator_age_ms = (now - records[n - 1].arrival_us) / 1000;
  if (cfg_.target.http) {
    // The same records always carry the same key, whichever attempt this is.
    std::string first = n > 0 ? First(records) : SequenceNumber(s.checkpoint);
    std::string last = n > 0 ? SequenceNumber(records[n - 1].pos) : first;
    std::string key = targets::Sha256Hex(windowed ? window::KeyMaterial(cfg_.uuid, plan.win, first, last)
                                                  : cfg_.uuid + "/" + first + "/" + last);
    plan.request = HttpRequestFor(cfg_.target, plan.event, key);
  }
  plan.records = std::move(records);
  return plan;
}

Dispatcher::Outcome Dispatcher::InvokeSql(Shard& sh, const Plan& plan, StepStats& stats) {
  Outcome out;
  const Position after = sh.state.checkpoint;
  if (timed_out_ && timed_out_->shard == sh.state.shard && timed_out_->after == after) {
    // This batch's last call ended the previous dispatcher (see run_as.cpp):
    // it counts as a timed-out invocation and is not made again here.
    std::string text = "canceling statement due to statement timeout: the handler went on after its timeout of " +
                       std::to_string(timed_out_->timeout_ms) + " ms canceled it, and its dispatcher was ended";
    timed_out_.reset();
    PgCall([&] {
      ereport(LOG, (errmsg("pg_streams: event source mapping %s: %s", cfg_.uuid.c_str(), text.c_str())));
    });
    out.verdict.kind = ResponseVerdict::kFailure;
    out.function_error = "Unhandled";
    out.error = text;
    return out;
  }
  targets::SqlCall call{cfg_.target.handler, plan.event.c_str(), nullptr};
  worker::ArmCallMark(sh.state.shard, after.lsn, after.idx, cfg_.target.timeout_ms);
  ErrorData* err = PgCall([&] { return targets::CallSqlFunction(cfg_.owner, cfg_.target.timeout_ms, &call, true); });
  worker::DisarmCallMark();
  if (err != nullptr && (err->sqlerrcode == ERRCODE_T_R_DEADLOCK_DETECTED ||
                         err->sqlerrcode == ERRCODE_T_R_SERIALIZATION_FAILURE)) {
    // A deadlock or serialization failure against a concurrent transaction
    // says nothing about the batch: it is retried after a backoff without
    // using up MaximumRetryAttempts, and counted as a throttle.
    out.throttled = true;
    out.error = ErrorText(err);
    return out;
  }
  if (err != nullptr) {
    out.verdict.kind = ResponseVerdict::kFailure;
    out.function_error = "Unhandled";
    out.error = ErrorText(err);
    return out;
  }
  std::optional<std::string> body;
  if (call.result != nullptr) body = std::string(call.result);
  if (cfg_.report_item_failures) {
    std::vector<std::string> seqs;
    seqs.reserve(plan.n);
    for (size_t i = 0; i < plan.n; ++i) seqs.push_back(SequenceNumber(plan.records[i].pos));
    out.verdict = ReadBatchItemFailures(body, seqs);
    if (out.verdict.kind == ResponseVerdict::kFailure) out.error = "invalid batchItemFailures response";
  }
  ParseWindowReply(plan, body, &out);  // a windowed function must return its state
  // Exactly once: what the function did stays only when records are
  // checkpointed with it; a batch judged failed is undone and retried.
  bool keep = out.verdict.kind == ResponseVerdict::kSuccess ||
              (out.verdict.kind == ResponseVerdict::kPartial && out.verdict.first_failed > 0);
  PgCall([&] { targets::EndCall(keep); });
  (void)stats;
  return out;
}

Dispatcher::Outcome Dispatcher::OutcomeOf(const Plan& plan, const targets::HttpResponse& res) {
  Outcome out;
  if (!res.answered) {
    out.verdict.kind = ResponseVerdict::kFailure;
    out.function_error = "Unhandled";
    out.status = 0;
    out.error = res.timed_out ? "timed out after " + std::to_string(plan.request.timeout_ms) + " ms"
                              : "HTTP request failed: " + res.error;
    return out;
  }
  out.status = res.status;
  if (res.status == 429 || (res.status == 503 && res.retry_after_s)) {
    out.throttled = true;
    out.retry_after_s = res.retry_after_s;
    out.error = "throttled: HTTP " + std::to_string(res.status);
    return out;
  }
  if (res.status < 200 || res.status > 299) {
    out.verdict.kind = ResponseVerdict::kFailure;
    out.function_error = "Unhandled";
    out.error = HttpErrorText(plan.request, res);
    return out;
  }
  if (res.function_error[0] != '\0') {
    // Lambda (and its Runtime Interface Emulator) answer a function error
    // with 200 and X-Amz-Function-Error; the body holds errorMessage/errorType.
    out.verdict.kind = ResponseVerdict::kFailure;
    out.function_error = std::string(res.function_error);
    out.error = "function error (X-Amz-Function-Error: " + std::string(res.function_error) +
                "): " + targets::ErrorBodyExcerpt(res.body, plan.request.secrets);
    return out;
  }
  std::optional<std::string> body;
  if (!res.body.empty()) body = res.body;
  if (cfg_.report_item_failures) {
    std::vector<std::string> seqs;
    seqs.reserve(plan.n);
    for (size_t i = 0; i < plan.n; ++i) seqs.push_back(SequenceNumber(plan.records[i].pos));
    out.verdict = ReadBatchItemFailures(body, seqs);
    if (out.verdict.kind == ResponseVerdict::kFailure) out.error = "invalid batchItemFailures response";
  }
  ParseWindowReply(plan, body, &out);
  return out;
}

void Dispatcher::Apply(Shard& sh, const Plan& plan, const Outcome& o, StepStats& stats) {
  ShardState& s = sh.state;
  const auto& records = plan.records;
  size_t n = plan.n;
  int64_t done = NowUs();
  sh.window_start_us = 0;
  if (o.error) stats.error = o.error;
  if (o.throttled) {
    // Did not reach the function: no retry used (semantics 0, 3.2).
    ++stats.throttles;
    int64_t wait_ms = o.retry_after_s ? static_cast<int64_t>(*o.retry_after_s * 1000) : BackoffMs(++sh.unavailable);
    s.retry_at_us = done + std::min<int64_t>(wait_ms, 900000) * 1000;
    sh.due_us = s.retry_at_us;
    return;
  }
  sh.unavailable = 0;
  ++s.attempts;
  ++stats.invocations;
  if (o.function_error) ++stats.function_errors;

  if (o.verdict.kind == ResponseVerdict::kSuccess) {
    if (plan.win.on) window::AfterSuccess(sh.win, plan.win, o.reply, true);
    if (n > 0) s.checkpoint = records[n - 1].pos;
    if (n == 0) {  // a final invocation without records: the shard is not blocked any more
      s.blocked_since_us = 0;
      sh.warned_blocked = false;
    }
    stats.delivered += static_cast<int64_t>(n);
    NextBatch(s);
    sh.due_us = done;
    SetResult("OK");
  } else if (o.verdict.kind == ResponseVerdict::kPartial && o.verdict.first_failed > 0) {
    // Records before the lowest reported one are done; the rest is retried
    // as a new batch with a fresh retry count (semantics 3.5).
    if (plan.win.on) window::AfterSuccess(sh.win, plan.win, o.reply, false);
    s.checkpoint = records[o.verdict.first_failed - 1].pos;
    stats.delivered += static_cast<int64_t>(o.verdict.first_failed);
    s.attempts = 0;
    s.retry_at_us = 0;
    sh.due_us = done;
    SetResult("OK");
  } else {
    bool error = o.verdict.kind == ResponseVerdict::kFailure;
    sh.last_function_error = o.function_error;
    sh.last_status = o.status;
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
      // Retries used up: the next step sends the batch to the destination.
      s.retry_at_us = 0;
      sh.due_us = done;
    } else {
      ++stats.retries;
      s.retry_at_us = done + BackoffMs(s.attempts) * 1000;
      sh.due_us = s.retry_at_us;
    }
  }
}

void Dispatcher::Step(Shard& sh, int64_t now) {
  sh.due_us = kIdle;
  Plan plan;
  Begin();
  {
    spi::Session spi;
    StepStats stats;
    plan = Prepare(sh, now, stats);
    if (plan.kind == Plan::kNone) WakeForWindow(sh, now);  // the clock ends an open window
    if (plan.kind == Plan::kInvoke && !cfg_.target.http && !cfg_.target.kafka) {
      Outcome o = InvokeSql(sh, plan, stats);
      Apply(sh, plan, o, stats);
      plan.kind = Plan::kNone;
    }
    Save(sh, stats);
  }
  Commit();
  if (plan.kind == Plan::kNone) return;
  // The dispatcher commits asynchronously; the batch's extent (and so its
  // Idempotency-Key) must be on disk before the request leaves, or a crash
  // could cut the batch anew and resend its records under another key.
  // One flush per request, not per record.
  PgCall([] { XLogFlush(XactLastCommitEnd); });

  // MaxConcurrency and the worker's cap: wait for a free slot; the batch is
  // fixed already.
  const TargetConfig& target = plan.kind == Plan::kInvoke ? cfg_.target : cfg_.destination;
  if (!target.kafka && static_cast<int>(targets::HttpInFlight()) >= max_requests_per_worker) {
    sh.due_us = NowUs() + kConcurrencyWaitUs;
    return;
  }
  int32_t slot_function = target.max_concurrency > 0 ? target.function_id : 0;
  if (slot_function != 0 && !worker::AcquireHttpSlot(MyDatabaseId, slot_function, target.max_concurrency)) {
    sh.due_us = NowUs() + kConcurrencyWaitUs;
    return;
  }
  if (!target.kafka) {
    // HTTP: no transaction or snapshot is held while the request is in
    // flight; the worker hands the answer to Complete.
    StartRequest(sh, std::move(plan), slot_function);
    return;
  }
  // Kafka: produced here, the worker waiting; no transaction or snapshot is held meanwhile.
  struct SlotRelease {
    int32_t function_id;
    ~SlotRelease() {
      if (function_id != 0) worker::ReleaseHttpSlot(MyDatabaseId, function_id);
    }
  } release{slot_function};
  if (plan.kind == Plan::kInvoke) {
    RecordOutcome(sh, plan, InvokeKafka(sh, plan));
    return;
  }
  std::string failure_error;
  bool sent =
      ProduceFailureRecord(cfg_.destination, plan.failure_doc, cfg_.stream_arn, sh.state.shard_id, &failure_error);
  RecordFailureSent(sh, plan, sent, failure_error);
}

// The answer to the HTTP request of a step (the invocation, or the failure
// record for an HTTP OnFailure destination).
void Dispatcher::Finish(Shard& sh, const Plan& plan, const targets::HttpResponse& res) {
  if (plan.kind == Plan::kInvoke) {
    RecordOutcome(sh, plan, OutcomeOf(plan, res));
    return;
  }
  bool sent = res.answered && res.status >= 200 && res.status <= 299;
  RecordFailureSent(sh, plan, sent, sent ? std::string() : res.answered ? HttpErrorText(plan.request, res) : res.error);
}

// What came of an invocation made outside a transaction, recorded in one.
void Dispatcher::RecordOutcome(Shard& sh, const Plan& plan, const Outcome& o) {
  Begin();
  {
    spi::Session spi;
    StepStats stats;
    Apply(sh, plan, o, stats);
    Save(sh, stats);
    if (o.kafka) NoteKafka(mapping_id_, *o.kafka);
  }
  Commit();
}

void Dispatcher::RecordFailureSent(Shard& sh, const Plan& plan, bool sent, const std::string& failure_error) {
  Begin();
  {
    spi::Session spi;
    StepStats stats;
    if (!sent) stats.error = "OnFailure destination: " + failure_error;
    AfterFailure(sh, plan.records, plan.n, plan.fail_to, sent, NowUs(), stats);
    Save(sh, stats);
  }
  Commit();
}

}  // namespace pgs::dispatch
