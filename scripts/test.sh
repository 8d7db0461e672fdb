#!/usr/bin/env bash
# The whole test suite, as CI runs it: services up, formatting, lints, every test,
# bounded fuzzing, end to end.
#   scripts/test.sh            everything
#   scripts/test.sh --no-lint  skip cargo fmt --check and clippy
# Extra arguments after `--` go to `cargo test`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# The end-to-end step's switches (CERTDNS_SKIP_E2E, CERTDNS_E2E_*) are not certdns
# configuration keys, and certdns refuses unknown CERTDNS_* variables: keep them
# away from the binaries `cargo test` starts and hand them to tests/e2e/run.sh and
# tests/anycast/run.sh only (CERTDNS_ANYCAST_*).
skip_e2e="${CERTDNS_SKIP_E2E:-}"
e2e_env=()
while read -r v; do e2e_env+=("$v=${!v}"); unset "$v"; done < <(compgen -e | grep -E '^CERTDNS_(SKIP_E2E$|E2E_|ANYCAST_)' || true)
# The same for the fuzzing step's (CERTDNS_SKIP_FUZZ, CERTDNS_FUZZ_*), handed to tests/fuzz/*.sh.
skip_fuzz="${CERTDNS_SKIP_FUZZ:-}"
fuzz_env=()
while read -r v; do fuzz_env+=("$v=${!v}"); unset "$v"; done < <(compgen -e | grep -E '^CERTDNS_(SKIP_FUZZ$|FUZZ_)' || true)

lint=1
if [ "${1:-}" = "--no-lint" ]; then lint=""; shift; fi
[ "${1:-}" = "--" ] && shift

# shellcheck source=scripts/test-services.sh
. scripts/test-services.sh

if [ -n "$lint" ]; then
    echo "== cargo fmt --check"
    cargo fmt --all -- --check
    echo "== cargo clippy"
    cargo clippy --workspace --all-targets --locked -- -D warnings
fi
echo "== cargo test"
cargo test --workspace --locked "$@"

# Bounded fuzzing (see fuzz/README.md): the DNS packet handler with cargo-fuzz for
# a minute, the HTTP API from its OpenAPI document with schemathesis.
# CERTDNS_SKIP_FUZZ=dns (or =api) skips one of them, any other value but 0 both.
fuzz_skipped() {
    case "$skip_fuzz" in
        "" | 0) return 1 ;;
        dns | api | dns,api | api,dns) [[ ",$skip_fuzz," == *",$1,"* ]] ;;
        *) return 0 ;;
    esac
}
for campaign in dns api; do
    if fuzz_skipped "$campaign"; then
        echo "== fuzz $campaign skipped (CERTDNS_SKIP_FUZZ=$skip_fuzz)"
    else
        echo "== fuzz $campaign (tests/fuzz/$campaign.sh; CERTDNS_SKIP_FUZZ=$campaign skips it)"
        env "${fuzz_env[@]}" "tests/fuzz/$campaign.sh"
    fi
done

# End to end: real ACME clients, pebble, unbound, knot (see tests/e2e/README.md),
# then anycast failover with BIRD in network namespaces.
if [ -z "$skip_e2e" ] || [ "$skip_e2e" = 0 ]; then
    echo "== end-to-end (tests/e2e/run.sh; CERTDNS_SKIP_E2E=1 skips it)"
    env "${e2e_env[@]}" tests/e2e/run.sh
    echo "== anycast failover (tests/anycast/run.sh: BIRD in network namespaces)"
    env "${e2e_env[@]}" tests/anycast/run.sh
else
    echo "== end-to-end skipped (CERTDNS_SKIP_E2E is set)"
fi
