"""netstitch's nftables rules (nftplan): the desired table for masquerading, internal and quiet networks, and the
diff against listings in the shape of `nft -j list table inet netstitch`: absent, equal, changed, obsolete chains,
and an existing table that is no longer needed (removed, and nothing but it)."""

import copy

from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.controller import hostspec as comp
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.controller import validate
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.kinds import nft as nftplan

from .conftest import BASE

TABLE = {"family": "inet", "name": "netstitch"}


def spec_of(topo, host):
    return comp.host_specs(validate.load(topo))[host]


def _elem(e):
    """A map element as nft -j prints it: [key, value], a concatenation as {"concat": [...]}."""
    if isinstance(e, tuple) and len(e) == 2 and isinstance(e[0], tuple):
        return [{"concat": list(part)} if len(part) > 1 else part[0] for part in e]
    return e


def listing(tables, family="inet"):
    """The JSON nft prints for `list table <family> netstitch` holding ``tables`` (desired_tables shape), handles
    and metainfo included; None when the family has no table."""
    t = tables.get(family)
    if t is None:
        return None
    out = [{"metainfo": {"version": "1.0.6", "release_name": "Lester Gooch #5", "json_schema_version": 1}},
           {"table": {"family": family, "name": "netstitch", "handle": 7}}]
    handle = 1
    for name, s in sorted(t.get("sets", {}).items()):
        kind = "map" if "map" in s["def"] else "set"
        obj = dict({"family": family, "name": name, "table": "netstitch", "handle": handle}, **s["def"])
        if s["elements"]:
            obj["elem"] = [_elem(e) for e in s["elements"]]
        out.append({kind: obj})
        handle += 1
    for name, c in t["chains"].items():
        out.append({"chain": dict({"family": family, "table": "netstitch", "name": name, "handle": handle}, **c["def"])})
        handle += 1
        for r in c["rules"]:
            out.append({"rule": {"family": family, "table": "netstitch", "chain": name, "handle": handle,
                                 "comment": r["comment"], "expr": r["expr"]}})
            handle += 1
    return {"nftables": out}


def current(tables):
    return nftplan.current_tables({f: listing(tables, f) for f in ("inet", "bridge")})


def rules(tables, chain):
    return tables["inet"]["chains"][chain]["rules"]


def purposes(tables, chain):
    return [r["comment"].rsplit(" #", 1)[0] for r in rules(tables, chain)]


def only_netstitch(cmds):
    """Every command names netstitch's own table and nothing else."""
    for c in cmds:
        (verb, body), = c.items()
        (kind, obj), = body.items()
        assert (obj["name"] if kind == "table" else obj["table"]) == "netstitch", c
        assert obj["family"] in ("inet", "bridge"), c


# -- desired -------------------------------------------------------------------------------------------------------

