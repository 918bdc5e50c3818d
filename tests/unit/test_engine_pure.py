"""The pure parts of the engine: compute() (allocation + plan + nft diff, no kernel) and view() (the --diff summary).
Built on the golden cases' spec and current state; engine.apply and the drivers are never called here."""

import copy
import os
import types

from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch import engine
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.kinds import nft as nftplan

from .conftest import HERE, read_yaml

GOLDEN = os.path.join(HERE, "golden")


def load(case):
    return read_yaml(os.path.join(GOLDEN, case, "spec.yml")), read_yaml(os.path.join(GOLDEN, case, "current.yml"))


def hstate(leases=None):
    return types.SimpleNamespace(leases=leases or {}, owned_netns=set(), spec=None)


def with_nft(spec, current):
    """The current state plus netstitch's nft tables as they would be after an apply."""
    cur = copy.deepcopy(current)
    first = engine.compute(spec, cur, hstate())
    cur["nft"] = _tables_after(first.nft_cmds)
    return cur


def _tables_after(cmds):
    """Replay an nft transaction (as diff_all emits it from nothing) into the current_tables shape."""
    out = {}
    for c in cmds:
        (verb, body), = c.items()
        (kind, obj), = body.items()
        assert verb == "add", c
        if kind == "table":
            out[obj["family"]] = {"chains": {}, "sets": {}}
        elif kind == "chain":
            out[obj["family"]]["chains"][obj["name"]] = {
                "def": {k: obj[k] for k in ("type", "hook", "prio", "policy")}, "comments": []}
        elif kind == "rule":
            out[obj["family"]]["chains"][obj["chain"]]["comments"].append(obj["comment"])
        else:
            raise AssertionError("unexpected %s in %r" % (kind, c))
    return out


def test_compute_on_a_host_in_sync_does_nothing():
    spec, current = load("noop")
    res = engine.compute(spec, with_nft(spec, current), hstate())
    assert res.actions == [] and res.conflicts == []
    assert res.nft_cmds == [] and res.nft_texts == []
    assert res.leases == {"front": {"api/eth0": "10.10.0.2"}, "back": {"web/eth1": "10.20.0.2"}}


def test_compute_from_nothing_plans_links_and_the_nft_table():
    spec, current = load("create_from_empty")
    res = engine.compute(spec, current, hstate())
    assert res.conflicts == [] and len(res.actions) == 20
    assert res.nft_cmds[0] == {"add": {"table": {"family": "inet", "name": "netstitch"}}}
    assert res.nft_texts[0] == "create nft table inet netstitch"
    assert nftplan.diff_all(nftplan.desired_tables(spec, None), _tables_after(res.nft_cmds)) == ([], [])


def test_compute_reports_conflicts():
    spec, current = load("foreign_bridge")
    res = engine.compute(spec, current, hstate())
    assert len(res.conflicts) == 1 and "nsbr-front" in res.conflicts[0]


def test_view_of_a_host_in_sync_equals_the_view_of_the_desired_state():
    """--diff shows no difference when nothing changes."""
    spec, current = load("noop")
    res = engine.compute(spec, current, hstate())
    before, after = engine.view(current=current), engine.view(desired=res.desired)
    assert before == after
    assert sorted(after["endpoints"]) == ["api/eth0", "web/eth0", "web/eth1"]
    assert after["endpoints"]["web/eth0"] == {"network": "front", "host_ifname": "nsweb0", "address": "10.10.0.10/24",
                                              "mtu": 1500, "mac": "02:00:00:00:e0:00", "default_route": "10.10.0.1"}
    assert after["endpoints"]["web/eth1"]["default_route"] is None
    assert after["bridges"]["nsbr-back"] == {"network": "back", "mtu": 1500, "addresses": ["10.20.0.1/24"]}
    assert after["namespaces"] == ["api", "web"]


def test_view_of_current_shows_only_what_netstitch_owns():
    spec, current = load("prune")
    v = engine.view(current=current)
    assert sorted(v["bridges"]) == ["nsbr-back", "nsbr-front"]               # not nsbr-old (no alias)
    assert sorted(v["endpoints"]) == ["api/eth0", "web/eth0", "web/eth1"]    # not ns9f8e7d6c5b, nsold0
    # api's namespace was not read (not in the spec): its endpoint is listed without its container side
    assert v["endpoints"]["api/eth0"] == {"network": "front", "host_ifname": "nsapi0", "mtu": 1500}


def test_view_shows_what_a_change_would_do():
    spec, current = load("mtu_change")
    res = engine.compute(spec, current, hstate())
    before, after = engine.view(current=current), engine.view(desired=res.desired)
    changed = sorted(k for k in after["endpoints"] if after["endpoints"][k] != before["endpoints"][k])
    assert changed == ["api/eth0", "web/eth0"]
    assert before["bridges"]["nsbr-front"]["mtu"] == 1500 and after["bridges"]["nsbr-front"]["mtu"] == 9000
