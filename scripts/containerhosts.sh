#!/usr/bin/env bash
# Container hosts: build the host image once per machine (lab/chosts.py image: mmdebstrap from apt's archive, docker
# import, cached by recipe hash), get community.docker from PyPI's `ansible` wheel (no Galaxy), then the Molecule
# scenario "chosts" with the docker driver: create (3 hosts with systemd) -> prepare (underlay) -> converge (site.yml:
# VXLAN, tinc as systemd units, published port, link) -> idempotence -> verify (pings, a published port from the
# outside namespace, a link allowed and one refused) -> destroy. The reboot test (docker restart, restored by the
# boot unit without a playbook run) is tests/containerhosts/test_reboot.py, run by pytest.
# Skipped, saying why, where there is no Docker Engine.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
export ANSIBLE_COLLECTIONS_PATH="$PWD/.build/collections"
export ANSIBLE_CONFIG="$PWD/ansible.cfg"
export MOLECULE_NO_LOG=false
export NO_COLOR=1 ANSIBLE_NOCOLOR=1 ANSIBLE_FORCE_COLOR=0 PY_COLORS=0
export ANSIBLE_CALLBACKS_ENABLED=ansible.posix.profile_tasks   # every task with its duration, the slowest last
[ "$(id -u)" -eq 0 ] || { echo "containerhosts.sh: needs root (network namespaces, Docker)" >&2; exit 1; }
if ! docker info >/dev/null 2>&1; then echo "containerhosts.sh: skipped: no Docker Engine"; exit 0; fi
start=$(date +%s)
python lab/chosts.py collections >/dev/null
NETSTITCH_HOST_IMAGE=$(python lab/chosts.py image)
export NETSTITCH_HOST_IMAGE
echo "containerhosts.sh: image $NETSTITCH_HOST_IMAGE ready after $(( $(date +%s) - start ))s"
trap 'python lab/chosts.py down --name ch >/dev/null 2>&1 || true' EXIT
rc=0
molecule test --scenario-name chosts --destroy always || rc=$?
echo "containerhosts.sh: molecule test (chosts) exited $rc after $(( $(date +%s) - start ))s"
exit "$rc"
