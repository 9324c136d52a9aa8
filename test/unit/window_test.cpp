// Unit test of tumbling windows' pure rules (src/dispatch/window.cpp): window
// assignment, the windowed envelope, the state reply and what success does.
// sources: src/dispatch/window.cpp src/dispatch/event.cpp
#include "dispatch/window.hpp"

#include "dispatch/event.hpp"

#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>

using namespace pgs::dispatch;

namespace {

int failures = 0;
int count = 0;

void Check(bool ok, const char* what, const std::string& got = "") {
  ++count;
  if (!ok) ++failures;
  std::printf("%s %d - %s", ok ? "ok" : "not ok", count, what);
  if (!ok) std::printf(": got [%s]", got.c_str());
  std::printf("\n");
}

constexpr int64_t kS = 1000000;

}  // namespace

int main() {
  // Epoch-aligned windows, never before the base.
  Check(window::WindowOf(125 * kS + 7, 60 * kS, 0) == 120 * kS, "a record at 125 s is in the window [120, 180)");
  Check(window::WindowOf(120 * kS, 60 * kS, 0) == 120 * kS, "a window's start belongs to it");
  Check(window::WindowOf(179 * kS + 999999, 60 * kS, 0) == 120 * kS, "its last microsecond too");
  Check(window::WindowOf(100 * kS, 60 * kS, 180 * kS) == 180 * kS, "a late record goes to the window at the base");

  // The envelope: AWS's keys, valid JSON, the size it adds.
  std::vector<Record> recs(2);
  recs[0].text = R"({"eventID":"a"})";
  recs[1].text = R"({"eventID":"b"})";
  window::Invoke inv;
  inv.on = true;
  inv.start_us = 1606928400 * kS;  // 2020-12-02T17:00:00Z
  inv.end_us = inv.start_us + 300 * kS;
  inv.final = true;
  std::string ev = window::BuildEvent(recs, 0, 2, inv, R"({"1":"state1"})", "shard-1", "arn:x");
  auto doc = nlohmann::json::parse(ev, nullptr, false);
  Check(!doc.is_discarded(), "the windowed event is JSON", ev);
  Check(doc["Records"].size() == 2 && doc["window"]["start"] == "2020-12-02T17:00:00Z" &&
            doc["window"]["end"] == "2020-12-02T17:05:00Z" && doc["state"]["1"] == "state1" &&
            doc["shardId"] == "shard-1" && doc["eventSourceARN"] == "arn:x" &&
            doc["isFinalInvokeForWindow"] == true && doc["isWindowTerminatedEarly"] == false,
        "the windowed event has records, window, state, shardId, eventSourceARN and the flags", ev);
  std::string empty = window::BuildEvent(recs, 0, 0, inv, "{}", "s", "a");
  Check(nlohmann::json::parse(empty)["Records"].empty(), "a final event may have no records", empty);
  inv.final = false;
  std::string plain = BuildEvent(recs, 0, 2);
  Check(window::BuildEvent(recs, 0, 2, inv, "{}", "s", "a").size() <= plain.size() + window::EnvelopeExtra("{}", "s", "a"),
        "EnvelopeExtra bounds what the window adds");

  // The reply.
  Check(!window::ReadReply(std::nullopt).ok, "no response: failure");
  Check(!window::ReadReply(std::string("{}")).ok, "no state: failure");
  Check(!window::ReadReply(std::string("not json")).ok, "not JSON: failure");
  Check(!window::ReadReply(std::string(R"({"state":[1]})")).ok, "a state that is not an object: failure");
  Check(!window::ReadReply(std::string(R"({"state":null})")).ok, "a null state: failure");
  auto r = window::ReadReply(std::string(R"({"state":{"a": 1},"batchItemFailures":[]})"));
  Check(r.ok && !r.too_big && r.state == R"({"a":1})", "a state object is read", r.state);
  std::string big = R"({"state":{"x":")" + std::string(window::kMaxState, 'x') + "\"}}";
  r = window::ReadReply(big);
  Check(r.ok && r.too_big && r.state == "{}", "a state over 1 MB terminates the window early");

  // After success.
  window::ShardWindow w;
  window::Invoke first;
  first.on = true;
  first.start_us = 120 * kS;
  first.end_us = 180 * kS;
  window::AfterSuccess(w, first, window::ReadReply(std::string(R"({"state":{"n":2}})")), true);
  Check(w.start_us == 120 * kS && w.state == R"({"n":2})" && !w.early, "a non-final invocation opens the window");
  window::Reply too_big;
  too_big.ok = too_big.too_big = true;
  too_big.state = "{}";
  window::AfterSuccess(w, first, too_big, true);
  Check(w.start_us == 120 * kS && w.state == "{}" && w.early, "too big: same window, state {}, terminated early");
  first.final = true;
  window::AfterSuccess(w, first, window::ReadReply(std::string(R"({"state":{}})")), false);
  Check(w.start_us == 120 * kS, "a final invocation that failed in part keeps the window open");
  window::AfterSuccess(w, first, window::ReadReply(std::string(R"({"state":{}})")), true);
  Check(w.start_us == 0 && w.state == "{}" && !w.early && w.floor_us == 180 * kS,
        "a final invocation closes the window and drops its state");

  // Keys.
  window::Invoke a = first, b = first;
  b.final = false;
  Check(window::KeyMaterial("u", a, "1", "2") != window::KeyMaterial("u", b, "1", "2"),
        "the key covers the final flag");
  Check(window::KeyMaterial("u", a, "1", "2") == window::KeyMaterial("u", a, "1", "2"), "the same batch, the same key");
  std::printf("1..%d\n", count);
  return failures == 0 ? 0 : 1;
}
