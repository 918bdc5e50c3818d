#!/usr/bin/env bash
# One-stop, idempotent set-up for a fresh machine: Debian packages, the venv, the collection on the Python path.
# Usage: scripts/setup.sh [--dev]
set -euo pipefail
cd "$(dirname "$0")/.."
top=$(pwd)
dev=${1:-}

debs=(iproute2 iputils-ping iptables nftables libnftables1 tinc iperf3 busybox-static tcpdump procps util-linux make graphviz shellcheck
      dnsmasq-base libc-bin mmdebstrap bird2)
missing=()
for p in "${debs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  if [ "$(id -u)" -ne 0 ]; then echo "setup: need root to install packages" >&2; exit 1; fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

py=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv"
  "$py" -m venv .venv
fi
req=requirements-lab.txt
[ "$dev" = "--dev" ] && req=requirements-dev.txt
stamp=.venv/.installed-$(basename "$req" .txt)-$(cat requirements*.txt | sha256sum | cut -c1-12)
if [ ! -f "$stamp" ]; then
  echo "setup: installing Python packages from $req"
  .venv/bin/pip install -q --disable-pip-version-check -r "$req"
  touch "$stamp"
fi

# Make the collection importable as ansible_collections.netstitch.fabric, for Ansible and for plain Python
# (tests, bench, the CLI): a collections tree whose netstitch/fabric is this checkout.
mkdir -p .build/collections/ansible_collections/netstitch
ln -sfn "$top" .build/collections/ansible_collections/netstitch/fabric
site=$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
echo "$top/.build/collections" > "$site/netstitch-collection.pth"
# community.docker (the docker connection; + ansible.posix for Molecule's docker driver) for the container-host lab,
# extracted from PyPI's `ansible` wheel (pip download; Galaxy is not used): about 2 MB in .build/collections
if [ "$dev" = "--dev" ]; then .venv/bin/python lab/chosts.py collections >/dev/null; fi
.venv/bin/python -c 'import ansible_collections.netstitch.fabric.plugins.module_utils._netstitch' \
  || { echo "setup: the collection is not importable" >&2; exit 1; }
echo "setup: ok"
