#!/usr/bin/env bash
# Propagation delay: /update returns 200 → every DNS responder answers the value.
# Starts one api role and two dns roles (release build) on Postgres + Redis, all
# on loopback, runs the `propagation` example, and cleans up after itself.
#   loadtest/propagation.sh [updates]     (default 1000)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
updates="${1:-1000}"

. scripts/test-services.sh >/dev/null
cargo build --release -q -p certdns --bin certdns --example propagation
bin=target/release/certdns

run_id="certdns_prop_$$"
work="$(mktemp -d)"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    psql "$CERTDNS_TEST_POSTGRES_URL" -qc "DROP DATABASE IF EXISTS $run_id WITH (FORCE)" >/dev/null 2>&1 || true
    redis-cli -u "$CERTDNS_TEST_REDIS_URL" --scan --pattern "$run_id:*" | xargs -r redis-cli -u "$CERTDNS_TEST_REDIS_URL" del >/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

psql "$CERTDNS_TEST_POSTGRES_URL" -qc "CREATE DATABASE $run_id" >/dev/null
export CERTDNS_DATABASE_URL="${CERTDNS_TEST_POSTGRES_URL%/*}/$run_id"
export CERTDNS_REDIS_URL="$CERTDNS_TEST_REDIS_URL" CERTDNS_REDIS_PREFIX="$run_id:" RUST_LOG=warn
export CERTDNS_DATA_DIR="$work"

start() { # name, args...
    local name="$1"; shift
    "$bin" serve "$@" >"$work/$name.out" 2>"$work/$name.err" &
    pids+=($!)
    for _ in $(seq 1 100); do grep -q "TXT distribution" "$work/$name.out" 2>/dev/null && return; sleep 0.1; done
    echo "$name did not start:"; cat "$work/$name.err"; exit 1
}
start api --role api --http-listen 127.0.0.1:0 --ops-listen 127.0.0.1:0
start dns1 --role dns --http-listen 127.0.0.1:0 --dns-listen 127.0.0.1:0 --ops-listen 127.0.0.1:0
start dns2 --role dns --http-listen 127.0.0.1:0 --dns-listen 127.0.0.1:0 --ops-listen 127.0.0.1:0

# The first start writes its credentials to first-start.txt in the data directory,
# since stdout is not a terminal.
base_url="$(grep -A1 'ACME client base URL' "$work/first-start.txt" | tail -n1 | tr -d ' ')"
ops() { sed -n 's|.*Ops *http://\([0-9.:]*\) .*|\1|p' "$work/$1.out"; }
# Measure only once the api hears from both responders (they report within ~0.5 s).
for _ in $(seq 1 50); do
    [ "$(curl -s "http://$(ops api)/ready" | sed -n 's/.*"live_responders":\([0-9]*\).*/\1/p')" = 2 ] && break
    sleep 0.1
done
udp() { sed -n 's/.*DNS *udp \([0-9.:]*\),.*/\1/p' "$work/$1.out"; }
target/release/examples/propagation --base-url "$base_url" --dns "$(udp dns1)" --dns "$(udp dns2)" --updates "$updates"
