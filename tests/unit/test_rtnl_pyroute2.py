"""drivers/rtnl.py cross-checked against pyroute2 (a test dependency only): every request kind the netlink driver
sends is byte for byte what pyroute2's message classes encode for the same request, and rtnl's decoders read what
pyroute2 encodes as the kernel's replies. The socket is a stand-in that records what is sent and answers with
prepared replies, so the real request(), dump() and reply parsing run, and no kernel is involved."""

import socket
import struct

import pytest

from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.drivers import rtnl

pytest.importorskip("pyroute2")
from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg  # noqa: E402
from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg  # noqa: E402
from pyroute2.netlink.rtnl.ndmsg import ndmsg  # noqa: E402
from pyroute2.netlink.rtnl.rtmsg import rtmsg  # noqa: E402

REQ, ACK, CREATE, EXCL, REPLACE, APPEND, DUMP = 0x1, 0x4, 0x400, 0x200, 0x100, 0x800, 0x300
NEWLINK, DELLINK, GETLINK, NEWADDR, DELADDR, GETADDR = 16, 17, 18, 20, 21, 22
NEWROUTE, DELROUTE, GETROUTE, NEWNEIGH, DELNEIGH, GETNEIGH = 24, 25, 26, 28, 29, 30
MAC = "02:00:00:00:00:01"


class FakeSock(object):
    """Records each message sent; answers a request with an ack (or ``errors[type]``) and a dump with
    ``dumps[type]`` (pyroute2-encoded messages) and NLMSG_DONE."""

    def __init__(self, dumps=None, errors=None):
        self.sent, self.dumps, self.errors, self.queue = [], dumps or {}, errors or {}, []

    def send(self, data):
        n, kind, flags, seq, _pid = struct.unpack_from("=IHHII", data)
        assert n == len(data)
        self.sent.append(data)
        if flags & DUMP == DUMP:
            body = b"".join(_with_seq(m, seq) for m in self.dumps.get(kind, []))
            self.queue.append(body + struct.pack("=IHHIIi", 20, 3, 2, seq, 0, 0))
        elif kind in self.errors:
            self.queue.append(self.errors[kind](data, seq))
        else:
            self.queue.append(struct.pack("=IHHIIi", 36, 2, 0x100, seq, 0, 0) + data[:16])
        return len(data)

    def recv(self, size):
        return self.queue.pop(0)

    def close(self):
        pass


def _with_seq(msg, seq):
    return msg[:8] + struct.pack("=I", seq) + msg[12:]


def _socket(**kw):
    s = rtnl.Socket.__new__(rtnl.Socket)
    s.sock, s.seq = FakeSock(**kw), 0
    return s


def _sent(s):
    """The last message sent, with its sequence number zeroed (pyroute2's is 0 below)."""
    return _with_seq(s.sock.sent[-1], 0)


def p2(cls, mtype, nlm_flags, attrs, **fields):
    """A message encoded by pyroute2's class ``cls``: header type and flags, the class's fields, attributes."""
    m = cls()
    for k, v in fields.items():
        m[k] = v
    m["attrs"] = attrs
    m["header"]["type"], m["header"]["flags"] = mtype, nlm_flags
    m["header"]["sequence_number"], m["header"]["pid"] = 0, 0
    m.encode()
    return bytes(m.data)


def link(mtype, flags, attrs, index=0, up=False):
    return p2(ifinfmsg, mtype, flags, attrs, family=0, index=index, flags=1 if up else 0, change=1 if up else 0)


def route(mtype, flags, attrs, dst_len, proto, rtype, table=254, family=socket.AF_INET):
    return p2(rtmsg, mtype, flags, attrs, family=family, dst_len=dst_len, src_len=0, tos=0, table=table,
              proto=proto, scope=0, type=rtype, flags=0)


def neigh(mtype, flags, attrs, family, ifindex, state, nflags):
    return p2(ndmsg, mtype, flags, attrs, family=family, ifindex=ifindex, state=state, flags=nflags, ndm_type=0)


