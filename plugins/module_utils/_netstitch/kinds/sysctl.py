"""Kind: the host's sysctls. Forwarding is switched on when a network may leave its bridge; netstitch only ever
raises it (never lowers a switch someone else needs). The bridge-netfilter switch is only read: it tells whether
bridged traffic passes the inet hooks (kinds.nft)."""

from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.actions import act

SYSCTL_FORWARD = "net.ipv4.ip_forward"
SYSCTL_BRIDGE_NF = "net.bridge.bridge-nf-call-iptables"   # read only: whether bridged traffic passes the inet hooks
READ = (SYSCTL_FORWARD, SYSCTL_BRIDGE_NF)


KEY = "sysctl"


def desired(ctx):
    spec = ctx.spec
    forward = any(not n["internal"] for n in spec["networks"])
    return {SYSCTL_FORWARD: "1"} if forward else {}


def bridge_nf(current):
    return (current.get("sysctl") or {}).get(SYSCTL_BRIDGE_NF) == "1"


def diff(desired_state, current, out, ctx):
    for key, value in sorted(desired_state["sysctl"].items()):
        if current.get("sysctl", {}).get(key) != value:
            out.add("pre", act("sysctl_set", "set %s = %s" % (key, value), key=key, value=value))
