#!/usr/bin/env bash
# A `lego --dns exec` hook that speaks the acme-dns API with curl.
#
# Debian's lego (4.9) is built without its acme-dns provider; this hook does what
# that provider does, with the same environment variables:
#   ACME_DNS_API_BASE      the base URL, license key embedded: http://KEYID:SECRET@host:port
#   ACME_DNS_STORAGE_PATH  JSON file: domain -> its /register response (created mode 0600)
#
# Called by lego (EXEC_PATH=this script, default EXEC_MODE):
#   present <fqdn> <value>   fqdn is "_acme-challenge.<domain>." or, as lego follows
#                            CNAMEs, the fulldomain it points to; POST /update
#   cleanup <fqdn> <value>   no-op (acme-dns keeps the two most recent values)
# Called by hand (or by tests/e2e/run.sh) before the first run:
#   register <domain>        POST /register through the license-keyed URL, store the
#                            response, print the CNAME the customer has to create
#
# Like lego's acme-dns provider, `present` for a domain that has no registration
# yet registers it, prints the CNAME to create and fails: the CA would not find
# the TXT value before the CNAME exists.
set -euo pipefail

base="${ACME_DNS_API_BASE:?set ACME_DNS_API_BASE to the acme-dns base URL}"
base="${base%/}"
storage="${ACME_DNS_STORAGE_PATH:?set ACME_DNS_STORAGE_PATH to a JSON file}"

die() { echo "acmedns-hook: $*" >&2; exit 1; }

# curl, with the API's name pinned to an address when E2E_CURL_RESOLVE says so
# (host:port:address, for an HTTPS API whose certificate names no IP address);
# CURL_CA_BUNDLE names the roots to trust.
acurl() { curl ${E2E_CURL_RESOLVE:+--resolve "$E2E_CURL_RESOLVE"} "$@"; }

lookup() { # domain -> its stored registration (JSON) or nothing
    [ -s "$storage" ] || return 0
    jq -ce --arg d "$1" '.[$d] // empty' "$storage" || true
}

lookup_fulldomain() { # fulldomain -> the stored registration it belongs to, or nothing
    [ -s "$storage" ] || return 0
    jq -ce --arg f "$1" '[.[] | select((.fulldomain | ascii_downcase) == ($f | ascii_downcase))][0] // empty' "$storage" || true
}

register() { # domain
    local domain="$1" body status tmp
    body="$(mktemp)"
    status="$(acurl -sS --max-time 20 -X POST -o "$body" -w '%{http_code}' "$base/register")" ||
        { rm -f "$body"; die "register $domain: request failed"; }
    if [ "$status" != 201 ]; then
        echo "acmedns-hook: register $domain: HTTP $status: $(head -c 500 "$body")" >&2
        rm -f "$body"; exit 1
    fi
    jq -e '.username and .password and .fulldomain and .subdomain' "$body" >/dev/null ||
        { echo "acmedns-hook: register $domain: unexpected body: $(head -c 500 "$body")" >&2; rm -f "$body"; exit 1; }
    tmp="$(mktemp "$storage.XXXXXX")"
    chmod 600 "$tmp"
    if [ -s "$storage" ]; then
        jq --arg d "$domain" --slurpfile r "$body" '.[$d] = $r[0]' "$storage" >"$tmp"
    else
        jq -n --arg d "$domain" --slurpfile r "$body" '{($d): $r[0]}' >"$tmp"
    fi
    mv "$tmp" "$storage"
    rm -f "$body"
    echo "_acme-challenge.$domain. CNAME $(lookup "$domain" | jq -r .fulldomain)."
}

update() { # registration-json value
    local reg="$1" value="$2" user key sub status body
    user="$(jq -r .username <<<"$reg")"
    key="$(jq -r .password <<<"$reg")"
    sub="$(jq -r .subdomain <<<"$reg")"
    body="$(mktemp)"
    status="$(acurl -sS --max-time 20 -X POST -o "$body" -w '%{http_code}' \
        -H "X-Api-User: $user" -H "X-Api-Key: $key" -H 'Content-Type: application/json' \
        --data "$(jq -nc --arg s "$sub" --arg t "$value" '{subdomain: $s, txt: $t}')" \
        "$base/update")" || { rm -f "$body"; die "update $sub: request failed"; }
    if [ "$status" != 200 ]; then
        echo "acmedns-hook: update $sub: HTTP $status: $(head -c 500 "$body")" >&2
        rm -f "$body"; exit 1
    fi
    # certdns answers 200 once every live responder serves the value, and says
    # so: the CA may ask at once.
    DELAY="$(jq -r '.propagationDelaySeconds // empty' "$body")"
    rm -f "$body"
}

# certdns's promise, checked as lego's own propagation check would (it asks the
# authoritative servers directly, never the CA's resolver): when /update said
# "propagationDelaySeconds": 0, every certdns responder named in E2E_AUTH_PORTS
# already answers the new value — asked once each, no retry. (Before that
# promise, a check through the CA's resolver in the milliseconds between the
# 200 and the responders applying the change cached the old answer.)
check_authoritative() { # fulldomain value
    local port
    [ "${DELAY:-}" = 0 ] || die "update of $1 was not confirmed by every responder (propagationDelaySeconds ${DELAY:-none})"
    for port in ${E2E_AUTH_PORTS:-}; do
        dig +short +norecurse +time=2 +tries=1 -p "$port" @127.0.0.1 TXT "$1" | grep -q -- "$2" ||
            die "responder 127.0.0.1:$port does not answer the new value for $1 although /update confirmed it"
    done
}

cmd="${1:-}"
case "$cmd" in
register)
    [ $# = 2 ] || die "usage: $0 register <domain>"
    register "${2#\*.}"
    ;;
present)
    [ $# = 3 ] || die "usage: $0 present <fqdn> <value>"
    fqdn="${2%.}"
    # lego follows the customer's CNAME itself (unless LEGO_DISABLE_CNAME_SUPPORT=true)
    # and then hands us the target, <subdomain>.<certdns zone>: that is a registration's
    # fulldomain. Otherwise it is _acme-challenge.<domain>.
    reg="$(lookup_fulldomain "$fqdn")"
    domain="${fqdn#_acme-challenge.}"
    [ -n "$reg" ] || reg="$(lookup "$domain")"
    if [ -z "$reg" ]; then
        cname="$(register "$domain")"
        die "new registration for $domain: create the CNAME \"$cname\" and run again"
    fi
    update "$reg" "$3"
    check_authoritative "$(jq -r .fulldomain <<<"$reg")" "$3"
    ;;
cleanup)
    ;;
*)
    die "usage: $0 register <domain> | present <fqdn> <value> | cleanup <fqdn> <value>"
    ;;
esac
