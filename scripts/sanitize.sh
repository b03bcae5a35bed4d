#!/usr/bin/env bash
# scripts/sanitize.sh — builds convguard with sanitizers (the CMake option CONVGUARD_SANITIZE,
# GCC) in build directories of their own and runs tests under them (docs/sanitizers.md).
#
#   bash scripts/sanitize.sh           # both runs below, ASan first (what setup.sh test runs)
#   bash scripts/sanitize.sh --asan    # AddressSanitizer + UndefinedBehaviorSanitizer (and
#                                      # LeakSanitizer) on the library, the CLI (so every C++
#                                      # worker) and the tests: ctest -L 'unit|integration'
#   bash scripts/sanitize.sh --tsan    # ThreadSanitizer: store_tests and inject_tests, the
#                                      # suites whose tests run threads
#   bash scripts/sanitize.sh --asan -R 'SqliteStore|Claim'   # ASan, only the tests ctest -R picks
#
# A few tests are left out of the ASan run, each printed with its reason when the run
# starts (`exclude` below). Any sanitizer report fails the run, also one from a process
# whose test passed (a worker its test expected to crash, say): the runtimes write their
# reports to <build>/sanitizer-logs/, and every report there is printed at the end.
# Suppressions (third-party code only) are scripts/sanitizers/{lsan,tsan}.supp.
# Environment: ASAN_BUILD_DIR (default build-asan), TSAN_BUILD_DIR (default build-tsan),
# JOBS (default nproc), ORT_PYTHON (an interpreter that imports onnxruntime, for the
# onnxruntime tests; default build/venv/bin/python, which setup.sh makes, where it exists).
# Exit status: 0 no finding, 1 a finding, a failing test or a build failure, 2 bad arguments.
set -euo pipefail

run_asan=0
run_tsan=0
regex=""
while (($#)); do
  case "$1" in
    --asan) run_asan=1; shift ;;
    --tsan) run_tsan=1; shift ;;
    -R) regex=${2:?-R needs a regular expression}; shift 2 ;;
    -h|--help) sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "sanitize.sh: unknown argument '$1' (allowed: --asan, --tsan, -R REGEX)" >&2; exit 2 ;;
  esac
done
if ((!run_asan && !run_tsan)); then run_asan=1; run_tsan=1; fi

cd "$(dirname "$0")/.."
repo=$(pwd)
JOBS=${JOBS:-$(nproc)}
ASAN_BUILD=${ASAN_BUILD_DIR:-build-asan}
TSAN_BUILD=${TSAN_BUILD_DIR:-build-tsan}
ORT_PYTHON=${ORT_PYTHON:-}
if [ -z "$ORT_PYTHON" ] && [ -x build/venv/bin/python ]; then ORT_PYTHON=$repo/build/venv/bin/python; fi
supp="$repo/scripts/sanitizers"

# What both builds leave out, all of it through options CMakeLists.txt already has: the
# benchmarks (not tests), and the oneDNN and cuDNN backends (vendor code that is not
# instrumented, JIT code, no GPU on CI; their tests are the bulk of the suite's process
# starts). -Og: GCC compiles the sanitized library in about half the time of -O1 (ASan's
# usual advice) and keeps stack traces exact; -g1 (line tables) is all a report needs.
# CMakeLists.txt compiles the tests' own sources at -O0, and the float64 reference's loops
# at -O2 without sanitizers. NDEBUG stays, as in the regular build: the same code is tested.
common=(-G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-Og -g1 -DNDEBUG"
        -DCONVGUARD_BUILD_BENCH=OFF -DCONVGUARD_ENABLE_ONEDNN=OFF -DCONVGUARD_ENABLE_CUDA=OFF)

# configure DIR SANITIZERS CMAKE_ARGS...
configure() {
  local dir=$1 sanitize=$2
  shift 2
  mkdir -p "$dir"
  echo "== configuring $dir (-fsanitize=$sanitize, $(c++ --version | head -n1))"
  cmake -S . -B "$dir" "${common[@]}" -DCONVGUARD_SANITIZE="$sanitize" "$@" \
    > "$dir/configure.log" 2>&1 || { cat "$dir/configure.log"; exit 1; }
}

# The gtest executables ctest runs with one of the labels in $1 (an ERE), read from the
# generated build file: gtest_discover_tests hands each its labels there.
suites_labelled() {
  grep -o 'TEST_TARGET=[A-Za-z0-9_]* .*"TEST_PROPERTIES=LABELS;[a-z]*' "$2/build.ninja" |
    sed -E 's/TEST_TARGET=([A-Za-z0-9_]*) .*LABELS;([a-z]*)/\1 \2/' |
    awk -v re="^($1)\$" '$2 ~ re {print $1}'
}

