#include <cmath>

#include "mapping/number.hpp"
#include "decoder/attr_value.hpp"
#include "decoder/json_out.hpp"

extern "C" {
#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "common/base64.h"
#include "common/shortest_dec.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/typcache.h"
}

namespace pgs::decoder {
namespace {

enum class Kind { kBool, kInteger, kNumber, kFloat, kBytea, kText, kJson, kJsonb, kArray, kComposite, kOther };

struct TypeInfo {
  Oid typid;  // hash key
  Kind kind;
  Oid base;  // the type, or the base type of a domain
  FmgrInfo out;
  Oid elemtype;
  int16 elmlen;
  bool elmbyval;
  char elmalign;
};

HTAB* type_cache = nullptr;
// The entries last found, by the low bits of the type OID: a table's few
// column types, looked up once per column of every change, hit here.
constexpr int kRecentTypes = 64;
const TypeInfo* recent_types[kRecentTypes];

Kind KindOf(Oid base) {
  switch (base) {
    case BOOLOID: return Kind::kBool;
    case INT2OID: case INT4OID: case INT8OID: case OIDOID: return Kind::kInteger;
    case NUMERICOID: return Kind::kNumber;
    case FLOAT4OID: case FLOAT8OID: return Kind::kFloat;
    case BYTEAOID: return Kind::kBytea;
    case TEXTOID: case VARCHAROID: case BPCHAROID: return Kind::kText;
    case JSONOID: return Kind::kJson;
    case JSONBOID: return Kind::kJsonb;
    default: break;
  }
  if (type_is_rowtype(base)) return Kind::kComposite;
  if (OidIsValid(get_element_type(base)) && get_typlen(base) == -1) return Kind::kArray;
  return Kind::kOther;
}

const TypeInfo* LookupType(Oid typid) {
  const TypeInfo*& recent = recent_types[typid % kRecentTypes];
  if (recent != nullptr && recent->typid == typid) return recent;
  if (type_cache == nullptr) {
    HASHCTL ctl;
    ctl.keysize = sizeof(Oid);
    ctl.entrysize = sizeof(TypeInfo);
    ctl.hcxt = TopMemoryContext;
    type_cache = hash_create("pg_streams type cache", 64, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
  }
  bool found;
  auto* info = static_cast<TypeInfo*>(hash_search(type_cache, &typid, HASH_ENTER, &found));
  if (found) return recent = info;
  // Fill a local copy first: an ERROR below must not leave a half-made entry.
  TypeInfo t{};
  t.typid = typid;
  Oid base = getBaseType(typid);
  t.kind = KindOf(base);
  t.base = base;
  Oid outfn;
  bool varlena;
  PG_TRY();
  {
    getTypeOutputInfo(base, &outfn, &varlena);
    fmgr_info_cxt(outfn, &t.out, TopMemoryContext);
    if (t.kind == Kind::kArray) {
      t.elemtype = get_element_type(base);
      get_typlenbyvalalign(t.elemtype, &t.elmlen, &t.elmbyval, &t.elmalign);
    }
  }
  PG_CATCH();
  {
    hash_search(type_cache, &typid, HASH_REMOVE, nullptr);
    PG_RE_THROW();
  }
  PG_END_TRY();
  *info = t;
  return recent = info;
}

long AppendS(StringInfo out, const char* s, int len) {
  appendBinaryStringInfo(out, "{\"S\":", 5);
  AppendJsonString(out, s, len);
  appendStringInfoCharMacro(out, '}');
  return Utf8Length(s, len);
}

// A decimal number: N in DynamoDB's canonical text when DynamoDB can hold
// it, else S with the number's text (NaN, Infinity, more than 38
// significant digits, magnitude beyond 1E-130 .. 9.99...E+125).
long AppendNumberText(StringInfo out, const char* text, int len) {
  enlargeStringInfo(out, mapping::kMaxCanonicalNumberLen + 8);
  char* dst = out->data + out->len + 6;
  int size;
  int canon = mapping::CanonicalNumber(std::string_view(text, len), dst, &size);
  if (canon < 0) return AppendS(out, text, len);
  memcpy(out->data + out->len, "{\"N\":\"", 6);
  memcpy(dst + canon, "\"}", 3);
  out->len += 6 + canon + 2;
  return size;
}

// A float4/float8: its shortest round-trip digits (float_out's text with the
// default extra_float_digits, whatever the session's setting), then as N.
long AppendFloat(StringInfo out, Oid base, Datum value) {
  char text[DOUBLE_SHORTEST_DECIMAL_LEN + 1];
  double d = base == FLOAT4OID ? static_cast<double>(DatumGetFloat4(value)) : DatumGetFloat8(value);
  int len;
  if (std::isnan(d)) {
    len = 3, memcpy(text, "NaN", 4);
  } else if (std::isinf(d)) {
    len = d < 0 ? 9 : 8;
    memcpy(text, d < 0 ? "-Infinity" : "Infinity", len + 1);
  } else if (base == FLOAT4OID) {
    len = float_to_shortest_decimal_buf(DatumGetFloat4(value), text);
  } else {
    len = double_to_shortest_decimal_buf(d, text);
  }
  return AppendNumberText(out, text, len);
}

// An integer column: formatted here rather than through its output function
// (the most common key and attribute type; always a valid N).
long AppendInteger(StringInfo out, Oid base, Datum value) {
  char text[MAXINT8LEN + 1];
  int len;
  int64 v;
  switch (base) {
    case INT2OID: v = DatumGetInt16(value); len = pg_itoa(static_cast<int16>(v), text); break;
    case INT4OID: v = DatumGetInt32(value); len = pg_ltoa(static_cast<int32>(v), text); break;
    case INT8OID: v = DatumGetInt64(value); len = pg_lltoa(v, text); break;
    default: v = DatumGetObjectId(value); len = pg_ulltoa_n(static_cast<uint64>(v), text); text[len] = '\0'; break;
  }
  appendBinaryStringInfo(out, "{\"N\":\"", 6);
  appendBinaryStringInfo(out, text, len);
  appendBinaryStringInfo(out, "\"}", 2);
  return mapping::IntegerSizeBytes(v);
}

long AppendJsonbScalar(StringInfo out, const JsonbValue* v) {
  switch (v->type) {
    case jbvNull: AppendLiteral(out, "{\"NULL\":true}"); return 1;
    case jbvBool: v->val.boolean ? AppendLiteral(out, "{\"BOOL\":true}") : AppendLiteral(out, "{\"BOOL\":false}"); return 1;
    case jbvString: return AppendS(out, v->val.string.val, v->val.string.len);
    case jbvNumeric:
    {
      const char* text = DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(v->val.numeric)));
      return AppendNumberText(out, text, static_cast<int>(strlen(text)));
    }
    default: elog(ERROR, "pg_streams: unexpected jsonb value type %d", static_cast<int>(v->type));
  }
  return 0;
}

// A jsonb document: objects are M, arrays L, scalars S/N/BOOL/NULL.
long AppendJsonb(StringInfo out, Jsonb* jb) {
  struct Frame {
    bool object;
    bool first;
    long size;
    long key_len;  // UTF-8 length of this container's key in its parent object
  };
  // jsonb nesting is bounded only by the stack depth check of jsonb_in: grow as needed.
  int capacity = 16;
  Frame* stack = static_cast<Frame*>(palloc(sizeof(Frame) * capacity));
  int depth = 0;
  auto push = [&](const Frame& f) {
    if (depth == capacity) {
      capacity *= 2;
      stack = static_cast<Frame*>(repalloc(stack, sizeof(Frame) * capacity));
    }
    stack[depth++] = f;
  };
  long result = 0;
  long pending_key_len = 0;
  JsonbIterator* it = JsonbIteratorInit(&jb->root);
  JsonbValue v;
  JsonbIteratorToken tok;
  bool raw_scalar = false;
  auto add_to_parent = [&](long size) {
    if (depth == 0) {
      result = size;
      return;
    }
    Frame& f = stack[depth - 1];
    f.size += f.object ? pending_key_len + size + 1 : size + 1;
  };
  auto separator = [&]() {
    Frame& f = stack[depth - 1];
    if (!f.first) appendStringInfoCharMacro(out, ',');
    f.first = false;
  };
  while ((tok = JsonbIteratorNext(&it, &v, false)) != WJB_DONE) {
    switch (tok) {
      case WJB_BEGIN_ARRAY:
        if (v.val.array.rawScalar) {
          raw_scalar = true;
          break;
        }
        if (depth > 0 && !stack[depth - 1].object) separator();
        appendBinaryStringInfo(out, "{\"L\":[", 6);
        push(Frame{false, true, 3, pending_key_len});
        break;
      case WJB_BEGIN_OBJECT:
        if (depth > 0 && !stack[depth - 1].object) separator();
        appendBinaryStringInfo(out, "{\"M\":{", 6);
        push(Frame{true, true, 3, pending_key_len});
        break;
      case WJB_KEY: {
        separator();
        AppendJsonString(out, v.val.string.val, v.val.string.len);
        appendStringInfoCharMacro(out, ':');
        pending_key_len = Utf8Length(v.val.string.val, v.val.string.len);
        break;
      }
      case WJB_VALUE:
        add_to_parent(AppendJsonbScalar(out, &v));
        break;
      case WJB_ELEM:
        if (raw_scalar) {
          result = AppendJsonbScalar(out, &v);
          break;
        }
        separator();
        add_to_parent(AppendJsonbScalar(out, &v));
        break;
      case WJB_END_ARRAY:
      case WJB_END_OBJECT: {
        if (raw_scalar) break;
        Frame f = stack[--depth];
        appendBinaryStringInfo(out, f.object ? "}}" : "]}", 2);
        pending_key_len = f.key_len;
        add_to_parent(f.size);
        break;
      }
      default: break;
    }
  }
  return result;
}

// A json value as jsonb, or nullptr when jsonb cannot hold it (json_in
// accepts "\u0000" in strings, jsonb_in does not): such a value is kept as
// its text rather than stopping capture. Data errors only; others propagate.
Jsonb* JsonToJsonb(const char* text) {
  MemoryContext cxt = CurrentMemoryContext;
  uint32 holdoff = InterruptHoldoffCount;
  Jsonb* volatile result = nullptr;
  PG_TRY();
  {
    result = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(text)));
  }
  PG_CATCH();
  {
    MemoryContextSwitchTo(cxt);
    ErrorData* err = CopyErrorData();
    if (ERRCODE_TO_CATEGORY(err->sqlerrcode) != ERRCODE_DATA_EXCEPTION) PG_RE_THROW();
    FlushErrorState();
    FreeErrorData(err);
    InterruptHoldoffCount = holdoff;
    result = nullptr;
  }
  PG_END_TRY();
  return result;
}