# every request kind the netlink driver sends: (what rtnl is asked, what pyroute2 encodes for it)
REQUESTS = {
    "bridge add": (lambda s: s.link_add("nsbr-front", "bridge", mtu=1500, address=MAC),
                   link(NEWLINK, REQ | ACK | CREATE | EXCL, [
                       ("IFLA_IFNAME", "nsbr-front"), ("IFLA_ADDRESS", MAC), ("IFLA_MTU", 1500),
                       ("IFLA_LINKINFO", {"attrs": [("IFLA_INFO_KIND", "bridge")]})])),
    "veth add with its peer in a namespace": (
        lambda s: s.veth_add("nsweb0", 1450, 7, True, "eth0", 9, 1450, MAC),
        link(NEWLINK, REQ | ACK | CREATE | EXCL, [
            ("IFLA_IFNAME", "nsweb0"), ("IFLA_MTU", 1450), ("IFLA_MASTER", 7),
            ("IFLA_LINKINFO", {"attrs": [("IFLA_INFO_KIND", "veth"), ("IFLA_INFO_DATA", {"attrs": [
                ("VETH_INFO_PEER", {"attrs": [("IFLA_IFNAME", "eth0"), ("IFLA_NET_NS_FD", 9), ("IFLA_MTU", 1450),
                                              ("IFLA_ADDRESS", MAC)]})]})]})], up=True)),
    "vxlan add": (lambda s: s.vxlan_add("nsvx100", 100, "192.0.2.1", 4789, False, 1450, 5),
                  link(NEWLINK, REQ | ACK | CREATE | EXCL, [
                      ("IFLA_IFNAME", "nsvx100"), ("IFLA_MTU", 1450), ("IFLA_MASTER", 5),
                      ("IFLA_LINKINFO", {"attrs": [("IFLA_INFO_KIND", "vxlan"), ("IFLA_INFO_DATA", {"attrs": [
                          ("IFLA_VXLAN_ID", 100), ("IFLA_VXLAN_LOCAL", "192.0.2.1"), ("IFLA_VXLAN_PORT", 4789),
                          ("IFLA_VXLAN_LEARNING", 0)]})]})], up=True)),
    "macvlan add in a namespace": (
        lambda s: s.macvlan_add("eth1", 2, 9, 1500, MAC, group=4242),
        link(NEWLINK, REQ | ACK | CREATE | EXCL, [
            ("IFLA_IFNAME", "eth1"), ("IFLA_LINK", 2), ("IFLA_NET_NS_FD", 9), ("IFLA_MTU", 1500),
            ("IFLA_ADDRESS", MAC), ("IFLA_GROUP", 4242),
            ("IFLA_LINKINFO", {"attrs": [("IFLA_INFO_KIND", "macvlan"), ("IFLA_INFO_DATA", {"attrs": [
                ("IFLA_MACVLAN_MODE", 4)]})]})])),
    "link set (every field)": (
        lambda s: s.link_set(12, mtu=9000, address=MAC, alias="netstitch bridge front", master=3, up=True),
        link(NEWLINK, REQ | ACK, [("IFLA_MTU", 9000), ("IFLA_ADDRESS", MAC),
                                  ("IFLA_IFALIAS", "netstitch bridge front"), ("IFLA_MASTER", 3)], index=12, up=True)),
    "link set alias only": (lambda s: s.link_set(12, alias="netstitch veth web/eth0 front"),
                            link(NEWLINK, REQ | ACK, [("IFLA_IFALIAS", "netstitch veth web/eth0 front")], index=12)),
    "link set group": (lambda s: s.link_set(12, group=4242),
                       link(NEWLINK, REQ | ACK, [("IFLA_GROUP", 4242)], index=12)),
    "link del": (lambda s: s.link_del(12), link(DELLINK, REQ | ACK, [], index=12)),
    "link del group": (lambda s: s.link_del(group=4242), link(DELLINK, REQ | ACK, [("IFLA_GROUP", 4242)])),
    "link lookup by name": (lambda s: s.link_index("eth0"), link(GETLINK, REQ | ACK, [("IFLA_IFNAME", "eth0")])),
    "address add": (lambda s: s.addr("add", 4, "10.10.0.2", 24),
                    p2(ifaddrmsg, NEWADDR, REQ | ACK | CREATE | EXCL,
                       [("IFA_ADDRESS", "10.10.0.2"), ("IFA_LOCAL", "10.10.0.2")],
                       family=socket.AF_INET, prefixlen=24, flags=0, scope=0, index=4)),
    "address del": (lambda s: s.addr("del", 4, "10.10.0.2", 24),
                    p2(ifaddrmsg, DELADDR, REQ | ACK, [("IFA_ADDRESS", "10.10.0.2"), ("IFA_LOCAL", "10.10.0.2")],
                       family=socket.AF_INET, prefixlen=24, flags=0, scope=0, index=4)),
    "IPv6 address add (nodad)": (lambda s: s.addr("add", 4, "2001:db8:10::a", 64),
                                 p2(ifaddrmsg, NEWADDR, REQ | ACK | CREATE | EXCL, [("IFA_ADDRESS", "2001:db8:10::a")],
                                    family=socket.AF_INET6, prefixlen=64, flags=0x02, scope=0, index=4)),
    "IPv6 address del": (lambda s: s.addr("del", 4, "2001:db8:10::a", 64),
                         p2(ifaddrmsg, DELADDR, REQ | ACK, [("IFA_ADDRESS", "2001:db8:10::a")],
                            family=socket.AF_INET6, prefixlen=64, flags=0x02, scope=0, index=4)),
    "IPv6 default route replace": (lambda s: s.route("replace", "::/0", "2001:db8:10::1", oif=4),
                                   route(NEWROUTE, REQ | ACK | CREATE | REPLACE,
                                         [("RTA_GATEWAY", "2001:db8:10::1"), ("RTA_OIF", 4)], 0, 4, 1,
                                         family=socket.AF_INET6)),
    "IPv6 default route del": (lambda s: s.route("del", "::/0", "2001:db8:10::1", oif=4),
                               route(DELROUTE, REQ | ACK, [("RTA_GATEWAY", "2001:db8:10::1"), ("RTA_OIF", 4)], 0, 0, 0,
                                     family=socket.AF_INET6)),
    "default route replace": (lambda s: s.route("replace", "0.0.0.0/0", "10.10.0.1", oif=4),
                              route(NEWROUTE, REQ | ACK | CREATE | REPLACE,
                                    [("RTA_GATEWAY", "10.10.0.1"), ("RTA_OIF", 4)], 0, 4, 1)),
    "default route del": (lambda s: s.route("del", "0.0.0.0/0", "10.10.0.1", oif=4),
                          route(DELROUTE, REQ | ACK, [("RTA_GATEWAY", "10.10.0.1"), ("RTA_OIF", 4)], 0, 0, 0)),
    "container route replace": (lambda s: s.route("replace", "10.40.0.0/16", "10.40.1.1", oif=4),
                                route(NEWROUTE, REQ | ACK | CREATE | REPLACE, [
                                    ("RTA_DST", "10.40.0.0"), ("RTA_GATEWAY", "10.40.1.1"), ("RTA_OIF", 4)], 16, 4, 1)),
    "host route add (protocol 159)": (lambda s: s.route("add", "10.40.2.0/24", "192.0.2.2", proto=159),
                                      route(NEWROUTE, REQ | ACK | CREATE | EXCL,
                                            [("RTA_DST", "10.40.2.0"), ("RTA_GATEWAY", "192.0.2.2")], 24, 159, 1)),
    "host route del (protocol 159)": (lambda s: s.route("del", "10.40.2.0/24", "192.0.2.2", proto=159),
                                      route(DELROUTE, REQ | ACK,
                                            [("RTA_DST", "10.40.2.0"), ("RTA_GATEWAY", "192.0.2.2")], 24, 159, 0)),
    "fdb append (flood entry)": (lambda s: s.fdb("append", 6, "00:00:00:00:00:00", "192.0.2.2"),
                                 neigh(NEWNEIGH, REQ | ACK | CREATE | APPEND, [
                                     ("NDA_LLADDR", "00:00:00:00:00:00"), ("NDA_DST", "192.0.2.2")], 7, 6, 0xC0, 2)),
    "fdb add": (lambda s: s.fdb("add", 6, MAC, "192.0.2.2"),
                neigh(NEWNEIGH, REQ | ACK | CREATE | EXCL, [("NDA_LLADDR", MAC), ("NDA_DST", "192.0.2.2")],
                      7, 6, 0xC0, 2)),
    "fdb del": (lambda s: s.fdb("del", 6, MAC, "192.0.2.2"),
                neigh(DELNEIGH, REQ | ACK, [("NDA_LLADDR", MAC), ("NDA_DST", "192.0.2.2")], 7, 6, 0xC0, 2)),
    "neighbour replace (pinned gateway)": (lambda s: s.neigh("replace", 4, "10.40.0.1", MAC),
                                           neigh(NEWNEIGH, REQ | ACK | CREATE | REPLACE,
                                                 [("NDA_DST", "10.40.0.1"), ("NDA_LLADDR", MAC)],
                                                 socket.AF_INET, 4, 0x80, 0)),
    "neighbour del": (lambda s: s.neigh("del", 4, "10.40.0.1"),
                      neigh(DELNEIGH, REQ | ACK, [("NDA_DST", "10.40.0.1")], socket.AF_INET, 4, 0x80, 0)),
    "IPv6 neighbour replace (pinned gateway6)": (lambda s: s.neigh("replace", 4, "2001:db8:40::1", MAC),
                                                 neigh(NEWNEIGH, REQ | ACK | CREATE | REPLACE,
                                                       [("NDA_DST", "2001:db8:40::1"), ("NDA_LLADDR", MAC)],
                                                       socket.AF_INET6, 4, 0x80, 0)),
    "IPv6 neighbour del": (lambda s: s.neigh("del", 4, "2001:db8:40::1"),
                           neigh(DELNEIGH, REQ | ACK, [("NDA_DST", "2001:db8:40::1")], socket.AF_INET6, 4, 0x80, 0)),
    "link dump (no statistics)": (lambda s: s.links(), link(GETLINK, REQ | DUMP, [("IFLA_EXT_MASK", 8)])),
    "IPv4 address dump": (lambda s: s.addresses4(),
                          p2(ifaddrmsg, GETADDR, REQ | DUMP, [], family=socket.AF_INET, prefixlen=0, flags=0,
                             scope=0, index=0)),
    "IPv4 route dump (main table)": (lambda s: s.routes4(), route(GETROUTE, REQ | DUMP, [], 0, 0, 0)),
    "IPv6 address dump": (lambda s: s.addresses4(socket.AF_INET6),
                          p2(ifaddrmsg, GETADDR, REQ | DUMP, [], family=socket.AF_INET6, prefixlen=0, flags=0,
                             scope=0, index=0)),
    "IPv6 route dump (main table)": (lambda s: s.routes4(family=socket.AF_INET6),
                                     route(GETROUTE, REQ | DUMP, [], 0, 0, 0, family=socket.AF_INET6)),
    "IPv4 neighbour dump": (lambda s: s.neighbours(), neigh(GETNEIGH, REQ | DUMP, [], socket.AF_INET, 0, 0, 0)),
    "neighbour dump of both families": (lambda s: s.neighbours(socket.AF_UNSPEC),
                                        neigh(GETNEIGH, REQ | DUMP, [], socket.AF_UNSPEC, 0, 0, 0)),
    "FDB dump": (lambda s: s.neighbours(rtnl.AF_BRIDGE), neigh(GETNEIGH, REQ | DUMP, [], 7, 0, 0, 0)),
}


