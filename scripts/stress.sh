#!/usr/bin/env bash
# Proof that the kernel integration tests do not flake under load: run them ROUNDS times in a row (default 3) while
# one CPU-burning process per core keeps every core busy. The burners are started here and stopped by their PIDs
# (also on failure or Ctrl-C). Needs root (the tests create network namespaces) and the dev venv.
#
#   bash scripts/stress.sh [ROUNDS] [extra pytest arguments...]
#
# Prints each round's result and duration, then the total; exits non-zero if any round failed.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -ne 0 ]; then echo "stress: run as root (the tests create network namespaces)" >&2; exit 1; fi
[ -x .venv/bin/python ] || bash scripts/setup.sh --dev
rounds=${1:-3}
[ $# -gt 0 ] && shift
cores=$(nproc)
burners=()
stop_burners() {
  local p
  for p in "${burners[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${burners[@]}"; do wait "$p" 2>/dev/null || true; done
  burners=()
}
trap stop_burners EXIT
trap 'exit 130' INT TERM
for _ in $(seq "$cores"); do
  ( trap - INT TERM; while :; do :; done ) &
  burners+=("$!")
done
echo "stress: $cores CPU burners running (PIDs ${burners[*]}); load average $(cut -d' ' -f1-3 /proc/loadavg)"
start=$(date +%s)
failed=0
for r in $(seq "$rounds"); do
  t0=$(date +%s)
  if .venv/bin/python -m pytest -q -p no:cacheprovider -m "kernel and not docker" tests/integration "$@"; then
    result=passed
  else
    result=FAILED
    failed=$((failed + 1))
  fi
  echo "stress: round $r/$rounds $result in $(( $(date +%s) - t0 ))s (load average $(cut -d' ' -f1-3 /proc/loadavg))"
done
stop_burners
echo "stress: $rounds rounds, $failed failed, $(( $(date +%s) - start ))s in all, with $cores cores kept busy"
[ "$failed" -eq 0 ]
