#!/usr/bin/env bash
# FilterCriteria benchmark alone: part 6 of bench.sh (the matcher alone, then
# BENCH_REPS capture backlogs each drained without a filter, through a filter
# matching 1 % and through one matching everything). Run as root:
#
#     bash test/bench/filter_bench.sh     # PGS_PREFIX=... for a private PostgreSQL copy
#
# The knobs are bench.sh's (BENCH_FILTER_ROWS, BENCH_REPS, BENCH_MATCHER_SECONDS, ...).
BENCH_PARTS=${BENCH_PARTS:-6} exec bash "$(dirname "$0")/bench.sh" "$@"
