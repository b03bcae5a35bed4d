#!/usr/bin/env bash
# scripts/gpu-check.sh — the one-command check of convguard's cuDNN backend on a machine
# with an NVIDIA GPU: configure with CUDA, build with every core, run the GPU tests, the
# engine/CLI integration tests and the unit tests, sweep the seed problems on the GPU,
# measure every backend's probe costs (bench/probe_bench --sections backends: cuDNN,
# PyTorch, oneDNN, the reference; in-process vs a warm worker vs the first verdict), run
# GPU benchmarks if there are any, and print a summary table.
#
#   bash scripts/gpu-check.sh                    # on the GPU machine
#   bash scripts/gpu-check.sh --bundle-deps DIR  # on a dev machine: gather what the GPU
#                                                # machine may lack (see below) into DIR
#
# It installs nothing and needs no network: no apt, no pip, no scripts/setup.sh. Needed
# on the machine: bash, cmake (>= 3.25), a C++20 compiler (g++ >= 12), the CUDA toolkit
# (nvcc; looked for on PATH, in $CUDACXX, $CUDA_HOME/bin and /usr/local/cuda/bin), cuDNN 9
# (from $CUDNN_ROOT, else the python3 `nvidia.cudnn` package that PyTorch installs), and
# the build's libraries: GoogleTest, SQLite3 (header + library), nlohmann_json (>= 3.10).
# Google Benchmark and ninja are optional. Whatever the machine lacks can be carried in a
# prefix made by --bundle-deps and named with CONVGUARD_DEPS.
#
# Environment:
#   OUT             where logs, JUnit files and the summary go (default: $BUILD_DIR/gpu-check)
#   BUILD_DIR       build folder (default: build-gpu; reused between runs)
#   JOBS            build parallelism (default: nproc)
#   CUDNN_ROOT      cuDNN folder with include/ and lib/ (default: ask $PYTHON)
#   PYTHON          interpreter that has PyTorch's nvidia.cudnn (default: python3)
#   CONVGUARD_DEPS  ':'-separated prefixes of carried dependencies (--bundle-deps output);
#                   a prefix holding src/googletest gets GoogleTest built from it first
#   GTEST_ROOT      a GoogleTest install prefix (lib/cmake/GTest or lib/libgtest.a)
#   CMAKE_PREFIX_PATH  honoured as usual
#   CUDA_ARCHS      CMAKE_CUDA_ARCHITECTURES (default: the project's "80-real;90")
#   PROBE_BENCH_ARGS  extra arguments for probe_bench (default none; e.g. "--quick")
#   GPU_CHECK_SKIP  steps to leave out: any of "seed-sweep probe-bench rewrite-bench
#                   hang-sweep guarded-run replay multi-gpu" (default none)
#   GPU_CHECK_LABELS  test labels to run, in order (default "gpu integration unit"); e.g.
#                   "gpu" when the CPU tests already passed elsewhere and time is short
#   CUDA_VISIBLE_DEVICES  honoured; probe_bench runs with 0 when it is unset (one GPU)
#   GPU_CHECK_ALLOW_NO_GPU=1  go on without a GPU (the GPU tests then skip: a dry run)
#
# Exit status: 0 everything passed; 1 a test, the seed sweep or probe_bench failed; 2 the machine
# cannot run the check (no GPU, a tool or library missing, cuDNN backend not built,
# configure or build failed). The summary says which.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
usage() { awk 'NR == 1 { next } /^#/ { sub(/^# ?/, ""); print; next } { exit }' "${BASH_SOURCE[0]}"; }

