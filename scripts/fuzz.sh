#!/usr/bin/env bash
# Runs the cargo-fuzz targets one after another, SECONDS_PER_TARGET each (default 60), every
# target when none is named:
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
#
# Seeds fuzz/corpus/ from dx-py's own writers first, builds every target once, then runs each
# single-job under `nice -n 19` (the machine is shared). Prints the executions of each target
# (libFuzzer's final stats), copies every crash, timeout, leak or out-of-memory input into
# fuzz/regressions/<target>/ (where `cargo test --workspace` replays it) and exits 1 when any
# was found. Logs go to fuzz/artifacts/<target>.log.
#
# FUZZ_SANITIZER=address turns AddressSanitizer on (default none: the parsers are safe Rust, so
# it would only slow the search); debug assertions are always on, so arithmetic overflow panics.
set -uo pipefail

seconds=${1:-60}
[[ $# -gt 0 ]] && shift
if ! [[ $seconds =~ ^[0-9]+$ ]] || ((seconds == 0)); then
    echo "usage: $0 [SECONDS_PER_TARGET] [TARGET...]" >&2
    exit 2
fi
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root" || exit 2
sanitizer=${FUZZ_SANITIZER:-none}
fuzz_flags=(--sanitizer "$sanitizer" --debug-assertions)

if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    echo "cargo-fuzz is missing: cargo install cargo-fuzz" >&2
    exit 2
fi
if [[ $# -gt 0 ]]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo +nightly fuzz list)
fi

echo "Seeding fuzz/corpus/ ..." >&2
nice -n 19 cargo test -q -p dx-py-fuzz-harness --lib write_fuzz_corpus -- --ignored >/dev/null ||
    { echo "writing the seed corpus failed" >&2; exit 2; }
echo "Building ${targets[*]} ..." >&2
for target in "${targets[@]}"; do
    nice -n 19 cargo +nightly fuzz build "${fuzz_flags[@]}" "$target" ||
        { echo "building $target failed" >&2; exit 2; }
done

found=0
summary=()
for target in "${targets[@]}"; do
    artifacts="fuzz/artifacts/$target"
    log="fuzz/artifacts/$target.log"
    mkdir -p "$artifacts" "fuzz/regressions/$target" "fuzz/corpus/$target"
    marker=$(mktemp)
    echo "Fuzzing $target for ${seconds}s ..." >&2
    # -timeout: an input that takes 10 s is a hang worth keeping; -rss_limit_mb: 2 GB is an
    # out-of-memory bug for parsers of files this small.
    nice -n 19 cargo +nightly fuzz run "${fuzz_flags[@]}" "$target" -- \
        -max_total_time="$seconds" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 \
        >"$log" 2>&1
    status=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\).*/\1/p' "$log" | tail -n 1)
    [[ -z $execs ]] && execs=$(sed -n 's/^Done \([0-9]*\) runs.*/\1/p' "$log" | tail -n 1)
    crashes=0
    while IFS= read -r -d '' file; do
        cp "$file" "fuzz/regressions/$target/"
        echo "  kept $(basename "$file") in fuzz/regressions/$target/" >&2
        crashes=$((crashes + 1))
    done < <(find "$artifacts" -maxdepth 1 -type f -newer "$marker" \
        \( -name 'crash-*' -o -name 'timeout-*' -o -name 'oom-*' -o -name 'leak-*' \) -print0)
    rm -f "$marker"
    if ((status != 0 && crashes == 0)); then
        echo "  $target exited with status $status without an artifact; see $log" >&2
        crashes=1
    fi
    ((crashes > 0)) && found=1
    summary+=("$(printf '%-14s %6ss %14s executions %3s crashes' "$target" "$seconds" "${execs:-?}" "$crashes")")
done

echo
echo "Fuzzing, $(date -u +%Y-%m-%d), sanitizer $sanitizer:"
printf '%s\n' "${summary[@]}"
exit "$found"
