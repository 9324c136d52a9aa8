// Test helper: librdkafka's mock Kafka cluster on loopback, driven by
// commands on stdin (one per line, each answered by one line on stdout:
// "ok ..." or "error ..."). Built by the TAP tests that use it (KafkaMock.pm).
//
//   kafka_mock BROKERS          prints "bootstrap host:port,..." first
//   topic NAME PARTITIONS       creates a topic (replication factor: min(3, BROKERS))
//   leader TOPIC PARTITION ID   makes broker ID the partition's leader
//   errors ID COUNT CODE        broker ID answers its next COUNT Produce requests with error CODE
//   pending ID                  "ok N": errors pushed on broker ID not yet returned
//   rtt ID MS                   broker ID answers MS milliseconds late
//   down ID / up ID             takes broker ID down (connections closed, refused) or back up
//   consume TOPIC FILE          writes every message now in the topic to FILE, one JSON
//                               object a line: p (partition), o (offset), key, value, headers
//   quit
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <cstdio>
#include <cstring>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

namespace {

constexpr int kProduce = 0;  // Kafka's ApiKey of Produce requests

std::string Json(const char* p, size_t n) {
  std::string out = "\"";
  for (size_t i = 0; i < n; ++i) {
    unsigned char c = static_cast<unsigned char>(p[i]);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20) {
      char buf[8];
      snprintf(buf, sizeof(buf), "\\u%04x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

std::string Consume(const std::string& bootstrap, const std::string& topic, const std::string& file) {
  char err[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap.c_str(), err, sizeof(err));
  rd_kafka_conf_set(conf, "group.id", "kafka_mock", err, sizeof(err));
  rd_kafka_conf_set(conf, "enable.partition.eof", "true", err, sizeof(err));
  rd_kafka_conf_set(conf, "enable.auto.commit", "false", err, sizeof(err));
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
  if (rk == nullptr) return std::string("error consumer: ") + err;
  rd_kafka_poll_set_consumer(rk);
  rd_kafka_topic_t* t = rd_kafka_topic_new(rk, topic.c_str(), nullptr);
  const rd_kafka_metadata_t* md = nullptr;
  if (rd_kafka_metadata(rk, 0, t, &md, 10000) != RD_KAFKA_RESP_ERR_NO_ERROR || md->topic_cnt != 1 ||
      md->topics[0].err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    if (md) rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(t);
    rd_kafka_destroy(rk);
    return "error no metadata for topic " + topic;
  }
  int parts = md->topics[0].partition_cnt;
  rd_kafka_metadata_destroy(md);
  rd_kafka_topic_destroy(t);
  rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(parts);
  for (int p = 0; p < parts; ++p)
    rd_kafka_topic_partition_list_add(list, topic.c_str(), p)->offset = RD_KAFKA_OFFSET_BEGINNING;
  rd_kafka_assign(rk, list);
  rd_kafka_topic_partition_list_destroy(list);
  FILE* out = fopen(file.c_str(), "w");
  if (out == nullptr) {
    rd_kafka_destroy(rk);
    return "error cannot write " + file;
  }
  int eof = 0, count = 0, idle = 0;
  std::map<int, bool> at_end;
  while (eof < parts && idle < 300) {
    rd_kafka_message_t* m = rd_kafka_consumer_poll(rk, 100);
    if (m == nullptr) {
      ++idle;
      continue;
    }
    idle = 0;
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      if (!at_end[m->partition]) ++eof;
      at_end[m->partition] = true;
    } else if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      std::string line = "{\"p\":" + std::to_string(m->partition) + ",\"o\":" + std::to_string(m->offset) +
                         ",\"key\":" + Json(static_cast<const char*>(m->key), m->key_len) +
                         ",\"value\":" + Json(static_cast<const char*>(m->payload), m->len) + ",\"headers\":{";
      rd_kafka_headers_t* hdrs = nullptr;
      if (rd_kafka_message_headers(m, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        const char* name;
        const void* value;
        size_t size;
        for (size_t i = 0; rd_kafka_header_get_all(hdrs, i, &name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR; ++i)
          line += (i ? "," : "") + Json(name, strlen(name)) + ":" + Json(static_cast<const char*>(value), size);
      }
      line += "}}\n";
      fputs(line.c_str(), out);
      ++count;
    }
    rd_kafka_message_destroy(m);
  }
  fclose(out);
  rd_kafka_consumer_close(rk);
  rd_kafka_destroy(rk);
  if (eof < parts) return "error timed out reading " + topic;
  return "ok " + std::to_string(count);
}

}  // namespace

int main(int argc, char** argv) {
  int brokers = argc > 1 ? atoi(argv[1]) : 3;
  char err[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  rd_kafka_conf_set(conf, "log_level", "3", err, sizeof(err));
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
  if (rk == nullptr) {
    fprintf(stderr, "%s\n", err);
    return 1;
  }
  rd_kafka_mock_cluster_t* mc = rd_kafka_mock_cluster_new(rk, brokers);
  if (mc == nullptr) {
    fprintf(stderr, "no mock cluster\n");
    return 1;
  }
  std::string bootstrap = rd_kafka_mock_cluster_bootstraps(mc);
  std::cout << "bootstrap " << bootstrap << std::endl;
  std::string line;
  while (std::getline(std::cin, line)) {
    std::istringstream in(line);
    std::string cmd, a, b;
    int n = 0, x = 0;
    in >> cmd;
    std::string reply = "ok";
    if (cmd == "topic") {
      in >> a >> n;
      if (rd_kafka_mock_topic_create(mc, a.c_str(), n, brokers < 3 ? brokers : 3)) reply = "error topic";
    } else if (cmd == "leader") {
      in >> a >> n >> x;
      if (rd_kafka_mock_partition_set_leader(mc, a.c_str(), n, x)) reply = "error leader";
    } else if (cmd == "errors") {
      int id, code;
      in >> id >> n >> code;
      for (int i = 0; i < n; ++i)
        if (rd_kafka_mock_broker_push_request_error_rtts(mc, id, kProduce, 1,
                                                         static_cast<rd_kafka_resp_err_t>(code), 0))
          reply = "error errors";
    } else if (cmd == "pending") {
      size_t cnt = 0;
      in >> x;
      if (rd_kafka_mock_broker_error_stack_cnt(mc, x, kProduce, &cnt)) cnt = 0;
      reply = "ok " + std::to_string(cnt);
    } else if (cmd == "rtt") {
      in >> x >> n;
      if (rd_kafka_mock_broker_set_rtt(mc, x, n)) reply = "error rtt";
    } else if (cmd == "down" || cmd == "up") {
      in >> x;
      if ((cmd == "down" ? rd_kafka_mock_broker_set_down(mc, x) : rd_kafka_mock_broker_set_up(mc, x)))
        reply = "error " + cmd;
    } else if (cmd == "consume") {
      in >> a >> b;
      reply = Consume(bootstrap, a, b);
    } else if (cmd == "quit") {
      break;
    } else {
      reply = "error unknown command " + cmd;
    }
    std::cout << reply << std::endl;
  }
  rd_kafka_mock_cluster_destroy(mc);
  rd_kafka_destroy(rk);
  return 0;
}