# ---- --bundle-deps DIR: run on a Debian/Ubuntu dev machine -------------------------------
bundle_deps() {
  local dir=$1
  mkdir -p "$dir/include" "$dir/lib" "$dir/share/cmake" "$dir/src" || return 2
  dir=$(cd "$dir" && pwd)
  local ok=1
  # GoogleTest as source: built on the GPU machine by its own compiler (no ABI guessing).
  if [ -f /usr/src/googletest/CMakeLists.txt ]; then
    rm -rf "$dir/src/googletest" && cp -r /usr/src/googletest "$dir/src/googletest"
    echo "bundle: GoogleTest source from /usr/src/googletest"
  else
    echo "bundle: /usr/src/googletest missing (Debian/Ubuntu package 'googletest')" >&2; ok=0
  fi
  # nlohmann_json: header-only; its CMake config finds include/ relative to itself.
  local nj
  nj=$(dirname "$(find /usr/share/cmake /usr/lib/cmake /usr/lib/x86_64-linux-gnu/cmake \
                   -name nlohmann_jsonConfig.cmake 2>/dev/null | head -n1)")
  if [ -d /usr/include/nlohmann ] && [ -f "$nj/nlohmann_jsonConfig.cmake" ]; then
    rm -rf "$dir/include/nlohmann" "$dir/share/cmake/nlohmann_json"
    cp -r /usr/include/nlohmann "$dir/include/" && cp -r "$nj" "$dir/share/cmake/nlohmann_json"
    echo "bundle: nlohmann_json from /usr/include/nlohmann and $nj"
  else
    echo "bundle: nlohmann_json missing (package nlohmann-json3-dev)" >&2; ok=0
  fi
  # SQLite3: the header (the GPU machine links its own libsqlite3.so.0 when it has one)
  # and Debian's static library as the fallback.
  if [ -f /usr/include/sqlite3.h ]; then
    cp /usr/include/sqlite3.h /usr/include/sqlite3ext.h "$dir/include/"
    local a
    a=$(ls /usr/lib/x86_64-linux-gnu/libsqlite3.a /usr/lib/libsqlite3.a 2>/dev/null | head -n1)
    [ -n "$a" ] && cp "$a" "$dir/lib/libsqlite3.a"
    echo "bundle: SQLite3 header${a:+ and $a}"
  else
    echo "bundle: /usr/include/sqlite3.h missing (package libsqlite3-dev)" >&2; ok=0
  fi
  echo "bundle: $dir ($(du -sh "$dir" | cut -f1)); on the GPU machine: CONVGUARD_DEPS=$dir bash scripts/gpu-check.sh"
  [ "$ok" = 1 ] || return 2
}

case "${1:-}" in
  -h|--help) usage; exit 0 ;;
  --bundle-deps)
    [ -n "${2:-}" ] || { echo "gpu-check.sh: --bundle-deps needs a folder" >&2; exit 2; }
    bundle_deps "$2"; exit $? ;;
  "") ;;
  *) echo "gpu-check.sh: unknown argument '$1' (allowed: --help, --bundle-deps DIR)" >&2; exit 2 ;;
esac

# ---- the check ---------------------------------------------------------------------------
cd "$ROOT" || exit 2
BUILD_DIR=${BUILD_DIR:-build-gpu}
case "$BUILD_DIR" in /*) ;; *) BUILD_DIR="$ROOT/$BUILD_DIR" ;; esac
OUT_DIR=${OUT:-$BUILD_DIR/gpu-check}
JOBS=${JOBS:-$(nproc 2>/dev/null || echo 4)}
PYTHON=${PYTHON:-python3}
mkdir -p "$OUT_DIR" "$BUILD_DIR"
SUMMARY="$OUT_DIR/summary.md"
t_start=$(date +%s)
status=0            # worst exit status so far
declare -a rows=()  # summary table rows: "item|value"
row() { rows+=("$1|$2"); }
say() { printf '== %s\n' "$*"; }
fail_env() { say "CANNOT CHECK: $*"; row "result" "cannot check: $*"; finish 2; }

finish() {
  local code=${1:-$status}
  [ "$code" -gt "$status" ] && status=$code
  row "time" "$(( $(date +%s) - t_start )) s total${stage_times:+ ($stage_times)}"
  {
    echo "# convguard gpu-check — $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(hostname)"
    echo
    echo "| item | value |"
    echo "| --- | --- |"
    local r
    for r in "${rows[@]}"; do echo "| ${r%%|*} | ${r#*|} |"; done
    echo
    echo "exit status: $status (the meanings: 0 = passed, 1 = a check failed, 2 = could not check); logs: $OUT_DIR"
  } > "$SUMMARY"
  echo
  cat "$SUMMARY"
  exit "$status"
}
stage_times=""
timed() {  # timed NAME COMMAND... : runs it, records its duration
  local name=$1; shift
  local t0; t0=$(date +%s)
  "$@"; local rc=$?
  stage_times+="${stage_times:+, }$name $(( $(date +%s) - t0 )) s"
  return $rc
}

# 1. The GPU.
gpu="none"
if command -v nvidia-smi >/dev/null 2>&1; then
  gpu_csv=$(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null)
  if [ -n "$gpu_csv" ]; then
    n_gpus=$(printf '%s\n' "$gpu_csv" | wc -l)
    gpu="$(printf '%s\n' "$gpu_csv" | head -n1 | cut -d, -f1) x $n_gpus ($(printf '%s\n' "$gpu_csv" | head -n1 | cut -d, -f3 | sed 's/^ *//'))"
    row "GPU" "$gpu"
    row "driver" "$(printf '%s\n' "$gpu_csv" | head -n1 | cut -d, -f2 | sed 's/^ *//')"
  fi
