// Appending JSON text to a StringInfo (PostgreSQL memory; may raise ERROR).
#pragma once

#include "boundary/pg.hpp"

extern "C" {
#include "lib/stringinfo.h"
}

namespace pgs::decoder {

// Appends s as a JSON string literal (quoted, escaped). s is in the server
// encoding, like the record text it goes into (server encodings are
// ASCII-safe: bytes of multibyte characters are all >= 0x80).
void AppendJsonString(StringInfo out, const char* s, int len);

// Appends fixed text, its length known at compile time.
template <size_t N>
inline void AppendLiteral(StringInfo out, const char (&s)[N]) {
  appendBinaryStringInfo(out, s, static_cast<int>(N - 1));
}

// The length in UTF-8 of server-encoded text: what DynamoDB's sizes count.
int Utf8Length(const char* s, int len);

}  // namespace pgs::decoder
