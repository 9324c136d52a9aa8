// Runs one event source mapping: per shard, in order, read from the
// checkpoint, batch, invoke, then checkpoint; on errors retry with backoff,
// bisect, honour partial failures and hand failed batches to the OnFailure
// destination (semantics 3.1-3.5). SQL targets run inside the transaction
// that moves the checkpoint; HTTP requests run outside any transaction and
// stay in flight (targets::HttpStart) while the dispatcher worker runs other
// shards and mappings: it hands each answer back with Deliver (in_flight.cpp).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "dispatch/kafka.hpp"
#include "dispatch/model.hpp"
#include "dispatch/policy.hpp"
#include "dispatch/store.hpp"
#include "dispatch/window.hpp"
#include "targets/http_client.hpp"

namespace pgs::dispatch {

// pg_streams.blocked_shard_warning: seconds a shard may retry one batch
// before a WARNING says so (0: never).
extern int blocked_shard_warning_s;
// pg_streams.max_requests_per_worker: HTTP requests a dispatcher worker has
// in flight at once, over all its mappings.
extern int max_requests_per_worker;

class Dispatcher {
 public:
  explicit Dispatcher(int32_t mapping_id) : mapping_id_(mapping_id) {}
  // Abandons its requests in flight (their batches are sent again, with the
  // same Idempotency-Key, by the mapping's next dispatcher).
  ~Dispatcher();
  Dispatcher(const Dispatcher&) = delete;
  Dispatcher& operator=(const Dispatcher&) = delete;

  // Hands a finished request (targets::HttpWait) to the dispatcher that
  // started it; false when none did (it was dropped meanwhile).
  static bool Deliver(uint64_t tag, const targets::HttpResponse& response);

  // Re-reads the configuration (in a transaction of its own). False when the
  // mapping is gone, disabled or the extension was dropped: the worker stops.
  bool Reload();

  // Runs every shard that is due; returns microseconds until one is due again
  // (a large value when all wait for new records).
  int64_t RunDue();

  // New records may have arrived: shards waiting for records are due.
  void Woken();

 private:
  struct Plan;
  struct Shard {
    ShardState state;
    // The HTTP request in flight for this shard (its batch is fixed and
    // committed): the shard takes no step until its answer came back.
    std::shared_ptr<Plan> flight;
    uint64_t flight_tag = 0;
    int32_t flight_slot_function = 0;  // MaxConcurrency slot it holds, 0: none
    int64_t due_us = 0;
    int64_t window_start_us = 0;  // the current batching window began
    int unavailable = 0;          // consecutive waits that were not the function's fault
    std::optional<std::string> last_function_error{"Unhandled"};
    long last_status = 200;
    // The filter the current batch (batch_end) was cut with: a change of the
    // filters applies to records not yet in a batch. Null after a restart
    // (the mapping's filter then applies).
    std::shared_ptr<filter::Filter> batch_filter;
    Position saved_checkpoint;  // the checkpoint as last loaded or saved
    bool warned_blocked = false;  // the blocked-shard WARNING was logged for this batch
    std::string last_error;       // of this shard, for that WARNING
    window::ShardWindow win;        // TumblingWindowInSeconds: the open window (window.hpp)
    window::ShardWindow saved_win;  // as last loaded or saved
  };

  // Records after the checkpoint that the filter matches (all of them
  // without a filter), oldest first.
  struct Scan {
    std::vector<Record> records;
    std::vector<int64_t> seen_upto;  // per match: records looked at up to and including it
    int64_t seen = 0;                // records looked at
    std::optional<Position> last_seen;
    int64_t last_seen_arrival_us = 0;
    bool capped = false;  // stopped after looking at kMaxScan records
  };
  Scan ReadMatching(const ShardState& s, filter::Filter* f, int want);

  // What a step does after its first transaction.
  struct Plan {
    enum Kind { kNone, kInvoke, kSendFailure } kind = kNone;
    std::vector<Record> records;
    size_t n = 0;                 // the batch is records [0, n)
    std::string event;            // kInvoke
    size_t fail_to = 0;           // kSendFailure: records [0, fail_to) failed
    std::string failure_doc;
    targets::HttpRequest request;  // kInvoke (HTTP) or kSendFailure
    window::Invoke win;            // kInvoke of a windowed mapping (n may be 0: a final invocation)
  };

  struct Outcome {
    ResponseVerdict verdict;
    std::optional<std::string> function_error;  // "Unhandled" for errors
    long status = 200;
    bool throttled = false;
    std::optional<double> retry_after_s;
    std::optional<std::string> error;
    std::optional<KafkaNote> kafka;  // a Kafka target's counters
    window::Reply reply;  // windowed: the state returned
  };

  void Step(Shard& shard, int64_t now);
  Plan Prepare(Shard& shard, int64_t now, StepStats& stats);
  bool MayDeliver(Shard& shard, int64_t now, StepStats& stats);
  Plan Fail(Shard& shard, std::vector<Record>& records, size_t n, size_t to, const char* condition, int invoke_count,
            bool has_response, int64_t now, StepStats& stats);
  void AfterFailure(Shard& shard, const std::vector<Record>& records, size_t n, size_t to, bool sent, int64_t now,
                    StepStats& stats, bool count_sent = true);
  Outcome InvokeSql(Shard& shard, const Plan& plan, StepStats& stats);
  Outcome InvokeKafka(const Shard& shard, const Plan& plan);  // invoke_kafka.cpp
  Outcome OutcomeOf(const Plan& plan, const targets::HttpResponse& res);
  void StartRequest(Shard& shard, Plan plan, int32_t slot_function);  // in_flight.cpp
  void Complete(int32_t shard, uint64_t tag, const targets::HttpResponse& res);
  void Finish(Shard& shard, const Plan& plan, const targets::HttpResponse& res);
  void RecordOutcome(Shard& shard, const Plan& plan, const Outcome& outcome);
  void RecordFailureSent(Shard& shard, const Plan& plan, bool sent, const std::string& failure_error);
  void Apply(Shard& shard, const Plan& plan, const Outcome& outcome, StepStats& stats);
  targets::HttpRequest HttpRequestFor(const TargetConfig& target, const std::string& body, const std::string& key);
  void Save(Shard& shard, const StepStats& stats);
  void NextBatch(ShardState& s);
  void SetResult(const char* result);
  // Tumbling windows (dispatch_window.cpp).
  int64_t WindowSizeUs() const { return int64_t{cfg_.tumbling_s} * 1000000; }
  bool FinalDue(Shard& sh, const std::vector<Record>& records, int64_t now) const;
  size_t WindowPrefix(const Shard& sh, const std::vector<Record>& records) const;
  window::Invoke WindowOfBatch(Shard& sh, filter::Filter* f, const std::vector<Record>& records, size_t n,
                               bool capped, int64_t now);
  void DropWindow(Shard& sh, int64_t now, StepStats& stats);
  void WakeForWindow(Shard& sh, int64_t now) const;
  void ParseWindowReply(const Plan& plan, const std::optional<std::string>& body, Outcome* out) const;

  // A SQL handler call that ran past its timeout and ended the previous
  // dispatcher of this mapping (worker::FireCallMark): the batch of that
  // shard after that checkpoint counts it as a timed-out invocation.
  struct TimedOutCall {
    int32_t shard;
    Position after;
    int timeout_ms;
  };

  int32_t mapping_id_;
  MappingConfig cfg_;
  std::vector<Shard> shards_;
  bool call_mark_taken_ = false;
  std::optional<TimedOutCall> timed_out_;
};

}  // namespace pgs::dispatch
