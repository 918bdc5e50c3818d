"""Kind: tinc overlays, an encrypted layer-2 mesh (tinc 1.0, switch mode): per network and host a tinc instance
(key pair, configuration files, daemon) and its TAP device as a port of the network's bridge. The peers' public keys
travel through the run (host.prepare gathers them; ``merge_peer_keys`` puts them into the spec); private keys
never leave their host."""

import re

from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch import marks
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.actions import act, fmt_changes, port_changes


def networks(spec):
    """The names of a host spec's tinc networks."""
    return [n["name"] for n in spec["networks"] if (n.get("overlay") or {}).get("type") == "tinc"]


def node_name(host):
    """tinc node names allow only [A-Za-z0-9_]."""
    return re.sub(r"[^A-Za-z0-9_]", "_", host)


def merge_peer_keys(spec, peers):
    """Put the peers' tinc public keys (gathered from every host in the run by prepare()) into a host spec; return
    warnings for peers without a key (a host that is down or not yet set up)."""
    warnings = []
    for n in spec["networks"]:
        o = n.get("overlay") or {}
        if o.get("type") != "tinc":
            continue
        for p in o["peers"]:
            key = (((peers or {}).get(p["host"]) or {}).get("tinc") or {}).get(n["name"])
            p["pubkey"] = key
            if not key:
                warnings.append("network %s: no tinc key from peer %s (down or not reached in this run); "
                                "it is left out until a run reaches it" % (n["name"], p["host"]))
    return warnings


# Bounded recovery (tinc 1.0.36; tincd reads these at its start, not on SIGHUP):
# - KeyExpire: how long a packet key lives. A node sends its packet key for a peer (ANS_KEY) by the peer's nexthop
#   at that moment, both when the peer becomes reachable (graph.c check_reachability) and in answer to the peer's
#   REQ_KEY (protocol_key.c), and makes a new key each time. While a mesh comes up the first can go through a third
#   node (the direct edge is not usable before its reverse edge arrives) and the second directly, so the peer can get
#   them in the wrong order and keep the older key: it then encrypts with a key the node no longer accepts ("Got
#   unauthenticated packet"), and with validkey set it never asks again. A lab run caught exactly that (h1 sent
#   ANS_KEY h1->h3 via h2, then another directly; h3 installed the direct one, then the relayed older one), and the
#   pair stayed mute: about 30 s of PMTU probing plus PingInterval plus PingTimeout before tinc falls back to TCP
#   (net_packet.c send_mtu_probe), up to an hour before tinc's default KeyExpire replaces the key. At expiry a node
#   broadcasts KEY_CHANGED (every peer drops its key and asks again) and sends each direct peer a new key
#   (protocol_key.c send_key_changed), so a stale key is repaired within KeyExpire plus PingTimeout. Cost: a new key
#   per peer every 30 s; packets in flight under the old key (one round trip) are lost.
# - PingInterval: an idle meta connection is pinged after this many seconds and dropped when no PONG follows within
#   PingTimeout (5 s; net.c check_dead_connections); it is also how long PMTU probing rests before it checks the UDP
#   path to a peer again. tinc's default of 60 s leaves a dead peer or UDP path unnoticed for over a minute.
# - MaxTimeout: the longest wait between attempts to reach a ConnectTo peer; each failed attempt adds 5 s
#   (net_socket.c retry_outgoing), up to tinc's default of 900 s, so hosts that could not reach each other for a
#   while (a peer down, an underlay outage) would wait up to 15 minutes to reconnect after it ends.
# - Broadcast = direct: a node sends its own broadcasts (and frames to unknown MACs) to every peer itself, and
#   never forwards a peer's (net_packet.c broadcast_packet, BMODE_DIRECT), instead of along the minimum spanning
#   tree. A UDP packet names only its last hop, and each node computes the tree from its own copy of the edges, so
#   while two nodes' copies differ (a lost or stale ADD_EDGE/DEL_EDGE around duplicate connections, or a tincd
#   restarted within the second it last started: its requests repeat the old one's random nonces, net.c srand(now),
#   and peers drop them as seen, protocol.c seen_request) a broadcast can come back into the TAP of the host it left.
#   The host's bridge then learns the sending container's MAC on the TAP port and drops every frame for that
#   container; each new ARP of the container comes back and renews the mistake. A lab run caught exactly that (c1's
#   MAC on h1's TAP in h1's FDB, h1 without h2's edge h2->h1). Relaying also ties a pair's broadcasts to a third
#   host: with the tree, restarting one tincd right after the mesh formed left a pair without ARP (the relay got the
#   broadcasts, the far host never did) for the whole 45 s in 3 of 3 lab runs; with direct, none in 160 rounds of
#   the same restarts (tests/integration/test_tinc_stress.py). Every netstitch host ConnectTo every peer over one
#   underlay, so every peer is reached in one hop.
BROADCAST = "direct"
KEY_EXPIRE = 30
PING_INTERVAL = 10
MAX_TIMEOUT = 30


