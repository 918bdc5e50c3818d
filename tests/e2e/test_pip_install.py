"""`pip install .` of the checkout into a fresh venv gives a working `netstitch` command, without the checkout's
venv and without the checkout on any path (the source is a copy of the tracked files, removed before the command
runs). Needs PyPI (setuptools for the build, the package's dependencies), as scripts/setup.sh does."""

import os
import shutil
import subprocess
import sys

import pytest

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOPOLOGY = os.path.join(TOP, "playbooks", "topology.yml")


def run(cmd, ok=True, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, check=False, **kw)
    if ok and r.returncode != 0:
        raise AssertionError("%s failed (%d):\n%s\n%s" % (" ".join(cmd), r.returncode, r.stdout[-4000:], r.stderr[-4000:]))
    return r


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    base = tmp_path_factory.mktemp("pip")
    src = base / "src"
    files = run(["git", "-C", TOP, "ls-files", "-z", "--cached", "--others", "--exclude-standard"]).stdout
    for rel in filter(None, files.split("\0")):
        if os.path.isfile(os.path.join(TOP, rel)):
            os.makedirs(os.path.dirname(str(src / rel)), exist_ok=True)
            shutil.copy2(os.path.join(TOP, rel), str(src / rel))
    venv = base / "venv"
    run([sys.executable, "-m", "venv", str(venv)])
    run([str(venv / "bin" / "pip"), "install", "-q", "--disable-pip-version-check", str(src)], timeout=600)
    shutil.rmtree(str(src))
    shutil.copy(TOPOLOGY, str(base / "topology.yml"))
    env = {"PATH": "%s:/usr/bin:/bin" % (venv / "bin"), "HOME": str(base), "LANG": "C.UTF-8"}
    return {"base": base, "venv": venv, "exe": str(venv / "bin" / "netstitch"), "env": env}


def test_console_script_is_the_venvs(installed):
    with open(installed["exe"]) as f:
        assert f.readline().strip().startswith("#!%s" % (installed["venv"] / "bin" / "python"))
    r = run([str(installed["venv"] / "bin" / "python"), "-c",
             "import ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.cli as c; print(c.__file__)"],
            cwd=str(installed["base"]), env=installed["env"])
    assert r.stdout.startswith(str(installed["venv"])), r.stdout
    assert TOP not in r.stdout


def test_help_validate_compile(installed):
    kw = {"cwd": str(installed["base"]), "env": installed["env"]}
    r = run([installed["exe"], "--help"], **kw)
    assert "validate" in r.stdout and "compile" in r.stdout
    r = run([installed["exe"], "validate", "topology.yml"], **kw)
    assert "valid (3 hosts, 3 networks, 7 containers)" in r.stdout
    r = run([installed["exe"], "compile", "topology.yml", "--host", "fab-h1"], **kw)
    assert '"host": "fab-h1"' in r.stdout
    r = run([installed["exe"], "graph", "topology.yml"], **kw)
    assert r.stdout.startswith("digraph netstitch {") and '"host:fab-h1"' in r.stdout, r.stdout[:400]
    r = run([installed["exe"], "--version"], **kw)
    assert r.stdout.strip() == "netstitch 0.1.0", r.stdout


def test_invalid_topology_exits_1_with_the_path(installed):
    bad = installed["base"] / "bad.yml"
    bad.write_text("version: 1\nhosts: {h1: {}}\nnetworks: {n: {subnet: 10.0.0.0/24}}\n"
                   "containers: {c: {host: h1, interfaces: [{network: n, ip: 10.0.0.300}]}}\n")
    r = run([installed["exe"], "validate", str(bad)], ok=False, cwd=str(installed["base"]), env=installed["env"])
    assert r.returncode == 1
    assert "containers.c.interfaces[0].ip" in r.stderr + r.stdout
    assert "Traceback" not in r.stderr
