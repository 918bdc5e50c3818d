"""Kind: an existing host interface (a VM's tap, a NIC) enslaved to a network's bridge (networks.N.attach).

netstitch did not make the interface and changes nothing on it but its master: no alias, group, MTU, address or
state (so it carries no mark of its own). What netstitch owns is the enslavement, recorded in the host's state file
(``attached``: {interface: {"bridge", "index"}}, host.statefile) before the kernel is asked to make it. Only a
recorded enslavement is ever undone, and only by releasing the interface (nomaster), never by deleting it; an
interface someone else put on a bridge, or moved away from netstitch's, is not touched.

current["attached"]: the records whose interface still exists with the recorded index (host.machine.read).
"""

from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch import marks
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.actions import act, v4


KEY = "attachments"


def desired(ctx):
    """{interface: {"network", "bridge"}} of the host's attachments."""
    return {a["interface"]: {"network": n["name"], "bridge": n["bridge"]}
            for n in ctx.spec["networks"] for a in n.get("attach", ())}


def _ours_bridge(links, name):
    """Whether ``name`` is one of netstitch's bridges on the host."""
    link = links.get(name)
    return link is not None and link.get("kind") == "bridge" and marks.owned(link)


def diff(desired_state, current, out, ctx):
    links = current.get("links", {})
    ours = current.get("attached") or {}
    host = desired_state["host"]
    for name, want in sorted(desired_state.get(KEY, {}).items()):
        where = "networks.%s.attach (interface %s on host %s)" % (want["network"], name, host)
        have = links.get(name)
        if have is None:
            out.conflict("%s: there is no interface %s on host %s to attach" % (where, name, host))
            continue
        if marks.owned(have) or have.get("kind") == "bridge":
            out.conflict("%s: %s is %s; only an existing interface netstitch did not make (a tap, a NIC, a veth) "
                         "can be attached" % (where, name, "netstitch's own interface (%s)" % marks.alias_text(have)
                                              if marks.owned(have) else "a bridge"))
            continue
        master = have.get("master")
        if master == want["bridge"] and name in ours:
            continue
        addrs = v4(have.get("addresses") or [])
        if addrs and master != want["bridge"]:
            # (an uplink, most likely: a bridge port's addresses stop working, the host would lose them)
            out.conflict("%s: %s has addresses of its own (%s); enslaving it would cut them off: move them away "
                         "first (the network's bridge has its gateway address)" % (where, name, ", ".join(addrs)))
            continue
        # free, on netstitch's bridge (recorded or left by an interrupted run) or on a bridge netstitch enslaved it
        # to: netstitch's to (re-)enslave; a port of anything else is someone else's
        if master is not None and master != want["bridge"] and not (name in ours and _ours_bridge(links, master)):
            out.conflict("%s: %s is a port of %s, and netstitch did not put it there; release it there first"
                         % (where, name, master))
            continue
        if master == want["bridge"]:
            text = "record interface %s, already on bridge %s, as attached (network %s)" % (
                name, want["bridge"], want["network"])
        else:
            text = "attach interface %s to bridge %s (network %s)%s" % (
                name, want["bridge"], want["network"], "" if master is None else ", from %s" % master)
        out.add("veths", act("port_attach", text, name=name, master=want["bridge"], index=have["index"],
                             network=want["network"]))
    for name, rec in sorted(ours.items()):
        have = links.get(name)
        if name in desired_state.get(KEY, {}) or have is None or have.get("master") != rec["bridge"]:
            continue    # wanted, gone, or moved by someone else since (then its record is dropped: not ours)
        out.add("prune", act("port_release", "release interface %s from bridge %s (netstitch enslaved it; the "
                             "interface stays)" % (name, rec["bridge"]), name=name, master=rec["bridge"],
                             index=have["index"]))


def records(desired_state, attached):
    """What the state file keeps once a run has succeeded: the records of the attachments still wanted."""
    return {name: rec for name, rec in sorted((attached or {}).items()) if name in desired_state.get(KEY, {})}
