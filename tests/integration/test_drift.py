"""Drift: what happens to a host behind netstitch's back (a container restarted into an empty namespace, addresses,
MACs, MTUs and routes changed by hand) shows in gather (in_sync false), and the next apply repairs exactly that."""

import copy

from nskit import WEB_MAC, assert_noop, base_topology, endpoints, ping, run, wait_until


def _three_on_front(env):
    topo = base_topology(env)
    topo["containers"]["web3"] = {"host": env.HOST, "netns": env.ns("web3"), "interfaces": [{"network": "front"}]}
    return topo


def test_restarted_container_gets_its_interface_and_leased_address_back(env):
    topo = _three_on_front(env)
    first = endpoints(env.apply(topo))
    assert first["web2/eth0"]["address"] == "10.77.1.2/24" and first["web3/eth0"]["address"] == "10.77.1.3/24"
    # web2 leaves: web3 keeps .3, and .2 becomes the lowest free address
    topo2 = copy.deepcopy(topo)
    del topo2["containers"]["web2"]
    env.apply(topo2)
    assert env.gather()["in_sync"] is True

    # "restart" web3: its namespace is deleted and re-created empty under the same name (the veth dies with it)
    run("ip", "netns", "del", env.ns("web3"))
    run("ip", "netns", "add", env.ns("web3"))
    wait_until(lambda: env.link(first["web3/eth0"]["host_ifname"]) is None, what="the old veth to go with its netns")
    g = env.gather()
    assert g["in_sync"] is False
    assert any(p.startswith("create veth %s" % first["web3/eth0"]["host_ifname"]) for p in g["pending"]), g["pending"]

    res = env.apply(topo2)
    assert res["changed"]
    assert any(a.startswith("create veth %s" % first["web3/eth0"]["host_ifname"]) for a in res["actions"])
    assert "add address 10.77.1.3/24 to eth0 in %s" % env.ns("web3") in res["actions"]   # the lease, not .2
    assert env.link("eth0", ns=env.ns("web3"))["addresses"] == ["10.77.1.3/24"]
    # only web3 was touched
    assert all(env.ns("web3") in a or first["web3/eth0"]["host_ifname"] in a for a in res["actions"]), res["actions"]
    assert ping(env.ns("web"), "10.77.1.3") and ping(env.ns("web3"), "10.77.1.10")
    assert env.gather()["in_sync"] is True
    assert_noop(env.apply(topo2))

    # a namespace netstitch made, deleted by hand and not re-created: netstitch makes it again
    run("ip", "netns", "del", env.ns("web"))
    wait_until(lambda: env.link(first["web/eth0"]["host_ifname"]) is None, what="the veth to go with its netns")
    g = env.gather()
    assert g["in_sync"] is False and "create network namespace %s" % env.ns("web") in g["pending"]
    res = env.apply(topo2)
    assert "create network namespace %s" % env.ns("web") in res["actions"]
    link = env.link("eth0", ns=env.ns("web"))
    assert (link["addresses"], link["mac"]) == (["10.77.1.10/24"], WEB_MAC)
    assert ping(env.ns("web3"), "10.77.1.10")
    assert env.gather()["in_sync"] is True


def test_hand_made_changes_inside_containers_are_reported_and_repaired(env):
    topo = base_topology(env)
    eps = endpoints(env.apply(topo))
    web, db = env.ns("web"), env.ns("db")
    web_idx = env.link("eth0", ns=web)["index"]
    # by hand: web's fixed address replaced (which drops its default route), its MAC and MTU changed;
    # db (internal) given a default route
    env.ip("addr", "del", "10.77.1.10/24", "dev", "eth0", ns=web)
    env.ip("addr", "add", "10.77.1.99/24", "dev", "eth0", ns=web)
    env.ip("link", "set", "eth0", "address", "02:00:5e:00:00:99", "mtu", "1300", ns=web)
    env.ip("route", "add", "default", "via", "10.77.3.1", ns=db)

    g = env.gather()
    assert g["in_sync"] is False
    expected = [
        "set mac %s, mtu 1500 on eth0 in %s" % (WEB_MAC, web),
        "remove address 10.77.1.99/24 from eth0 in %s" % web,
        "add address 10.77.1.10/24 to eth0 in %s" % web,
        "route default via 10.77.1.1 dev eth0 in %s" % web,
        "remove default route via 10.77.3.1 dev eth0 in %s" % db,
    ]
    assert sorted(g["pending"]) == sorted(expected), g["pending"]
    assert g["endpoints"]["web/eth0"]["address"] == "10.77.1.99/24"      # gather shows the kernel as it is

    res = env.apply(topo)
    assert sorted(res["actions"]) == sorted(expected), res["actions"]
    link = env.link("eth0", ns=web)
    assert (link["index"], link["addresses"], link["mac"], link["mtu"]) == (web_idx, ["10.77.1.10/24"], WEB_MAC, 1500)
    assert env.ip("route", "show", "default", ns=web).split()[:5] == ["default", "via", "10.77.1.1", "dev", "eth0"]
    assert env.ip("route", "show", "default", ns=db).strip() == ""
    assert ping(web, "10.77.1.2")
    g = env.gather()
    assert g["in_sync"] is True and g["pending"] == []
    assert g["endpoints"]["web/eth0"]["address"] == eps["web/eth0"]["address"]
    assert_noop(env.apply(topo))


def test_hand_changed_allocated_address_returns_to_its_lease(env):
    topo = base_topology(env)
    env.apply(topo)
    web2 = env.ns("web2")
    env.ip("addr", "del", "10.77.1.2/24", "dev", "eth0", ns=web2)
    env.ip("addr", "add", "10.77.1.50/24", "dev", "eth0", ns=web2)
    g = env.gather()
    assert g["in_sync"] is False, "an allocated address changed by hand is drift from the lease"
    assert "add address 10.77.1.2/24 to eth0 in %s" % web2 in g["pending"], g["pending"]
    res = env.apply(topo)
    assert "remove address 10.77.1.50/24 from eth0 in %s" % web2 in res["actions"]
    assert env.link("eth0", ns=web2)["addresses"] == ["10.77.1.2/24"]
    assert env.gather()["in_sync"] is True
    assert_noop(env.apply(topo))
