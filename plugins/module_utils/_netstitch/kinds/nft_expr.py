"""The expressions of netstitch's nftables rules (pure), shared by kinds.nft: matches, prefixes, the commented
rule, links; and the IPv6 rules of an isolated dual-stack network."""

import hashlib
import json


def _match(left, right, op="=="):
    return {"match": {"op": op, "left": left, "right": right}}


def _meta(key):
    return {"meta": {"key": key}}


def _ip(field, protocol="ip"):
    return {"payload": {"protocol": protocol, "field": field}}


def _prefix(cidr):
    if "/" not in cidr or cidr.endswith("/32"):
        return cidr.split("/", 1)[0]
    addr, plen = cidr.split("/")
    return {"prefix": {"addr": addr, "len": int(plen)}}


def _rule(purpose, expr):
    h = hashlib.sha1(json.dumps(expr, sort_keys=True).encode()).hexdigest()[:10]
    return {"comment": "%s #%s" % (purpose, h), "expr": expr}


def _ports_expr(ports, field):
    """Match ``th <field>`` against a list of [first, last] ranges (empty: no match expression)."""
    if not ports:
        return []
    items = [p[0] if p[0] == p[1] else {"range": [p[0], p[1]]} for p in ports]
    right = items[0] if len(items) == 1 and not isinstance(items[0], dict) else {"set": items}
    return [_match({"payload": {"protocol": "th", "field": field}}, right)]


def _link_match(ln, reply=False, family="ip"):
    """The expression of a resolved link: client -> server (or, for stateless replies, server -> client); with
    ``family`` ip6, between its IPv6 addresses (client_ip6, server_match6)."""
    six = "6" if family == "ip6" else ""
    src, dst = (ln["server_match" + six], ln["client_ip" + six])
    if not reply:
        src, dst = dst, src
    expr = [_match(_ip("saddr", family), _prefix(src)), _match(_ip("daddr", family), _prefix(dst))]
    if ln["protocol"] != "any":
        expr.append(_match(_meta("l4proto"), ln["protocol"]))
        expr += _ports_expr(ln["ports"], "sport" if reply else "dport")
    return expr


# ICMPv6 neighbour discovery between the containers of an isolated network: what IPv4's ARP is (the bridge passes ARP
# without a rule; an IPv6 neighbour solicitation or advertisement to a container's address would meet the drop)
ND_TYPES = ["nd-neighbor-solicit", "nd-neighbor-advert"]


def isolation6(n, own):
    """The stateful IPv6 isolation rules of an isolated dual-stack network (before its IPv4 drop; each matches its
    family only): replies, neighbour discovery, its links (those whose ends have IPv6 addresses), then the drop."""
    br, name = n["bridge"], n["name"]
    into = [_match(_meta("iifname"), br), _match(_ip("daddr", "ip6"), _prefix(n["subnet6"]))]
    rules = [
        _rule("iso %s: replies (IPv6)" % name, into + [
            _match({"ct": {"key": "state"}}, ["established", "related"], op="in"), {"accept": None}]),
        _rule("iso %s: neighbour discovery" % name, into + [
            _match({"payload": {"protocol": "icmpv6", "field": "type"}}, {"set": ND_TYPES}), {"accept": None}])]
    for ln in own:
        if ln.get("client_ip6") and ln.get("server_match6"):
            rules.append(_rule("iso %s: link %d (IPv6)" % (name, ln["index"]), [_match(_meta("iifname"), br)]
                               + _link_match(ln, family="ip6") + [{"accept": None}]))
    rules.append(_rule("iso %s: isolated (IPv6)" % name, into + [{"drop": None}]))
    return rules
