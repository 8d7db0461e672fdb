#!/usr/bin/env bash
# End to end: real ACME clients obtain real certificates through certdns, all on loopback.
#
#   tests/e2e/run.sh                 every scenario (single binary, split, tls)
#   CERTDNS_E2E_SCENARIOS=single tests/e2e/run.sh      only one of: single split tls
#
# What it runs (see tests/e2e/README.md for the details):
#   pebble (Let's Encrypt's test CA, validating through unbound), unbound (recursive,
#   qname-minimisation on, stub zones), knot (the customer's zone example.test), and
#   certdns: (a) `certdns serve` on its embedded default (SQLite, in-process TXT),
#   (b) one api + portal process and two dns roles on Postgres + Redis. Against each: certbot with
#   certbot-dns-acmedns (PyPI, in a venv), lego with --dns exec and our hook, a
#   renewal with each, lego's httpreq provider against /acmeproxy (apex + wildcard
#   from one registration bound by its subject), a registration provisioned through
#   the portal's account API and used by certbot's plugin without /register, a
#   revoked license key (401) and a missing CNAME (CA error). (c) `tls`: certdns orders
#   its own certificate from pebble (tls.acme: a name in its zone, one in the customer
#   zone through the CNAME it asks for), then lego registers and updates over that HTTPS.
#
# Environment:
#   CERTDNS_E2E_SCENARIOS  "single split tls" (default) or a subset
#   CERTDNS_E2E_TIMEOUT    hard limit for the scenario in seconds (default 480);
#                          installing packages and building come before it
#   CERTDNS_E2E_BIN        a certdns binary to use instead of building one
#   CERTDNS_E2E_PROFILE    debug (default) or release: which build to make and use
#   CERTDNS_E2E_CACHE      where the certbot venv is kept (default target/e2e-cache)
#   CERTDNS_E2E_KEEP=1     keep the work directory (logs, configs) even on success
#
# Everything listens on free high ports on 127.0.0.1; nothing leaves the machine.
# Every process it starts is stopped by PID on exit, also on failure or timeout,
# and the Postgres database and Redis keys of the split run are dropped.
set -euo pipefail

E2E_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$E2E_DIR/../.." && pwd)"
SCENARIOS="${CERTDNS_E2E_SCENARIOS:-single split tls}"

say() { printf '%s e2e: %s\n' "$(date -u +%H:%M:%S)" "$*"; }

