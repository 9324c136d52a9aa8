// Unit test of DynamoDB's number rules (src/mapping/number.cpp): built and
// run by test/run_all.sh. Prints TAP lines ("ok"/"not ok").
// sources: src/mapping/number.cpp
#include "mapping/number.hpp"

#include <cstdio>
#include <string>

namespace {

int failures = 0;
int count = 0;

// Canonical text of `in`, or "S" when DynamoDB cannot hold it; with its size.
void Expect(const char* in, const char* want, int want_size = -1) {
  char buf[pgs::mapping::kMaxCanonicalNumberLen];
  int size = -1;
  int len = pgs::mapping::CanonicalNumber(in, buf, &size);
  std::string got = len < 0 ? "S" : std::string(buf, len);
  bool ok = got == want && (want_size < 0 || size == want_size);
  ++count;
  if (!ok) ++failures;
  std::printf("%s %d - %s -> %s (size %d)", ok ? "ok" : "not ok", count, in, got.c_str(), size);
  if (!ok) std::printf(": want %s (size %d)", want, want_size);
  std::printf("\n");
}

}  // namespace

int main() {
  // float4/float8 shortest texts (PostgreSQL's exponent form) as plain digits.
  Expect("1e+16", "10000000000000000", 2);
  Expect("1.5e+20", "150000000000000000000", 3);  // pairs aligned on the point: 01|50
  Expect("3.4e+38", "340000000000000000000000000000000000000");
  Expect("3.4028235e+38", "340282350000000000000000000000000000000");
  Expect("9.007199254740992e+15", "9007199254740992");
  Expect("-1.5e-07", "-0.00000015", 3);
  Expect("1e-05", "0.00001");
  Expect("1.7976931348623157e+308", "S");
  Expect("5e-324", "S");
  Expect("-0", "0", 1);
  Expect("0", "0", 1);
  Expect("NaN", "S");
  Expect("Infinity", "S");
  Expect("-Infinity", "S");
  Expect("0.1", "0.1", 2);
  Expect("123456789012345680", "123456789012345680");
  // numeric: leading and trailing zeros trimmed.
  Expect("1.5000", "1.5", 3);
  Expect("1.5000000000000000000000000000000000000000", "1.5", 3);
  Expect("0.0000", "0", 1);
  Expect("-0.000", "0", 1);
  Expect("123.4500", "123.45", 4);
  Expect("-123.4500", "-123.45", 5);
  Expect("100", "100", 2);
  Expect("100.000", "100", 2);
  Expect("00012.0", "12", 2);
  Expect("+7", "7", 2);
  Expect("-0.00100", "-0.001", 3);
  Expect("12345678901234567890123456789012345678", "12345678901234567890123456789012345678", 20);
  Expect("1234567890123456789012345678901234567.8", "1234567890123456789012345678901234567.8");
  Expect("123456789012345678901234567890123456789", "S");  // 39 significant digits
  Expect("1234567890123456789012345678901234567800000", "1234567890123456789012345678901234567800000");
  // The range: 1E-130 .. 9.99...E+125.
  Expect("1e-130", ("0." + std::string(129, '0') + "1").c_str(), 2);
  Expect("1e-131", "S");
  Expect("9.9999999999999999999999999999999999999e+125",
         ("99999999999999999999999999999999999999" + std::string(88, '0')).c_str());
  Expect("1e+126", "S");
  Expect(("-0." + std::string(129, '0') + "12345678901234567890123456789012345678").c_str(),
         ("-0." + std::string(129, '0') + "12345678901234567890123456789012345678").c_str());
  // Not numbers.
  Expect("", "S");
  Expect("1e", "S");
  Expect("abc", "S");
  Expect("1.2.3", "S");
  std::printf("1..%d\n", count);
  return failures == 0 ? 0 : 1;
}
