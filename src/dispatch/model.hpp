// What the dispatcher works with: positions in a shard, records read from
// the stream, a mapping's configuration and the state of one shard.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace pgs::filter {
class Filter;
}

namespace pgs::dispatch {

// A record's place in its shard: (commit LSN, change index). Its
// SequenceNumber is "1" + 20-digit lsn + 10-digit idx (mapping/ids.cpp).
struct Position {
  int64_t lsn = 0;
  int32_t idx = -1;
  bool operator<(const Position& o) const { return lsn < o.lsn || (lsn == o.lsn && idx < o.idx); }
  bool operator==(const Position& o) const { return lsn == o.lsn && idx == o.idx; }
  bool operator<=(const Position& o) const { return !(o < *this); }
};

std::string SequenceNumber(const Position& p);

struct Record {
  Position pos;
  int64_t arrival_us = 0;  // commit time, microseconds since the Unix epoch
  std::string text;        // the stream record's JSON
};

// How to call a registered function (streams._target_config).
struct TargetConfig {
  bool exists = false;
  bool http = false;
  uint32_t handler = 0;  // regprocedure of a SQL target
  int timeout_ms = 3000;
  std::string url;
  std::vector<std::string> headers;  // "Name: value", secret ones included
  bool verify_tls = true;
  std::string ca_file;
  std::string signing_secret;
  bool host_allowed = true;
  int32_t function_id = 0;
  int max_concurrency = 0;  // 0: no cap
  bool kafka = false;        // a Kafka topic (dispatch/kafka.hpp): url holds bootstrap.servers
  std::string kafka_topic;
  std::string kafka_settings;  // JSON object of librdkafka settings, secrets included
};

struct MappingConfig {
  int32_t mapping_id = 0;
  std::string uuid;
  int32_t stream_id = 0;
  std::string stream_arn;
  std::string function_name;
  std::string function_arn;
  TargetConfig target;
  int batch_size = 100;
  int window_s = 0;
  int tumbling_s = 0;    // TumblingWindowInSeconds (0: off)
  int max_retries = -1;  // -1: until the records expire
  int max_age_s = -1;    // -1: no limit
  bool bisect = false;
  bool report_item_failures = false;
  uint32_t dest_table = 0;        // OnFailure table, or
  std::string dest_function;      // OnFailure function (name), or neither
  TargetConfig destination;       // that function
  std::optional<int64_t> start_us;  // AT_TIMESTAMP: skip records committed before it
  std::string filter_criteria;            // FilterCriteria as stored ("" when none)
  std::shared_ptr<filter::Filter> filter;  // compiled from it (Dispatcher::Reload); null: no filter
  uint32_t owner = 0;
  bool enabled = false;
  std::string state;
  std::string last_result;
};

// The durable state of one shard of a mapping (streams.mapping_shard).
struct ShardState {
  int32_t shard = 0;
  std::string shard_id;
  Position checkpoint;                  // last record processed
  std::optional<Position> batch_end;    // the batch being retried/bisected ends here
  std::vector<Position> pending;        // ends of bisected halves still to run (stack)
  int attempts = 0;                     // invocations of the current batch
  int64_t retry_at_us = 0;              // do not invoke before
  int64_t blocked_since_us = 0;         // the current batch has failed since (0: it has not)
};

}  // namespace pgs::dispatch
