#include "targets/kafka_producer.hpp"

#include <librdkafka/rdkafka.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>

namespace pgs::targets {

namespace {

constexpr int kPending = -1;

int64_t NowUs() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

rd_kafka_t* Rk(void* p) { return static_cast<rd_kafka_t*>(p); }

// Settings whose values an error text must not quote.
bool IsSecret(const std::string& name) {
  return name == "sasl.password" || name == "ssl.key.password" || name == "ssl.key.pem";
}

// Failures that are the brokers' state rather than the message's: they do
// not use up MaximumRetryAttempts (as throttles do not).
bool BrokersUnavailable(rd_kafka_resp_err_t err) {
  switch (err) {
    case RD_KAFKA_RESP_ERR__MSG_TIMED_OUT:
    case RD_KAFKA_RESP_ERR__TIMED_OUT:
    case RD_KAFKA_RESP_ERR__TIMED_OUT_QUEUE:
    case RD_KAFKA_RESP_ERR__TRANSPORT:
    case RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN:
    case RD_KAFKA_RESP_ERR__RESOLVE:
    case RD_KAFKA_RESP_ERR__QUEUE_FULL:
    case RD_KAFKA_RESP_ERR__PURGE_QUEUE:
    case RD_KAFKA_RESP_ERR__PURGE_INFLIGHT:
    case RD_KAFKA_RESP_ERR__FATAL:
    case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
    case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
    case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
    case RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION:
    case RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT:
    case RD_KAFKA_RESP_ERR_BROKER_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_NETWORK_EXCEPTION:
    case RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS:
    case RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND:
    case RD_KAFKA_RESP_ERR_KAFKA_STORAGE_ERROR:
    case RD_KAFKA_RESP_ERR_THROTTLING_QUOTA_EXCEEDED:
      return true;
    default:
      return false;
  }
}

std::string ErrorText(rd_kafka_t* rk, rd_kafka_resp_err_t err) {
  std::string text = std::string("Kafka: ") + rd_kafka_err2str(err) + " (" + rd_kafka_err2name(err) + ")";
  char fatal[256];
  if (err == RD_KAFKA_RESP_ERR__FATAL && rd_kafka_fatal_error(rk, fatal, sizeof(fatal)) != RD_KAFKA_RESP_ERR_NO_ERROR)
    text += ": " + std::string(fatal);
  return text;
}

}  // namespace

struct KafkaProducer::Batch {
  uint32_t generation = 0;
  std::vector<int> state;  // kPending, 0 (acknowledged) or the error code
  std::vector<int64_t> sent_us;
  size_t pending = 0;
  double latency_sum_ms = 0, latency_max_ms = 0;
};

struct ProducerAccess {
  // librdkafka's delivery report callback: runs in rd_kafka_poll() on this
  // thread; must not throw.
  static void OnDelivery(rd_kafka_t*, const rd_kafka_message_t* m, void* opaque) noexcept {
    auto* p = static_cast<KafkaProducer*>(opaque);
    KafkaProducer::Batch* b = p != nullptr ? p->current_ : nullptr;
    auto tag = reinterpret_cast<uintptr_t>(m->_private);
    if (b == nullptr || (tag >> 32) != b->generation) return;  // of an abandoned batch
    size_t i = tag & 0xffffffffu;
    if (i >= b->state.size() || b->state[i] != kPending) return;
    b->state[i] = m->err;
    --b->pending;
    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      double ms = static_cast<double>(NowUs() - b->sent_us[i]) / 1000.0;
      b->latency_sum_ms += ms;
      if (ms > b->latency_max_ms) b->latency_max_ms = ms;
    }
  }
  static void SetCurrent(KafkaProducer* p, KafkaProducer::Batch* b) { p->current_ = b; }
};

