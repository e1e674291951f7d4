#!/usr/bin/env bash
# Runs every cargo-fuzz target of both fuzz workspaces (ingest/fuzz, query/fuzz) for
# FUZZ_SECONDS each (default 45), starting from the committed corpus (seeds and the
# reproducers of every bug found so far). Fails on the first target that crashes, leaks,
# runs out of memory or hangs an input past FUZZ_INPUT_TIMEOUT seconds (default 20), and
# prints the input libFuzzer saved.
#
# FUZZ_SEED fixes libFuzzer's random seed: scripts/test.sh (and so CI) sets it to 1, so a CI run
# explores the same inputs every time and a red fuzz step is reproducible rather than luck; manual
# runs leave it unset and get a new seed each time. For the long manual runs, e.g.
#   FUZZ_SECONDS=1800 scripts/fuzz.sh
#   FUZZ_TARGETS="promql logql" FUZZ_SECONDS=600 scripts/fuzz.sh
# Built without a sanitizer (-s none, safe Rust: nothing for ASan to find that a panic does not
# show) and once for both workspaces, in target/fuzz/ (they share most dependencies).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

seconds=${FUZZ_SECONDS:-45}
input_timeout=${FUZZ_INPUT_TIMEOUT:-20}
only=${FUZZ_TARGETS:-}
seed_flag=()
[ -n "${FUZZ_SEED:-}" ] && seed_flag=(-seed="$FUZZ_SEED")
target_dir=$root/target/fuzz
triple=$(rustc -vV | sed -n 's/^host: //p')
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi
# cargo-fuzz passes -Z flags; this lets the stable toolchain take them.
export RUSTC_BOOTSTRAP=1

for crate in ingest query; do
  echo "building $crate/fuzz"
  (cd "$crate" && cargo fuzz build -s none --target-dir "$target_dir")
done

bin=$target_dir/$triple/release
ran=0
for crate in ingest query; do
  for t in $(cd "$crate" && cargo fuzz list); do
    if [ -n "$only" ] && [[ " $only " != *" $t "* ]]; then
      continue
    fi
    corpus=$crate/fuzz/corpus/$t
    artifacts=$crate/fuzz/artifacts/$t
    mkdir -p "$work/$t" "$artifacts"
    # New inputs go to a scratch directory; the committed corpus is only read.
    set +e
    "$bin/$t" -max_total_time="$seconds" -timeout="$input_timeout" -rss_limit_mb=2048 \
      "${seed_flag[@]}" -print_final_stats=1 -artifact_prefix="$artifacts/" "$work/$t" "$corpus" >"$work/$t.log" 2>&1
    status=$?
    set -e
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/$t.log")
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$work/$t.log")
    printf '%-16s %10s runs %8s/s  exit %s\n' "$t" "${runs:-?}" "${rate:-?}" "$status"
    if [ "$status" -ne 0 ]; then
      tail -n 60 "$work/$t.log"
      echo "fuzz target $t ($crate/fuzz) failed; its input:"
      grep -h 'Test unit written to' "$work/$t.log" || true
      echo "reproduce: cd $crate && RUSTC_BOOTSTRAP=1 cargo fuzz run -s none $t <that file>"
      exit "$status"
    fi
    ran=$((ran + 1))
  done
done
echo "fuzzed $ran targets, ${seconds}s each, no crash"
