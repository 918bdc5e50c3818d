"""nftables JSON expressions and rules as netstitch writes them (pure): the building blocks of kinds.nft and
kinds.inbound. Every rule carries a comment "<purpose> #<hash of its expression>" (see kinds.nft)."""

import hashlib
import json


def match(left, right, op="=="):
    return {"match": {"op": op, "left": left, "right": right}}


def meta(key):
    return {"meta": {"key": key}}


def ip(field):
    return {"payload": {"protocol": "ip", "field": field}}


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
