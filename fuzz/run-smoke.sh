#!/usr/bin/env bash
# Builds the fuzz targets with plain cargo (no cargo-fuzz, no nightly) and runs each for a few seconds from its
# committed seeds: what CI can afford. Long runs: `cargo fuzz run --sanitizer none TARGET -- -max_total_time=600`.
set -euo pipefail
cd "$(dirname "$0")"
cargo build --release --bins
# Where cargo put them: CARGO_TARGET_DIR (CI caches set it), a config's build.target-dir, or ./target.
target_dir=$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
for target in certificate_loader subject_parser error_parser response_path retry_after; do
  work=$(mktemp -d)
  cp -r "seeds/$target/." "$work/"
  "${target_dir:-target}/release/$target" -max_total_time="${FUZZ_SECONDS:-5}" -max_len=65536 "$work" 2>&1 | tail -1
  rm -rf "$work"
done
