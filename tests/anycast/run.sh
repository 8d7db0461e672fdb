#!/usr/bin/env bash
# Anycast failover with real BIRD, in network namespaces (see deploy/anycast/README.md).
#
#   tests/anycast/run.sh                                  as root
#   CERTDNS_ANYCAST_BIN=target/release/certdns tests/anycast/run.sh
#
# Four network namespaces, named for this run (cdac<PID>-router, -pop1, -pop2,
# -client), joined by veth pairs router<->pop1, router<->pop2, router<->client.
# Every address is private (10.99.0.0/16, fd00:99::/32) and exists only inside
# them; nothing on the host (routes, interfaces, firewall) is touched.
#
#   router   redis-server (the TXT distribution both PoPs follow); BIRD with one
#            eBGP session per PoP and family, ECMP ("merge paths") into the
#            namespace's kernel table; forwarding on, L4 multipath hashing.
#   popN     dummy0 holding the anycast addresses 10.99.53.53/32 and
#            fd00:99:53::53/128; `certdns serve --role dns` on both, port 53
#            UDP+TCP, HTTP on 127.0.0.1:8080, ops on 127.0.0.1:0; BIRD running
#            deploy/anycast/bird.conf with the documentation addresses replaced;
#            a loop running deploy/anycast/certdns-anycast-check every second.
#   client   tests/anycast/probe.py: 5 questions every 100 ms to the anycast
#            addresses (SOA, a registered TXT, and pop.<zone> over UDP, TCP, IPv6).
#
# Where the TXT values come from: one `certdns serve --role api` in the router
# namespace, on the SQLite store (the host's Postgres is not reachable from the
# namespaces, and the store is not what is under test) and the same Redis as the
# responders. The test registers a name and updates its TXT through the real API,
# so the values reach the responders the way production's do, whatever the Redis
# layout of the day (publishing into Redis directly would tie the test to it).
#
# Scenario: both PoPs announce (2 next hops at the router) -> kill -9 PoP1's
# responder -> its check disables the BIRD static protocols -> withdrawn (1 next
# hop) -> a new TXT value is published -> PoP1's responder restarts -> ready ->
# announced again (2 next hops). The report (probe.py report) asserts: withdrawal
# within CERTDNS_ANYCAST_MAX_WITHDRAW seconds of the kill, questions lost only
# between the kill and the withdrawal, every other question answered, both PoPs
# answering while both announce, and the new TXT value from both afterwards.
#
# Environment:
#   CERTDNS_ANYCAST_BIN            certdns binary to use (default: cargo build --locked -p certdns --bin certdns)
#   CERTDNS_ANYCAST_TIMEOUT        hard limit for the scenario, seconds (default 180; install and build come before it)
#   CERTDNS_ANYCAST_MAX_WITHDRAW   seconds allowed from the kill to the withdrawal (default 5)
#   CERTDNS_ANYCAST_KEEP=1         keep the work directory (configs, logs, probe results) on success too
#
# Needs root (namespaces, port 53, apt-get). Installs bird2, iproute2, dnsutils,
# curl, redis-server, redis-tools and python3 from Debian when missing, without
# starting their system services (a temporary policy-rc.d, see install_missing).
set -euo pipefail

if [ "$(id -u)" != 0 ]; then
    echo "anycast: must run as root (it creates network namespaces and binds port 53): sudo $0" >&2
    exit 1
fi

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
CHECK="$ROOT/deploy/anycast/certdns-anycast-check"
POP_BIRD_CONF="$ROOT/deploy/anycast/bird.conf"

say() { printf '%s anycast: %s\n' "$(date -u +%H:%M:%S.%2N)" "$*"; }

