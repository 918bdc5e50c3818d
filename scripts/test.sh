#!/usr/bin/env bash
# Every test, in order of cost. Called by `make test` (after set-up) and so by .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
export ANSIBLE_COLLECTIONS_PATH="$PWD/.build/collections"
export ANSIBLE_CONFIG="$PWD/ansible.cfg"
start=$(date +%s)
step() { printf '\n=== %s (%ds elapsed)\n' "$1" $(( $(date +%s) - start )); }

step "schema and generated docs in sync"
python scripts/gen_schema.py --check
python scripts/gen_docs.py --check
step "unit and kernel integration tests"
python -m pytest -q -p no:cacheprovider tests/
for extra in scripts/sanity.sh scripts/molecule.sh scripts/containerhosts.sh; do
  if [ -x "$extra" ]; then step "$extra"; "$extra"; fi
done
step "benchmark smoke (10 and 100 endpoints: a no-op re-apply makes zero kernel writes, prune leaves nothing)"
if [ "$(id -u)" -eq 0 ]; then bash bench/run.sh --smoke; else echo "skipped: the benchmark needs root"; fi
step "all tests passed"
