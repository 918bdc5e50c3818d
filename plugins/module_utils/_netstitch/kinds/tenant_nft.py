"""The nft table ``inet netstitch`` inside a tenant's router namespace (pure; kinds.tenant plans it, the nft driver
applies it there as one transaction, never in the host's namespace): forwarding between the tenant's networks only
for its `connect` pairs (replies pass, stateful), out of the uplink only from networks that are not internal and
masqueraded there, nothing opened from the uplink in."""

from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.kinds import nft
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.kinds.nftexpr import (
    ip, match, meta, prefix, rule)

FAMILY = "inet"


def table(tenant, networks, uplink):
    """The router's table for a tenant (host spec ``tenants[i]``) and its networks here (host spec networks)."""
    leg = {n["name"]: n["bridge"] for n in networks}     # the legs are named after the bridges
    fwd = [rule("tenant %s: replies" % tenant["name"], [
        match({"ct": {"key": "state"}}, ["established", "related"], op="in"), {"accept": None}])]
    for a, b in tenant["connect"]:
        if a in leg and b in leg:
            for x, y in ((a, b), (b, a)):
                fwd.append(rule("tenant %s: connect %s -> %s" % (tenant["name"], x, y), [
                    match(meta("iifname"), leg[x]), match(meta("oifname"), leg[y]), {"accept": None}]))
    nat = []
    for n in networks:
        if not n["internal"]:
            fwd.append(rule("tenant %s: out %s" % (tenant["name"], n["name"]), [
                match(meta("iifname"), leg[n["name"]]), match(meta("oifname"), uplink), {"accept": None}]))
            if n["masquerade"]:
                nat.append(rule("tenant %s: masquerade %s" % (tenant["name"], n["name"]), [
                    match(ip("saddr"), prefix(n["subnet"])), match(meta("oifname"), uplink), {"masquerade": None}]))
    fwd.append(rule("tenant %s: nothing else" % tenant["name"], [{"drop": None}]))
    chains = {"forward": {"def": nft.BASE_CHAINS["forward"], "rules": fwd}}
    if nat:
        chains["postrouting"] = {"def": nft.BASE_CHAINS["postrouting"], "rules": nat}
    return {"chains": chains, "sets": {}}


def diff(want, have):
    """(commands, texts) turning the router's table (current_tables' shape of its listing, or None) into ``want``."""
    return nft.diff_table(FAMILY, want, have)


def current(listing):
    """The router's table as kinds.nft.current_tables reads a listing (None: no table)."""
    return nft.current_tables({FAMILY: listing}).get(FAMILY)
