"""The collection as a user gets it: build the artifact from the git tree, check what it holds, install it into a
clean path and run every module and the role from there, with no checkout on any path.

- The artifact is built from a copy of the tracked files (as Galaxy would build it) and its contents are listed
  and checked against what a collection user needs (galaxy.yml's build_ignore).
- It is installed with `ansible-galaxy collection install` into a temporary directory.
- Ansible runs with a Python that sees the venv's packages (ansible-core, jsonschema, nftables, ...) but not the
  checkout: a fresh venv whose only .pth line is the venv's site-packages directory, so the checkout's
  netstitch-collection.pth there is never processed. The test first proves `import ansible_collections.netstitch`
  fails in it. The lab's hosts use that Python too, so every module's code comes from the installed artifact.
- The ansible-test integration targets shipped in the artifact (tests/integration/targets) run against a
  namespace lab of their own through tests/e2e/run_targets.yml: validate, prepare, apply, info, probe and the role,
  each with paired `is changed` / `is not changed` asserts.
"""

import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import uuid

import pytest

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(TOP, "lab"))
import lab as labmod  # noqa: E402

VENV_BIN = os.path.join(TOP, ".venv", "bin")

pytestmark = pytest.mark.ansible

# what a collection user needs, and nothing else (top-level entries of the artifact)
ALLOWED_TOP = {"MANIFEST.json", "FILES.json", "README.md", "LICENSE", "CHANGELOG.md", "changelogs", "docs", "examples",
               "meta", "playbooks", "plugins", "roles", "schemas", "tests", "requirements.txt", "requirements-host.txt", "bindep.txt"}
REQUIRED = ["LICENSE", "README.md", "meta/runtime.yml", "meta/execution-environment.yml", "roles/fabric/tasks/main.yml",
            "roles/fabric/meta/argument_specs.yml", "schemas/topology.schema.json", "bindep.txt",
            "tests/integration/targets/apply/tasks/main.yml"]
FORBIDDEN = re.compile(r"^(bench|lab|scripts|bin|extensions|\.ci|\.venv|\.build|\.lab|\.git)(/|$)|"
                       r"^(Makefile|MOVES\.md|ansible\.cfg|pytest\.ini|pyproject\.toml|requirements-(dev|lab)\.txt|\.ansible-lint)$|"
                       r"^tests/(unit|e2e|output)(/|$)|^tests/integration/[^/]+\.py$|"
                       r"^docs/benchmarks|^docs/[^/]*-bench\.json$|(^|/)__pycache__(/|$)|\.pyc$|^changelogs/fragments(/|$)")


def _prerequisite():
    if os.geteuid() != 0:
        return "needs root (it makes network namespaces)"
    for tool in ("ip", "nsenter", "ping", "nft", "tincd", "git"):
        if shutil.which(tool) is None:
            return "needs the %r command" % tool
    if not os.path.exists(os.path.join(VENV_BIN, "ansible-galaxy")):
        return "no ansible-galaxy in .venv (run scripts/setup.sh --dev)"
    return None


if _prerequisite():
    pytestmark = [pytest.mark.ansible, pytest.mark.skip(reason=_prerequisite())]


def run(cmd, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, check=False, **kw)
    if r.returncode != 0:
        raise AssertionError("%s failed (%d):\n%s\n%s" % (" ".join(cmd), r.returncode, r.stdout[-6000:], r.stderr[-4000:]))
    return r


