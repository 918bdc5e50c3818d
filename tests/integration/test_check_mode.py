"""Check mode reports what it would do and changes nothing: host and container namespaces byte-identical."""

import copy
import os

from nskit import base_topology, endpoints


def test_check_mode_on_a_fresh_host_creates_nothing(env):
    topo = base_topology(env)
    env.wait_settled([env.hostns])
    before = env.snapshot([env.hostns])
    res = env.apply(topo, check=True)
    assert res["changed"] is True
    assert "create bridge nsbr-front (network front, mtu 1500)" in res["actions"]
    assert "create network namespace %s" % env.ns("web") in res["actions"]
    assert "create nft table inet netstitch" in res["actions"]
    assert not any(res["writes"].values()), res["writes"]
    assert env.snapshot([env.hostns]) == before
    assert env.mine() == []                                  # no container namespace was made
    assert not os.path.exists(env.state_dir)     # nor any lease recorded: not even the lock file or the directory
    # the real run then does what the check announced
    real = env.apply(topo)
    assert real["actions"] == res["actions"]
    assert real["endpoints"] == res["endpoints"]


def test_check_mode_on_a_running_host_changes_nothing(env):
    topo = base_topology(env)
    first = env.apply(topo)
    eps = endpoints(first)
    spaces = [env.hostns] + [env.ns(c) for c in ("web", "web2", "api", "db")]
    env.wait_settled(spaces)
    before = env.snapshot(spaces)

    topo2 = copy.deepcopy(topo)
    topo2["networks"]["front"]["mtu"] = 1400                              # change in place
    topo2["containers"]["web"]["interfaces"][0]["ip"] = "10.77.1.11"
    topo2["containers"]["cache"] = {"host": env.HOST, "netns": env.ns("cache"),   # add
                                    "interfaces": [{"network": "back"}]}
    del topo2["containers"]["web2"]                                       # prune a container...
    del topo2["networks"]["vault"]                                        # ...and a network
    del topo2["containers"]["db"]
    topo2["containers"]["api"]["interfaces"] = [{"network": "back", "name": "eth0"}]
    res = env.apply(topo2, check=True)
    assert res["changed"] is True
    acts = res["actions"]
    for want in ("set mtu 1400 on bridge nsbr-front",
                 "add address 10.77.1.11/24 to eth0 in %s" % env.ns("web"),
                 "create network namespace %s" % env.ns("cache"),
                 "remove network namespace %s" % env.ns("web2"),
                 "remove network namespace %s" % env.ns("db"),
                 "remove bridge nsbr-vault (bridge vault)"):
        assert want in acts, (want, acts)
    assert any(" nft " in a for a in acts), acts           # vault leaves netstitch's ruleset too
    assert "remove veth %s (veth web2/eth0 front)" % eps["web2/eth0"]["host_ifname"] in acts
    assert not any(res["writes"].values()), res["writes"]
    bridges = [d for d in res["diff"] if d["after_header"].endswith(": bridge (planned)")]
    assert len(bridges) == 1, res["diff"]
    assert "bridge nsbr-front (network front): mtu 1400," in bridges[0]["after"], bridges
    assert "bridge nsbr-front (network front): mtu 1500," in bridges[0]["before"], bridges
    assert "bridge nsbr-front (network front) changed: mtu 1500 -> mtu 1400" in res["changes"]

    after = env.snapshot(spaces)
    for ns in spaces:
        assert after[ns] == before[ns], ns
    assert after == before
    assert not os.path.exists("/run/netns/" + env.ns("cache"))
    g = env.gather()
    assert g["in_sync"] is True                # the host still matches the last real apply

    real = env.apply(topo2)
    assert real["actions"] == acts             # what the check announced is what the real run did
