"""A container interface moved to another network in one run: its veth is replaced, and the gateway pin of the old
network went with the old interface; removing that pin is then already done, not an error (found on container hosts:
`unpin ... kernel said: No such file or directory`)."""

from nskit import assert_noop, base_topology, nsexec, ping


def test_an_interface_moved_to_another_network(env):
    topo = base_topology(env)
    topo["containers"] = {"web": topo["containers"]["web"], "web2": topo["containers"]["web2"]}
    # overlays: there each container pins its local gateway's MAC (a permanent neighbour entry)
    topo["networks"]["front"]["overlay"] = {"type": "vxlan", "vni": 71}
    topo["networks"]["back"]["overlay"] = {"type": "vxlan", "vni": 72}
    env.apply(topo)
    assert ping(env.ns("web2"), "10.77.1.1")
    topo["containers"]["web2"]["interfaces"] = [{"network": "back"}]      # eth0: front -> back
    res = env.apply(topo)
    assert any(a.startswith("unpin 10.77.1.1 on eth0") for a in res["actions"]), res["actions"]
    assert ping(env.ns("web2"), "10.77.2.1")
    pins = nsexec(env.ns("web2"), "ip", "-4", "neigh", "show", "nud", "permanent").stdout
    assert "10.77.1.1" not in pins and "10.77.2.1" in pins, pins
    assert_noop(env.apply(topo))
