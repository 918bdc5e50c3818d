#!/usr/bin/env bash
# Molecule: create (a 2-host namespace lab "mol") -> converge (the fabric role) -> idempotence -> verify (real pings
# via netstitch.fabric.probe) -> destroy. Exits non-zero when any step fails; the lab is removed either way.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
export ANSIBLE_COLLECTIONS_PATH="$PWD/.build/collections"
export ANSIBLE_CONFIG="$PWD/ansible.cfg"
export MOLECULE_NO_LOG=false
export NO_COLOR=1 ANSIBLE_NOCOLOR=1 ANSIBLE_FORCE_COLOR=0 PY_COLORS=0
[ "$(id -u)" -eq 0 ] || { echo "molecule.sh: needs root (the scenario makes network namespaces)" >&2; exit 1; }
trap 'python lab/lab.py down --name mol >/dev/null 2>&1 || true' EXIT
start=$(date +%s)
rc=0
molecule test --scenario-name default --destroy always || rc=$?
echo "molecule.sh: molecule test exited $rc after $(( $(date +%s) - start ))s"
exit "$rc"
