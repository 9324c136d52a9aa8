// Kafka targets in the dispatcher: each record of a batch is one message
// (targets/kafka_producer.hpp), produced outside any transaction; what the
// brokers acknowledged is counted in streams.kafka_delivery.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "dispatch/model.hpp"

namespace pgs::dispatch {

// Counters of one batch for streams.kafka_delivery.
struct KafkaNote {
  int64_t produced = 0;  // acknowledged messages
  int64_t errors = 0;
  double latency_sum_ms = 0;
  std::optional<double> latency_max_ms;
  std::optional<std::string> error;
};

// What became of records [0, n): [0, first_failed) were acknowledged.
struct KafkaDelivery {
  size_t first_failed = 0;
  bool unavailable = false;  // brokers down, timeouts, leader changes: no retry used
  std::string error;
  KafkaNote note;
};

// Fills the Kafka fields of t (streams._kafka_target_config); SPI connected.
void LoadKafkaTarget(TargetConfig* t);

// Produces records [0, n) of a shard to t's topic and waits for their
// delivery reports (calls CHECK_FOR_INTERRUPTS while waiting).
KafkaDelivery ProduceRecords(const TargetConfig& t, const std::vector<Record>& records, size_t n,
                             const std::string& stream_arn, const std::string& shard_id);

// Produces one failure record (OnFailure destination); false and *error when
// it was not acknowledged.
bool ProduceFailureRecord(const TargetConfig& t, const std::string& doc, const std::string& stream_arn,
                          const std::string& shard_id, std::string* error);

// Adds a batch's counters to streams.kafka_delivery; in a transaction, SPI connected.
void NoteKafka(int32_t mapping_id, const KafkaNote& note);

// Why a function cannot be called: its host (HTTP) or a broker (Kafka) is not allowed.
std::string NotAllowedText(const TargetConfig& t);

}  // namespace pgs::dispatch
