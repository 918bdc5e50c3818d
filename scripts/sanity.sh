#!/usr/bin/env bash
# Sanity of the collection as Galaxy would see it:
#   1. copy the git-tracked tree (plus untracked, not ignored files) to <tmp>/ansible_collections/netstitch/fabric
#   2. ansible-test sanity --python 3.11 there (no Docker: ansible-test's own per-test virtualenvs, from PyPI), on the
#      whole tree, with tests/sanity/ignore-<ansible-core>.txt (no pep8/pylint entries: Automation Hub refuses them)
#   3. ansible-lint there (.ansible-lint; offline)
#   4. ansible-galaxy collection build, install the artifact into a temp path, ansible-doc every module from there
# Prints the time of each step. Usage: scripts/sanity.sh [ansible-test sanity options, e.g. --test pylint]
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD
export PATH="$top/.venv/bin:$PATH"
unset ANSIBLE_COLLECTIONS_PATH ANSIBLE_CONFIG    # the copy, not the checkout, is what gets checked
py=3.11
t0=$(date +%s)
step_start=$t0
timings=()
step() {
  local now; now=$(date +%s)
  [ -n "${current:-}" ] && timings+=("$(printf '%-28s %4ds' "$current" $(( now - step_start )))")
  current=$1; step_start=$now
  [ -n "$current" ] && printf '\n=== sanity.sh: %s\n' "$current"
  return 0
}

work=$(mktemp -d "${TMPDIR:-/tmp}/netstitch-sanity.XXXXXX")
trap 'rm -rf "$work"' EXIT
coll=$work/ansible_collections/netstitch/fabric

step "copy the tree"
mkdir -p "$coll"
git ls-files -z --cached --others --exclude-standard \
  | while IFS= read -r -d '' f; do [ -e "$f" ] || [ -L "$f" ] && printf '%s\0' "$f"; done \
  | tar --null -T - -cf - | tar -C "$coll" -xf -
echo "$(find "$coll" -type f | wc -l) files in $coll"

# ansible-test bootstraps pip in each sanity virtualenv with a script it downloads from ci-files.testing.ansible.com,
# which this machine cannot reach (only PyPI is). An equivalent bootstrap goes where ansible-test looks for its cached
# copy: ensurepip, then the wanted pip version from PyPI with the same arguments get-pip.py takes.
pip_version=$(python - <<'PY'
import re, ansible_test, os
p = os.path.join(os.path.dirname(ansible_test.__file__), "_data", "requirements", "ansible-test.txt")
text = open(p).read() if os.path.exists(p) else ""
m = re.search(r"^pip\s*==\s*([0-9.]+)", text, re.M)
if not m:
    from ansible_test._internal import python_requirements as r
    src = open(r.__file__).read()
    m = re.search(r"pip_version\s*=\s*'([0-9.]+)'", src)
print(m.group(1) if m else "24.2")
PY
)
bootstrap=$HOME/.ansible/test/cache/get_pip_${pip_version//./_}.py
if [ ! -f "$bootstrap" ]; then
  mkdir -p "$(dirname "$bootstrap")"
  cat > "$bootstrap" <<'PY'
# Stand-in for get-pip.py (written by netstitch's scripts/sanity.sh): ensurepip, then pip install the arguments.
import subprocess
import sys

args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
subprocess.check_call([sys.executable, "-m", "ensurepip", "--default-pip"], stdout=subprocess.DEVNULL)
subprocess.check_call([sys.executable, "-m", "pip", "install", "--upgrade"] + args)
PY
fi

step "ansible-test sanity"
# the whole tree: the collection's content and the developer tools around it (lab/, bench/, scripts/, tests/)
(cd "$coll" && ansible-test sanity --python "$py" --color no "$@")

step "ansible-lint"
(cd "$coll" && ANSIBLE_COLLECTIONS_PATH="$work" ansible-lint --offline --nocolor -q)

step "build, install, ansible-doc"
(cd "$coll" && ansible-galaxy collection build --force --output-path "$work/dist" >/dev/null)
artifact=$(ls "$work"/dist/netstitch-fabric-*.tar.gz)
echo "built $(basename "$artifact") ($(du -k "$artifact" | cut -f1) KiB, $(tar -tzf "$artifact" | wc -l) entries)"
if tar -tzf "$artifact" | grep -E '(^|/)(\.venv|\.build|\.lab|\.git|tests/output|bench/results)(/|$)'; then
  echo "sanity.sh: the artifact holds files build_ignore should have left out" >&2; exit 1
fi
# from the install only: not the checkout (which the venv's .pth file puts on sys.path) nor ./ansible.cfg's paths
export ANSIBLE_COLLECTIONS_PATH="$work/installed" ANSIBLE_COLLECTIONS_SCAN_SYS_PATH=False
cd "$work"
ansible-galaxy collection install --offline -p "$work/installed" "$artifact" >/dev/null
for f in "$coll"/plugins/modules/*.py; do
  m=$(basename "$f" .py)
  [ "$m" = "__init__" ] && continue
  out=$(ansible-doc "netstitch.fabric.$m" 2>&1) \
    || { echo "$out" >&2; echo "sanity.sh: ansible-doc netstitch.fabric.$m failed" >&2; exit 1; }
  if grep -q -E '^\[(WARNING|ERROR)\]' <<<"$out"; then echo "$out" >&2; exit 1; fi
  path=$(sed -n '1s/.*(\(.*\)).*/\1/p' <<<"$out")
  case "$path" in "$work/installed"/*) ;; *) echo "sanity.sh: $m documented from $path, not the install" >&2; exit 1;; esac
  echo "ansible-doc netstitch.fabric.$m: $(wc -l <<<"$out") lines, from the installed artifact"
done
ansible-doc -t role netstitch.fabric.fabric >/dev/null && echo "ansible-doc -t role netstitch.fabric.fabric: ok"
ansible-doc -t filter netstitch.fabric.per_host >/dev/null && echo "ansible-doc -t filter netstitch.fabric.per_host: ok"

step ""
echo
echo "sanity.sh: all passed in $(( $(date +%s) - t0 ))s"
printf '  %s\n' "${timings[@]}"
