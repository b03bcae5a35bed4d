#!/usr/bin/env bash
# convguard set-up: installs what is missing from Debian's archive, configures, builds,
# then runs the main job or the whole test suite.
#
#   bash scripts/setup.sh main    # install + build + the main job (the default)
#   bash scripts/setup.sh test    # install + build + format check + every ctest test
#                                 # + the pip package, installed and tested + fuzzing
#                                 # + the tests under ASan/UBSan and TSan
#   bash scripts/setup.sh build   # install + build only
#
# Between the packages and configuring, onnxruntime (the runtime that verifies fixed
# models: scripts/ort_compare.py, docs/verification.md) is pip-installed from PyPI, pinned,
# into the virtual environment $BUILD_DIR/venv, made from Debian's /usr/bin/python3 with
# --system-site-packages (it uses Debian's numpy and onnx); CMake is told its interpreter
# (CONVGUARD_ORT_PYTHON). PyPI is the only place anything comes from besides Debian.
#
# Idempotent: packages already installed are not touched, `apt-get update` runs at most
# once and only when something is missing, the venv is made only when it is missing (or
# was not made from /usr/bin/python3), pip runs only when the installed onnxruntime is not
# the pinned version, and the build directory is reused.
#
# In test mode, after ctest, the pip package (pyproject.toml) is checked the way a user
# gets it: `pip install .` into the virtual environment $BUILD_DIR/pip-venv, made afresh
# from /usr/bin/python3 with --system-site-packages (Debian's python3-torch), compiling in
# $BUILD_DIR/pip/setup-test (kept, so a second run compiles nothing; hence without pip's
# build isolation, the build backend scikit-build-core being pip-installed from PyPI into
# the venv, pinned by pyproject.toml); then tests/python run from a scratch folder outside
# the source tree with CONVGUARD_TEST_INSTALLED=1, so that `import convguard` is the
# installed copy.
# Environment: BUILD_DIR (default: build), JOBS (default: nproc),
# ONNXRUNTIME_VERSION (default: 1.32.0).
set -euo pipefail

mode=${1:-main}
case "$mode" in
  main|test|build) ;;
  -h|--help)
    sed -n '2,31p' "$0" | sed 's/^# \{0,1\}//'
    exit 0 ;;
  *)
    echo "setup.sh: unknown mode '$mode' (allowed: main, test, build)" >&2
    exit 2 ;;
esac

cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
# stage TEXT: prints "== [m:ss] TEXT", the time since the script started, so that a slow
# stage shows in any log of a run.
SECONDS=0
stage() { printf '== [%d:%02d] %s\n' $((SECONDS / 60)) $((SECONDS % 60)) "$*"; }
trap 'stage "finished (status $?)"' EXIT
JOBS=${JOBS:-$(nproc)}

