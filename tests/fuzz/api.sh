#!/usr/bin/env bash
# Fuzzes the HTTP API from its own OpenAPI document with schemathesis: certdns on
# the embedded default (SQLite, in-process TXT distribution) in a temporary
# directory, every schemathesis check, a bounded number of examples per
# operation and a wall-clock bound. Fails on any failed check, among them any
# 5xx response and any response the document does not allow (status, content
# type, headers, body schema), schema-valid requests refused and schema-invalid
# ones accepted.
#
#   tests/fuzz/api.sh
#   CERTDNS_FUZZ_API_EXAMPLES=1000 CERTDNS_FUZZ_API_SECONDS=1200 tests/fuzz/api.sh
#
# Needs python3 with venv (Debian: python3-venv); schemathesis (pinned below) is
# installed from PyPI into target/fuzz-api/venv. Requests go with the first-start
# license key as Basic auth (what /register needs); the document's links from
# /register to /update and /deregister let the stateful phase use the credentials
# /register returns. Reports (JUnit, NDJSON) and the server's log are kept in
# target/fuzz-api/.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
root="$PWD"

examples="${CERTDNS_FUZZ_API_EXAMPLES:-100}"
seconds="${CERTDNS_FUZZ_API_SECONDS:-300}"
# Read before the CERTDNS_* variables are cleared below.
seed="${CERTDNS_FUZZ_API_SEED:-20261201}"
schemathesis_version=4.32.5
# certdns refuses unknown CERTDNS_* variables; keep every one of them, these
# switches included, away from the server started below (CERTDNS_TEST_* is
# ignored by certdns, but there is no reason to pass it either).
while read -r v; do unset "$v"; done < <(compgen -e | grep -E '^CERTDNS_' || true)

out="$root/target/fuzz-api"
venv="$out/venv"
mkdir -p "$out"

echo "fuzz api: building certdns"
cargo build --locked --quiet -p certdns --bin certdns
bin="$root/target/debug/certdns"

if [ "$("$venv/bin/st" --version 2>/dev/null)" != "st, version $schemathesis_version" ]; then
    echo "fuzz api: installing schemathesis $schemathesis_version into $venv"
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$schemathesis_version"
fi

work="$(mktemp -d)"
server_pid=""
stop() {
    if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    [ -f "$work/stderr" ] && cp "$work/stderr" "$out/server.log"
    rm -rf "$work"
}
trap stop EXIT

# Rate limits out of the way: 429 is documented (so it would pass the checks),
# but once a budget is spent every later request of its kind is refused before
# the handler's real work, and the fuzzer would learn nothing more.
lots=1000000
limits=()
for limit in register_per_key register_unauthenticated_per_address auth_failures_per_address auth_failures_per_user; do
    upper="$(tr '[:lower:]' '[:upper:]' <<<"$limit")"
    limits+=("CERTDNS_API__RATE_LIMITS__${upper}__PER_MINUTE=$lots" "CERTDNS_API__RATE_LIMITS__${upper}__BURST=$lots")
done
(cd "$work" && exec env "${limits[@]}" "$bin" serve --http-listen 127.0.0.1:0 --dns-listen 127.0.0.1:0 \
    --portal-listen 127.0.0.1:0 --ops-listen 127.0.0.1:0 >"$work/stdout" 2>"$work/stderr") &
server_pid=$!

# The banner names the HTTP listener (`  HTTP  http://127.0.0.1:PORT`). The first
# start's base URL with the license key in it (`http://KEYID:SECRET@127.0.0.1:PORT`)
# is in first-start.txt in the data directory when stdout is not a terminal, or
# (older builds) in the banner after "ACME client base URL".
http="" base=""
for _ in $(seq 1 120); do
    http="$(sed -n 's/^  HTTP  \(http:\/\/[^ ]*\).*/\1/p' "$work/stdout" | head -n1)"
    for f in "$work/first-start.txt" "$work/stdout"; do
        [ -f "$f" ] && base="$(grep -oE '^ +http://[^ :@/]+:[^ @/]+@[^ /]+' "$f" | head -n1 | tr -d ' ')" || true
        [ -n "$base" ] && break
    done
    [ -n "$http" ] && [ -n "$base" ] && break
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.5
done
if [ -z "$http" ] || [ -z "$base" ]; then
    echo "fuzz api: certdns did not start (or printed no HTTP address / base URL):" >&2
    cat "$work/stdout" >&2
    tail -n 40 "$work/stderr" >&2
    exit 1
