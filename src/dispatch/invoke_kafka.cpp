#include <nlohmann/json.hpp>  // first: it must not see PostgreSQL headers

#include "dispatch/kafka.hpp"
#include "targets/kafka_producer.hpp"

#include "boundary/guard.hpp"
#include "boundary/spi.hpp"
#include "dispatch/dispatcher.hpp"

extern "C" {
#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "utils/builtins.h"
}

namespace pgs::dispatch {
namespace {

void CheckInterrupts() {
  PgCall([] { CHECK_FOR_INTERRUPTS(); });
}

targets::KafkaProducer* ProducerFor(const TargetConfig& t, std::string* error) {
  targets::KafkaSettings settings;
  if (!targets::ParseKafkaSettings(t.kafka_settings, &settings)) {
    *error = "Kafka function settings are not a JSON object";
    return nullptr;
  }
  return targets::KafkaProducerFor(t.function_id, t.url, settings, t.timeout_ms, error);
}

}  // namespace

void LoadKafkaTarget(TargetConfig* t) {
  t->kafka = true;
  t->http = false;
  Oid types[1] = {INT4OID};
  Datum values[1] = {Int32GetDatum(t->function_id)};
  if (spi::Exec("SELECT * FROM streams._kafka_target_config($1)", 1, types, values, nullptr, true) == 0) {
    t->exists = false;
    return;
  }
  t->url = spi::Text(0, 1).value_or("");
  t->kafka_topic = spi::Text(0, 2).value_or("");
  t->kafka_settings = spi::Text(0, 3).value_or("{}");
  t->host_allowed = spi::Bool(0, 4).value_or(false);
}

KafkaDelivery ProduceRecords(const TargetConfig& t, const std::vector<Record>& records, size_t n,
                             const std::string& stream_arn, const std::string& shard_id) {
  KafkaDelivery d;
  std::string error;
  targets::KafkaProducer* producer = ProducerFor(t, &error);
  if (producer == nullptr) {
    // A configuration librdkafka refuses: like a function that cannot be
    // reached, the batch waits without using up retries.
    d.unavailable = true;
    d.error = error;
    d.note.error = error;
    return d;
  }
  std::vector<targets::KafkaMessage> messages(n);
  for (size_t i = 0; i < n; ++i) {
    targets::KafkaMessage& m = messages[i];
    targets::KafkaMessageOf(records[i].text, &m);  // a record always parses; else key and headers stay empty
    m.value = &records[i].text;  // the record text, byte for byte
    m.headers.emplace_back("eventSourceARN", stream_arn);
    m.headers.emplace_back("shardId", shard_id);
  }
  targets::KafkaBatchResult r = producer->Produce(t.kafka_topic, messages, CheckInterrupts);
  d.first_failed = r.first_failed;
  d.unavailable = r.unavailable;
  d.error = r.error;
  d.note.produced = r.acknowledged;
  d.note.errors = r.errors;
  d.note.latency_sum_ms = r.latency_sum_ms;
  if (r.acknowledged > 0) d.note.latency_max_ms = r.latency_max_ms;
  if (r.first_failed < n) d.note.error = r.error;
  return d;
}

bool ProduceFailureRecord(const TargetConfig& t, const std::string& doc, const std::string& stream_arn,
                          const std::string& shard_id, std::string* error) {
  targets::KafkaProducer* producer = ProducerFor(t, error);
  if (producer == nullptr) return false;
  // Keyed by shard: a shard's failure records stay in order in one partition.
  std::vector<targets::KafkaMessage> messages(1);
  messages[0].key = stream_arn + "/" + shard_id;
  messages[0].value = &doc;
  messages[0].headers = {{"eventSourceARN", stream_arn}, {"shardId", shard_id}};
  targets::KafkaBatchResult r = producer->Produce(t.kafka_topic, messages, CheckInterrupts);
  if (r.first_failed == 0) *error = r.error;
  return r.first_failed == 1;
}

void NoteKafka(int32_t mapping_id, const KafkaNote& note) {
  Oid types[6] = {INT4OID, INT8OID, INT8OID, FLOAT8OID, FLOAT8OID, TEXTOID};
  Datum values[6] = {Int32GetDatum(mapping_id), Int64GetDatum(note.produced), Int64GetDatum(note.errors),
                     Float8GetDatum(note.latency_sum_ms), Float8GetDatum(note.latency_max_ms.value_or(0)), 0};
  char nulls[7] = "      ";
  if (!note.latency_max_ms) nulls[4] = 'n';
  if (note.error)
    values[5] = PgCall([&] { return CStringGetTextDatum(note.error->c_str()); });
  else
    nulls[5] = 'n';
  spi::ExecPrepared("SELECT streams._kafka_note($1, $2, $3, $4, $5, $6)", 6, types, values, nulls, false);
}

std::string NotAllowedText(const TargetConfig& t) {
  if (t.kafka) return "a broker of " + t.url + " is not in pg_streams.kafka_allowed_brokers";
  return "the host of " + t.url + " is not in pg_streams.http_allowed_hosts";
}

// A batch to a Kafka function: acknowledged records move the checkpoint
// (a partial delivery is a partial success); the brokers' unavailability is
// answered like a throttle (no retry used); other failures (a message too
// large, authorization) are function errors.
Dispatcher::Outcome Dispatcher::InvokeKafka(const Shard& sh, const Plan& plan) {
  Outcome out;
  KafkaDelivery d = ProduceRecords(cfg_.target, plan.records, plan.n, cfg_.stream_arn, sh.state.shard_id);
  out.kafka = d.note;
  if (d.first_failed >= plan.n) return out;
  out.error = d.error;
  if (d.first_failed > 0) {
    out.verdict.kind = ResponseVerdict::kPartial;
    out.verdict.first_failed = d.first_failed;
  } else if (d.unavailable) {
    out.throttled = true;
  } else {
    out.verdict.kind = ResponseVerdict::kFailure;
    out.function_error = "Unhandled";
  }
  return out;
}

}  // namespace pgs::dispatch
