#include "cli/output.hpp"

#include "cli/errors.hpp"

#include <algorithm>
#include <cctype>
#include <vector>

namespace pgs::cli {

using nlohmann::json;

OutputFormat parse_output_format(const std::string &name)
{
    if (name == "json")
        return OutputFormat::Json;
    if (name == "text")
        return OutputFormat::Text;
    if (name == "table")
        return OutputFormat::Table;
    throw UsageError{"argument --output: Invalid choice, valid choices are:\n\njson                                     | text\ntable"};
}

// --query -----------------------------------------------------------------

namespace {

json project(const json &doc, const std::string &q, size_t pos);

// Applies the rest of the expression (from pos) to every element of a list.
json project_each(const json &list, const std::string &q, size_t pos)
{
    json out = json::array();
    if (!list.is_array())
        return nullptr;
    for (const auto &el : list) {
        json v = project(el, q, pos);
        if (!v.is_null())
            out.push_back(v);
    }
    return out;
}

json project(const json &doc, const std::string &q, size_t pos)
{
    json cur = doc;
    while (pos < q.size()) {
        if (q[pos] == '.') {
            ++pos;
            continue;
        }
        if (q[pos] == '[') {
            size_t end = q.find(']', pos);
            if (end == std::string::npos)
                throw UsageError{"Bad value for --query " + q + ": missing ']'", false};
            std::string inside = q.substr(pos + 1, end - pos - 1);
            pos = end + 1;
            if (inside.empty() || inside == "*")
                return project_each(cur, q, pos);
            long idx = 0;
            try {
                size_t used = 0;
                idx = std::stol(inside, &used);
                if (used != inside.size())
                    throw std::invalid_argument(inside);
            } catch (const std::exception &) {
                throw UsageError{"Bad value for --query " + q + ": unsupported index [" + inside + "]", false};
            }
            if (!cur.is_array())
                return nullptr;
            long n = static_cast<long>(cur.size());
            if (idx < 0)
                idx += n;
            if (idx < 0 || idx >= n)
                return nullptr;
            cur = cur[static_cast<size_t>(idx)];
            continue;
        }
        size_t start = pos;
        while (pos < q.size() && (std::isalnum(static_cast<unsigned char>(q[pos])) || q[pos] == '_'))
            ++pos;
        if (pos == start)
            throw UsageError{"Bad value for --query " + q + ": unexpected '" + q.substr(pos, 1) + "'", false};
        std::string name = q.substr(start, pos - start);
        if (!cur.is_object() || !cur.contains(name))
            return nullptr;
        cur = cur[name];
    }
    return cur;
}

bool is_scalar(const json &v)
{
    return !v.is_object() && !v.is_array();
}

std::string scalar_text(const json &v)
{
    if (v.is_string())
        return v.get<std::string>();
    if (v.is_null())
        return "None";
    if (v.is_boolean())
        return v.get<bool>() ? "True" : "False";
    return v.dump();
}

std::string upper(const std::string &s)
{
    std::string out = s;
    for (auto &c : out)
        c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return out;
}

// --output text ------------------------------------------------------------

void print_text(std::ostream &out, const json &v, const std::string &ident)
{
    if (is_scalar(v)) {
        if (!ident.empty())
            out << ident << '\t';
        out << scalar_text(v) << '\n';
        return;
    }
    if (v.is_array()) {
        if (std::all_of(v.begin(), v.end(), is_scalar)) {
            if (v.empty())
                return;
            std::string line = ident;
            for (const auto &el : v)
                line += (line.empty() ? "" : "\t") + scalar_text(el);
            out << line << '\n';
            return;
        }
        for (const auto &el : v)
            print_text(out, el, ident);
        return;
    }
    std::string line = ident;
    bool any = false;
    for (const auto &[k, el] : v.items()) {
        if (is_scalar(el)) {
            line += (line.empty() ? "" : "\t") + scalar_text(el);
            any = true;
        }
    }
    if (any)
        out << line << '\n';
    for (const auto &[k, el] : v.items())
        if (!is_scalar(el))
            print_text(out, el, upper(k));
}

// --output table ----------------------------------------------------------

void rule(std::ostream &out, const std::vector<size_t> &w, char edge)
{
    out << edge;
    for (size_t i = 0; i < w.size(); ++i)
        out << std::string(w[i] + 2, '-') << (i + 1 < w.size() ? '+' : edge);
    out << '\n';
}

void row(std::ostream &out, const std::vector<size_t> &w, const std::vector<std::string> &cells)
{
    out << '|';
    for (size_t i = 0; i < w.size(); ++i)
        out << ' ' << cells[i] << std::string(w[i] - cells[i].size(), ' ') << " |";
    out << '\n';
}

void title_box(std::ostream &out, const std::string &title, size_t width)
{
    width = std::max(width, title.size() + 2);
    out << '+' << std::string(width, '-') << "+\n";
    size_t pad = width - title.size();
    out << '|' << std::string(pad / 2, ' ') << title << std::string(pad - pad / 2, ' ') << "|\n";
}

void print_table(std::ostream &out, const json &v, const std::string &title, const std::vector<std::string> &order = {})
{
    if (is_scalar(v)) {
        std::string s = scalar_text(v);
        std::vector<size_t> w{std::max(s.size(), title.size())};
        title_box(out, title, w[0] + 2);
        rule(out, w, '+');
        row(out, w, {s});
        rule(out, w, '+');
        return;
    }
    if (v.is_array() && !v.empty() && std::all_of(v.begin(), v.end(), [](const json &e) { return e.is_object(); })) {
        // A list of structures: one column per scalar key.
        std::vector<std::string> cols = order;
        for (const auto &el : v)
            for (const auto &[k, x] : el.items())
                if (is_scalar(x) && std::find(cols.begin(), cols.end(), k) == cols.end())
                    cols.push_back(k);
        std::vector<size_t> w;
        for (const auto &c : cols)
            w.push_back(c.size());
        std::vector<std::vector<std::string>> rows;
        for (const auto &el : v) {
            std::vector<std::string> cells;
            for (size_t i = 0; i < cols.size(); ++i) {
                cells.push_back(el.contains(cols[i]) ? scalar_text(el[cols[i]]) : "");
                w[i] = std::max(w[i], cells.back().size());
            }
            rows.push_back(cells);
        }
        if (!cols.empty()) {
            size_t total = 0;
            for (auto x : w)
                total += x + 3;
            title_box(out, title, total - 1);
            rule(out, w, '+');
            row(out, w, cols);
            rule(out, w, '+');
            for (const auto &r : rows)
                row(out, w, r);
            rule(out, w, '+');
        }
        for (const auto &el : v)
            for (const auto &[k, x] : el.items())
                if (!is_scalar(x) && !x.empty())
                    print_table(out, x, k);
        return;
    }
    if (v.is_array()) {
        for (const auto &el : v)
            print_table(out, el, title);
        return;
    }
    // A structure: its scalars as key/value rows, then its nested parts.
    std::vector<size_t> w{0, 0};
    std::vector<std::vector<std::string>> rows;
    for (const auto &[k, x] : v.items()) {
        if (!is_scalar(x))
            continue;
        rows.push_back({k, scalar_text(x)});
        w[0] = std::max(w[0], k.size());
        w[1] = std::max(w[1], rows.back()[1].size());
    }
    if (!rows.empty()) {
        title_box(out, title, w[0] + w[1] + 5);
        rule(out, w, '+');
        for (const auto &r : rows)
            row(out, w, r);
        rule(out, w, '+');
    }
    for (const auto &[k, x] : v.items())
        if (!is_scalar(x) && !x.empty())
            print_table(out, x, k);
}

}  // namespace

json apply_query(const json &doc, const std::string &query)
{
    return project(doc, query, 0);
}

void print_document(std::ostream &out, const json &doc, OutputFormat format, const std::string &title,
                    const std::vector<std::string> &columns)
{
    switch (format) {
    case OutputFormat::Json:
        out << doc.dump(4, ' ', false, json::error_handler_t::replace) << '\n';
        break;
    case OutputFormat::Text:
        print_text(out, doc, "");
        break;
    case OutputFormat::Table:
        print_table(out, doc, title, columns);
        break;
    }
}

}  // namespace pgs::cli