long AppendArrayLevel(StringInfo out, const TypeInfo* t, int ndim, const int* dims, int level,
                      Datum* elems, bool* nulls, int* pos) {
  appendBinaryStringInfo(out, "{\"L\":[", 6);
  long size = 3;
  for (int i = 0; i < dims[level]; ++i) {
    if (i > 0) appendStringInfoCharMacro(out, ',');
    long s;
    if (level + 1 < ndim) {
      s = AppendArrayLevel(out, t, ndim, dims, level + 1, elems, nulls, pos);
    } else {
      s = AppendAttrValue(out, t->elemtype, elems[*pos], nulls[*pos]);
      ++*pos;
    }
    size += s + 1;
  }
  appendBinaryStringInfo(out, "]}", 2);
  return size;
}

long AppendArray(StringInfo out, const TypeInfo* t, Datum value) {
  ArrayType* arr = DatumGetArrayTypeP(value);
  int ndim = ARR_NDIM(arr);
  if (ndim == 0) {
    AppendLiteral(out, "{\"L\":[]}");
    return 3;
  }
  Datum* elems;
  bool* nulls;
  int n;
  deconstruct_array(arr, t->elemtype, t->elmlen, t->elmbyval, t->elmalign, &elems, &nulls, &n);
  int pos = 0;
  return AppendArrayLevel(out, t, ndim, ARR_DIMS(arr), 0, elems, nulls, &pos);
}

