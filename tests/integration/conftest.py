"""Fixtures of the kernel integration tests.

``lab``  (one per test module): a lab named ``nsi<random>`` (switch, outside router) built by lab/lab.py;
``env``  (one per test): a fresh host namespace ``<lab>-h<N>`` on that lab's underlay, a state directory in tmp,
         and names for container namespaces ``<lab>-h<N>-<short>``.
Teardown removes every namespace starting with the test's (or the lab's) unique prefix and kills the processes the
test started, whether the test passed or not.
"""

import os
import secrets
import shutil

import pytest

import nskit

HERE = os.path.dirname(os.path.abspath(__file__))


def _missing_prerequisite():
    if os.geteuid() != 0:
        return "kernel integration tests need root (they create network namespaces)"
    for tool in ("ip", "nsenter", "nft", "ping"):
        if shutil.which(tool) is None:
            return "kernel integration tests need the %r command" % tool
    if not os.path.exists(nskit.PY):
        return "no Python for the engine (run scripts/setup.sh --dev)"
    return None


def pytest_collection_modifyitems(config, items):
    reason = _missing_prerequisite()
    for item in items:
        if str(item.fspath).startswith(HERE + os.sep):
            item.add_marker(pytest.mark.kernel)
            if reason:
                item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    name = "nsi" + secrets.token_hex(3)
    lab = nskit.Lab(name, str(tmp_path_factory.mktemp(name) / "lab"))
    try:
        lab.up()
        yield lab
    finally:
        lab.down()
    left = lab.mine()
    assert not left, "namespaces left behind by the lab: %s" % left


@pytest.fixture
def env(lab, tmp_path):
    e = nskit.Env(lab, str(tmp_path / "state"))
    try:
        yield e
    finally:
        e.cleanup()
    left = e.mine()
    assert not left, "namespaces left behind by the test: %s" % left
    names = [d for d in (os.listdir(nskit.ETC_NETNS) if os.path.isdir(nskit.ETC_NETNS) else [])
             if d == e.hostns or d.startswith(e.hostns + "-")]
    assert not names, "hosts files left behind under /etc/netns by the test: %s" % names
