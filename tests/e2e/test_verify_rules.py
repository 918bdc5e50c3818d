"""The expected-reachability rules of controller/reachability.py (pure: specs and endpoints in, checks out). No kernel, no Ansible."""

from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.controller import hostspec as ns_compile
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.controller import validate as ns_validate
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.controller import reachability

OUT = "198.51.100.1"


def fabric(topology, addresses):
    """Specs from a topology, and endpoints as apply would return them (addresses given per container/ifname)."""
    specs = ns_compile.host_specs(ns_validate.load(topology))
    endpoints = {}
    for host, spec in specs.items():
        eps = []
        for c in spec["containers"]:
            for itf in c["interfaces"]:
                eps.append({"container": c["name"], "interface": itf["name"], "network": itf["network"],
                            "address": addresses["%s/%s" % (c["name"], itf["name"])], "netns": c["netns"]})
        endpoints[host] = eps
    return specs, endpoints


def index(checks):
    return {(c["from_container"], c["to"]): c for c in checks}


BASE = {
    "hosts": {"h1": {"underlay": "192.0.2.1/24"}, "h2": {"underlay": "192.0.2.2/24"}},
    "networks": {
        "front": {"subnet": "198.51.100.64/26"},
        "back": {"subnet": "198.51.100.128/26", "internal": True},
    },
    "containers": {
        "a": {"host": "h1", "interfaces": [{"network": "front"}, {"network": "back"}]},
        "b": {"host": "h1", "interfaces": [{"network": "front"}]},
        "c": {"host": "h1", "interfaces": [{"network": "back"}]},
        "d": {"host": "h2", "interfaces": [{"network": "front"}]},
    },
}
ADDR = {"a/eth0": "198.51.100.66/26", "a/eth1": "198.51.100.130/26", "b/eth0": "198.51.100.67/26",
        "c/eth0": "198.51.100.131/26", "d/eth0": "198.51.100.68/26"}


def test_host_local_networks():
    specs, eps = fabric(BASE, ADDR)
    checks, skipped = reachability.expected_checks(specs, eps, outside=[OUT])
    by = index(checks)
    # same network, same host: reach; and each reaches its own gateway
    assert by[("a", "198.51.100.67")]["expect"] is True
    assert by[("a", "198.51.100.131")]["expect"] is True          # on back together
    assert by[("b", "198.51.100.65")]["kind"] == "gateway" and by[("b", "198.51.100.65")]["expect"] is True
    assert by[("c", "198.51.100.129")]["expect"] is True          # internal networks still reach their gateway
    # nothing reaches into another network
    assert by[("b", "198.51.100.131")]["expect"] is False
    assert by[("c", "198.51.100.67")]["expect"] is False
    # front is host-local: d on h2 is another segment
    assert by[("b", "198.51.100.68")]["kind"] == "other-host" and by[("b", "198.51.100.68")]["expect"] is False
    # the way out: masquerading front yes, internal-only c no
    assert by[("b", OUT)]["expect"] is True
    assert by[("c", OUT)]["expect"] is False
    assert not skipped
    # every check knows where to ping from
    assert all(c["from_netns"] and c["to"] for c in checks)


def test_an_address_used_on_both_hosts_segments_is_not_checked():
    addr = dict(ADDR, **{"d/eth0": "198.51.100.67/26"})              # same as b's, on h2's own segment of front
    specs, eps = fabric(BASE, addr)
    checks, skipped = reachability.expected_checks(specs, eps, outside=[])
    assert ("a", "198.51.100.67") in index(checks)                  # b, on a's own segment
    assert any(s["to"] == "d@h2/eth0" for s in skipped)


def test_overlay_spans_hosts():
    topo = {
        "hosts": BASE["hosts"],
        "networks": {"front": {"subnet": "198.51.100.64/26", "overlay": {"type": "vxlan", "vni": 7, "slice_len": 28}}},
        "containers": {"b": {"host": "h1", "interfaces": [{"network": "front"}]},
                       "d": {"host": "h2", "interfaces": [{"network": "front"}]}},
    }
    specs, eps = fabric(topo, {"b/eth0": "198.51.100.81/26", "d/eth0": "198.51.100.97/26"})
    by = index(reachability.expected_checks(specs, eps, outside=[])[0])
    assert by[("b", "198.51.100.97")]["kind"] == "overlay" and by[("b", "198.51.100.97")]["expect"] is True
    assert by[("d", "198.51.100.81")]["expect"] is True