@pytest.mark.parametrize("what", sorted(REQUESTS))
def test_rtnl_sends_what_pyroute2_encodes(what):
    call, expected = REQUESTS[what]
    s = _socket()
    call(s)
    assert _sent(s).hex() == expected.hex()


def test_every_socket_request_method_is_cross_checked():
    methods = {"link_add", "veth_add", "vxlan_add", "macvlan_add", "link_set", "link_del", "link_index", "addr",
               "route", "fdb", "neigh", "links", "addresses4", "routes4", "neighbours"}
    public = {n for n, v in vars(rtnl.Socket).items() if callable(v) and not n.startswith("_")}
    assert public - {"close", "request", "dump"} == methods


def test_rtnl_decodes_what_pyroute2_encodes():
    vx = link(NEWLINK, 2, [
        ("IFLA_IFNAME", "nsvx100"), ("IFLA_ADDRESS", MAC), ("IFLA_MTU", 1450), ("IFLA_LINK", 0), ("IFLA_MASTER", 5),
        ("IFLA_GROUP", 0), ("IFLA_IFALIAS", "netstitch vxlan ov"),
        ("IFLA_LINKINFO", {"attrs": [("IFLA_INFO_KIND", "vxlan"), ("IFLA_INFO_DATA", {"attrs": [
            ("IFLA_VXLAN_ID", 100), ("IFLA_VXLAN_LOCAL", "192.0.2.1"), ("IFLA_VXLAN_LEARNING", 0),
            ("IFLA_VXLAN_PORT", 4789)]})]})], index=9, up=True)
    veth = link(NEWLINK, 2, [("IFLA_IFNAME", "eth0"), ("IFLA_MTU", 1500), ("IFLA_LINK", 21),
                             ("IFLA_ADDRESS", MAC), ("IFLA_LINKINFO", {"attrs": [("IFLA_INFO_KIND", "veth")]})],
                index=2)
    addr = p2(ifaddrmsg, NEWADDR, 2, [("IFA_ADDRESS", "10.10.0.2"), ("IFA_LOCAL", "10.10.0.2")],
              family=socket.AF_INET, prefixlen=24, flags=0, scope=0, index=2)
    rt = route(NEWROUTE, 2, [("RTA_TABLE", 254), ("RTA_GATEWAY", "10.10.0.1"), ("RTA_OIF", 2)], 0, 4, 1)
    other_table = route(NEWROUTE, 2, [("RTA_TABLE", 255), ("RTA_DST", "127.0.0.0"), ("RTA_OIF", 1)], 8, 2, 2,
                        table=255)
    nb = neigh(NEWNEIGH, 2, [("NDA_DST", "10.40.0.1"), ("NDA_LLADDR", MAC)], socket.AF_INET, 2, 0x80, 0)
    s = _socket(dumps={GETLINK: [vx, veth], GETADDR: [addr], GETROUTE: [rt, other_table], GETNEIGH: [nb]})
    links = s.links()
    assert links[0] == {"index": 9, "name": "nsvx100", "flags": 1, "mtu": 1450, "link": 0, "master": 5, "group": 0,
                        "address": MAC, "alias": "netstitch vxlan ov", "kind": "vxlan",
                        "vxlan": {"vni": 100, "port": 4789, "local": "192.0.2.1", "learning": False},
                        "hairpin": None}
    assert links[1] == {"index": 2, "name": "eth0", "flags": 0, "mtu": 1500, "link": 21, "master": None,
                        "group": None, "address": MAC, "alias": None, "kind": "veth", "vxlan": None,
                        "hairpin": None}
    assert s.addresses4() == [(2, "10.10.0.2/24")]
    assert s.routes4() == [{"dst": None, "dst_len": 0, "gateway": "10.10.0.1", "oif": 2, "proto": 4}]
    assert s.neighbours() == [{"ifindex": 2, "state": 0x80, "flags": 0, "dst": "10.40.0.1", "lladdr": MAC}]


