"""bin/netstitch validate/compile as a user runs them (subprocess): exit status, every problem with its path, and
never a traceback. Only the pure commands are run here (apply needs a kernel)."""

import json
import os
import subprocess

import pytest
import yaml

from .conftest import BASE, HERE, read_yaml

TOP = os.path.dirname(os.path.dirname(HERE))
BIN = os.path.join(TOP, "bin", "netstitch")


def run(*args):
    r = subprocess.run([BIN] + list(args), capture_output=True, text=True, timeout=60, check=False)
    assert "Traceback" not in r.stdout + r.stderr, r.stdout + r.stderr
    return r


def _write(tmp_path, name, data):
    p = tmp_path / name
    if isinstance(data, (bytes, str)):
        p.write_bytes(data if isinstance(data, bytes) else data.encode())
    else:
        p.write_text(yaml.safe_dump(data, sort_keys=False))    # keep the order: "also used by" names the first
    return str(p)


def test_validate_bad_file_prints_every_problem_and_exits_1(tmp_path):
    case = read_yaml(os.path.join(HERE, "invalid", "multiple_problems.yml"))
    path = _write(tmp_path, "bad.yml", case["topology"])
    r = run("validate", path)
    assert r.returncode == 1
    assert r.stdout == ""
    err = r.stderr
    assert "topology is invalid (%d problems)" % len(case["expect"]) in err
    lines = [l for l in err.splitlines() if l.startswith("  - ")]
    assert len(lines) == len(case["expect"])
    for path_, reason in case["expect"]:
        assert any(l.startswith("  - %s: " % path_) and reason in l for l in lines), (path_, reason, err)