fi
if [ "$gpu" = none ]; then
  if ls /dev/nvidia[0-9]* >/dev/null 2>&1 || [ -n "$(ls /proc/driver/nvidia/gpus 2>/dev/null)" ]; then
    gpu="present (nvidia-smi unavailable)"
    row "GPU" "$gpu"
    row "driver" "$(awk 'NR == 1 { for (i = 1; i <= NF; i++) if ($i ~ /^[0-9]+\.[0-9]+(\.[0-9]+)?$/) { print $i; exit } }' /proc/driver/nvidia/version 2>/dev/null)"
  elif [ "${GPU_CHECK_ALLOW_NO_GPU:-0}" = 1 ]; then
    row "GPU" "NONE (GPU_CHECK_ALLOW_NO_GPU=1: a dry run, GPU tests skip)"
  else
    fail_env "no NVIDIA GPU here (no nvidia-smi output, /dev/nvidiaN or /proc/driver/nvidia/gpus); set GPU_CHECK_ALLOW_NO_GPU=1 for a dry run"
  fi
fi

# 2. Tools.
command -v cmake >/dev/null 2>&1 || fail_env "cmake not found on PATH"
CXX_BIN=${CXX:-$(command -v g++ || command -v c++ || true)}
[ -n "$CXX_BIN" ] || fail_env "no C++ compiler (g++ or \$CXX) found"
NVCC=${CUDACXX:-}
for candidate in "$(command -v nvcc 2>/dev/null)" "${CUDA_HOME:-}/bin/nvcc" "${CUDA_PATH:-}/bin/nvcc" /usr/local/cuda/bin/nvcc; do
  [ -n "$NVCC" ] && break
  [ -n "$candidate" ] && [ -x "$candidate" ] && NVCC=$candidate
done
[ -n "$NVCC" ] || fail_env "nvcc not found (PATH, \$CUDACXX, \$CUDA_HOME/bin, /usr/local/cuda/bin)"
cuda_release=$("$NVCC" --version | sed -n 's/.*release \([0-9.]*\), V\([0-9.]*\).*/\2/p')
row "CUDA toolkit" "${cuda_release:-?} ($NVCC)"
generator=()
command -v ninja >/dev/null 2>&1 && generator=(-G Ninja)
say "cmake $(cmake --version | head -n1 | awk '{print $3}'), $("$CXX_BIN" --version | head -n1), nvcc $cuda_release, ${generator[*]:-make}"

# 3. cuDNN.
cudnn_root=${CUDNN_ROOT:-}
if [ -z "$cudnn_root" ] && command -v "$PYTHON" >/dev/null 2>&1; then
  cudnn_root=$("$PYTHON" -c 'import os, nvidia.cudnn as m; f = getattr(m, "__file__", None); print(os.path.dirname(f) if f else list(m.__path__)[0])' 2>/dev/null)
fi
if [ -z "$cudnn_root" ] || [ ! -f "$cudnn_root/include/cudnn.h" ]; then
  say "cuDNN: no CUDNN_ROOT and no $PYTHON nvidia.cudnn package with include/cudnn.h; CMake will search the system"
  cudnn_root=""
else
  say "cuDNN: $cudnn_root"
fi

# 4. The build's libraries: a throw-away CMake project asks for each, with the same paths.
prefixes=()
IFS=: read -r -a carried <<< "${CONVGUARD_DEPS:-}"
for p in "${carried[@]}"; do
  [ -n "$p" ] || continue
  p=$(cd "$p" 2>/dev/null && pwd) || fail_env "CONVGUARD_DEPS entry '$p' is not a folder"
  if [ -f "$p/src/googletest/CMakeLists.txt" ]; then
    gt_install="$BUILD_DIR/_deps/googletest"
    if [ ! -d "$gt_install/include/gtest" ]; then
      say "building GoogleTest from $p/src/googletest"
      { cmake -S "$p/src/googletest" -B "$BUILD_DIR/_deps/googletest-build" "${generator[@]}" \
          -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX="$gt_install" -DBUILD_GMOCK=ON \
          -DINSTALL_GTEST=ON -DCMAKE_CXX_COMPILER="$CXX_BIN" &&
        cmake --build "$BUILD_DIR/_deps/googletest-build" -j "$JOBS" &&
        cmake --install "$BUILD_DIR/_deps/googletest-build"; } > "$OUT_DIR/googletest-build.log" 2>&1 ||
        fail_env "building GoogleTest from $p/src/googletest failed (see $OUT_DIR/googletest-build.log)"
    fi
    prefixes+=("$gt_install")
  fi
  prefixes+=("$p")