long AppendComposite(StringInfo out, Datum value) {
  HeapTupleHeader td = DatumGetHeapTupleHeader(value);
  TupleDesc desc = lookup_rowtype_tupdesc(HeapTupleHeaderGetTypeId(td), HeapTupleHeaderGetTypMod(td));
  HeapTupleData tuple;
  tuple.t_len = HeapTupleHeaderGetDatumLength(td);
  ItemPointerSetInvalid(&tuple.t_self);
  tuple.t_tableOid = InvalidOid;
  tuple.t_data = td;
  Datum* values = static_cast<Datum*>(palloc(desc->natts * sizeof(Datum)));
  bool* nulls = static_cast<bool*>(palloc(desc->natts * sizeof(bool)));
  heap_deform_tuple(&tuple, desc, values, nulls);
  appendBinaryStringInfo(out, "{\"M\":{", 6);
  long size = 3;
  bool first = true;
  for (int i = 0; i < desc->natts; ++i) {
    Form_pg_attribute att = TupleDescAttr(desc, i);
    if (att->attisdropped) continue;
    if (!first) appendStringInfoCharMacro(out, ',');
    first = false;
    const char* name = NameStr(att->attname);
    int name_len = static_cast<int>(strlen(name));
    AppendJsonString(out, name, name_len);
    appendStringInfoCharMacro(out, ':');
    size += Utf8Length(name, name_len) + AppendAttrValue(out, att->atttypid, values[i], nulls[i]) + 1;
  }
  appendBinaryStringInfo(out, "}}", 2);
  ReleaseTupleDesc(desc);
  return size;
}

}  // namespace

