"""Sysctls under /proc/sys: the host's own, and a container namespace's (/proc/sys/net is the network namespace of the
thread that opens it, so the thread enters the namespace for the moment of the read or write)."""

import os

from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.drivers.netns import ns_path
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.drivers.nlsocket import enter_netns


def _sysctl_path(key):
    """A dotted key (net.ipv4.ip_forward), or a path under /proc/sys (net/ipv4/conf/NAME/route_localnet)."""
    return "/proc/sys/" + (key if "/" in key else key.replace(".", "/"))


def read_sysctl(key):
    try:
        with open(_sysctl_path(key)) as f:
            return f.read().strip()
    except OSError:
        return None


def write_sysctl(key, value):
    with open(_sysctl_path(key), "w") as f:
        f.write(str(value))


def in_netns(ns, home, fn, *args):
    """``fn(*args)`` with the thread in namespace ``ns`` (a name under /run/netns or a path), back in ``home`` (an fd
    of the thread's own namespace) after it."""
    fd = os.open(ns_path(ns), os.O_RDONLY | os.O_CLOEXEC)
    try:
        enter_netns(fd)
        try:
            return fn(*args)
        finally:
            enter_netns(home)
    finally:
        os.close(fd)
