"""The layout's rules (docs/architecture.md), checked on the source: the pure core imports no driver and nothing of
the host side; every action op a kind creates is listed in actions.OPS, and every listed op has its handler in the
driver OPS names; no library file grows into a grab-bag."""

import ast
import os

from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch import actions, planner
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.drivers.netlink import Netlink

from .conftest import HERE

LIB = os.path.join(os.path.dirname(os.path.dirname(HERE)), "plugins", "module_utils", "_netstitch")
PKG = "ansible_collections.netstitch.fabric.plugins.module_utils._netstitch"
PURE = ["controller", "kinds", "describe", "planner.py", "actions.py", "marks.py", "ipam.py", "links.py", "current.py",
        "summary.py", "errors.py", "plugin/core.py", "plugin/common.py", "plugin/net_calls.py"]


def _files(*parts):
    out = []
    for p in parts:
        path = os.path.join(LIB, p)
        if os.path.isdir(path):
            out += sorted(os.path.join(path, f) for f in os.listdir(path) if f.endswith(".py"))
        else:
            out.append(path)
    return out


def _imports(path):
    with open(path) as f:
        tree = ast.parse(f.read())
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
            out.update("%s.%s" % (node.module, a.name) for a in node.names)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return out


def test_the_pure_core_imports_no_driver_and_nothing_of_the_host_side():
    files = _files(*PURE)
    assert len(files) > 20
    for path in files:
        bad = sorted(m for m in _imports(path) if m.startswith(PKG + ".drivers") or m.startswith(PKG + ".host")
                     or m.startswith(PKG + ".engine"))
        assert not bad, "%s imports %s" % (os.path.relpath(path, LIB), bad)


def _created_ops():
    """Every op string given to actions.act() in the kinds."""
    ops = set()
    for path in _files("kinds"):
        with open(path) as f:
            tree = ast.parse(f.read())
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "act":
                assert isinstance(node.args[0], ast.Constant), "%s: act() with a computed op" % path
                ops.add(node.args[0].value)
    return ops


def test_every_op_a_kind_creates_is_listed_and_every_listed_op_is_created_or_made_by_the_host():
    created = _created_ops()
    assert created <= set(actions.OPS), sorted(created - set(actions.OPS))
    assert set(actions.OPS) - created == {"link_del_many"}      # host.reconcile.batched makes it from link_del


def test_every_listed_op_has_its_handler_in_its_driver():
    for op in actions.ops_of("netlink"):
        assert callable(getattr(Netlink, "_do_" + op, None)), op
    for driver, path in (("tinc", "drivers/tinc.py"), ("docker", "drivers/docker.py"),
                         ("iptables", "drivers/dockeruser.py"), ("dns", "drivers/dnsmasq.py"),
                         ("bgp", "drivers/bird.py"), ("files", "drivers/hostsfile.py"), ("nft", "drivers/nft.py")):
        with open(os.path.join(LIB, path)) as f:
            text = f.read()
        for op in actions.ops_of(driver):
            assert '"%s"' % op in text, "%s has no handler for %s" % (path, op)
    assert actions.ops_of("files") == ["docker_hosts_write", "hosts_write"]
    drivers = {"netlink", "tinc", "docker", "files", "iptables", "dns", "bgp", "nft"}
    assert set(actions.OPS.values()) == drivers


def test_an_unknown_op_is_refused():
    try:
        actions.act("link_frobnicate", "text")
    except ValueError as e:
        assert "link_frobnicate" in str(e)
    else:
        raise AssertionError("act() took an op that is not listed")


def test_every_kind_of_the_planner_has_the_kind_interface():
    for kind in planner.KINDS:
        assert hasattr(kind, "KEY") and callable(kind.diff), kind.__name__
        assert not kind.KEY or callable(kind.desired), kind.__name__


def test_no_library_file_is_a_grab_bag():
    big = {}
    for root, _dirs, names in os.walk(LIB):
        for name in names:
            if name.endswith(".py") and name != "schema.py":      # schema.py is generated data
                with open(os.path.join(root, name)) as f:
                    n = len(f.read().splitlines())
                if n > 420:
                    big[os.path.relpath(os.path.join(root, name), LIB)] = n
    assert big == {}
