#!/usr/bin/env bash
# scripts/multi-gpu-sweep.sh — ResNet-50's layers x every algorithm of a GPU backend
# (cuDNN unless BACKEND says otherwise) on one GPU and on every GPU of the machine, side by
# side in one run: the speed-up of a multi-GPU sweep, without a fault and with a real GPU
# hang injected, and a hang injected on one card only.
#
#   bash scripts/multi-gpu-sweep.sh BIN OUT
#
# BIN is a convguard built with cuDNN (or one that finds PyTorch, for BACKEND=torch), OUT a folder for the stores, tables and logs. Every
# sweep starts from an empty store (nothing is skipped as known). Configurations run in
# rounds (1 GPU, then all GPUs, REPEATS times), so drift between them shows as spread.
#
#   nofault  no rules
#   hang     spin when k == 2048 && algo == "implicit-gemm"  (identical cards stay one
#            stack sharing one queue: the hang happens on whichever card takes the problem)
#   device1  spin when device == 1 && k == 2048 && algo == "implicit-gemm"  (all GPUs
#            only: card 1 hangs, card 0 does not; the rule reads `device`, so the cards
#            are two stacks and each sweeps every layer)
#
# Environment: BACKEND (default cudnn; torch: PyTorch's variants, the injected hang then on
# its "default" variant), REPEATS (default 2), LIST (default tests/inputs/resnet50.list), CONFIGS (the
# sweeps to run, default "nofault hang device1"), WIDE=1 (every layer of the list in f32,
# f16 and bf16 and in all three directions: 9 problems per layer, so that probing rather
# than worker start-up dominates).
# Prints one summary line per sweep and a table of medians; writes OUT/summary.md.
# Exit status: 0 done; 1 a sweep failed; 2 bad usage or fewer than two GPUs.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [ $# -ne 2 ] || [ ! -x "$1" ]; then
  echo "usage: bash scripts/multi-gpu-sweep.sh BIN OUT   (BIN: a convguard built with cuDNN)" >&2
  exit 2
fi
BIN=$1
OUT=$2
REPEATS=${REPEATS:-2}
BACKEND=${BACKEND:-cudnn}
case $BACKEND in
  cudnn) hang_algo=implicit-gemm ;;
  torch) hang_algo=default ;;
  *) echo "BACKEND='$BACKEND' is not a GPU backend this script knows (allowed: cudnn, torch)" >&2; exit 2 ;;
esac
LIST=${LIST:-$ROOT/tests/inputs/resnet50.list}
CONFIGS=${CONFIGS:-nofault hang device1}
for c in $CONFIGS; do
  case $c in nofault | hang | device1) ;; *) echo "CONFIGS: '$c' is unknown (allowed: nofault hang device1)" >&2; exit 2 ;; esac
done
case $REPEATS in '' | *[!0-9]* | 0) echo "REPEATS='$REPEATS' is not a positive count" >&2; exit 2 ;; esac
[ -f "$LIST" ] || { echo "problem list '$LIST' not found" >&2; exit 2; }
gpus=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU ' || true)
if [ "${gpus:-0}" -lt 2 ]; then
  echo "multi-gpu-sweep: this machine has ${gpus:-0} GPU(s); two or more are needed" >&2
  exit 2
fi
mkdir -p "$OUT" || exit 2
if [ "${WIDE:-0}" = 1 ]; then
  # Each list line is an f32 NCHW forward problem (its text ends in _f32_nchw_fwd).
  sed 's/#.*//' "$LIST" | grep -E '_f32_nchw_fwd *$' | sed 's/ *$//' | while read -r p; do
    for dt in f32 f16 bf16; do
      for dir in fwd bwd-data bwd-weights; do echo "${p%_f32_nchw_fwd}_${dt}_nchw_${dir}"; done
    done
  done > "$OUT/wide.list"
  LIST=$OUT/wide.list
  echo "multi-gpu-sweep: $(wc -l < "$LIST") problems (every dtype and direction of each layer)"
fi

