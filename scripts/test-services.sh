#!/usr/bin/env bash
# Makes sure the services the test suite talks to are installed and running:
#   PostgreSQL reachable at $CERTDNS_TEST_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432/postgres)
#   Redis      reachable at $CERTDNS_TEST_REDIS_URL    (default redis://127.0.0.1:6379)
#   pebble     (Debian package) for the tls.acme tests
#
# On a Debian machine it installs the server packages when they are missing and
# starts the servers. If the system PostgreSQL will not let user `postgres` in
# without a password, it starts a private cluster (trust auth, loopback only)
# under target/test-services/ instead and prints the URL to use.
#
# Source it (`. scripts/test-services.sh`) to get the URLs exported; scripts/test.sh does.
set -euo pipefail

root_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
state_dir="$root_dir/target/test-services"
mkdir -p "$state_dir"

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
        echo "test-services: need root (or sudo) to run: $*" >&2; return 1; fi
}

apt_updated=""
apt_install() {
    [ -n "$apt_updated" ] || { as_root apt-get update -qq; apt_updated=1; }
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

pg_url="${CERTDNS_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
redis_url="${CERTDNS_TEST_REDIS_URL:-redis://127.0.0.1:6379}"

pg_ok() { psql "$1" -Atqc 'select 1' >/dev/null 2>&1; }

# --- PostgreSQL ---------------------------------------------------------------
if ! command -v psql >/dev/null || ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    echo "test-services: installing PostgreSQL"
    apt_install postgresql postgresql-client
fi
if ! pg_ok "$pg_url"; then
    # A stopped system cluster: start it.
    if command -v pg_lsclusters >/dev/null; then
        pg_lsclusters --no-header 2>/dev/null | while read -r ver name _port status _rest; do
            [ "$status" = online ] || as_root pg_ctlcluster --skip-systemctl-redirect "$ver" "$name" start || true
        done
        for _ in $(seq 1 20); do pg_ok "$pg_url" && break; sleep 0.5; done
    fi
fi
if ! pg_ok "$pg_url"; then
    # Still not usable (no cluster, or password auth): run a private one.
    pg_bin="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n1)"
    pg_dir="$state_dir/pg"
    pg_port=55432
    pg_url="postgres://postgres@127.0.0.1:$pg_port/postgres"
    if ! pg_ok "$pg_url"; then
        echo "test-services: starting a private PostgreSQL on 127.0.0.1:$pg_port ($pg_dir)"
        run_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
        if [ ! -f "$pg_dir/PG_VERSION" ]; then
            mkdir -p "$pg_dir"; [ "$(id -u)" = 0 ] && chown postgres "$pg_dir"
            run_pg "$pg_bin/initdb" -D "$pg_dir" -U postgres --auth=trust >/dev/null
        fi
        run_pg "$pg_bin/pg_ctl" -D "$pg_dir" -l "$pg_dir/server.log" -w \
            -o "-p $pg_port -k /tmp -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300" start >/dev/null
    fi
    pg_ok "$pg_url" || { echo "test-services: PostgreSQL did not come up; see $pg_dir/server.log" >&2; exit 1; }
fi

# --- Redis --------------------------------------------------------------------
redis_port="${redis_url##*:}"; redis_port="${redis_port%%/*}"
if ! command -v redis-server >/dev/null; then
    echo "test-services: installing Redis"
    apt_install redis-server redis-tools
fi
if ! redis-cli -u "$redis_url" ping >/dev/null 2>&1; then
    echo "test-services: starting Redis on 127.0.0.1:$redis_port"
    redis-server --daemonize yes --bind 127.0.0.1 --port "$redis_port" --save '' --appendonly no \
        --dir "$state_dir" --logfile "$state_dir/redis.log" >/dev/null
    for _ in $(seq 1 20); do redis-cli -u "$redis_url" ping >/dev/null 2>&1 && break; sleep 0.25; done
    redis-cli -u "$redis_url" ping >/dev/null || { echo "test-services: Redis did not come up" >&2; exit 1; }
fi

export CERTDNS_TEST_POSTGRES_URL="$pg_url"
export CERTDNS_TEST_REDIS_URL="$redis_url"
echo "test-services: PostgreSQL at $pg_url, Redis at $redis_url"

# --- Browser (portal tests) -----------------------------------------------------
# crates/certdns-portal/tests/it/browser.rs drives headless Chromium through
# chromedriver (fantoccini). Debian packages: chromium, chromium-driver.
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
    echo "test-services: installing chromium and chromium-driver (portal browser tests)"
    apt_install chromium chromium-driver
fi
echo "test-services: chromium $(chromium --version 2>/dev/null | awk '{print $2}'), $(chromedriver --version 2>/dev/null | awk '{print $1, $2}')"

# axe-core (the accessibility check the browser tests run on every page), pinned
# by crates/certdns-portal/tests/browser/package-lock.json, from the npm registry.
axe_dir="$root_dir/crates/certdns-portal/tests/browser"
if ! command -v npm >/dev/null; then
    echo "test-services: installing nodejs and npm (axe-core for the browser tests)"
    apt_install nodejs npm
fi
if [ ! -f "$axe_dir/node_modules/axe-core/axe.min.js" ] || [ "$axe_dir/package-lock.json" -nt "$axe_dir/node_modules/axe-core/axe.min.js" ]; then
    echo "test-services: installing axe-core (npm ci in ${axe_dir#"$root_dir"/})"
    (cd "$axe_dir" && npm ci --ignore-scripts --no-audit --no-fund >/dev/null)
    touch "$axe_dir/node_modules/axe-core/axe.min.js"
fi
echo "test-services: axe-core $(sed -n 's/.*"version": "\(.*\)".*/\1/p' "$axe_dir/node_modules/axe-core/package.json" | head -n1)"

# --- ACME CA (tls.acme tests) ----------------------------------------------------
# crates/certdns/tests/it/tls_acme.rs starts pebble (Let's Encrypt's test CA) per
# test, validating through certdns's own DNS port.
if ! command -v pebble >/dev/null; then
    echo "test-services: installing pebble (tls.acme tests)"
    apt_install pebble
fi

# --- Fuzzing (tests/fuzz/) -------------------------------------------------------
# api.sh installs schemathesis into a virtualenv: python3 with venv (on Debian the
# ensurepip module comes with python3-venv). dns.sh needs a C++ compiler for
# libFuzzer (g++, with the Rust toolchain's build essentials).
if ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
    echo "test-services: installing python3 and python3-venv (API fuzzing)"
    apt_install python3 python3-venv
fi
if ! command -v c++ >/dev/null; then
    echo "test-services: installing g++ (libFuzzer, DNS fuzzing)"
    apt_install g++
fi
