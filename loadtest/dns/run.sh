#!/usr/bin/env bash
# DNS responder benchmark: certdns against Knot DNS, side by side in one run.
#
#   bash loadtest/dns/run.sh            # everything (about 5 minutes)
#   SIZES=1000 ROUNDS=1 bash loadtest/dns/run.sh    # a quick look
#   SKIP_MEMORY=1 bash loadtest/dns/run.sh          # without the 1M-registration part
#   SIZES=1000 ROUNDS=3 SKIP_MEMORY=1 bash loadtest/dns/run.sh   # the issue #16 table
#
# For each zone size, both servers serve the same names (certdns from its replica,
# Knot from a static zone file) on 127.0.0.1 high ports; dnsperf sends the same
# mixed query file to each in turn, ROUNDS times: a max-throughput run and a fixed
# 5,000 QPS run (p99 from dnsperf's per-query latencies), and a fixed 20,000 QPS
# run measuring the server's CPU time per query (utime+stime from /proc): the
# figure least disturbed by other work on a shared machine. The same three for
# each flood in FLOODS (nxdomain: random names under the zone, NXDOMAIN with SOA;
# refused: names outside it), and with TCP=1 (default) a max-throughput run over
# TCP (dnsperf -m tcp: many queries per connection) and the CPU per query at the
# fixed rate over TCP. Medians go to
# $OUT/results.md. Then a responder loads 1,000,000 registrations (two values each)
# from the local Redis under a private key prefix (deleted afterwards) and reports
# the snapshot load time and its resident size.
#
# Loopback only; every run is bounded by dnsperf's -l; the load generator runs
# niced with one thread, since it shares the 2 cores with the server under test.
set -euo pipefail
cd "$(dirname "$0")/../.."

OUT=${OUT:-loadtest/dns/results}
SIZES=${SIZES:-"1000 100000"}
ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-6}
FIXED_QPS=${FIXED_QPS:-5000}
CPU_QPS=${CPU_QPS:-20000}
CLIENTS=${CLIENTS:-8}
CERTDNS_PORT=${CERTDNS_PORT:-25353}
KNOT_PORT=${KNOT_PORT:-25354}
# certdns's UDP layout: the default is one socket shared by two threads (as
# dns.udp_sockets = 1 with a thread per core here); UDP_SOCKETS=2 UDP_THREADS=2
# is the earlier layout, a SO_REUSEPORT socket per thread (as Knot's).
UDP_SOCKETS=${UDP_SOCKETS:-1}
UDP_THREADS=${UDP_THREADS:-2}
FLOODS=${FLOODS:-"nxdomain refused"}
TCP=${TCP:-1}
MEM_NAMES=${MEM_NAMES:-1000000}
REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379}
ZONE=auth.bench.test

need() { command -v "$1" >/dev/null 2>&1; }
if ! need dnsperf || ! need knotd || ! need dig; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dnsperf knot dnsutils >/dev/null
fi
if [[ -z ${SKIP_MEMORY:-} ]] && ! need redis-cli; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server redis-tools >/dev/null
fi

# BIN: another build of the driver (an earlier commit's, for a before/after).
if [[ -z ${BIN:-} ]]; then
    [[ -n ${SKIP_BUILD:-} ]] || cargo build --release --locked -p certdns-dns --example bench_responder
    BIN=target/release/examples/bench_responder
fi

WORK=$(mktemp -d)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
mkdir -p "$OUT"
RAW="$OUT/raw.tsv"
printf 'names\tmix\tround\tserver\tmax_qps\tlost_pct\tfixed_qps\tp50_ms\tp99_ms\tcpu_us_per_query\tload1\n' >"$RAW"

wait_answering() { # port
    for _ in $(seq 200); do
        if dig +short +time=1 +tries=1 -p "$1" @127.0.0.1 "$ZONE" SOA >/dev/null 2>&1 &&
            [[ -n $(dig +short +time=1 +tries=1 -p "$1" @127.0.0.1 "$ZONE" SOA) ]]; then
            return 0
        fi
        sleep 0.1
    done
    echo "server on port $1 never answered" >&2
    return 1
}

MODE=udp
max_qps() { # port queries -> "qps lost%"
    nice -n 10 dnsperf -m "$MODE" -s 127.0.0.1 -p "$1" -d "$2" -l "$DURATION" -c "$CLIENTS" -T 1 -q 256 -t 2 2>/dev/null |
        awk '/Queries per second:/ {q=$4} /Queries lost:/ {gsub(/[()%]/,"",$4); l=$4} END {print q, l}'
}

