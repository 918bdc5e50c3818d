"""Kind: the host's sysctls. Forwarding is switched on when a network may leave its bridge; netstitch only ever
raises it (never lowers a switch someone else needs). The bridge-netfilter switch is only read: it tells whether
bridged traffic passes the inet hooks (kinds.nft)."""

from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.actions import act

SYSCTL_FORWARD = "net.ipv4.ip_forward"
SYSCTL_BRIDGE_NF = "net.bridge.bridge-nf-call-iptables"   # read only: whether bridged traffic passes the inet hooks
# read only: whether the kernel forwards IPv6 per interface (Linux 6.17 and later; kinds.bridge sets it per bridge)
SYSCTL_FORCE_FORWARDING6 = "net.ipv6.conf.default.force_forwarding"
SYSCTL_BRIDGE_NF6 = "net.bridge.bridge-nf-call-ip6tables"    # read only: the same for bridged IPv6
READ = (SYSCTL_FORWARD, SYSCTL_BRIDGE_NF, SYSCTL_BRIDGE_NF6, SYSCTL_FORCE_FORWARDING6)


KEY = "sysctl"


def desired(ctx):
    spec = ctx.spec
    # (IPv4 forwarding is for networks with IPv4; an IPv6-only network forwards on its bridge: kinds.bridge)
    forward = any(not n["internal"] and n["subnet"] for n in spec["networks"])
    return {SYSCTL_FORWARD: "1"} if forward else {}


def forwarding6_per_interface(current):
    """Whether the kernel has per-interface IPv6 forwarding (the sysctl exists)."""
    return (current.get("sysctl") or {}).get(SYSCTL_FORCE_FORWARDING6) is not None


def bridge_nf(current):
    return (current.get("sysctl") or {}).get(SYSCTL_BRIDGE_NF) == "1"


def bridge_nf6(current):
    """Whether bridged IPv6 passes the inet hooks (else its isolation is the bridge family's, kinds.nft)."""
    return (current.get("sysctl") or {}).get(SYSCTL_BRIDGE_NF6) == "1"


def diff(desired_state, current, out, ctx):
    for key, value in sorted(desired_state["sysctl"].items()):
        if current.get("sysctl", {}).get(key) != value:
            out.add("pre", act("sysctl_set", "set %s = %s" % (key, value), key=key, value=value))
