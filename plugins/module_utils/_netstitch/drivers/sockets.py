"""What the host's own sockets hold, for automatic host ports (ports.py): the ports a socket listens on (TCP in
LISTEN, any bound UDP socket), from /proc/net/{tcp,tcp6,udp,udp6} of this network namespace, and the kernel's
ephemeral port range (net.ipv4.ip_local_port_range, per namespace)."""

PROC_NET = "/proc/net"
PORT_RANGE = "/proc/sys/net/ipv4/ip_local_port_range"
TCP_LISTEN = "0A"


def listening(proc_net=PROC_NET):
    """{(protocol, port)} of the listening TCP sockets and bound UDP sockets (IPv4 and IPv6)."""
    out = set()
    for proto in ("tcp", "udp"):
        for suffix in ("", "6"):
            try:
                with open("%s/%s%s" % (proc_net, proto, suffix)) as f:
                    lines = f.read().splitlines()[1:]
            except OSError:
                continue        # no IPv6 here
            for line in lines:
                fields = line.split()
                if len(fields) < 4 or (proto == "tcp" and fields[3] != TCP_LISTEN):
                    continue
                port = int(fields[1].rsplit(":", 1)[1], 16)
                if port:
                    out.add((proto, port))
    return out


def ephemeral_range(path=PORT_RANGE):
    """(low, high) of the kernel's ephemeral ports, or None when it cannot be read."""
    try:
        with open(path) as f:
            low, high = f.read().split()[:2]
        return int(low), int(high)
    except (OSError, ValueError):
        return None