done
[ -n "${GTEST_ROOT:-}" ] && prefixes+=("$GTEST_ROOT")
prefix_path=$(IFS=';'; echo "${prefixes[*]}")
[ -n "${CMAKE_PREFIX_PATH:-}" ] && prefix_path="${prefix_path:+$prefix_path;}${CMAKE_PREFIX_PATH//:/;}"

# SQLite3: where the system has the runtime library but no header, pair the system's
# libsqlite3.so.0 with a carried header (ABI-safe) rather than a carried static library.
sqlite_args=()
if [ ! -f /usr/include/sqlite3.h ]; then
  for p in "${carried[@]}"; do
    if [ -z "$p" ] || [ ! -f "$p/include/sqlite3.h" ]; then continue; fi
    so=$( (ldconfig -p 2>/dev/null || true) | awk '/libsqlite3\.so\.0 .*x86-64/ {print $NF; exit}')
    if [ -n "$so" ]; then
      sqlite_args=(-DSQLite3_INCLUDE_DIR="$(cd "$p/include" && pwd)" -DSQLite3_LIBRARY="$so")
      say "SQLite3: header from $p/include, the system's $so"
    fi
    break
  done
fi

depcheck="$BUILD_DIR/_deps/depcheck"
mkdir -p "$depcheck"
cat > "$depcheck/CMakeLists.txt" <<'EOF'
cmake_minimum_required(VERSION 3.16)
project(convguard_depcheck LANGUAGES CXX)
foreach(pkg GTest SQLite3 nlohmann_json benchmark)
  find_package(${pkg} QUIET)
  message(STATUS "DEPCHECK ${pkg} ${${pkg}_FOUND}")
endforeach()
EOF
cmake -S "$depcheck" -B "$depcheck/build" -DCMAKE_CXX_COMPILER="$CXX_BIN" \
  ${prefix_path:+-DCMAKE_PREFIX_PATH="$prefix_path"} "${sqlite_args[@]}" > "$OUT_DIR/depcheck.log" 2>&1
