"""What netstitch manages on this host now (the info module), and whether it still matches the last applied spec."""

from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch import planner, summary
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.host.machine import Host, resolve_docker
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.host.statefile import DEFAULT_STATE_DIR, HostState
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.plugin import hostside as plugin_state


def gather(host_name, state_dir=DEFAULT_STATE_DIR, host=None):
    """Bridges, endpoints with addresses, namespaces netstitch created, its nft rules and leases; plus ``in_sync``:
    whether the kernel still matches the last applied spec (drift shows as ``pending`` actions)."""
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
        if current.get("docker_plugin") and current["docker_plugin"]["endpoints"]:
            out["docker_plugin"] = plugin_state.summary(current["docker_plugin"])
        if hstate.spec is not None:
            out["pending"] = planner.compute(spec, current, hstate.leases, hstate.peers).pending
            out["in_sync"] = not out["pending"]
        else:
            out["pending"], out["in_sync"] = [], None
        return out
    finally:
        if own:
            host.close()
