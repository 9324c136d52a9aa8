// Matching an event in one pass of nlohmann's SAX parser: no document is
// built. The parser reports keys and leaves; the matcher follows the key path
// in the compiled trie (a subtree no pattern names is skipped) and tests each
// leaf against the fields whose path ends there.
//
// Array consistency (event-ruler): the fields a rule matches inside arrays
// must come from the same element of each array they share. An exists:false
// field is satisfied when no leaf at its path is consistent with the leaves
// chosen for the rule's other fields. Each array element is a scope that
// keeps, per rule, the sets of fields it can satisfy together (S) and the
// exists:false fields that then have a leaf (N); an array offers the choices
// of each of its elements, or none of them (then all their leaves count in
// N); a scope combines the choices of its arrays with its own leaves. Only
// Pareto-best (S large, N small) choices are kept, so memory is bounded by
// the patterns and the nesting depth, not by the event's size.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <nlohmann/json.hpp>
#include <rapidjson/error/en.h>
#include <rapidjson/memorystream.h>
#include <rapidjson/reader.h>

#include "filter/compiled.hpp"
#include "filter/filter.hpp"
#include "filter/prefilter.hpp"

namespace pgs::filter {
namespace {

constexpr size_t kMaxChoices = 256;  // per rule and scope; more are dropped (never seen in practice)

struct Choice {
  uint64_t s = 0, n = 0;
};
using Choices = std::vector<Choice>;

void Insert(Choices* f, Choice c) {
  for (const Choice& d : *f)
    if ((d.s & c.s) == c.s && (d.n & c.n) == d.n) return;  // d is at least as good
  f->erase(std::remove_if(f->begin(), f->end(),
                          [&](const Choice& d) { return (c.s & d.s) == d.s && (c.n & d.n) == c.n; }),
           f->end());
  if (f->size() < kMaxChoices) f->push_back(c);
}

Choices Product(const Choices& a, const Choices& b) {
  Choices out;
  for (const Choice& x : a)
    for (const Choice& y : b) Insert(&out, {x.s | y.s, x.n | y.n});
  return out;
}

// What a scope (the event, or one array element) holds for one rule.
struct RuleAcc {
  uint32_t rule = 0;
  uint64_t sd = 0, nd = 0;  // leaves directly in the scope
  uint64_t nall = 0;        // exists:false fields with a leaf anywhere in the scope
  Choices nested{Choice{}};  // choices of the arrays in the scope, combined
};

struct Scope {
  std::vector<RuleAcc> acc;
  RuleAcc& Get(uint32_t rule) {
    for (auto& a : acc)
      if (a.rule == rule) return a;
    acc.emplace_back();
    acc.back().rule = rule;
    return acc.back();
  }
};

struct ArrRule {
  uint32_t rule = 0;
  Choices chosen;     // choices of an element with S not empty
  uint64_t nall = 0;  // when no element is chosen
};

struct ArrayAcc {
  std::vector<ArrRule> acc;
  ArrRule& Get(uint32_t rule) {
    for (auto& a : acc)
      if (a.rule == rule) return a;
    acc.emplace_back();
    acc.back().rule = rule;
    return acc.back();
  }
};

// Strips nlohmann's "[json.exception.parse_error.101] " from a message.
std::string JsonMessage(const char* what) {
  std::string m = what;
  if (!m.empty() && m[0] == '[') {
    size_t close = m.find("] ");
    if (close != std::string::npos) m.erase(0, close + 2);
  }
  return m;
}

bool Satisfied(const Rule& r, uint64_t s, uint64_t n) {
  return (r.all & ~((s & r.positive) | (~n & r.negative))) == 0;
}

// Checks that text is one JSON value within the depth bound.
struct Validator {
  int depth = 0;
  bool object = false;
  bool seen = false;
  std::string error;
  void Value(bool is_object) {
    if (!seen) object = is_object;
    seen = true;
  }
  bool null() { return Value(false), true; }
  bool boolean(bool) { return Value(false), true; }
  bool number_integer(int64_t) { return Value(false), true; }
  bool number_unsigned(uint64_t) { return Value(false), true; }
  bool number_float(double, const std::string&) { return Value(false), true; }
  bool string(std::string&) { return Value(false), true; }
  bool binary(nlohmann::json::binary_t&) { return false; }
  bool key(std::string&) { return true; }
  bool start_object(size_t) { return Value(true), Open(); }
  bool start_array(size_t) { return Value(false), Open(); }
  bool end_object() { return --depth, true; }
  bool end_array() { return --depth, true; }
  bool Open() {
    if (++depth > kMaxEventDepth) {
      error = "the event is nested deeper than " + std::to_string(kMaxEventDepth) + " levels";
      return false;
    }
    return true;
  }
  bool parse_error(size_t, const std::string&, const nlohmann::detail::exception& ex) {
    if (error.empty()) error = "the event is not valid JSON: " + JsonMessage(ex.what());
    return false;
  }
};

// rapidjson's reader keeps a stack for the string it is reading; it comes
// from operator new like every other allocation of the matcher, and the
// reader (with that stack) is kept between events.
struct NewAllocator {
  static const bool kNeedFree = true;
  void* Malloc(size_t size) { return size ? ::operator new(size) : nullptr; }
  void* Realloc(void* old, size_t old_size, size_t new_size) {
    if (new_size == 0) {
      Free(old);
      return nullptr;
    }
    void* p = ::operator new(new_size);
    if (old != nullptr) memcpy(p, old, std::min(old_size, new_size));
    Free(old);
    return p;
  }
  static void Free(void* p) { ::operator delete(p); }
};

using Reader = rapidjson::GenericReader<rapidjson::UTF8<>, rapidjson::UTF8<>, NewAllocator>;
// Strings are checked to be UTF-8 (as nlohmann's lexer does), numbers read
// exactly (strtod's result, as nlohmann does).
constexpr unsigned kReadFlags = rapidjson::kParseValidateEncodingFlag | rapidjson::kParseFullPrecisionFlag;

}  // namespace

struct Filter::Impl {
  Compiled c;
  std::vector<uint32_t> empty_ok;  // rules that hold for an event without any of their fields
  Prefilter prefilter;  // decides most events a selective filter drops