# Kills what a run recorded in its pid file ("PID NAME EXE" per line), newest
# first, but only while /proc/PID still runs that executable (no recycled PIDs;
# a script counts by its path on the command line).
reap_pids() {
    local file="$1" pid name exe i
    [ -f "$file" ] || return 0
    local -a lines
    mapfile -t lines <"$file"
    for ((i = ${#lines[@]} - 1; i >= 0; i--)); do
        read -r pid name exe <<<"${lines[$i]}"
        [ -n "$pid" ] || continue
        if kill -0 "$pid" 2>/dev/null && { [ "$(readlink "/proc/$pid/exe" 2>/dev/null)" = "$exe" ] ||
            tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null | grep -qxF "$exe"; }; then
            kill -TERM "$pid" 2>/dev/null || true
            for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            kill -KILL "$pid" 2>/dev/null || true
        fi
    done
}

# Drops what a run recorded in its cleanup file: "pg ADMIN_URL DB" and "redis URL PREFIX".
drop_external() {
    local file="$1" kind a b
    [ -f "$file" ] || return 0
    while read -r kind a b; do
        case "$kind" in
        pg) timeout 30 psql "$a" -qAtc "DROP DATABASE IF EXISTS \"$b\" WITH (FORCE)" >/dev/null 2>&1 ||
            echo "e2e: could not drop database $b" >&2 ;;
        redis) timeout 30 redis-cli -u "$a" --scan --pattern "$b*" 2>/dev/null |
            xargs -r timeout 30 redis-cli -u "$a" del >/dev/null 2>&1 || echo "e2e: could not delete Redis keys $b*" >&2 ;;
        esac
    done <"$file"
}

###############################################################################
# Outer part: prerequisites, then the scenario under a hard timeout.
###############################################################################
if [ -z "${CERTDNS_E2E_INNER:-}" ]; then
    as_root() {
        if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
            echo "e2e: need root (or sudo) to run: $*" >&2; return 1; fi
    }
    # Debian packages, installed when absent.
    missing=()
    need() { command -v "$1" >/dev/null 2>&1 || missing+=("$2"); }
    need pebble pebble
    need unbound unbound
    need knotd knot
    need knotc knot
    need certbot certbot
    need lego lego
    need dig dnsutils
    need jq jq
    need curl curl
    need openssl openssl
    [ -x /usr/bin/python3 ] && /usr/bin/python3 -c 'import ensurepip' 2>/dev/null || missing+=(python3-venv)
    # certbot-dns-acmedns' metadata asks pkg_resources for "zope.interface"; Debian's
    # package satisfies it (a wheel built by a new setuptools is named zope_interface
    # and is not found by bookworm's pkg_resources).
    /usr/bin/python3 -c 'import zope.interface' 2>/dev/null || missing+=(python3-zope.interface)
    if [ ${#missing[@]} -gt 0 ]; then
        say "installing: ${missing[*]}"
        as_root timeout 300 apt-get update -qq
        as_root env DEBIAN_FRONTEND=noninteractive timeout 900 apt-get install -y -qq \
            --no-install-recommends "${missing[@]}" >/dev/null
    fi

    # certbot-dns-acmedns in a venv that sees Debian's certbot 2.1.
    cache="${CERTDNS_E2E_CACHE:-$ROOT/target/e2e-cache}"
    venv="$cache/venv"
    if ! "$venv/bin/python" -c 'import certbot_dns_acmedns, certbot.main' 2>/dev/null; then
        say "creating the certbot venv in $venv"
        rm -rf "$venv"
        mkdir -p "$cache"
        /usr/bin/python3 -m venv --system-site-packages "$venv"
        timeout 300 "$venv/bin/pip" install -q --disable-pip-version-check \
            'certbot-dns-acmedns==0.1.0' 'pyacmedns==0.4' 'zope.interface==5.5.2'
    fi
    export CERTDNS_E2E_VENV="$venv"

    # Postgres and Redis for the split deployment.
    case " $SCENARIOS " in
    *" split "*)
        # shellcheck source=scripts/test-services.sh
        (cd "$ROOT" && . scripts/test-services.sh >/dev/null && env | grep -E '^CERTDNS_TEST_(POSTGRES|REDIS)_URL=') >"${TMPDIR:-/tmp}/certdns-e2e-services.$$"
        while IFS='=' read -r k v; do export "$k=$v"; done <"${TMPDIR:-/tmp}/certdns-e2e-services.$$"
        rm -f "${TMPDIR:-/tmp}/certdns-e2e-services.$$"
        ;;
    esac

    # The certdns binary.
    if [ -n "${CERTDNS_E2E_BIN:-}" ]; then
        bin="$(readlink -f "$CERTDNS_E2E_BIN")"
    else
        profile="${CERTDNS_E2E_PROFILE:-debug}"
        say "cargo build -p certdns ($profile)"
        if [ "$profile" = release ]; then
            (cd "$ROOT" && timeout 1800 cargo build --locked --release -p certdns)
        else
            (cd "$ROOT" && timeout 1800 cargo build --locked -p certdns)
        fi
        tdir="${CARGO_TARGET_DIR:-target}"
        case "$tdir" in /*) ;; *) tdir="$ROOT/$tdir" ;; esac
        bin="$tdir/$profile/certdns"
    fi
    [ -x "$bin" ] || { echo "e2e: no certdns binary at $bin" >&2; exit 1; }
    export CERTDNS_E2E_CERTDNS="$bin"

    work="$(mktemp -d "${TMPDIR:-/tmp}/certdns-e2e.XXXXXX")"
    export CERTDNS_E2E_WORK="$work"
    limit="${CERTDNS_E2E_TIMEOUT:-480}"
    say "work directory $work, hard timeout ${limit}s"
    rc=0
    CERTDNS_E2E_INNER=1 timeout -k 15 "$limit" bash "${BASH_SOURCE[0]}" || rc=$?
    if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
        echo "e2e: FAILED: hard timeout (${limit}s) hit during step: $(cat "$work/step" 2>/dev/null || echo '?')"
        [ -e "$work/reported" ] || for f in "$work"/logs/*; do
            [ -s "$f" ] || continue
            echo "---- tail of $f"; tail -n 15 "$f"
        done
    fi
    reap_pids "$work/pids"
    drop_external "$work/cleanup"
    if [ "$rc" = 0 ] && [ -z "${CERTDNS_E2E_KEEP:-}" ]; then
        rm -rf "$work"
    else
        echo "e2e: logs and configs kept in $work"
    fi
    exit "$rc"
fi

###############################################################################
# Inner part: the scenario. Runs under `timeout`.
###############################################################################
W="$CERTDNS_E2E_WORK"
BIN="$CERTDNS_E2E_CERTDNS"
VENV="$CERTDNS_E2E_VENV"
HOOK="$E2E_DIR/lego-acmedns-hook.sh"
PIDS="$W/pids"
mkdir -p "$W/logs"
: >"$PIDS"
: >"$W/cleanup"
: >"$W/timings"

# Nothing from the caller's environment may steer certdns (but our own variables).
while read -r v; do unset "$v"; done < <(compgen -e | grep '^CERTDNS_' | grep -v -E '^CERTDNS_(E2E|TEST)_' || true)
export NO_COLOR=1
# certdns rejects CERTDNS_* variables it does not know: hide ours (and the test suite's) from it.
CD_UNSET=()
while read -r v; do CD_UNSET+=(-u "$v"); done < <(compgen -e | grep -E '^CERTDNS_(E2E|TEST)_' || true)

ZONE=auth.certdns.test          # certdns's zone (not .localhost: unbound answers that itself)
CUSTOMER=example.test           # the customer's zone, served by knot
EMAIL=customer@example.test
NAMES=(example.test '*.example.test' www.example.test)
T_START=$(date +%s.%N)

STEP="start"
STEP_LOGS=()
declare -A DPID DLOG

step() {
    STEP="$1"; shift
    STEP_LOGS=("$@")
    echo "$STEP" >"$W/step"
    say "── $STEP"
}

FAIL_MSG=""
fail() {
    FAIL_MSG="$*"
    exit 1
}

exec 3>&1 4>&2   # the real stdout/stderr: a signal may arrive inside a redirected command
on_exit() {
    local rc=$?
    set +e
    exec 1>&3 2>&4
    if [ "$rc" != 0 ]; then
        echo
        if [ -n "$FAIL_MSG" ]; then
            echo "e2e: FAILED at step: $STEP: $FAIL_MSG"
        elif [ "$rc" = 143 ]; then
            echo "e2e: FAILED at step: $STEP (terminated: the hard timeout of ${CERTDNS_E2E_TIMEOUT:-480}s?)"
        else
            echo "e2e: FAILED at step: $STEP (exit $rc${LAST_CMD:+; last command: $LAST_CMD})"
        fi
        local logs=("${STEP_LOGS[@]}") seen=" " f
        if [ ${#logs[@]} = 0 ]; then logs=("${DLOG[@]}"); fi
        for f in "${logs[@]}"; do
            [ -s "$f" ] || continue
            case "$seen" in *" $f "*) continue ;; esac
            seen="$seen$f "
            echo "---- tail of $f"
            tail -n 30 "$f"
        done
        : >"$W/reported"
    fi
    reap_pids "$PIDS"
    exit "$rc"
}
trap on_exit EXIT
trap 'exit 143' TERM INT
trap 'LAST_CMD="$BASH_COMMAND (line $LINENO)"' ERR

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
record_time() { # label seconds
    printf '%s\t%s\n' "$1" "$2" >>"$W/timings"
    say "   $1: ${2}s"
}

# N distinct free ports, each free for both TCP and UDP on 127.0.0.1.
free_ports() {
    /usr/bin/python3 - "$1" <<'EOF'
import socket, sys
n, held, ports = int(sys.argv[1]), [], []
while len(ports) < n:
    t = socket.socket(); t.bind(("127.0.0.1", 0)); p = t.getsockname()[1]
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        u.bind(("127.0.0.1", p))
    except OSError:
        t.close(); continue
    held += [t, u]; ports.append(p)
print(" ".join(map(str, ports)))
EOF
}

# start_daemon NAME STDOUT_FILE STDERR_FILE CMD... (stdout may equal stderr)
# CMD may start with `env [-C DIR] [K=V…]`; the program env execs is what gets recorded.
start_daemon() {
    local name="$1" out="$2" err="$3"; shift 3
    if [ "$out" = "$err" ]; then "$@" >"$out" 2>&1 & else "$@" >"$out" 2>"$err" & fi
    local pid=$! prog="" i=0 args=("$@")
    if [ "${args[0]}" = env ]; then
        i=1
        while [ $i -lt ${#args[@]} ]; do
            case "${args[$i]}" in
            -C|-u) i=$((i + 2)) ;;
            -*|*=*) i=$((i + 1)) ;;
            *) break ;;
            esac
        done
    fi
    prog="$(readlink -f "$(command -v "${args[$i]}")")"
    echo "$pid $name $prog" >>"$PIDS"
    DPID[$name]=$pid
    DLOG[$name]=$err
}

alive() { kill -0 "${DPID[$1]}" 2>/dev/null; }

stop_daemon() {
    local name="$1" pid="${DPID[$1]:-}"
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
        say "   $name did not stop on SIGTERM within 10s; killing it"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
    unset 'DPID[$name]' 'DLOG[$name]'
}

# wait_until DESCRIPTION SECONDS DAEMON-OR-"" CMD...: poll until CMD succeeds.
wait_until() {
    local desc="$1" secs="$2" daemon="$3"; shift 3
    local deadline=$(($(date +%s) + secs))
    while ! "$@" >/dev/null 2>&1; do
        if [ -n "$daemon" ] && ! alive "$daemon"; then
            wait "${DPID[$daemon]}" 2>/dev/null && code=0 || code=$?
            fail "$daemon exited (status $code) while waiting for: $desc"
        fi
        [ "$(date +%s)" -lt "$deadline" ] || fail "timed out after ${secs}s waiting for: $desc"
        sleep 0.2
    done
}

dq() { # PORT dig-args…: one query to 127.0.0.1:PORT
    local port="$1"; shift
    dig +time=2 +tries=1 +norecurse -p "$port" @127.0.0.1 "$@"
}
rq() { # dig-args…: through the CA's resolver
    dig +time=3 +tries=1 -p "$UNBOUND_PORT" @127.0.0.1 "$@"
}
rcode_is() { # RCODE PORT dig-args…
    local want="$1"; shift
    dq "$@" | grep -q "status: $want,"
}

###############################################################################
# The CA: pebble with a throw-away TLS CA.
###############################################################################
start_pebble() {
    step "pebble: throw-away CA and localhost certificate" 
    local p="$W/pki"
    mkdir -p "$p"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
        -keyout "$p/ca.key" -out "$p/ca.pem" -subj "/CN=certdns e2e throw-away CA" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout "$p/localhost.key" -out "$p/localhost.csr" -subj "/CN=localhost" 2>/dev/null
    printf '%s\n' "subjectAltName=DNS:localhost,IP:127.0.0.1" "basicConstraints=critical,CA:FALSE" \
        "keyUsage=critical,digitalSignature" "extendedKeyUsage=serverAuth" >"$p/localhost.ext"
    openssl x509 -req -in "$p/localhost.csr" -CA "$p/ca.pem" -CAkey "$p/ca.key" -CAcreateserial \
        -days 2 -extfile "$p/localhost.ext" -out "$p/localhost.pem" 2>/dev/null
    CA_BUNDLE="$p/ca.pem"

    local ports
    read -r PEBBLE_PORT PEBBLE_MGMT_PORT PEBBLE_HTTP_PORT PEBBLE_TLS_PORT <<<"$(free_ports 4)"
    cat >"$W/pebble.json" <<EOF
{
  "pebble": {
    "listenAddress": "127.0.0.1:$PEBBLE_PORT",
    "managementListenAddress": "127.0.0.1:$PEBBLE_MGMT_PORT",
    "certificate": "$p/localhost.pem",
    "privateKey": "$p/localhost.key",
    "httpPort": $PEBBLE_HTTP_PORT,
    "tlsPort": $PEBBLE_TLS_PORT,
    "ocspResponderURL": "",
    "externalAccountBindingRequired": false
  }
}
EOF
    ACME_DIR="https://127.0.0.1:$PEBBLE_PORT/dir"
}

run_pebble() { # RESOLVER_PORT: (re)start pebble validating through that resolver
    [ -n "${DPID[pebble]:-}" ] && stop_daemon pebble
    step "pebble: start (DNS through 127.0.0.1:$1)" "$W/logs/pebble.log"
    # No sleeps before validating, never "always valid", no bad-nonce injection,
    # and no authorization reuse, so a renewal validates again.
    start_daemon pebble "$W/logs/pebble.log" "$W/logs/pebble.log" \
        env PEBBLE_VA_NOSLEEP=1 PEBBLE_VA_ALWAYS_VALID=0 PEBBLE_WFE_NONCEREJECT=0 PEBBLE_AUTHZREUSE=0 \
        pebble -config "$W/pebble.json" -dnsserver "127.0.0.1:$1"
    wait_until "pebble's ACME directory" 20 pebble curl -sf --max-time 2 --cacert "$CA_BUNDLE" "$ACME_DIR"
    # The root the issued chains lead to (a new one on every pebble start).
    curl -sf --max-time 5 --cacert "$CA_BUNDLE" "https://127.0.0.1:$PEBBLE_MGMT_PORT/roots/0" >"$W/pki/pebble-root.pem"
    openssl x509 -in "$W/pki/pebble-root.pem" -noout >/dev/null || fail "pebble's /roots/0 is not a certificate"
}

###############################################################################
# The customer's DNS: knot serving example.test.
###############################################################################
ZONE_SERIAL=$(date +%s)
declare -A CNAMES   # owner label relative to example.test -> target

write_customer_zone() {
    ZONE_SERIAL=$((ZONE_SERIAL + 1))
    {
        echo "\$ORIGIN $CUSTOMER."
        echo "\$TTL 5"
        echo "@ SOA ns1 hostmaster $ZONE_SERIAL 3600 600 86400 1"
        echo "@ NS ns1"
        echo "ns1 A 127.0.0.1"
        echo "@ A 127.0.0.1"
        echo "www A 127.0.0.1"
        local k
        for k in "${!CNAMES[@]}"; do echo "$k 1 CNAME ${CNAMES[$k]}."; done
    } >"$W/knot/$CUSTOMER.zone"
}

start_knot() {
    step "knot: serve $CUSTOMER" "$W/logs/knot.log"
    read -r KNOT_PORT <<<"$(free_ports 1)"
    mkdir -p "$W/knot/db"
    KNOT_SOCK="$W/knot/knot.sock"
    cat >"$W/knot/knot.conf" <<EOF
server:
    rundir: "$W/knot"
    listen: 127.0.0.1@$KNOT_PORT
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1
control:
    listen: "$KNOT_SOCK"
database:
    storage: "$W/knot/db"
log:
  - target: stderr
    any: info
template:
  - id: default
    storage: "$W/knot"
    file: "%s.zone"
    journal-content: none
    zonefile-sync: -1
    zonefile-load: whole
    semantic-checks: on
zone:
  - domain: $CUSTOMER
EOF
    write_customer_zone
    start_daemon knot "$W/logs/knot.log" "$W/logs/knot.log" knotd -c "$W/knot/knot.conf"
    wait_until "knot answering SOA $CUSTOMER" 15 knot rcode_is NOERROR "$KNOT_PORT" SOA "$CUSTOMER"
}

# set_cname LABEL TARGET: publish _acme-challenge.LABEL... CNAME TARGET. in the customer zone.
publish_cnames() {
    write_customer_zone
    timeout --foreground 15 knotc -s "$KNOT_SOCK" zone-reload "$CUSTOMER" >/dev/null
    local want=$ZONE_SERIAL
    wait_until "knot serving serial $want" 15 knot \
        bash -c "dig +short +time=2 +tries=1 -p $KNOT_PORT @127.0.0.1 SOA $CUSTOMER | awk '{print \$3}' | grep -qx $want"
}

###############################################################################
# The CA's resolver: unbound with stub zones.
###############################################################################
start_unbound() { # DNS-PORT… of certdns's responders
    step "unbound: start (stub $CUSTOMER -> knot, $ZONE -> certdns ${*})" "$W/logs/unbound.log"
    read -r UNBOUND_PORT <<<"$(free_ports 1)"
    mkdir -p "$W/unbound"
    {
        cat <<EOF
server:
    verbosity: 1
    interface: 127.0.0.1
    port: $UNBOUND_PORT
    interface-automatic: no
    outgoing-interface: 127.0.0.1
    do-ip4: yes
    do-ip6: no
    access-control: 127.0.0.0/8 allow
    username: ""
    chroot: ""
    directory: "$W/unbound"
    pidfile: "$W/unbound/unbound.pid"
    use-syslog: no
    logfile: ""
    log-queries: yes
    log-replies: yes
    log-servfail: yes
    num-threads: 1
    so-reuseport: no
    module-config: "iterator"
    qname-minimisation: yes
    do-not-query-localhost: no
    cache-max-negative-ttl: 1
    infra-keep-probing: yes
    # RFC 6761 names are served locally by default; let .test go to the stubs.
    local-zone: "test." nodefault
    local-zone: "localhost." nodefault

stub-zone:
    name: "$CUSTOMER."
    stub-addr: 127.0.0.1@$KNOT_PORT

stub-zone:
    name: "$ZONE."
EOF
        local p
        for p in "$@"; do echo "    stub-addr: 127.0.0.1@$p"; done
        cat <<EOF

# Everything else ends at knot too (it refuses): nothing leaves the machine.
stub-zone:
    name: "."
    stub-addr: 127.0.0.1@$KNOT_PORT
EOF
    } >"$W/unbound/unbound.conf"
    unbound-checkconf "$W/unbound/unbound.conf" >/dev/null || fail "unbound-checkconf: $(unbound-checkconf "$W/unbound/unbound.conf" 2>&1)"
    start_daemon unbound "$W/logs/unbound.log" "$W/logs/unbound.log" unbound -d -c "$W/unbound/unbound.conf"
    wait_until "unbound resolving SOA $CUSTOMER" 15 unbound \
        bash -c "dig +time=2 +tries=1 -p $UNBOUND_PORT @127.0.0.1 SOA $CUSTOMER | grep -q 'status: NOERROR'"
}

###############################################################################
# certdns
###############################################################################
CD_ENV=()     # environment of every certdns command of the current deployment
CD_DIR=""     # working directory of every certdns command
CD_HTTP=""    # the api role's HTTP port
CD_DNS=()     # the dns roles' ports

certdns_cmd() { (cd "$CD_DIR" && timeout --foreground 60 env "${CD_UNSET[@]}" "${CD_ENV[@]}" "$BIN" "$@"); }

cd_common_env() { # HTTP-PORT
    CD_ENV=(
        "CERTDNS_ZONE__DOMAIN=$ZONE"
        "CERTDNS_ZONE__NAMESERVERS=[\"ns1.$ZONE\"]"
        "CERTDNS_ZONE__RECORDS=[\"ns1.$ZONE. A 127.0.0.1\"]"
        "CERTDNS_PUBLIC_API_URL=http://127.0.0.1:$1"
        "CERTDNS_LOG_LEVEL=info"
    )
}

wait_ready() { # DAEMON HTTP-PORT
    wait_until "$1: GET /ready = 200" 60 "$1" curl -sf --max-time 2 -o /dev/null "http://127.0.0.1:$2/ready"
}

wait_dns() { # DAEMON DNS-PORT
    wait_until "$1: SOA $ZONE on udp port $2" 30 "$1" rcode_is NOERROR "$2" SOA "$ZONE"
    wait_until "$1: SOA $ZONE on tcp port $2" 30 "$1" rcode_is NOERROR "$2" +tcp SOA "$ZONE"
}

start_certdns_single() {
    local d="$W/single"
    mkdir -p "$d"
    local http dns ops portal
    read -r http dns ops portal <<<"$(free_ports 4)"
    cd_common_env "$http"
    CD_DIR="$d"; CD_HTTP=$http; CD_DNS=("$dns"); CD_PORTAL=$portal
    step "certdns (single binary, embedded default): serve" "$W/logs/certdns.log" "$d/certdns.out"
    # The embedded default: SQLite in the working directory, in-process distribution,
    # every role in one process. Only the addresses are ours.
    start_daemon certdns "$d/certdns.out" "$W/logs/certdns.log" \
        env "${CD_UNSET[@]}" -C "$d" "${CD_ENV[@]}" "$BIN" serve --http-listen "127.0.0.1:$http" --dns-listen "127.0.0.1:$dns" --ops-listen "127.0.0.1:$ops" \
            --portal-listen "127.0.0.1:$portal"
    wait_ready certdns "$http"
    wait_dns certdns "$dns"
    grep -q 'TXT distribution: in-process' "$d/certdns.out" || fail "banner does not say 'TXT distribution: in-process': $(cat "$d/certdns.out")"
    grep -q 'store sqlite' "$d/certdns.out" || fail "banner does not name a sqlite store: $(cat "$d/certdns.out")"
    # stdout is not a terminal here: the credentials go to a private file, named in the banner.
    grep -q "Credentials written to $d/first-start.txt" "$d/certdns.out" ||
        fail "first start did not name its credentials file: $(cat "$d/certdns.out")"
    [ "$(stat -c %a "$d/first-start.txt")" = 600 ] || fail "first-start.txt is not private: $(stat -c %a "$d/first-start.txt")"
    if grep -A1 'ACME client base URL' "$d/first-start.txt" | tail -n1 | grep -Eq 'http://[^ ]+:[^ ]+@127\.0\.0\.1:'"$http"; then
        say "   first start wrote a license-keyed base URL to first-start.txt (0600)"
    else
        fail "first start on an empty database wrote no license-keyed base URL: $(cat "$d/first-start.txt")"
    fi
    DNS_DAEMONS=(certdns)
}

start_certdns_split() {
    local d="$W/split"
    mkdir -p "$d"
    [ -n "${CERTDNS_TEST_POSTGRES_URL:-}" ] && [ -n "${CERTDNS_TEST_REDIS_URL:-}" ] ||
        fail "CERTDNS_TEST_POSTGRES_URL / CERTDNS_TEST_REDIS_URL not set (scripts/test-services.sh)"
    local tag db prefix
    tag="$(date +%s)_$$_$RANDOM"
    db="certdns_e2e_$tag"
    prefix="certdns-e2e-$tag:"
    step "certdns (split): database $db, Redis prefix $prefix"
    echo "pg $CERTDNS_TEST_POSTGRES_URL $db" >>"$W/cleanup"
    echo "redis $CERTDNS_TEST_REDIS_URL $prefix" >>"$W/cleanup"
    timeout --foreground 30 psql "$CERTDNS_TEST_POSTGRES_URL" -qAtc "CREATE DATABASE \"$db\"" >/dev/null
    local http h1 h2 d1 d2 o0 o1 o2 portal
    read -r http h1 h2 d1 d2 o0 o1 o2 portal <<<"$(free_ports 9)"
    cd_common_env "$http"
    CD_ENV+=(
        "CERTDNS_DATABASE_URL=${CERTDNS_TEST_POSTGRES_URL%/*}/$db"
        "CERTDNS_REDIS_URL=$CERTDNS_TEST_REDIS_URL"
        "CERTDNS_REDIS_PREFIX=$prefix"
    )
    CD_DIR="$d"; CD_HTTP=$http; CD_DNS=("$d1" "$d2"); CD_PORTAL=$portal

    step "certdns (split): migrate" "$d/migrate.log"
    certdns_cmd migrate >"$d/migrate.log" 2>&1 || fail "certdns migrate failed: $(tail -n 20 "$d/migrate.log")"

    step "certdns (split): api + portal roles, two dns roles" "$W/logs/certdns-api.log" "$W/logs/certdns-dns1.log" "$W/logs/certdns-dns2.log"
    start_daemon certdns-api "$d/api.out" "$W/logs/certdns-api.log" \
        env "${CD_UNSET[@]}" -C "$d" "${CD_ENV[@]}" "$BIN" serve --role api --role portal --http-listen "127.0.0.1:$http" \
            --ops-listen "127.0.0.1:$o0" --portal-listen "127.0.0.1:$portal"
    start_daemon certdns-dns1 "$d/dns1.out" "$W/logs/certdns-dns1.log" \
        env "${CD_UNSET[@]}" -C "$d" "${CD_ENV[@]}" "$BIN" serve --role dns --dns-listen "127.0.0.1:$d1" --http-listen "127.0.0.1:$h1" --ops-listen "127.0.0.1:$o1"
    start_daemon certdns-dns2 "$d/dns2.out" "$W/logs/certdns-dns2.log" \
        env "${CD_UNSET[@]}" -C "$d" "${CD_ENV[@]}" "$BIN" serve --role dns --dns-listen "127.0.0.1:$d2" --http-listen "127.0.0.1:$h2" --ops-listen "127.0.0.1:$o2"
    wait_ready certdns-api "$http"
    wait_ready certdns-dns1 "$h1"
    wait_ready certdns-dns2 "$h2"
    wait_dns certdns-dns1 "$d1"
    wait_dns certdns-dns2 "$d2"
    grep -q 'TXT distribution: redis' "$d/dns1.out" || say "   note: dns1 banner: $(tr '\n' ' ' <"$d/dns1.out")"
    DNS_DAEMONS=(certdns-dns1 certdns-dns2)
    DNS_METRICS_PORTS=("$o1" "$o2")
}

###############################################################################
# The customer: account, license key, registrations.
###############################################################################
create_customer() {
    step "admin CLI: account and license key" "$W/logs/admin.log"
    certdns_cmd admin account create --email "$EMAIL" >>"$W/logs/admin.log" 2>&1 ||
        fail "certdns admin account create failed: $(tail -n 20 "$W/logs/admin.log")"
    local out
    out="$(certdns_cmd admin key create --account "$EMAIL" --name e2e 2>>"$W/logs/admin.log")" ||
        fail "certdns admin key create failed: $(tail -n 20 "$W/logs/admin.log")"
    echo "$out" >>"$W/logs/admin.log"
    BASE_URL="$(grep -Eo "http://[^[:space:]/]+:[^[:space:]/]+@127\.0\.0\.1:$CD_HTTP" <<<"$out" | head -n1)" ||
        fail "admin key create printed no base URL with the key for 127.0.0.1:$CD_HTTP: $out"
    KEY_ID="${BASE_URL#http://}"; KEY_ID="${KEY_ID%%:*}"
    say "   license key $KEY_ID"
}

register() { # -> prints the /register response (201 required)
    local body="$W/register.$RANDOM" status
    status="$(curl -sS --max-time 10 -X POST -o "$body" -w '%{http_code}' "$BASE_URL/register")"
    [ "$status" = 201 ] || fail "POST /register through the license-keyed URL: want 201, got $status: $(cat "$body")"
    jq -e '.username and .password and .fulldomain and .subdomain' "$body" >/dev/null ||
        fail "POST /register: unexpected body: $(cat "$body")"
    case "$(jq -r .fulldomain "$body")" in
    *."$ZONE") ;;
    *) fail "POST /register: fulldomain $(jq -r .fulldomain "$body") is not under $ZONE" ;;
    esac
    cat "$body"; rm -f "$body"
}

# All answers certdns's responders give for NAME's TXT (one line per value per responder).
txt_at_responders() {
    local p
    for p in "${CD_DNS[@]}"; do dq "$p" +short TXT "$1"; done
}

###############################################################################
# Checks on the issued certificates.
###############################################################################
verify_cert() { # LABEL CERT ISSUER-CHAIN
    local label="$1" cert="$2" chain="$3"
    [ -s "$cert" ] || fail "$label: no certificate at $cert"
    local sans want
    sans="$(openssl x509 -in "$cert" -noout -ext subjectAltName | tail -n +2 | tr ',' '\n' |
        sed 's/^[[:space:]]*//; s/^DNS://' | grep -v '^$' | sort | paste -sd ' ')"
    want="$(printf '%s\n' "${NAMES[@]}" | sort | paste -sd ' ')"
    [ "$sans" = "$want" ] || fail "$label: SANs are [$sans], want [$want]"
    openssl verify -CAfile "$W/pki/pebble-root.pem" -untrusted "$chain" "$cert" >"$W/verify.out" 2>&1 ||
        fail "$label: chain does not verify to pebble's root: $(cat "$W/verify.out")"
    local serial
    serial="$(openssl x509 -in "$cert" -noout -serial)"
    say "   $label: SANs [$sans] chain OK to pebble's root, ${serial}"
    LAST_SERIAL="$serial"
}

###############################################################################
# The clients.
###############################################################################
certbot_cmd() { # DIR args…
    local dir="$1"; shift
    REQUESTS_CA_BUNDLE="$CA_BUNDLE" timeout --foreground 120 "$VENV/bin/python" -c \
        'import sys; from certbot.main import main; sys.exit(main())' "$@" \
        --non-interactive --config-dir "$dir/config" --work-dir "$dir/work" --logs-dir "$dir/logs"
}

client_certbot() { # SCENARIO
    local s="$1" dir="$W/$1/certbot"
    mkdir -p "$dir"
    step "[$s] certbot: two registrations through the license-keyed URL, CNAMEs in $CUSTOMER" \
        "${DLOG[@]}"
    local r1 r2
    r1="$(register)"; r2="$(register)"
    # certbot-dns-acmedns never registers: it reads domain -> /register response.
    jq -n --argjson a "$r1" --argjson b "$r2" '{"example.test": $a, "www.example.test": $b}' >"$dir/registrations.json"
    chmod 600 "$dir/registrations.json"
    printf 'dns_acmedns_api_url = %s\ndns_acmedns_registration_file = %s\n' "$BASE_URL" "$dir/registrations.json" >"$dir/acmedns.ini"
    chmod 600 "$dir/acmedns.ini"
    CNAMES=([_acme-challenge]="$(jq -r .fulldomain <<<"$r1")" [_acme-challenge.www]="$(jq -r .fulldomain <<<"$r2")")
    publish_cnames

    step "[$s] certbot: issue example.test, *.example.test, www.example.test" \
        "$dir/certbot.out" "$W/logs/pebble.log" "$W/logs/unbound.log" "${DLOG[@]}"
    local t0 args=()
    local n
    for n in "${NAMES[@]}"; do args+=(-d "$n"); done
    t0=$(now)
    certbot_cmd "$dir" certonly --agree-tos --email "e2e@$CUSTOMER" --no-eff-email \
        --server "$ACME_DIR" --authenticator dns-acmedns --dns-acmedns-credentials "$dir/acmedns.ini" \
        --dns-acmedns-propagation-seconds 1 --cert-name "$CUSTOMER" "${args[@]}" >"$dir/certbot.out" 2>&1 ||
        fail "certbot certonly failed: $(tail -n 25 "$dir/certbot.out")"
    record_time "$s certbot issuance" "$(elapsed "$t0")"
    verify_cert "[$s] certbot" "$dir/config/live/$CUSTOMER/cert.pem" "$dir/config/live/$CUSTOMER/chain.pem"
    local first=$LAST_SERIAL

    step "[$s] two TXT values live at once for the apex + wildcard registration" "${DLOG[@]}"
    local fd1 nvals
    fd1="$(jq -r .fulldomain <<<"$r1")"
    for p in "${CD_DNS[@]}"; do
        nvals="$(dq "$p" +short TXT "$fd1" | grep -c . || true)"
        [ "$nvals" = 2 ] || fail "TXT $fd1 at 127.0.0.1:$p: want the 2 values certbot published, got $nvals: $(dq "$p" TXT "$fd1")"
    done

    step "[$s] certbot: renewal (same registrations, no new CNAME)" \
        "$dir/certbot-renew.out" "$W/logs/pebble.log" "$W/logs/unbound.log" "${DLOG[@]}"
    t0=$(now)
    certbot_cmd "$dir" renew --force-renewal --no-random-sleep-on-renew --cert-name "$CUSTOMER" \
        >"$dir/certbot-renew.out" 2>&1 || fail "certbot renew failed: $(tail -n 25 "$dir/certbot-renew.out")"
    record_time "$s certbot renewal" "$(elapsed "$t0")"
    verify_cert "[$s] certbot renewal" "$dir/config/live/$CUSTOMER/cert.pem" "$dir/config/live/$CUSTOMER/chain.pem"
    [ "$LAST_SERIAL" != "$first" ] || fail "certbot renew left the same certificate ($first)"
}

lego_cmd() { # DIR args…
    local dir="$1"; shift
    # lego solves the apex and the wildcard one after the other at the same TXT
    # name; unbound may keep the previous answer for its 1 s TTL, so wait longer
    # than that between them (lego's own default is 60 s).
    LEGO_CA_CERTIFICATES="$CA_BUNDLE" EXEC_PATH="$HOOK" EXEC_POLLING_INTERVAL=1 EXEC_PROPAGATION_TIMEOUT=30 \
        EXEC_SEQUENCE_INTERVAL=3 E2E_AUTH_PORTS="${CD_DNS[*]}" ACME_DNS_API_BASE="$BASE_URL" ACME_DNS_STORAGE_PATH="$dir/acmedns.json" \
        timeout --foreground 120 lego --server "$ACME_DIR" --accept-tos --email "e2e@$CUSTOMER" --path "$dir" \
        --dns exec --dns.resolvers "127.0.0.1:$UNBOUND_PORT" --dns.disable-cp "$@"
}

client_lego() { # SCENARIO
    local s="$1" dir="$W/$1/lego"
    mkdir -p "$dir"
    step "[$s] lego hook: register example.test and www.example.test through the license-keyed URL" "${DLOG[@]}"
    local line
    CNAMES=()
    for n in "$CUSTOMER" "www.$CUSTOMER"; do
        line="$(ACME_DNS_API_BASE="$BASE_URL" ACME_DNS_STORAGE_PATH="$dir/acmedns.json" "$HOOK" register "$n")" ||
            fail "hook register $n failed"
        # "_acme-challenge.<name>. CNAME <fulldomain>."
        local owner target
        owner="$(awk '{print $1}' <<<"$line")"; target="$(awk '{print $3}' <<<"$line")"
        owner="${owner%.$CUSTOMER.}"; target="${target%.}"
        CNAMES[$owner]="$target"
    done
    publish_cnames

    step "[$s] lego: issue example.test, *.example.test, www.example.test" \
        "$dir/lego.out" "$W/logs/pebble.log" "$W/logs/unbound.log" "${DLOG[@]}"
    local t0 args=()
    for n in "${NAMES[@]}"; do args+=(-d "$n"); done
    t0=$(now)
    lego_cmd "$dir" "${args[@]}" run >"$dir/lego.out" 2>&1 || fail "lego run failed: $(tail -n 25 "$dir/lego.out")"
    record_time "$s lego issuance" "$(elapsed "$t0")"
    verify_cert "[$s] lego" "$dir/certificates/$CUSTOMER.crt" "$dir/certificates/$CUSTOMER.issuer.crt"
    local first=$LAST_SERIAL

    step "[$s] lego: renewal (same registrations, no new CNAME)" \
        "$dir/lego-renew.out" "$W/logs/pebble.log" "$W/logs/unbound.log" "${DLOG[@]}"
    t0=$(now)
    lego_cmd "$dir" "${args[@]}" renew --days 100000 --no-random-sleep >"$dir/lego-renew.out" 2>&1 ||
        fail "lego renew failed: $(tail -n 25 "$dir/lego-renew.out")"
    record_time "$s lego renewal" "$(elapsed "$t0")"
    verify_cert "[$s] lego renewal" "$dir/certificates/$CUSTOMER.crt" "$dir/certificates/$CUSTOMER.issuer.crt"
    [ "$LAST_SERIAL" != "$first" ] || fail "lego renew left the same certificate ($first)"
}

client_lego_httpreq() { # SCENARIO
    local s="$1" dir="$W/$1/lego-httpreq"
    mkdir -p "$dir"
    local name="proxy.$CUSTOMER" creds api status
    creds="${BASE_URL#http://}"; creds="${creds%@*}"
    api="http://${BASE_URL##*@}"
    step "[$s] lego httpreq: one registration bound to $name by its subject, its CNAME in $CUSTOMER" "${DLOG[@]}"
    status="$(curl -sS --max-time 10 -X POST -o "$dir/register.json" -w '%{http_code}' \
        -d "{\"subject\":\"*.$name\"}" "$BASE_URL/register")"
    [ "$status" = 201 ] || fail "POST /register with subject *.$name: want 201, got $status: $(cat "$dir/register.json")"
    local fulldomain
    fulldomain="$(jq -r .fulldomain "$dir/register.json")"
    CNAMES=([_acme-challenge.proxy]="$fulldomain")
    publish_cnames

    # httpreq knows no acme-dns credentials: the license key and the domain are all
    # it sends. Apex and wildcard need two values at the one name at once.
    step "[$s] lego httpreq: issue $name and *.$name through $api/acmeproxy" \
        "$dir/lego.out" "$W/logs/pebble.log" "$W/logs/unbound.log" "${DLOG[@]}"
    local t0 NAMES=("$name" "*.$name")
    t0=$(now)
    LEGO_CA_CERTIFICATES="$CA_BUNDLE" HTTPREQ_ENDPOINT="$api/acmeproxy" HTTPREQ_USERNAME="${creds%%:*}" \
        HTTPREQ_PASSWORD="${creds#*:}" HTTPREQ_POLLING_INTERVAL=1 HTTPREQ_PROPAGATION_TIMEOUT=30 \
        timeout --foreground 120 lego --server "$ACME_DIR" --accept-tos --email "e2e@$CUSTOMER" --path "$dir" \
        --dns httpreq --dns.resolvers "127.0.0.1:$UNBOUND_PORT" --dns.disable-cp -d "$name" -d "*.$name" run \
        >"$dir/lego.out" 2>&1 || fail "lego httpreq run failed: $(tail -n 25 "$dir/lego.out")"
    record_time "$s lego httpreq issuance" "$(elapsed "$t0")"
    verify_cert "[$s] lego httpreq" "$dir/certificates/$name.crt" "$dir/certificates/$name.issuer.crt"

    step "[$s] lego httpreq: cleanup removed exactly its values" "${DLOG[@]}"
    local left
    left="$(txt_at_responders "$fulldomain" | grep -c . || true)"
    [ "$left" = 0 ] || fail "TXT $fulldomain after lego's cleanup: want none, got $left: $(txt_at_responders "$fulldomain")"
}

negative_missing_cname() { # SCENARIO
    local s="$1" dir="$W/$1/lego-missing"
    mkdir -p "$dir"
    local name="missing.$CUSTOMER"
    step "[$s] missing CNAME: registered, no CNAME for _acme-challenge.$name" "${DLOG[@]}"
    ACME_DNS_API_BASE="$BASE_URL" ACME_DNS_STORAGE_PATH="$dir/acmedns.json" "$HOOK" register "$name" >/dev/null ||
        fail "hook register $name failed"
    rq TXT "_acme-challenge.$name" | grep -q 'status: NXDOMAIN' ||
        fail "resolver: TXT _acme-challenge.$name should be NXDOMAIN: $(rq TXT "_acme-challenge.$name")"

    step "[$s] missing CNAME: lego must fail with the CA's error" "$dir/lego.out" "$W/logs/pebble.log"
    if lego_cmd "$dir" -d "$name" run >"$dir/lego.out" 2>&1; then
        fail "lego obtained a certificate for $name without its CNAME"
    fi
    grep -Eq 'urn:ietf:params:acme:error:(unauthorized|dns)' "$dir/lego.out" ||
        fail "lego's output has no ACME validation error: $(tail -n 15 "$dir/lego.out")"
    local msg
    msg="$(grep -Eo 'urn:ietf:params:acme:error:[a-zA-Z]+ :: [^,]*' "$dir/lego.out" | head -n1)"
    # Pebble words it as: Error retrieving TXT records for DNS challenge ("DNS lookup
    # for \"_acme-challenge.<name>\" returned an unsuccessful response: '\\x03'"),
    # rcode 3 being NXDOMAIN; Let's Encrypt says "NXDOMAIN looking up TXT for …".
    grep -F "_acme-challenge.$name" "$dir/lego.out" | grep -Eq "NXDOMAIN|unsuccessful response: '\\\\+x03'" ||
        fail "lego's output does not carry the CA's NXDOMAIN error for _acme-challenge.$name: $(tail -n 15 "$dir/lego.out")"
    say "   lego failed as it should: $msg"
}

client_provisioned() { # SCENARIO
    # A registration made before any client runs, through the account API with a
    # token from the admin CLI; certbot's plugin then uses it from its registration
    # file, with no /register (the account holds one registration more, not two).
    local s="$1" dir="$W/$1/provisioned" name="pre.$CUSTOMER"
    mkdir -p "$dir"
    step "[$s] account API: a token from the admin CLI, a registration bound to $name" "$W/logs/admin.log" "${DLOG[@]}"
    local out token api before after status
    out="$(certdns_cmd admin token create --account "$EMAIL" --name e2e --scope read-write 2>>"$W/logs/admin.log")" ||
        fail "certdns admin token create failed: $(tail -n 20 "$W/logs/admin.log")"
    token="$(grep -Eo '^cdpat_[a-z0-9]{16}_[A-Za-z0-9_-]{40}$' <<<"$out" | head -n1)"
    [ -n "$token" ] || fail "admin token create printed no token: $out"
    api="http://127.0.0.1:$CD_PORTAL/api/v1"
    count() { curl -sS --max-time 10 -H "Authorization: Bearer $token" "$api/registrations" | jq '.registrations | length'; }
    before="$(count)"
    status="$(curl -sS --max-time 10 -o "$dir/created.json" -w '%{http_code}' -H "Authorization: Bearer $token" \
        -H 'Content-Type: application/json' -d "{\"key_id\":\"$KEY_ID\",\"domain\":\"$name\"}" "$api/registrations")"
    [ "$status" = 201 ] || fail "POST $api/registrations: want 201, got $status: $(cat "$dir/created.json")"
    jq -e --arg n "$name" '.registration.domain == $n and .registration.cname.name == "_acme-challenge." + $n' \
        "$dir/created.json" >/dev/null || fail "the created registration is not bound to $name: $(cat "$dir/created.json")"
    # certbot-dns-acmedns reads domain -> account; the API is given without the
    # license key: a provisioned registration needs only its own credentials.
    jq --arg n "$name" '{($n): .credentials}' "$dir/created.json" >"$dir/registrations.json"
    chmod 600 "$dir/registrations.json" "$dir/created.json"
    printf 'dns_acmedns_api_url = http://127.0.0.1:%s\ndns_acmedns_registration_file = %s\n' "$CD_HTTP" "$dir/registrations.json" >"$dir/acmedns.ini"
    chmod 600 "$dir/acmedns.ini"
    CNAMES=([_acme-challenge.pre]="$(jq -r .registration.cname.target "$dir/created.json")")
    publish_cnames

    step "[$s] certbot: issue $name with the provisioned registration" \
        "$dir/certbot.out" "$W/logs/pebble.log" "$W/logs/unbound.log" "${DLOG[@]}"
    local t0 NAMES=("$name")
    t0=$(now)
    certbot_cmd "$dir" certonly --agree-tos --email "e2e@$CUSTOMER" --no-eff-email \
        --server "$ACME_DIR" --authenticator dns-acmedns --dns-acmedns-credentials "$dir/acmedns.ini" \
        --dns-acmedns-propagation-seconds 1 --cert-name "$name" -d "$name" >"$dir/certbot.out" 2>&1 ||
        fail "certbot certonly with the provisioned registration failed: $(tail -n 25 "$dir/certbot.out")"
    record_time "$s provisioned certbot issuance" "$(elapsed "$t0")"
    verify_cert "[$s] provisioned certbot" "$dir/config/live/$name/cert.pem" "$dir/config/live/$name/chain.pem"
    after="$(count)"
    [ "$after" = $((before + 1)) ] || fail "registrations: $before before, $after after; want exactly the one provisioned"
    jq -e --arg n "$name" '.registrations[] | select(.domain == $n) | .status == "in_use"' \
        <(curl -sS --max-time 10 -H "Authorization: Bearer $token" "$api/registrations") >/dev/null ||
        fail "the provisioned registration is not in use after certbot's update"
}

negative_revoked_key() { # SCENARIO
    local s="$1"
    step "[$s] revoked license key cannot register" "$W/logs/admin.log" "${DLOG[@]}"
    certdns_cmd admin key revoke "$KEY_ID" >>"$W/logs/admin.log" 2>&1 ||
        fail "certdns admin key revoke $KEY_ID failed: $(tail -n 20 "$W/logs/admin.log")"
    # The api role caches a looked-up key for up to 2 s (certdns_api::auth::KEY_CACHE_TTL),
    # so a revocation takes effect within that; ask once that has passed.
    sleep 2.5
    local status
    status="$(curl -sS --max-time 10 -X POST -o "$W/revoked.out" -w '%{http_code}' "$BASE_URL/register")"
    # docs/api.md: 403 {"error":"license_key_revoked"} (401 is for unknown keys and wrong secrets).
    case "$status" in
    401|403) ;;
    *) fail "POST /register with a revoked key (2.5 s after revoking): want 401/403, got $status: $(cat "$W/revoked.out")" ;;
    esac
    say "   /register with the revoked key: $status $(head -c 200 "$W/revoked.out")"
}

