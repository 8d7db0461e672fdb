#!/usr/bin/env bash
# Instructions per query of the DNS responder under callgrind: a figure that noise
# on a shared machine cannot move (user-space instructions only; the kernel's
# share of a recv/send is not in it).
#
#   bash loadtest/dns/callgrind.sh          # N=5000 queries of each kind
#   N=2000 SKIP_BUILD=1 bash loadtest/dns/callgrind.sh
#
# Starts the release bench_responder (1,000 names, one UDP socket) under
# valgrind --tool=callgrind with instrumentation off, so startup is not counted.
# Then, per query kind (see sender.py: txt, nxdomain, nxuuid, refused), it warms
# up with 200 queries, zeroes the counters, sends N queries (EDNS, windows of 16),
# and dumps WINDOW seconds after the zero; it reports (total Ir - idle) / N, the
# idle Ir being a dump of a window of the same length without queries. The
# window is just over the bench driver's 5 s metrics upkeep, so each holds one
# upkeep: the histogram samples are folded into the latency buckets there, a
# per-query cost that would otherwise land in whichever window it fell in.
# Kinds: txt, nxdomain, nxuuid, refused over UDP; tcp: the txt questions
# pipelined over one TCP connection, 16 per write.
set -euo pipefail
cd "$(dirname "$0")/../.."

N=${N:-5000}
WINDOW=${WINDOW:-5.05}
PORT=${PORT:-25363}
OUT=${OUT:-loadtest/dns/results}
ZONE=auth.bench.test
KINDS=${KINDS:-"txt nxdomain nxuuid refused tcp"}

# BIN: another build of the driver (an earlier commit's, for a before/after).
if [[ -z ${BIN:-} ]]; then
    [[ -n ${SKIP_BUILD:-} ]] || cargo build --release --locked -p certdns-dns --example bench_responder
    BIN=target/release/examples/bench_responder
fi
WORK=$(mktemp -d)
VG_PID=
cleanup() {
    [[ -z $VG_PID ]] || kill "$VG_PID" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
mkdir -p "$OUT"

valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$WORK/cg.out" \
    "$BIN" serve --names 1000 --port "$PORT" --udp-sockets 1 --zone-file "$WORK/zone" \
    2>"$WORK/valgrind.log" &
VG_PID=$!
for _ in $(seq 300); do
    [[ -s $WORK/zone ]] && dig +short +time=1 +tries=1 -p "$PORT" @127.0.0.1 "$ZONE" SOA 2>/dev/null | grep -q . && break
    sleep 0.2
done
callgrind_control -i on "$VG_PID" >/dev/null 2>&1

dump() { # name -> total Ir of the new dump
    callgrind_control -d "$1" "$VG_PID" >/dev/null 2>&1
    local f
    f=$(ls -t "$WORK"/cg.out.* | head -1)
    cp "$f" "$WORK/dump-$1"
    awk '/^(summary|totals):/ {print $2; exit}' "$f"
}

window_rest() { # t0 -> sleep out the rest of the window
    python3 -c "import sys, time; time.sleep(max(0.0, $WINDOW - (time.time() - float(sys.argv[1]))))" "$1"
}

callgrind_control -z "$VG_PID" >/dev/null 2>&1
t0=$(date +%s.%N)
window_rest "$t0"
idle=$(dump idle)
SUMMARY="$OUT/callgrind.md"
{
    echo "| query kind | queries | answered | Ir per query |"
    echo "| --- | --- | --- | --- |"
} >"$SUMMARY"
for kind in $KINDS; do
    python3 loadtest/dns/sender.py "$PORT" "$kind" 200 "$WORK/zone" >/dev/null 2>&1
    callgrind_control -z "$VG_PID" >/dev/null 2>&1
    t0=$(date +%s.%N)
    read -r sent answered rcodes < <(python3 loadtest/dns/sender.py "$PORT" "$kind" "$N" "$WORK/zone")
    window_rest "$t0"
    ir=$(dump "$kind")
    per=$(((ir - idle) / N))
    echo "| $kind | $sent | $answered $rcodes | $per |" | tee -a "$SUMMARY"
    callgrind_annotate --inclusive=no "$WORK/dump-$kind" 2>/dev/null | head -60 >"$OUT/callgrind-$kind.txt" || true
done
echo "idle baseline: $idle Ir per $WINDOW s window (subtracted)" | tee -a "$SUMMARY"