found() { grep -q "DEPCHECK $1 \(1\|TRUE\|ON\|YES\)" "$OUT_DIR/depcheck.log"; }
missing=()
found GTest || missing+=("GoogleTest (GTEST_ROOT=<install prefix>, or CONVGUARD_DEPS=<bundle with src/googletest>)")
found SQLite3 || missing+=("SQLite3 header+library (CONVGUARD_DEPS=<bundle with include/sqlite3.h>)")
found nlohmann_json || missing+=("nlohmann_json >= 3.10 (CONVGUARD_DEPS=<bundle with share/cmake/nlohmann_json>)")
if ((${#missing[@]})); then
  row "dependencies" "MISSING: $(IFS=';'; echo "${missing[*]}")"
  fail_env "missing: ${missing[*]}; make a bundle on a dev machine with 'bash scripts/gpu-check.sh --bundle-deps DIR' and carry it (details: docs/gpu.md)"
fi
bench=OFF
found benchmark && bench=ON
row "dependencies" "GoogleTest, SQLite3, nlohmann_json found; Google Benchmark: $bench"

# 5. Configure and build.
say "configuring $BUILD_DIR"
# bench/ is always built: probe_bench is a plain program; the Google Benchmark programs
# are built only where the library is found (bench/CMakeLists.txt decides).
configure=(cmake -S "$ROOT" -B "$BUILD_DIR" "${generator[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo
  -DCONVGUARD_ENABLE_CUDA=ON -DCONVGUARD_BUILD_TESTS=ON -DCONVGUARD_BUILD_BENCH=ON
  -DCMAKE_CXX_COMPILER="$CXX_BIN" -DCMAKE_CUDA_COMPILER="$NVCC" "${sqlite_args[@]}")
[ -n "$prefix_path" ] && configure+=(-DCMAKE_PREFIX_PATH="$prefix_path")
[ -n "$cudnn_root" ] && configure+=(-DCUDNN_ROOT="$cudnn_root")
[ -n "${CUDA_ARCHS:-}" ] && configure+=(-DCMAKE_CUDA_ARCHITECTURES="$CUDA_ARCHS")
printf '%q ' "${configure[@]}" > "$OUT_DIR/configure.cmd"
timed configure "${configure[@]}" > "$OUT_DIR/configure.log" 2>&1 ||
  { tail -n 30 "$OUT_DIR/configure.log"; fail_env "cmake configure failed (see $OUT_DIR/configure.log)"; }
cudnn_line=$(grep "cuDNN backend:" "$OUT_DIR/configure.log" | head -n1)
say "${cudnn_line#-- }"
if ! grep -q "cuDNN backend: built" "$OUT_DIR/configure.log"; then
  row "cuDNN" "NOT BUILT: ${cudnn_line#*cuDNN backend: }"
  fail_env "the cuDNN backend was not built: ${cudnn_line#*cuDNN backend: }"
fi
row "cuDNN" "$(sed -n 's/.*cuDNN backend: built: cuDNN \([0-9.]*\) (\(.*\)); header.*/\1 (\2)/p' "$OUT_DIR/configure.log" | head -n1)"

say "building with $JOBS jobs"
timed build cmake --build "$BUILD_DIR" -j "$JOBS" > "$OUT_DIR/build.log" 2>&1 ||
  { grep -m 20 -i "error" "$OUT_DIR/build.log"; fail_env "build failed (see $OUT_DIR/build.log)"; }
BIN="$BUILD_DIR/convguard"

# 6. Tests: GPU first (the point), then the integration tests (engine, CLI, store, OS),
# then the unit tests.
run_label() {  # run_label LABEL: ctest for one label; one summary row; sets status
  local label=$1 junit="$OUT_DIR/ctest-$1.xml" log="$OUT_DIR/ctest-$1.log"
  say "ctest -L $label"
  (cd "$BUILD_DIR" && ctest -L "$label" --output-on-failure --timeout 1800 --output-junit "$junit") > "$log" 2>&1
  local rc=$?
  local total failed skipped
  if [ -f "$junit" ]; then
    total=$(sed -n 's/^[[:space:]]*tests="\([0-9]*\)".*/\1/p' "$junit" | head -n1)
    failed=$(sed -n 's/^[[:space:]]*failures="\([0-9]*\)".*/\1/p' "$junit" | head -n1)
    skipped=$(sed -n 's/^[[:space:]]*skipped="\([0-9]*\)".*/\1/p' "$junit" | head -n1)
  fi
  if [ -z "${total:-}" ]; then  # no JUnit (old ctest): read the text summary
    total=$(sed -n 's/.* tests failed out of \([0-9]*\).*/\1/p' "$log" | tail -n1)
    failed=$(sed -n 's/.* \([0-9]*\) tests failed out of.*/\1/p' "$log" | tail -n1)
    skipped=$(grep -c '(Skipped)' "$log")
  fi
  total=${total:-0}; failed=${failed:-0}; skipped=${skipped:-0}
  local passed=$(( total - failed - skipped ))
  local note=""
  if [ "$total" = 0 ]; then note=" — NO TESTS with label $label"; [ $status -lt 1 ] && status=1; fi
  if [ "$rc" != 0 ] || [ "$failed" != 0 ]; then
    [ $status -lt 1 ] && status=1
    note+=" — FAILED: $(grep -E '^[[:space:]]+[0-9]+ - .*\((Failed|Timeout|SEGFAULT|Subprocess aborted|Exception|Not Run)' "$log" |
      sed -E 's/^[[:space:]]*[0-9]+ - //' | tr '\n' ';' | cut -c1-300)"
  fi
  if [ "$label" = gpu ] && [ "$skipped" != 0 ] && [ "${GPU_CHECK_ALLOW_NO_GPU:-0}" != 1 ]; then
    note+=" — $skipped SKIPPED although a GPU is present"
    [ $status -lt 1 ] && status=1
  fi
  row "tests: $label" "$passed passed, $failed failed, $skipped skipped (of $total)$note"
  say "$label: $passed passed, $failed failed, $skipped skipped (of $total)$note"
}
t_tests=$(date +%s)
for label in ${GPU_CHECK_LABELS:-gpu integration unit}; do
  case "$label" in
    gpu|integration|unit|slow) run_label "$label" ;;
    *) fail_env "GPU_CHECK_LABELS: unknown label '$label' (allowed: gpu, integration, unit, slow)" ;;
  esac
done
stage_times+="${stage_times:+, }tests $(( $(date +%s) - t_tests )) s"

# 7. The seed problems on the GPU, every cuDNN algorithm, through the real CLI.
skip() { case " ${GPU_CHECK_SKIP:-} " in *" $1 "*) row "$1" "skipped (GPU_CHECK_SKIP)"; return 0 ;; esac; return 1; }
if [ "$gpu" != none ] && ! skip seed-sweep; then
  say "convguard sweep --list tests/inputs/seed.list --backend cudnn --algo '*'"
  t0=$(date +%s)
  "$BIN" sweep --list "$ROOT/tests/inputs/seed.list" --backend cudnn --algo '*' --no-store --table markdown \
    > "$OUT_DIR/sweep-seed.md" 2> "$OUT_DIR/sweep-seed.log"
  rc=$?
  stage_times+=", sweep $(( $(date +%s) - t0 )) s"
  counts=$(grep -oE '\b(OK|SLOW|HANG|CRASH|WRONG|MISTRUSTED|ERROR|UNSUPPORTED|OOM)\b' "$OUT_DIR/sweep-seed.md" |
           sort | uniq -c | awk '{printf "%s%s %s", (NR>1?", ":""), $2, $1}')
  if [ "$rc" = 0 ]; then
    row "seed sweep (cudnn, all algorithms)" "${counts:-no verdicts?} (table: sweep-seed.md)"
  else
    row "seed sweep (cudnn, all algorithms)" "FAILED with status $rc (see sweep-seed.log)"
    [ $status -lt 1 ] && status=1
  fi
