"""Automatic host ports (``host_port: auto``, Docker's ``-p 80``): pure. The host picks a free port from AUTO_RANGE
for every published port without a fixed host port, and records its choice in the host state file (``ports``,
like address leases), so the same mapping keeps its port on every later run.

A port is free when no socket listens on it (the protocol's), it is outside the kernel's ephemeral range (the
ports the host's own outgoing connections take), nothing else in the host spec publishes it (a fixed port of
any container, or an automatic port chosen before it in this run), and neither netstitch's Docker plugin nor the
Docker Engine publishes it on the host (``extra``: their DNAT needs no listening socket). A recorded port stays with
its mapping even if something started listening on it since (the mapping came first; its DNAT rule hides that
socket); one that the plugin or Docker publishes now is chosen anew (two DNAT rules for one port: one would lose)."""

import copy

AUTO_RANGE = (20000, 29999)     # documented in README (Published ports); below the kernel's default ephemeral range


def lease_key(p):
    """The stable name of one automatic mapping: container, host address, protocol and container port."""
    return "%s %s %s/%d" % (p["container"], p.get("host_ip") or "*", p["protocol"], p["container_port"])


def resolve(spec, leases, listening, ephemeral, extra=()):
    """(spec with every host port set, new leases {lease_key: port}, [lease keys chosen now], problems).

    ``leases``: the recorded choices; ``listening``: {(protocol, port)} of the host's listening sockets;
    ``ephemeral``: (low, high) of ip_local_port_range; ``extra``: {(protocol, port)} published by others (the Docker
    plugin's endpoints, the Docker Engine's containers). Without an automatic mapping the spec is returned as it
    is."""
    auto = [p for p in spec.get("publish", []) if p.get("host_port") is None]
    if not auto:
        return spec, {}, [], []
    spec = copy.deepcopy(spec)
    taken = {(p["protocol"], p["host_port"]) for p in spec["publish"] if p.get("host_port") is not None}
    taken |= set(extra)
    new, fresh, problems = {}, [], []
    auto = [p for p in spec["publish"] if p.get("host_port") is None]
    # recorded choices first, so a new mapping never takes the port of one that keeps its own
    for p in auto:
        port = leases.get(lease_key(p))
        if isinstance(port, int) and (p["protocol"], port) not in taken:
            p["host_port"] = port
            taken.add((p["protocol"], port))
            new[lease_key(p)] = port
    low, high = ephemeral or (0, -1)
    candidates = [n for n in range(AUTO_RANGE[0], AUTO_RANGE[1] + 1) if not low <= n <= high]
    for p in auto:
        if p["host_port"] is not None:
            continue
        port = next((n for n in candidates if (p["protocol"], n) not in taken
                     and (p["protocol"], n) not in listening), None)
        if port is None:
            problems.append("%s %s: no free host port left in %d-%d (outside the ephemeral range %d-%d) on host %s"
                            % (p["container"], lease_key(p).split(" ", 2)[2], AUTO_RANGE[0], AUTO_RANGE[1],
                               low, high, spec["host"]))
            continue
        p["host_port"] = port
        taken.add((p["protocol"], port))
        new[lease_key(p)] = port
        fresh.append(lease_key(p))
    if problems:
        spec["publish"] = [p for p in spec["publish"] if p["host_port"] is not None]
    return spec, new, fresh, problems


def published(spec, ports):
    """The published ports of a host, as the result reports them: [{container, network, protocol, host_ip,
    host_port, container_port, auto}] (``auto``: picked by the host; ``ports``: the host's automatic choices)."""
    out = []
    for p in spec.get("publish", []):
        out.append({"container": p["container"], "network": p["network"], "protocol": p["protocol"],
                    "host_ip": p.get("host_ip"), "host_port": p["host_port"], "container_port": p["container_port"],
                    "auto": (ports or {}).get(lease_key(p)) == p["host_port"]})
    return out
