#include "dispatch/window.hpp"

#include <nlohmann/json.hpp>

#include "dispatch/event.hpp"

namespace pgs::dispatch::window {

int64_t WindowOf(int64_t arrival_us, int64_t size_us, int64_t base_us) {
  int64_t start = arrival_us >= 0 ? arrival_us / size_us * size_us : -((-arrival_us + size_us - 1) / size_us) * size_us;
  return start < base_us ? base_us : start;
}

namespace {

std::string Tail(const Invoke& inv, const std::string& state, const std::string& shard_id,
                 const std::string& stream_arn) {
  using nlohmann::json;
  std::string out = ",\"window\":{\"start\":";
  out += json(IsoUtc(inv.start_us, false)).dump();
  out += ",\"end\":";
  out += json(IsoUtc(inv.end_us, false)).dump();
  out += "},\"state\":";
  out += state;
  out += ",\"shardId\":";
  out += json(shard_id).dump();
  out += ",\"eventSourceARN\":";
  out += json(stream_arn).dump();
  out += ",\"isFinalInvokeForWindow\":";
  out += inv.final ? "true" : "false";
  out += ",\"isWindowTerminatedEarly\":";
  out += inv.early ? "true" : "false";
  out += '}';
  return out;
}

}  // namespace

size_t EnvelopeExtra(const std::string& state, const std::string& shard_id, const std::string& stream_arn) {
  Invoke inv;
  inv.start_us = inv.end_us = 0;
  inv.final = inv.early = false;  // "false" is the longer spelling
  return Tail(inv, state, shard_id, stream_arn).size() - 1;
}

std::string BuildEvent(const std::vector<Record>& records, size_t from, size_t to, const Invoke& inv,
                       const std::string& state, const std::string& shard_id, const std::string& stream_arn) {
  std::string out = dispatch::BuildEvent(records, from, to);
  out.pop_back();  // '}'
  out += Tail(inv, state, shard_id, stream_arn);
  return out;
}

Reply ReadReply(const std::optional<std::string>& body) {
  using nlohmann::json;
  Reply r;
  if (!body) {
    r.error = "a function of a mapping with TumblingWindowInSeconds must return a top-level state object; it returned nothing";
    return r;
  }
  json doc = json::parse(*body, nullptr, false);
  if (doc.is_discarded()) {
    r.error = "a function of a mapping with TumblingWindowInSeconds must return a top-level state object; its response is not JSON";
    return r;
  }
  auto it = doc.is_object() ? doc.find("state") : doc.end();
  if (!doc.is_object() || it == doc.end() || !it->is_object()) {
    r.error = "a function of a mapping with TumblingWindowInSeconds must return a top-level state object";
    return r;
  }
  r.ok = true;
  r.state = it->dump();
  if (r.state.size() > kMaxState) {
    r.too_big = true;
    r.state = "{}";
  }
  return r;
}

void AfterSuccess(ShardWindow& w, const Invoke& inv, const Reply& reply, bool whole_batch) {
  if (inv.final && whole_batch) {
    // The window is over: its state is dropped.
    w.start_us = 0;
    w.state = "{}";
    w.early = false;
    w.floor_us = inv.end_us;
    return;
  }
  w.start_us = inv.start_us;
  w.early = inv.early || reply.too_big;
  w.state = reply.too_big || !reply.ok ? "{}" : reply.state;
}

std::string KeyMaterial(const std::string& mapping_uuid, const Invoke& inv, const std::string& first,
                        const std::string& last) {
  return mapping_uuid + "/window/" + std::to_string(inv.start_us) + "/" + first + "/" + last + "/" +
         (inv.final ? "final" : "-") + "/" + (inv.early ? "early" : "-");
}

}  // namespace pgs::dispatch::window