else
  row "seed sweep" "skipped (no GPU)"
fi

# 8. Per-backend probe costs: every backend available here, in-process vs a warm worker vs
# the first verdict (bench/RESULTS.md keeps the GPU rows from this table).
if skip probe-bench; then
  :
elif [ -x "$BUILD_DIR/bench/probe_bench" ]; then
  say "probe_bench --sections backends ${PROBE_BENCH_ARGS:-}"
  t0=$(date +%s)
  # shellcheck disable=SC2086  # PROBE_BENCH_ARGS is a list of words
  CUDA_VISIBLE_DEVICES=${CUDA_VISIBLE_DEVICES:-0} "$BUILD_DIR/bench/probe_bench" "$BIN" --sections backends \
    ${PROBE_BENCH_ARGS:-} > "$OUT_DIR/probe_bench.md" 2> "$OUT_DIR/probe_bench.log"
  rc=$?
  stage_times+=", probe_bench $(( $(date +%s) - t0 )) s"
  if [ "$rc" = 0 ]; then
    # "cudnn small 0.05/0.31 ms, first 1.4 s; ..." from the table's rows.
    measured=$(awk -F'|' '$2 ~ /^ (cudnn|torch|onednn|reference|emulated-rdna1) $/ {
        gsub(/ /, "", $2); gsub(/ /, "", $3); gsub(/^ +| +$/, "", $5); gsub(/^ +| +$/, "", $6); gsub(/^ +| +$/, "", $9)
        printf "%s%s %s: in-process %s, worker %s, first verdict %s", (n++ ? "; " : ""), $2, $3, $5, $6, $9 }' \
      "$OUT_DIR/probe_bench.md")
    skipped=$(sed -n 's/^- skipped \([^:]*\):.*/\1/p' "$OUT_DIR/probe_bench.md" | tr '\n' ' ' | sed 's/ $//')
    row "probe costs per backend" "${measured:-no rows?}${skipped:+; skipped: $skipped} (table: probe_bench.md)"
  else
    row "probe costs per backend" "FAILED with status $rc (see probe_bench.log)"
    [ $status -lt 1 ] && status=1
  fi
else
  row "probe costs per backend" "probe_bench was not built: skipped"
fi

# 8b. What each exact rewrite costs on cuDNN against the native problem (ResNet-50's and
# the seed's layers at batch 1, ResNet-50 at batch 8), and a cached plan lookup.
if [ -x "$BUILD_DIR/bench/rewrite_bench" ] && [ "$gpu" != none ] && ! skip rewrite-bench; then
  say "rewrite_bench --backend cudnn"
  t0=$(date +%s)
  CUDA_VISIBLE_DEVICES=${CUDA_VISIBLE_DEVICES:-0} "$BUILD_DIR/bench/rewrite_bench" --backend cudnn --runs 5 \
    > "$OUT_DIR/rewrite_bench.md" 2> "$OUT_DIR/rewrite_bench.log" &&
  CUDA_VISIBLE_DEVICES=${CUDA_VISIBLE_DEVICES:-0} "$BUILD_DIR/bench/rewrite_bench" --backend cudnn --runs 5 \
    --batch 8 --list "$ROOT/tests/inputs/resnet50.list" > "$OUT_DIR/rewrite_bench_b8.md" 2>> "$OUT_DIR/rewrite_bench.log" &&
  CUDA_VISIBLE_DEVICES=${CUDA_VISIBLE_DEVICES:-0} "$BUILD_DIR/bench/rewrite_bench" --backend cudnn --runs 20 \
    --device > "$OUT_DIR/rewrite_bench_device.md" 2>> "$OUT_DIR/rewrite_bench.log"
  rc=$?
  stage_times+=", rewrite_bench $(( $(date +%s) - t0 )) s"
  if [ "$rc" = 0 ]; then
    row "rewrites on cuDNN" "$(grep -h '^best rewrite\|^plan lookup' "$OUT_DIR/rewrite_bench.md" "$OUT_DIR/rewrite_bench_b8.md" | tr '\n' ';' | cut -c1-400) (tables: rewrite_bench*.md)"
    row "rewrites on cuDNN, device-resident" "$(grep -h '^best rewrite' "$OUT_DIR/rewrite_bench_device.md" | tr '\n' ';' | cut -c1-300) (table: rewrite_bench_device.md)"
  else
    row "rewrites on cuDNN" "FAILED with status $rc (see rewrite_bench.log)"
    [ $status -lt 1 ] && status=1
  fi
