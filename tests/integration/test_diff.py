"""--diff in topology terms (describe.py): for each kind of object a run can change, a check run and then the real
run name the change in their diff, and the rerun after it has an empty diff. On one lab host, with overlays whose
peers are hosts of the topology that are not applied here (their entries, routes and keys are programmed all the
same), and Docker's firewall chain made by hand in the host's namespace for the DOCKER-USER case."""

import copy
import os
import re
import shutil

import pytest

from nskit import base_topology, nsexec

PEER, PEER2 = "192.0.2.250", "192.0.2.251"


def fabric(env):
    """base_topology plus a VXLAN and a routed overlay shared with a host that is not applied here."""
    t = base_topology(env)
    t["hosts"][env.HOST]["underlay"] = env.underlay + "/24"
    t["hosts"]["peer"] = {"underlay": PEER + "/24"}
    # explicit slices: the default placement (underlay address modulo slices) varies with the lab host's address
    t["networks"]["ov"] = {"subnet": "10.78.0.0/24", "overlay": {
        "type": "vxlan", "vni": 178, "slices": {env.HOST: "10.78.0.0/28", "peer": "10.78.0.16/28"}}}
    t["networks"]["rt"] = {"subnet": "10.79.0.0/16", "overlay": {
        "type": "routed", "slices": {env.HOST: "10.79.1.0/24", "peer": "10.79.2.0/24"}}}
    t["containers"]["ovc"] = {"host": env.HOST, "netns": env.ns("ovc"),
                              "interfaces": [{"network": "ov"}, {"network": "rt", "default_route": False}]}
    t["containers"]["far"] = {"host": "peer",
                              "interfaces": [{"network": "ov"}, {"network": "rt", "default_route": False}]}
    return t


def _isolate(t):
    t["networks"]["front"]["isolated"] = True


def _link(t, name=None):
    _isolate(t)
    ln = {"client": "web2", "server": "web", "ports": [80]}
    if name:
        ln["name"] = name
    t["links"] = [ln]


def _far2(t):
    t["containers"]["far2"] = {"host": "peer", "interfaces": [{"network": "ov"}]}


def _peer2(t):
    t["hosts"]["peer2"] = {"underlay": PEER2 + "/24"}
    t["networks"]["rt"]["overlay"]["slices"]["peer2"] = "10.79.3.0/24"
    t["containers"]["far3"] = {"host": "peer2", "interfaces": [{"network": "rt"}]}


def _tinc(env):
    def change(t):
        t["networks"]["sec"] = {"subnet": "10.76.0.0/24", "overlay": {"type": "tinc"}}
        t["containers"]["sc"] = {"host": env.HOST, "netns": env.ns("sc"), "interfaces": [{"network": "sec"}]}
    return change


def _docker_net(env):
    def change(t):
        t["networks"]["front"]["docker"] = {"name": env.hostns + "-front"}
    return change


def _docker_user_chain(env):
    nsexec(env.hostns, "iptables", "-N", "DOCKER-USER")


def _extra(t):
    t["networks"]["extra"] = {"subnet": "10.75.0.0/24"}
    t["containers"]["web"]["interfaces"].append({"network": "extra", "name": "eth1", "default_route": False})