  // Per event (kept between events for their capacity).
  struct Frame {
    bool array;
    bool element;  // an element of a live array: its end closes a scope
    int node;      // trie node of this container's path, -1 when no pattern goes there
  };
  std::vector<Frame> frames;
  std::vector<Scope> scopes;
  size_t nscopes = 0;
  std::vector<ArrayAcc> arrays;
  size_t narrays = 0;
  int pending = -1;  // node of the value after the last key
  bool done = false;
  std::string folded;
  std::string error;
  Reader reader;

  void Reset() {
    frames.clear();
    nscopes = 0;
    narrays = 0;
    PushScope();
    pending = -1;
    done = false;
    error.clear();
  }
  void PushScope() {
    if (scopes.size() == nscopes) scopes.emplace_back();
    scopes[nscopes++].acc.clear();
  }
  void PushArray() {
    if (arrays.size() == narrays) arrays.emplace_back();
    arrays[narrays++].acc.clear();
  }

  int ValueNode() const {
    if (frames.empty()) return 0;
    return frames.back().array ? frames.back().node : pending;
  }
  bool InLiveArray() const { return !frames.empty() && frames.back().array && frames.back().node >= 0; }

  void CloseElement() {
    Scope& s = scopes[--nscopes];
    ArrayAcc& arr = arrays[narrays - 1];
    for (const RuleAcc& a : s.acc) {
      ArrRule& ar = arr.Get(a.rule);
      ar.nall |= a.nall;
      for (const Choice& c : a.nested)
        if ((a.sd | c.s) != 0) Insert(&ar.chosen, {a.sd | c.s, a.nd | c.n});
    }
  }

  void CloseArray() {
    ArrayAcc& arr = arrays[--narrays];
    Scope& parent = scopes[nscopes - 1];
    for (ArrRule& ar : arr.acc) {
      Insert(&ar.chosen, {0, ar.nall});
      RuleAcc& pa = parent.Get(ar.rule);
      pa.nested = Product(pa.nested, ar.chosen);
      pa.nall |= ar.nall;
    }
  }

  void Hit(int node_id, const Leaf& leaf) {
    const PathNode& node = c.nodes[node_id];
    if (node.fold && leaf.type == Leaf::kString) FoldCase(leaf.s, &folded);
    Scope& scope = scopes[nscopes - 1];
    for (const PathNode::Ref& ref : node.refs) {
      const Rule& rule = c.rules[ref.rule];
      const Field& f = rule.fields[ref.field];
      uint64_t bit = uint64_t{1} << ref.field;
      if (f.absent_ok) {
        RuleAcc& a = scope.Get(ref.rule);
        a.nd |= bit;
        a.nall |= bit;
      }
      for (const Operator& op : f.ops) {
        if (op.Matches(leaf, folded)) {
          RuleAcc& a = scope.Get(ref.rule);
          a.sd |= bit;
          // Outside arrays, a rule without exists:false that holds stays true.
          if (nscopes == 1 && rule.negative == 0)
            for (const Choice& ch : a.nested)
              if (Satisfied(rule, a.sd | ch.s, 0)) done = true;
          break;
        }
      }
    }
  }

  bool OnLeaf(const Leaf& leaf) {
    int node = ValueNode();
    if (node < 0 || c.nodes[node].refs.empty()) return true;
    bool element = InLiveArray();
    if (element) PushScope();
    Hit(node, leaf);
    if (element) CloseElement();
    return !done;
  }