fi

# 8c. Every GPU at once: ResNet-50's layers over every cuDNN algorithm with a real GPU hang
# injected on one layer (a spinning kernel), across all visible GPUs, into one store.
if [ "$gpu" != none ] && ! skip hang-sweep; then
  say "convguard sweep --list tests/inputs/resnet50.list --backend cudnn --algo '*' --inject (hang on k == 2048)"
  rules="$OUT_DIR/hang-k2048.rules"
  printf 'emulation: cuDNN with a spinning kernel injected on 2048-output-channel layers\nspin when k == 2048 && algo == "implicit-gemm"\n' > "$rules"
  rm -f "$OUT_DIR/resnet-hang.sqlite"
  t0=$(date +%s)
  "$BIN" sweep --list "$ROOT/tests/inputs/resnet50.list" --backend cudnn --algo '*' --inject "$rules" \
    --db "$OUT_DIR/resnet-hang.sqlite" --table markdown > "$OUT_DIR/sweep-resnet-hang.md" 2> "$OUT_DIR/sweep-resnet-hang.log"
  rc=$?
  secs=$(( $(date +%s) - t0 ))
  stage_times+=", resnet hang sweep $secs s"
  counts=$(grep -oE '\b(OK|SLOW|HANG|CRASH|WRONG|MISTRUSTED|ERROR|UNSUPPORTED|OOM)\b' "$OUT_DIR/sweep-resnet-hang.md" |
           sort | uniq -c | awk '{printf "%s%s %s", (NR>1?", ":""), $2, $1}')
  if [ "$rc" = 0 ] || [ "$rc" = 11 ]; then
    row "ResNet-50 x cuDNN algorithms, hang injected, $(nvidia-smi -L 2>/dev/null | wc -l) GPU(s)" "${counts:-no verdicts?} in $secs s (table: sweep-resnet-hang.md)"
  else
    row "ResNet-50 sweep with a hang" "FAILED with status $rc (see sweep-resnet-hang.log)"
    [ $status -lt 1 ] && status=1
  fi
fi

# 8d. Guarded execution on the GPU: the seed's layer made to hang (a real spinning kernel
# on 16-input-channel problems), planned with probes in workers, run in-process on cuDNN
# and checked against the float64 reference.
if [ "$gpu" != none ] && ! skip guarded-run; then
  say "convguard run n1_c16_h64_w64_k32_r3_s3_p1 --backend cudnn --inject (hang on c == 16) --probe-missing"
  rules="$OUT_DIR/hang-c16.rules"
  printf 'emulation: cuDNN with a spinning kernel injected on 16-input-channel problems\nspin when c == 16\n' > "$rules"
  rm -f "$OUT_DIR/guarded.sqlite"
  t0=$(date +%s)
  "$BIN" run n1_c16_h64_w64_k32_r3_s3_p1 --backend cudnn --inject "$rules" --db "$OUT_DIR/guarded.sqlite" \
    --probe-missing --confirm-floor 1500 --runs 20 > "$OUT_DIR/guarded-run.txt" 2> "$OUT_DIR/guarded-run.log"
  rc=$?
  secs=$(( $(date +%s) - t0 ))
  # The same plan again from the store, with host tensors and with tensors that live on
  # the GPU (device-resident execution), side by side.
  if [ "$rc" = 0 ]; then
    for mode in host device host device; do
      extra=()
      [ "$mode" = device ] && extra=(--device-tensors)
      "$BIN" run n1_c16_h64_w64_k32_r3_s3_p1 --backend cudnn --inject "$rules" --db "$OUT_DIR/guarded.sqlite" \
        --runs 200 "${extra[@]}" >> "$OUT_DIR/guarded-run-modes.txt" 2>> "$OUT_DIR/guarded-run.log" || rc=$?
    done
  fi
  if [ "$rc" = 0 ]; then
    row "guarded run on cuDNN (seed layer, hang injected)" "$(grep -E '^(plan|executed|check|verdict)' "$OUT_DIR/guarded-run.txt" | tr '\n' ';' | cut -c1-400) in $secs s"
    row "guarded run, host vs device tensors (200 calls each, twice)" "$(grep -E '^executed' "$OUT_DIR/guarded-run-modes.txt" | sed 's/ (builds buffers, loads weights)//' | tr '\n' ';' | cut -c1-400)"
  else
    row "guarded run on cuDNN" "FAILED with status $rc (see guarded-run.txt/.log)"
    [ $status -lt 1 ] && status=1
  fi
