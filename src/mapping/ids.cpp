#include "mapping/ids.hpp"

#include <cstring>
#include <string_view>


namespace pgs::mapping {
namespace {

uint64_t Mix64(uint64_t z) {
  // splitmix64 finalizer
  z += 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

}  // namespace

namespace {

// Writes the last `width` decimal digits of v, zero-padded, ending at end.
void Decimal(uint64_t v, int width, char* end) noexcept {
  for (int i = 1; i <= width; ++i) {
    end[-i] = static_cast<char>('0' + v % 10);
    v /= 10;
  }
}

void Hex16(uint64_t v, char* out) noexcept {
  static const char kHex[] = "0123456789abcdef";
  for (int i = 15; i >= 0; --i) {
    out[i] = kHex[v & 15];
    v >>= 4;
  }
}

}  // namespace

void FormatSequenceNumber(uint64_t commit_lsn, uint32_t change_index,
                          char out[kSequenceNumberLength + 1]) noexcept {
  // "1", the LSN in 20 digits (2^64 has 20), the index in 10 (2^32 has 10).
  out[0] = '1';
  Decimal(commit_lsn, 20, out + 21);
  Decimal(change_index, 10, out + 31);
  out[kSequenceNumberLength] = '\0';
}

void FormatEventId(uint64_t system_id, uint64_t commit_lsn, uint32_t change_index,
                   char out[kEventIdLength + 1]) noexcept {
  uint64_t a = Mix64(system_id ^ Mix64(commit_lsn ^ Mix64(change_index)));
  uint64_t b = Mix64(a ^ commit_lsn ^ (static_cast<uint64_t>(change_index) << 32) ^ 0x5bd1e995ULL);
  Hex16(a, out);
  Hex16(b, out + 16);
  out[kEventIdLength] = '\0';
}

int SpliceRecord(const char* stored, int len, uint64_t system_id, uint64_t commit_lsn, uint32_t change_index,
                 char* out) noexcept {
  std::string_view text(stored, static_cast<size_t>(len));
  constexpr std::string_view kIdKey = "{\"eventID\":\"";
  constexpr std::string_view kSizeKey = ",\"SizeBytes\":";
  size_t at = text.rfind(kSizeKey);
  if (text.substr(0, kIdKey.size()) == kIdKey || text.empty() || text[0] != '{' || at == std::string_view::npos) {
    memcpy(out, stored, static_cast<size_t>(len));
    return len;
  }
  char* p = out;
  auto put = [&p](std::string_view s) {
    memcpy(p, s.data(), s.size());
    p += s.size();
  };
  put(kIdKey);
  FormatEventId(system_id, commit_lsn, change_index, p);
  p += kEventIdLength;
  put("\",");
  put(text.substr(1, at - 1));
  put(",\"SequenceNumber\":\"");
  FormatSequenceNumber(commit_lsn, change_index, p);
  p += kSequenceNumberLength;
  put("\"");
  put(text.substr(at));
  return static_cast<int>(p - out);
}

uint32_t ShardOfKeys(const char* keys_json, int len, uint32_t shard_count) noexcept {
  // FNV-1a, then a final mix so that close keys spread over shards.
  uint64_t h = 0xcbf29ce484222325ULL;
  for (int i = 0; i < len; ++i) {
    h ^= static_cast<unsigned char>(keys_json[i]);
    h *= 0x100000001b3ULL;
  }
  return shard_count == 0 ? 0 : static_cast<uint32_t>(Mix64(h) % shard_count);
}

}  // namespace pgs::mapping
