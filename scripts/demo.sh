#!/usr/bin/env bash
# The demo (make demo): build the 3-host namespace lab "fab", apply playbooks/site.yml to it, and print the
# connectivity report from real pings. Re-runnable: a second run changes nothing (changed=0).
# The lab stays up afterwards for a look around (ip netns list; nsenter --net=/run/netns/fab-web1 ip addr);
# `make demo-down` removes it.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
export ANSIBLE_COLLECTIONS_PATH="$PWD/.build/collections"
export ANSIBLE_CONFIG="$PWD/ansible.cfg"
export ANSIBLE_CALLBACK_RESULT_FORMAT=yaml   # the report is a list of lines: one table row a line
[ "$(id -u)" -eq 0 ] || { echo "demo: needs root (it makes network namespaces)" >&2; exit 1; }

name=fab
inventory=$(python lab/lab.py up --name "$name")
echo "demo: lab '$name' is up (inventory $inventory)"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
start=$(date +%s.%N)
set +e
# the lab's outside router (lab/lab.py) is what the report checks the way out against; the product has no default
ansible-playbook -i "$inventory" playbooks/site.yml -e '{"netstitch_probe_outside": ["198.51.100.1"]}' "$@" 2>&1 \
  | tee "$log"
rc=${PIPESTATUS[0]}
set -e
elapsed=$(python -c "import sys; print('%.1f' % (float(sys.argv[2]) - float(sys.argv[1])))" "$start" "$(date +%s.%N)")
echo
echo "demo: ansible-playbook playbooks/site.yml took ${elapsed}s, exit code $rc"
python - "$log" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
m = re.search(r"TASK \[Connectivity report\][^\n]*\n(.*?)\n(?:TASK|PLAY) \[", text, re.S)
if m:
    print("demo: connectivity report (real pings from inside each container):")
    for line in m.group(1).splitlines():
        line = line.strip()
        if line.startswith("- "):
            print("  " + line[2:].strip("'"))
recap = re.findall(r"^(\S+)\s+: ok=(\d+)\s+changed=(\d+).*failed=(\d+)", text, re.M)
for host, ok, changed, failed in recap:
    print("demo: %-8s ok=%s changed=%s failed=%s" % (host, ok, changed, failed))
PY
if [ "$rc" -eq 0 ]; then
  echo "demo: done. The lab stays up; remove it with: make demo-down"
fi
exit "$rc"
