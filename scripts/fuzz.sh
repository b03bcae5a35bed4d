#!/usr/bin/env bash
# scripts/fuzz.sh — builds convguard's libFuzzer targets (tests/fuzz) with clang and
# AddressSanitizer + UndefinedBehaviorSanitizer, and runs each over its seed corpus.
#
#   bash scripts/fuzz.sh                 # every target, 200000 inputs from seed 1 (what the
#                                        # test command runs: the same inputs every time)
#   bash scripts/fuzz.sh --seconds 600   # an exploratory run (random seed, by time)
#   bash scripts/fuzz.sh --target onnx_fuzz --seconds 3600
#   bash scripts/fuzz.sh --runs 20000    # a quick by-count run: 20000 inputs per target
#
# A target registered with its own run count (tests/fuzz/CMakeLists.txt: a target whose
# inputs cost more) gets that many inputs in a by-count run instead of 200000, unless
# --runs is given. Targets run side by side, $JOBS at a time (default: nproc).
#
# Needs clang and its libFuzzer runtime (Debian: clang, libclang-rt-14-dev; setup.sh
# installs them). The build goes to $FUZZ_BUILD_DIR (default build-fuzz); new inputs that
# reach new code go to $FUZZ_BUILD_DIR/corpus/<target> (the committed seeds stay as they
# are); a crash is written as $FUZZ_BUILD_DIR/findings/<target>/crash-* and fails the run.
# A by-count run reads the committed seeds and writes nothing new; an exploratory run also
# grows $FUZZ_BUILD_DIR/corpus/<target>. A finding worth keeping is fixed and its input
# committed to its seed folder (tests/fuzz/corpus/<corpus>/) as regression-*.
# Exit status: 0 no finding, 1 a finding (or a build failure), 2 bad arguments.
set -euo pipefail

seconds=""
runs=200000
runs_given=""
only=""
while (($#)); do
  case "$1" in
    --seconds) seconds=${2:?--seconds needs a number}; shift 2 ;;
    --runs) runs=${2:?--runs needs a number}; runs_given=1; shift 2 ;;
    --target) only=${2:?--target needs a name}; shift 2 ;;
    -h|--help) sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "fuzz.sh: unknown argument '$1' (allowed: --seconds N, --runs N, --target NAME)" >&2; exit 2 ;;
  esac
done
[[ "$seconds" =~ ^[0-9]*$ && "$runs" =~ ^[0-9]+$ ]] || { echo "fuzz.sh: --seconds and --runs take numbers" >&2; exit 2; }

cd "$(dirname "$0")/.."
BUILD=${FUZZ_BUILD_DIR:-build-fuzz}
JOBS=${JOBS:-$(nproc)}
CXX_BIN=$(command -v clang++ || command -v clang++-14 || true)
[ -n "$CXX_BIN" ] || { echo "fuzz.sh: clang++ not found (apt-get install clang libclang-rt-14-dev)" >&2; exit 1; }

echo "== configuring the fuzz build ($BUILD, $($CXX_BIN --version | head -n1))"
mkdir -p "$BUILD"
CXX=$CXX_BIN cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCONVGUARD_FUZZ=ON \
  -DCONVGUARD_BUILD_TESTS=OFF -DCONVGUARD_BUILD_BENCH=OFF -DCONVGUARD_ENABLE_CUDA=OFF \
  -DCONVGUARD_ENABLE_ONEDNN=OFF > "$BUILD/configure.log" 2>&1 || { cat "$BUILD/configure.log"; exit 1; }
mapfile -t entries < <(grep -v '^$' "$BUILD/fuzz-targets.txt")
targets=()
for e in "${entries[@]}"; do
  name=${e%%|*}
  [ -z "$only" ] || [ "$name" = "$only" ] && targets+=("$name")
done
((${#targets[@]})) || { echo "fuzz.sh: no fuzz target named '$only'" >&2; exit 2; }
echo "== building ${targets[*]} with $JOBS jobs"
SECONDS=0
cmake --build "$BUILD" -j "$JOBS" --target "${targets[@]}"
echo "== fuzz build: ${SECONDS}s"
SECONDS=0

# run_target NAME SEEDS OWN_RUNS: one target's run. libFuzzer's log is $BUILD/NAME.log;
# what this prints goes to $BUILD/NAME.summary, and 0 (no finding) or 1 to NAME.status.
run_target() {
  local name=$1 seeds=$2 own_runs=$3 n what
  local budget=() dirs=()
  # By time: a random seed, to explore; by count: seed 1, so a run is the same every time.
  if [ -n "$seconds" ]; then
    budget=(-max_total_time="$seconds")
    what="$seconds s"
  else
    n=$runs
    [ -n "$runs_given" ] || [ -z "$own_runs" ] || n=$own_runs
    budget=(-runs="$n" -seed=1)
    what="$n inputs from seed 1"
  fi
  local corpus="$BUILD/corpus/$name" findings="$BUILD/findings/$name"
  mkdir -p "$corpus" "$findings"
  # libFuzzer writes new inputs into the first folder it is given: never the committed
  # seeds. A by-count run starts from an empty one each time, so that it stays repeatable.
  if [ -n "$seconds" ]; then
    dirs=("$corpus" "$seeds")
  else
    rm -rf "$BUILD/corpus-once/$name" && mkdir -p "$BUILD/corpus-once/$name"
    dirs=("$BUILD/corpus-once/$name" "$seeds")
  fi
  {
    echo "== $name: $what, from $(ls "$seeds" | wc -l) seeds"
    if ! "$BUILD/tests/fuzz/$name" "${dirs[@]}" "${budget[@]}" -timeout=10 \
          -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1 -artifact_prefix="$findings/" \
          > "$BUILD/$name.log" 2>&1; then
      echo 1 > "$BUILD/$name.status"
      echo "fuzz.sh: $name found a problem; its input is in $findings/ and the log in $BUILD/$name.log:"
      grep -E "ERROR|Fail|SUMMARY|==[0-9]+==|runtime error" "$BUILD/$name.log" | head -n 20
    else
      echo 0 > "$BUILD/$name.status"
      grep -E "^stat::(number_of_executed_units|peak_rss_mb)|Done " "$BUILD/$name.log" | tr '\n' ' '
      echo
    fi
  } > "$BUILD/$name.summary" 2>&1
}

# The targets run side by side, JOBS at a time (each libFuzzer run is one process on one
# core); their summaries are printed in order once all have ended.
ran=()
for e in "${entries[@]}"; do
  # "name|seeds|runs"; runs is empty for the default.
  IFS='|' read -r name seeds own_runs <<< "$e"
  [[ " ${targets[*]} " == *" $name "* ]] || continue
  while (($(jobs -rp | wc -l) >= JOBS)); do wait -n || true; done
  rm -f "$BUILD/$name.status" "$BUILD/$name.summary"
  run_target "$name" "$seeds" "${own_runs:-}" &
  ran+=("$name")
done
wait
status=0
for name in "${ran[@]}"; do
  cat "$BUILD/$name.summary" 2>/dev/null || echo "fuzz.sh: the run of $name left no summary" >&2
  [ "$(cat "$BUILD/$name.status" 2>/dev/null)" = 0 ] || status=1
done
echo "== fuzz runs: ${SECONDS}s"
exit $status