void ResetTypeCache() {
  if (type_cache != nullptr) {
    hash_destroy(type_cache);
    type_cache = nullptr;
    for (const TypeInfo*& r : recent_types) r = nullptr;
  }
}

long AppendAttrValue(StringInfo out, Oid typid, Datum value, bool isnull) {
  if (isnull) {
    AppendLiteral(out, "{\"NULL\":true}");
    return 1;
  }
  const TypeInfo* t = LookupType(typid);
  switch (t->kind) {
    case Kind::kBool:
      DatumGetBool(value) ? AppendLiteral(out, "{\"BOOL\":true}") : AppendLiteral(out, "{\"BOOL\":false}");
      return 1;
    case Kind::kInteger:
      return AppendInteger(out, t->base, value);
    case Kind::kNumber: {
      const char* text = OutputFunctionCall(const_cast<FmgrInfo*>(&t->out), value);
      return AppendNumberText(out, text, static_cast<int>(strlen(text)));
    }
    case Kind::kFloat:
      return AppendFloat(out, t->base, value);
    case Kind::kBytea: {
      struct varlena* v = pg_detoast_datum_packed(reinterpret_cast<struct varlena*>(DatumGetPointer(value)));
      int len = VARSIZE_ANY_EXHDR(v);
      int enc_len = pg_b64_enc_len(len);
      appendBinaryStringInfo(out, "{\"B\":\"", 6);
      enlargeStringInfo(out, enc_len);
      int written = pg_b64_encode(VARDATA_ANY(v), len, out->data + out->len, enc_len);
      if (written < 0) elog(ERROR, "pg_streams: could not encode bytea value as base64");
      out->len += written;
      out->data[out->len] = '\0';
      appendBinaryStringInfo(out, "\"}", 2);
      return len;
    }
    case Kind::kText: {
      struct varlena* v = pg_detoast_datum_packed(reinterpret_cast<struct varlena*>(DatumGetPointer(value)));
      return AppendS(out, VARDATA_ANY(v), VARSIZE_ANY_EXHDR(v));
    }
    case Kind::kJson: {
      char* text = OutputFunctionCall(const_cast<FmgrInfo*>(&t->out), value);
      Jsonb* jb = JsonToJsonb(text);
      if (jb == nullptr) return AppendS(out, text, static_cast<int>(strlen(text)));
      return AppendJsonb(out, jb);
    }
    case Kind::kJsonb:
      return AppendJsonb(out, DatumGetJsonbP(value));
    case Kind::kArray:
      return AppendArray(out, t, value);
    case Kind::kComposite:
      return AppendComposite(out, value);
    case Kind::kOther: {
      char* text = OutputFunctionCall(const_cast<FmgrInfo*>(&t->out), value);
      return AppendS(out, text, static_cast<int>(strlen(text)));
    }
  }
  return 0;
}

}  // namespace pgs::decoder
