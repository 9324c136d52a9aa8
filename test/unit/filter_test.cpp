// Unit tests of the event-pattern matcher (src/filter), without PostgreSQL:
//   filter_test VECTORS.jsonl         every vector, then edge cases; prints
//                                     "ok - ..." / "not ok - ..." lines
//   filter_test --bench [SECONDS]     records/s of one core for a 3-condition
//                                     pattern over DynamoDB-shaped records
#include <algorithm>
#include <ctime>
#include <cstdlib>
#include <new>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "filter/filter.hpp"

// Counts the bytes allocated with operator new, and their peak, so that the
// tests can check that matching an event needs no memory that grows with it.
namespace {
size_t live_bytes = 0, peak_bytes = 0;
}
void* operator new(size_t n) {
  auto* p = static_cast<size_t*>(malloc(n + sizeof(max_align_t)));
  if (p == nullptr) throw std::bad_alloc();
  *p = n;
  live_bytes += n;
  peak_bytes = std::max(peak_bytes, live_bytes);
  return reinterpret_cast<char*>(p) + sizeof(max_align_t);
}
void operator delete(void* q) noexcept {
  if (q == nullptr) return;
  auto* p = reinterpret_cast<size_t*>(static_cast<char*>(q) - sizeof(max_align_t));
  live_bytes -= *p;
  free(p);
}
void operator delete(void* q, size_t) noexcept { operator delete(q); }

using pgs::filter::Filter;
using pgs::filter::PatternError;

namespace {

int failures = 0;

void Report(bool ok, const std::string& what) {
  if (!ok) ++failures;
  printf("%s - %s\n", ok ? "ok" : "not ok", what.c_str());
}

// Runs the vectors; returns the number of mismatches (each printed).
int RunVectors(const char* path, int* count) {
  std::ifstream in(path);
  std::string line;
  int bad = 0;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    // Python's json writes Infinity for 2.0e422; such vectors carry pattern_text.
    for (size_t at; (at = line.find(", Infinity]")) != std::string::npos;) line.replace(at, 11, ", null]");
    auto v = nlohmann::json::parse(line);
    ++*count;
    std::string name = v["name"];
    std::string pattern = v.contains("pattern_text") ? v["pattern_text"].get<std::string>() : v["pattern"].dump();
    bool invalid = v.value("invalid", false);
    try {
      Filter f({pattern});
      if (invalid) {
        printf("# %s: pattern %s was accepted, expected invalid\n", name.c_str(), pattern.c_str());
        ++bad;
        continue;
      }
      std::string event = v.contains("event_text") ? v["event_text"].get<std::string>() : v["event"].dump();
      auto r = f.Match(event);
      bool expected = v["match"];
      if (r == Filter::Result::kBadEvent || (r == Filter::Result::kMatch) != expected) {
        printf("# %s: expected %s, got %s\n", name.c_str(), expected ? "match" : "no match",
               r == Filter::Result::kBadEvent ? "bad event" : (r == Filter::Result::kMatch ? "match" : "no match"));
        ++bad;
      }
    } catch (const PatternError& e) {
      if (!invalid) {
        printf("# %s: valid pattern refused: %s\n", name.c_str(), e.what());
        ++bad;
      }
    }
  }
  return bad;
}

bool Matches(const std::string& pattern, const std::string& event) {
  Filter f({pattern});
  return f.Match(event) == Filter::Result::kMatch;
}

std::string Refusal(const std::string& pattern) { return pgs::filter::CheckPattern(pattern); }

void Expect(bool cond, const std::string& what) { Report(cond, what); }