###############################################################################
# Packages (Debian), installed only when missing, quietly.
###############################################################################
install_missing() {
    local -a missing=()
    need() { command -v "$1" >/dev/null 2>&1 || case " ${missing[*]} " in *" $2 "*) ;; *) missing+=("$2") ;; esac; }
    need bird bird2
    need birdc bird2
    need ip iproute2
    need dig dnsutils
    need curl curl
    need redis-server redis-server
    need redis-cli redis-tools
    need python3 python3
    [ ${#missing[@]} = 0 ] && return 0
    say "installing: ${missing[*]}"
    # bird2 and redis-server start their system services when installed; keep
    # them off with a policy-rc.d (invoke-rc.d(8)) unless the machine has one.
    local policy=/usr/sbin/policy-rc.d own_policy=""
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy" && own_policy=1
    fi
    local rc=0
    {
        timeout 300 apt-get update -qq &&
            DEBIAN_FRONTEND=noninteractive timeout 900 apt-get install -y -qq --no-install-recommends \
                "${missing[@]}" >/dev/null
    } || rc=$?
    [ -z "$own_policy" ] || rm -f "$policy"
    [ "$rc" = 0 ] || { echo "anycast: apt-get install ${missing[*]} failed (exit $rc)" >&2; exit 1; }
}
install_missing
PYTHON="$(command -v /usr/bin/python3 || command -v python3)"

###############################################################################
# The binary.
###############################################################################
if [ -n "${CERTDNS_ANYCAST_BIN:-}" ]; then
    BIN="$(readlink -f "$CERTDNS_ANYCAST_BIN")"
else
    say "cargo build --locked -p certdns --bin certdns"
    (cd "$ROOT" && timeout 1800 cargo build --locked -q -p certdns --bin certdns)
    tdir="${CARGO_TARGET_DIR:-target}"
    case "$tdir" in /*) ;; *) tdir="$ROOT/$tdir" ;; esac
    BIN="$tdir/debug/certdns"
fi
[ -x "$BIN" ] || { echo "anycast: no certdns binary at $BIN" >&2; exit 1; }

###############################################################################
# State, cleanup.
###############################################################################
LIMIT="${CERTDNS_ANYCAST_TIMEOUT:-180}"
MAX_WITHDRAW="${CERTDNS_ANYCAST_MAX_WITHDRAW:-5}"
CHECK_INTERVAL=1            # seconds between health checks (production: a few seconds)
ZONE=auth.anycast.test
ANY4=10.99.53.53
ANY6=fd00:99:53::53
TAG="cdac$$"
NS_R="$TAG-router" NS_P1="$TAG-pop1" NS_P2="$TAG-pop2" NS_C="$TAG-client"
ALL_NS=("$NS_R" "$NS_P1" "$NS_P2" "$NS_C")
W="$(mktemp -d "${TMPDIR:-/tmp}/certdns-anycast.XXXXXX")"
mkdir -p "$W/logs"
EVENTS="$W/events"
: >"$EVENTS"
CREATED_NS=()
declare -A PID          # name -> pid of what we started (all of it runs inside our namespaces)
WATCHDOG=""
STEP="start"
FAIL_MSG=""

fail() { FAIL_MSG="$*"; exit 1; }
step() { STEP="$*"; say "── $STEP"; }
event() { echo "$1=${2:-$EPOCHREALTIME}" >>"$EVENTS"; }

cleanup() {
    local rc=$?
    set +e
    trap - TERM INT
    [ -z "$WATCHDOG" ] || kill "$WATCHDOG" 2>/dev/null
    if [ "$rc" != 0 ]; then
        echo "anycast: FAILED at step: $STEP${FAIL_MSG:+: $FAIL_MSG}"
        local f
        for f in "$W"/logs/*; do
            [ -s "$f" ] || continue
            echo "---- tail of $f"
            tail -n 25 "$f"
        done
        if [ -e "/run/netns/$NS_R" ]; then
            echo "---- routes in $NS_R"
            ip -n "$NS_R" route; ip -n "$NS_R" -6 route
        fi
    fi
    # Everything we started runs in our namespaces: stop it by PID, then what is left in them.
    local name pid ns
    for name in "${!PID[@]}"; do kill -TERM "${PID[$name]}" 2>/dev/null; done
    for _ in $(seq 1 30); do
        local alive=""
        for name in "${!PID[@]}"; do kill -0 "${PID[$name]}" 2>/dev/null && alive=1; done
        [ -n "$alive" ] || break
        sleep 0.1
    done
    for ns in "${CREATED_NS[@]}"; do
        for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null; done
    done
    for name in "${!PID[@]}"; do wait "${PID[$name]}" 2>/dev/null; done
    for ns in "${CREATED_NS[@]}"; do
        ip netns del "$ns" 2>/dev/null || echo "anycast: could not delete network namespace $ns" >&2
    done
    if [ "$rc" = 0 ] && [ -z "${CERTDNS_ANYCAST_KEEP:-}" ]; then
        rm -rf "$W"
    else
        echo "anycast: work directory kept: $W"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'FAIL_MSG="${FAIL_MSG:-terminated (the ${LIMIT}s limit?)}"; exit 143' TERM INT
# The watchdog: TERM to this script after LIMIT seconds; killed (with its sleep) by cleanup.
(
    trap 'kill "$sleeper" 2>/dev/null; exit 0' TERM
    sleep "$LIMIT" &
    sleeper=$!
    wait "$sleeper" && kill -TERM $$
) >/dev/null 2>&1 </dev/null &
WATCHDOG=$!

in_ns() { local ns="$1"; shift; ip netns exec "$ns" "$@"; }
# nsysctl NS KEY=VALUE...: sysctl inside NS, through /proc (procps may be missing).
nsysctl() {
    local ns="$1" kv; shift
    for kv in "$@"; do
        # shellcheck disable=SC2016
        in_ns "$ns" sh -c 'echo "$2" >"/proc/sys/$1"' _ "$(echo "${kv%%=*}" | tr . /)" "${kv#*=}"
    done
}

# start NAME NS LOG CMD...: a background process inside NS, its PID under NAME.
start() {
    local name="$1" ns="$2" log="$3"; shift 3
    ip netns exec "$ns" "$@" >>"$log" 2>&1 </dev/null &
    PID[$name]=$!
}
alive() { kill -0 "${PID[$1]}" 2>/dev/null; }

# wait_for SECONDS WHAT CMD...: retries CMD every 0.1 s, at most SECONDS.
wait_for() {
    local secs="$1" what="$2"; shift 2
    local deadline=$((SECONDS + secs))
    until "$@" >/dev/null 2>&1; do
        [ "$SECONDS" -lt "$deadline" ] || fail "$what: not within ${secs}s"
        sleep 0.1
    done
}

# Next hops of the anycast route in the router's table, sorted, space-separated.
hops() { # 4|6
    local prefix
    if [ "$1" = 4 ]; then prefix="$ANY4/32"; else prefix="$ANY6/128"; fi
    ip -n "$NS_R" -"$1" route show "$prefix" 2>/dev/null | grep -o 'via [0-9a-f:.]*' | awk '{print $2}' | sort | paste -sd' ' -
}
hops_are() { [ "$(hops "$1")" = "$2" ]; }

###############################################################################
# Namespaces and links.
###############################################################################
step "network namespaces $TAG-{router,pop1,pop2,client}"
for ns in "${ALL_NS[@]}"; do
    ip netns add "$ns" || fail "ip netns add $ns failed (network namespaces need root, outside a restricted container)"
    CREATED_NS+=("$ns")
    # No duplicate address detection: addresses are usable at once.
    nsysctl "$ns" net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0
    ip -n "$ns" link set lo up
done
# A router: forwarding, and ECMP by the 5-tuple (each question's fresh source port
# picks a PoP), not by addresses alone (which would send every question to one).
nsysctl "$NS_R" net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1 \
    net.ipv4.fib_multipath_hash_policy=1 net.ipv6.fib_multipath_hash_policy=1
# The anycast addresses go on dummy0 as in deploy/anycast; a kernel built without
# the dummy driver (CONFIG_DUMMY) gets them on the namespace's loopback instead.
ANYDEV=dummy0
if ! ip -n "$NS_P1" link add dummy0 type dummy 2>/dev/null; then
    ANYDEV=lo
    say "   this kernel has no dummy interfaces: the anycast addresses go on lo"
else
    ip -n "$NS_P2" link add dummy0 type dummy
fi
for n in 1 2; do
    pop="$TAG-pop$n"
    ip -n "$NS_R" link add "pop$n" type veth peer name uplink netns "$pop"
    ip -n "$NS_R" addr add "10.99.$n.1/24" dev "pop$n"
    ip -n "$NS_R" addr add "fd00:99:$n::1/64" dev "pop$n" nodad
    ip -n "$NS_R" link set "pop$n" up
    ip -n "$pop" addr add "10.99.$n.2/24" dev uplink
    ip -n "$pop" addr add "fd00:99:$n::2/64" dev uplink nodad
    ip -n "$pop" link set uplink up
    ip -n "$pop" route add default via "10.99.$n.1"
    ip -n "$pop" -6 route add default via "fd00:99:$n::1"
    ip -n "$pop" addr add "$ANY4/32" dev "$ANYDEV"
    ip -n "$pop" addr add "$ANY6/128" dev "$ANYDEV" nodad
    ip -n "$pop" link set "$ANYDEV" up
done
ip -n "$NS_R" link add client type veth peer name uplink netns "$NS_C"
ip -n "$NS_R" addr add 10.99.3.1/24 dev client
ip -n "$NS_R" addr add fd00:99:3::1/64 dev client nodad
ip -n "$NS_R" link set client up
ip -n "$NS_C" addr add 10.99.3.2/24 dev uplink
ip -n "$NS_C" addr add fd00:99:3::2/64 dev uplink nodad
ip -n "$NS_C" link set uplink up
ip -n "$NS_C" route add default via 10.99.3.1
ip -n "$NS_C" -6 route add default via fd00:99:3::1

###############################################################################
# Redis and the api role in the router namespace; a registered name with a TXT value.
###############################################################################
step "redis-server and certdns serve --role api (SQLite) in $NS_R"
start redis "$NS_R" "$W/logs/redis.log" redis-server --bind 0.0.0.0 --port 6379 --protected-mode no \
    --save '' --appendonly no --dir "$W" --logfile ""
wait_for 10 "redis-server answering PING" in_ns "$NS_R" redis-cli -h 10.99.1.1 ping

# certdns sees only the variables given here (it refuses unknown CERTDNS_* ones).
certdns_env() { # DIR REDIS-URL: env(1) arguments for a certdns process, in CD_ENV
    mkdir -p "$1"
    CD_ENV=(-i -C "$1" PATH="$PATH" NO_COLOR=1 CERTDNS_REDIS_URL="$2" CERTDNS_ZONE__DOMAIN="$ZONE"
        CERTDNS_ZONE__SERIAL=1 CERTDNS_LOG_LEVEL=info)
}
certdns_env "$W/api" redis://10.99.1.1:6379
start api "$NS_R" "$W/logs/certdns-api.log" env "${CD_ENV[@]}" \
    "$BIN" serve --role api --http-listen 127.0.0.1:8080 --ops-listen 127.0.0.1:0
api_ready() {
    alive api || fail "the api role exited: $(tail -n 5 "$W/logs/certdns-api.log")"
    in_ns "$NS_R" curl -sf --max-time 2 -o /dev/null http://127.0.0.1:8080/ready
}
wait_for 60 "api role: GET /ready = 200" api_ready
# First start on an empty store: an operator account and a license key, written to
# first-start.txt (stdout is not a terminal) as a base URL with the key in it.
BASE_URL="$(grep -Eo 'http://[^[:space:]/]+:[^[:space:]/]+@127\.0\.0\.1:8080' "$W/api/first-start.txt" 2>/dev/null | head -n1)" ||
    fail "no license-keyed base URL in $W/api/first-start.txt"
api() { in_ns "$NS_R" curl -sS --max-time 5 -f "$@"; }
json() { "$PYTHON" -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }
REG="$(api -X POST "$BASE_URL/register")" || fail "POST /register failed: $REG"
SUB="$(json subdomain <<<"$REG")"
API_USER="$(json username <<<"$REG")"
API_KEY="$(json password <<<"$REG")"
[ "$(json fulldomain <<<"$REG")" = "$SUB.$ZONE" ] || fail "unexpected fulldomain in $REG"
VALUE1="$(printf '%-43s' anycast-failover-test-value-one | tr ' ' _)"
VALUE2="$(printf '%-43s' anycast-failover-test-value-two | tr ' ' _)"
update_txt() { # VALUE
    local out
    out="$(api -X POST http://127.0.0.1:8080/update -H "X-Api-User: $API_USER" -H "X-Api-Key: $API_KEY" \
        -d "{\"subdomain\":\"$SUB\",\"txt\":\"$1\"}" 2>&1)" || fail "POST /update failed: $out"
}
update_txt "$VALUE1"
say "   registered $SUB.$ZONE, TXT value 1 published"

###############################################################################
# The responders.
###############################################################################
start_responder() { # N
    local n="$1"
    certdns_env "$W/pop$n" "redis://10.99.$n.1:6379"
    start "certdns$n" "$TAG-pop$n" "$W/logs/certdns-pop$n.log" \
        env "${CD_ENV[@]}" CERTDNS_ZONE__RECORDS="[\"pop.$ZONE. TXT pop$n\"]" \
        "$BIN" serve --role dns --dns-listen "$ANY4:53" --dns-listen "[$ANY6]:53" \
        --http-listen 127.0.0.1:8080 --ops-listen 127.0.0.1:0
}
responder_ready() { # N
    alive "certdns$1" || fail "certdns in pop$1 exited: $(tail -n 5 "$W/logs/certdns-pop$1.log")"
    in_ns "$TAG-pop$1" curl -sf --max-time 2 -o /dev/null http://127.0.0.1:8080/ready
}
step "certdns serve --role dns in both PoPs"
start_responder 1
start_responder 2
wait_for 60 "pop1: GET /ready = 200" responder_ready 1
wait_for 60 "pop2: GET /ready = 200" responder_ready 2

###############################################################################
# BIRD.
###############################################################################
step "BIRD: router (ECMP) and one per PoP (deploy/anycast/bird.conf)"
sed "s|@LOG@|$W/logs/bird-router.log|" "$HERE/bird-router.conf" >"$W/bird-router.conf"
for n in 1 2; do
    # The shipped configuration, its documentation addresses replaced by this PoP's.
    {
        echo "log \"$W/logs/bird-pop$n.log\" all;"
        sed -E -e "s/192\.0\.2\.10\b/10.99.$n.2/g" -e "s/192\.0\.2\.1\b/10.99.$n.1/g" \
            -e "s/192\.0\.2\.53\b/$ANY4/g" -e "s/2001:db8::10\b/fd00:99:$n::2/g" \
            -e "s/2001:db8::1\b/fd00:99:$n::1/g" -e "s/2001:db8::53\b/$ANY6/g" "$POP_BIRD_CONF"
    } >"$W/bird-pop$n.conf"
    ! grep -nE '192\.0\.2\.|2001:db8' "$W/bird-pop$n.conf" ||
        fail "deploy/anycast/bird.conf has addresses this test does not know how to replace (above)"
done
for b in router pop1 pop2; do
    bird -p -c "$W/bird-$b.conf" >"$W/logs/bird-$b.parse" 2>&1 || fail "bird -p: $(cat "$W/logs/bird-$b.parse")"
    start "bird-$b" "$TAG-$b" "$W/logs/bird-$b.out" bird -f -c "$W/bird-$b.conf" -s "$W/bird-$b.ctl" -P "$W/bird-$b.pid"
done
birdc_r() { birdc -s "$W/bird-router.ctl" "$@"; }
sessions_up() { [ "$(birdc_r show protocols | grep -c 'Established')" = 4 ]; }
wait_for 30 "router: 4 BGP sessions Established" sessions_up
# The static protocols start disabled: nothing is announced before a health check
# found the responder ready. (A second for any UPDATE to arrive, were one sent.)
sleep 1
[ -z "$(hops 4)$(hops 6)" ] || fail "the anycast prefixes are announced before any health check ran: v4 [$(hops 4)] v6 [$(hops 6)]"
say "   BGP up, nothing announced yet (static protocols start disabled)"

###############################################################################
# Health checks: one bounded loop per PoP.
###############################################################################
step "health-check loops (every ${CHECK_INTERVAL}s) in both PoPs"
for n in 1 2; do
    # shellcheck disable=SC2016
    start "check$n" "$TAG-pop$n" "$W/logs/check-pop$n.log" env BIRD_SOCKET="$W/bird-pop$n.ctl" bash -c '
        for ((i = 0; i < $2; i++)); do
            "$1" http://127.0.0.1:8080 "$3" 53 "$4" && s=ok || s="exit $?"
            echo "$EPOCHREALTIME check: $s"
            sleep "$5"
        done' check "$CHECK" $((LIMIT / CHECK_INTERVAL)) "$ZONE" "$ANY4" "$CHECK_INTERVAL"
done
wait_for 10 "router: two IPv4 next hops" hops_are 4 "10.99.1.2 10.99.2.2"
wait_for 10 "router: two IPv6 next hops" hops_are 6 "fd00:99:1::2 fd00:99:2::2"
say "   router: $ANY4 via [$(hops 4)], $ANY6 via [$(hops 6)]"

###############################################################################
# The scenario.
###############################################################################
step "client: questions every 100 ms; both PoPs up"
start probe "$NS_C" "$W/logs/probe.log" "$PYTHON" "$HERE/probe.py" run --out "$W/probe.jsonl" --stop "$W/probe.stop" \
    --zone "$ZONE" --txt-name "$SUB.$ZONE" --v4 "$ANY4" --v6 "$ANY6" --interval 0.1 --timeout 3 --max-ticks 600
# 2 to 3 s, at a random moment relative to the health checks' 1 s rhythm, so the
# time to withdrawal is sampled over the whole check interval.
sleep "2.$(printf '%03d' $((RANDOM % 1000)))"
alive probe || fail "the probe exited: $(tail -n 5 "$W/logs/probe.log")"

step "kill -9 PoP1's responder; waiting for the withdrawal"
event kill
kill -KILL "${PID[certdns1]}"
w4="" w6=""
for _ in $(seq 1 500); do       # 500 x ~20 ms: 10 s at most
    [ -n "$w4" ] || { hops_are 4 "10.99.2.2" && w4=$EPOCHREALTIME && event withdraw4 "$w4"; }
    [ -n "$w6" ] || { hops_are 6 "fd00:99:2::2" && w6=$EPOCHREALTIME && event withdraw6 "$w6"; }
    [ -z "$w4" ] || [ -z "$w6" ] || break
    sleep 0.02
done
if [ -z "$w4" ] || [ -z "$w6" ]; then fail "PoP1 not withdrawn 10 s after the kill: v4 [$(hops 4)] v6 [$(hops 6)]"; fi
wait "${PID[certdns1]}" 2>/dev/null || true
say "   withdrawn: $ANY4 via [$(hops 4)], $ANY6 via [$(hops 6)]"

step "PoP2 alone; a new TXT value through the API"
sleep 1
event publish2
update_txt "$VALUE2"
sleep 2

step "restart PoP1's responder; waiting for the re-announcement"
event restart
start_responder 1
wait_for 60 "pop1 (restarted): GET /ready = 200" responder_ready 1
event ready
r4="" r6=""
for _ in $(seq 1 500); do
    [ -n "$r4" ] || { hops_are 4 "10.99.1.2 10.99.2.2" && r4=$EPOCHREALTIME && event reannounce4 "$r4"; }
    [ -n "$r6" ] || { hops_are 6 "fd00:99:1::2 fd00:99:2::2" && r6=$EPOCHREALTIME && event reannounce6 "$r6"; }
    [ -z "$r4" ] || [ -z "$r6" ] || break
    sleep 0.02
done
if [ -z "$r4" ] || [ -z "$r6" ]; then fail "PoP1 not announced again 10 s after /ready: v4 [$(hops 4)] v6 [$(hops 6)]"; fi
say "   announced again: $ANY4 via [$(hops 4)], $ANY6 via [$(hops 6)]"

step "both PoPs again"
sleep 3
event end
touch "$W/probe.stop"
for _ in $(seq 1 50); do alive probe || break; sleep 0.1; done
! alive probe || fail "the probe did not stop"
wait "${PID[probe]}" || fail "the probe failed: $(tail -n 5 "$W/logs/probe.log")"

step "report"
rc=0
"$PYTHON" "$HERE/probe.py" report --results "$W/probe.jsonl" --events "$EVENTS" \
    --value1 "$VALUE1" --value2 "$VALUE2" --max-withdraw "$MAX_WITHDRAW" >"$W/report.txt" 2>&1 || rc=$?
cat "$W/report.txt"
[ "$rc" = 0 ] || fail "$(grep -m1 FAILED "$W/report.txt" || tail -n 1 "$W/report.txt")"
say "passed"