def test_validate_good_file_exits_0(tmp_path):
    path = _write(tmp_path, "good.yml", BASE)
    r = run("validate", path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "%s: valid (3 hosts, 3 networks, 3 containers)" % path
    assert r.stderr == ""


@pytest.mark.parametrize("content,message", [
    ("hosts: {h1: {}\nnetworks: [", "cannot read topology"),                          # YAML syntax error
    (b"\xff\xfe\x00\x81 not utf-8", "cannot read topology"),                           # undecodable bytes
    ("", "a topology is a mapping with hosts, networks and containers, not NoneType"),  # empty file
    ("- h1\n- h2\n", "not list"),
    ("x: !!python/object/apply:os.system [true]\n", "could not determine a constructor"),  # no unsafe tags
    ("hosts: {h1: {}}\nnetworks: {}\nhosts: {h2: {}}\n", "found the key 'hosts' twice (first on line 1)"),
    ("hosts: {h1: {}}\nnetworks: {n: {subnet: 10.0.0.0/24}}\ncontainers:\n"
     "  web: {host: h1, interfaces: [{network: n}]}\n  web: {host: h1, interfaces: [{network: n}]}\n",
     "found the key 'web' twice (first on line 4)"),
], ids=["syntax", "binary", "empty", "list", "python-tag", "duplicate-section", "duplicate-container"])
def test_validate_unreadable_or_odd_files(tmp_path, content, message):
    r = run("validate", _write(tmp_path, "t.yml", content))
    assert r.returncode == 1
    assert message in r.stderr


def test_merge_keys_still_work(tmp_path):
    text = ("hosts: {h1: {}}\nnetworks: {n: {subnet: 10.0.0.0/24}}\n"
            "x-common: &common {host: h1, interfaces: [{network: n}]}\n")
    # x-common is an unknown top-level key: proves the file was read (merge resolved) and then validated
    text += "containers:\n  a: {<<: *common}\n  b: {<<: *common, host: h1}\n"
    r = run("validate", _write(tmp_path, "t.yml", text))
    assert r.returncode == 1
    assert "topology is invalid (1 problem)" in r.stderr and "x-common: unknown key" in r.stderr


def test_validate_missing_file(tmp_path):
    r = run("validate", str(tmp_path / "nope.yml"))
    assert r.returncode == 1 and "No such file" in r.stderr


def test_compile_prints_per_host_specs(tmp_path):
    path = _write(tmp_path, "good.yml", BASE)
    r = run("compile", path)
    assert r.returncode == 0, r.stderr
    specs = json.loads(r.stdout)
    assert sorted(specs) == ["h1", "h2", "h3"]
    assert [c["name"] for c in specs["h1"]["containers"]] == ["api", "web"]
    r = run("compile", path, "--host", "h2")
    assert json.loads(r.stdout)["host"] == "h2"


def test_compile_unknown_host_is_an_error_not_a_traceback(tmp_path):
    r = run("compile", _write(tmp_path, "good.yml", BASE), "--host", "nope")
    assert r.returncode == 1 and "host 'nope' is not in the topology" in r.stderr


@pytest.mark.parametrize("case", sorted(os.listdir(os.path.join(HERE, "invalid"))))
def test_every_invalid_fixture_through_the_cli(tmp_path, capsys, case):
    """In-process (cli.main) for speed: exit 1, every expected problem printed with its path, nothing on stdout."""
    from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch import cli
    fixture = read_yaml(os.path.join(HERE, "invalid", case))
    path = _write(tmp_path, "t.yml", fixture["topology"])
    assert cli.main(["validate", path]) == 1
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("topology is invalid (%d problem" % len(fixture["expect"]))
    for p, reason in fixture["expect"]:
        assert any(l.startswith("  - %s: " % (p or "(top level)")) and reason in l for l in err.splitlines()), (p, err)


def test_every_option_of_every_command_has_help_and_every_command_an_example():
    from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch import cli
    p = cli.parser()
    subs = [a for a in p._actions if a.__class__.__name__ == "_SubParsersAction"][0]
    assert {"validate", "plan", "apply", "status", "down", "probe", "watch", "compile", "prepare"} <= set(subs.choices)
    for name, sp in subs.choices.items():
        assert "example:\n  netstitch %s" % name in sp.epilog, name
        for a in sp._actions:
            assert a.help, (name, a.dest)


def test_progress_shows_on_a_terminal_only():
    import io
    from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.commands import Progress

    class Tty(io.StringIO):
        def isatty(self):
            return True
    tty, pipe = Tty(), io.StringIO()
    for stream in (tty, pipe):
        p = Progress("probe h1", 3, stream=stream, every=0)
        for i in range(3):
            p.step("%d mismatched" % i if i else "")
        p.close()
    assert tty.getvalue().endswith("\rprobe h1: 3/3 (2 mismatched)\n"), tty.getvalue()
    assert tty.getvalue().count("\r") == 3
    assert pipe.getvalue() == ""


def test_version():
    r = run("--version")
    assert r.returncode == 0 and r.stdout.startswith("netstitch 0.")


def test_the_host_defaults_to_this_machine_or_the_one_state_held(tmp_path, monkeypatch):
    import argparse
    from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch import commands
    from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.errors import NetstitchError
    monkeypatch.setattr(commands, "machine_names", lambda: ["h2.example.org", "h2"])
    specs = {"h1": {}, "h2": {}}
    ns = argparse.Namespace
    assert commands.pick_host(ns(host=None), specs) == "h2"              # the short name is in the topology
    assert commands.pick_host(ns(host="h1"), specs) == "h1"
    with pytest.raises(NetstitchError, match=r"host 'h9' is not in the topology \(hosts: h1, h2\)"):
        commands.pick_host(ns(host="h9"), specs)
    with pytest.raises(NetstitchError, match=r"this machine \(h2.example.org\) is not under hosts of the topology"):
        commands.pick_host(ns(host=None), {"h1": {}})
    # without a topology: this machine's state, else the only state in the directory
    d = str(tmp_path)
    with pytest.raises(NetstitchError, match="holds the state of no host"):
        commands.pick_host(ns(host=None), state_dir=d)
    (tmp_path / "lab-h1.json").write_text("{}")
    assert commands.pick_host(ns(host=None), state_dir=d) == "lab-h1"
    (tmp_path / "lab-h3.json").write_text("{}")
    with pytest.raises(NetstitchError, match=r"several hosts \(lab-h1, lab-h3\)"):
        commands.pick_host(ns(host=None), state_dir=d)
    (tmp_path / "h2.json").write_text("{}")
    assert commands.pick_host(ns(host=None), state_dir=d) == "h2"
