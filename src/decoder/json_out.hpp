// Appending JSON text to a StringInfo (PostgreSQL memory; may raise ERROR).
#pragma once

#include "boundary/pg.hpp"

extern "C" {
#include "lib/stringinfo.h"
}

namespace pgs::decoder {

// Appends s as a JSON string literal (quoted, escaped). s is UTF-8.
void AppendJsonString(StringInfo out, const char* s, int len);

// Converts server-encoded text to UTF-8 (returns s when no conversion is
// needed) and reports the UTF-8 length.
const char* ToUtf8(const char* s, int len, int* utf8_len);

}  // namespace pgs::decoder
