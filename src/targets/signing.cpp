#include "targets/signing.hpp"

#include "boundary/guard.hpp"

extern "C" {
#include "common/cryptohash.h"
#include "common/hmac.h"
#include "common/sha2.h"
}

namespace pgs::targets {
namespace {

std::string Hex(const uint8* d, size_t n) {
  static const char* digits = "0123456789abcdef";
  std::string out(n * 2, '0');
  for (size_t i = 0; i < n; ++i) {
    out[2 * i] = digits[d[i] >> 4];
    out[2 * i + 1] = digits[d[i] & 15];
  }
  return out;
}

}  // namespace

std::string HmacSha256Hex(const std::string& key, const std::string& message) {
  uint8 digest[PG_SHA256_DIGEST_LENGTH];
  PgCall([&] {
    pg_hmac_ctx* ctx = pg_hmac_create(PG_SHA256);
    if (ctx == nullptr || pg_hmac_init(ctx, reinterpret_cast<const uint8*>(key.data()), key.size()) < 0 ||
        pg_hmac_update(ctx, reinterpret_cast<const uint8*>(message.data()), message.size()) < 0 ||
        pg_hmac_final(ctx, digest, sizeof(digest)) < 0)
      elog(ERROR, "pg_streams: HMAC-SHA256 failed");
    pg_hmac_free(ctx);
  });
  return Hex(digest, sizeof(digest));
}

std::string Sha256Hex(const std::string& message) {
  uint8 digest[PG_SHA256_DIGEST_LENGTH];
  PgCall([&] {
    pg_cryptohash_ctx* ctx = pg_cryptohash_create(PG_SHA256);
    if (ctx == nullptr || pg_cryptohash_init(ctx) < 0 ||
        pg_cryptohash_update(ctx, reinterpret_cast<const uint8*>(message.data()), message.size()) < 0 ||
        pg_cryptohash_final(ctx, digest, sizeof(digest)) < 0)
      elog(ERROR, "pg_streams: SHA-256 failed");
    pg_cryptohash_free(ctx);
  });
  return Hex(digest, sizeof(digest));
}

}  // namespace pgs::targets