def copy_tree(dest):
    """The tracked (and untracked, not ignored) files of the checkout, as sanity.sh and Galaxy see them."""
    files = run(["git", "-C", TOP, "ls-files", "-z", "--cached", "--others", "--exclude-standard"]).stdout
    for rel in files.split("\0"):
        src = os.path.join(TOP, rel)
        if not rel or not os.path.isfile(src):
            continue
        os.makedirs(os.path.dirname(os.path.join(dest, rel)), exist_ok=True)
        shutil.copy2(src, os.path.join(dest, rel))


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """Build the artifact, list it, install it; a clean Python that cannot import the checkout."""
    base = tmp_path_factory.mktemp("artifact")
    src = base / "src" / "ansible_collections" / "netstitch" / "fabric"
    copy_tree(str(src))
    run([os.path.join(VENV_BIN, "ansible-galaxy"), "collection", "build", "--force", "--output-path",
         str(base / "dist")], cwd=str(src))
    artifact = next((base / "dist").glob("netstitch-fabric-*.tar.gz"))
    with tarfile.open(str(artifact)) as t:
        names = sorted(m.name for m in t.getmembers() if m.isfile())
    cpath = base / "installed"
    env = dict(os.environ, ANSIBLE_COLLECTIONS_SCAN_SYS_PATH="False")
    env.pop("ANSIBLE_COLLECTIONS_PATH", None)
    env.pop("ANSIBLE_CONFIG", None)
    run([os.path.join(VENV_BIN, "ansible-galaxy"), "collection", "install", "--offline", "-p", str(cpath),
         str(artifact)], cwd=str(base), env=env)
    # a Python with the venv's packages but not the checkout: a .pth line naming a directory does not make Python
    # process the .pth files inside it (the venv's netstitch-collection.pth)
    venv = base / "cleanpy"
    run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    purelib = sysconfig.get_paths()["purelib"]
    clean_site = run([str(venv / "bin" / "python"), "-c",
                      "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip()
    with open(os.path.join(clean_site, "netstitch-deps.pth"), "w") as f:
        f.write(purelib + "\n")
    return {"base": base, "artifact": artifact, "names": names, "cpath": cpath,
            "python": str(venv / "bin" / "python"), "env": env}


def test_artifact_holds_what_a_user_needs(installed):
    names = installed["names"]
    print("\n%s: %d files, %d KiB" % (installed["artifact"].name, len(names), installed["artifact"].stat().st_size // 1024))
    for n in names:
        print("  " + n)
    bad = [n for n in names if FORBIDDEN.search(n) or n.split("/")[0] not in ALLOWED_TOP]
    assert not bad, "the artifact holds developer files: %s" % bad
    for r in REQUIRED:
        assert r in names, "the artifact lacks %s" % r
    modules = sorted(f for f in os.listdir(os.path.join(TOP, "plugins", "modules")) if f.endswith(".py"))
    for m in modules:
        assert "plugins/modules/" + m in names
    for d in os.listdir(os.path.join(TOP, "tests", "integration", "targets")):
        assert "tests/integration/targets/%s/aliases" % d in names
    # the library is most of it; around it, only what a collection user reads or runs
    library = [n for n in names if n.startswith("plugins/module_utils/")]
    assert len(names) - len(library) < 120, len(names) - len(library)
    assert len(library) == len([f for d, _dirs, fs in os.walk(os.path.join(TOP, "plugins", "module_utils"))
                                if "__pycache__" not in d for f in fs if f.endswith(".py")]), library


def test_clean_python_cannot_see_the_checkout(installed):
    r = subprocess.run([installed["python"], "-c", "import ansible_collections.netstitch"], capture_output=True,
                       text=True, check=False)
    assert r.returncode != 0 and "ModuleNotFoundError" in r.stderr
    run([installed["python"], "-c", "import ansible, jsonschema, yaml, nftables"])


def test_ansible_doc_from_the_install(installed):
    env = dict(installed["env"], ANSIBLE_COLLECTIONS_PATH=str(installed["cpath"]))
    doc = [installed["python"], os.path.join(VENV_BIN, "ansible-doc")]
    for m in ("validate", "prepare", "apply", "info", "probe"):
        out = run(doc + ["netstitch.fabric." + m], cwd=str(installed["base"]), env=env).stdout
        assert str(installed["cpath"]) in out.splitlines()[0], out.splitlines()[0]
    out = run(doc + ["-t", "role", "netstitch.fabric.fabric"], cwd=str(installed["base"]), env=env).stdout
    assert "netstitch_topology" in out


def test_every_module_and_the_role_from_the_install(installed):
    name = "ar" + uuid.uuid4().hex[:6]
    labdir = str(installed["base"] / "lab")
    env = dict(installed["env"], ANSIBLE_COLLECTIONS_PATH=str(installed["cpath"]), ANSIBLE_NOCOLOR="1",
               ANSIBLE_ROLES_PATH=str(installed["cpath"] / "ansible_collections" / "netstitch" / "fabric" / "tests"
                                      / "integration" / "targets"),
               ANSIBLE_LOCAL_TEMP=str(installed["base"] / "tmp"), ANSIBLE_HOST_KEY_CHECKING="False")
    try:
        labmod.up(name, 2, labdir, python=installed["python"])
        cmd = [installed["python"], os.path.join(VENV_BIN, "ansible-playbook"), "-i",
               os.path.join(labdir, "inventory.ini"), os.path.join(TOP, "tests", "e2e", "run_targets.yml"),
               "-e", "it_prefix=%s" % name]
        r = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=str(installed["base"]), env=env,
                           timeout=600)
        out = r.stdout + r.stderr
        assert r.returncode == 0, out[-8000:]
        recap = dict(re.findall(r"^(%s-h\d)\s+:\s+ok=\d+\s+changed=\d+\s+unreachable=0\s+(failed=\d+)" % name,
                                out, re.M))
        assert recap == {"%s-h1" % name: "failed=0", "%s-h2" % name: "failed=0"}, out[-3000:]
        # every target ran, on both hosts, from the installed copy
        for target in ("validate", "apply", "info", "probe", "prepare", "role_fabric"):
            assert re.search(r"TASK \[%s : " % target, out), "target %s did not run" % target
        assert "TASK [netstitch.fabric.fabric : Apply this host's part of the topology]" in out
    finally:
        labmod.down(name, labdir)
