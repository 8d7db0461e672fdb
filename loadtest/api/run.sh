#!/usr/bin/env bash
# API load benchmark: GET /health, POST /update, POST /register at 4 and 32
# concurrent connections, on SQLite + in-process and on Postgres + Redis, in one
# run, on loopback. Bounded: each measurement lasts DURATION seconds.
#
#   loadtest/api/run.sh                # DURATION=5 REPEAT=3
#   DURATION=10 REPEAT=5 loadtest/api/run.sh
#   NOSYNC_PG=1 loadtest/api/run.sh    # also: a throwaway Postgres with fsync=off
#
# The system Postgres commits with fsync; on a slow virtual disk (fdatasync of a
# few ms) that bounds /update on Postgres, whatever the API does. NOSYNC_PG=1
# adds a third deployment on a temporary cluster (initdb, as user postgres) with
# fsync=off, to show what the API itself costs on a fast disk.
#
# Needs wrk (apt-get install wrk), a PostgreSQL server and a Redis server (the
# test servers: CERTDNS_TEST_POSTGRES_URL, CERTDNS_TEST_REDIS_URL), psql and
# redis-cli. Prints one Markdown table row per (deployment, endpoint,
# concurrency) with the median of REPEAT runs.
set -euo pipefail

DURATION=${DURATION:-5}
REPEAT=${REPEAT:-3}
THREADS=${THREADS:-2}
PG_ADMIN=${CERTDNS_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}
REDIS_URL=${CERTDNS_TEST_REDIS_URL:-redis://127.0.0.1:6379}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
WORK=$(mktemp -d)
PG_DB="certdns_bench_$$"
REDIS_PREFIX="certdns-bench-$$:"
SERVER_PID=""

NOSYNC_DIR=""
cleanup() {
  [ -n "$NOSYNC_DIR" ] && runuser -u postgres -- pg_ctl -D "$NOSYNC_DIR/data" -m immediate stop >/dev/null 2>&1 || true
  [ -n "$NOSYNC_DIR" ] && rm -rf "$NOSYNC_DIR"
  [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null || true
  psql -q "$PG_ADMIN" -c "DROP DATABASE IF EXISTS $PG_DB WITH (FORCE)" >/dev/null 2>&1 || true
  redis-cli -u "$REDIS_URL" --scan --pattern "${REDIS_PREFIX}*" 2>/dev/null | xargs -r redis-cli -u "$REDIS_URL" DEL >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

command -v wrk >/dev/null || { echo "wrk not found: apt-get install wrk" >&2; exit 1; }
(cd "$ROOT" && cargo build --release -q -p certdns-api --example api-bench-server)
BIN="$ROOT/target/release/examples/api-bench-server"

start_server() { # $1 = database url, $2 = redis url or "", $3 = store pool size
  local creds="$WORK/creds"
  rm -f "$creds"
  local extra=()
  [ -n "$2" ] && extra=(--redis-url "$2" --redis-prefix "$REDIS_PREFIX")
  "$BIN" --database-url "$1" "${extra[@]}" --max-connections "$3" --registrations 256 --creds-out "$creds" 2>"$WORK/server.log" &
  SERVER_PID=$!
  for _ in $(seq 1 100); do [ -f "$creds" ] && break; sleep 0.1; done
  [ -f "$creds" ] || { cat "$WORK/server.log" >&2; exit 1; }
  ADDR=$(sed -n 's/^addr //p' "$creds")
  BASIC="Basic $(sed -n 's/^key //p' "$creds" | tr -d '\n' | base64 -w0)"
  CREDS=$creds
}

stop_server() {
  kill "$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=""
}

# One wrk run; prints "rps p50_ms p99_ms errors".
measure() { # $1 endpoint, $2 connections
  local out
  case "$1" in
    health) out=$(wrk -t"$THREADS" -c"$2" -d"${DURATION}s" --latency "http://$ADDR/health") ;;
    update) out=$(wrk -t"$THREADS" -c"$2" -d"${DURATION}s" --latency -s "$HERE/update.lua" "http://$ADDR" -- "$CREDS" "$BASIC") ;;
    register) out=$(wrk -t"$THREADS" -c"$2" -d"${DURATION}s" --latency -s "$HERE/register.lua" "http://$ADDR/register" -- "$BASIC") ;;
  esac
  local rps p50 p99 errors
  rps=$(echo "$out" | awk '/^Requests\/sec:/ {print $2}')
  p50=$(echo "$out" | awk '$1 == "50%" {print $2}')
  p99=$(echo "$out" | awk '$1 == "99%" {print $2}')
  errors=$(echo "$out" | awk '/Non-2xx or 3xx responses:/ {print $5}')
  echo "$rps $(to_ms "$p50") $(to_ms "$p99") ${errors:-0}"
}

