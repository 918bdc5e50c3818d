"""Hostile input: alias and merge bombs, deep nesting, huge files and names, control characters, floats where integers
belong. Through the library, the command line and the validate module: never a traceback, always the problem with its
path or the limit that was hit, in bounded time and output.
"""

import json
import os
import subprocess
import sys
import time

import pytest

from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.controller import safeyaml, validate
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.errors import NetstitchError, TopologyError

from .conftest import HERE

TOP = os.path.dirname(os.path.dirname(HERE))
PY = sys.executable
HEAD = "hosts: {h1: {}}\nnetworks: {n: {subnet: 10.1.0.0/24}}\n"


def cli(*args, timeout=60):
    env = dict(os.environ)
    env.pop("NETSTITCH_DEBUG", None)
    t0 = time.monotonic()
    r = subprocess.run([PY, "-m", "ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.cli"] +
                       list(args), capture_output=True, text=True, timeout=timeout, env=env, check=False)
    r.seconds = time.monotonic() - t0
    return r


def module(tmp_path, args, timeout=60):
    path = tmp_path / "args.json"
    path.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": args}))
    r = subprocess.run([PY, "-m", "ansible_collections.netstitch.fabric.plugins.modules.validate", str(path)],
                       capture_output=True, text=True, timeout=timeout, check=False)
    assert "Traceback" not in r.stdout + r.stderr, (r.stdout + r.stderr)[-3000:]
    return json.loads(r.stdout)


def billion_laughs(levels=9, where="ip"):
    lines = [HEAD, 'l0: &l0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n']
    for i in range(1, levels):
        lines.append("l%d: &l%d [%s]\n" % (i, i, ",".join(["*l%d" % (i - 1)] * 9)))
    value = "*l%d" % (levels - 1)
    if where == "ip":
        lines.append("containers: {c: {host: h1, interfaces: [{network: n, ip: %s}]}}\n" % value)
    else:
        lines.append("containers: {c: {host: h1, interfaces: [{network: n}], publish: [{host_port: %s}]}}\n" % value)
    return "".join(lines)


def merge_bomb(levels=9):
    lines = [HEAD, "m0: &m0 {a: 1, b: 2, c: 3, d: 4, e: 5, f: 6, g: 7, h: 8, i: 9}\n"]
    for i in range(1, levels):
        lines.append("m%d: &m%d {<<: [%s], k%d: 1}\n" % (i, i, ", ".join(["*m%d" % (i - 1)] * 9), i))
    return "".join(lines)


@pytest.mark.parametrize("text,limit", [
    (billion_laughs(9, "ip"), "nodes once aliases and merges are expanded"),
    (billion_laughs(9, "port"), "nodes once aliases and merges are expanded"),
    (merge_bomb(9), "nodes once aliases and merges are expanded"),
    (HEAD + "x: &a [1, *a]\n", "a recursive alias"),
    (HEAD + "x: " + "[" * 40 + "]" * 40 + "\n", "nesting deeper than 32 levels"),
    (HEAD + "x: " + "[" * 3000 + "]" * 3000 + "\n", "nesting depth"),             # libyaml's own limit
    (HEAD + "".join("%sk%d:\n" % ("  " * i, i) for i in range(2000)), "nesting depth"),
    (HEAD + "x: !!set {a, b}\n", "is not allowed in a topology"),
    (HEAD + "x: !!python/name:os.system\n", "could not determine a constructor"),
    (HEAD + "? [a, b]\n: 1\n", "a mapping key"),
], ids=["alias-bomb-ip", "alias-bomb-port", "merge-bomb", "recursive-alias", "deep-33", "deep-3000-lists",
        "deep-2000-mappings", "set-tag", "python-tag", "list-as-key"])
def test_hostile_yaml_is_refused_quickly_with_the_limit_named(tmp_path, text, limit):
    path = tmp_path / "t.yml"
    path.write_text(text)
    t0 = time.monotonic()
    with pytest.raises(NetstitchError) as ei:
        safeyaml.load_path(str(path))
    assert time.monotonic() - t0 < 5
    assert limit in str(ei.value) and len(str(ei.value)) < 2000, str(ei.value)[:3000]
    r = cli("validate", str(path))
    assert r.returncode == 1 and r.stdout == "" and "Traceback" not in r.stderr
    assert limit in r.stderr and len(r.stderr) < 2000, r.stderr[:3000]


