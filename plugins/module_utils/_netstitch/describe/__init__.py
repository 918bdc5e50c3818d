"""What a run changes, in topology terms (pure): the one place that turns planned actions and nftables differences
into readable objects, grouped by kind, each with its state before and after.

    changes = describe.changes(Context(...), actions, nft_desired, nft_current)
    describe.lines(changes)    ["published port 8080/tcp -> web:80 added: ...", "link web -> db tcp/5432 added: ...", ...]
    describe.diff(changes)     Ansible's --diff: one before/after pair per kind
    describe.text(changes)     the command line's plan: lines under a heading per kind

A change is {"kind", "name", "before", "after"}: ``before``/``after`` are the object's readable state (a list of
"attribute value" words) or None when it is absent on that side. Every action op (objects.py) and every nftables
rule or element (nft.py) maps to exactly one object; an op or a rule it does not know still shows, under the kind
"other", so nothing a run does is ever left out of the diff.
"""

from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.describe.nft import nft_changes
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.describe.objects import KINDS, Context, action_changes, change

__all__ = ["KINDS", "Context", "changes", "state_change", "line", "lines", "grouped", "diff", "text",
           "text_from_plan"]


def changes(ctx, actions, nft_desired=None, nft_current=None):
    """Every object a run changes, grouped by kind (in KINDS order), each once."""
    out = action_changes(actions, ctx) + nft_changes(nft_desired, nft_current, ctx)
    return sorted(out, key=lambda c: KINDS.index(c["kind"]) if c["kind"] in KINDS else len(KINDS))


def state_change(host, state_dir):
    """netstitch's own memory of a host (leases, the namespaces it made, the last spec) going at a teardown."""
    return change("state", "netstitch state of host %s in %s" % (host, state_dir), ["leases, last spec"], None)


def _state(name, words):
    return "%s: %s" % (name, ", ".join(words)) if words else name


def line(c, drift=False):
    """One readable line: "<object> added[: state]", "<object> removed[: state]", "<object> changed: a -> b".
    ``drift``: the same change seen as a difference from the last apply ("missing", "unexpected", "drifted")."""
    if c["before"] is None:
        return _state(c["name"] + (" missing" if drift else " added"), c["after"])
    if c["after"] is None:
        return _state(c["name"] + (" unexpected (not in the last apply)" if drift else " removed"), c["before"])
    gone = [w for w in c["before"] if w not in c["after"]]
    new = [w for w in c["after"] if w not in c["before"]]
    if drift:
        return "%s drifted: now %s, applied %s" % (c["name"], ", ".join(gone) or "-", ", ".join(new) or "-")
    return "%s changed: %s -> %s" % (c["name"], ", ".join(gone) or "-", ", ".join(new) or "-")


def lines(chs, drift=False):
    return [line(c, drift) for c in chs]


def grouped(chs, drift=False):
    """[(kind, [line, ...]), ...] in KINDS order."""
    out = []
    for c in chs:
        if not out or out[-1][0] != c["kind"]:
            out.append((c["kind"], []))
        out[-1][1].append(line(c, drift))
    return out


def _side_text(chs, side):
    rows = []
    for c in chs:
        words = c[side]
        if words is not None:
            rows.append(_state(c["name"], words) + "\n")
    return "".join(rows)


def diff(chs, host):
    """Ansible's diff: a list of before/after pairs, one per kind, each object on one line."""
    out = []
    for kind, _lines in grouped(chs):
        mine = [c for c in chs if c["kind"] == kind]
        out.append({"before_header": "%s: %s (now)" % (host, kind), "after_header": "%s: %s (planned)" % (host, kind),
                    "before": _side_text(mine, "before"), "after": _side_text(mine, "after")})
    return out


def text(chs, indent="  ", drift=False):
    """The command line's rendering: a heading per kind and one line per object."""
    rows = []
    for kind, ls in grouped(chs, drift):
        rows.append("%s:" % kind)
        rows += ["%s%s" % (indent, l) for l in ls]
    return "\n".join(rows)


def text_from_plan(plan, indent="  "):
    """The same rendering from lines already grouped by kind ({kind: [line, ...]}, as apply and gather return)."""
    rows = []
    for kind, ls in plan.items():
        rows.append("%s:" % kind)
        rows += ["%s%s" % (indent, l) for l in ls]
    return "\n".join(rows)