void EdgeCases() {
  // Refusals listed by issue 15, with a hint that says where.
  Expect(Refusal(R"({"eventName":"INSERT"})").find("leaf value of \"eventName\" must be an array") == 0,
         "scalar leaf refused, hint names the field: " + Refusal(R"({"eventName":"INSERT"})"));
  Expect(!Refusal("[]").empty() && !Refusal("\"x\"").empty() && !Refusal("null").empty() && !Refusal("").empty(),
         "a pattern that is not an object is refused");
  Expect(!Refusal(R"({"a":[{"wildcard":"a**b"}]})").empty(), "** in a wildcard is refused");
  Expect(!Refusal(R"({"a":[{"numeric":[">",1e999]}]})").empty(), "a numeric value that is not finite is refused");
  Expect(Refusal(R"({"a":[{"numeric":[">",1e-320]}]})").empty(), "1E-320 (subnormal) is accepted");
  Expect(!Refusal(R"({"a":[{"numeric":[">=",5,"<=",5]}]})").empty(), "an empty range is refused");
  Expect(!Refusal(R"({"$or":[{"a":["x"]}]})").empty(), "$or with one branch is refused");
  Expect(!Refusal(R"({"a":{}})").empty() && !Refusal("{}").empty(), "empty objects are refused");
  Expect(!Refusal(R"({"a":[]})").empty(), "an empty leaf array is refused");
  Expect(!Refusal(R"({"a":[{"cidr":"10.0.0.0"}]})").empty() && !Refusal(R"({"a":[{"cidr":"10.0.0.1/33"}]})").empty() &&
             !Refusal(R"({"a":[{"cidr":"300.0.0.1/8"}]})").empty(),
         "malformed CIDRs are refused");
  Expect(!Refusal(R"({"a":[{"EXISTS":true}]})").empty(), "operator names are case-sensitive");
  {
    // 11 $or of 2 branches: 2048 combinations.
    std::string p = "{";
    for (int i = 0; i < 11; ++i)
      p += (i ? "," : "") + std::string("\"k") + std::to_string(i) + R"(":{"$or":[{"a":["1"]},{"b":["2"]}]})";
    p += "}";
    Expect(Refusal(p).find("1000") != std::string::npos, "more than 1000 $or combinations are refused: " + Refusal(p));
    std::string q = "{";
    for (int i = 0; i < 9; ++i)
      q += (i ? "," : "") + std::string("\"k") + std::to_string(i) + R"(":{"$or":[{"a":["1"]},{"b":["2"]}]})";
    q += "}";
    Expect(Refusal(q).empty(), "512 $or combinations are accepted");
  }
  {
    std::string deep(100000, '[');
    Expect(!Refusal("{\"a\":" + deep).empty(), "a deeply nested pattern is refused without a crash");
    Filter f({R"({"a":["x"]})"});
    std::string event = "{\"b\":" + std::string(100000, '[') + std::string(100000, ']') + ",\"a\":\"x\"}";
    Expect(f.Match(event) == Filter::Result::kBadEvent && f.event_error().find("deeper") != std::string::npos,
           "a deeply nested event is an error, not a crash");
    Expect(f.Match("{\"b\":\"x\",\"a\":") == Filter::Result::kBadEvent, "a truncated event is an error");
    Expect(f.Match(R"({"a":"x"})") == Filter::Result::kMatch, "the filter matches again after an error");
  }
  // DynamoDB records (semantics 3.6).
  const std::string rec =
      R"({"eventID":"1","eventName":"MODIFY","eventVersion":"1.1","eventSource":"aws:dynamodb","awsRegion":"us-east-1",)"
      R"("dynamodb":{"ApproximateCreationDateTime":1795341393.0,"Keys":{"id":{"N":"101"}},)"
      R"("NewImage":{"id":{"N":"101"},"status":{"S":"PAID"},"tags":{"SS":["a","b"]},"m":{"M":{"x":{"BOOL":true}}},"gone":{"NULL":true}},)"
      R"("OldImage":{"id":{"N":"101"},"status":{"S":"NEW"}},"SequenceNumber":"1","SizeBytes":52,"StreamViewType":"NEW_AND_OLD_IMAGES"},)"
      R"("eventSourceARN":"arn:aws:dynamodb:us-east-1:000000000000:table/public.t/stream/x"})";
  Expect(Matches(R"({"eventName":["MODIFY"],"dynamodb":{"NewImage":{"status":{"S":["PAID"]}},"OldImage":{"status":{"S":[{"anything-but":"PAID"}]}}}})", rec),
         "status changed to PAID");
  Expect(!Matches(R"({"dynamodb":{"NewImage":{"status":["PAID"]}}})", rec), "a value without its type never matches");
  Expect(Matches(R"({"dynamodb":{"Keys":{"id":{"N":["101"]}}}})", rec) &&
             !Matches(R"({"dynamodb":{"Keys":{"id":{"N":[101]}}}})", rec) &&
             !Matches(R"({"dynamodb":{"Keys":{"id":{"N":[{"numeric":[">",100]}]}}}})", rec),
         "N values are strings: numeric never matches them");
  Expect(Matches(R"({"dynamodb":{"ApproximateCreationDateTime":[{"numeric":[">",1700000000,"<=",1800000000]}]}})", rec),
         "numeric works on ApproximateCreationDateTime");
  Expect(Matches(R"({"dynamodb":{"NewImage":{"tags":{"SS":["b"]}}}})", rec), "a string set matches any element");
  Expect(Matches(R"({"dynamodb":{"NewImage":{"status":[{"exists":false}]}}})", rec) &&
             !Matches(R"({"dynamodb":{"NewImage":{"status":[{"exists":true}]}}})", rec) &&
             Matches(R"({"dynamodb":{"NewImage":{"status":{"S":[{"exists":true}]}}}})", rec),
         "exists tests leaves only");
  Expect(Matches(R"({"dynamodb.NewImage.m.M.x.BOOL":[true]})", rec), "dotted keys are paths");
  Expect(Matches(R"({"eventSourceARN":[{"prefix":"arn:aws:dynamodb:"}],"awsRegion":[{"equals-ignore-case":"US-EAST-1"}]})", rec),
         "top-level fields are matchable");
  Expect(Matches(R"({"eventName":["REMOVE"]})", rec) == false, "eventName mismatch");
  {
    Filter f({R"({"eventName":["INSERT"]})", R"({"dynamodb":{"NewImage":{"status":{"S":["PAID"]}}}})"});
    Expect(f.Match(rec) == Filter::Result::kMatch, "filters are ORed");
  }
  Expect(Matches(R"({"a":["b"], "a":[{"prefix":"x"}]})", R"({"a":"xy"})"), "duplicate keys: the last wins");
  Expect(Matches(R"({"ip":[{"cidr":"2001:db8::/64"}]})", R"({"ip":"2001:0db8:0000:0000:0000:0000:0000:0001"})") &&
             !Matches(R"({"ip":[{"cidr":"2001:db8::/64"}]})", R"({"ip":"2001:db9::1"})") &&
             !Matches(R"({"ip":[{"cidr":"10.0.0.0/8"}]})", R"({"ip":"10.0.0.256"})"),
         "IPv6 CIDR compared canonically, bad addresses do not match");
  Expect(Matches(R"({"a":[{"equals-ignore-case":"ÉCOLE straße"}]})", R"({"a":"école STRAßE"})"),
         "equals-ignore-case folds Latin-1");
  // Array consistency and memory: a big array is matched without growing
  // memory per element (the choices kept are bounded by the pattern).
  {
    std::string big = R"({"items":[)";
    for (int i = 0; i < 200000; ++i) big += (i ? "," : "") + std::string(R"({"k":"a","v":)") + std::to_string(i) + "}";
    big += "]}";
    Expect(Matches(R"({"items":{"k":["a"],"v":[199999]}})", big), "array of 200000 objects: the last element matches");
    // Memory while matching: bounded by the pattern and the nesting, not by
    // the event (the event itself is the caller's).
    for (const char* p : {R"({"items":{"k":["a"],"v":[199999]}})", R"({"items":{"v":[{"exists":false}]}})"}) {
      Filter f({p});
      f.Match(R"({"items":[{"k":"a","v":1}]})");
      size_t before = live_bytes;
      peak_bytes = live_bytes;
      f.Match(big);
      size_t peak = peak_bytes - before;
      Expect(peak < 64 * 1024, "matching a " + std::to_string(big.size() / 1024) + " kB array event needs " +
                                   std::to_string(peak) + " bytes more than a 1-element one (< 64 kB): " + p);
    }
    Expect(!Matches(R"({"items":{"k":["b"],"v":[5]}})", big), "array of 200000 objects: fields from one element only");
  }
  // The prefilter (texts looked for before parsing) never decides against a
  // record that matches: texts at either end of the event, across its
  // 16-byte blocks, suffixes, escapes, and one filter used for many events.
  {
    Filter f({R"({"k":["v1","v2"],"s":[{"suffix":"xyz"}]})", R"({"p":[{"prefix":"ab"}],"k":["v3"]})"});
    std::string pad(37, 'x');
    struct Case {
      std::string event;
      bool match;
    } cases[] = {
        {R"({"k":"v1","s":"wxyz"})", true},
        {R"({"s":"xyz","k":"v2"})", true},
        {R"({"k":"v1","s":"xyzw"})", false},
        {R"({"k":"v9","s":"wxyz"})", false},
        {R"({"pad":")" + pad + R"(","k":"v3","p":"abc"})", true},
        {R"({"p":"ab","pad":")" + pad + R"(","k":"v3"})", true},
        {R"({"p":"zab","k":"v3"})", false},
        {R"({"k":"v1","s":"xyz"})", true},  // only the parser sees "v1"
        {R"({"k":"v3","p":"ab"})", true},
        {R"({"k":"v1","s":"abc\"xyz"})", true},
        {R"({"k":["v0","v2"],"s":["q","xyz"]})", true},
    };
    bool all = true;
    for (int round = 0; round < 2; ++round)
      for (const Case& c : cases) {
        bool got = f.Match(c.event) == Filter::Result::kMatch;
        if (got != c.match) {
          all = false;
          printf("# prefilter case %s: got %s\n", c.event.c_str(), got ? "match" : "no match");
        }
      }
    for (size_t shift = 0; shift < 40; ++shift) {  // the texts at every offset of a 16-byte block
      std::string e = R"({"z":")" + std::string(shift, 'y') + R"(","k":"v2","s":"_xyz"})";
      all = all && f.Match(e) == Filter::Result::kMatch;
      all = all && f.Match(R"({"z":")" + std::string(shift, 'y') + R"(","k":"v2","s":"_xy"})") == Filter::Result::kNoMatch;
    }
    Expect(all, "prefilter: exact, prefix and suffix texts found wherever they are, escapes parsed");
  }
  Expect(!Matches(R"({"a":{"b":["1"],"c":["2"]}})", R"({"a":[{"b":"1"},{"c":"2"}]})") &&
             Matches(R"({"a":{"b":["1"],"c":["2"]}})", R"({"a":[{"b":"1"},{"b":"1","c":"2"}]})"),
         "array consistency across elements");
  Expect(Matches(R"({"a":{"b":["1"],"c":[{"exists":false}]}})", R"({"a":[{"b":"1","c":"x"},{"b":"1"}]})") &&
             !Matches(R"({"a":{"b":["1"],"c":[{"exists":false}]}})", R"({"a":[{"b":"1","c":"x"},{"b":"2"}]})"),
         "exists:false per array element");
}