fixed_latency() { # port queries -> "qps p50_ms p99_ms"
    nice -n 10 dnsperf -s 127.0.0.1 -p "$1" -d "$2" -l "$DURATION" -c "$CLIENTS" -T 1 -Q "$FIXED_QPS" -t 2 -v 2>/dev/null |
        awk '/^> / {print $NF} /Queries per second:/ {print "QPS", $4}' |
        python3 -c '
import sys
lat, qps = [], "0"
for line in sys.stdin:
    if line.startswith("QPS"): qps = line.split()[1]
    else:
        try: lat.append(float(line) * 1000)
        except ValueError: pass
lat.sort()
pick = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))] if lat else float("nan")
print(qps, f"{pick(0.50):.3f}", f"{pick(0.99):.3f}")'
}

cpu_per_query() { # port queries pid -> microseconds of server CPU per answered query
    local before after done_
    before=$(awk '{print $14 + $15}' "/proc/$3/stat")
    done_=$(nice -n 10 dnsperf -m "$MODE" -s 127.0.0.1 -p "$1" -d "$2" -l "$DURATION" -c "$CLIENTS" -T 1 -Q "$CPU_QPS" -t 2 2>/dev/null |
        awk '/Queries completed:/ {print $3}')
    after=$(awk '{print $14 + $15}' "/proc/$3/stat")
    python3 -c "print(f'{($after - $before) * 1e6 / $(getconf CLK_TCK) / max(1, $done_):.2f}')"
}

for n in $SIZES; do
    echo "== $n names"
    udp_layout=(--udp-sockets "$UDP_SOCKETS")
    # An earlier build's driver knows no --udp-threads (it runs a thread per socket).
    if grep -qa -- "--udp-threads" "$BIN"; then udp_layout+=(--udp-threads "$UDP_THREADS"); fi
    "$BIN" serve --names "$n" --port "$CERTDNS_PORT" "${udp_layout[@]}" \
        --zone-file "$WORK/$ZONE.zone" --query-file "$WORK/queries-$n.txt" &
    PIDS+=($!)
    CERTDNS_PID=$!
    # The zone file is written before the responder binds; wait for both.
    wait_answering "$CERTDNS_PORT"
    mkdir -p "$WORK/knot-$n"
    cp "$WORK/$ZONE.zone" "$WORK/knot-$n/$ZONE.zone"
    cat >"$WORK/knot-$n/knot.conf" <<CONF
server:
    rundir: "$WORK/knot-$n"
    listen: 127.0.0.1@$KNOT_PORT
    udp-workers: 2
    tcp-workers: 2
    background-workers: 1
database:
    storage: "$WORK/knot-$n"
log:
  - target: stderr
    any: error
template:
  - id: default
    storage: "$WORK/knot-$n"
    semantic-checks: off
    journal-content: none
    zonefile-sync: -1
zone:
  - domain: $ZONE
CONF
    knotd -c "$WORK/knot-$n/knot.conf" &
    PIDS+=($!)
    KNOT_PID=$!
    wait_answering "$KNOT_PORT"
    # Same answers from both before timing anything.
    probe=$(awk '$2 == "TXT" {print $1; exit}' "$WORK/queries-$n.txt")
    a=$(dig +short -p "$CERTDNS_PORT" @127.0.0.1 "$probe" TXT | sort)
    b=$(dig +short -p "$KNOT_PORT" @127.0.0.1 "$probe" TXT | sort)
    [[ "$a" == "$b" && -n "$a" ]] || { echo "certdns and knot disagree on $probe: '$a' vs '$b'" >&2; exit 1; }

    # The floods: the same number of queries, names nobody registered.
    python3 - "$WORK" "$ZONE" <<'PY'
import random, sys
work, zone = sys.argv[1], sys.argv[2]
rng = random.Random(7)
word = lambda n, abc="abcdefghijklmnopqrstuvwxyz0123456789": "".join(rng.choice(abc) for _ in range(n))
with open(f"{work}/flood-nxdomain.txt", "w") as f:
    f.writelines(f"{word(12)}.{zone} TXT\n" for _ in range(200_000))
with open(f"{work}/flood-refused.txt", "w") as f:
    f.writelines(f"{word(10)}.{word(6, 'abcdefghijklmnopqrstuvwxyz')}.com TXT\n" for _ in range(200_000))