def _error_ack(code, text, capped):
    def answer(request, seq):
        echoed = request[:16] if capped else request
        tlv_payload = text.encode() + b"\0"
        tlv = struct.pack("=HH", 4 + len(tlv_payload), rtnl.NLMSGERR_ATTR_MSG) + tlv_payload
        tlv += b"\0" * (-len(tlv) & 3)
        body = struct.pack("=i", -code) + echoed + b"\0" * (-len(echoed) & 3) + tlv
        flags = rtnl.NLM_F_ACK_TLVS | (rtnl.NLM_F_CAPPED if capped else 0)
        return struct.pack("=IHHII", 16 + len(body), 2, flags, seq, 0) + body
    return answer


@pytest.mark.parametrize("capped", [False, True])
def test_a_refusal_carries_the_kernels_text(capped):
    s = _socket(errors={NEWROUTE: _error_ack(101, "Nexthop has invalid gateway", capped)})
    with pytest.raises(rtnl.NetlinkError) as e:
        s.route("add", "10.40.2.0/24", "203.0.113.9", proto=159)
    assert e.value.code == 101 and e.value.kernel_text == "Nexthop has invalid gateway"
    assert e.value.args[1] == "Network is unreachable: Nexthop has invalid gateway"


def test_a_refusal_without_extended_ack_keeps_the_errno_text():
    def plain(request, seq):
        return struct.pack("=IHHIIi", 36, 2, 0, seq, 0, -17) + request[:16]
    s = _socket(errors={NEWLINK: plain})
    with pytest.raises(rtnl.NetlinkError) as e:
        s.link_add("x", "bridge")
    assert e.value.args == (17, "File exists") and e.value.kernel_text is None


def test_rtnl_reads_global_ipv6_addresses_only():
    """The kernel's link-local address (scope link) of every interface is not netstitch's: never read, so never
    removed; a global one is read in canonical text."""
    glob = p2(ifaddrmsg, NEWADDR, 2, [("IFA_ADDRESS", "2001:db8:10::a")], family=socket.AF_INET6, prefixlen=64,
              flags=0x02, scope=0, index=2)
    local = p2(ifaddrmsg, NEWADDR, 2, [("IFA_ADDRESS", "fe80::1")], family=socket.AF_INET6, prefixlen=64,
               flags=0x80, scope=253, index=2)
    s = _socket(dumps={GETADDR: [local, glob]})
    assert s.addresses4(socket.AF_INET6) == [(2, "2001:db8:10::a/64")]
