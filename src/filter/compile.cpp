// Pattern text -> Compiled. The text is read with nlohmann's SAX parser into
// a small tree that keeps what the rules need (the last of duplicate keys,
// the exact text of numbers) and is bounded in depth.
#include <cmath>
#include <nlohmann/json.hpp>

#include "filter/compiled.hpp"
#include "filter/filter.hpp"

namespace pgs::filter {
namespace {

struct PNode {
  enum Kind : uint8_t { kNull, kBool, kNumber, kString, kArray, kObject } kind = kNull;
  bool b = false;
  double num = 0;
  std::string text;  // a string's value
  std::vector<std::pair<std::string, PNode>> members;
  std::vector<PNode> items;
};

const char* KindName(PNode::Kind k) {
  switch (k) {
    case PNode::kNull: return "null";
    case PNode::kBool: return "a boolean";
    case PNode::kNumber: return "a number";
    case PNode::kString: return "a string";
    case PNode::kArray: return "an array";
    case PNode::kObject: return "an object";
  }
  return "?";
}

// Strips nlohmann's "[json.exception.parse_error.101] " from a message.
std::string JsonMessage(const char* what) {
  std::string m = what;
  if (!m.empty() && m[0] == '[') {
    size_t close = m.find("] ");
    if (close != std::string::npos) m.erase(0, close + 2);
  }
  return m;
}

class TreeBuilder {
 public:
  PNode root;
  std::string error;

  bool null() { return Put(PNode::kNull) != nullptr; }
  bool boolean(bool v) {
    PNode* n = Put(PNode::kBool);
    n->b = v;
    return true;
  }
  bool number_integer(int64_t v) { return Number(static_cast<double>(v)); }
  bool number_unsigned(uint64_t v) { return Number(static_cast<double>(v)); }
  bool number_float(double v, const std::string& text) {
    // Underflow: digits that are not all zero read as 0 (1E-325).
    if (v == 0) {
      size_t e = text.find_first_of("eE");
      if (text.substr(0, e).find_first_of("123456789") != std::string::npos) {
        error = "number " + text + " is not a finite double";
        return false;
      }
    }
    return Number(v);
  }
  bool string(std::string& v) {
    Put(PNode::kString)->text = std::move(v);
    return true;
  }
  bool binary(nlohmann::json::binary_t&) { return false; }
  bool start_object(size_t) { return Open(PNode::kObject); }
  bool end_object() {
    stack_.pop_back();
    return true;
  }
  bool start_array(size_t) { return Open(PNode::kArray); }
  bool end_array() {
    stack_.pop_back();
    return true;
  }
  bool key(std::string& k) {
    PNode* obj = stack_.back();
    for (auto& m : obj->members) {
      if (m.first == k) {  // duplicate key: the last one wins
        m.second = PNode{};
        pending_ = &m.second;
        return true;
      }
    }
    obj->members.emplace_back(std::move(k), PNode{});
    pending_ = &obj->members.back().second;
    return true;
  }
  bool parse_error(size_t, const std::string&, const nlohmann::detail::exception& ex) {
    if (error.empty()) {
      std::string m = JsonMessage(ex.what());
      error = (ex.id == 406 ? "" : "not valid JSON: ") + m;
      if (ex.id == 406) error += " (not a finite double)";
    }
    return false;
  }

 private:
  PNode* Put(PNode::Kind kind) {
    PNode* n;
    if (stack_.empty()) {
      n = &root;
    } else if (stack_.back()->kind == PNode::kArray) {
      stack_.back()->items.emplace_back();
      n = &stack_.back()->items.back();
    } else {
      n = pending_;
    }
    n->kind = kind;
    return n;
  }
  bool Number(double v) {
    Put(PNode::kNumber)->num = v;
    return true;
  }
  bool Open(PNode::Kind kind) {
    if (static_cast<int>(stack_.size()) >= kMaxPatternDepth) {
      error = "the pattern is nested deeper than " + std::to_string(kMaxPatternDepth) + " levels";
      return false;
    }
    stack_.push_back(Put(kind));
    return true;
  }
  std::vector<PNode*> stack_;
  PNode* pending_ = nullptr;
};

std::string Quote(const std::string& path) { return "\"" + path + "\""; }

using Conj = std::vector<uint32_t>;  // leaf indices
using Dnf = std::vector<Conj>;

class Compiler {
 public:
  struct LeafSpec {
    std::string path;
    Field field;
  };
  std::vector<LeafSpec> leaves;

