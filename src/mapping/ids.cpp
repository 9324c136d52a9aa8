#include "mapping/ids.hpp"

#include <cstdio>

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

void FormatSequenceNumber(uint64_t commit_lsn, uint32_t change_index,
                          char out[kSequenceNumberLength + 1]) noexcept {
  std::snprintf(out, kSequenceNumberLength + 1, "1%020llu%010u",
                static_cast<unsigned long long>(commit_lsn), change_index);
}

void FormatEventId(uint64_t system_id, uint64_t commit_lsn, uint32_t change_index,
                   char out[kEventIdLength + 1]) noexcept {
  uint64_t a = Mix64(system_id ^ Mix64(commit_lsn ^ Mix64(change_index)));
  uint64_t b = Mix64(a ^ commit_lsn ^ (static_cast<uint64_t>(change_index) << 32) ^ 0x5bd1e995ULL);
  std::snprintf(out, kEventIdLength + 1, "%016llx%016llx", static_cast<unsigned long long>(a),
                static_cast<unsigned long long>(b));
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