def render(host, network, port, local, peers, pubkey):
    """The files of one host's tinc instance: {relpath: text}. ``peers`` = [{"host", "underlay", "pubkey"}]."""
    me = node_name(host)
    conf = ["Name = %s" % me, "Mode = switch", "DeviceType = tap", "Interface = %s" % network["device"],
            "Port = %d" % port, "BindToAddress = %s" % local,
            "AddressFamily = %s" % ("ipv6" if ":" in local else "ipv4"),    # the underlay's (an overlay has one)
            "Broadcast = %s" % BROADCAST, "KeyExpire = %d" % KEY_EXPIRE, "PingInterval = %d" % PING_INTERVAL,
            "MaxTimeout = %d" % MAX_TIMEOUT]
    conf += ["ConnectTo = %s" % node_name(p["host"]) for p in peers if p.get("pubkey")]
    files = {"tinc.conf": "\n".join(conf) + "\n"}

    def host_file(address, key):
        head = "Address = %s\nPort = %d\nCipher = aes-256-cbc\nDigest = sha256\nMACLength = 16\nCompression = 0\n" \
            % (address, port)
        return head + "\n" + (key or "")

    files["hosts/" + me] = host_file(local, pubkey)
    for p in peers:
        if p.get("pubkey"):
            files["hosts/" + node_name(p["host"])] = host_file(p["underlay"], p["pubkey"])
    return files


KEY = "tincs"


def desired(ctx):
    spec = ctx.spec
    tincs = {}
    for n in spec["networks"]:
        o = n.get("overlay")
        if not o or o["type"] != "tinc":
            continue
        tincs[n["name"]] = {
            "network": n["name"], "device": o["device"], "port": o["port"], "local": o["local"],
            "peers": [{"host": p["host"], "underlay": p["underlay"], "pubkey": p.get("pubkey")} for p in o["peers"]],
            "master": n["bridge"], "mtu": n["mtu"], "alias": marks.tap_alias(n["name"])}
    return tincs


def diff(desired_state, current, out, ctx):
    """tinc instances: key, configuration files, daemon, and its TAP port on the bridge."""
    links = current.get("links", {})
    for net, want in sorted(desired_state.get("tincs", {}).items()):
        have = (current.get("tinc") or {}).get(net) or {}
        tap = links.get(want["device"])
        if tap is not None and not marks.owned(tap) and not have.get("pid"):
            out.conflict("networks.%s.overlay.device: interface %s exists on host %s and netstitch did not "
                         "create it" % (net, want["device"], desired_state["host"]))
            continue
        wrote, options = _files(net, want, have, desired_state["host"], out)
        if not have.get("pid") or tap is None or options:
            text = "start tinc for network %s (%s on %s, mtu %d)" % (net, want["device"], want["master"], want["mtu"])
            if have.get("pid") and tap is not None:
                text = "restart tinc for network %s (tinc.conf: %s; tincd reads them only when it starts)" % (
                    net, ", ".join(options))
            out.add("overlays", act("tinc_start", text, network=net, device=want["device"],
                                    changes={"master": want["master"], "mtu": want["mtu"], "alias": want["alias"],
                                             "up": True},
                                    restart=bool(have.get("pid"))))
            continue
        if wrote:
            out.add("overlays", act("tinc_reload", "reload tinc for network %s" % net, network=net))
        changes = port_changes(tap, want["master"], want["mtu"], want["alias"])
        if changes:
            out.add("overlays", act("link_set", "set %s on tap %s" % (fmt_changes(changes), want["device"]), ns=None,
                                    name=want["device"], changes=changes))
    for net in sorted(set(current.get("tinc") or {}) - set(desired_state.get("tincs", {}))):
        out.add("stop", act("tinc_stop", "stop tinc for network %s and remove its configuration" % net, network=net))


def daemon_options(conf):
    """The names of tinc.conf's settings other than ConnectTo, with their values: tincd 1.0 reads these only when it
    starts (a SIGHUP rereads the file but applies just the ConnectTo list and the host files)."""
    out = {}
    for line in (conf or "").splitlines():
        key, _sep, value = line.partition("=")
        if key.strip() and key.strip() != "ConnectTo":
            out.setdefault(key.strip(), []).append(value.strip())
    return out


def _files(net, want, have, host, out):
    """Key and configuration files; returns whether they are (re)written and the names of the tinc.conf settings
    that change other than ConnectTo (a running tincd must restart for them)."""
    args = {"host": host, "network": {"device": want["device"]}, "port": want["port"], "local": want["local"],
            "peers": want["peers"]}
    if not have.get("pubkey") or not have.get("has_key"):
        out.add("overlays", act("tinc_keygen", "generate the tinc key pair of network %s" % net, network=net))
        out.add("overlays", act("tinc_write", "write tinc configuration of network %s" % net, network=net,
                                render=args))
        return True, []
    files = render(pubkey=have["pubkey"], **args)
    if files == have.get("files"):
        return False, []
    new, old = daemon_options(files["tinc.conf"]), daemon_options((have.get("files") or {}).get("tinc.conf"))
    options = sorted(k for k in set(new) | set(old) if new.get(k) != old.get(k))
    changed = sorted(k for k in set(files) | set(have.get("files") or {})
                     if files.get(k) != (have.get("files") or {}).get(k))
    out.add("overlays", act("tinc_write", "write tinc configuration of network %s (%s)" % (net, ", ".join(changed)),
                            network=net, render=args))
    return True, options
