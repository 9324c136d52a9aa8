#!/usr/bin/env bash
# Installs what pg_streams needs on Debian 12 (when run as root), then builds
# and installs the extension. Used by test/run_all.sh and test/demo.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(postgresql-15 postgresql-server-dev-15 postgresql-15-wal2json libcurl4-openssl-dev
          libpq-dev nlohmann-json3-dev rapidjson-dev libipc-run-perl build-essential python3
          python3-boto3 nodejs    # python3-boto3, nodejs: test/t/012_sdk_compat.pl
          librdkafka-dev kcat)    # Kafka targets; kcat: test/bench
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "missing packages: ${missing[*]} (run as root to install them)" >&2
    exit 1
  fi
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# The SDK compatibility test's npm packages (exact versions: test/sdk/package-lock.json).
if [ ! -d test/sdk/node_modules ] || [ test/sdk/package-lock.json -nt test/sdk/node_modules ]; then
  if ! command -v npm >/dev/null && [ "$(id -u)" = 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm >/dev/null || true
  fi
  (cd test/sdk && npm ci --no-audit --no-fund --loglevel=error >/dev/null && touch node_modules) ||
    echo "npm ci in test/sdk failed: test/t/012_sdk_compat.pl will fail" >&2
fi

export PATH=/usr/lib/postgresql/15/bin:$PATH
make -s -j"$(nproc)" PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config
if [ -n "${PGS_PREFIX:-}" ]; then
  # A private copy of PostgreSQL under $PGS_PREFIX (its programs find their
  # libraries and share files relative to where they are): several checkouts
  # can build and test at once without installing into the same server.
  if [ ! -x "$PGS_PREFIX/usr/lib/postgresql/15/bin/postgres" ]; then
    mkdir -p "$PGS_PREFIX/usr/lib/postgresql" "$PGS_PREFIX/usr/share/postgresql"
    cp -a /usr/lib/postgresql/15 "$PGS_PREFIX/usr/lib/postgresql/"
    cp -a /usr/share/postgresql/15 "$PGS_PREFIX/usr/share/postgresql/"
  fi
  make -s install PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config DESTDIR="$PGS_PREFIX"
else
  make -s install PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config
fi
