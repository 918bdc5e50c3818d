"""Kind: a VXLAN device per overlay network and host, a port of the network's bridge, learning off; every peer is
programmed statically from the topology: an all-zero FDB entry to each peer (head-end replication of broadcast and
unknown traffic) and a permanent entry for every remote container MAC and remote bridge."""

from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch import marks
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.actions import ZERO_MAC, act, fmt_changes, port_changes
IDENTITY = ("vni", "port", "local", "learning")     # what the kernel cannot change on a VXLAN device


KEY = "vxlans"


def desired(ctx):
    spec = ctx.spec
    vxlans = {}
    for n in spec["networks"]:
        o = n.get("overlay")
        if not o or o["type"] != "vxlan":
            continue
        fdb = set()
        for p in o["peers"]:
            fdb.add((ZERO_MAC, p["underlay"]))
            fdb.update((mac, p["underlay"]) for mac in p["macs"])
        vxlans[o["device"]] = {
            "network": n["name"], "alias": marks.vxlan_alias(n["name"]), "vni": o["vni"], "port": o["port"],
            "local": o["local"], "learning": o["learning"], "mtu": n["mtu"], "master": n["bridge"],
            "fdb": sorted(fdb)}
    return vxlans


def diff(desired_state, current, out, ctx):
    links = current.get("links", {})
    wanted = desired_state.get("vxlans", {})
    for name, want in sorted(wanted.items()):
        have = links.get(name)
        if have is not None and (not marks.owned(have) or have.get("kind") != "vxlan"):
            out.conflict("networks.%s.overlay.device: interface %s exists on host %s and netstitch did not "
                         "create it" % (want["network"], name, desired_state["host"]))
            continue
        ident = {k: want[k] for k in IDENTITY}
        if have is not None and have.get("vxlan") != ident:
            out.add("replace", act("link_del", "replace vxlan %s (%s)" % (name, fmt_changes(ident)), ns=None,
                                   name=name))
            have = None
        if have is None:
            out.add("overlays", act("vxlan_add", "create vxlan %s (vni %d, local %s, port %d) on %s" % (
                name, want["vni"], want["local"], want["port"], want["master"]), name=name, alias=want["alias"],
                mtu=want["mtu"], master=want["master"], **ident))
            have_fdb = set()
        else:
            changes = port_changes(have, want["master"], want["mtu"], want["alias"])
            if changes:
                out.add("overlays", act("link_set", "set %s on vxlan %s" % (fmt_changes(changes), name), ns=None,
                                        name=name, changes=changes))
            have_fdb = set(tuple(e) for e in have.get("fdb", []))
        _fdb(name, have_fdb, set(tuple(e) for e in want["fdb"]), out)
    for name, link in sorted(links.items()):
        if marks.owned(link) and link.get("kind") == "vxlan" and name not in wanted:
            out.add("prune", act("link_del", "remove vxlan %s (%s)" % (name, marks.alias_text(link)), ns=None,
                                 name=name))


def _fdb(name, have_fdb, want_fdb, out):
    for mac, dst in sorted(have_fdb - want_fdb):
        out.add("overlays", act("fdb_del", "remove fdb %s dst %s from %s" % (mac, dst, name), dev=name, mac=mac,
                                dst=dst))
    for mac, dst in sorted(want_fdb - have_fdb):
        out.add("overlays", act("fdb_add", "add fdb %s dst %s to %s" % (mac, dst, name), dev=name, mac=mac, dst=dst))
