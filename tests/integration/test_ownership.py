"""netstitch touches only what it made: foreign interfaces, nft tables and namespaces survive every run
byte-for-byte, and an object in the way of a desired one stops the run before anything changes."""

import copy

import pytest

from nskit import _untick, add_netns, base_topology, endpoints, netns_exists, nsexec, ping, run, wait_until

FOREIGN_NFT = """
table inet foreign {
    chain fwd_hand {
        type filter hook forward priority 0; policy accept;
        iifname "frv0" tcp dport 9 drop
    }
}
table ip nat {
    chain postrouting {
        type nat hook postrouting priority 100; policy accept;
        ip saddr 10.250.0.0/24 oifname "eth0" masquerade
    }
}
"""


def _make_foreign(env):
    """A bridge with an address, a veth pair with one end on it, two nft tables (one hooked at netstitch's own
    forward and postrouting points), all made by hand in the host namespace; and a namespace made by hand."""
    env.ip("link", "add", "frbr0", "type", "bridge")
    env.ip("addr", "add", "10.250.0.1/24", "dev", "frbr0")
    env.ip("link", "set", "frbr0", "up")
    env.ip("link", "add", "frv0", "type", "veth", "peer", "name", "frv1")
    env.ip("link", "set", "frv0", "master", "frbr0", "up")
    env.ip("link", "set", "frv1", "up")
    nsexec(env.hostns, "nft", "-f", "-", input=FOREIGN_NFT)
    add_netns(env.ns("pre"))


def _foreign(env):
    return {
        "links": {dev: _untick(env.ip("-d", "link", "show", "dev", dev)) for dev in ("frbr0", "frv0", "frv1")},
        "addrs": {dev: _untick(env.ip("-d", "addr", "show", "dev", dev)) for dev in ("frbr0", "frv0", "frv1")},
        "nft_foreign": env.nft("list", "table", "inet", "foreign").stdout,
        "nft_nat": env.nft("list", "table", "ip", "nat").stdout,
        "pre_netns": netns_exists(env.ns("pre")),
    }


def test_foreign_objects_survive_create_change_and_prune(env):
    _make_foreign(env)
    env.wait_settled([env.hostns])
    foreign = _foreign(env)
    assert "tcp dport 9 drop" in foreign["nft_foreign"] and "masquerade" in foreign["nft_nat"]

    topo = base_topology(env)
    # a container in a namespace netstitch did not make
    topo["containers"]["pre"] = {"host": env.HOST, "netns": env.ns("pre"), "interfaces": [{"network": "front"}]}
    env.apply(topo)
    assert _foreign(env) == foreign
    assert ping(env.ns("web"), "10.77.1.2")                     # netstitch works next to the foreign tables

    topo2 = copy.deepcopy(topo)                                 # change
    topo2["networks"]["front"]["mtu"] = 1400
    topo2["containers"]["web"]["interfaces"][0]["ip"] = "10.77.1.11"
    topo2["containers"]["cache"] = {"host": env.HOST, "netns": env.ns("cache"), "interfaces": [{"network": "back"}]}
    assert env.apply(topo2)["changed"]
    assert _foreign(env) == foreign

    topo3 = copy.deepcopy(topo2)                                # prune a container and a network
    del topo3["containers"]["web2"]
    del topo3["containers"]["db"]
    del topo3["networks"]["vault"]
    topo3["containers"]["api"]["interfaces"] = [{"network": "back", "name": "eth0"}]
    assert env.apply(topo3)["changed"]
    assert _foreign(env) == foreign

    empty = {"hosts": {env.HOST: {}}, "networks": {}, "containers": {}}   # remove everything
    res = env.apply(empty)
    assert "remove nft table inet netstitch" in res["actions"]
    assert _foreign(env) == foreign
    assert not env.has_netstitch_table()
    assert sorted(env.links()) == ["eth0", "frbr0", "frv0", "frv1", "lo"]
    # the namespace netstitch did not create stays (empty of netstitch's interface); the ones it made are gone
    assert env.mine() == [env.ns("pre")]
    assert sorted(env.links(ns=env.ns("pre"))) == ["lo"]
    assert "remove network namespace %s" % env.ns("pre") not in res["actions"]


