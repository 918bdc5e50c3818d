"""Kind: the named network namespaces of ``kind: netns`` containers. netstitch creates them and removes only those
it created (the host's state file lists them, written before they are made). A half-made one (an empty /run/netns
file left by a run stopped between creating the file and mounting the namespace, or between unmounting and unlinking
it; or a dead entry, whose mount went away with a private mount namespace it was made in) is cleared, and made again
if wanted, when netstitch made it; when not, it is a conflict for a container in it. Never a traceback."""

from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.actions import act


KEY = "netns"


def desired(ctx):
    spec = ctx.spec
    # and the router namespaces of tenants (kinds.tenant)
    return sorted({c.get("netns") or c["docker"] for c in spec["containers"] if c["kind"] == "netns"} |
                  {t["netns"] for t in spec.get("tenants") or ()})


def diff(desired_state, current, out, ctx):
    existing = set(current.get("named_netns", []))
    broken = set(current.get("broken_netns", [])) & existing
    owned = set(current.get("owned_netns", []))
    for ns in sorted(broken):
        if ns in owned:
            out.add("pre", act("netns_clear", "clear half-made network namespace %s (an interrupted run left an empty "
                               "/run/netns/%s)" % (ns, ns), netns=ns))
        elif ns in desired_state["netns"]:
            out.conflict("network namespace %s on host %s is half-made (/run/netns/%s is an empty file, not a "
                         "namespace) and netstitch did not create it: remove it with `ip netns del %s`, or name "
                         "another namespace" % (ns, desired_state["host"], ns, ns))
    existing -= broken
    for ns in desired_state["netns"]:
        if ns not in existing:
            out.add("pre", act("netns_add", "create network namespace %s" % ns, netns=ns))
    for ns in sorted(set(current.get("owned_netns", [])) - set(desired_state["netns"])):
        if ns in existing:
            out.add("post", act("netns_del", "remove network namespace %s" % ns, netns=ns))
