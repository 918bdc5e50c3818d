"""Not only containers (issue 16, item 4a): an existing host interface netstitch did not make, enslaved to a network's
bridge (networks.N.attach), proven by real packets in a three-host lab.

The "VM" is a namespace behind a veth the test makes on host h1 (as a hypervisor makes a tap); netstitch owns only
the enslavement: it releases the interface when the attachment goes, never deletes it, and never touches an
interface it did not enslave.
"""

import json
import os

import nskit
# fabric: the fixture
from fabrickit import SUBNET, fabric  # noqa: F401 pylint: disable=unused-import

VM_IP = "10.81.0.200"
VM_MAC = "52:54:00:00:16:04"
BRIDGE = "nsbr-ov"
SETTLE = 15.0


def _vm(fabric, host="h1", tap="vmtap", ns_short="vm", ip=VM_IP, mac=VM_MAC):
    """A namespace behind a veth the test makes: ``tap`` on the host, eth0 (``ip``/24, ``mac``) in the "VM"."""
    vm, hns = fabric.cns(ns_short), fabric.hns(host)
    nskit.add_netns(vm)
    nskit.nsexec(hns, "ip", "link", "add", tap, "type", "veth", "peer", "name", "eth0", "netns", vm)
    nskit.nsexec(hns, "ip", "link", "set", tap, "up")
    nskit.nsexec(vm, "ip", "link", "set", "eth0", "address", mac)
    nskit.nsexec(vm, "ip", "addr", "add", ip + "/24", "dev", "eth0")
    nskit.nsexec(vm, "ip", "link", "set", "eth0", "up")
    return vm


def _link(fabric, host, name):
    r = nskit.nsexec(fabric.hns(host), "ip", "-j", "-d", "link", "show", "dev", name, check=False)
    return json.loads(r.stdout)[0] if r.returncode == 0 else None


def _state(fabric, host):
    with open(os.path.join(fabric.dir, "state", "%s.json" % host)) as f:
        return json.load(f)


def _topology(fabric, attach=True):
    def extra(topo):
        topo["networks"]["ov"]["hosts"] = ["h1", "h2"]     # the bridge stays on h1 without the attachment too
        if attach:
            topo["networks"]["ov"]["attach"] = [{"host": "h1", "interface": "vmtap", "ip": VM_IP, "mac": VM_MAC}]
    # the container is on h2 only
    return fabric.topology("vxlan", hosts=("h2",), extra=extra)


def test_a_vm_behind_a_tap_joins_the_overlay_and_is_released_not_deleted(fabric):
    vm = _vm(fabric)
    # an interface on h1 someone else put on netstitch's bridge later: never touched by netstitch
    first = fabric.apply_all(_topology(fabric))
    assert _link(fabric, "h1", "vmtap")["master"] == BRIDGE
    assert _state(fabric, "h1")["attached"] == {"vmtap": {"bridge": BRIDGE,
                                                          "index": _link(fabric, "h1", "vmtap")["ifindex"]}}
    c2 = nskit.addr(first["h2"]["endpoints"][0]["address"])
    assert c2 != VM_IP and c2.startswith(SUBNET["vxlan"].rsplit(".", 1)[0] + ".")
    # the VM reaches the container on another host across the VXLAN overlay, and the container reaches it
    nskit.wait_until(lambda: nskit.ping(vm, c2), SETTLE, "the VM on h1 to ping c2 on h2 (%s)" % c2)
    nskit.wait_until(lambda: nskit.ping(fabric.cns("c2"), VM_IP), SETTLE, "c2 to ping the VM")

    class _Env(object):
        procs = fabric.procs
    lst = nskit.Listener(_Env, fabric.cns("c2"), c2, 7100, lifetime=15)
    nskit.wait_until(lambda: nskit.connect(vm, c2, 7100, timeout=2), SETTLE, "TCP VM -> c2")
    assert VM_IP in lst.peers()
    # h2's VXLAN device has a static entry for the VM's MAC (declared), pointing at h1's underlay address
    fdb = nskit.nsexec(fabric.hns("h2"), "bridge", "fdb", "show", "dev", "nsvx4242").stdout
    assert "%s dst 192.0.2.1 " % VM_MAC in fdb, fdb
    # a rerun changes nothing; info (status --json) lists the recorded enslavement
    for res in fabric.apply_all(_topology(fabric)).values():
        nskit.assert_noop(res)
    info = json.loads(fabric.cli("h1", "status", "--json", ok=False).stdout)
    assert info["attached"] == {"vmtap": {"bridge": BRIDGE}} and info["in_sync"] is True

    # someone else's interface on netstitch's bridge: not netstitch's, never released
    nskit.nsexec(fabric.hns("h1"), "ip", "link", "add", "othtap", "type", "veth", "peer", "name", "othpeer")
    nskit.nsexec(fabric.hns("h1"), "ip", "link", "set", "othtap", "master", BRIDGE)

    # the attachment goes: the interface is released (nomaster), still there, still up; the VM is cut off
    index = _link(fabric, "h1", "vmtap")["ifindex"]
    res = fabric.apply_all(_topology(fabric, attach=False))
    assert res["h1"]["changed"]
    tap = _link(fabric, "h1", "vmtap")
    assert tap is not None and tap["ifindex"] == index and "master" not in tap, tap
    assert "UP" in tap["flags"]
    assert "attached" not in _state(fabric, "h1")
    assert _link(fabric, "h1", "othtap")["master"] == BRIDGE
    nskit.assert_no_ping(vm, c2)
    for res in fabric.apply_all(_topology(fabric, attach=False)).values():
        nskit.assert_noop(res)


