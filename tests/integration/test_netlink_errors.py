"""Extended acks on a real kernel: a request the kernel refuses carries the kernel's own explanation into the error
(rtnl sets NETLINK_EXT_ACK), in a host namespace the test made."""

import os

import pytest

from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.drivers import rtnl


def test_a_refused_request_says_why_in_the_kernels_words(env):
    path = "/run/netns/%s" % env.hostns
    assert os.path.exists(path)
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        s = rtnl.Socket(path, home)
        try:
            # a gateway that is on no link of the namespace: the kernel refuses the route (ENETUNREACH)
            with pytest.raises(rtnl.NetlinkError) as e:
                s.route("add", "10.99.0.0/24", "203.0.113.77", proto=159)
        finally:
            s.close()
    finally:
        os.close(home)
    assert e.value.code == 101
    assert e.value.kernel_text and "gateway" in e.value.kernel_text.lower(), e.value.args
    assert e.value.args[1].startswith("Network is unreachable: ")
    assert "10.99.0.0/24" not in env.ip("route")     # nothing was added
