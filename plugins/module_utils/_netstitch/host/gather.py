"""What netstitch manages on this host now (the info module), and whether it still matches the last applied spec."""

from typing import Any, Dict, Optional

from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch import describe, planner, ports, summary
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.kinds import inbound
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.host.machine import Host, resolve_docker
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.host.statefile import DEFAULT_STATE_DIR, HostState
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.plugin import hostside as plugin_state


def gather(host_name: str, state_dir: str = DEFAULT_STATE_DIR, host: Optional[Host] = None) -> Dict[str, Any]:
    """Bridges, endpoints with addresses, namespaces netstitch created, its nft rules and leases; plus ``in_sync``:
    whether the kernel still matches the last applied spec (drift shows as ``pending`` actions, and in topology
    terms, by kind, as ``drift``)."""
    own = host is None
    host = host or Host()
    try:
        hstate = HostState(state_dir, host_name)
        spec = hstate.spec or {"host": host_name, "networks": [], "containers": []}
        spec = resolve_docker(host, spec)[0]
        current = host.read(spec, hstate)
        out = summary.view(current=current)
        out["nft_rules"] = [r["rule"].get("comment") for f in ("inet", "bridge")
                            for r in (host.nft.read(f) or {}).get("nftables", []) if "rule" in r]
        out["leases"] = hstate.leases
        out["published"] = ports.published(hstate.spec or {}, hstate.ports)
        if inbound.outside_routes(hstate.spec):
            out["outside_routes"] = inbound.outside_routes(hstate.spec)     # routed gateways: what the outside needs
        if current.get("docker_plugin") and current["docker_plugin"]["endpoints"]:
            out["docker_plugin"] = plugin_state.summary(current["docker_plugin"])
        if hstate.spec is not None:
            again = planner.compute(spec, current, hstate.leases, hstate.peers, previous=hstate.spec)
            out["pending"] = again.pending
            out["in_sync"] = not out["pending"]
            # what differs from the last apply, by kind of object ("... missing", "... drifted: now a, applied b")
            out["drift"] = dict(describe.grouped(again.changes, drift=True))
            if again.conflicts:
                out["drift"]["conflict"] = list(again.conflicts)
        else:
            out["pending"], out["in_sync"], out["drift"] = [], None, {}
        return out
    finally:
        if own:
            host.close()
