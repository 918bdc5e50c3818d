"""Kind: coexistence with Docker's firewall. Where Docker runs, its iptables FORWARD policy is DROP and every base
chain must accept a packet for it to pass, so netstitch's own table cannot open forwarding alone. Docker documents
one place for users' rules: the DOCKER-USER chain. netstitch keeps there only accept rules for its own bridges, each
marked with a comment "netstitch ...", and never touches another rule, chain or table of Docker's. The real policy
(isolation, closed networks) stays in netstitch's own table, which every packet also passes."""

from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.actions import act
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.marks import DOCKER_USER_MARK


def desired(bridges):
    """Accept rules for netstitch's bridges, in the form `iptables -S` prints them."""
    out = []
    for br in sorted(bridges):
        out.append(("-i", br, "-m", "comment", "--comment", "%s %s out" % (DOCKER_USER_MARK, br), "-j", "ACCEPT"))
        out.append(("-o", br, "-m", "comment", "--comment", "%s %s in" % (DOCKER_USER_MARK, br), "-j", "ACCEPT"))
    return sorted(out)


KEY = None


def diff(desired_state, current, out, ctx):
    have = current.get("docker_user")
    if have is None:        # no DOCKER-USER chain here: Docker's firewall is not on this host
        return
    # and the host ends of tenants' uplinks (kinds.tenant), whose policy is in netstitch's table too
    want = desired(list(desired_state["bridges"]) + [t["uplink"]["name"] for t in
                                                     (desired_state.get("tenants") or {}).values()])
    for rule in sorted(set(have) - set(want)):
        out.add("firewall", act("docker_user_del", "remove from DOCKER-USER: %s" % " ".join(rule), rule=list(rule)))
    for rule in sorted(set(want) - set(have)):
        out.add("firewall", act("docker_user_add", "add to DOCKER-USER: %s" % " ".join(rule), rule=list(rule)))
