#!/usr/bin/env bash
# Builds the fuzz targets with plain cargo (no cargo-fuzz, no nightly) and runs each for a few seconds from its
# committed seeds: what CI can afford (a plain build has no coverage feedback: these runs are random inputs). Long
# runs, coverage-guided: `cargo fuzz run --sanitizer none TARGET -- -max_total_time=600`, or without cargo-fuzz:
#   RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
#     -Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
#     -Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing" \
#     cargo build --release --target x86_64-unknown-linux-gnu --bin TARGET
#   then .../x86_64-unknown-linux-gnu/release/TARGET -max_total_time=600 CORPUS_DIR
# (the explicit --target keeps the flags off build scripts).
set -euo pipefail
cd "$(dirname "$0")"
cargo build --release --bins
# Where cargo put them: CARGO_TARGET_DIR (CI caches set it), a config's build.target-dir, or ./target.
target_dir=$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
for target in certificate_loader subject_parser error_parser response_path retry_after batch_response; do
  work=$(mktemp -d)
  cp -r "seeds/$target/." "$work/"
  "${target_dir:-target}/release/$target" -max_total_time="${FUZZ_SECONDS:-5}" -max_len=65536 "$work" 2>&1 | tail -1
  rm -rf "$work"
done
