#!/usr/bin/env bash
# netstitch benchmarks: the one command (also `make bench`). Needs root (network namespaces), the dev venv
# (scripts/setup.sh --dev), and for the full run the Docker Engine, iperf3 and tincd.
#
#   bash bench/run.sh            full run (about 15 minutes): writes bench/results/results.json, then
#                                docs/benchmarks.md, docs/benchmarks.png and docs/benchmarks.json
#   bash bench/run.sh --smoke    10 and 100 endpoints once, a small planner run; asserts the no-op makes no kernel
#                                write and prune leaves nothing (under a minute); writes bench/results/smoke.json only
#   extra arguments go to bench/bench.py (see its --help), e.g. --sections apply --sizes 10,100 --reps 5
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -ne 0 ]; then echo "bench: run as root (it creates network namespaces)" >&2; exit 1; fi
[ -x .venv/bin/python ] || bash scripts/setup.sh --dev
export PATH="$PWD/.venv/bin:$PATH"
smoke=0
for a in "$@"; do [ "$a" = "--smoke" ] && smoke=1; done
.venv/bin/python bench/bench.py "$@"
if [ "$smoke" = 0 ]; then
  .venv/bin/python bench/report.py bench/results/results.json
fi
