"""Kind: the named network namespaces of ``kind: netns`` containers. netstitch creates them and removes only those
it created (the host's state file lists them)."""

from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.actions import act


KEY = "netns"


def desired(ctx):
    spec = ctx.spec
    return sorted({c.get("netns") or c["docker"] for c in spec["containers"] if c["kind"] == "netns"})


def diff(desired_state, current, out, ctx):
    existing = set(current.get("named_netns", []))
    for ns in desired_state["netns"]:
        if ns not in existing:
            out.add("pre", act("netns_add", "create network namespace %s" % ns, netns=ns))
    for ns in sorted(set(current.get("owned_netns", [])) - set(desired_state["netns"])):
        if ns in existing:
            out.add("post", act("netns_del", "remove network namespace %s" % ns, netns=ns))