def test_the_limits_are_generous_for_real_topologies(tmp_path):
    """Anchors reused by every container (a common style) stay well under the expansion limit."""
    text = HEAD + "x-if: &if [{network: n}]\ncontainers:\n" + "".join(
        "  c%d: {host: h1, interfaces: *if}\n" % i for i in range(200))
    path = tmp_path / "t.yml"
    path.write_text(text.replace("subnet: 10.1.0.0/24", "subnet: 10.1.0.0/16"))
    data = safeyaml.load_path(str(path))
    assert data["containers"]["c199"]["interfaces"] == [{"network": "n"}]
    assert safeyaml.LIMITS == {"bytes": 32 * 2 ** 20, "depth": 32, "nodes": 5000000}


def test_a_file_over_the_size_limit_is_refused_before_parsing(tmp_path):
    path = tmp_path / "big.yml"
    with open(path, "w") as f:
        f.write(HEAD + "# " + "x" * (safeyaml.MAX_BYTES + 10) + "\n")
    r = cli("validate", str(path))
    assert r.returncode == 1 and "larger than 33554432 bytes (32 MiB), the limit" in r.stderr, r.stderr[:2000]
    assert r.seconds < 10


def _deep(n, leaf="x"):
    v = leaf
    for _level in range(n):
        v = [v]
    return v


def _deep_map(n):
    v = {}
    for _level in range(n):
        v = {"k": v}
    return v


def test_deep_values_given_inline_never_recurse():
    """A topology handed over as data (the module's `topology`) is not limited by the YAML reader: 5,000 nested
    lists or mappings, where a value or an unknown key is, give one short problem each."""
    topo = {"hosts": {"h1": {}}, "networks": {"n": {"subnet": "10.1.0.0/24"}},
            "containers": {"c": {"host": "h1", "interfaces": [{"network": "n", "ip": _deep(5000)}]}},
            "extra": _deep_map(5000)}
    topo["networks"]["n"]["docker"] = {"hosts": [_deep_map(5000)]}
    with pytest.raises(TopologyError) as ei:
        validate.load(topo)
    text = str(ei.value)
    assert len(text) < 2000, text[:3000]
    got = {p.path: p.reason for p in ei.value.problems}
    assert got["containers.c.interfaces[0].ip"].startswith("must be a string, not a list ([[[")
    assert got["networks.n.docker.hosts[0]"].startswith("must be a string, not a mapping")
    assert got["extra"].startswith("unknown key")


def test_control_characters_and_long_names_are_escaped_and_cut(tmp_path):
    evil = "web\x1b[2J\x00\u202e\r\n  - forged.path: looks real"
    huge = "h" * 1000000
    topo = {"hosts": {"h1": {}}, "networks": {"n": {"subnet": "10.1.0.0/24"}},
            "containers": {evil: {"host": "h1", "interfaces": [{"network": "n"}]},
                           "big": {"host": huge, "interfaces": [{"network": "n", "name": "all"}]}}}
    path = tmp_path / "t.json"
    path.write_text(json.dumps(topo))
    r = cli("validate", str(path))
    assert r.returncode == 1
    lines = r.stderr.splitlines()
    assert lines[0].startswith("topology is invalid (")
    n = int(lines[0].split("(")[1].split()[0])
    assert len(lines) == n + 1 and all(l.startswith("  - ") for l in lines[1:]), r.stderr[:3000]
    assert "forged.path" in r.stderr and "\\x1b[2J\\x00\\u202e\\x0d\\x0a" in r.stderr
    assert not any(c in r.stderr for c in "\x1b\x00\u202e\r")
    assert len(r.stderr) < 5000 and "characters in all)" in r.stderr, r.stderr[:3000]
    res = module(tmp_path, {"topology_file": str(path)})
    assert res["failed"] and all("\x1b" not in p["path"] and "\n" not in p["path"] for p in res["problems"])
    assert len(res["msg"]) < 5000