// Records/s of one core matching `records` against `pattern`.
void Bench(double seconds, const std::string& label, const std::string& pattern, const std::vector<std::string>& records) {
  Filter f({pattern});
  size_t bytes = 0;
  for (auto& r : records) bytes += r.size();
  // CPU time of this thread, not wall time: a busy machine takes the core
  // away now and then, which says nothing about the matcher.
  auto cpu = [] {
    timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
  };
  const double start = cpu();
  long n = 0, matched = 0;
  double elapsed = 0;
  while (elapsed < seconds) {
    for (auto& r : records) matched += f.Match(r) == Filter::Result::kMatch;
    n += static_cast<long>(records.size());
    elapsed = cpu() - start;
  }
  printf("matcher, %s: %.0f records/s (%ld records of %zu bytes on average, %.1f%% matched, %.1f CPU-s)\n", label.c_str(),
         n / elapsed, n, bytes / records.size(), 100.0 * matched / n, elapsed);
}

void Bench(double seconds) {
  // 3 conditions: eventName + a typed NewImage value + a numeric range on
  // ApproximateCreationDateTime, over records like the benchmark's.
  std::vector<std::string> records;
  for (int i = 0; i < 1000; ++i) {
    std::string status = i % 100 == 0 ? "PAID" : "NEW";
    records.push_back(
        R"({"eventID":"9f2c0e6f4b7d4a0e8c1d2b3a4f5e6d7c","eventName":"INSERT","eventVersion":"1.1","eventSource":"aws:dynamodb","awsRegion":"us-east-1",)"
        R"("dynamodb":{"ApproximateCreationDateTime":1795341393.0,"Keys":{"id":{"N":")" + std::to_string(i) +
        R"("}},"NewImage":{"id":{"N":")" + std::to_string(i) + R"("},"status":{"S":")" + status +
        R"("},"customer":{"S":"customer-)" + std::to_string(i % 97) +
        R"("},"total":{"N":"21.00"},"note":{"S":"some text that a row carries"}},)"
        R"("SequenceNumber":"1000000000000228826880000000000","SizeBytes":72,"StreamViewType":"NEW_AND_OLD_IMAGES"},)"
        R"("eventSourceARN":"arn:aws:dynamodb:us-east-1:000000000000:table/public.orders/stream/2026-11-22T10:00:00.000"})");
  }
  for (const char* statuses : {R"("PAID")", R"("PAID","NEW")"})
    Bench(seconds, std::string("status in [") + statuses + "]",
          std::string(R"({"eventName":["INSERT"],"dynamodb":{"NewImage":{"status":{"S":[)") + statuses +
              R"(]}},"ApproximateCreationDateTime":[{"numeric":[">=",1700000000,"<",1900000000]}]}})",
          records);
  // The records of bench.sh's workload (test/bench/filter_bench.sh's filters).
  records.clear();
  for (int i = 1; i <= 1000; ++i)
    records.push_back(
        R"({"eventID":"bdfa538c784353f84dab900a634f1e89","eventName":"INSERT","eventVersion":"1.1","eventSource":"aws:dynamodb","awsRegion":"us-east-1",)"
        R"("dynamodb":{"ApproximateCreationDateTime":1796228698.0,"Keys":{"id":{"N":")" + std::to_string(i) +
        R"("}},"NewImage":{"id":{"N":")" + std::to_string(i) + R"("},"account":{"N":")" + std::to_string(i % 1000) +
        R"("},"amount":{"N":"0.04"},"note":{"S":"item a87ff679a2f3e71d9181a67b7542122c"},"created":{"S":"2026-12-02 16:24:58.818929+00"}},)"
        R"("SequenceNumber":"1000000000000627463440000000003","SizeBytes":102,"StreamViewType":"NEW_AND_OLD_IMAGES"},)"
        R"("eventSourceARN":"arn:aws:dynamodb:us-east-1:000000000000:table/public.items/stream/2026-12-02T16:24:58.262"})");
  Bench(seconds, "account.N in 10 of 1000 values",
        R"({"eventName":["INSERT"],"dynamodb":{"NewImage":{"account":{"N":["0","1","2","3","4","5","6","7","8","9"]}}}})",
        records);
  Bench(seconds, "eventName and numeric ApproximateCreationDateTime",
        R"({"eventName":["INSERT"],"dynamodb":{"ApproximateCreationDateTime":[{"numeric":[">",0]}]}})", records);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 2 && std::string(argv[1]) == "--bench") {
    double seconds = argc >= 3 ? atof(argv[2]) : 3.0;
    Bench(seconds);
    return 0;
  }
  if (argc < 2) {
    fprintf(stderr, "usage: filter_test VECTORS.jsonl | --bench [SECONDS]\n");
    return 2;
  }
  int count = 0;
  int bad = RunVectors(argv[1], &count);
  Report(bad == 0 && count == 252, "event-pattern vectors: " + std::to_string(count - bad) + " of " +
                                        std::to_string(count) + " as expected");
  EdgeCases();
  return failures == 0 ? 0 : 1;
}
