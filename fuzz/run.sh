#!/usr/bin/env bash
# Fuzzes drctl's readers of untrusted bytes, each target for a bounded time, and prints executions
# per second and corpus size. Not run by CI.
#
#   fuzz/run.sh [SECONDS] [TARGET...]     # default 60 s each; targets: plan_load journal_read lock_read
#
# Seeds: plans/*.yaml and tests/plans/**/*.yaml (plan_load), fuzz/seeds/journal (journal_read),
# fuzz/seeds/lock (lock_read). The corpus grows in fuzz/corpus/TARGET across runs; a crash, an
# out-of-memory (over 2 GB) or an input slower than 10 s is written to fuzz/artifacts/TARGET/ and
# makes the script exit 1. One process per target at a time (the development machines have 2 cores).
# Reproduce one: RUSTC_BOOTSTRAP=1 cargo fuzz run --sanitizer none -a TARGET fuzz/artifacts/TARGET/FILE
set -euo pipefail

seconds=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(plan_load journal_read lock_read)

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
cd "$here"

# cargo-fuzz passes nightly-only flags (-Zsanitizer, sancov passes); the stable toolchain accepts
# them with RUSTC_BOOTSTRAP=1, so no other toolchain is needed.
export RUSTC_BOOTSTRAP=1
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "cargo-fuzz is not installed: cargo install cargo-fuzz" >&2
    exit 2
fi
# Rust is memory-safe here, so no AddressSanitizer (it would halve the speed): what is looked for is
# panics, overflows (-a: debug assertions and overflow checks), hangs and memory blow-ups.
build_flags=(--sanitizer none -a)

seed() {
    local target=$1
    shift
    mkdir -p "corpus/$target"
    local file
    for file in "$@"; do
        [ -f "$file" ] && cp "$file" "corpus/$target/seed-$(sha1sum <"$file" | cut -c1-16)"
    done
    return 0
}
seed plan_load "$root"/plans/*.yaml $(find "$root/tests/plans" -name '*.yaml')
seed journal_read seeds/journal/*
seed lock_read seeds/lock/*

echo "building the fuzz targets (the first build compiles drctl and its dependencies instrumented: many minutes)"
cargo fuzz build "${build_flags[@]}" "${targets[@]:0:1}" >/dev/null 2>build.log || { cat build.log >&2; exit 2; }
for target in "${targets[@]:1}"; do
    cargo fuzz build "${build_flags[@]}" "$target" >/dev/null 2>>build.log || { cat build.log >&2; exit 2; }
done

failed=0
summary=()
for target in "${targets[@]}"; do
    mkdir -p "artifacts/$target"
    log="fuzz-$target.log"
    before=$(ls "corpus/$target" | wc -l)
    echo "fuzzing $target for ${seconds}s (log: fuzz/$log)"
    status=0
    cargo fuzz run "${build_flags[@]}" "$target" "corpus/$target" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="artifacts/$target/" >"$log" 2>&1 || status=$?
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    rss=$(sed -n 's/^stat::peak_rss_mb: *//p' "$log" | tail -1)
    files=$(ls "corpus/$target" | wc -l)
    bytes=$(du -sk "corpus/$target" | cut -f1)
    line="$target: ${runs:-?} runs, ${rate:-?} exec/s, corpus $before -> $files inputs (${bytes} KiB), peak RSS ${rss:-?} MB"
    if [ "$status" -ne 0 ]; then
        failed=1
        line="$line; FAILED (exit $status): $(grep -m1 -E 'panicked|ERROR: libFuzzer|SUMMARY' "$log" || true)"
        line="$line; input: $(ls -t "artifacts/$target" | head -1)"
    fi
    echo "$line"
    summary+=("$line")
done

echo
echo "summary (${seconds}s per target):"
printf '  %s\n' "${summary[@]}"
exit "$failed"
