"""Underlay reachability of overlay peers: one ICMP echo to each peer from one raw socket, answers awaited together
(O(peers), about one round trip plus the timeout for peers that are down). Used to warn, never to fail, an apply."""

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
    """Return the subset of IPv4 ``addresses`` that did not answer an ICMP echo within ``timeout`` seconds.
    If no raw socket can be opened, return an empty set (nothing is claimed)."""
    addresses = set(addresses)
    if not addresses:
        return set()
    try:
        sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    except OSError:
        return set()
    ident = os.getpid() & 0xFFFF
    try:
        sock.setblocking(False)
        for seq, addr in enumerate(sorted(addresses)):
            header = struct.pack("!BBHHH", 8, 0, 0, ident, seq)
            payload = b"netstitch-peer-probe"
            packet = struct.pack("!BBHHH", 8, 0, _checksum(header + payload), ident, seq) + payload
            try:
                sock.sendto(packet, (addr, 0))
            except OSError:
                pass
        waiting = set(addresses)
        deadline = time.monotonic() + timeout
        while waiting:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([sock], [], [], left)[0]:
                break
            try:
                data, (src, _port) = sock.recvfrom(2048)
            except OSError:
                continue
            ihl = (data[0] & 0x0F) * 4
            if len(data) >= ihl + 8:
                typ, _code, _sum, rid, _seq = struct.unpack("!BBHHH", data[ihl:ihl + 8])
                if typ == 0 and rid == ident:
                    waiting.discard(src)
        return waiting
    finally:
        sock.close()
