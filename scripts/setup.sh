#!/usr/bin/env bash
# convguard set-up: installs what is missing from Debian's archive, configures, builds,
# then runs the main job or the whole test suite.
#
#   bash scripts/setup.sh main    # install + build + the main job (the default)
#   bash scripts/setup.sh test    # install + build + every ctest test
#   bash scripts/setup.sh build   # install + build only
#
# Idempotent: packages already installed are not touched, `apt-get update` runs at most
# once and only when something is missing, and the build directory is reused.
# Environment: BUILD_DIR (default: build), JOBS (default: nproc).
set -euo pipefail

mode=${1:-main}
case "$mode" in
  main|test|build) ;;
  -h|--help)
    sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'
    exit 0 ;;
  *)
    echo "setup.sh: unknown mode '$mode' (allowed: main, test, build)" >&2
    exit 2 ;;
esac

cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
JOBS=${JOBS:-$(nproc)}

# Debian packages the build and the tests need.
packages=(
  g++ cmake ninja-build pkg-config
  libgtest-dev libgmock-dev libbenchmark-dev
  libsqlite3-dev sqlite3 nlohmann-json3-dev
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if ((${#missing[@]})); then
  echo "== installing: ${missing[*]}"
  sudo_cmd=()
  if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo); fi
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get update -qq
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

echo "== configuring ($BUILD_DIR)"
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo
echo "== building with $JOBS jobs"
cmake --build "$BUILD_DIR" -j "$JOBS"

case "$mode" in
  build) ;;
  main)
    echo "== main job: the seed report's problems, described"
    "$BUILD_DIR/convguard" describe \
      n1_c16_h32_w32_k32_r3_s3_p1 \
      16-48-48-3x3-32-48-48-1-1x1-1x1-1x1-0-NCHW-FP32-F \
      'conv -n 1 -c 16 -H 64 -W 64 -k 32 -y 3 -x 3 -p 1 -q 1 -u 1 -v 1 -l 1 -j 1 -g 1 -F 1' \
      "--dir=FWD_D mb1ic3ih64oc16oh64kh3ph1"
    ;;
  test)
    echo "== running every test"
    ctest --test-dir "$BUILD_DIR" --output-on-failure -j "$JOBS"
    ;;
esac