PY
    measure() { # mix queries round
        for server in certdns knot; do
            port=$CERTDNS_PORT pid=$CERTDNS_PID
            [[ $server == knot ]] && port=$KNOT_PORT pid=$KNOT_PID
            read -r qps lost < <(max_qps "$port" "$2")
            fqps=- p50=- p99=-
            [[ $MODE == tcp ]] || read -r fqps p50 p99 < <(fixed_latency "$port" "$2")
            cpu=$(cpu_per_query "$port" "$2" "$pid")
            # The 1-minute load average after the round: how busy the machine was.
            load1=$(cut -d' ' -f1 /proc/loadavg)
            printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$n" "$1" "$3" "$server" "$qps" "$lost" "$fqps" "$p50" "$p99" "$cpu" "$load1" | tee -a "$RAW"
        done
    }
    for round in $(seq "$ROUNDS"); do
        MODE=udp measure mixed "$WORK/queries-$n.txt" "$round"
        for flood in $FLOODS; do
            MODE=udp measure "$flood" "$WORK/flood-$flood.txt" "$round"
        done
        [[ -z $TCP || $TCP == 0 ]] || MODE=tcp measure tcp "$WORK/queries-$n.txt" "$round"
    done
    kill "$CERTDNS_PID" "$KNOT_PID"
    wait "$CERTDNS_PID" "$KNOT_PID" 2>/dev/null || true
    PIDS=()
done

MEM_LINE="(skipped)"
if [[ -z ${SKIP_MEMORY:-} ]]; then
    echo "== $MEM_NAMES registrations from Redis"
    PREFIX="certdns-bench-$$-$(date +%s):"
    # Every key under the private prefix (values, stream, generation, membership).
    mem_cleanup() {
        redis-cli -u "$REDIS_URL" --scan --pattern "${PREFIX}*" | while read -r key; do
            redis-cli -u "$REDIS_URL" DEL "$key" >/dev/null
        done || true
    }
    trap 'mem_cleanup; cleanup' EXIT
    MEM_LINE=$(/usr/bin/time -f 'max_rss_kib=%M' "$BIN" redis-load --names "$MEM_NAMES" --redis "$REDIS_URL" --prefix "$PREFIX" --fill 2>"$WORK/mem.err" | tail -1)
    MEM_LINE="$MEM_LINE $(grep -o 'max_rss_kib=[0-9]*' "$WORK/mem.err" || true) $(grep -o 'filled .*' "$WORK/mem.err" || true)"
    mem_cleanup
    echo "$MEM_LINE"
fi

python3 - "$RAW" "$MEM_LINE" >"$OUT/results.md" <<'PY'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
def med(xs):
    xs = [float(x) for x in xs if x not in ("-", "")]
    return statistics.median(xs) if xs else float("nan")
mixes = [m for m in ("mixed", "nxdomain", "refused", "tcp") if any(r["mix"] == m for r in rows)]
sizes = sorted({r["names"] for r in rows}, key=int)
print("| names | queries | server | max QPS (median) | lost % | p50 ms @ 5k QPS | p99 ms @ 5k QPS | CPU µs/query @ 20k QPS |")
print("| --- | --- | --- | --- | --- | --- | --- | --- |")
summary = {}
for n in sizes:
    for mix in mixes:
        for server in ("certdns", "knot"):
            rs = [r for r in rows if r["names"] == n and r["mix"] == mix and r["server"] == server]
            q, lost, p50, p99, cpu = (med([r[k] for r in rs]) for k in ("max_qps", "lost_pct", "p50_ms", "p99_ms", "cpu_us_per_query"))
            summary[(n, mix, server)] = (q, p99, cpu)
            print(f"| {n} | {mix} | {server} | {q:,.0f} | {lost:.2f} | {p50:.3f} | {p99:.3f} | {cpu:.1f} |")
print()
print("| names | queries | QPS certdns/knot | p99 certdns/knot | CPU per query certdns/knot |")
print("| --- | --- | --- | --- | --- |")
for n in sizes:
    for mix in mixes:
        (cq, cp, cc), (kq, kp, kc) = summary[(n, mix, "certdns")], summary[(n, mix, "knot")]
        print(f"| {n} | {mix} | {cq / kq:.2f} | {cp / kp:.2f} | {cc / kc:.2f} |")
print()
loads = sorted(float(r["load1"]) for r in rows if r.get("load1"))
if loads:
    print(f"Load average (1 min, 2 cores) after each round: {loads[0]:.2f}–{loads[-1]:.2f}, median {statistics.median(loads):.2f}.")
    print()
print("Memory and snapshot load: `" + sys.argv[2].strip() + "`")
PY
cat "$OUT/results.md"