  bool Open(bool array) {
    if (static_cast<int>(frames.size()) >= kMaxEventDepth) {
      error = "the event is nested deeper than " + std::to_string(kMaxEventDepth) + " levels";
      return false;
    }
    int node = ValueNode();
    bool element = InLiveArray();
    if (element) PushScope();
    frames.push_back({array, element, node});
    if (array && node >= 0) PushArray();
    return true;
  }

  bool Close() {
    Frame f = frames.back();
    frames.pop_back();
    if (f.array && f.node >= 0) CloseArray();
    if (f.element) CloseElement();
    return true;
  }

  void Key(std::string_view k) {
    int node = frames.back().node;
    size_t start = 0;
    while (node >= 0) {
      size_t dot = k.find('.', start);
      std::string_view seg(k.data() + start, (dot == std::string::npos ? k.size() : dot) - start);
      node = c.nodes[node].Child(seg);
      if (dot == std::string::npos) break;
      start = dot + 1;
    }
    pending = node;
  }

  bool Evaluate() {
    if (done) return true;
    const Scope& root = scopes[0];
    for (const RuleAcc& a : root.acc) {
      const Rule& r = c.rules[a.rule];
      for (const Choice& ch : a.nested)
        if (Satisfied(r, a.sd | ch.s, a.nd | ch.n)) return true;
    }
    for (uint32_t r : empty_ok) {
      bool seen = false;
      for (const RuleAcc& a : root.acc) seen = seen || a.rule == r;
      if (!seen) return true;
    }
    return false;
  }
};

namespace {

struct MatchSax {
  Filter::Impl* m;
  bool Null() { return m->OnLeaf(Leaf{}); }
  bool Bool(bool v) {
    Leaf l;
    l.type = Leaf::kBool;
    l.b = v;
    return m->OnLeaf(l);
  }
  bool Number(double d) {
    Leaf l;
    l.type = Leaf::kNumber;
    l.d = d;
    return m->OnLeaf(l);
  }
  bool Int(int v) { return Number(static_cast<double>(v)); }
  bool Uint(unsigned v) { return Number(static_cast<double>(v)); }
  bool Int64(int64_t v) { return Number(static_cast<double>(v)); }
  bool Uint64(uint64_t v) { return Number(static_cast<double>(v)); }
  bool Double(double v) { return Number(v); }
  bool RawNumber(const char*, rapidjson::SizeType, bool) { return false; }  // not asked for
  bool String(const char* s, rapidjson::SizeType n, bool) {
    Leaf l;
    l.type = Leaf::kString;
    l.s = std::string_view(s, n);
    return m->OnLeaf(l);
  }
  bool StartObject() { return m->Open(false); }
  bool StartArray() { return m->Open(true); }
  bool EndObject(rapidjson::SizeType) { return m->Close(); }
  bool EndArray(rapidjson::SizeType) { return m->Close(); }
  bool Key(const char* s, rapidjson::SizeType n, bool) {
    m->Key(std::string_view(s, n));
    return true;
  }
};

}  // namespace

Filter::Filter(const std::vector<std::string>& patterns) : impl_(std::make_unique<Impl>()) {
  impl_->c = Compile(patterns);
  for (uint32_t i = 0; i < impl_->c.rules.size(); ++i) {
    if (Satisfied(impl_->c.rules[i], 0, 0)) impl_->empty_ok.push_back(i);
    impl_->prefilter.AddRule(impl_->c.rules[i]);
  }
}

Filter::~Filter() = default;
Filter::Filter(Filter&&) noexcept = default;
Filter& Filter::operator=(Filter&&) noexcept = default;

Filter::Result Filter::Match(std::string_view event) {
  Impl& m = *impl_;
  if (!m.prefilter.MayMatch(event)) return Result::kNoMatch;
  m.Reset();
  MatchSax sax{&m};
  rapidjson::MemoryStream in(event.data(), event.size());
  rapidjson::ParseResult ok = m.reader.Parse<kReadFlags>(in, sax);
  if (!ok && !m.done) {
    if (m.error.empty())
      m.error = std::string("the event is not valid JSON: ") + rapidjson::GetParseError_En(ok.Code()) +
                " at byte " + std::to_string(ok.Offset());
    return Result::kBadEvent;
  }
  return m.Evaluate() ? Result::kMatch : Result::kNoMatch;
}

std::string Filter::CheckEvent(std::string_view event) {
  Validator v;
  if (!nlohmann::json::sax_parse(event.begin(), event.end(), &v)) return v.error;
  return v.object ? "" : "the event must be a JSON object";
}

bool Filter::Reads(std::string_view path) const {
  int node = 0;
  for (size_t start = 0;;) {
    size_t dot = path.find('.', start);
    node = impl_->c.nodes[node].Child(path.substr(start, dot == std::string_view::npos ? dot : dot - start));
    if (node < 0) return false;
    if (dot == std::string_view::npos) return true;
    start = dot + 1;
  }
}

const std::string& Filter::event_error() const { return impl_->error; }

}  // namespace pgs::filter