def test_masquerade_and_internal_networks():
    t = nftplan.desired_tables(spec_of(copy.deepcopy(BASE), "h1"))
    assert set(t) == {"inet"} and set(t["inet"]["chains"]) == {"forward", "postrouting"}
    assert t["inet"]["chains"]["forward"]["def"] == {"type": "filter", "hook": "forward", "prio": 0, "policy": "accept"}
    assert t["inet"]["chains"]["postrouting"]["def"]["type"] == "nat"
    # front masquerades: its own subnet, leaving by any other interface than its bridge, not towards itself
    assert purposes(t, "postrouting") == ["masquerade front"]
    expr = rules(t, "postrouting")[0]["expr"]
    prefix = {"prefix": {"addr": "10.10.0.0", "len": 24}}
    assert {"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "saddr"}}, "right": prefix}} in expr
    assert {"match": {"op": "!=", "left": {"payload": {"protocol": "ip", "field": "daddr"}}, "right": prefix}} in expr
    assert {"match": {"op": "!=", "left": {"meta": {"key": "oifname"}}, "right": "nsbr-front"}} in expr
    assert expr[-1] == {"masquerade": None}
    # back is internal: nothing leaves it, and nothing from elsewhere opens a connection into either network
    fwd = purposes(t, "forward")
    assert "out back: internal" in fwd and "out front: internal" not in fwd
    assert "in back: closed to others" in fwd and "in front: closed to others" in fwd
    internal = [r for r in rules(t, "forward") if r["comment"].startswith("out back: internal")][0]["expr"]
    assert internal == [{"match": {"op": "==", "left": {"meta": {"key": "iifname"}}, "right": "nsbr-back"}},
                        {"drop": None}]
    # replies come before the drop that closes a network
    assert fwd.index("in front: replies") < fwd.index("in front: closed to others")


def test_a_network_without_masquerade_gets_no_nat_rule():
    t = nftplan.desired_tables(spec_of(copy.deepcopy(BASE), "h2"))     # back (internal), mgmt (masquerade: false)
    assert "postrouting" not in t["inet"]["chains"]
    assert not [p for p in purposes(t, "forward") if p.startswith("out mgmt")]


def test_comments_are_unique_and_carry_the_hash_of_the_expression():
    t = nftplan.desired_tables(spec_of(copy.deepcopy(BASE), "h1"))
    comments = [r["comment"] for c in t["inet"]["chains"].values() for r in c["rules"]]
    assert len(set(comments)) == len(comments)
    topo = copy.deepcopy(BASE)
    topo["networks"]["front"]["subnet"] = "10.11.0.0/24"
    topo["containers"]["web"]["interfaces"][0]["ip"] = "10.11.0.10"
    t2 = nftplan.desired_tables(spec_of(topo, "h1"))
    # same purpose, another expression: another comment
    assert purposes(t2, "postrouting") == purposes(t, "postrouting")
    assert rules(t2, "postrouting")[0]["comment"] != rules(t, "postrouting")[0]["comment"]


def test_a_host_without_networks_needs_no_table():
    assert nftplan.desired_tables(spec_of(copy.deepcopy(BASE), "h3")) == {}


# -- diff ------------------------------------------------------------------------------------------------------------

def test_diff_against_no_table_creates_it_whole():
    want = nftplan.desired_tables(spec_of(copy.deepcopy(BASE), "h1"))
    cmds, texts = nftplan.diff_all(want, {})
    only_netstitch(cmds)
    assert cmds[0] == {"add": {"table": TABLE}}
    assert [c["add"]["chain"]["name"] for c in cmds if "chain" in c.get("add", {})] == ["forward", "postrouting"]
    added = [c["add"]["rule"] for c in cmds if "rule" in c.get("add", {})]
    assert [r["comment"] for r in added] == [r["comment"] for ch in ("forward", "postrouting") for r in rules(want, ch)]
    assert texts[0] == "create nft table inet netstitch"
    assert len(texts) == len(cmds)


def test_diff_against_an_equal_listing_is_empty():
    want = nftplan.desired_tables(spec_of(copy.deepcopy(BASE), "h1"))
    assert nftplan.diff_all(want, current(want)) == ([], [])


def test_a_changed_network_rewrites_only_its_chain():
    before = nftplan.desired_tables(spec_of(copy.deepcopy(BASE), "h1"))
    topo = copy.deepcopy(BASE)
    topo["networks"]["front"]["subnet"] = "10.11.0.0/24"
    topo["containers"]["web"]["interfaces"][0]["ip"] = "10.11.0.10"
    after = nftplan.desired_tables(spec_of(topo, "h1"))
    assert rules(after, "forward") == rules(before, "forward")      # the forward rules name bridges, not subnets
    cmds, texts = nftplan.diff_all(after, current(before))
    only_netstitch(cmds)
    assert cmds[0] == {"flush": {"chain": {"family": "inet", "table": "netstitch", "name": "postrouting"}}}
    assert all(c.get("add", {}).get("rule", {}).get("chain") == "postrouting" for c in cmds[1:])
    assert len(cmds) == 1 + len(rules(after, "postrouting"))
    assert texts[0] == "rewrite nft chain postrouting (1 rules)"
    # and applying it (the listing after) converges
    assert nftplan.diff_all(after, current(after)) == ([], [])


def test_a_chain_no_longer_needed_is_removed():
    before = nftplan.desired_tables(spec_of(copy.deepcopy(BASE), "h1"))
    topo = copy.deepcopy(BASE)
    topo["networks"]["front"]["masquerade"] = False
    after = nftplan.desired_tables(spec_of(topo, "h1"))
    assert "postrouting" not in after["inet"]["chains"]
    cmds, texts = nftplan.diff_all(after, current(before))
    assert cmds == [{"flush": {"chain": {"family": "inet", "table": "netstitch", "name": "postrouting"}}},
                    {"delete": {"chain": {"family": "inet", "table": "netstitch", "name": "postrouting"}}}]
    assert texts == ["remove nft chain postrouting"]


def test_an_obsolete_chain_in_the_listing_is_removed():
    want = nftplan.desired_tables(spec_of(copy.deepcopy(BASE), "h1"))
    old = copy.deepcopy(want)
    old["inet"]["chains"]["legacy"] = {"def": {"type": "filter", "hook": "input", "prio": 0, "policy": "accept"},
                                       "rules": [{"comment": "from an older netstitch #0123456789", "expr": []}]}
    cmds, _rest = nftplan.diff_all(want, current(old))
    assert cmds == [{"flush": {"chain": {"family": "inet", "table": "netstitch", "name": "legacy"}}},
                    {"delete": {"chain": {"family": "inet", "table": "netstitch", "name": "legacy"}}}]


def test_a_chain_with_another_definition_is_recreated():
    want = nftplan.desired_tables(spec_of(copy.deepcopy(BASE), "h1"))
    old = copy.deepcopy(want)
    old["inet"]["chains"]["forward"]["def"] = dict(old["inet"]["chains"]["forward"]["def"], policy="drop")
    cmds, texts = nftplan.diff_all(want, current(old))
    ref = {"family": "inet", "table": "netstitch", "name": "forward"}
    assert cmds[:3] == [{"flush": {"chain": ref}}, {"delete": {"chain": ref}},
                        {"add": {"chain": dict(ref, **want["inet"]["chains"]["forward"]["def"])}}]
    assert len(cmds) == 3 + len(rules(want, "forward")) and texts[0] == "recreate nft chain forward"


def test_rules_changed_by_hand_are_put_back():
    want = nftplan.desired_tables(spec_of(copy.deepcopy(BASE), "h1"))
    for change in ("reorder", "drop one", "add one"):
        old = copy.deepcopy(want)
        fr = old["inet"]["chains"]["forward"]["rules"]
        if change == "reorder":
            fr.reverse()
        elif change == "drop one":
            fr.pop()
        else:
            fr.append({"comment": None, "expr": [{"accept": None}]})     # a rule someone added without comment
        cmds, _rest = nftplan.diff_all(want, current(old))
        assert cmds[0] == {"flush": {"chain": {"family": "inet", "table": "netstitch", "name": "forward"}}}, change
        assert len(cmds) == 1 + len(rules(want, "forward")), change


def test_an_empty_desired_removes_only_netstitchs_table():
    have = nftplan.desired_tables(spec_of(copy.deepcopy(BASE), "h1"))
    cmds, texts = nftplan.diff_all({}, current(have))
    assert cmds == [{"delete": {"table": TABLE}}]
    assert texts == ["remove nft table inet netstitch"]
    # nothing there, nothing wanted: nothing to do
    assert nftplan.diff_all({}, {}) == ([], [])
    assert nftplan.diff_all({}, None) == ([], [])


# -- published ports: one change, one element ----------------------------------------------------------------------

def _published(ports):
    topo = copy.deepcopy(BASE)
    topo["containers"]["web"]["publish"] = [{"host_port": p, "container_port": 80} for p in ports]
    sp = spec_of(topo, "h1")
    return nftplan.desired_tables(sp, addresses={("web", "eth0"): "10.10.0.10"})


def test_changing_one_published_port_touches_one_element():
    before, after = _published([8080, 8081, 8082]), _published([8080, 8081, 9090])
    assert before["inet"]["sets"] and "prerouting" in before["inet"]["chains"]
    cmds, texts = nftplan.diff_all(after, current(before))
    only_netstitch(cmds)
    assert cmds and len(texts) == len(cmds)
    # element changes only (no chain or set is rewritten), one element each: 9090 in, 8082 out
    for c in cmds:
        (verb, body), = c.items()
        assert verb in ("add", "delete") and list(body) == ["element"], c
        (elem,) = body["element"]["elem"]
        key = elem[0] if verb == "add" else elem
        assert key == {"concat": ["tcp", 9090 if verb == "add" else 8082]}, c
    assert {v for c in cmds for v in c} == {"add", "delete"}
    assert nftplan.diff_all(after, current(after)) == ([], [])