def test_isolated_network_and_links():
    topo = {
        "hosts": {"h1": {"underlay": "192.0.2.1/24"}},
        "networks": {"iso": {"subnet": "198.51.100.64/26", "isolated": True}},
        "containers": {n: {"host": "h1", "interfaces": [{"network": "iso"}]} for n in ("x", "y", "z")},
        "links": [{"client": "x", "server": "y", "protocol": "any"},
                  {"client": "z", "network": "iso", "ports": [80]}],
    }
    specs, eps = fabric(topo, {"x/eth0": "198.51.100.66/26", "y/eth0": "198.51.100.67/26",
                               "z/eth0": "198.51.100.68/26"})
    by = index(reachability.expected_checks(specs, eps, outside=[])[0])
    assert by[("x", "198.51.100.67")]["kind"] == "link" and by[("x", "198.51.100.67")]["expect"] is True
    assert by[("y", "198.51.100.66")]["expect"] is False            # a link is one-way
    assert by[("z", "198.51.100.66")]["expect"] is False            # a tcp link does not let pings through
    assert by[("x", "198.51.100.68")]["kind"] == "isolated"


def test_for_host_and_report():
    specs, eps = fabric(BASE, ADDR)
    checks, _skipped = reachability.expected_checks(specs, eps, outside=[OUT])
    mine = reachability.for_host(checks, "h2")
    assert mine and all(c["from_host"] == "h2" for c in mine)
    results = [dict(c, reached=c["expect"], ok=True, error=None) for c in mine]
    results[0] = dict(results[0], reached=not results[0]["expect"], ok=False)
    lines = reachability.report(results, title="from h2")
    assert lines[0] == "from h2: %d checks, %d as expected, 1 mismatched" % (len(mine), len(mine) - 1)
    assert lines[1].split() == ["FROM", "TO", "ADDRESS", "KIND", "EXPECT", "GOT", "RESULT"]
    assert sum("MISMATCH" in line for line in lines) == 1


def test_missing_apply_result_is_reported_not_guessed():
    specs, eps = fabric(BASE, ADDR)
    del eps["h2"]
    checks, skipped = reachability.expected_checks(specs, eps, outside=[OUT])
    assert not [c for c in checks if c["from_host"] == "h2" or c["to"] == "198.51.100.68"]
    assert any("h2" in s["why"] for s in skipped)


def test_no_outside_by_default():
    """The outside is the deployment's to name: with none given, no check goes to any address beyond the fabric."""
    specs, eps = fabric(BASE, ADDR)
    checks, _skipped = reachability.expected_checks(specs, eps)
    assert checks, "the pairs are still checked"
    assert not [c for c in checks if c["kind"] == "outside"]
    assert reachability.OUTSIDE == ()


def test_macvlan_containers_share_one_segment_across_hosts():
    """networks.N.macvlan (issue 16): one physical segment across hosts; its router is the gateway; the way out is
    not netstitch's (no masquerade): skipped with the reason."""
    topo = {"hosts": {"h1": {"underlay": "192.0.2.1/24"}, "h2": {"underlay": "192.0.2.2/24"}},
            "networks": {"phys": {"subnet": "192.0.2.0/24", "gateway": "192.0.2.254",
                                  "macvlan": {"parent": "eth0", "ranges": {"h1": "192.0.2.96/28"}}}},
            "containers": {"m": {"host": "h1", "interfaces": [{"network": "phys"}]},
                           "n": {"host": "h2", "interfaces": [{"network": "phys", "ip": "192.0.2.120"}]}}}
    specs, eps = fabric(topo, {"m/eth0": "192.0.2.96/24", "n/eth0": "192.0.2.120/24"})
    checks, skipped = reachability.expected_checks(specs, eps, outside=[OUT])
    by = index(checks)
    assert by[("m", "192.0.2.120")]["expect"] is True and by[("n", "192.0.2.96")]["expect"] is True
    assert by[("m", "192.0.2.254")]["kind"] == "gateway"
    assert ("m", OUT) not in by and any(s["to"] == OUT and "does not masquerade" in s["why"] for s in skipped)