# kind -> (change before the first apply, the change under test, the words the diff must hold, real run too)
CASES = {
    "bridge": (None, lambda t: t["networks"]["front"].update(mtu=1400),
               [r"bridge nsbr-front \(network front\) changed: mtu 1500 -> mtu 1400"], True),
    "endpoint": (None, lambda t: t["containers"].update(cache={"host": "node", "interfaces": [{"network": "front"}]}),
                 [r"endpoint cache/eth0 \(network front\) added: address 10\.77\.1\.\d+/24"], True),
    "fdb": (None, _far2, [r"fdb [0-9a-f:]{17} dst %s on \S+ added" % re.escape(PEER)], True),
    "route": (None, _peer2, [r"route 10\.79\.3\.0/24 added: via %s, host peer2, network rt" % re.escape(PEER2)],
              True),
    "tinc": (None, "tinc", [r"tinc network sec added: device \S+", r"bridge nsbr-sec \(network sec\) added"], False),
    "published port": (None, lambda t: t["containers"]["web"].update(publish=[{"host_port": 8080,
                                                                               "container_port": 80}]),
                       [r"published port 8080/tcp -> web:80 added: container address 10\.77\.1\.10:80"], True),
    "isolation": (None, _isolate, [r"isolation of network front added"], True),
    "link": (_isolate, _link, [r"link web2 -> web tcp/80 added"], True),
    "masquerade/internal": (None, lambda t: t["networks"]["front"].update(masquerade=False),
                            [r"masquerade of network front removed"], True),
    "internal": (None, lambda t: t["networks"]["back"].update(internal=True),
                 [r"network back internal \(nothing leaves it\) added",
                  r"endpoint api/eth0 \(network back\) changed: route default via 10\.77\.2\.1 -> -"], True),
    "hosts file": (_isolate, lambda t: _link(t, name="webby"),
                   [r"hosts file /etc/netns/\S+-web2/hosts added: webby 10\.77\.1\.10"], True),
    "DOCKER-USER": ("chain", _extra, [r"DOCKER-USER accept from bridge nsbr-extra added",
                                      r"DOCKER-USER accept to bridge nsbr-extra added"], True),
    "Docker network": (None, "docker", [r"Docker network \S+-front added: bridge nsbr-front, subnet 10\.77\.1\.0/24"],
                       False),
}


def _diff_text(res):
    return "".join(d["before"] + d["after"] for d in res["diff"])


def _assert_named(res, patterns, where):
    lines = "\n".join(res["changes"])
    for p in patterns:
        assert re.search(p, lines), "%s: %r not in the changes:\n%s" % (where, p, lines)
    text = _diff_text(res)
    for p in patterns:
        # the diff shows the object (without the verb) on the side it is on
        obj = re.split(r" (?:added|removed|changed)", p)[0]
        assert re.search(obj, text), "%s: %r not in the diff:\n%s" % (where, obj, text)


@pytest.mark.parametrize("kind", sorted(CASES))
def test_the_diff_names_each_kind_of_change(env, kind):
    pre, change, patterns, real = CASES[kind]
    if kind == "Docker network" and not os.path.exists("/var/run/docker.sock"):
        pytest.skip("no Docker Engine on this machine")
    if kind == "tinc" and not shutil.which("tincd"):
        pytest.skip("no tincd")
    topo = fabric(env)
    if pre == "chain":
        _docker_user_chain(env)
    elif pre:
        pre(topo)
    first = env.apply(topo)
    assert first["changed"] and first["changes"] and first["diff"]
    assert env.apply(topo)["changes"] == [] and env.apply(topo)["diff"] == []      # a no-op has an empty diff
    new = copy.deepcopy(topo)
    if change == "tinc":
        change = _tinc(env)
    elif change == "docker":
        change = _docker_net(env)
    change(new)
    check = env.apply(new, check=True)
    assert check["changed"]
    _assert_named(check, patterns, "check mode")
    assert not any(check["writes"].values())
    if real:
        done = env.apply(new)
        _assert_named(done, patterns, "real run")
        assert done["changes"] == check["changes"]          # the check announced what the run did
        again = env.apply(new)
        assert again["changed"] is False and again["changes"] == [] and again["diff"] == []
    env.teardown()


def test_an_nft_table_flushed_by_hand_shows_as_the_objects_it_held(env):
    """The issue's case: `nft flush table inet netstitch` gave `changed` and no diff."""
    topo = fabric(env)
    topo["containers"]["web"]["publish"] = [{"host_port": 8080, "container_port": 80}]
    _link(topo)
    env.apply(topo)
    env.nft("flush", "table", "inet", "netstitch")
    res = env.apply(topo, check=True)
    text = "\n".join(res["changes"])
    for want in ("link web2 -> web tcp/80 added", "isolation of network front added",
                 "masquerade of network front added", "network vault internal (nothing leaves it) added",
                 "DNAT of published ports (prerouting and output) added"):
        assert want in text, (want, text)
    assert not re.search(r"#[0-9a-f]{10}", text + _diff_text(res)), text      # no rule hashes
    env.teardown()
