// A librdkafka producer for Kafka targets: idempotent, acks=all, its queue
// bounded. Pure C++ (no PostgreSQL calls): librdkafka's callbacks run in the
// thread that polls (this one) and never throw; `poll` passed to Produce may
// throw (a PgError on SIGTERM), between librdkafka calls only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace pgs::targets {

// The producer's queue holds at most this many messages and kilobytes (a
// batch is at most 10,000 records and 6 MB of record text): memory does not
// grow with the backlog.
constexpr int kKafkaQueueMessages = 20000;
constexpr int kKafkaQueueKBytes = 32 * 1024;

using KafkaSettings = std::vector<std::pair<std::string, std::string>>;

struct KafkaMessage {
  std::string key;
  const std::string* value = nullptr;  // not copied by the caller; librdkafka copies it
  std::vector<std::pair<std::string, std::string>> headers;
};

// What became of a batch. Messages [0, first_failed) were acknowledged by the
// brokers (all of them when first_failed == n).
struct KafkaBatchResult {
  size_t first_failed = 0;
  bool unavailable = false;  // the first failure is the brokers' (down, timeout, leaders), not the message's
  std::string error;         // of the first failed message
  int64_t acknowledged = 0;  // messages with a successful delivery report
  int64_t errors = 0;        // messages that failed (or were not produced after a failure)
  double latency_sum_ms = 0;  // produce to acknowledgement, over `acknowledged`
  double latency_max_ms = 0;
};

class KafkaProducer {
 public:
  // nullptr and *error set when librdkafka refuses the configuration.
  static std::unique_ptr<KafkaProducer> Create(const std::string& bootstrap, const KafkaSettings& settings,
                                               int timeout_ms, std::string* error);
  ~KafkaProducer();
  KafkaProducer(const KafkaProducer&) = delete;
  KafkaProducer& operator=(const KafkaProducer&) = delete;

  // Produces the messages in order and waits for every delivery report (up
  // to the message timeout). A message librdkafka refuses at once (too
  // large, ...) stops the batch there: later messages are not produced, so
  // no key's later record is written before its earlier one. Calls poll()
  // at least every 100 ms while waiting.
  KafkaBatchResult Produce(const std::string& topic, const std::vector<KafkaMessage>& messages,
                           const std::function<void()>& poll);

  // A fatal error (idempotence lost): the producer must be replaced.
  bool Broken() const;

  struct Batch;  // delivery reports of the batch in flight

 private:
  KafkaProducer() = default;
  void* rk_ = nullptr;  // rd_kafka_t
  int timeout_ms_ = 30000;
  uint32_t generation_ = 0;  // tags messages: reports of an abandoned batch are ignored
  Batch* current_ = nullptr;
  friend struct ProducerAccess;
};

// The producer of a Kafka function in this process, created on first use
// and replaced when its configuration changes or it broke; nullptr (and
// *error) when the configuration is refused.
KafkaProducer* KafkaProducerFor(int32_t function_id, const std::string& bootstrap, const KafkaSettings& settings,
                                int timeout_ms, std::string* error);

// Parses a JSON object of settings (values as strings); false if it is not one.
bool ParseKafkaSettings(const std::string& json, KafkaSettings* out);

}  // namespace pgs::targets

#include "targets/kafka_message.hpp"  // KafkaMessageOf
