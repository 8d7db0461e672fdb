#!/usr/bin/env bash
# The whole test suite, as CI runs it: services up, formatting, lints, every test.
#   scripts/test.sh            everything
#   scripts/test.sh --no-lint  skip cargo fmt --check and clippy
# Extra arguments after `--` go to `cargo test`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

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
