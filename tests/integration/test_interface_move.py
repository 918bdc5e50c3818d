"""A container interface moved to another network in one run: its old address goes, and with an interface's last
address the kernel drops its neighbour entries, the permanent gateway pin of the old network included. The planner
knows it (no unpin is planned for a flushed interface), and the driver takes an unpin of an entry that is already
gone as done, not as an error (found on container hosts: `unpin ... kernel said: No such file or directory`)."""

from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.drivers.netlink import Netlink

from nskit import assert_noop, base_topology, nsexec, ping


def pins(env, name):
    return nsexec(env.ns(name), "ip", "-4", "neigh", "show", "nud", "permanent").stdout


def test_an_interface_moved_to_another_network(env):
    topo = base_topology(env)
    topo["containers"] = {"web": topo["containers"]["web"], "web2": topo["containers"]["web2"]}
    # overlays: there each container pins its local gateway's MAC (a permanent neighbour entry)
    topo["networks"]["front"]["overlay"] = {"type": "vxlan", "vni": 71}
    topo["networks"]["back"]["overlay"] = {"type": "vxlan", "vni": 72}
    env.apply(topo)
    assert ping(env.ns("web2"), "10.77.1.1")
    assert "10.77.1.1" in pins(env, "web2")
    topo["containers"]["web2"]["interfaces"] = [{"network": "back"}]      # eth0: front -> back
    res = env.apply(topo)
    assert any(a.startswith("remove address 10.77.1.") and " eth0 " in a for a in res["actions"]), res["actions"]
    assert not any(a.startswith("unpin ") for a in res["actions"]), res["actions"]     # flushed with the address
    assert ping(env.ns("web2"), "10.77.2.1")
    have = pins(env, "web2")
    assert "10.77.1.1" not in have and "10.77.2.1" in have, have
    assert_noop(env.apply(topo))


def test_unpinning_an_entry_that_is_already_gone_is_done(env):
    topo = base_topology(env)
    topo["containers"] = {"web": topo["containers"]["web"]}
    env.apply(topo)
    nl = Netlink()
    try:
        nl.execute({"op": "neigh_del", "text": "unpin 10.77.1.99 on eth0", "ns": env.ns("web"), "dev": "eth0",
                    "ip": "10.77.1.99"})
        assert nl.writes == 1
    finally:
        nl.close()
