"""describe/ (pure): every action op and every kind of nftables object maps to a readable object of a known kind;
a plan with nothing to do describes nothing; the lines use topology words (no rule hashes)."""

import os
import re
import types

from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch import actions, describe, engine
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.controller import hostspec as comp
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.controller import validate
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.describe import objects

from .conftest import HERE, read_yaml

EMPTY = {"links": {}, "netns": {}, "named_netns": [], "owned_netns": [], "sysctl": {"net.ipv4.ip_forward": "0"},
         "routes": {}}


def _hstate(spec=None):
    return types.SimpleNamespace(leases={}, owned_netns=set(), spec=spec)


def _rich():
    specs = comp.host_specs(validate.load(read_yaml(os.path.join(HERE, "rich_topology.yml"))))
    return specs[sorted(specs)[0]]


def test_every_op_maps_to_a_kind():
    """An op added to actions.OPS without a place in describe would show as "other": this test names it."""
    ops = set(actions.OPS)
    ctx = describe.Context({"bridges": {"br": {}}, "endpoints": {"v1": {"netns": "c", "ifname": "eth0"}},
                            "vxlans": {"vx": {}}, "tincs": {"t": {"device": "tap"}}}, EMPTY)
    sample = {"sysctl_set": {"key": "k"}, "netns_add": {"netns": "c"}, "netns_del": {"netns": "c"}, "netns_clear": {"netns": "c"},
              "bridge_add": {"name": "br"}, "vxlan_add": {"name": "vx"}, "fdb_add": {"dev": "vx", "mac": "m", "dst": "d"},
              "fdb_del": {"dev": "vx", "mac": "m", "dst": "d"}, "route_add": {"dst": "x"}, "route_del": {"dst": "x"},
              "veth_add": {"name": "v1"}, "hosts_write": {"netns": "c"}, "docker_user_add": {"rule": ["-i", "br"]},
              "docker_user_del": {"rule": ["-i", "br"]}, "link_set": {"ns": None, "name": "br"},
              "addr_add": {"ns": "c", "name": "eth0"}, "addr_del": {"ns": None, "name": "br"},
              "link_del": {"ns": None, "name": "vx"}, "route_replace": {"ns": "c", "dev": "eth0"},
              "route_del_default": {"ns": "c", "dev": "eth0"}, "route_add_ns": {"ns": "c", "dev": "eth0"},
              "route_del_ns": {"ns": "c", "dev": "eth0"}, "neigh_replace": {"ns": "c", "dev": "eth0"},
              "neigh_del": {"ns": "c", "dev": "eth0"}, "dns_write": {"network": "n"}, "dns_stop": {"network": "n"},
              "resolv_write": {"netns": "c"}, "docker_hosts_write": {"container": "c", "docker_id": "0f"},
              "port_attach": {"name": "tap0"}, "port_release": {"name": "tap0"},
              "macvlan_add": {"ns": "c", "name": "eth1"}, "bgp_write": {"announce": []}, "bgp_stop": {},
              "tenant_nft": {"ns": "nsrt-t", "tenant": "t"}}
    unknown = []
    for op in sorted(ops - {"link_del_many"}):       # link_del_many exists only while executing (engine._batched)
        a = dict(sample.get(op, {}), op=op, text=op)
        if op.startswith("tinc_"):
            a["network"] = "t"
        if op.startswith("docker_net_"):
            a["name"] = "n"
        kind, _ident = objects.action_object(a, ctx)
        if kind not in describe.KINDS or kind == "other":
            unknown.append(op)
    assert not unknown, "ops without a kind in describe: %s" % unknown


