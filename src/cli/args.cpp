#include "cli/args.hpp"

#include "cli/errors.hpp"
#include "cli/shorthand.hpp"

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <fstream>
#include <sstream>

namespace pgs::cli {

using nlohmann::json;

namespace {

bool starts_with(const std::string &s, const std::string &prefix)
{
    return s.compare(0, prefix.size(), prefix) == 0;
}

// "--name=value" splits into name and value.
std::pair<std::string, std::optional<std::string>> split_option(const std::string &arg)
{
    size_t eq = arg.find('=');
    if (starts_with(arg, "--") && eq != std::string::npos)
        return {arg.substr(0, eq), arg.substr(eq + 1)};
    return {arg, std::nullopt};
}

std::string take_value(const std::vector<std::string> &args, size_t &i, const std::string &option,
                       const std::optional<std::string> &inline_value)
{
    if (inline_value)
        return *inline_value;
    if (i + 1 >= args.size() || (starts_with(args[i + 1], "--") && args[i + 1].size() > 2))
        throw UsageError{"argument " + option + ": expected one argument"};
    return args[++i];
}

std::string shown(const ParamSpec &p, const std::string &v)
{
    return p.secret ? "(not shown)" : v;
}

[[noreturn]] void invalid_type(const ParamSpec &p, const std::string &v, const char *valid)
{
    throw UsageError{"Parameter validation failed:\nInvalid type for parameter " + p.key + ", value: " + shown(p, v) +
                         ", type: <class 'str'>, valid types: " + valid,
                     false};
}

// Shorthand members that are booleans ("true"/"false") become JSON booleans.
void convert_booleans(json &obj, const ParamSpec &p)
{
    if (!obj.is_object())
        return;
    for (const auto &k : p.boolean_keys) {
        if (!obj.contains(k) || !obj[k].is_string())
            continue;
        std::string v = obj[k].get<std::string>();
        if (v == "true" || v == "True")
            obj[k] = true;
        else if (v == "false" || v == "False")
            obj[k] = false;
        else
            invalid_type(p, v, "<class 'bool'>");
    }
}

json convert(const ParamSpec &p, const std::vector<std::string> &raw_values)
{
    const std::string option = "--" + p.option;
    std::vector<std::string> values;
    for (const auto &r : raw_values)
        values.push_back(resolve_value(r, p.secret, option));
    const std::string &v = values.front();
    switch (p.type) {
    case ParamType::String:
        return v;
    case ParamType::Integer: {
        errno = 0;
        char *end = nullptr;
        long long n = std::strtoll(v.c_str(), &end, 10);
        if (v.empty() || *end != '\0' || errno == ERANGE || n < INT_MIN || n > INT_MAX)
            invalid_type(p, v, "<class 'int'>");
        return n;
    }
    case ParamType::Boolean:
        return v == "true";
    case ParamType::StringList: {
        if (values.size() == 1 && starts_with(v, "[")) {
            json parsed = json::parse(v, nullptr, false);
            if (parsed.is_discarded() || !parsed.is_array())
                throw UsageError{"Error parsing parameter '" + option + "': Invalid JSON: " + shown(p, v), false};
            return parsed;
        }
        json arr = json::array();
        for (const auto &x : values)
            arr.push_back(x);
        return arr;
    }
    case ParamType::Structure: {
        size_t first = v.find_first_not_of(" \t\r\n");
        json parsed;
        if (first != std::string::npos && (v[first] == '{' || v[first] == '[' || v[first] == '"')) {
            parsed = json::parse(v, nullptr, false);
            if (parsed.is_discarded())
                throw UsageError{"Error parsing parameter '" + option + "': Invalid JSON:" +
                                     (p.secret ? std::string(" (the value is not shown)") : "\n\n" + v),
                                 false};
        } else {
            try {
                parsed = parse_shorthand(v);
            } catch (const UsageError &e) {
                throw UsageError{"Error parsing parameter '" + option + "': " + e.message, false};
            }
        }
        convert_booleans(parsed, p);
        return parsed;
    }
    }
    return nullptr;
}

const ParamSpec *find_param(const CommandSpec &cmd, const std::string &option)
{
    for (const auto &p : cmd.params)
        if ("--" + p.option == option)
            return &p;
    return nullptr;
}

}  // namespace

std::string resolve_value(const std::string &raw, bool secret, const std::string &option)
{
    std::string path;
    if (starts_with(raw, "file://"))
        path = raw.substr(7);
    else if (starts_with(raw, "fileb://"))
        path = raw.substr(8);
    else if (secret && starts_with(raw, "env:")) {
        const char *v = std::getenv(raw.substr(4).c_str());
        if (!v)
            throw UsageError{"Error parsing parameter '" + option + "': environment variable " + raw.substr(4) +
                                 " is not set",
                             false};
        return v;
    } else
        return raw;
    std::ifstream in(path, std::ios::binary);
    if (!in)
        throw UsageError{"Error parsing parameter '" + option + "': Unable to load paramfile " + raw +
                             ": [Errno 2] No such file or directory: '" + path + "'",
                         false};
    std::ostringstream buf;
    buf << in.rdbuf();
    std::string content = buf.str();
    // A secret kept in a file usually ends with a newline that is not part of it.
    if (secret) {
        while (!content.empty() && (content.back() == '\n' || content.back() == '\r'))
            content.pop_back();
    }
    return content;
}

bool take_global(const std::vector<std::string> &args, size_t &i, Globals &g)
{
    auto [opt, inline_value] = split_option(args[i]);
    auto value = [&]() { return take_value(args, i, opt, inline_value); };
    if (opt == "-d" || opt == "--dbname" || opt == "--endpoint-url")
        g.conn.dbname = value();
    else if (opt == "-h" || opt == "--host")
        g.conn.host = value();
    else if (opt == "-p" || opt == "--port")
        g.conn.port = value();
    else if (opt == "-U" || opt == "--username")
        g.conn.user = value();
    else if (opt == "--output") {
        g.output = parse_output_format(value());
        g.output_given = true;
    } else if (opt == "--query")
        g.query = value();
    else if (opt == "--help")
        g.help = true;
    else if (opt == "--no-cli-pager" || opt == "--no-paginate")
        ;  // nothing is paged
    else
        return false;
    ++i;
    return true;
}

json skeleton_of(const CommandSpec &cmd)
{
    json s = json::object();
    for (const auto &p : cmd.params) {
        switch (p.type) {
        case ParamType::String:
            s[p.key] = "";
            break;
        case ParamType::Integer:
            s[p.key] = 0;
            break;
        case ParamType::Boolean:
            s[p.key] = true;
            break;
        case ParamType::StringList:
            s[p.key] = json::array({""});
            break;
        case ParamType::Structure:
            s[p.key] = json::object();
            break;
        }
    }
    return s;
}

Request parse_request(const CommandSpec &cmd, const std::vector<std::string> &args, Globals &g)
{
    Request req;
    json from_options = json::object();
    std::optional<std::string> input_json;
    std::vector<std::string> unknown;

    for (size_t i = 0; i < args.size();) {
        if (take_global(args, i, g))
            continue;
        auto [opt, inline_value] = split_option(args[i]);
        if (args[i] == "help") {
            g.help = true;
            ++i;
            continue;
        }
        if (opt == "--cli-input-json") {
            input_json = resolve_value(take_value(args, i, opt, inline_value), false, opt);
            ++i;
            continue;
        }
        if (opt == "--generate-cli-skeleton") {
            req.skeleton = true;
            ++i;
            continue;
        }
        const ParamSpec *p = find_param(cmd, opt);
        bool negated = false;
        if (!p && starts_with(opt, "--no-")) {
            p = find_param(cmd, "--" + opt.substr(5));
            negated = p && p->type == ParamType::Boolean;
            if (!negated)
                p = nullptr;
        }
        if (!p) {
            unknown.push_back(args[i]);
            ++i;
            continue;
        }
        if (p->type == ParamType::Boolean) {
            if (inline_value)
                throw UsageError{"argument " + opt + ": ignored explicit argument '" + *inline_value + "'"};
            from_options[p->key] = !negated;
            ++i;
            continue;
        }
        std::vector<std::string> values{take_value(args, i, opt, inline_value)};
        ++i;
        if (p->type == ParamType::StringList && !inline_value)
            while (i < args.size() && !starts_with(args[i], "--"))
                values.push_back(args[i++]);
        from_options[p->key] = convert(*p, values);
    }
    if (g.help)
        return req;
    if (!unknown.empty()) {
        std::string list;
        for (const auto &u : unknown)
            list += (list.empty() ? "" : ", ") + u;
        throw UsageError{"Unknown options: " + list};
    }
    if (req.skeleton)
        return req;

    if (input_json) {
        json parsed = json::parse(*input_json, nullptr, false);
        if (parsed.is_discarded() || !parsed.is_object())
            throw UsageError{"Error parsing parameter '--cli-input-json': Invalid JSON received.", false};
        for (const auto &[k, v] : parsed.items()) {
            const ParamSpec *p = nullptr;
            for (const auto &x : cmd.params)
                if (x.key == k)
                    p = &x;
            if (!p) {
                std::string valid;
                for (const auto &x : cmd.params)
                    valid += (valid.empty() ? "" : ", ") + x.key;
                throw UsageError{"Parameter validation failed:\nUnknown parameter in input: \"" + k +
                                     "\", must be one of: " + valid,
                                 false};
            }
            req.body[k] = v;
        }
    }
    // Options given on the command line take precedence over --cli-input-json.
    for (const auto &[k, v] : from_options.items())
        req.body[k] = v;

    std::string missing;
    for (const auto &p : cmd.params)
        if (p.required && (!req.body.contains(p.key) || req.body[p.key].is_null()))
            missing += (missing.empty() ? "--" : ", --") + p.option;
    if (!missing.empty())
        throw UsageError{"the following arguments are required: " + missing};
    return req;
}

}  // namespace pgs::cli