# Debian packages the build and the tests need, each named: packages are installed with
# --no-install-recommends, so a package that is only a Recommends of another is never
# pulled in. ocl-icd-opencl-dev is such a one: Debian's oneDNN CMake package calls
# find_package(OpenCL REQUIRED), yet libdnnl-dev only recommends the OpenCL loader; and
# libprotobuf-dev, which ONNX's CMake package needs but libonnx-dev does not depend on.
# postgresql is the server the PostgreSQL store's tests start in a temporary folder.
packages=(
  g++ cmake ninja-build pkg-config clang-format
  libgtest-dev libgmock-dev libbenchmark-dev
  libsqlite3-dev sqlite3 nlohmann-json3-dev
  libpq-dev postgresql
  libdnnl-dev ocl-icd-opencl-dev
  libonnx-dev libprotobuf-dev protobuf-compiler
  python3-torch python3-torchvision
  python3-venv python3-onnx python3-numpy
  clang libclang-rt-14-dev
  chromium
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if ((${#missing[@]})); then
  stage "installing: ${missing[*]}"
  sudo_cmd=()
  if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo); fi
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get update -qq
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# onnxruntime, pinned, in a venv inside the build directory. Debian's python3 is externally
# managed (pip may not install into it), and the first python3 on PATH may be another
# interpreter, without Debian's onnx: the venv is made from /usr/bin/python3 by name.
# python3-venv brings ensurepip's wheels as Depends, not Recommends, and python3-onnx
# depends on python3-numpy and python3-protobuf; pip adds a newer protobuf inside the venv,
# under which Debian's onnx still imports.
ONNXRUNTIME_VERSION=${ONNXRUNTIME_VERSION:-1.32.0}
venv="$BUILD_DIR/venv"
if ! "$venv/bin/python" -c 'import sys; sys.exit(sys.base_prefix != "/usr")' 2>/dev/null; then
  stage "making the venv $venv (from /usr/bin/python3)"
  /usr/bin/python3 -m venv --clear --system-site-packages "$venv"
fi
ort_installed=$("$venv/bin/python" -c \
  'import importlib.metadata as m; print(m.version("onnxruntime"))' 2>/dev/null || true)
if [ "$ort_installed" != "$ONNXRUNTIME_VERSION" ]; then
  stage "installing onnxruntime==$ONNXRUNTIME_VERSION into $venv (had: ${ort_installed:-none})"
  "$venv/bin/pip" install --quiet --no-cache-dir --disable-pip-version-check \
    "onnxruntime==$ONNXRUNTIME_VERSION"
fi
# An absolute path without resolving links: bin/python is a link out of the venv.
ort_python="$(cd "$venv" && pwd)/bin/python"

stage "configuring ($BUILD_DIR)"
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCONVGUARD_REQUIRE_POSTGRES=ON -DCONVGUARD_ORT_PYTHON="$ort_python"
stage "building with $JOBS jobs"
cmake --build "$BUILD_DIR" -j "$JOBS"

case "$mode" in
  build) ;;
  main)
    # The seed report's problems on the emulated RDNA1 stack: the 48x48 and 64x64 cases
    # hang for real inside their workers and are killed from outside; verdicts go to a
    # SQLite store in the build directory (a second run finds them there).
    stage "main job: the seed report's problems on the emulated RDNA1 stack"
    "$BUILD_DIR/convguard" sweep --backend emulated-rdna1 \
      --list tests/inputs/seed.list --db "$BUILD_DIR/verdicts.sqlite"
    # The seed report's "Models That Work" table, measured: every zoo model (tests/inputs/zoo)
    # scanned on the same stack, probing what the store does not know yet. The exit status
    # only says that models need rewrites, which is the point of the table.
    stage "main job: Models That Work, measured on the emulated RDNA1 stack"
    "$BUILD_DIR/convguard" scan tests/inputs/zoo/*.onnx --backend emulated-rdna1 --probe --quiet \
      --markdown --db "$BUILD_DIR/verdicts.sqlite" || [ $? -le 23 ]
    ;;
  test)
    # The checked-in .clang-format is the house style; a file that strays fails here,
    # before any test runs. (Fix with: clang-format -i FILE.)
    stage "checking formatting (clang-format $(clang-format --version | grep -o '[0-9][0-9.]*' | head -n1))"
    if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
      git ls-files -z '*.cc' '*.h' '*.cu' '*.cuh' | xargs -0 clang-format --dry-run --Werror
    else
      find include src tests bench \( -name '*.cc' -o -name '*.h' -o -name '*.cu' -o -name '*.cuh' \) -print0 |
        xargs -0 clang-format --dry-run --Werror
    fi
    stage "running every test"
    # Chromium was installed above, so the HTML report test must not skip for want of it.
    CONVGUARD_REQUIRE_CHROMIUM=1 ctest --test-dir "$BUILD_DIR" --output-on-failure -j "$JOBS"
    # The pip package as a user installs it (README.md, "Installing with pip"), tested from
    # a scratch folder: from inside the source tree, `import convguard` could find
    # python/convguard instead of the installed copy. The venv is made afresh every run.
    # Its CMake build folder is kept, and is its own (a user's build/pip/<tag> may have
    # cached another venv's interpreter), so that a repeated run compiles nothing; that needs
    # pip's build isolation off: an isolated build runs scikit-build-core from a new
    # temporary folder every time, and scikit-build-core then deletes the CMake cache and
    # every object file. So the build backend, pinned by pyproject.toml, is installed into
    # the venv first.
    # CUDA stays on as in a user's build, where the toolkit is present: it costs a cold build
    # about 4 s of configuring and 4 s of compiling (of about 85 s on 2 cores), and it
    # checks that the installed binary, linked to the CUDA runtime and cuDNN, finds them
    # through its install RPATH and starts without a GPU.
    stage "pip install . into a fresh venv and test the installed package"
    pip_venv="$BUILD_DIR/pip-venv"
    /usr/bin/python3 -m venv --clear --system-site-packages "$pip_venv"
    pip_venv=$(cd "$pip_venv" && pwd)
    pip_build=$(cd "$BUILD_DIR" && pwd)/pip/setup-test
    build_requires=$("$pip_venv/bin/python" -c \
      'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["build-system"]["requires"]))')
    mapfile -t build_requires <<<"$build_requires"
    "$pip_venv/bin/pip" install --quiet --no-cache-dir --disable-pip-version-check \
      "${build_requires[@]}"
    CMAKE_BUILD_PARALLEL_LEVEL="$JOBS" "$pip_venv/bin/pip" install --no-cache-dir \
      --disable-pip-version-check --no-build-isolation --config-settings=build-dir="$pip_build" .
    stage "testing the installed package (tests/python)"
    repo=$(pwd)
    scratch=$(mktemp -d)
    pip_tests=0
    (cd "$scratch" && CONVGUARD_TEST_INSTALLED=1 "$pip_venv/bin/python" -m unittest discover \
      -s "$repo/tests/python" -t "$repo/tests/python" -v) || pip_tests=$?
    rm -rf "$scratch"
    if [ "$pip_tests" -ne 0 ]; then exit "$pip_tests"; fi
    # The parsers of files users hand over (MIOpen logs, ONNX models) under libFuzzer with
    # sanitizers: the same 200000 inputs per target every run (scripts/fuzz.sh).
    stage "fuzzing the parsers"
    FUZZ_BUILD_DIR="$BUILD_DIR-fuzz" bash scripts/fuzz.sh
    # The library, the CLI (so every C++ worker) and the unit and integration tests under
    # AddressSanitizer + UndefinedBehaviorSanitizer, then the threaded tests of the store and
    # of fault injection under ThreadSanitizer, each in a build directory of its own
    # (scripts/sanitize.sh; docs/sanitizers.md says what is left out and why).
    stage "sanitizers"
    ASAN_BUILD_DIR="$BUILD_DIR-asan" TSAN_BUILD_DIR="$BUILD_DIR-tsan" ORT_PYTHON="$ort_python" \
      CONVGUARD_REQUIRE_CHROMIUM=1 JOBS="$JOBS" bash scripts/sanitize.sh
    ;;
esac
