#!/usr/bin/env bash
# Bounded fuzzing smoke of the DNS request handler: the cargo-fuzz target
# `packet_handler` in fuzz/ (see fuzz/README.md), run for a fixed time on the
# committed seed queries (fuzz/seeds/) plus whatever corpus earlier runs left.
# Fails on any crash: a panic, a failed assertion of the target (every answer
# parses, keeps the query id, fits the UDP size), an overflow (debug assertions
# are on), an input slower than 10 s, or more than 2 GB of memory.
#
#   tests/fuzz/dns.sh                                   60 seconds
#   CERTDNS_FUZZ_DNS_SECONDS=600 tests/fuzz/dns.sh      longer
#
# Installs cargo-fuzz (pinned below) into ~/.cargo/bin when `cargo fuzz` is
# missing. Only a stable toolchain is needed: RUSTC_BOOTSTRAP=1 lets it use the
# nightly flags cargo-fuzz passes. Builds in fuzz/target (its own workspace and
# target dir; nothing is shared with the main workspace's target/), keeps the
# corpus in fuzz/target/corpus/ and crashing inputs in fuzz/artifacts/, none of
# them committed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
root="$PWD"

seconds="${CERTDNS_FUZZ_DNS_SECONDS:-60}"
target=packet_handler
cargo_fuzz_version=0.13.2
# Not certdns configuration: keep CERTDNS_FUZZ_* away from anything started below.
while read -r v; do unset "$v"; done < <(compgen -e | grep -E '^CERTDNS_(SKIP_FUZZ$|FUZZ_)' || true)

export RUSTC_BOOTSTRAP=1
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

# cargo-fuzz only drives cargo and libFuzzer: its unoptimised build (--debug) does
# the same and installs in ~40 s instead of ~55 s.
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz dns: installing cargo-fuzz $cargo_fuzz_version into ~/.cargo/bin (cargo install)"
    cargo install cargo-fuzz --locked --version "$cargo_fuzz_version" --debug --quiet
fi

# The fuzz crate is a workspace of its own; its lockfile (not committed) starts as
# a copy of the main one, so the fuzzed crates are built with the dependency
# versions the main workspace tests and ships. Cargo then only adds libfuzzer-sys.
if [ ! -f fuzz/Cargo.lock ] || [ Cargo.lock -nt fuzz/Cargo.lock ]; then cp Cargo.lock fuzz/Cargo.lock; fi

# Sanitizer: none. The workspace forbids unsafe code, so the memory errors
# AddressSanitizer finds could only come from unsafe code in std or in
# dependencies, while everything this target can find in our code (panics,
# failed assertions, arithmetic overflow with the debug assertions cargo-fuzz's
# default release build keeps, hangs, runaway memory) is caught without it.
# Measured on 2 cores: -s none ~44,000 executions/s, -s address ~2,200/s (20x
# fewer; leak detection off made no difference) and no faster to build.
# Build: cargo-fuzz's default (optimised, debug assertions on). --dev builds
# ~1 minute faster but runs ~8x slower (~5,800/s), a bad trade for a 60 s run;
# --codegen-units 16 builds ~6 % faster and runs ~40 % slower; opt-level 1 builds
# no faster. Numbers in fuzz/README.md.
echo "fuzz dns: building $target ($(cargo fuzz --version 2>/dev/null), $(rustc --version))"
build_started=$SECONDS
(cd fuzz && cargo fuzz build --sanitizer none "$target")
echo "fuzz dns: built in $((SECONDS - build_started)) s"

corpus="fuzz/target/corpus/$target"
log="fuzz/target/fuzz-$target.log"
mkdir -p "$corpus"
echo "fuzz dns: running $target for $seconds s (corpus $corpus, seeds fuzz/seeds, log $log)"
set +e
(cd fuzz && cargo fuzz run --sanitizer none "$target" "$root/$corpus" "$root/fuzz/seeds" -- \
    -max_total_time="$seconds" -max_len=1500 -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1) >"$log" 2>&1
status=$?
set -e

stat() { sed -n "s/^stat::$1: *//p" "$log" | tail -n1; }
runs="$(stat number_of_executed_units)"
rate="$(stat average_exec_per_sec)"
last="$(grep -E '^#[0-9]+' "$log" | tail -n1 || true)"
cov="$(sed -n 's/.* cov: \([0-9]*\) ft: \([0-9]*\) corp: \([0-9]*\).*/cov: \1 ft: \2 corpus: \3/p' <<<"$last")"

if [ "$status" -ne 0 ]; then
    echo "fuzz dns: FAILED (exit $status) after ${runs:-?} executions; the end of $log:" >&2
    # The panic or libFuzzer's report, the input (base64 and bytes) and how to
    # reproduce it (with RUSTC_BOOTSTRAP=1, in fuzz/); backtrace frames only in the log.
    grep -v -E '^#[0-9]+|^ +[0-9]+: |^ +at ' "$log" | tail -n 50 >&2
    exit 1
fi
echo "fuzz dns: ok, $runs executions in $seconds s ($rate exec/s), $cov, 0 crashes"