fi
credentials="${base#http://}"
credentials="${credentials%@*}"
# A fixed seed: CI runs the same cases every time, so a failure means the server
# changed, not that this run drew other cases. CERTDNS_FUZZ_API_SEED=random (or
# a number) explores further by hand.
if [ "$seed" = random ]; then seed=$(od -An -N8 -tu8 /dev/urandom | tr -d ' '); fi
echo "fuzz api: certdns at $http; schemathesis $schemathesis_version, $examples examples per operation, seed $seed, at most $seconds s"

# One schemathesis campaign: NAME, the document's URL, then its own arguments
# (auth, base URL, paths). Prints its summary; fails the script on any failure.
campaign() {
    local name="$1" schema="$2"; shift 2
    local report="$out/report-$name" status summary
    rm -rf "$report"
    set +e
    # From target/fuzz-api/, where schemathesis keeps its cache (.schemathesis/).
    (cd "$out" && exec timeout "$seconds" "$venv/bin/st" run "$schema" "$@" \
        --checks all \
        --max-examples "$examples" \
        --seed "$seed" \
        --continue-on-failure \
        --request-timeout 10 \
        --no-color \
        --report junit,ndjson --report-dir "$report") >"$out/schemathesis-$name.log" 2>&1
    status=$?
    set -e

    # The per-request figures, from the NDJSON event stream.
    summary="$("$venv/bin/python" - "$report" <<'EOF2'
import collections, glob, json, sys

files = sorted(glob.glob(sys.argv[1] + "/ndjson-*.ndjson"))
operations, requests, server_errors, failed = set(), 0, 0, set()
statuses = collections.Counter()
for line in open(files[-1]) if files else []:
    event = json.loads(line)
    scenario = event.get("ScenarioFinished")
    if not scenario:
        continue
    recorder = scenario["recorder"]
    if not recorder["label"].startswith("Stateful"):
        operations.add(recorder["label"])
    for interaction in recorder.get("interactions", {}).values():
        requests += 1
        response = interaction.get("response")
        code = response["status_code"] if response else "none"
        statuses[code] += 1
        server_errors += isinstance(code, int) and code >= 500
    for case_id, checks in recorder.get("checks", {}).items():
        for check in checks:
            if check["status"] == "failure":
                failed.add((recorder["label"], check["name"], case_id))
by_status = " ".join(f"{code}:{n}" for code, n in sorted(statuses.items(), key=str))
print(f"{len(operations)} operations, {requests} requests ({by_status}), "
      f"{server_errors} with 5xx, {len(failed)} failed checks")
EOF2
)" || summary="(no report)"

    if [ "$status" -ne 0 ]; then
        if [ "$status" -eq 124 ]; then
            echo "fuzz api ($name): FAILED: schemathesis did not finish within $seconds s" >&2
        else
            echo "fuzz api ($name): FAILED (schemathesis exit $status): $summary" >&2
        fi
        if grep -qE '^=+ FAILURES =+$' "$out/schemathesis-$name.log"; then
            sed -n '/^=* FAILURES =*$/,$p' "$out/schemathesis-$name.log" >&2
        else
            tail -n 30 "$out/schemathesis-$name.log" >&2
        fi
        echo "fuzz api: full output $out/schemathesis-$name.log, reports $report, server log $out/server.log" >&2
        exit 1
    fi
    echo "fuzz api ($name): ok, $summary"
}

# The acme-dns API with the first-start license key. Its document also lists the
# portal's account API (each path naming the portal as its server): that is
# fuzzed on its own below, with a token.
campaign acme-dns "$http/openapi.json" --auth "$credentials" --exclude-path-regex '^/api/v1/'

# The account API on the portal, with a read-write token for the first-start
# account made by the admin CLI (against the same embedded database).
portal="$(sed -n 's/^  Portal \(http:\/\/[^ ]*\).*/\1/p' "$work/stdout" | head -n1)"
login="$(cat "$work/first-start.txt" "$work/stdout" 2>/dev/null | sed -n 's/^ *operator login *\([^ ]*@[^ ]*\) .*/\1/p' | head -n1)"
if [ -z "$portal" ] || [ -z "$login" ]; then
    echo "fuzz api: no portal address or first-start login in the banner:" >&2
    cat "$work/stdout" >&2
    exit 1
fi
token="$(cd "$work" && "$bin" admin token create --account "$login" --name fuzz --scope read-write | grep -E '^cdpat_')"
# No stateful phase here: the account API's answers nest the ids (`key.id`,
# `registration.subdomain`) and carry no links, so schemathesis cannot chain them.
campaign account "$portal/api/v1/openapi.json" --url "$portal" --header "Authorization: Bearer $token" \
    --phases examples,coverage,fuzzing