def test_a_namespace_name_reused_by_someone_else_is_not_netstitchs(env):
    topo = base_topology(env)
    host_end = endpoints(env.apply(topo))["web2/eth0"]["host_ifname"]
    web2 = env.ns("web2")
    # netstitch made web2's namespace; someone removes it by hand, then web2 leaves the topology
    run("ip", "netns", "del", web2)
    wait_until(lambda: env.link(host_end) is None, what="web2's veth to go with its namespace")
    topo2 = copy.deepcopy(topo)
    del topo2["containers"]["web2"]
    res = env.apply(topo2)
    assert not any(web2 in a and "namespace" in a for a in res["actions"]), res["actions"]
    # later someone else makes a namespace of that name for their own use: netstitch must leave it alone
    add_netns(web2)
    env.ip("link", "set", "lo", "up", ns=web2)
    res = env.apply(topo2)
    assert "remove network namespace %s" % web2 not in res["actions"]
    assert netns_exists(web2)
    assert env.gather()["in_sync"] is True
    empty = {"hosts": {env.HOST: {}}, "networks": {}, "containers": {}}
    env.apply(empty)
    assert env.mine() == [web2]


def _conflict_foreign_bridge(env, topo):
    env.ip("link", "add", "nsbr-front", "type", "bridge")
    return "nsbr-front", "netstitch did not create it"


def _conflict_foreign_veth(env, topo):
    topo["containers"]["web"]["interfaces"][0]["host_name"] = "vweb0"
    env.ip("link", "add", "vweb0", "type", "veth", "peer", "name", "vweb1")
    return "vweb0", "netstitch did not create it"


def _conflict_in_container(env, topo):
    add_netns(env.ns("web"))
    env.ip("link", "add", "eth0", "type", "veth", "peer", "name", "eth1", ns=env.ns("web"))
    return "eth0", "already exists in namespace %s" % env.ns("web")


@pytest.mark.parametrize("make", [_conflict_foreign_bridge, _conflict_foreign_veth, _conflict_in_container],
                         ids=["foreign-bridge-with-the-desired-name", "foreign-veth-with-the-desired-name",
                              "foreign-interface-in-the-container"])
def test_an_object_in_the_way_fails_the_run_and_nothing_changes(env, make):
    topo = base_topology(env)
    name, why = make(env, topo)
    env.wait_settled([env.hostns] + env.mine())
    spaces = [env.hostns] + env.mine()
    before = env.snapshot(spaces)
    err = env.apply(topo, ok=False)
    assert err["type"] == "ApplyError"
    assert "nothing was changed" in err["error"] and "conflict" in err["error"], err["error"]
    assert name in err["error"] and why in err["error"], err["error"]
    assert env.snapshot(spaces) == before                      # no bridge, veth, namespace, address or nft table
    assert not env.has_netstitch_table()
    # check mode fails the same way
    err2 = env.apply(topo, check=True, ok=False)
    assert err2["error"] == err["error"]


def test_batch_prune_never_removes_a_foreign_link_sharing_its_link_group(env):
    """Prune removes its veths in one kernel batch by putting them in a random link group and deleting the group.
    Force that group to be one a foreign veth pair is already in: the dump check must see the clash, fall back to
    removing netstitch's links one by one, and leave the foreign pair (and its group) alone."""
    topo = base_topology(env)
    first = env.apply(topo)
    eps = endpoints(first)
    group = 424242
    run("ip", "-n", env.hostns, "link", "add", "fgn-a", "type", "veth", "peer", "name", "fgn-b")
    run("ip", "-n", env.hostns, "link", "set", "fgn-a", "group", str(group))
    foreign = run("ip", "-n", env.hostns, "-d", "link", "show", "dev", "fgn-a").stdout
    smaller = copy.deepcopy(topo)
    for name in ("web2", "db"):
        del smaller["containers"][name]
    res = env.call("apply", smaller, group=group)
    # the batch was tried and fell back: 2 group marks + 2 single removals + the 2 namespaces netstitch made
    assert res["writes"]["netlink"] == 6, res["writes"]
    gone = [eps["web2/eth0"]["host_ifname"], eps["db/eth0"]["host_ifname"]]
    assert any(a.startswith("remove veth") for a in res["actions"]), res["actions"]
    links = run("ip", "-n", env.hostns, "-o", "link", "show").stdout
    for name in gone:
        assert name not in links, (name, links)
    assert eps["web/eth0"]["host_ifname"] in links
    assert run("ip", "-n", env.hostns, "-d", "link", "show", "dev", "fgn-a").stdout == foreign
    assert "fgn-b" in links
    # without a clash, removing everything leaves the foreign pair too
    res = env.apply({"version": 1, "hosts": topo["hosts"], "networks": {}, "containers": {}})
    links = run("ip", "-n", env.hostns, "-o", "link", "show").stdout
    assert "fgn-a" in links and "fgn-b" in links and "nsbr-" not in links
