#!/usr/bin/env bash
# The whole test suite: set-up and build, pg_regress (sql/, expected/), then
# the TAP tests (test/t/). Ends with "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

bash test/setup.sh || { echo "0 passed, 1 failed"; exit 1; }

PGBIN=${PGS_PREFIX:-}/usr/lib/postgresql/15/bin   # PGS_PREFIX: a private install (setup.sh)
PGXS_DIR=$(dirname "$("$PGBIN/pg_config" --pgxs)")/../..
RUNAS=()
[ "$(id -u)" = 0 ] && RUNAS=(runuser -u postgres --)

WORK=$(mktemp -d "${TMPDIR:-/tmp}/pg_streams_test.XXXXXX")
[ -n "${KEEP_WORK:-}" ] || trap 'rm -rf "$WORK"' EXIT   # KEEP_WORK=1 keeps clusters and logs
cp -r sql expected test "$WORK/"
[ "$(id -u)" = 0 ] && chown -R postgres "$WORK"
passed=0
failed=0

# Unit tests (C++ without PostgreSQL) ---------------------------------------
# The event-pattern matcher (src/filter) on its own: every vector of
# test/data/event-patterns.jsonl, then edge cases.
if [ "${SKIP_UNIT:-0}" != 1 ]; then
  echo "# unit filter_test"
  if g++ -std=c++17 -O2 -Wall -Wextra -Werror -Isrc src/filter/*.cpp test/unit/filter_test.cpp \
       -o "$WORK/filter_test" > "$WORK/unit_build.log" 2>&1; then
    "$WORK/filter_test" test/data/event-patterns.jsonl > "$WORK/unit_filter.out" 2>&1
    rc=$?
    cat "$WORK/unit_filter.out"
    ok=$(grep -cE '^ok ' "$WORK/unit_filter.out" || true)
    bad=$(grep -cE '^not ok ' "$WORK/unit_filter.out" || true)
    [ "$rc" -ne 0 ] && [ "$bad" -eq 0 ] && bad=1
  else
    cat "$WORK/unit_build.log"; echo "not ok - filter_test does not build"; ok=0; bad=1
  fi
  passed=$((passed + ok)); failed=$((failed + bad))
  # The others: each names the sources it needs on a "// sources:" line.
  for u in test/unit/*_test.cpp; do
    grep -q '^// sources:' "$u" || continue
    name=$(basename "$u" .cpp)
    echo "# unit $name"
    srcs=$(sed -n 's|^// sources: ||p' "$u")
    out="$WORK/unit_$name.out"
    if g++ -std=c++17 -Wall -Wextra -Werror -Isrc "$u" $srcs -o "$WORK/$name" > "$out" 2>&1; then
      "$WORK/$name" >> "$out" 2>&1
      rc=$?
    else
      rc=1
    fi
    cat "$out"
    ok=$(grep -cE '^ok ' "$out" || true)
    bad=$(grep -cE '^not ok ' "$out" || true)
    [ "$rc" -ne 0 ] && [ "$bad" -eq 0 ] && { bad=1; echo "# $name exited with status $rc"; }
    passed=$((passed + ok)); failed=$((failed + bad))
  done
fi

# pg_regress ---------------------------------------------------------------
tests=$(ls sql/${REGRESS_ONLY:-*}.sql 2>/dev/null | xargs -n1 basename 2>/dev/null | sed 's/\.sql$//' | sort)
# 001_setup defines helpers the others use: a narrowed run keeps it.
[ -n "${REGRESS_ONLY:-}" ] && [ -n "$tests" ] && tests=$(printf '001_setup\n%s\n' "$tests" | sort -u)
if [ -n "$tests" ] && [ "${SKIP_REGRESS:-0}" != 1 ]; then
  (cd "$WORK" && "${RUNAS[@]}" "$PGXS_DIR/src/test/regress/pg_regress" \
      --inputdir="$WORK" --outputdir="$WORK/regress" --bindir="$PGBIN" \
      --temp-instance="$WORK/tmp_regress" --temp-config="$WORK/test/regress.conf" \
      --encoding=UTF8 --no-locale --load-extension=pg_streams $tests) > "$WORK/regress.log" 2>&1
  cat "$WORK/regress.log"
  ok=$(grep -cE '\.\.\. ok' "$WORK/regress.log" || true)
  bad=$(grep -cE '\.\.\. FAILED|\.\.\. failed' "$WORK/regress.log" || true)
  ran=$((ok + bad))
  expected_count=$(echo "$tests" | wc -w)
  if [ "$ran" -lt "$expected_count" ]; then bad=$((bad + expected_count - ran)); fi
  passed=$((passed + ok)); failed=$((failed + bad))
  if [ "$bad" -gt 0 ] && [ -f "$WORK/regress/regression.diffs" ]; then
    echo "---- regression.diffs ----"; cat "$WORK/regress/regression.diffs"
  fi
fi

# TAP ----------------------------------------------------------------------
for t in test/t/${TAP_ONLY:-*}.pl; do
  [ -e "$t" ] || continue
  name=$(basename "$t" .pl)
  echo "# TAP $name"
  out="$WORK/tap_$name.out"
  mkdir -p "$WORK/tap_$name"
  [ "$(id -u)" = 0 ] && chown postgres "$WORK/tap_$name"
  (cd "$WORK" && "${RUNAS[@]}" env PATH="$PGBIN:$PATH" TESTDIR="$WORK/tap_$name" \
      PG_REGRESS="$PGXS_DIR/src/test/regress/pg_regress" PGS_ROOT="$WORK" \
      timeout 900 perl -I "$PGXS_DIR/src/test/perl" -I "$WORK/test/lib" "$WORK/$t") > "$out" 2>&1
  rc=$?
  cat "$out"
  ok=$(grep -cE '^ok ' "$out" || true)
  bad=$(grep -cE '^not ok ' "$out" || true)
  if [ "$rc" -ne 0 ] && [ "$bad" -eq 0 ]; then
    bad=1
    echo "# $name exited with status $rc"
    for log in "$WORK/tap_$name"/tmp_check/log/*.log; do
      [ -f "$log" ] && { echo "---- $log (tail) ----"; tail -n 40 "$log"; }
    done
  fi
  passed=$((passed + ok)); failed=$((failed + bad))
done

# No server process of the whole suite died of a signal other than the
# tests' own kill -9 (SIGSEGV, SIGABRT, ... mean a crash).
logs=$(ls "$WORK"/tap_*/tmp_check/log/*.log "$WORK"/regress/log/postmaster.log 2>/dev/null | grep -v regress_log_)
if [ -n "$logs" ]; then
  crashes=$(grep -h "terminated by signal" $logs | grep -v "terminated by signal 9:" || true)
  if [ -n "$crashes" ]; then
    echo "not ok - a server process was terminated by a signal:"; echo "$crashes"
    failed=$((failed + 1))
  else
    echo "ok - no server process of the suite was terminated by a signal other than kill -9"
    passed=$((passed + 1))
  fi
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
