#!/usr/bin/env bash
# Security campaign: re-runs the attacks of the security audit against the
# release binary, black-box, and reports expected vs. observed for each.
# See docs/security.md for what each attack is and what the results mean.
#
#   loadtest/security/campaign.sh            # builds the release binary first
#   SKIP_BUILD=1 loadtest/security/campaign.sh
#   CAMPAIGN_BIN=/path/to/certdns loadtest/security/campaign.sh
#   KEEP=1 ...                                # keep the temp dir (logs, outbox)
#
# Everything runs on 127.0.0.1, in a temp dir removed at exit, in about 100 s
# (2 cores). The binary runs on the embedded default (SQLite, in-process TXT
# distribution) with client_ip_header = X-Forwarded-For on the API and the
# portal (loopback is a trusted proxy by default), so the drivers can play many
# client addresses; and with portal.request_timeout_secs = 5 (default 30) so the
# stalled-body check is quick. One result line per attack, then a markdown
# table; the exit status is 1 if any expectation failed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
repo="$PWD"
helper="$repo/loadtest/security/campaign.py"
started=$(date +%s)

if [[ -z "${CAMPAIGN_BIN:-}" && -z "${SKIP_BUILD:-}" ]]; then
    cargo build --release --locked -q -p certdns --bin certdns
fi
bin="$(realpath "${CAMPAIGN_BIN:-target/release/certdns}")"
command -v python3 >/dev/null || { echo "python3 is required"; exit 2; }
command -v curl >/dev/null || { echo "curl is required"; exit 2; }
ulimit -n 4096 2>/dev/null || ulimit -n "$(ulimit -Hn)"

work="$(mktemp -d -t certdns-campaign.XXXXXX)"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    if [[ -n "${KEEP:-}" ]]; then echo "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

export CAMPAIGN_RESULTS="$work/results.tsv"
: >"$CAMPAIGN_RESULTS"

# Records a result row from bash: id, ok (0/1), attack, expected, observed.
row() {
    local verdict=FAIL
    [[ "$2" == 1 ]] && verdict=PASS
    printf '%s\t%s\t%s\t%s\t%s\n' "$1" "$verdict" "$3" "$4" "$5" >>"$CAMPAIGN_RESULTS"
    echo "[$1] $verdict: $3: $5"
}

# Runs a driver subcommand with a time bound; a driver that dies without
# recording its row gets a FAIL row.
attack() { # id, seconds, subcommand, args...
    local id="$1" secs="$2"; shift 2
    local before; before=$(wc -l <"$CAMPAIGN_RESULTS")
    if ! timeout "$secs" python3 "$helper" "$@"; then
        if [[ $(wc -l <"$CAMPAIGN_RESULTS") == "$before" ]]; then
            row "$id" 0 "$1" "-" "driver failed or timed out after ${secs} s (see output above)"
        fi
    fi
}

# start NAME DIR [args...]: starts `certdns serve` in DIR; stdout (the banner)
# goes to $work/NAME.out, stderr (the log) to $work/NAME.log.
start() {
    local name="$1" dir="$2"; shift 2
    mkdir -p "$dir"
    (cd "$dir" && exec "$bin" serve --http-listen 127.0.0.1:0 --dns-listen 127.0.0.1:0 \
        --portal-listen 127.0.0.1:0 --ops-listen 127.0.0.1:0 "$@" \
        >"$work/$name.out" 2>"$work/$name.log") &
    pids+=($!)
    last_pid=$!
    for _ in $(seq 1 150); do
        grep -q "TXT distribution" "$work/$name.out" 2>/dev/null && return 0
        kill -0 "$last_pid" 2>/dev/null || break
        sleep 0.1
    done
    echo "certdns ($name) did not start:"; cat "$work/$name.out" "$work/$name.log"; exit 1
}
banner() { # NAME FIELD → the URL or address after FIELD in the banner
    case "$2" in
        DNS) sed -n 's/^ *DNS *udp \([0-9.]*:[0-9]*\),.*/\1/p' "$work/$1.out" ;;
        *) sed -n "s|^ *$2 *\(http://[0-9.:]*\).*|\1|p" "$work/$1.out" ;;
    esac
}
stop() { # PID: SIGTERM, wait (bounded)
    kill "$1" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done
    kill -9 "$1" 2>/dev/null || true
}

