"""netstitch's nftables ruleset for one host (pure): the desired table, and the diff against the current one.

Everything lives in one table, ``inet netstitch``, that netstitch owns; nothing else is ever read or written. Every
rule carries a comment "<purpose> #<hash of its expression>", so comparing a chain is comparing comment lists, and a
changed chain is rewritten (flush + add) inside one atomic transaction.
"""

import hashlib
import json

FAMILY = "inet"
TABLE = "netstitch"

BASE_CHAINS = {
    "forward": {"type": "filter", "hook": "forward", "prio": 0, "policy": "accept"},
    "postrouting": {"type": "nat", "hook": "postrouting", "prio": 100, "policy": "accept"},
}


def _match(left, right, op="=="):
    return {"match": {"op": op, "left": left, "right": right}}


def _meta(key):
    return {"meta": {"key": key}}


def _prefix(cidr):
    addr, plen = cidr.split("/")
    return {"prefix": {"addr": addr, "len": int(plen)}}


def _rule(purpose, expr):
    h = hashlib.sha1(json.dumps(expr, sort_keys=True).encode()).hexdigest()[:10]
    return {"comment": "%s #%s" % (purpose, h), "expr": expr}


def desired_table(spec):
    """The desired chains of ``inet netstitch`` for a host spec: {chain: {"def": base chain, "rules": [rule]}}.
    An empty dict means netstitch needs no table on this host."""
    fwd, nat = [], []
    for n in spec["networks"]:
        br = n["bridge"]
        # nothing from outside (another network, the uplink) opens a connection into a network; replies pass
        # within the network (seen here when br_netfilter passes bridged traffic through the inet hooks)
        fwd.append(_rule("in %s: within" % n["name"], [
            _match(_meta("iifname"), br), _match(_meta("oifname"), br), {"accept": None}]))
        fwd.append(_rule("in %s: replies" % n["name"], [
            _match(_meta("oifname"), br),
            _match({"ct": {"key": "state"}}, ["established", "related"], op="in"),
            {"accept": None}]))
        o = n.get("overlay") or {}
        if o.get("type") == "routed":
            # the other hosts' slices of a routed network arrive through the underlay
            fwd.append(_rule("in %s: from its other slices" % n["name"], [
                _match(_meta("oifname"), br),
                _match({"payload": {"protocol": "ip", "field": "saddr"}}, _prefix(o["subnet"])),
                {"accept": None}]))
        fwd.append(_rule("in %s: closed to others" % n["name"], [_match(_meta("oifname"), br), {"drop": None}]))
        if n["internal"]:
            fwd.append(_rule("out %s: internal" % n["name"], [_match(_meta("iifname"), br), {"drop": None}]))
        if n["masquerade"] and not n["internal"]:
            whole = o.get("subnet", n["subnet"])
            nat.append(_rule("masquerade %s" % n["name"], [
                _match({"payload": {"protocol": "ip", "field": "saddr"}}, _prefix(whole)),
                _match({"payload": {"protocol": "ip", "field": "daddr"}}, _prefix(whole), op="!="),
                _match(_meta("oifname"), br, op="!="),
                {"masquerade": None}]))
    chains = {}
    if fwd:
        chains["forward"] = {"def": BASE_CHAINS["forward"], "rules": fwd}
    if nat:
        chains["postrouting"] = {"def": BASE_CHAINS["postrouting"], "rules": nat}
    return chains


def current_table(listing):
    """Normalise the JSON of `list table inet netstitch` (None when the table is missing) to
    {chain: {"def": {...}, "comments": [...]}}."""
    if listing is None:
        return None
    chains = {}
    for item in listing.get("nftables", []):
        if "chain" in item:
            c = item["chain"]
            d = {k: c[k] for k in ("type", "hook", "prio", "policy") if k in c}
            chains[c["name"]] = {"def": d, "comments": []}
        elif "rule" in item:
            r = item["rule"]
            chains.setdefault(r["chain"], {"def": {}, "comments": []})["comments"].append(r.get("comment"))
    return chains


def _chain_cmd(verb, name, d=None):
    c = {"family": FAMILY, "table": TABLE, "name": name}
    if d:
        c.update(d)
    return {verb: {"chain": c}}


def diff(desired, current):
    """Return (commands, texts): one nftables JSON transaction that turns current into desired, and a readable line per
    change. Empty when they match."""
    cmds, texts = [], []
    tbl = {"family": FAMILY, "name": TABLE}
    if not desired:
        if current is not None:
            cmds.append({"delete": {"table": tbl}})
            texts.append("remove nft table %s %s" % (FAMILY, TABLE))
        return cmds, texts
    if current is None:
        cmds.append({"add": {"table": tbl}})
        texts.append("create nft table %s %s" % (FAMILY, TABLE))
        current = {}
    for name in sorted(set(current) - set(desired)):
        cmds += [_chain_cmd("flush", name), _chain_cmd("delete", name)]
        texts.append("remove nft chain %s" % name)
    for name, want in sorted(desired.items()):
        have = current.get(name)
        comments = [r["comment"] for r in want["rules"]]
        if have is not None and have["def"] == want["def"] and have["comments"] == comments:
            continue
        if have is None:
            cmds.append(_chain_cmd("add", name, want["def"]))
            texts.append("create nft chain %s" % name)
        elif have["def"] != want["def"]:
            cmds += [_chain_cmd("flush", name), _chain_cmd("delete", name), _chain_cmd("add", name, want["def"])]
            texts.append("recreate nft chain %s" % name)
        else:
            cmds.append(_chain_cmd("flush", name))
            texts.append("rewrite nft chain %s (%d rules)" % (name, len(want["rules"])))
        for r in want["rules"]:
            cmds.append({"add": {"rule": {"family": FAMILY, "table": TABLE, "chain": name,
                                          "expr": r["expr"], "comment": r["comment"]}}})
            texts.append("  rule: %s" % r["comment"])
    return cmds, texts
