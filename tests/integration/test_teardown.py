"""Teardown (apply state: absent): everything netstitch made on a host goes (interfaces, the namespaces it created,
routes, nft tables, tinc daemon and keys, hosts-file blocks, DOCKER-USER rules, its state), and nothing else: the
host's namespace, a namespace it did not create, a foreign bridge, route, nft table, DOCKER-USER rule and hosts file
are byte-identical to what they were before netstitch's first apply."""

import os
import shutil
import signal

from nskit import add_netns, base_topology, netns_exists, nsexec, run, wait_until

from test_diff import fabric, _link


def _foreign(env):
    """Objects netstitch did not make, in the host namespace and in a namespace of the test."""
    h = env.hostns
    env.ip("link", "add", "fbr0", "type", "bridge")
    env.ip("addr", "add", "10.99.0.1/24", "dev", "fbr0")
    env.ip("link", "set", "fbr0", "up")
    env.ip("route", "add", "10.98.0.0/24", "via", env.underlay.rsplit(".", 1)[0] + ".254")
    nsexec(h, "nft", "add table inet foreign; add chain inet foreign c { type filter hook forward priority 5; }; "
                     "add rule inet foreign c ip saddr 10.99.0.0/24 counter accept")
    nsexec(h, "iptables", "-N", "DOCKER-USER")
    nsexec(h, "iptables", "-A", "DOCKER-USER", "-i", "fbr0", "-j", "ACCEPT")
    nsexec(h, "sysctl", "-qw", "net.ipv4.ip_forward=1")       # netstitch raises it and never lowers it
    # a namespace the test made, used by a container of the topology: netstitch must leave the namespace (and the
    # user's own lines of its hosts file) where it found them
    add_netns(env.ns("mine"))
    os.makedirs("/etc/netns/" + env.ns("mine"), exist_ok=True)
    with open("/etc/netns/%s/hosts" % env.ns("mine"), "w") as f:
        f.write("127.0.0.1\tlocalhost\n10.99.0.7\tmine-own-name\n")


def _iptables(env):
    return nsexec(env.hostns, "iptables", "-S").stdout


def _files(env):
    out = {}
    for d in sorted(os.listdir("/etc/netns")) if os.path.isdir("/etc/netns") else []:
        if d.startswith(env.hostns + "-"):
            p = os.path.join("/etc/netns", d, "hosts")
            out[d] = open(p).read() if os.path.exists(p) else None
    return out


def test_absent_removes_what_netstitch_made_and_nothing_else(env):
    _foreign(env)
    spaces = [env.hostns, env.ns("mine")]
    env.wait_settled(spaces)
    before = env.snapshot(spaces), _iptables(env), _files(env)

    topo = fabric(env)
    _link(topo, name="webby")                                # isolation, a link and a hosts-file name
    topo["links"].append({"client": "mine", "server": "web", "ports": [80], "name": "webby"})
    topo["containers"]["mine"] = {"host": env.HOST, "netns": env.ns("mine"), "interfaces": [{"network": "front"}]}
    topo["containers"]["web"]["publish"] = [{"host_port": 8080, "container_port": 80}]
    if shutil.which("tincd"):
        topo["networks"]["sec"] = {"subnet": "10.76.0.0/24", "overlay": {"type": "tinc"}}
        topo["containers"]["sc"] = {"host": env.HOST, "netns": env.ns("sc"), "interfaces": [{"network": "sec"}]}
    res = env.apply(topo)
    tinc_pid = None
    try:
        assert env.has_netstitch_table()
        assert "netstitch" in _iptables(env)
        assert "webby" in open("/etc/netns/%s/hosts" % env.ns("mine")).read()
        assert any(r.startswith("route ") for r in res["changes"]), res["changes"]      # the routed overlay's route
        if "sec" in topo["networks"]:
            pidfile = os.path.join(env.state_dir, "tinc", env.HOST, "sec", "tinc.pid")
            tinc_pid = int(open(pidfile).read().split()[0])
        env.wait_settled(spaces + env.mine())
        applied = env.snapshot(spaces + env.mine())

        # check mode lists the teardown, by kind, and changes nothing
        check = env.teardown(check=True)
        assert check["changed"]
        kinds = set(check["plan"])
        for k in ("bridge", "endpoint", "namespace", "vxlan", "route", "published port", "link", "isolation",
                  "masquerade/internal", "hosts file", "DOCKER-USER", "state") + (("tinc",) if tinc_pid else ()):
            assert k in kinds, (k, sorted(kinds))
        # the vxlan device takes its forwarding entries with it
        assert any(l.startswith("vxlan ") and " removed: vni 178" in l and "fdb entries 3" in l
                   for l in check["changes"]), [l for l in check["changes"] if "vxlan" in l]
        assert all(l.endswith(" removed") or " removed: " in l or " changed: " in l
                   for l in check["changes"]), check["changes"]
        assert not any(check["writes"].values())
        assert env.snapshot(spaces + env.mine()) == applied

        done = env.teardown()
        assert done["changed"] and done["changes"] == check["changes"]
    finally:
        if tinc_pid and os.path.exists("/proc/%d" % tinc_pid):
            env.teardown()
            if os.path.exists("/proc/%d" % tinc_pid):
                os.kill(tinc_pid, signal.SIGTERM)

    # everything netstitch made is gone ...
    wait_until(lambda: sorted(env.mine()) == [env.ns("mine")], what="netstitch's namespaces to go")
    if tinc_pid:
        wait_until(lambda: not os.path.exists("/proc/%d" % tinc_pid), what="tincd to stop")
    assert not os.path.exists(os.path.join(env.state_dir, "%s.json" % env.HOST))
    assert not os.path.exists(os.path.join(env.state_dir, "tinc"))
    assert not os.path.exists(os.path.join(env.state_dir, "%s.lock" % env.HOST))
    # ... and the rest is byte for byte as it was before netstitch's first apply
    env.wait_settled(spaces)
    assert env.snapshot(spaces) == before[0]
    assert _iptables(env) == before[1]
    assert _files(env) == before[2]
    assert netns_exists(env.ns("mine"))

    # a second teardown has nothing to do
    again = env.teardown()
    assert again["changed"] is False and again["changes"] == [] and not any(again["writes"].values())


def test_absent_on_a_host_netstitch_never_touched_changes_nothing(env):
    before = env.snapshot([env.hostns])
    res = env.teardown()
    assert res["changed"] is False and res["changes"] == [] and res["diff"] == []
    assert env.snapshot([env.hostns]) == before
    assert not os.path.exists(os.path.join(env.state_dir, "%s.json" % env.HOST))


def test_after_a_teardown_the_topology_applies_again(env):
    topo = base_topology(env)
    env.apply(topo)
    env.teardown()
    res = env.apply(topo)
    assert res["changed"] and "bridge nsbr-front (network front) added: mtu 1500, mac" in "\n".join(res["changes"])
    run("ip", "-n", env.hostns, "link", "show", "nsbr-front")
    env.teardown()
