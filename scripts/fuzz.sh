#!/usr/bin/env bash
# Runs every fuzz target for a bounded time and fails if any crashes
# (a panic, or a secret found in an error: the targets assert it).
#
#   scripts/fuzz.sh                 # every target, 60 s each
#   FUZZ_SECONDS=20 scripts/fuzz.sh # shorter
#   scripts/fuzz.sh callback        # some targets only
#
# Needs the nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz`).
# New inputs go to a temporary corpus, so fuzz/corpus/ keeps only the
# committed seeds; a crashing input is saved under fuzz/artifacts/<target>/
# (minimise it with `cargo +nightly fuzz tmin <target> <file>` and add it to
# fuzz/corpus/<target>/ once fixed).
#
# FUZZ_SANITIZER (default `none`): the code under test is safe Rust, so
# AddressSanitizer adds build time and little else; set `address` for it.
# FUZZ_MAX_LEN (default 16384): the longest input tried, in bytes.
set -euo pipefail

cd "$(dirname "$0")/../fuzz"
seconds="${FUZZ_SECONDS:-60}"
sanitizer="${FUZZ_SANITIZER:-none}"
max_len="${FUZZ_MAX_LEN:-16384}"

if [ "$#" -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo +nightly fuzz list)
fi

cargo +nightly fuzz build --sanitizer "$sanitizer"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
failed=()
for target in "${targets[@]}"; do
    echo "== $target: ${seconds}s"
    mkdir -p "$work/$target" "corpus/$target"
    dict=dicts/response.dict
    [ "$target" = callback ] && dict=dicts/callback.dict
    if ! cargo +nightly fuzz run --sanitizer "$sanitizer" "$target" \
        "$work/$target" "corpus/$target" -- \
        -max_total_time="$seconds" -max_len="$max_len" -timeout=10 \
        -rss_limit_mb=2048 -dict="$dict" -print_final_stats=1 2>"$work/$target.log"; then
        failed+=("$target")
        tail -n 40 "$work/$target.log"
    else
        grep -E "^(stat::number_of_executed_units|Done)" "$work/$target.log" || true
    fi
done

if [ "${#failed[@]}" -gt 0 ]; then
    echo "FAILED: ${failed[*]} (inputs under fuzz/artifacts/)" >&2
    exit 1
fi
echo "all fuzz targets ran ${seconds}s without a crash"