def test_an_interface_on_someone_elses_bridge_is_a_conflict_and_left_alone(fabric):
    _vm(fabric)
    h1 = fabric.hns("h1")
    nskit.nsexec(h1, "ip", "link", "add", "hvbr0", "type", "bridge")
    nskit.nsexec(h1, "ip", "link", "set", "vmtap", "master", "hvbr0")
    path = fabric._write(_topology(fabric))
    r = fabric.cli("h1", "apply", path, ok=False)
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert ("networks.ov.attach (interface vmtap on host h1): vmtap is a port of hvbr0, and netstitch did not put it "
            "there") in r.stdout + r.stderr
    assert _link(fabric, "h1", "vmtap")["master"] == "hvbr0"
    # a declared interface that does not exist is named too
    nskit.nsexec(h1, "ip", "link", "del", "vmtap")
    r = fabric.cli("h1", "apply", path, ok=False)
    assert "there is no interface vmtap on host h1 to attach" in r.stdout + r.stderr


def test_teardown_releases_what_netstitch_enslaved(fabric):
    _vm(fabric)
    fabric.apply_all(_topology(fabric))
    assert _link(fabric, "h1", "vmtap")["master"] == BRIDGE
    r = fabric.cli("h1", "down", ok=False)
    assert r.returncode == 0, r.stderr
    tap = _link(fabric, "h1", "vmtap")
    assert tap is not None and "master" not in tap, tap
    assert _link(fabric, "h1", BRIDGE) is None


def _cli_env(fabric, host, env, *args):
    import os as _os
    import subprocess
    from fabrickit import CLI
    return subprocess.run(["nsenter", "--net=/run/netns/%s" % fabric.hns(host), "--"] + CLI + list(args) +
                          ["--host", host, "--state-dir", os.path.join(fabric.dir, "state")],
                          capture_output=True, text=True, timeout=120, check=False, env=dict(_os.environ, **env))


def _local_topology(attach=True):
    net = {"subnet": "10.63.0.0/24"}
    if attach:
        net["attach"] = [{"host": "h1", "interface": "vmtap", "ip": "10.63.0.200"}]
    return {"version": 1, "hosts": {"h1": {"underlay": "192.0.2.1/24"}}, "networks": {"lan": net},
            "containers": {}}


def test_a_crash_at_any_write_leaves_an_enslavement_netstitch_knows(fabric, tmp_path):
    """The record is written before the enslavement: killed at any write point of the apply, the next apply
    converges, and a teardown then releases the interface (so no enslavement is ever left that netstitch would not
    release)."""
    _vm(fabric, ip="10.63.0.200")
    path = fabric._write(_local_topology())
    count = tmp_path / "points"
    r = _cli_env(fabric, "h1", {"NETSTITCH_FAULT": "count:%s" % count}, "apply", path)
    assert r.returncode == 0, r.stderr
    points = count.read_text().splitlines()
    assert any("rename" in p for p in points) and len(points) >= 5, points
    assert _cli_env(fabric, "h1", {}, "down").returncode == 0
    assert "master" not in _link(fabric, "h1", "vmtap")
    for n in range(1, len(points) + 1):
        r = _cli_env(fabric, "h1", {"NETSTITCH_FAULT": "kill:%d" % n}, "apply", path)
        assert r.returncode == -9, (n, points[n - 1], r.returncode, r.stderr)
        r = _cli_env(fabric, "h1", {}, "apply", path)
        assert r.returncode == 0, (n, points[n - 1], r.stderr)
        assert _link(fabric, "h1", "vmtap")["master"] == "nsbr-lan", (n, points[n - 1])
        assert "vmtap" in _state(fabric, "h1")["attached"]
        r = _cli_env(fabric, "h1", {}, "down")
        assert r.returncode == 0, (n, points[n - 1], r.stderr)
        tap = _link(fabric, "h1", "vmtap")
        assert tap is not None and "master" not in tap, (n, points[n - 1], tap)


def test_a_failed_apply_rolls_the_enslavement_back(fabric):
    """An apply that fails after the enslavement returns the host to the last successful apply: the interface is
    released (it was recorded first), not deleted."""
    _vm(fabric, ip="10.63.0.200")
    first = _cli_env(fabric, "h1", {}, "apply", fabric._write(_local_topology(attach=False)), "--json")
    assert first.returncode == 0, first.stderr
    path = fabric._write(_local_topology())
    plan = _cli_env(fabric, "h1", {}, "plan", path, "--json")
    actions = json.loads(plan.stdout)["actions"]
    at = [i for i, t in enumerate(actions) if t.startswith("attach interface vmtap")]
    assert at, actions
    # fail at the action after the enslavement (or at the nft transaction / verification after it)
    r = _cli_env(fabric, "h1", {"NETSTITCH_FAULT": "fail-action:%d" % (at[0] + 1)}, "apply", path)
    assert r.returncode != 0 and "rolled back" in r.stderr + r.stdout, r.stderr + r.stdout
    tap = _link(fabric, "h1", "vmtap")
    assert tap is not None and "master" not in tap, tap
    assert "attached" not in _state(fabric, "h1")