  Dnf Object(const PNode& obj, const std::string& prefix) {
    if (obj.members.empty())
      throw PatternError(prefix.empty() ? std::string("the pattern has no fields")
                                        : "the value of " + Quote(prefix) + " is an empty object");
    Dnf acc{Conj{}};
    for (const auto& [key, value] : obj.members) {
      if (key == "$or") {
        const std::string where = prefix.empty() ? "at the top level" : "in " + Quote(prefix);
        if (value.kind != PNode::kArray || value.items.size() < 2)
          throw PatternError("$or " + where + " must be an array of at least 2 objects");
        Dnf alternatives;
        for (const PNode& branch : value.items) {
          if (branch.kind != PNode::kObject)
            throw PatternError("$or " + where + " must be an array of at least 2 objects, not of " +
                               KindName(branch.kind));
          Dnf d = Object(branch, prefix);
          alternatives.insert(alternatives.end(), d.begin(), d.end());
          CheckCount(alternatives.size());
        }
        acc = Product(acc, alternatives);
        continue;
      }
      std::string path = prefix.empty() ? key : prefix + "." + key;
      if (value.kind == PNode::kObject) {
        acc = Product(acc, Object(value, path));
      } else if (value.kind == PNode::kArray) {
        auto leaf = Leaf(value, path);
        for (Conj& c : acc) c.push_back(leaf);
      } else {
        throw PatternError("leaf value of " + Quote(path) + " must be an array, not " + KindName(value.kind));
      }
    }
    return acc;
  }

 private:
  static void CheckCount(size_t n) {
    if (n > static_cast<size_t>(kMaxCombinations))
      throw PatternError("the pattern has more than " + std::to_string(kMaxCombinations) + " $or combinations");
  }

  static Dnf Product(const Dnf& a, const Dnf& b) {
    CheckCount(a.size() * b.size());
    Dnf out;
    out.reserve(a.size() * b.size());
    for (const Conj& x : a) {
      for (const Conj& y : b) {
        Conj c = x;
        c.insert(c.end(), y.begin(), y.end());
        out.push_back(std::move(c));
      }
    }
    return out;
  }

  static std::string String(const PNode& v, const std::string& what) {
    if (v.kind != PNode::kString) throw PatternError(what + " must be a string, not " + KindName(v.kind));
    return v.text;
  }

  static double CheckNumber(const PNode& v, const std::string& what) {
    if (v.kind != PNode::kNumber) throw PatternError(what + " must be a number, not " + KindName(v.kind));
    return v.num;
  }

  uint32_t Leaf(const PNode& list, const std::string& path) {
    if (list.items.empty()) throw PatternError("leaf value of " + Quote(path) + " must not be an empty array");
    Field f;
    for (const PNode& v : list.items) {
      Operator op;
      switch (v.kind) {
        case PNode::kString:
          op.kind = Operator::kExactString;
          op.str = v.text;
          break;
        case PNode::kNumber:
          op.kind = Operator::kExactNumber;
          op.lo = v.num;
          break;
        case PNode::kBool:
          op.kind = Operator::kExactBool;
          op.b = v.b;
          break;
        case PNode::kNull:
          op.kind = Operator::kExactNull;
          break;
        case PNode::kArray:
          throw PatternError("leaf value of " + Quote(path) + " must not contain an array");
        case PNode::kObject:
          if (!Match(v, path, &op, &f)) continue;  // exists:false
          break;
      }
      f.fold = f.fold || op.needs_fold();
      f.ops.push_back(std::move(op));
    }
    leaves.push_back({path, std::move(f)});
    return static_cast<uint32_t>(leaves.size() - 1);
  }