###############################################################################
# HTTPS by tls.acme: certdns orders its own certificate from pebble, answering
# the DNS-01 challenges itself (a name inside its zone directly, one in the
# customer zone through the CNAME it prints), then lego registers and updates
# through https://KEYID:SECRET@… with pebble's root trusted.
###############################################################################
scenario_tls() {
    local s=tls d="$W/tls" http dns ops
    mkdir -p "$d"
    read -r http dns ops <<<"$(free_ports 3)"
    local api="api.$ZONE" outside="api.$CUSTOMER"
    cd_common_env "$http"
    CD_ENV+=(
        # The API's name exists in the zone, so a resolver minimising its queries
        # finds _acme-challenge.$api below it.
        "CERTDNS_ZONE__RECORDS=[\"ns1.$ZONE. A 127.0.0.1\", \"$api. A 127.0.0.1\"]"
        "CERTDNS_PUBLIC_API_URL=https://$api:$http"
        "CERTDNS_TLS__WATCH_INTERVAL_SECS=1"
        "CERTDNS_TLS__ACME__DIRECTORY_URL=$ACME_DIR"
        "CERTDNS_TLS__ACME__DIRECTORY_CA_FILE=$CA_BUNDLE"
        "CERTDNS_TLS__ACME__CONTACT=[\"ops@$CUSTOMER\"]"
        "CERTDNS_TLS__ACME__NAMES=[\"$api\", \"$outside\"]"
    )
    CD_DIR="$d"; CD_HTTP=$http; CD_DNS=("$dns")
    # The CA's resolver and the CA first: certdns orders as soon as it starts.
    start_unbound "$dns"
    run_pebble "$UNBOUND_PORT"
    step "certdns (tls.acme): serve" "$W/logs/certdns.log" "$d/certdns.out"
    local t0
    t0=$(now)
    start_daemon certdns "$d/certdns.out" "$W/logs/certdns.log" \
        env "${CD_UNSET[@]}" -C "$d" "${CD_ENV[@]}" "$BIN" serve --http-listen "127.0.0.1:$http" --dns-listen "127.0.0.1:$dns" --ops-listen "127.0.0.1:$ops"
    wait_dns certdns "$dns"
    local ready="http://127.0.0.1:$ops/ready"

    step "[$s] the CNAME for $outside, on /ready" "$W/logs/certdns.log"
    wait_until "certdns: checks.tls.acme.cnames on /ready" 30 certdns \
        bash -c "curl -s --max-time 2 $ready | jq -e '.checks.tls.acme.cnames[0].target' >/dev/null"
    local cname target
    cname="$(curl -s --max-time 2 "$ready" | jq -r '.checks.tls.acme.cnames[0].cname')"
    target="$(curl -s --max-time 2 "$ready" | jq -r '.checks.tls.acme.cnames[0].target')"
    [ "$cname" = "_acme-challenge.$outside" ] || fail "/ready names the CNAME $cname, want _acme-challenge.$outside"
    grep -q "add this DNS record once.*$cname. CNAME $target." "$W/logs/certdns.log" ||
        fail "certdns did not log the CNAME to add: $(grep -i acme "$W/logs/certdns.log" | tail -n 5)"
    say "   certdns asks for: $cname. CNAME $target."
    CNAMES=([_acme-challenge.api]="$target")
    publish_cnames

    step "[$s] certdns obtains its certificate" "$W/logs/certdns.log" "$W/logs/pebble.log" "$W/logs/unbound.log"
    wait_until "certdns: checks.tls serving a certificate" 120 certdns \
        bash -c "curl -s --max-time 2 $ready | jq -e '.checks.tls.status == \"ok\" or .checks.tls.status == \"expiring\"' >/dev/null"
    record_time "$s tls.acme first certificate (from start)" "$(elapsed "$t0")"
    say "   /ready: $(curl -s --max-time 2 "$ready" | jq -c '.checks.tls | {status, names, not_after, acme: {state: .acme.state, last_order_secs: .acme.last_order_secs}}')"
    local name
    for name in "$api" "$outside"; do
        curl -sf --max-time 5 --cacert "$W/pki/pebble-root.pem" --resolve "$name:$http:127.0.0.1" \
            -o /dev/null "https://$name:$http/health" || fail "GET https://$name:$http/health with pebble's root trusted failed"
    done
    echo | openssl s_client -connect "127.0.0.1:$http" -servername "$api" -showcerts 2>/dev/null >"$d/served.txt"
    awk '/BEGIN CERT/{n++} n==1' "$d/served.txt" | sed '/END CERT/q' >"$d/leaf.pem"
    awk '/BEGIN CERT/{n++} n>=2' "$d/served.txt" | sed -n '/BEGIN CERT/,/END CERT/p' >"$d/chain.pem"
    local NAMES=("$api" "$outside")
    verify_cert "[$s] certdns's own" "$d/leaf.pem" "$d/chain.pem"

    step "[$s] admin CLI: account and license key" "$W/logs/admin.log"
    certdns_cmd admin account create --email "$EMAIL" >>"$W/logs/admin.log" 2>&1 ||
        fail "certdns admin account create failed: $(tail -n 20 "$W/logs/admin.log")"
    local out
    out="$(certdns_cmd admin key create --account "$EMAIL" --name e2e-tls 2>>"$W/logs/admin.log")" ||
        fail "certdns admin key create failed: $(tail -n 20 "$W/logs/admin.log")"
    BASE_URL="$(grep -Eo "https://[^[:space:]/]+:[^[:space:]/]+@$api:$http" <<<"$out" | head -n1)" ||
        fail "admin key create printed no https base URL for $api:$http: $out"

    local ldir="$d/lego" customer_name="tls.$CUSTOMER" line
    mkdir -p "$ldir"
    export CURL_CA_BUNDLE="$W/pki/pebble-root.pem" E2E_CURL_RESOLVE="$api:$http:127.0.0.1"
    step "[$s] lego hook: register $customer_name through https://KEYID:SECRET@$api:$http" "$W/logs/certdns.log"
    line="$(ACME_DNS_API_BASE="$BASE_URL" ACME_DNS_STORAGE_PATH="$ldir/acmedns.json" "$HOOK" register "$customer_name")" ||
        fail "hook register $customer_name over HTTPS failed"
    CNAMES[_acme-challenge.tls]="$(awk '{print $3}' <<<"$line" | sed 's/\.$//')"
    publish_cnames
    step "[$s] lego: issue $customer_name, /update over HTTPS" "$ldir/lego.out" "$W/logs/pebble.log" "$W/logs/certdns.log"
    t0=$(now)
    lego_cmd "$ldir" -d "$customer_name" run >"$ldir/lego.out" 2>&1 || fail "lego run failed: $(tail -n 25 "$ldir/lego.out")"
    record_time "$s lego issuance over HTTPS" "$(elapsed "$t0")"
    NAMES=("$customer_name")
    verify_cert "[$s] lego over HTTPS" "$ldir/certificates/$customer_name.crt" "$ldir/certificates/$customer_name.issuer.crt"
    unset CURL_CA_BUNDLE E2E_CURL_RESOLVE
    # Plain HTTP is gone: the API speaks only TLS.
    if curl -s --max-time 5 -o /dev/null "http://127.0.0.1:$http/health"; then
        fail "the API still answers plain HTTP"
    fi

    step "[$s] stop" "$W/logs/certdns.log"
    stop_daemon pebble
    stop_daemon unbound
    stop_daemon certdns
}

