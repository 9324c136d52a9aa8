#include "decoder/json_out.hpp"

extern "C" {
#include "mb/pg_wchar.h"
}

namespace pgs::decoder {

void AppendJsonString(StringInfo out, const char* s, int len) {
  static const char kHex[] = "0123456789abcdef";
  appendStringInfoCharMacro(out, '"');
  int run = 0;  // start of the pending unescaped run
  for (int i = 0; i < len; ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    if (i > run) appendBinaryStringInfo(out, s + run, i - run);
    run = i + 1;
    switch (c) {
      case '"': appendBinaryStringInfo(out, "\\\"", 2); break;
      case '\\': appendBinaryStringInfo(out, "\\\\", 2); break;
      case '\b': appendBinaryStringInfo(out, "\\b", 2); break;
      case '\f': appendBinaryStringInfo(out, "\\f", 2); break;
      case '\n': appendBinaryStringInfo(out, "\\n", 2); break;
      case '\r': appendBinaryStringInfo(out, "\\r", 2); break;
      case '\t': appendBinaryStringInfo(out, "\\t", 2); break;
      default: {
        char esc[6] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 15]};
        appendBinaryStringInfo(out, esc, 6);
      }
    }
  }
  if (len > run) appendBinaryStringInfo(out, s + run, len - run);
  appendStringInfoCharMacro(out, '"');
}

int Utf8Length(const char* s, int len) {
  if (GetDatabaseEncoding() == PG_UTF8 || GetDatabaseEncoding() == PG_SQL_ASCII) return len;
  char* converted = pg_server_to_any(s, len, PG_UTF8);
  if (converted == s) return len;
  int utf8_len = static_cast<int>(strlen(converted));
  pfree(converted);
  return utf8_len;
}

}  // namespace pgs::decoder
