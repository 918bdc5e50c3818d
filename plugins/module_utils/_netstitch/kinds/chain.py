"""Kind: service chains (issue 16, item 2): traffic between two networks passes through service containers.

Steering is by routes in the containers' own namespaces, never on the host: a container of the chain's ``from``
network routes the ``to`` subnet via the first service's address on ``from``, a container of ``to`` routes the
``from`` subnet via the last service's address on ``to`` (replies take the same services back: stateful firewalls and
load balancers see both directions), and each service routes on to the next and back to the previous one. Those
routes are the endpoints' own (kinds.endpoint carries them with the rest of an interface's routes, and removes them
when the chain goes); this kind adds what only a service needs: IPv4 forwarding switched on in its namespace.

Failing closed needs nothing here: the host's forward chain keeps every network closed to connections from the
others (kinds.nft, "closed to others"), so a client that goes around a service (its route gone, rewritten, or the
service's next hop down) reaches nothing. Forwarding in a service's namespace is only ever switched on, never off
(as the host's own: netstitch does not lower a switch someone else may need).
"""

from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch import links
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.actions import act

KEY = "chains"
FORWARD = "net/ipv4/ip_forward"     # read and written in a service's namespace (its /proc/sys/net)


def _namespaces(spec):
    return {c["name"]: c.get("netns") or c["docker"] for c in spec["containers"] if not c.get("absent")}


def forward_namespaces(spec):
    """The namespaces of this host's services (the host side reads their forwarding switch)."""
    nsof = _namespaces(spec)
    return sorted({nsof[s] for ch in spec.get("chains", []) for s in ch["forward"] if s in nsof})


def desired(ctx):
    """{netns: {"container", "chains": [names]}}: the namespaces that forward for a chain."""
    nsof = _namespaces(ctx.spec)
    out = {}
    for ch in ctx.spec.get("chains", []):
        for s in ch["forward"]:
            if s in nsof:
                out.setdefault(nsof[s], {"container": s, "chains": []})["chains"].append(ch["name"])
    return out


def routes(spec, addresses, peers):
    """({(container, ifname): [[dst, via, chain]]}, warnings): the chains' routes of this host's containers, the
    next hop's address from this host's allocations or another host's facts (prepare). A route whose next hop no
    one could tell is left out (the container's traffic then meets the closed networks: nothing bypasses)."""
    out, warnings = {}, []
    for ch in spec.get("chains", []):
        for r in ch["routes"]:
            via = links.address_of(r["via"], spec, addresses, peers)
            if via is None:
                warnings.append("chains.%s: the address of %s on host %s is not known in this run (host down?); %s's "
                                "route to %s is left out until a run reaches it"
                                % (ch["name"], r["via"]["container"], r["via"]["host"], r["container"], r["dst"]))
                continue
            out.setdefault((r["container"], r["ifname"]), []).append([r["dst"], via, ch["name"]])
    return out, warnings


def diff(desired_state, current, out, ctx):
    for ns, want in sorted((desired_state.get(KEY) or {}).items()):
        have = (current.get("netns") or {}).get(ns)
        if have is not None and have.get("ip_forward") == "1":
            continue
        names = ", ".join(want["chains"])
        out.add("containers", act("sysctl_set", "switch on forwarding in %s (service of chain %s)" % (ns, names),
                                  ns=ns, key=FORWARD, value="1", chain=names, container=want["container"]))
