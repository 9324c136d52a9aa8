#include "targets/kafka_message.hpp"

#include <cstring>
#include <nlohmann/json.hpp>

#include "targets/kafka_producer.hpp"

namespace pgs::targets {
namespace {

std::string Canonical(const nlohmann::json& j) {
  // nlohmann's objects are ordered maps: dump() writes keys sorted, compact.
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// The end (one past '}') of the JSON object starting at text[from] == '{',
// or npos when it does not end.
size_t ObjectEnd(const std::string& text, size_t from) {
  int depth = 0;
  bool in_string = false;
  for (size_t i = from; i < text.size(); ++i) {
    char c = text[i];
    if (in_string) {
      if (c == '\\')
        ++i;
      else if (c == '"')
        in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{') {
      ++depth;
    } else if (c == '}' && --depth == 0) {
      return i + 1;
    }
  }
  return std::string::npos;
}

// The plain string value (no escapes) starting at text[from], up to the next '"'.
bool PlainString(const std::string& text, size_t from, std::string* out) {
  size_t end = text.find('"', from);
  if (end == std::string::npos || text.find('\\', from) < end) return false;
  out->assign(text, from, end - from);
  return true;
}

bool FastPath(const std::string& text, KafkaMessage* out) {
  static const char kStart[] = "{\"eventID\":\"";
  static const char kName[] = "\",\"eventName\":\"";
  static const char kKeys[] = ".0,\"Keys\":{";
  static const char kSeq[] = ",\"SequenceNumber\":\"";
  const size_t start_len = sizeof(kStart) - 1, name_len = sizeof(kName) - 1;
  std::string event_id, event_name, seq;
  // {"eventID":"<32 hex>","eventName":"<name>", ... .0,"Keys":{...}
  if (text.compare(0, start_len, kStart) != 0 || text.size() < start_len + 32 + name_len) return false;
  event_id.assign(text, start_len, 32);
  if (text.compare(start_len + 32, name_len, kName) != 0) return false;
  if (!PlainString(text, start_len + 32 + name_len, &event_name)) return false;
  // Nothing a user writes comes before Keys: its first occurrence is it.
  size_t keys = text.find(kKeys, start_len + 32 + name_len);
  if (keys == std::string::npos) return false;
  keys += sizeof(kKeys) - 2;  // at '{'
  size_t keys_end = ObjectEnd(text, keys);
  if (keys_end == std::string::npos) return false;
  // After the images come only SequenceNumber, SizeBytes and the envelope's
  // tail, where a quote is always escaped: the last occurrence is it.
  size_t s = text.rfind(kSeq);
  if (s == std::string::npos || s < keys_end || !PlainString(text, s + sizeof(kSeq) - 1, &seq)) return false;
  nlohmann::json k = nlohmann::json::parse(text.begin() + static_cast<std::ptrdiff_t>(keys),
                                           text.begin() + static_cast<std::ptrdiff_t>(keys_end), nullptr, false);
  if (!k.is_object()) return false;
  out->key = Canonical(k);
  out->headers.clear();
  out->headers.emplace_back("eventID", std::move(event_id));
  out->headers.emplace_back("SequenceNumber", std::move(seq));
  out->headers.emplace_back("eventName", std::move(event_name));
  return true;
}

}  // namespace

bool KafkaMessageOfParsed(const std::string& record, KafkaMessage* out) {
  nlohmann::json doc = nlohmann::json::parse(record, nullptr, false);
  if (!doc.is_object() || !doc.contains("dynamodb") || !doc["dynamodb"].is_object()) return false;
  const nlohmann::json& ddb = doc["dynamodb"];
  out->key = ddb.contains("Keys") ? Canonical(ddb["Keys"]) : "";
  out->headers.clear();
  auto header = [&](const char* name, const nlohmann::json& j, const char* field) {
    if (j.contains(field) && j[field].is_string()) out->headers.emplace_back(name, j[field].get<std::string>());
  };
  header("eventID", doc, "eventID");
  header("SequenceNumber", ddb, "SequenceNumber");
  header("eventName", doc, "eventName");
  return true;
}

bool KafkaMessageOf(const std::string& record, KafkaMessage* out) {
  return FastPath(record, out) || KafkaMessageOfParsed(record, out);
}

}  // namespace pgs::targets