# ------------------------------------------------------------------ main instance
run="$work/run"
export RUST_LOG=info
export CERTDNS_API__CLIENT_IP_HEADER=X-Forwarded-For CERTDNS_PORTAL__CLIENT_IP_HEADER=X-Forwarded-For
export CERTDNS_PORTAL__REQUEST_TIMEOUT_SECS=5 PORTAL_TIMEOUT=5
start main "$run"
main_pid=$last_pid
export PID=$main_pid WORK="$run" ZONE=auth.certdns.localhost
export HTTP="$(banner main HTTP)" OPS="$(banner main Ops)" PORTAL="$(banner main Portal)"
dns="$(banner main DNS)"
export DNS_HOST="${dns%:*}" DNS_PORT="${dns##*:}"
[[ -f "$run/first-start.txt" ]] || { echo "no first-start.txt in $run"; exit 1; }
export OPERATOR_EMAIL="$(sed -n 's/^ *operator login *\([^ ]*\).*/\1/p' "$run/first-start.txt")"
export OPERATOR_PASSWORD="$(sed -n 's/^ *operator password *\([^ ]*\).*/\1/p' "$run/first-start.txt")"
export BASE_URL="$(grep -A1 'ACME client base URL' "$run/first-start.txt" | tail -n1 | tr -d ' ')"
echo "certdns $("$bin" --version 2>/dev/null | awk '{print $2}') pid $main_pid: api $HTTP, portal $PORTAL, ops $OPS, dns $dns"
echo "operator $OPERATOR_EMAIL; first-start.txt read"

# A registration with a TXT value, for the DNS latency probe.
export TXT_NAME="$(timeout 30 python3 "$helper" register-txt)"

# a. reset-password flood (26 s + 5 s)
attack a 120 reset-flood 20
attack a2 60 login-flood 10

# b. slowloris (25 s), then stalled bodies (up to 10 s)
attack b 90 slowloris
attack b2 60 stall

# d (part 1). A reset mail for the operator while the log runs at info.
status="$(timeout 30 python3 "$helper" reset "$OPERATOR_EMAIL" 198.51.100.40)"
echo "reset requested for $OPERATOR_EMAIL: $status"

# c. file modes (the database is open, so -wal and -shm exist)
modes=()
ok=1
for f in certdns.sqlite3 certdns.sqlite3-wal certdns.sqlite3-shm outbox.eml first-start.txt; do
    m="$(stat -c %a "$run/$f" 2>/dev/null || echo missing)"
    modes+=("$f $m")
    [[ "$m" == 600 ]] || ok=0
done
c_ok=$ok
c_obs="$(IFS=,; echo "${modes[*]}" | sed 's/,/, /g')"

# e. sign-in lockout and mail bombing
attack e 60 lockout

# f. a suspended operator's session
ops2_password="ops2-campaign-password-$$"
admin_out="$(cd "$run" && printf '%s\n' "$ops2_password" | timeout 30 "$bin" admin account create \
    --email ops2@example.com --operator --password-stdin 2>&1)" || echo "admin account create failed: $admin_out"
attack f 60 suspend ops2@example.com "$ops2_password"

# g, h, i. the API
attack g 60 register-anon
attack h 60 update-fail
attack h2 60 user-lockout
attack i 30 xff

# j. secrets in `certdns config`
cfg="$work/config-check"
mkdir -p "$cfg"
j_out="$(cd "$cfg" && env -u CERTDNS_PORTAL__REQUEST_TIMEOUT_SECS \
    CERTDNS_PORTAL__SESSION_SECRET=session-secret-campaign-0123456789abcdef \
    CERTDNS_PORTAL__SMTP='{url="smtps://u:pw-smtp-4417@h:465"}' \
    CERTDNS_DATABASE_URL='postgres://u:pw1-db-4417@h/db?password=pw2-db-4417' \
    timeout 30 "$bin" config 2>&1)" && j_rc=0 || j_rc=$?
leaks=()
for s in session-secret-campaign-0123456789abcdef pw-smtp-4417 pw1-db-4417 pw2-db-4417; do
    grep -qF "$s" <<<"$j_out" && leaks+=("$s")