printf 'emulation: %s with a spinning kernel injected on 2048-output-channel layers\nspin when k == 2048 && algo == "%s"\n' \
  "$BACKEND" "$hang_algo" > "$OUT/hang.rules"
printf 'emulation: %s with a spinning kernel injected on card 1 only\nspin when device == 1 && k == 2048 && algo == "%s"\n' \
  "$BACKEND" "$hang_algo" > "$OUT/device1.rules"

status=0
results=()  # "config devices seconds counts"

# sweep NAME RULES DEVICES(0|all) ROUND
sweep() {
  local name=$1 rules=$2 devices=$3 round=$4
  local tag="$name-$devices-$round"
  local args=(sweep --list "$LIST" --backend "$BACKEND" --algo '*' --db "$OUT/$tag.sqlite" --table markdown)
  [ -n "$rules" ] && args+=(--inject "$OUT/$rules")
  [ "$devices" = 0 ] && args+=(--devices 0)
  rm -f "$OUT/$tag.sqlite" "$OUT/$tag.sqlite-wal" "$OUT/$tag.sqlite-shm"
  local t0 t1 rc
  t0=$(date +%s.%N)
  "$BIN" "${args[@]}" > "$OUT/$tag.md" 2> "$OUT/$tag.log"
  rc=$?
  t1=$(date +%s.%N)
  local secs counts hung
  secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
  counts=$(grep -oE '\| (OK|SLOW|HANG|CRASH|WRONG|MISTRUSTED|ERROR|UNSUPPORTED|OOM) \|' "$OUT/$tag.md" |
           tr -d '| ' | sort | uniq -c | awk '{printf "%s%s %s", (NR>1?", ":""), $2, $1}')
  # Which card each hang happened on: its repro line names the device (--devices D).
  hung=$("$BIN" db show --db "$OUT/$tag.sqlite" --verdict HANG --long 2>/dev/null |
         grep -oE -- '--devices [0-9]+' | awk '{print $2}' | sort | uniq -c |
         awk '{printf "%sGPU %s: %s", (NR>1?", ":""), $2, $1}')
  if [ "$rc" != 0 ]; then
    echo "multi-gpu-sweep: $tag FAILED with status $rc (see $OUT/$tag.log)"
    tail -n 5 "$OUT/$tag.log"
    status=1
    return
  fi
  local stacks
  stacks=$(grep -cE 'stack [0-9a-f]+' "$OUT/$tag.log" || true)
  echo "multi-gpu-sweep: $tag: $secs s; $counts${hung:+; hangs on $hung}; stack lines in log: $stacks"
  results+=("$name $devices $secs")
}

for round in $(seq 1 "$REPEATS"); do
  for name in $CONFIGS; do
    case $name in
      nofault) sweep nofault "" 0 "$round"; sweep nofault "" all "$round" ;;
      hang) sweep hang hang.rules 0 "$round"; sweep hang hang.rules all "$round" ;;
      device1) sweep device1 device1.rules all "$round" ;;
    esac
  done
done

# Medians and the speed-up (1-GPU median / all-GPU median), per configuration.
{
  echo "| sweep | 1 GPU (s, median of $REPEATS) | $gpus GPUs (s, median of $REPEATS) | speed-up |"
  echo "| --- | --- | --- | --- |"
  for name in $CONFIGS; do
    one=$(printf '%s\n' "${results[@]}" | awk -v n="$name" '$1 == n && $2 == "0" {print $3}' | sort -n |
          awk '{a[NR] = $1} END { if (NR) print a[int((NR + 1) / 2)] }')
    all=$(printf '%s\n' "${results[@]}" | awk -v n="$name" '$1 == n && $2 == "all" {print $3}' | sort -n |
          awk '{a[NR] = $1} END { if (NR) print a[int((NR + 1) / 2)] }')
    ratio=$(awk -v a="${one:-0}" -v b="${all:-0}" 'BEGIN { if (a > 0 && b > 0) printf "%.2fx", a / b; else print "-" }')
    echo "| $name | ${one:--} | ${all:--} | $ratio |"
  done
} | tee "$OUT/summary.md"
exit $status
