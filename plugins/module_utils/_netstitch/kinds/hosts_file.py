"""Kind: the names of linked servers in a client's hosts file: a block netstitch manages in
/etc/netns/<netns>/hosts (which `ip netns exec` shows as /etc/hosts) of each ``kind: netns`` container."""

from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.actions import act


def namespaces(spec):
    """The namespaces whose hosts files netstitch reads (its netns containers)."""
    return sorted({c["netns"] for c in (spec or {}).get("containers", []) if c["kind"] == "netns"})


KEY = None


def diff(desired_state, current, out, ctx):
    """``ctx.names``: {netns: [[ip, name]]} from links.resolve_links."""
    names = ctx.names
    have_names = current.get("hosts_files") or {}
    # a namespace netstitch removes takes its names with it (host.machine); one it did not make keeps existing
    going = set(current.get("owned_netns") or ()) - set(desired_state["netns"])
    for ns in sorted(set(names) | {n for n, v in have_names.items() if v}):
        here = ns in desired_state["netns"] or (ns in (current.get("named_netns") or ()) and ns not in going)
        if here and (have_names.get(ns) or []) != names.get(ns, []):
            out.add("files", act("hosts_write", "write names in /etc/netns/%s/hosts: %s" % (
                ns, ", ".join("%s=%s" % (n, ip) for ip, n in names.get(ns, [])) or "none"),
                netns=ns, entries=names.get(ns, [])))
