"""Shapes of a host's current state, as the host side reads it (pure helpers to look into it).

current = {
  "links": {name: link},                # the host's own namespace
  "netns": {netns: {"links": {name: link}, "default_route": route or None, "routes": [{"dst", "gateway", "dev"}],
                    "neighbours": [{"dev", "ip", "mac"} permanent entries]} or None (namespace missing)},
  "routes": {"a.b.c.d/len": {"via": "a.b.c.d"}},   # host routes netstitch added (protocol marks.ROUTE_PROTO)
  "named_netns": [names in /run/netns],
  "broken_netns": [names in /run/netns that are no namespace: an empty file left by an interrupted create/remove],
  "owned_netns": [names netstitch created],
  "sysctl": {key: value},
  "nft": {family: {"chains": {name: {"def", "comments"}}, "sets": {name: {"def", "elements"}}}},  (kinds.nft)
  "tinc": {network: {"pubkey", "has_key", "files", "pid"}},                                         (kinds.tinc)
  "hosts_files": {netns: [[ip, name]] or None},                                                     (kinds.hosts_file)
  "docker_user": [rule tuples] or None (no DOCKER-USER chain here),                                 (kinds.docker_user)
  "docker_networks": {name: view} (only when the Docker Engine is involved),                        (kinds.docker_network)
  "docker_plugin": the Docker plugin's state (networks, endpoints, pools, leases) or None            (plugin.core)
}
link = {"index", "kind", "alias", "group" (marks.MARK_GROUP: made by netstitch), "master", "mtu", "up", "mac",
        "peer_index", "addresses": ["a.b.c.d/len", ...],
        and for vxlan: "vxlan": {"vni", "port", "local", "learning"}, "fdb": [[mac, dst], ...] (remote entries)}
route = {"gateway": "a.b.c.d", "dev": name}
"""

from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.marks import owned


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
