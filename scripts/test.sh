#!/usr/bin/env bash
# The whole test suite, as CI runs it: services up, formatting, lints, every test.
#   scripts/test.sh            everything
#   scripts/test.sh --no-lint  skip cargo fmt --check and clippy
# Extra arguments after `--` go to `cargo test`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# The end-to-end step's switches (CERTDNS_SKIP_E2E, CERTDNS_E2E_*) are not certdns
# configuration keys, and certdns refuses unknown CERTDNS_* variables: keep them
# away from the binaries `cargo test` starts and hand them to tests/e2e/run.sh only.
skip_e2e="${CERTDNS_SKIP_E2E:-}"
e2e_env=()
while read -r v; do e2e_env+=("$v=${!v}"); unset "$v"; done < <(compgen -e | grep -E '^CERTDNS_(SKIP_E2E$|E2E_)' || true)

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

# End to end: real ACME clients, pebble, unbound, knot (see tests/e2e/README.md).
if [ -z "$skip_e2e" ] || [ "$skip_e2e" = 0 ]; then
    echo "== end-to-end (tests/e2e/run.sh; CERTDNS_SKIP_E2E=1 skips it)"
    env "${e2e_env[@]}" tests/e2e/run.sh
else
    echo "== end-to-end skipped (CERTDNS_SKIP_E2E is set)"
fi
