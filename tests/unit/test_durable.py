"""Crash consistency, the pure parts: the state file is read defensively and written atomically, the fault seam, the
creation mark of links, and what the planner does with a half-made namespace."""

import copy
import json
import os

import pytest

from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch import durable, engine, faults, ipam, marks
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch import planner
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.errors import ApplyError
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.marks import MARK_GROUP

from .test_engine_pure import hstate, load


@pytest.mark.parametrize("text, says", [
    ("[1, 2]", "holds a JSON list where an object is expected"),
    ('"x"', "holds a JSON str where an object is expected"),
    ('{"leases": [1, 2]}', "'leases' is a JSON list"),
    ('{"leases": {"front": ["10.0.0.2"]}}', "the leases of network 'front' are not of the expected shape"),
    ('{"leases": {"front": {"a/eth0": "not an address"}}}', "the leases of network 'front'"),
    ('{"leases": {"front": {"a/eth0": 167772162}}}', "the leases of network 'front'"),
    ('{"owned_netns": [1]}', "'owned_netns' must be a list of names"),
    ('{"spec": []}', "'spec' is a JSON list"),
    ('{"attached": []}', "'attached' is a JSON list"),
    ('{"attached": {"tap0": {"bridge": "nsbr-a"}}}', "the record of attached interface 'tap0'"),
    ('{"leases": {', "is not valid JSON"),
])
def test_a_state_file_of_the_wrong_shape_is_a_clear_error_naming_the_file(tmp_path, text, says):
    p = tmp_path / "h1.json"
    p.write_text(text)
    with pytest.raises(ApplyError) as e:
        durable.load_state(str(p))
    assert str(p) in str(e.value) and says in str(e.value) and "move it away" in str(e.value)


def test_a_missing_state_file_is_an_empty_state(tmp_path):
    assert durable.load_state(str(tmp_path / "none.json")) == ({}, None)
    good = {"leases": {"front": {"a/eth0": "10.0.0.2"}}, "owned_netns": ["x"], "spec": None, "peers": None}
    (tmp_path / "h1.json").write_text(json.dumps(good))
    assert durable.load_state(str(tmp_path / "h1.json"))[0] == good


def test_atomic_write_replaces_the_file_and_leaves_nothing_beside_it(tmp_path):
    p = str(tmp_path / "f.json")
    durable.atomic_write(p, "one")
    durable.atomic_write(p, "two")
    assert open(p).read() == "two" and os.listdir(str(tmp_path)) == ["f.json"]
    with pytest.raises(OSError):
        durable.atomic_write(str(tmp_path / "missing" / "f.json"), "x")


def test_host_state_records_pending_and_writes_only_on_a_difference(tmp_path):
    hs = engine.HostState(str(tmp_path), "h1")
    assert hs.pending is None and hs.owned_netns == set()
    hs.owned_netns.add("web")
    hs.pending = {"started": "t", "netns": ["web"], "actions": 3}
    hs.save()
    again = engine.HostState(str(tmp_path), "h1")
    assert again.pending == hs.pending and again.owned_netns == {"web"}
    mtime = os.stat(again.path).st_mtime_ns
    again.save()                       # nothing differs: not written
    assert os.stat(again.path).st_mtime_ns == mtime
    again.pending = None
    again.save()
    assert "pending" not in json.load(open(again.path))


def test_a_state_directory_that_cannot_be_written_is_a_clear_error(tmp_path):
    (tmp_path / "h1.json.tmp").mkdir()          # the file beside cannot be made (as root, permissions do not stop it)
    hs = engine.HostState(str(tmp_path), "h1")
    hs.owned_netns.add("x")
    with pytest.raises(ApplyError) as e:
        hs.save()
    assert "h1.json could not be written (Is a directory)" in str(e.value) and \
        "nothing was changed on the host" in str(e.value)
    (tmp_path / "file").write_text("")
    with pytest.raises(ApplyError) as e:
        with engine.HostLock(str(tmp_path / "file"), "h1"):
            pass
    assert "lock file" in str(e.value) and "nothing was changed" in str(e.value)
    with pytest.raises(ApplyError) as e:
        engine.HostState(str(tmp_path / "file"), "h1")
    assert "cannot be read (Not a directory)" in str(e.value)


def test_check_mode_lock_makes_no_directory(tmp_path):
    d = str(tmp_path / "state")
    with engine.HostLock(d, "h1", create=False):
        pass
    assert not os.path.exists(d)


def test_the_fault_seam_parses_its_setting_and_fails_the_action_it_names(tmp_path):
    with pytest.raises(ApplyError):
        faults.arm("kill:x")
    faults.arm("count:%s" % (tmp_path / "points"))
    faults.point("netlink link_add")
    faults.point("nft transaction")
    assert open(str(tmp_path / "points")).read() == "1 netlink link_add\n2 nft transaction\n"
    faults.arm("fail-action:1")
    faults.action(0, "first")
    with pytest.raises(ApplyError) as e:
        faults.action(1, "second")
    assert "second: injected failure" in str(e.value)
    faults.action(1, "second")          # once
    faults.arm(None)


def test_a_link_with_the_creation_mark_and_no_alias_is_netstitch_s():
    assert marks.owned({"alias": None, "group": MARK_GROUP})
    assert marks.owned({"alias": "netstitch bridge x", "group": 0})
    assert not marks.owned({"alias": "someone else", "group": MARK_GROUP})    # a user renamed it: theirs
    assert not marks.owned({"alias": None, "group": 0})
    assert marks.alias_text({"alias": None, "group": MARK_GROUP}) == "made by netstitch, not yet named"


def _current_with_unnamed_bridge():
    spec, current = load("create_from_empty")
    addresses, _leases = ipam.allocate(spec, current, {})
    desired = planner.desired_state(spec, addresses)
    name, want = sorted(desired["bridges"].items())[0]
    current = copy.deepcopy(current)
    current["links"][name] = {"index": 9, "kind": "bridge", "alias": None, "group": MARK_GROUP, "master": None,
                              "mtu": want["mtu"], "up": False, "mac": want["mac"], "peer_index": None, "addresses": []}
    return spec, current, name


def test_a_link_stopped_between_creation_and_naming_is_adopted_not_a_conflict():
    spec, current, name = _current_with_unnamed_bridge()
    res = engine.compute(spec, current, hstate())
    assert res.conflicts == []
    assert any(a["op"] == "link_set" and a["name"] == name and "alias" in a["changes"] for a in res.actions)
    assert not any(a["op"] == "bridge_add" and a["name"] == name for a in res.actions)


def test_a_half_made_namespace_is_cleared_when_owned_and_a_conflict_when_not():
    spec, current = load("create_from_empty")
    ns = sorted(current["netns"])[0]
    current = dict(current, named_netns=[ns], broken_netns=[ns])
    theirs = engine.compute(spec, current, hstate())
    assert any("is half-made (/run/netns/%s is an empty file" % ns in c for c in theirs.conflicts), theirs.conflicts
    mine = engine.compute(spec, dict(current, owned_netns=[ns]), hstate())
    ops = [(a["op"], a.get("netns")) for a in mine.actions]
    assert mine.conflicts == [] and ops.index(("netns_clear", ns)) < ops.index(("netns_add", ns))
    # owned, half-made and no longer wanted: cleared, not removed as a namespace
    empty = dict(spec, networks=[], containers=[], links=[])
    gone = engine.compute(empty, dict(current, owned_netns=[ns]), hstate())
    assert [(a["op"], a["netns"]) for a in gone.actions if "netns" in a] == [("netns_clear", ns)]
