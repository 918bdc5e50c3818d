"""Underlay reachability of overlay peers: one ICMP echo to each peer from one raw socket, answers awaited together
(O(peers), about one round trip plus the timeout for peers that are down). Used to warn, never to fail, an apply."""

import ipaddress
import os
import select
import socket
import struct
import time


def _checksum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    s = (s >> 16) + (s & 0xFFFF)
    s += s >> 16
    return ~s & 0xFFFF


def unreachable(addresses, timeout=1.0):
    """Return the subset of ``addresses`` (IPv4 or IPv6) that did not answer an ICMP (ICMPv6) echo within
    ``timeout`` seconds. A family whose raw socket cannot be opened claims nothing (none of its addresses is listed)."""
    addresses = set(addresses)
    socks = {}
    for family, proto in ((socket.AF_INET, socket.IPPROTO_ICMP), (socket.AF_INET6, socket.IPPROTO_ICMPV6)):
        if any((":" in a) == (family == socket.AF_INET6) for a in addresses):
            try:
                socks[family] = socket.socket(family, socket.SOCK_RAW, proto)
            except OSError:
                pass
    if not socks:
        return set()
    ident = os.getpid() & 0xFFFF
    waiting = set()
    try:
        for seq, addr in enumerate(sorted(addresses)):
            family = socket.AF_INET6 if ":" in addr else socket.AF_INET
            sock = socks.get(family)
            if sock is None:
                continue
            sock.setblocking(False)
            waiting.add(addr)
            payload = b"netstitch-peer-probe"
            if family == socket.AF_INET6:
                packet = struct.pack("!BBHHH", 128, 0, 0, ident, seq) + payload     # the kernel sums ICMPv6
            else:
                header = struct.pack("!BBHHH", 8, 0, 0, ident, seq)
                packet = struct.pack("!BBHHH", 8, 0, _checksum(header + payload), ident, seq) + payload
            try:
                sock.sendto(packet, (addr, 0))
            except OSError:
                pass
        deadline = time.monotonic() + timeout
        while waiting:
            left = deadline - time.monotonic()
            ready = select.select(list(socks.values()), [], [], left)[0] if left > 0 else []
            if not ready:
                break
            for sock in ready:
                try:
                    data, peer = sock.recvfrom(2048)
                except OSError:
                    continue
                if sock.family == socket.AF_INET6:      # no IP header on an ICMPv6 raw socket
                    start, reply, src = 0, 129, str(ipaddress.IPv6Address(peer[0].split("%")[0]))
                else:
                    start, reply, src = (data[0] & 0x0F) * 4, 0, peer[0]
                if len(data) >= start + 8:
                    typ, _code, _sum, rid, _seq = struct.unpack("!BBHHH", data[start:start + 8])
                    if typ == reply and rid == ident:
                        waiting.discard(src)
        return waiting
    finally:
        for sock in socks.values():
            sock.close()
