"""Shapes of current host state, as the netlink driver reads it, and helpers to look into it (pure).

current = {
  "links": {name: link},                # the host's own namespace
  "netns": {netns: {"links": {name: link}, "default_route": route or None, "routes": [{"dst", "gateway", "dev"}],
                    "neighbours": [{"dev", "ip", "mac"} permanent entries]} or None (namespace missing)},
  "routes": {"a.b.c.d/len": {"via": "a.b.c.d"}},   # host routes netstitch added (protocol plan.ROUTE_PROTO)
  "named_netns": [names in /run/netns that are live namespaces],
  "stale_netns": [names in /run/netns whose namespace mount is gone (dead entries)],
  "owned_netns": [names netstitch created],
  "sysctl": {key: value},
}
link = {"index", "kind", "alias", "master", "mtu", "up", "mac", "peer_index", "addresses": ["a.b.c.d/len", ...],
        and for vxlan: "vxlan": {"vni", "port", "local", "learning"}, "fdb": [[mac, dst], ...] (remote entries)}
route = {"gateway": "a.b.c.d", "dev": name}
"""

from ansible_collections.netstitch.fabric.plugins.module_utils.netstitch.model import ALIAS_PREFIX


def owned(link):
    return bool(link) and (link.get("alias") or "").startswith(ALIAS_PREFIX)


def endpoint_peer(current, host_ifname, netns):
    """The container-side link of netstitch's veth ``host_ifname`` in ``netns``: (name, link) or (None, None).
    The pair is recognised when each end names the other's index."""
    host = current.get("links", {}).get(host_ifname)
    if not owned(host) or host.get("kind") != "veth":
        return None, None
    ns = (current.get("netns") or {}).get(netns)
    if not ns:
        return None, None
    for name, link in ns["links"].items():
        if link.get("peer_index") == host["index"] and host.get("peer_index") == link["index"]:
            return name, link
    return None, None