def test_floats_where_integers_belong_are_reported_by_path(tmp_path):
    path = tmp_path / "t.yml"
    path.write_text("hosts: {h1: {underlay: 192.0.2.1/24, underlay_mtu: 9000.0}, h2: {underlay: 192.0.2.2/24}}\n"
                    "networks:\n"
                    "  x: {subnet: 10.1.0.0/24, overlay: {type: vxlan, vni: 100.0, port: 4789.0, slice_len: 26.0}}\n"
                    "  y: {subnet: 10.2.0.0/24, mtu: 1400.0}\n"
                    "containers: {c: {host: h1, interfaces: [{network: x}], publish: [{host_port: 80.0}]}}\n")
    want = ["hosts.h1.underlay_mtu: must be an integer, got 9000.0",
            "networks.x.overlay.vni: must be an integer, got 100.0",
            "networks.x.overlay.port: must be an integer, got 4789.0",
            "networks.x.overlay.slice_len: must be an integer, got 26.0",
            "networks.y.mtu: must be an integer, got 1400.0",
            "containers.c.publish[0].host_port: must be an integer, got 80.0"]
    r = cli("validate", str(path))
    assert r.returncode == 1 and "topology is invalid (6 problems)" in r.stderr, r.stderr
    for w in want:
        assert "  - " + w + "\n" in r.stderr, (w, r.stderr)
    res = module(tmp_path, {"topology_file": str(path)})
    assert sorted("%s: %s" % (p["path"], p["reason"]) for p in res["problems"]) == sorted(want)
    # the same topology given inline (as JSON, through Ansible)
    res = module(tmp_path, {"topology": safeyaml.load_path(str(path))})
    assert sorted("%s: %s" % (p["path"], p["reason"]) for p in res["problems"]) == sorted(want)


def test_the_module_reports_hostile_files_as_problems(tmp_path):
    path = tmp_path / "bomb.yml"
    path.write_text(billion_laughs(9))
    res = module(tmp_path, {"topology_file": str(path)})
    assert res["failed"] and "nodes once aliases and merges are expanded" in res["msg"]
    assert res["problems"] and len(res["msg"]) < 2000
    deep = {"hosts": {"h1": {}}, "networks": {"n": {"subnet": "10.1.0.0/24", "mtu": _deep(150, 1400)}}}
    res = module(tmp_path, {"topology": deep})
    assert res["failed"] and res["problems"] == [
        {"path": "networks.n.mtu", "reason": "must be an integer, not a list ([[[[...]]]])"}]


def test_an_internal_failure_is_a_message_not_a_traceback(tmp_path, monkeypatch):
    """A bug in the checks (simulated) reaches the user as one line naming it; debug=True lets the tests see it."""
    def broken(self, hosts):
        raise KeyError("simulated")
    monkeypatch.setattr(validate._Checker, "networks", broken)
    topo = {"hosts": {"h1": {}}, "networks": {}}
    with pytest.raises(NetstitchError) as ei:
        validate.load(topo)
    assert not isinstance(ei.value, TopologyError)
    assert "internal error while validating the topology (KeyError: 'simulated')" in str(ei.value)
    with pytest.raises(KeyError):
        validate.load(topo, debug=True)


def test_the_command_line_never_shows_a_traceback(tmp_path, monkeypatch, capsys):
    """An unexpected failure (simulated: a bug outside the checks) is one escaped line and exit 1;
    NETSTITCH_DEBUG=1 lets the traceback out."""
    from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch import cli
    from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.controller import hostspec
    path = tmp_path / "t.yml"
    path.write_text(HEAD + "containers: {c: {host: h1, interfaces: [{network: n}]}}\n")

    def broken(topo):
        raise RuntimeError("simulated\x1b[2J\nsecond line")
    monkeypatch.setattr(hostspec, "host_specs", broken)
    monkeypatch.delenv("NETSTITCH_DEBUG", raising=False)
    assert cli.main(["validate", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("netstitch validate: internal error (RuntimeError: simulated\\x1b[2J\\x0asecond line)")
    assert err.count("\n") == 1 and "Traceback" not in err
    monkeypatch.setenv("NETSTITCH_DEBUG", "1")
    with pytest.raises(RuntimeError):
        cli.main(["validate", str(path)])
