"""nftables JSON expressions and rules as netstitch writes them (pure): the building blocks of kinds.nft and
kinds.inbound, and the IPv6 rules of an isolated dual-stack network. Every rule carries a comment
"<purpose> #<hash of its expression>" (see kinds.nft)."""

import hashlib
import json


def match(left, right, op="=="):
    return {"match": {"op": op, "left": left, "right": right}}


def meta(key):
    return {"meta": {"key": key}}


def ip(field, protocol="ip"):
    return {"payload": {"protocol": protocol, "field": field}}


def prefix(cidr):
    if "/" not in cidr or cidr.endswith("/32"):
        return cidr.split("/", 1)[0]
    addr, plen = cidr.split("/")
    return {"prefix": {"addr": addr, "len": int(plen)}}


def rule(purpose, expr):
    h = hashlib.sha1(json.dumps(expr, sort_keys=True).encode()).hexdigest()[:10]
    return {"comment": "%s #%s" % (purpose, h), "expr": expr}


def ports_expr(ports, field):
    """Match ``th <field>`` against a list of [first, last] ranges (empty: no match expression)."""
    if not ports:
        return []
    items = [p[0] if p[0] == p[1] else {"range": [p[0], p[1]]} for p in ports]
    right = items[0] if len(items) == 1 and not isinstance(items[0], dict) else {"set": items}
    return [match({"payload": {"protocol": "th", "field": field}}, right)]


def link_match(ln, reply=False, family="ip"):
    """The expression of a resolved link: client -> server (or, for stateless replies, server -> client); with
    ``family`` ip6, between its IPv6 addresses (client_ip6, server_match6)."""
    six = "6" if family == "ip6" else ""
    src, dst = (ln["server_match" + six], ln["client_ip" + six])
    if not reply:
        src, dst = dst, src
    expr = [match(ip("saddr", family), prefix(src)), match(ip("daddr", family), prefix(dst))]
    if ln["protocol"] != "any":
        expr.append(match(meta("l4proto"), ln["protocol"]))
        expr += ports_expr(ln["ports"], "sport" if reply else "dport")
    return expr


# ICMPv6 neighbour discovery between the containers of an isolated network: what IPv4's ARP is (the bridge passes ARP
# without a rule; an IPv6 neighbour solicitation or advertisement to a container's address would meet the drop)
ND_TYPES = ["nd-neighbor-solicit", "nd-neighbor-advert"]


def isolation6(n, own, published=False):
    """The stateful IPv6 isolation rules of an isolated dual-stack network (before its IPv4 drop; each matches its
    family only): replies, neighbour discovery, ``published``: ports published on IPv6 (DNAT'ed connections, as a
    container's hairpin to one), its links (those whose ends have IPv6 addresses), then the drop."""
    br, name = n["bridge"], n["name"]
    into = [match(meta("iifname"), br), match(ip("daddr", "ip6"), prefix(n["subnet6"]))]
    rules = [
        rule("iso %s: replies (IPv6)" % name, into + [
            match({"ct": {"key": "state"}}, ["established", "related"], op="in"), {"accept": None}]),
        rule("iso %s: neighbour discovery" % name, into + [
            match({"payload": {"protocol": "icmpv6", "field": "type"}}, {"set": ND_TYPES}), {"accept": None}])]
    if published:
        rules.append(rule("iso %s: published (IPv6)" % name, into + [
            match({"ct": {"key": "status"}}, "dnat", op="in"), {"accept": None}]))
    for ln in own:
        if ln.get("client_ip6") and ln.get("server_match6"):
            rules.append(rule("iso %s: link %d (IPv6)" % (name, ln["index"]), [match(meta("iifname"), br)]
                              + link_match(ln, family="ip6") + [{"accept": None}]))
    rules.append(rule("iso %s: isolated (IPv6)" % name, into + [{"drop": None}]))
    return rules