###############################################################################
# The deployments.
###############################################################################
scenario() { # single | split | tls
    local s="$1" t0
    t0=$(now)
    say "════ scenario: $s"
    mkdir -p "$W/$s"
    case "$s" in
    single) start_certdns_single ;;
    split) start_certdns_split ;;
    tls) scenario_tls; record_time "$s whole scenario" "$(elapsed "$t0")"; return ;;
    *) fail "unknown scenario $s (want single, split or tls)" ;;
    esac
    start_unbound "${CD_DNS[@]}"
    run_pebble "$UNBOUND_PORT"

    step "[$s] resolver reaches certdns's zone" "$W/logs/unbound.log" "${DLOG[@]}"
    rq SOA "$ZONE" | grep -q 'status: NOERROR' || fail "SOA $ZONE through unbound: $(rq SOA "$ZONE")"

    create_customer
    client_certbot "$s"
    client_lego "$s"
    client_lego_httpreq "$s"
    client_provisioned "$s"
    negative_missing_cname "$s"
    negative_revoked_key "$s"

    if [ "$s" = split ]; then
        # unbound spreads queries over both stub addresses: each responder must have
        # answered some from it. The script's own queries to the responders are SOA
        # (readiness) and one TXT each (the two-values check); the rest came from unbound.
        step "[$s] both dns roles answered the resolver" "${DLOG[@]}"
        local i all soa txt
        for i in 0 1; do
            curl -sf --max-time 5 "http://127.0.0.1:${DNS_METRICS_PORTS[$i]}/metrics" >"$W/$s/metrics-$i.txt" ||
                fail "GET /metrics of ${DNS_DAEMONS[$i]} failed"
            sum_q() { grep -E "^certdns_dns_queries_total$1" "$W/$s/metrics-$i.txt" | awk '{s += $NF} END {print s + 0}'; }
            all="$(sum_q '')"; soa="$(sum_q '\{.*qtype="SOA"')"; txt="$(sum_q '\{.*qtype="TXT"')"
            say "   ${DNS_DAEMONS[$i]}: $all queries answered ($txt TXT); from the resolver: $((all - soa - 1))"
            [ $((all - soa - 1)) -gt 0 ] ||
                fail "${DNS_DAEMONS[$i]} answered no query from the resolver (certdns_dns_queries_total: $all, SOA $soa)"
        done
    fi

    step "[$s] stop" "${DLOG[@]}"
    stop_daemon pebble
    stop_daemon unbound
    local dmn
    for dmn in certdns certdns-api certdns-dns1 certdns-dns2; do
        [ -n "${DPID[$dmn]:-}" ] || continue
        stop_daemon "$dmn"
    done
    record_time "$s whole scenario" "$(elapsed "$t0")"
}

start_pebble
start_knot
for s in $SCENARIOS; do scenario "$s"; done
STEP="done"
stop_daemon knot

echo
say "timings (seconds):"
column -t -s $'\t' "$W/timings" | sed 's/^/    /'
say "whole run: $(elapsed "$T_START")s"
say "PASSED"
