#!/usr/bin/env bash
# What the /update guarantee costs: "200 only when every live DNS responder
# serves the value" (api.propagation_wait_ms) against the same deployment with
# the wait off, at 1, 2 and 4 responders, in one run. The real binary (release):
# one api role and N dns roles on Postgres + Redis, all on loopback; wrk drives
# /update at 4 and 32 connections. Bounded: each cell lasts DURATION seconds.
#
#   loadtest/api/wait.sh                  # DURATION=5 REPEAT=3
#   DURATION=10 REPEAT=5 loadtest/api/wait.sh
#
# Needs wrk, psql, redis-cli and the test services (CERTDNS_TEST_POSTGRES_URL,
# CERTDNS_TEST_REDIS_URL). Prints one Markdown row per (responders, wait,
# clients): median req/s, p50 and p99 over REPEAT runs, and the share of
# answers that said `propagationDelaySeconds: 0` (confirmed everywhere).
set -euo pipefail

DURATION=${DURATION:-5}
REPEAT=${REPEAT:-3}
PG_ADMIN=${CERTDNS_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}
REDIS_URL=${CERTDNS_TEST_REDIS_URL:-redis://127.0.0.1:6379}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
WORK=$(mktemp -d)
RUN="certdns_wait_$$"
PIDS=()

cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  psql -q "$PG_ADMIN" -c "DROP DATABASE IF EXISTS $RUN WITH (FORCE)" >/dev/null 2>&1 || true
  redis-cli -u "$REDIS_URL" --scan --pattern "$RUN:*" 2>/dev/null | xargs -r redis-cli -u "$REDIS_URL" DEL >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

command -v wrk >/dev/null || { echo "wrk not found: apt-get install wrk" >&2; exit 1; }
(cd "$ROOT" && cargo build --release -q -p certdns --bin certdns)
BIN="$ROOT/target/release/certdns"

psql -q "$PG_ADMIN" -c "CREATE DATABASE $RUN" >/dev/null
export CERTDNS_DATABASE_URL
CERTDNS_DATABASE_URL=$(echo "$PG_ADMIN" | sed -E "s#/[^/?]*(\?|$)#/$RUN\1#")
export CERTDNS_REDIS_URL="$REDIS_URL" CERTDNS_REDIS_PREFIX="$RUN:" CERTDNS_DATA_DIR="$WORK" RUST_LOG=warn
# Generous limits: this measures the wait, not the limiter.
export CERTDNS_API__RATE_LIMITS__REGISTER_PER_KEY='{ per_minute = 1000000, burst = 1000000 }'

start() { # name, args... ; waits for the banner
  local name=$1; shift
  "$BIN" serve "$@" --ops-listen 127.0.0.1:0 >"$WORK/$name.out" 2>"$WORK/$name.err" &
  PIDS+=($!)
  for _ in $(seq 1 100); do grep -q "TXT distribution" "$WORK/$name.out" 2>/dev/null && return; sleep 0.1; done
  echo "$name did not start:" >&2; cat "$WORK/$name.err" >&2; exit 1
}
stop_all() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  PIDS=()
}
api_addr() { sed -n 's#.*HTTP  http://\([0-9.:]*\).*#\1#p' "$WORK/api.out"; }

# One fleet: api (wait on or off) + N responders. The first fleet registers 256
# names and writes the credentials file update.lua reads.
fleet() { # responders, wait_ms
  stop_all
  CERTDNS_API__PROPAGATION_WAIT_MS=$2 start api --role api --http-listen 127.0.0.1:0
  for i in $(seq 1 "$1"); do start "dns$i" --role dns --http-listen 127.0.0.1:0 --dns-listen 127.0.0.1:0; done
  ADDR=$(api_addr)
  # Every responder reports itself within a heartbeat or two.
  for _ in $(seq 1 50); do
    [ "$(curl -s "http://$ADDR/ready" | sed -n 's/.*"live_responders":\([0-9]*\).*/\1/p')" = "$1" ] && break
    sleep 0.2
  done
  if [ ! -f "$WORK/creds" ]; then
    local base
    base=$(grep -A1 'ACME client base URL' "$WORK/first-start.txt" | tail -n1 | tr -d ' ')
    for _ in $(seq 1 256); do
      curl -s -X POST "$base/register" | sed -E 's/.*"username":"([^"]*)","password":"([^"]*)".*"subdomain":"([^"]*)".*/reg \1 \2 \3/'
      echo # the JSON body has no final newline
    done >"$WORK/creds"
    BASIC="Basic $(echo "$base" | sed -E 's#https?://([^@]*)@.*#\1#' | tr -d '\n' | base64 -w0)"
  fi
}

to_ms() {
  awk -v v="$1" 'BEGIN {
    if (v ~ /us$/) { sub(/us$/, "", v); printf "%.2f", v / 1000 }
    else if (v ~ /ms$/) { sub(/ms$/, "", v); printf "%.2f", v }
    else if (v ~ /s$/) { sub(/s$/, "", v); printf "%.2f", v * 1000 }
    else { printf "%s", v } }'
}
median() { sort -g | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }

measure() { # connections -> "rps p50 p99 confirmed%"
  local out
  out=$(wrk -t2 -c"$1" -d"${DURATION}s" --latency -s "$HERE/wait.lua" "http://$ADDR" -- "$WORK/creds" "$BASIC")
  echo "$(echo "$out" | awk '/^Requests\/sec:/ {print $2}')" \
    "$(to_ms "$(echo "$out" | awk '$1 == "50%" {print $2}')")" \
    "$(to_ms "$(echo "$out" | awk '$1 == "99%" {print $2}')")" \
    "$(echo "$out" | awk -F'[ =]' '/^confirmed/ {print $2}')"
}

echo "duration ${DURATION}s x ${REPEAT} runs per cell (median), $(nproc) cores, $(date -u +%FT%TZ)"
echo
echo "| responders | wait | clients | req/s | p50 ms | p99 ms | confirmed everywhere |"
echo "|---|---|---|---|---|---|---|"
for n in 1 2 4; do
  for wait in 0 2000; do
    fleet "$n" "$wait"
    for c in 4 32; do
      rs=(); p5=(); p9=(); cf=()
      for _ in $(seq 1 "$REPEAT"); do
        read -r r a b f < <(measure "$c")
        rs+=("$r"); p5+=("$a"); p9+=("$b"); cf+=("$f")
      done
      label=$([ "$wait" = 0 ] && echo off || echo "on (${wait} ms)")
      printf '| %s | %s | %s | %s | %s | %s | %s%% |\n' "$n" "$label" "$c" \
        "$(printf '%s\n' "${rs[@]}" | median)" "$(printf '%s\n' "${p5[@]}" | median)" \
        "$(printf '%s\n' "${p9[@]}" | median)" "$(printf '%s\n' "${cf[@]}" | median)"
    done
  done
done