fi

# 8e. Replay on the GPU: a sequence whose 16-channel calls hang (a real spinning kernel)
# only from the 6th call of a process on; found in one worker, each problem OK alone,
# minimised to 6 calls (docs/replay.md).
if [ "$gpu" != none ] && ! skip replay; then
  say "convguard replay (12 calls, hang from the 6th call on c == 16) --backend cudnn --minimise"
  rules="$OUT_DIR/hang-late-c16.rules"
  printf 'emulation: cuDNN with a spinning kernel on 16-channel calls from the 6th call of a process\nspin when calls >= 6 && c == 16\n' > "$rules"
  list="$OUT_DIR/replay.list"
  : > "$list"
  for c in 8 3 16 4 8 3 4 8 3 16 4 8; do
    echo "n2_c${c}_h32_w32_k16_r3_s3_p1_u1_d1_g1_f32_nchw_fwd" >> "$list"
  done
  rm -f "$OUT_DIR/replay.sqlite" "$OUT_DIR/replay-min.list" "$OUT_DIR/replay-min.driver.txt"
  t0=$(date +%s)
  "$BIN" replay "$list" --backend cudnn --inject "$rules" --db "$OUT_DIR/replay.sqlite" --minimise \
    --budget 120 --minimal-out "$OUT_DIR/replay-min" --confirm-floor 1500 > "$OUT_DIR/replay.txt" 2> "$OUT_DIR/replay.log"
  rc=$?
  secs=$(( $(date +%s) - t0 ))
  stage_times+=", replay $secs s"
  if [ "$rc" = 11 ] && grep -q 'HANG at call 10 of 12' "$OUT_DIR/replay.txt" &&
     grep -q 'minimal failing sequence: 6 of 10 calls' "$OUT_DIR/replay.txt"; then
    row "replay on cuDNN (hang from the 6th call injected)" "$(grep -E '^  HANG|^each problem alone|^minimal failing' "$OUT_DIR/replay.txt" | tr '\n' ';' | cut -c1-400) in $secs s"
  else
    row "replay on cuDNN" "FAILED with status $rc (expected 11, HANG at call 10, 6 minimal calls; see replay.txt/.log)"
    [ $status -lt 1 ] && status=1
  fi
fi

# 8f. Several GPUs: ResNet-50 x every cuDNN algorithm on one GPU and on all, with and
# without a hang injected, and with a hang on card 1 only (scripts/multi-gpu-sweep.sh).
if [ "$gpu" != none ] && ! skip multi-gpu; then
  if [ "${n_gpus:-1}" -ge 2 ]; then
    say "scripts/multi-gpu-sweep.sh (1 GPU vs $n_gpus GPUs, REPEATS=${REPEATS:-2})"
    if bash "$ROOT/scripts/multi-gpu-sweep.sh" "$BIN" "$OUT_DIR/multi-gpu" > "$OUT_DIR/multi-gpu.txt" 2>&1; then
      row "ResNet-50 sweeps, 1 GPU vs $n_gpus GPUs" "$(grep -E '^\| (nofault|hang|device1) ' "$OUT_DIR/multi-gpu/summary.md" | tr '\n' ' ' | cut -c1-400)(multi-gpu.txt)"
    else
      row "ResNet-50 sweeps on several GPUs" "FAILED (see multi-gpu.txt)"
      [ $status -lt 1 ] && status=1
    fi
  else
    row "multi-GPU sweeps" "one GPU: skipped"
  fi
fi

# 9. GPU benchmarks, if the project has any (bench/*gpu*).
mapfile -t benches < <(find "$BUILD_DIR/bench" -maxdepth 1 -type f -executable -name '*gpu*' 2>/dev/null | sort)
if ((${#benches[@]})) && [ "$gpu" != none ]; then
  for b in "${benches[@]}"; do
    name=$(basename "$b")
    say "benchmark $name"
    if "$b" --benchmark_out="$OUT_DIR/$name.json" --benchmark_out_format=json > "$OUT_DIR/$name.txt" 2>&1; then
      row "benchmark $name" "ran ($name.txt, $name.json)"
    else
      row "benchmark $name" "FAILED (see $name.txt)"; [ $status -lt 1 ] && status=1
    fi
  done
else
  row "benchmarks" "none (no bench/*gpu* programs${benches:+, or no GPU}): skipped"
fi

if [ $status = 0 ]; then
  row "result" "PASSED"
else
  row "result" "FAILED (see the rows above and $OUT_DIR)"
fi
finish "$status"