std::unique_ptr<KafkaProducer> KafkaProducer::Create(const std::string& bootstrap, const KafkaSettings& settings,
                                                     int timeout_ms, std::string* error) {
  std::unique_ptr<KafkaProducer> p(new KafkaProducer());
  p->timeout_ms_ = timeout_ms;
  char errstr[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  auto set = [&](const std::string& name, const std::string& value) {
    if (rd_kafka_conf_set(conf, name.c_str(), value.c_str(), errstr, sizeof(errstr)) == RD_KAFKA_CONF_OK) return true;
    *error = "Kafka setting " + name + (IsSecret(name) ? " is refused by librdkafka" : ": " + std::string(errstr));
    return false;
  };
  bool ok = set("partitioner", "murmur2_random");  // as Java producers: records of a key in one partition
  for (const auto& [name, value] : settings) ok = ok && set(name, value);
  ok = ok && set("bootstrap.servers", bootstrap) && set("enable.idempotence", "true") && set("acks", "all") &&
       set("message.timeout.ms", std::to_string(timeout_ms)) &&
       set("queue.buffering.max.messages", std::to_string(kKafkaQueueMessages)) &&
       set("queue.buffering.max.kbytes", std::to_string(kKafkaQueueKBytes)) && set("log_level", "4");
  if (!ok) {
    rd_kafka_conf_destroy(conf);
    return nullptr;
  }
  rd_kafka_conf_set_dr_msg_cb(conf, &ProducerAccess::OnDelivery);
  rd_kafka_conf_set_opaque(conf, p.get());
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
  if (rk == nullptr) {
    rd_kafka_conf_destroy(conf);
    *error = "Kafka producer: " + std::string(errstr);
    return nullptr;
  }
  p->rk_ = rk;
  return p;
}

KafkaProducer::~KafkaProducer() {
  if (rk_ == nullptr) return;
  current_ = nullptr;
  rd_kafka_purge(Rk(rk_), RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
  rd_kafka_poll(Rk(rk_), 0);
  rd_kafka_destroy(Rk(rk_));
}

bool KafkaProducer::Broken() const {
  return rd_kafka_fatal_error(Rk(rk_), nullptr, 0) != RD_KAFKA_RESP_ERR_NO_ERROR;
}

KafkaBatchResult KafkaProducer::Produce(const std::string& topic, const std::vector<KafkaMessage>& messages,
                                        const std::function<void()>& poll) {
  rd_kafka_t* rk = Rk(rk_);
  Batch b;
  b.generation = ++generation_;
  b.state.assign(messages.size(), kPending);
  b.sent_us.assign(messages.size(), 0);
  // The batch's reports go to `b` only while this call runs (also when
  // poll() throws).
  struct Current {
    KafkaProducer* p;
    ~Current() { ProducerAccess::SetCurrent(p, nullptr); }
  } current{this};
  ProducerAccess::SetCurrent(this, &b);

  const int64_t deadline = NowUs() + (int64_t{timeout_ms_} + 2000) * 1000;
  for (size_t i = 0; i < messages.size(); ++i) {
    const KafkaMessage& m = messages[i];
    std::unique_ptr<rd_kafka_headers_t, void (*)(rd_kafka_headers_t*)> headers(
        rd_kafka_headers_new(m.headers.size()), rd_kafka_headers_destroy);
    for (const auto& [name, value] : m.headers)
      rd_kafka_header_add(headers.get(), name.data(), static_cast<ssize_t>(name.size()), value.data(),
                          static_cast<ssize_t>(value.size()));
    auto tag = (uintptr_t{b.generation} << 32) | static_cast<uintptr_t>(i);
    rd_kafka_resp_err_t err;
    for (;;) {
      b.sent_us[i] = NowUs();
      err = rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic.c_str()),
                              RD_KAFKA_V_KEY(m.key.data(), m.key.size()),
                              RD_KAFKA_V_VALUE(const_cast<char*>(m.value->data()), m.value->size()),
                              RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS(headers.get()),
                              RD_KAFKA_V_OPAQUE(reinterpret_cast<void*>(tag)), RD_KAFKA_V_END);
      if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL || NowUs() > deadline) break;
      rd_kafka_poll(rk, 100);  // the queue is full: wait for reports
      poll();
    }
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      // Refused at once: later messages are not produced (see the header).
      b.state[i] = err;
      break;
    }
    headers.release();  // librdkafka owns them now
    ++b.pending;
  }
  while (b.pending > 0) {
    rd_kafka_poll(rk, 100);
    if (b.pending == 0) break;
    poll();
    if (NowUs() > deadline) {
      // Reports overdue (message.timeout.ms should have produced them):
      // give the messages up; their fate is unknown, so they count as failed.
      rd_kafka_purge(rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
      rd_kafka_poll(rk, 0);
      break;
    }
  }

  KafkaBatchResult r;
  r.first_failed = messages.size();
  for (size_t i = 0; i < messages.size(); ++i) {
    int s = b.state[i];
    if (s == 0) {
      ++r.acknowledged;
      continue;
    }
    if (s != kPending) ++r.errors;
    if (r.first_failed == messages.size()) {
      // A message after a refused one was not produced: kPending.
      auto err = s == kPending ? RD_KAFKA_RESP_ERR__MSG_TIMED_OUT : static_cast<rd_kafka_resp_err_t>(s);
      r.first_failed = i;
      r.unavailable = BrokersUnavailable(err);
      r.error = ErrorText(rk, err);
    }
  }
  r.latency_sum_ms = b.latency_sum_ms;
  r.latency_max_ms = b.latency_max_ms;
  return r;
}

KafkaProducer* KafkaProducerFor(int32_t function_id, const std::string& bootstrap, const KafkaSettings& settings,
                                int timeout_ms, std::string* error) {
  // One producer per Kafka function in this process (RAII: destroyed with
  // the map at exit, or when replaced).
  static std::map<int32_t, std::pair<std::string, std::unique_ptr<KafkaProducer>>> producers;
  std::string fingerprint = bootstrap + '\n' + std::to_string(timeout_ms);
  for (const auto& [name, value] : settings) fingerprint += '\n' + name + '=' + value;
  auto& entry = producers[function_id];
  if (entry.second && (entry.first != fingerprint || entry.second->Broken())) entry.second.reset();
  if (!entry.second) {
    entry.second = KafkaProducer::Create(bootstrap, settings, timeout_ms, error);
    entry.first = fingerprint;
  }
  return entry.second.get();
}

bool ParseKafkaSettings(const std::string& json, KafkaSettings* out) {
  nlohmann::json doc = nlohmann::json::parse(json, nullptr, false);
  if (!doc.is_object()) return false;
  out->clear();
  for (auto it = doc.begin(); it != doc.end(); ++it)
    out->emplace_back(it.key(), it.value().is_string() ? it.value().get<std::string>() : it.value().dump());
  return true;
}

}  // namespace pgs::targets