def test_a_host_from_nothing_is_described_by_kind_in_topology_words():
    res = engine.compute(_rich(), dict(EMPTY), _hstate())
    lines = describe.lines(res.changes)
    kinds = [c["kind"] for c in res.changes]
    assert kinds == sorted(kinds, key=describe.KINDS.index)          # grouped, in KINDS order
    assert "other" not in kinds and "nft" not in kinds
    text = "\n".join(lines)
    for want in ("namespace webns added", "bridge nsbr-front (network front) added: mtu 1400",
                 "vxlan nsvx7 (network ov) added: vni 7", "fdb 00:00:00:00:00:00 dst 192.0.2.2 on nsvx7 added",
                 "published port 8080/tcp -> web:80 added", "link web -> db tcp/5432 added",
                 "isolation of network back added", "masquerade of network front added",
                 "network back internal (nothing leaves it) added", "hosts file /etc/netns/webns/hosts added"):
        assert want in text, (want, text)
    assert not re.search(r"#[0-9a-f]{10}", text)
    diff = describe.diff(res.changes, "h1")
    assert [d["after_header"] for d in diff][:2] == ["h1: sysctl (planned)", "h1: namespace (planned)"]
    assert all(d["before"] == "" for d in diff if d["after_header"] != "h1: sysctl (planned)")


def test_nothing_to_do_describes_nothing():
    spec = _rich()
    res = engine.compute(spec, dict(EMPTY), _hstate())
    as_read = {f: {"chains": {n: {"def": c["def"], "comments": [r["comment"] for r in c["rules"]]}
                              for n, c in t["chains"].items()}, "sets": t["sets"]} for f, t in res.tables.items()}
    assert describe.changes(res.context, [], res.tables, as_read) == []
    assert describe.diff([], "h1") == [] and describe.text([]) == ""


def test_docker_network_and_docker_user_and_tinc_lines():
    ctx = describe.Context({"bridges": {}, "endpoints": {}, "tincs": {}}, dict(EMPTY, docker_networks={}))
    want = {"bridge": "nsbr-a", "subnet": "10.1.0.0/24", "gateway": "10.1.0.1", "ip_range": "10.1.0.128/25",
            "mtu": "1500"}
    acts = [{"op": "docker_net_create", "text": "t", "name": "a", "want": want},
            {"op": "docker_user_add", "text": "t", "rule": ["-i", "nsbr-a", "-m", "comment", "--comment",
                                                            "netstitch nsbr-a out", "-j", "ACCEPT"]},
            {"op": "tinc_stop", "text": "stop tinc", "network": "sec"}]
    cur = dict(EMPTY, tinc={"sec": {"pubkey": "k", "has_key": True, "pid": 7, "files": {
        "tinc.conf": "Name = h1\nInterface = nstc1\nPort = 655\n", "hosts/h1": "", "hosts/h2": ""}}})
    ctx = describe.Context({"bridges": {}, "endpoints": {}, "tincs": {}}, cur)
    lines = describe.lines(describe.changes(ctx, acts))
    assert "Docker network a added: bridge nsbr-a, subnet 10.1.0.0/24, gateway 10.1.0.1, ip_range 10.1.0.128/25, " \
           "mtu 1500" in lines
    assert "DOCKER-USER accept from bridge nsbr-a added: comment 'netstitch nsbr-a out'" in lines
    assert any(l.startswith("tinc network sec removed: device nstc1, port 655") and "peers h2" in l
               and "daemon running" in l for l in lines), lines


def test_plugin_docker_network_lines():
    # a network of netstitch's plugin: its driver instead of bridge, ip_range and MTU, which it has none of
    want = {"driver": "nsplug", "ipam_driver": "nsplug", "subnet": "10.1.0.0/24", "gateway": "10.1.0.1",
            "ip_range": None, "netstitch_network": "a"}
    ctx = describe.Context({"bridges": {}, "endpoints": {}, "tincs": {}}, dict(EMPTY, docker_networks={}))
    lines = describe.lines(describe.changes(ctx, [{"op": "docker_net_create", "text": "t", "name": "a",
                                                   "want": want}]))
    assert "Docker network a added: driver nsplug, subnet 10.1.0.0/24, gateway 10.1.0.1" in lines, lines


def test_drift_words():
    c = {"kind": "bridge", "name": "bridge b", "before": ["mtu 1400"], "after": ["mtu 1500"]}
    assert describe.line(c, drift=True) == "bridge b drifted: now mtu 1400, applied mtu 1500"
    assert describe.line(dict(c, before=None), drift=True) == "bridge b missing: mtu 1500"
    assert describe.line(dict(c, after=None), drift=True).startswith("bridge b unexpected")


def test_the_public_names_exist():
    for name in describe.__all__:
        assert callable(getattr(describe, name)) or name == "KINDS", name