# findings DIR: prints every sanitizer report written under DIR/sanitizer-logs; status 1
# when there is one. A log that holds only ASan's warning for an allocation it refused
# (the `oom` fault's 2^60 bytes, with allocator_may_return_null=1) is no finding.
findings() {
  local logs="$1/sanitizer-logs"
  local reports
  mapfile -t reports < <(grep -lE 'ERROR: |runtime error:|WARNING: ThreadSanitizer|SUMMARY: ' \
                           -r "$logs" 2>/dev/null | sort)
  ((${#reports[@]})) || return 0
  echo "sanitize.sh: ${#reports[@]} sanitizer report(s) in $logs:" >&2
  for f in "${reports[@]}"; do
    echo "---- $f" >&2
    head -n 60 "$f" >&2
  done
  return 1
}

# canary DIR MODE PATTERN: runs DIR's sanitizer_canary with its planted error MODE under
# the options exported for the tests; status 0 when a report matching PATTERN (an ERE) is
# in DIR/sanitizer-logs. The logs are cleared afterwards, for the tests.
canary() {
  local logs="$1/sanitizer-logs" found=1
  "$1/convguard_sanitizer_canary" "$2" >/dev/null 2>&1 || true
  grep -qE "$3" -r "$logs" 2>/dev/null && found=0
  rm -rf "$logs" && mkdir -p "$logs"
  return $found
}

status=0

if ((run_asan)); then
  # Left out of the ASan run: ctest names (a regular expression) and the reason, one line
  # each, printed when the run starts. Everything else must pass.
  excluded_re=() excluded_why=()
  exclude() { excluded_re+=("$1"); excluded_why+=("$2"); }
  exclude '^ProbeEngine\.WorkerCapsTurnRunawaysIntoVerdictsThatNameTheCap$' \
    "caps a worker's address space (RLIMIT_AS), which no sanitized program starts under: this build leaves that cap off (tests/sanitizers/sanitizer_hooks.cc); the regular run tests it"
  exclude '^(TorchWorkerProtocol\.(UnreadableOrBadFaultRulesAreFatalMessages|SpeaksTheProtocolThroughJunkAndSplitFrames)|TorchWorkerFaults\..*|TorchBackendEngine\..*|PlanRunCli\.PlanOnTheTorchBackendReadsTheStackFromAWorker)$' \
    "run the PyTorch worker: the unsanitized python3 cannot load the ASan-built libconvguard_check.so (ASan must be the first library), and with libasan in LD_PRELOAD ASan fails its own CHECK at PyTorch's first C++ exception (no __cxa_throw to intercept); the C API runs sanitized in CheckCapi.*"
  exclude '^PythonTorch\.(SeedLayerTest|TorchvisionTest|BadInputTest)$' \
    "a fifth of the run's time, spent training and exporting models in the unsanitized interpreter; the C++ they reach (scan of a layers file, --json, plans) runs sanitized in PatternCli.*, ReportCli.*, PlanRunCli.*"
  SECONDS=0
  configure "$ASAN_BUILD" address,undefined -DCONVGUARD_ORT_PYTHON="$ORT_PYTHON"
  mapfile -t suites < <(suites_labelled 'unit|integration' "$ASAN_BUILD")
  ((${#suites[@]})) || { echo "sanitize.sh: found no test suites in $ASAN_BUILD/build.ninja" >&2; exit 1; }
  # Registered as one ctest test (one PostgreSQL server for the whole binary), not through
  # gtest_discover_tests: present when the build has the PostgreSQL store.
  for pg_suite in pg_store_tests pg_queue_tests; do
    if grep -q "^build tests/$pg_suite:" "$ASAN_BUILD/build.ninja"; then suites+=("$pg_suite"); fi
  done
  echo "== building convguard_cli misbehaving_worker convguard_check ${suites[*]} with $JOBS jobs"
  cmake --build "$ASAN_BUILD" -j "$JOBS" --target convguard_cli misbehaving_worker convguard_check \
    convguard_sanitizer_canary "${suites[@]}" || exit 1
  echo "== ASan build: ${SECONDS}s"

  logs="$(cd "$ASAN_BUILD" && pwd)/sanitizer-logs"
  rm -rf "$logs" && mkdir -p "$logs"
  # Every report goes to a file of its own (log_path.<pid>) and ends the process
  # (halt_on_error; -fno-sanitize-recover=undefined at compile time).
  # handle_segv=0, handle_sigbus=0, handle_sigfpe=0, handle_abort=0: a worker that crashes
  # on purpose (the fault rules' `segv` writes to address 0x10, `abort` calls abort()) dies
  # of its own signal, so the verdict stays CRASH(SIGSEGV) or CRASH(SIGABRT) as in the
  # regular build, instead of ASan's report and exit status; ASan finds its memory errors
  # by instrumentation, not by catching the signal, so nothing is lost but a stack for a
  # wild crash (which still fails its test).
  # allocator_may_return_null=1: the `oom` fault asks new(nothrow) for 2^60 bytes to fail
  # as a real out-of-memory does; ASan would report the size and stop instead.
  # check_initialization_order, strict_init_order: static initialisers that use another
  # file's globals. detect_leaks=1: LeakSanitizer at every process's exit (a worker
  # killed with SIGKILL, by design, never gets there and is not checked).
  export ASAN_OPTIONS="log_path=$logs/asan:halt_on_error=1:detect_leaks=1:handle_segv=0:handle_sigbus=0:handle_sigfpe=0:handle_abort=0:allocator_may_return_null=1:check_initialization_order=1:strict_init_order=1:detect_stack_use_after_return=0"
  export UBSAN_OPTIONS="log_path=$logs/ubsan:halt_on_error=1:print_stacktrace=1:handle_segv=0:handle_sigbus=0:handle_sigfpe=0:handle_abort=0"
  export LSAN_OPTIONS="suppressions=$supp/lsan.supp:print_suppressions=0"
  # A planted error of each kind must be reported, or a clean run would prove nothing.
  canary "$ASAN_BUILD" heap-overflow 'ERROR: AddressSanitizer: heap-buffer-overflow' ||
    { echo "sanitize.sh: ASan did not report the canary's heap overflow in $logs" >&2; exit 1; }
  canary "$ASAN_BUILD" undefined 'runtime error: .*[Ss]igned integer overflow' ||
    { echo "sanitize.sh: UBSan did not report the canary's overflow in $logs" >&2; exit 1; }
  if ! canary "$ASAN_BUILD" leak 'ERROR: LeakSanitizer: detected memory leaks'; then
    # LeakSanitizer stops the world with ptrace; some containers forbid it.
    echo "sanitize.sh: LeakSanitizer does not work on this machine (the canary's leak went" \
      "unreported): leaks are not checked in this run" >&2
    ASAN_OPTIONS=${ASAN_OPTIONS/detect_leaks=1/detect_leaks=0}
  fi
  echo "== ASan + UBSan run: ctest -L 'unit|integration' with $JOBS jobs, leaving out:"
  for i in "${!excluded_re[@]}"; do echo "   ${excluded_re[$i]}: ${excluded_why[$i]}"; done
  exclude_re=$(IFS='|'; echo "${excluded_re[*]}")
  SECONDS=0
  ctest_args=(--test-dir "$ASAN_BUILD" -L 'unit|integration' --output-on-failure -j "$JOBS")
  [ -z "$exclude_re" ] || ctest_args+=(-E "$exclude_re")
  [ -z "$regex" ] || ctest_args+=(-R "$regex")
  CONVGUARD_REQUIRE_CHROMIUM=${CONVGUARD_REQUIRE_CHROMIUM:-0} ctest "${ctest_args[@]}" || status=1
  findings "$ASAN_BUILD" || status=1
  echo "== ASan + UBSan tests: ${SECONDS}s"
  unset ASAN_OPTIONS UBSAN_OPTIONS LSAN_OPTIONS
fi

if ((run_tsan)); then
  SECONDS=0
  configure "$TSAN_BUILD" thread -DCONVGUARD_ENABLE_ONNX=OFF
  echo "== building store_tests inject_tests with $JOBS jobs"
  cmake --build "$TSAN_BUILD" -j "$JOBS" --target store_tests inject_tests convguard_sanitizer_canary ||
    exit 1
  echo "== TSan build: ${SECONDS}s"
  logs="$(cd "$TSAN_BUILD" && pwd)/sanitizer-logs"
  rm -rf "$logs" && mkdir -p "$logs"
  # handle_segv=0, handle_abort=0, allocator_may_return_null=1: as for ASan above (the
  # fault-injection tests crash and fail allocations on purpose, in death-test children).
  export TSAN_OPTIONS="log_path=$logs/tsan:halt_on_error=1:second_deadlock_stack=1:handle_segv=0:handle_sigbus=0:handle_abort=0:allocator_may_return_null=1:suppressions=$supp/tsan.supp"
  canary "$TSAN_BUILD" race 'WARNING: ThreadSanitizer: data race' ||
    { echo "sanitize.sh: TSan did not report the canary's data race in $logs" >&2; exit 1; }
  SECONDS=0
  # The whole of both suites, each in one process (the threaded tests among them:
  # SqliteStoreTest.ConcurrentFirstOpensMigrateOnce, .TwoConnectionsInThreadsNeverClaim-
  # TheSameKeyTwice, InjectingBackendTest.ConcurrentCallsGetDistinctPositions).
  for suite in store_tests inject_tests; do
    echo "== TSan run: $suite"
    (cd "$TSAN_BUILD/tests" && CONVGUARD_CACHE_DIR="$(pwd)/../test-identity-cache" \
       "./$suite" --gtest_brief=1) || status=1
  done
  findings "$TSAN_BUILD" || status=1
  echo "== TSan tests: ${SECONDS}s"
  unset TSAN_OPTIONS
fi

exit $status
