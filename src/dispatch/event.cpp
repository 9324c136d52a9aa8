#include "dispatch/event.hpp"

#include <cinttypes>
#include <cstdio>
#include <ctime>
#include <nlohmann/json.hpp>
#include <random>

namespace pgs::dispatch {

std::string SequenceNumber(const Position& p) {
  char buf[40];
  snprintf(buf, sizeof(buf), "1%020" PRId64 "%010" PRId32, p.lsn, p.idx);
  return buf;
}

size_t EventSize(size_t records_bytes, size_t count) {
  return sizeof("{\"Records\":[]}") - 1 + records_bytes + (count > 0 ? count - 1 : 0);
}

std::string BuildEvent(const std::vector<Record>& records, size_t from, size_t to) {
  size_t bytes = 0;
  for (size_t i = from; i < to; ++i) bytes += records[i].text.size();
  std::string out;
  out.reserve(EventSize(bytes, to - from));
  out += "{\"Records\":[";
  for (size_t i = from; i < to; ++i) {
    if (i > from) out += ',';
    out += records[i].text;
  }
  out += "]}";
  return out;
}

std::string IsoUtc(int64_t unix_us, bool millis) {
  time_t secs = static_cast<time_t>(unix_us >= 0 ? unix_us / 1000000 : (unix_us - 999999) / 1000000);
  struct tm tm;
  gmtime_r(&secs, &tm);
  char buf[64];
  size_t n = strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
  if (millis)
    snprintf(buf + n, sizeof(buf) - n, ".%03dZ", static_cast<int>((unix_us - secs * int64_t{1000000}) / 1000));
  else
    snprintf(buf + n, sizeof(buf) - n, "Z");
  return buf;
}

std::string RandomUuid() {
  static std::mt19937_64 rng{std::random_device{}()};
  uint64_t a = rng(), b = rng();
  a = (a & 0xffffffffffff0fffULL) | 0x0000000000004000ULL;  // version 4
  b = (b & 0x3fffffffffffffffULL) | 0x8000000000000000ULL;  // variant 1
  char buf[40];
  snprintf(buf, sizeof(buf), "%08x-%04x-%04x-%04x-%012" PRIx64, static_cast<unsigned>(a >> 32),
           static_cast<unsigned>((a >> 16) & 0xffff), static_cast<unsigned>(a & 0xffff),
           static_cast<unsigned>(b >> 48), static_cast<uint64_t>(b & 0xffffffffffffULL));
  return buf;
}

std::string BuildFailureRecord(const FailureInfo& info, const std::vector<Record>& records, size_t from, size_t to) {
  using nlohmann::ordered_json;
  ordered_json doc;
  doc["requestContext"] = {{"requestId", info.request_id},
                           {"functionArn", info.function_arn},
                           {"condition", info.condition},
                           {"approximateInvokeCount", info.invoke_count}};
  if (info.has_response) {
    ordered_json response = {{"statusCode", info.status_code}, {"executedVersion", "$LATEST"}};
    response["functionError"] = info.function_error ? ordered_json(*info.function_error) : ordered_json(nullptr);
    doc["responseContext"] = response;
  }
  doc["version"] = "1.0";
  doc["timestamp"] = IsoUtc(info.now_us, true);
  doc["DDBStreamBatchInfo"] = {{"shardId", info.shard_id},
                               {"startSequenceNumber", SequenceNumber(records[from].pos)},
                               {"endSequenceNumber", SequenceNumber(records[to - 1].pos)},
                               {"approximateArrivalOfFirstRecord", IsoUtc(records[from].arrival_us, false)},
                               {"approximateArrivalOfLastRecord", IsoUtc(records[to - 1].arrival_us, false)},
                               {"batchSize", to - from},
                               {"streamArn", info.stream_arn}};
  std::string out = doc.dump();
  out.pop_back();  // '}': the payload is spliced in as it is
  out += ",\"payload\":";
  out += BuildEvent(records, from, to);
  out += '}';
  return out;
}

}  // namespace pgs::dispatch
