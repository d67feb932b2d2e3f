#!/usr/bin/env bash
# Fuzz smoke test: builds every cargo-fuzz target of fuzz/ once (libFuzzer + AddressSanitizer),
# then runs each for FUZZ_SECONDS (20) on a temporary copy of its committed corpus (the corpus in
# the repository is never modified), and fails on any crash, leak, timeout or out-of-memory.
# Prints each target's executions. Needs the nightly toolchain, or else stable with
# RUSTC_BOOTSTRAP=1 (for -Zsanitizer); installs cargo-fuzz when it is missing. The long runs and
# the corpus minimisation are described in fuzz/README.md.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root/fuzz"
secs=${FUZZ_SECONDS:-20}
# The fuzz crate's own build directory (release + sanitizer flags; not the workspace's target/).
tdir=${FUZZ_TARGET_DIR:-$root/fuzz/target}

if cargo +nightly --version >/dev/null 2>&1; then
  cargo=(cargo +nightly)
else
  echo "no nightly toolchain: stable with RUSTC_BOOTSTRAP=1"
  cargo=(cargo)
  export RUSTC_BOOTSTRAP=1
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked
fi

mapfile -t targets < <("${cargo[@]}" fuzz list)
"${cargo[@]}" fuzz build --target-dir "$tdir"
bin="$tdir/$(rustc -vV | sed -n 's/^host: //p')/release"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failed=()
for t in "${targets[@]}"; do
  mkdir -p "$tmp/corpus/$t" "$tmp/artifacts/$t"
  cp -R "corpus/$t/." "$tmp/corpus/$t/"
  rc=0
  "$bin/$t" "$tmp/corpus/$t" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
    -max_len=65536 -print_final_stats=1 -artifact_prefix="$tmp/artifacts/$t/" \
    >"$tmp/$t.log" 2>&1 || rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$tmp/$t.log")
  last=$(grep -E '^#[0-9]+' "$tmp/$t.log" | tail -n 1 || true)
  echo "fuzz $t: ${execs:-?} executions in ${secs} s (${last#*	})"
  if [ "$rc" != 0 ]; then
    failed+=("$t")
    grep -v -E '^#[0-9]+|^INFO' "$tmp/$t.log" | tail -n 60 >&2 || true
    mkdir -p "artifacts/$t"
    cp -R "$tmp/artifacts/$t/." "artifacts/$t/" 2>/dev/null || true
    echo "fuzz $t: FAILED (exit $rc); the input is in fuzz/artifacts/$t/" >&2
  fi
done
if [ "${#failed[@]}" != 0 ]; then
  echo "fuzz targets failed: ${failed[*]}" >&2
  exit 1
fi
