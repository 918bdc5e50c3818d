"""Kind: routed overlays (flannel host-gw): no encapsulation; each host owns its slice and routes the other hosts'
slices via their underlay addresses (routes marked with marks.ROUTE_PROTO). The containers' route to the whole
overlay subnet is part of their endpoint (kinds.endpoint)."""

from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.actions import act


KEY = "routes"


def desired(ctx):
    spec = ctx.spec
    routes = {}
    for n in spec["networks"]:
        o = n.get("overlay")
        if o and o["type"] == "routed":
            for r in o["routes"]:
                routes[r["dst"]] = {"via": r["via"], "network": n["name"], "host": r["host"]}
    return routes


def diff(desired_state, current, out, ctx):
    have_routes = current.get("routes", {})
    wanted = desired_state.get("routes", {})
    for dst, want in sorted(wanted.items()):
        if have_routes.get(dst, {}).get("via") != want["via"]:
            out.add("overlays", act("route_add", "route %s via %s (host %s, network %s)" % (
                dst, want["via"], want["host"], want["network"]), dst=dst, via=want["via"],
                replace=dst in have_routes))
    for dst, have in sorted(have_routes.items()):
        if dst not in wanted:
            out.add("overlays", act("route_del", "remove route %s via %s" % (dst, have["via"]), dst=dst,
                                    via=have["via"]))