done
shown="$(grep -E '^(database_url|session_secret|url) *=' <<<"$j_out" | tr '\n' ' ' | sed 's/  */ /g')"
j_ok=0; [[ $j_rc == 0 && ${#leaks[@]} == 0 ]] && grep -q 'database_url' <<<"$j_out" && j_ok=1
row j "$j_ok" "secrets in \`certdns config\`" "no secret in the output" \
    "exit $j_rc; secrets found in the output: ${leaks[*]:-none}; shown as: ${shown:-?}"

# k. /metrics
k_http="$(curl -s -o /dev/null -w '%{http_code}' "$HTTP/metrics")"
k_portal="$(curl -s -o /dev/null -w '%{http_code}' "$PORTAL/metrics")"
k_ops="$(curl -s -o "$work/metrics.txt" -w '%{http_code}' "$OPS/metrics")"
k_series="$(grep -c '^certdns_' "$work/metrics.txt" || true)"
k_ok=0; [[ $k_http == 404 && $k_portal == 404 && $k_ops == 200 && $k_series -gt 0 ]] && k_ok=1
row k "$k_ok" "/metrics on the public listeners" "404 on the API and portal listeners; served on the ops listener" \
    "API listener $k_http, portal listener $k_portal, ops listener $k_ops ($k_series certdns_ samples)"

# l. sign-up with an address that has an account (signed up in e)
attack l 30 signup-existing

# d (part 2). A second instance at trace level, on a data dir that does not
# exist yet (c: it must be created 0700): a reset is requested, its link opened
# and used; then neither log may hold a token, password or license secret.
fresh="$work/fresh-data-dir"
RUST_LOG=trace start trace "$work/trace-cwd" --data-dir "$fresh"
trace_pid=$last_pid
fresh_mode="$(stat -c %a "$fresh")"
t_first="$fresh/first-start.txt"
t_email="$(sed -n 's/^ *operator login *\([^ ]*\).*/\1/p' "$t_first")"
t_password="$(sed -n 's/^ *operator password *\([^ ]*\).*/\1/p' "$t_first")"
t_base="$(grep -A1 'ACME client base URL' "$t_first" | tail -n1 | tr -d ' ')"
new_password="new-password-after-reset-$$"
(
    export PORTAL="$(banner trace Portal)" WORK="$fresh"
    timeout 30 python3 "$helper" reset "$t_email" 198.51.100.90 >/dev/null
    echo "trace instance: reset link opened and used: $(timeout 30 python3 "$helper" use-reset "$new_password")"
)
t_files=()
for f in certdns.sqlite3 outbox.eml first-start.txt; do t_files+=("$f $(stat -c %a "$fresh/$f" 2>/dev/null || echo missing)"); done
stop "$trace_pid"
[[ "$fresh_mode" == 700 ]] || c_ok=0
row c "$c_ok" "file modes" "0600 files, 0700 data dir created by certdns" \
    "$c_obs; --data-dir that did not exist: $fresh_mode (files in it: $(IFS=,; echo "${t_files[*]}" | sed 's/,/, /g'))"

# The secrets: every token mailed (outbox of each instance), the passwords, the
# license key secrets.
secrets="$work/secrets.txt"
{
    WORK="$run" timeout 30 python3 "$helper" secrets
    WORK="$fresh" timeout 30 python3 "$helper" secrets
    echo "$OPERATOR_PASSWORD"; echo "$t_password"; echo "$ops2_password"; echo "$new_password"
    echo victim-password-0815; echo newcomer-password-1; echo attacker-password-1
    for u in "$BASE_URL" "$t_base"; do sed -E 's|^https?://[^:]*:([^@]*)@.*|\1|' <<<"$u"; done
} | sed '/^$/d' >"$secrets"   # an empty pattern would match every line
n_tokens=$( (WORK="$run" python3 "$helper" secrets; WORK="$fresh" python3 "$helper" secrets) | wc -l)
found_info="$(grep -cFf "$secrets" "$work/main.log" || true)"
found_trace="$(grep -cFf "$secrets" "$work/trace.log" || true)"
d_ok=0; [[ $found_info == 0 && $found_trace == 0 && $n_tokens -ge 2 ]] && d_ok=1
row d "$d_ok" "reset and confirmation links, passwords, key secrets in the log" \
    "absent at info and at trace level" \
    "$n_tokens mailed tokens + 7 passwords + 2 key secrets searched: $found_info lines in the info log ($(wc -l <"$work/main.log") lines), $found_trace in the trace log ($(wc -l <"$work/trace.log") lines, one reset link requested, opened and used)"

# ------------------------------------------------------------------ the table
elapsed=$(( $(date +%s) - started ))
echo
echo "## certdns security campaign, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, ${elapsed} s"
echo
echo "| | attack | expected | observed | result |"
echo "|---|---|---|---|---|"
sort -t $'\t' -k1,1 "$CAMPAIGN_RESULTS" | while IFS=$'\t' read -r id verdict attack expected observed; do
    printf '| %s | %s | %s | %s | %s |\n' "$id" "$attack" "$expected" "${observed//|/\\|}" "$verdict"
done
echo
failed=$(cut -f2 "$CAMPAIGN_RESULTS" | grep -c FAIL || true)
total=$(cut -f2 "$CAMPAIGN_RESULTS" | grep -cv INFO || true)
echo "$((total - failed)) of $total expectations met (INFO rows are measurements, not checks)."
[[ $failed == 0 ]]
