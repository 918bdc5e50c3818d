"""Encoding and decoding of netlink attributes for the rtnetlink client (drivers/rtnl.py): pure byte work."""

import socket
import struct

_NLA = struct.Struct("=HH")
_U32 = struct.Struct("=I")


# -- encoding ----------------------------------------------------------------------------------------------------------
def _nla(kind, payload):
    n = 4 + len(payload)
    return _NLA.pack(n, kind) + payload + b"\0" * (-n & 3)


def _str(kind, text):
    return _nla(kind, text.encode("utf-8") + b"\0")


def _u32(kind, value):
    return _nla(kind, _U32.pack(value))


def _mac(text):
    return bytes.fromhex(text.replace(":", ""))


def _ip4(text):
    return socket.inet_aton(text)


def _pack(text):
    return socket.inet_pton(socket.AF_INET6 if ":" in text else socket.AF_INET, text)


# -- decoding ----------------------------------------------------------------------------------------------------------
def _attrs(data, off, end):
    """{type: (start, length)} of the attributes in data[off:end] (the last one of a type wins)."""
    out = {}
    unpack = _NLA.unpack_from
    while off + 4 <= end:
        n, kind = unpack(data, off)
        if n < 4:
            break
        out[kind & 0x3FFF] = (off + 4, n - 4)
        off += (n + 3) & ~3
    return out


def _text(data, at):
    s, n = at
    return bytes(data[s:s + n]).split(b"\0", 1)[0].decode("utf-8", "replace")


def _hex(data, at):
    s, n = at
    return ":".join("%02x" % b for b in data[s:s + n])


def _ip(data, at):
    s, n = at
    if n == 4:
        return socket.inet_ntop(socket.AF_INET, bytes(data[s:s + 4]))
    if n == 16:
        return socket.inet_ntop(socket.AF_INET6, bytes(data[s:s + 16]))
    return None


def _u32_at(data, at):
    return _U32.unpack_from(data, at[0])[0] if at is not None and at[1] >= 4 else None