  // An operator object; false for exists:false (no operator, the field's flag).
  bool Match(const PNode& obj, const std::string& path, Operator* op, Field* f) {
    if (obj.members.size() != 1)
      throw PatternError("an operator of " + Quote(path) + " must be an object with exactly one key, not " +
                         std::to_string(obj.members.size()));
    const std::string& name = obj.members[0].first;
    const PNode& v = obj.members[0].second;
    const std::string what = "\"" + name + "\" of " + Quote(path);
    if (name == "prefix" || name == "suffix") {
      bool prefix = name == "prefix";
      if (v.kind == PNode::kObject) {
        if (v.members.size() != 1 || v.members[0].first != "equals-ignore-case")
          throw PatternError(what + " must be a string or {\"equals-ignore-case\": string}");
        FoldCase(String(v.members[0].second, what + " (equals-ignore-case)"), &op->str);
        op->kind = prefix ? Operator::kPrefixIc : Operator::kSuffixIc;
      } else {
        op->str = String(v, what);
        op->kind = prefix ? Operator::kPrefix : Operator::kSuffix;
      }
    } else if (name == "equals-ignore-case") {
      FoldCase(String(v, what), &op->str);
      op->kind = Operator::kEqualsIc;
    } else if (name == "anything-but") {
      AnythingBut(v, what, op);
    } else if (name == "numeric") {
      Numeric(v, what, op);
    } else if (name == "exists") {
      if (v.kind != PNode::kBool) throw PatternError(what + " must be true or false, not " + KindName(v.kind));
      if (!v.b) {
        f->absent_ok = true;
        return false;
      }
      op->kind = Operator::kExists;
    } else if (name == "cidr") {
      op->cidr = Cidr::Parse(String(v, what));
      op->kind = Operator::kCidr;
    } else if (name == "wildcard") {
      op->wildcards.push_back(Wildcard::Parse(String(v, what)));
      op->kind = Operator::kWildcard;
    } else {
      throw PatternError("unknown operator \"" + name + "\" in " + Quote(path) +
                         " (prefix, suffix, equals-ignore-case, anything-but, numeric, exists, cidr, wildcard)");
    }
    return true;
  }

  static void AnythingBut(const PNode& v, const std::string& what, Operator* op) {
    switch (v.kind) {
      case PNode::kString:
        op->kind = Operator::kNotStrings;
        op->strs.push_back(v.text);
        return;
      case PNode::kNumber:
        op->kind = Operator::kNotNumbers;
        op->nums.push_back(v.num);
        return;
      case PNode::kArray: {
        if (v.items.empty()) throw PatternError(what + " must not be an empty array");
        bool strings = v.items[0].kind == PNode::kString;
        for (const PNode& item : v.items) {
          if ((strings && item.kind != PNode::kString) || (!strings && item.kind != PNode::kNumber))
            throw PatternError(what + " must be a list of strings or a list of numbers");
          if (strings)
            op->strs.push_back(item.text);
          else
            op->nums.push_back(item.num);
        }
        op->kind = strings ? Operator::kNotStrings : Operator::kNotNumbers;
        return;
      }
      case PNode::kObject: {
        if (v.members.size() != 1)
          throw PatternError(what + " must have exactly one of prefix, suffix, equals-ignore-case, wildcard");
        const std::string& name = v.members[0].first;
        const PNode& arg = v.members[0].second;
        const std::string inner = what + " (" + name + ")";
        std::vector<std::string> values;
        if (arg.kind == PNode::kString) {
          values.push_back(arg.text);
        } else if (arg.kind == PNode::kArray && !arg.items.empty()) {
          for (const PNode& item : arg.items) values.push_back(String(item, inner + " element"));
        } else {
          throw PatternError(inner + " must be a string or a non-empty list of strings");
        }
        if (name == "prefix" || name == "suffix") {
          for (const auto& s : values)
            if (s.empty()) throw PatternError(inner + " must not be an empty string");
          op->kind = name == "prefix" ? Operator::kNotPrefix : Operator::kNotSuffix;
          op->strs = std::move(values);
        } else if (name == "equals-ignore-case") {
          op->kind = Operator::kNotEqualsIc;
          for (const auto& s : values) {
            op->strs.emplace_back();
            FoldCase(s, &op->strs.back());
          }
        } else if (name == "wildcard") {
          op->kind = Operator::kNotWildcard;
          for (const auto& s : values) op->wildcards.push_back(Wildcard::Parse(s));
        } else {
          throw PatternError(what + " cannot use \"" + name +
                             "\" (prefix, suffix, equals-ignore-case or wildcard)");
        }
        return;
      }
      default:
        throw PatternError(what + " must be a string, a number, a list of either, or an object, not " +
                           KindName(v.kind));
    }
  }