to_ms() { # wrk prints 512.00us / 1.23ms / 1.01s
  awk -v v="$1" 'BEGIN {
    if (v ~ /us$/) { sub(/us$/, "", v); printf "%.3f", v / 1000 }
    else if (v ~ /ms$/) { sub(/ms$/, "", v); printf "%.3f", v }
    else if (v ~ /s$/) { sub(/s$/, "", v); printf "%.3f", v * 1000 }
    else { printf "%s", v } }'
}

median() { sort -g | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }

run_deployment() { # $1 label
  declare -A RPS P50 P99 ERR
  for c in 4 32; do
    for ep in health update register; do
      local rs=() p5=() p9=() es=0
      for _ in $(seq 1 "$REPEAT"); do
        read -r r a b e < <(measure "$ep" "$c")
        rs+=("$r"); p5+=("$a"); p9+=("$b"); es=$((es + e))
      done
      RPS[$ep$c]=$(printf '%s\n' "${rs[@]}" | median)
      P50[$ep$c]=$(printf '%s\n' "${p5[@]}" | median)
      P99[$ep$c]=$(printf '%s\n' "${p9[@]}" | median)
      ERR[$ep$c]=$es
    done
  done
  for c in 4 32; do
    for ep in health update register; do
      local ratio
      ratio=$(awk -v a="${RPS[$ep$c]}" -v b="${RPS[health$c]}" 'BEGIN {printf "%.0f%%", 100 * a / b}')
      printf '| %s | %s | %s | %s | %s | %s | %s | %s |\n' "$1" "$ep" "$c" "${RPS[$ep$c]}" "${P50[$ep$c]}" \
        "${P99[$ep$c]}" "$ratio" "${ERR[$ep$c]}"
    done
  done
}

echo "duration ${DURATION}s x ${REPEAT} runs per cell (median), wrk -t$THREADS, $(nproc) cores, $(date -u +%FT%TZ)"
echo
echo "| deployment | endpoint | clients | req/s | p50 ms | p99 ms | vs /health | non-2xx |"
echo "|---|---|---|---|---|---|---|---|"

# SQLite: a small read pool (each connection is a thread; 2 cores). Postgres: 16.
start_server "sqlite://$WORK/bench.sqlite3" "" 4
run_deployment "SQLite + in-process"
stop_server

psql -q "$PG_ADMIN" -c "CREATE DATABASE $PG_DB" >/dev/null
PG_URL=$(echo "$PG_ADMIN" | sed -E "s#/[^/?]*(\?|$)#/$PG_DB\1#")
start_server "$PG_URL" "$REDIS_URL" 16
run_deployment "Postgres + Redis"
stop_server

if [ "${NOSYNC_PG:-0}" = 1 ]; then
  NOSYNC_DIR=$(mktemp -d /tmp/certdns-bench-pg.XXXXXX)
  chown postgres "$NOSYNC_DIR"
  runuser -u postgres -- initdb -D "$NOSYNC_DIR/data" -U postgres --auth=trust >/dev/null
  runuser -u postgres -- pg_ctl -D "$NOSYNC_DIR/data" -l "$NOSYNC_DIR/log" -w \
    -o "-p 55432 -k $NOSYNC_DIR -c listen_addresses=127.0.0.1 -c fsync=off" start >/dev/null
  NOSYNC_URL="postgres://postgres@127.0.0.1:55432/postgres"
  start_server "$NOSYNC_URL" "$REDIS_URL" 16
  run_deployment "Postgres (fsync=off) + Redis"
  stop_server
fi
