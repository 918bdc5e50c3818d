"""The command line's per-host spec cache: used while the topology file and netstitch are unchanged, compiled again
on any change, harmless when damaged."""

import argparse
import json
import os

import pytest
import yaml

from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch import commands, speccache
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.errors import NetstitchError

from .conftest import BASE


@pytest.fixture
def topo(tmp_path):
    path = tmp_path / "t.yml"
    path.write_text(yaml.safe_dump(BASE))
    return str(path)


def _compiles(monkeypatch):
    calls = []
    real = commands._specs

    def counting(path, data=None):
        calls.append(path)
        return real(path, data)
    monkeypatch.setattr(commands, "_specs", counting)
    return calls


def host_spec(path, host, cache, store=True):
    """The spec apply/prepare take, with the cache in ``cache`` (the state directory's cache/)."""
    state_dir = os.path.dirname(cache)
    assert os.path.basename(cache) == speccache.DIR
    args = argparse.Namespace(topology=path, host=host, state_dir=state_dir)
    spec = commands._host_spec(args, cached=True, store=store)
    assert args.host == (host or spec["host"])
    return spec


def test_the_spec_comes_from_the_cache_while_nothing_changes(tmp_path, topo, monkeypatch):
    calls = _compiles(monkeypatch)
    cache = str(tmp_path / "cache")
    first = host_spec(topo, "h1", cache)
    assert calls == [topo] and first == commands._specs(topo)[1]["h1"]
    del calls[:]
    assert host_spec(topo, "h1", cache) == first and calls == []
    files = os.listdir(cache)
    assert len(files) == 1 and (os.stat(os.path.join(cache, files[0])).st_mode & 0o777) == 0o600
    # another host has its own entry
    assert host_spec(topo, "h2", cache)["host"] == "h2" and len(calls) == 1


def test_any_change_of_the_file_compiles_again(tmp_path, topo, monkeypatch):
    calls = _compiles(monkeypatch)
    cache = str(tmp_path / "cache")
    before = host_spec(topo, "h1", cache)
    changed = yaml.safe_load(open(topo))
    changed["networks"]["front"]["mtu"] = 1400
    with open(topo, "w") as f:
        yaml.safe_dump(changed, f)
    after = host_spec(topo, "h1", cache)
    assert len(calls) == 2 and before != after
    assert [n["mtu"] for n in after["networks"] if n["name"] == "front"] == [1400]


def test_a_new_netstitch_does_not_reuse_old_specs(tmp_path, topo, monkeypatch):
    calls = _compiles(monkeypatch)
    cache = str(tmp_path / "cache")
    host_spec(topo, "h1", cache)
    monkeypatch.setattr(speccache, "_CODE", ["another version"])
    host_spec(topo, "h1", cache)
    assert len(calls) == 2


def test_a_damaged_or_foreign_entry_is_compiled_again(tmp_path, topo, monkeypatch):
    calls = _compiles(monkeypatch)
    cache = str(tmp_path / "cache")
    good = host_spec(topo, "h1", cache)
    path = os.path.join(cache, os.listdir(cache)[0])
    for damage in ("{not json", json.dumps({"key": "x", "spec": {"host": "evil"}}), json.dumps([1, 2])):
        with open(path, "w") as f:
            f.write(damage)
        assert host_spec(topo, "h1", cache) == good
    assert len(calls) == 4


def test_check_mode_writes_no_cache_and_an_invalid_topology_is_never_cached(tmp_path, topo):
    cache = str(tmp_path / "cache")
    host_spec(topo, "h1", cache, store=False)
    assert not os.path.exists(cache)
    bad = tmp_path / "bad.yml"
    bad.write_text("hosts: {h1: {}}\nnetworks: {n: {subnet: 10.0.0.0/24, mtu: 1400.0}}\n")
    with pytest.raises(NetstitchError):
        host_spec(str(bad), "h1", cache)
    assert not os.path.exists(cache)
    with pytest.raises(NetstitchError, match="host 'nope' is not in the topology"):
        host_spec(topo, "nope", cache)


def test_without_host_this_machine_s_name_is_found_in_the_cache(tmp_path, topo, monkeypatch):
    calls = _compiles(monkeypatch)
    cache = str(tmp_path / "cache")
    monkeypatch.setattr(commands, "machine_names", lambda: ["h2.example", "h2"])
    first = host_spec(topo, None, cache)
    assert first["host"] == "h2" and len(calls) == 1
    assert host_spec(topo, None, cache) == first and len(calls) == 1
    monkeypatch.setattr(commands, "machine_names", lambda: ["elsewhere"])
    with pytest.raises(NetstitchError, match="this machine .elsewhere. is not under hosts"):
        host_spec(topo, None, cache)


def test_a_teardown_forgets_the_host_s_entry(tmp_path, topo):
    cache = str(tmp_path / "cache")
    host_spec(topo, "h1", cache)
    host_spec(topo, "h2", cache)
    speccache.forget(cache, "h1")
    assert len(os.listdir(cache)) == 1
    speccache.forget(cache, "h2")
    assert not os.path.exists(cache)