  static void Numeric(const PNode& v, const std::string& what, Operator* op) {
    op->kind = Operator::kNumeric;
    if (v.kind != PNode::kArray || (v.items.size() != 2 && v.items.size() != 4))
      throw PatternError(what + " must be [op, number] or [lower op, number, upper op, number]");
    auto op_at = [&](size_t i) { return String(v.items[i], what + " operator"); };
    std::string first = op_at(0);
    double a = CheckNumber(v.items[1], what + " value");
    if (first == "=") {
      if (v.items.size() != 2) throw PatternError(what + ": \"=\" must stand alone");
      op->has_lo = op->has_hi = op->lo_incl = op->hi_incl = true;
      op->lo = op->hi = a;
      return;
    }
    auto lower = [&](const std::string& o, double x) {
      op->has_lo = true;
      op->lo = x;
      op->lo_incl = o == ">=";
    };
    auto upper = [&](const std::string& o, double x) {
      op->has_hi = true;
      op->hi = x;
      op->hi_incl = o == "<=";
    };
    bool first_lower = first == ">" || first == ">=";
    bool first_upper = first == "<" || first == "<=";
    if (!first_lower && !first_upper)
      throw PatternError(what + ": unknown operator \"" + first + "\" (=, <, <=, >, >=)");
    if (v.items.size() == 2) {
      if (first_lower)
        lower(first, a);
      else
        upper(first, a);
      return;
    }
    std::string second = op_at(2);
    double b = CheckNumber(v.items[3], what + " value");
    if (!first_lower || (second != "<" && second != "<="))
      throw PatternError(what + ": a range is a lower bound (> or >=) followed by an upper bound (< or <=)");
    if (!(a < b)) throw PatternError(what + ": the range is empty (lower bound must be below upper bound)");
    lower(first, a);
    upper(second, b);
  }
};

void AddPath(Compiled* c, const std::string& path, uint32_t rule, uint32_t field, bool fold) {
  uint32_t node = 0;
  size_t start = 0;
  while (true) {
    size_t dot = path.find('.', start);
    std::string segment = path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    int child = c->nodes[node].Child(segment);
    if (child < 0) {
      c->nodes.emplace_back();
      child = static_cast<int>(c->nodes.size() - 1);
      c->nodes[node].children.emplace_back(std::move(segment), static_cast<uint32_t>(child));
    }
    node = static_cast<uint32_t>(child);
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  c->nodes[node].refs.push_back({rule, field});
  c->nodes[node].fold = c->nodes[node].fold || fold;
}

}  // namespace

Compiled Compile(const std::vector<std::string>& patterns) {
  Compiled out;
  out.nodes.emplace_back();
  size_t conditions = 0;
  for (const std::string& text : patterns) {
    if (text.size() > kMaxPatternBytes)
      throw PatternError("the pattern is longer than " + std::to_string(kMaxPatternBytes) + " bytes");
    TreeBuilder tree;
    bool ok = nlohmann::json::sax_parse(text.begin(), text.end(), &tree);
    if (!ok) throw PatternError(tree.error.empty() ? "not valid JSON" : tree.error);
    if (tree.root.kind != PNode::kObject)
      throw PatternError(std::string("the pattern must be a JSON object, not ") + KindName(tree.root.kind));
    Compiler compiler;
    Dnf dnf = compiler.Object(tree.root, "");
    for (const Conj& conj : dnf) {
      if (conj.size() > static_cast<size_t>(kMaxFieldsPerRule))
        throw PatternError("the pattern has more than " + std::to_string(kMaxFieldsPerRule) +
                           " conditions in one combination");
      conditions += conj.size();
      if (conditions > static_cast<size_t>(kMaxConditions))
        throw PatternError("the patterns have more than " + std::to_string(kMaxConditions) +
                           " conditions in all (counting each $or combination)");
      Rule rule;
      auto rule_id = static_cast<uint32_t>(out.rules.size());
      for (uint32_t leaf : conj) {
        const auto& spec = compiler.leaves[leaf];
        auto field_id = static_cast<uint32_t>(rule.fields.size());
        uint64_t bit = uint64_t{1} << field_id;
        rule.fields.push_back(spec.field);
        if (!spec.field.ops.empty()) rule.positive |= bit;
        if (spec.field.absent_ok) rule.negative |= bit;
        rule.all |= bit;
        AddPath(&out, spec.path, rule_id, field_id, spec.field.fold);
      }
      out.rules.push_back(std::move(rule));
    }
  }
  return out;
}

std::string CheckPattern(std::string_view pattern) {
  try {
    Compile({std::string(pattern)});
    return "";
  } catch (const PatternError& e) {
    return e.what();
  }
}

std::vector<std::string> PatternsOf(std::string_view filter_criteria) {
  auto doc = nlohmann::json::parse(filter_criteria, nullptr, false);
  std::vector<std::string> out;
  if (!doc.is_object() || !doc.contains("Filters") || !doc["Filters"].is_array())
    throw PatternError("FilterCriteria must be {\"Filters\": [{\"Pattern\": string}, ...]}");
  for (const auto& f : doc["Filters"]) {
    if (!f.is_object() || !f.contains("Pattern") || !f["Pattern"].is_string())
      throw PatternError("FilterCriteria must be {\"Filters\": [{\"Pattern\": string}, ...]}");
    out.push_back(f["Pattern"].get<std::string>());
  }
  return out;
}

}  // namespace pgs::filter
