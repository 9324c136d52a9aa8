#include "cli/shorthand.hpp"

#include "cli/errors.hpp"

#include <cctype>

namespace pgs::cli {

namespace {

class Parser {
public:
    explicit Parser(const std::string &s) : s_(s) {}

    nlohmann::json parse()
    {
        nlohmann::json obj = keyvals('\0');
        skip_ws();
        if (pos_ != s_.size())
            fail("unexpected character");
        return obj;
    }

private:
    const std::string &s_;
    size_t pos_ = 0;

    [[noreturn]] void fail(const std::string &what)
    {
        throw UsageError{"Error parsing parameter: Expected shorthand syntax Key=Value,Key2=Value2: " + what +
                             " at position " + std::to_string(pos_ + 1),
                         false};
    }

    void skip_ws()
    {
        while (pos_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[pos_])))
            ++pos_;
    }

    bool at(char c)
    {
        skip_ws();
        return pos_ < s_.size() && s_[pos_] == c;
    }

    // Key=... pairs until `close` ('}' or end of input).
    nlohmann::json keyvals(char close)
    {
        nlohmann::json obj = nlohmann::json::object();
        for (;;) {
            std::string k = key();
            if (!at('='))
                fail("expected '=' after a key");
            ++pos_;
            obj[k] = values(close);
            if (at(',')) {
                ++pos_;
                continue;
            }
            break;
        }
        return obj;
    }

    std::string key()
    {
        skip_ws();
        size_t start = pos_;
        while (pos_ < s_.size() &&
               (std::isalnum(static_cast<unsigned char>(s_[pos_])) || s_[pos_] == '_' || s_[pos_] == '-' ||
                s_[pos_] == '.' || s_[pos_] == ':' || s_[pos_] == '/'))
            ++pos_;
        if (pos_ == start)
            fail("expected a key");
        return s_.substr(start, pos_ - start);
    }

    // Whether the text after a comma starts another Key= (so the comma ends a value).
    bool next_is_key() const
    {
        size_t p = pos_ + 1;
        while (p < s_.size() && std::isspace(static_cast<unsigned char>(s_[p])))
            ++p;
        size_t start = p;
        while (p < s_.size() &&
               (std::isalnum(static_cast<unsigned char>(s_[p])) || s_[p] == '_' || s_[p] == '-' ||
                s_[p] == '.' || s_[p] == ':' || s_[p] == '/'))
            ++p;
        while (p < s_.size() && std::isspace(static_cast<unsigned char>(s_[p])))
            ++p;
        return p > start && p < s_.size() && s_[p] == '=';
    }

    nlohmann::json values(char close)
    {
        skip_ws();
        if (at('['))
            return list();
        if (at('{')) {
            ++pos_;
            if (at('}')) {
                ++pos_;
                return nlohmann::json::object();
            }
            nlohmann::json obj = keyvals('}');
            if (!at('}'))
                fail("expected '}'");
            ++pos_;
            return obj;
        }
        nlohmann::json first = value(close);
        if (!(at(',') && !next_is_key()))
            return first;
        nlohmann::json arr = nlohmann::json::array({first});
        while (at(',') && !next_is_key()) {
            ++pos_;
            arr.push_back(value(close));
        }
        return arr;
    }

    nlohmann::json list()
    {
        ++pos_;  // '['
        nlohmann::json arr = nlohmann::json::array();
        if (at(']')) {
            ++pos_;
            return arr;
        }
        for (;;) {
            if (at('{')) {
                ++pos_;
                arr.push_back(keyvals('}'));
                if (!at('}'))
                    fail("expected '}'");
                ++pos_;
            } else if (at('[')) {
                arr.push_back(list());
            } else {
                arr.push_back(value(']'));
            }
            if (at(',')) {
                ++pos_;
                continue;
            }
            if (!at(']'))
                fail("expected ']'");
            ++pos_;
            return arr;
        }
    }

    nlohmann::json value(char close)
    {
        skip_ws();
        if (pos_ < s_.size() && (s_[pos_] == '"' || s_[pos_] == '\'')) {
            char q = s_[pos_++];
            std::string out;
            while (pos_ < s_.size() && s_[pos_] != q) {
                if (s_[pos_] == '\\' && pos_ + 1 < s_.size() && s_[pos_ + 1] == q)
                    ++pos_;
                out += s_[pos_++];
            }
            if (pos_ >= s_.size())
                fail("unterminated quoted value");
            ++pos_;
            return out;
        }
        size_t start = pos_;
        while (pos_ < s_.size() && s_[pos_] != ',' && s_[pos_] != ']' && !(close == '}' && s_[pos_] == '}'))
            ++pos_;
        std::string v = s_.substr(start, pos_ - start);
        while (!v.empty() && std::isspace(static_cast<unsigned char>(v.back())))
            v.pop_back();
        return v;
    }
};

}  // namespace

nlohmann::json parse_shorthand(const std::string &text)
{
    return Parser(text).parse();
}

}  // namespace pgs::cli
