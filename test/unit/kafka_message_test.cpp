// Unit test of a record's Kafka key and headers (src/targets/kafka_message.cpp):
// the envelope fast path gives what a full parse gives, whatever the images hold.
// sources: src/targets/kafka_message.cpp
#include "targets/kafka_producer.hpp"

#include <cstdio>
#include <string>

namespace {

int failures = 0;
int count = 0;

void Check(bool ok, const std::string& what) {
  ++count;
  if (!ok) ++failures;
  std::printf("%s %d - %s\n", ok ? "ok" : "not ok", count, what.c_str());
}

std::string Record(const std::string& keys, const std::string& images, const std::string& table = "t") {
  return "{\"eventID\":\"0123456789abcdef0123456789abcdef\",\"eventName\":\"MODIFY\",\"eventVersion\":\"1.1\","
         "\"eventSource\":\"aws:dynamodb\",\"awsRegion\":\"us-east-1\",\"dynamodb\":{\"ApproximateCreationDateTime\":"
         "1700000000.0,\"Keys\":" + keys + images + ",\"SequenceNumber\":\"1000000000000000000420000000007\","
         "\"SizeBytes\":40,\"StreamViewType\":\"NEW_AND_OLD_IMAGES\"},\"eventSourceARN\":"
         "\"arn:aws:dynamodb:us-east-1:000000000000:table/" + table + "/stream/2026-12-02T16:00:00.000\"}";
}

void Same(const std::string& record, const std::string& what, const std::string& want_key) {
  pgs::targets::KafkaMessage fast, parsed;
  bool a = pgs::targets::KafkaMessageOf(record, &fast);
  bool b = pgs::targets::KafkaMessageOfParsed(record, &parsed);
  Check(a && b && fast.key == parsed.key && fast.headers == parsed.headers, what + ": as a full parse");
  Check(fast.key == want_key, what + ": key " + want_key + " (got " + fast.key + ")");
}

}  // namespace

int main() {
  Same(Record("{\"id\":{\"N\":\"1\"}}", ",\"NewImage\":{\"id\":{\"N\":\"1\"}}"), "plain", "{\"id\":{\"N\":\"1\"}}");
  Same(Record("{\"z\":{\"S\":\"b\"},\"a\":{\"N\":\"2\"}}", ""), "keys sorted", "{\"a\":{\"N\":\"2\"},\"z\":{\"S\":\"b\"}}");
  Same(Record("{ \"id\" : {\"S\":\"}{\\\"\"} }", ""), "white space, braces and quotes in a key value",
       "{\"id\":{\"S\":\"}{\\\"\"}}");
  // Images holding what the fast path looks for.
  Same(Record("{\"id\":{\"N\":\"3\"}}",
              ",\"NewImage\":{\"Keys\":{\"S\":\".0,\\\"Keys\\\":{\"},\"SequenceNumber\":{\"S\":\"1\"},"
              "\"x\":{\"M\":{\"SequenceNumber\":{\"S\":\"2\"}}}},\"OldImage\":{\"s\":{\"S\":\",\\\"SequenceNumber\\\":\\\"9\"}}"),
       "images with Keys and SequenceNumber attributes and texts", "{\"id\":{\"N\":\"3\"}}");
  Same(Record("{\"id\":{\"S\":\"\\u00e9\\\\\"}}", "", "we\\\"ird"), "escapes in the key and the table name",
       "{\"id\":{\"S\":\"\xc3\xa9\\\\\"}}");
  pgs::targets::KafkaMessage m;
  Check(pgs::targets::KafkaMessageOf(Record("{\"id\":{\"N\":\"1\"}}", ""), &m) && m.headers.size() == 3 &&
            m.headers[0].second == "0123456789abcdef0123456789abcdef" && m.headers[1].first == "SequenceNumber" &&
            m.headers[1].second == "1000000000000000000420000000007" && m.headers[2].second == "MODIFY",
        "headers eventID, SequenceNumber, eventName");
  // Another layout (keys in another order): the full parse answers.
  std::string other = "{\"eventName\":\"INSERT\",\"eventID\":\"e\",\"dynamodb\":{\"Keys\":{\"b\":1,\"a\":2},"
                      "\"SequenceNumber\":\"5\"}}";
  Check(pgs::targets::KafkaMessageOf(other, &m) && m.key == "{\"a\":2,\"b\":1}" && m.headers.size() == 3 &&
            m.headers[0].second == "e",
        "another layout is parsed whole");
  Check(!pgs::targets::KafkaMessageOf("[1]", &m), "not a record");
  std::printf("1..%d\n", count);
  return failures == 0 ? 0 : 1;
}
