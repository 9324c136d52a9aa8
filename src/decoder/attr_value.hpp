// PostgreSQL values as DynamoDB AttributeValues, with their DynamoDB sizes.
//
// Called from decoding callbacks only: plain C-style code on PostgreSQL
// memory, free to raise ERROR (no C++ object is live here).
#pragma once

#include "boundary/pg.hpp"

extern "C" {
#include "lib/stringinfo.h"
}

namespace pgs::decoder {

// Appends the AttributeValue JSON of a value of type typid ({"S":"..."},
// {"N":"..."}, {"B":"..."}, {"BOOL":true}, {"NULL":true}, {"M":{...}},
// {"L":[...]}) and returns its size per DynamoDB's item size rules.
long AppendAttrValue(StringInfo out, Oid typid, Datum value, bool isnull);

// Forgets cached type information (types may have changed).
void ResetTypeCache();

}  // namespace pgs::decoder
