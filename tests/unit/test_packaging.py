"""Static checks of the packaging: the Python package (pyproject.toml), the collection's metadata (galaxy.yml,
meta/), the execution-environment files and the requirements split (controller / managed host / checkout)."""

import os
import re

import yaml

try:
    import tomllib
except ImportError:  # Python < 3.11
    tomllib = None

import pytest

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LIB = os.path.join(TOP, "plugins", "module_utils", "_netstitch")
PREFIX = "ansible_collections.netstitch.fabric."


def _read(rel):
    with open(os.path.join(TOP, rel)) as f:
        return f.read()


def _galaxy():
    return yaml.safe_load(_read("galaxy.yml"))


@pytest.fixture(scope="module")
def pyproject():
    if tomllib is None:
        pytest.skip("tomllib needs Python 3.11")
    with open(os.path.join(TOP, "pyproject.toml"), "rb") as f:
        return tomllib.load(f)


def test_versions_agree(pyproject):
    assert pyproject["project"]["version"] == _galaxy()["version"]


def test_every_library_package_is_packaged(pyproject):
    listed = set(pyproject["tool"]["setuptools"]["packages"])
    assert os.path.isdir(LIB), LIB
    found = set()
    for d, _dirs, files in os.walk(LIB):
        if "__pycache__" in d:
            continue
        if any(f.endswith(".py") for f in files):
            rel = os.path.relpath(d, TOP).replace(os.sep, ".")
            found.add(PREFIX + rel)
    assert found == listed, "pyproject.toml [tool.setuptools] packages must list exactly %s" % sorted(found)
    assert pyproject["tool"]["setuptools"]["package-dir"] == {PREFIX.rstrip("."): "."}


def test_console_script_points_at_the_cli(pyproject):
    target = pyproject["project"]["scripts"]["netstitch"]
    mod, func = target.split(":")
    assert mod == PREFIX + "plugins.module_utils._netstitch.cli" and func == "main"
    assert os.path.exists(os.path.join(TOP, *mod[len(PREFIX):].split(".")) + ".py")


def test_galaxy_metadata_complete():
    g = _galaxy()
    for key in ("repository", "documentation", "homepage", "issues"):
        assert g.get(key, "").startswith("https://"), key
    assert g["license"] == ["GPL-3.0-or-later"]
    assert "GNU GENERAL PUBLIC LICENSE" in _read("LICENSE") and "Version 3" in _read("LICENSE")
    ignored = set(g["build_ignore"])
    for dev in ("bench", "lab", "scripts", "bin", "tests/unit", "tests/e2e", "Makefile", "ansible.cfg",
                "pytest.ini", "requirements-dev.txt", "pyproject.toml", "extensions"):
        assert dev in ignored, dev


def _requirements(rel):
    out = []
    for line in _read(rel).splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            out.append(line)
    return out


def test_execution_environment_files():
    ee = yaml.safe_load(_read("meta/execution-environment.yml"))
    assert ee["version"] == 1
    deps = ee["dependencies"]
    py, system = _requirements(deps["python"]), _read(deps["system"])
    # certification: no ansible-core (the EE's base provides it), no upper bounds, no -r includes
    for req in py:
        name = re.split(r"[<>=!~ \[;]", req, 1)[0].lower()
        assert name not in ("ansible-core", "ansible"), req
        assert "<" not in req and not req.startswith("-"), req
    # controller packages only: the hosts' (nftables binding, Docker SDK) are apart
    names = {re.split(r"[<>=!~ ]", r, 1)[0].lower() for r in py}
    assert "pip-nftables" not in names and "docker" not in names
    hosts = {re.split(r"[<>=!~ ]", r, 1)[0].lower() for r in _requirements("requirements-host.txt")}
    assert {"pip-nftables", "docker"} <= hosts
    assert "platform:dpkg" in system and "platform:rpm" in system
    # every host package is in profile "host", so the execution environment does not get it
    for line in system.splitlines():
        if line.split(" ")[0] in ("nftables", "tinc", "iproute2", "iproute", "libnftables1"):
            assert "[host" in line, line


def test_no_ansible_core_upper_bound_outside_dev():
    for rel in ("requirements.txt", "requirements-host.txt", "requirements-lab.txt"):
        for req in _requirements(rel):
            if req.lower().startswith("ansible-core"):
                assert "<" not in req, "%s: %s" % (rel, req)


def test_sanity_ignore_files_cover_the_claimed_versions():
    claim = yaml.safe_load(_read("meta/runtime.yml"))["requires_ansible"]
    low = tuple(int(x) for x in re.match(r">=\s*(\d+)\.(\d+)", claim).groups())
    # every ansible-core from the claimed minimum up to the newest the development pin allows (requirements-dev.txt)
    pin = re.search(r"^ansible-core\s*<\s*(\d+)\.(\d+)", _read("requirements-dev.txt"), re.M)
    assert pin, "requirements-dev.txt pins ansible-core below the next release sanity has not been checked with"
    high = tuple(int(x) for x in pin.groups())
    assert high[0] == low[0] and high[1] > low[1]
    for minor in range(low[1], high[1]):
        assert os.path.exists(os.path.join(TOP, "tests", "sanity", "ignore-%d.%d.txt" % (low[0], minor))), minor
    for fn in os.listdir(os.path.join(TOP, "tests", "sanity")):
        for line in _read(os.path.join("tests", "sanity", fn)).splitlines():
            assert " pep8:" not in line and " pylint:" not in line, "%s: %s (Automation Hub refuses these)" % (fn, line)
