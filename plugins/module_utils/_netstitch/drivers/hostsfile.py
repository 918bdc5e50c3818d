"""Hosts-file driver: the block netstitch manages in /etc/netns/<netns>/hosts (kinds.hosts_file), the file that
`ip netns exec` bind-mounts over /etc/hosts inside the namespace. Lines outside the block are the user's and stay."""

import os

from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch import faults
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.durable import atomic_write
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.marks import HOSTS_BEGIN as BEGIN
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.marks import HOSTS_END as END
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.errors import ApplyError

BASE = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
ETC_NETNS = "/etc/netns"
TMP = ".netstitch-tmp"


def path(netns):
    return os.path.join(ETC_NETNS, netns, "hosts")


def read_block(netns):
    """The entries of netstitch's block, [[ip, name], ...] sorted, or None when there is no block."""
    try:
        with open(path(netns)) as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    if BEGIN not in lines:
        return None
    out = []
    for line in lines[lines.index(BEGIN) + 1:]:
        if line == END:
            break
        parts = line.split()
        if len(parts) >= 2:
            out.append([parts[0], parts[1]])
    return sorted(out)


def write_block(netns, entries):
    """Replace (or add) the block; with no entries, remove the block, and the file when nothing else is in it."""
    p = path(netns)
    try:
        with open(p) as f:
            lines = f.read().splitlines()
    except OSError:
        lines = BASE.splitlines()
    if BEGIN in lines:
        i = lines.index(BEGIN)
        j = lines.index(END, i) if END in lines[i:] else len(lines) - 1
        del lines[i:j + 1]
    if entries:
        lines += [BEGIN] + ["%s\t%s" % (ip, name) for ip, name in entries] + [END]
    if not entries and lines == BASE.splitlines():
        _remove_file(p)
        return
    faults.point("hosts file %s" % p)
    os.makedirs(os.path.dirname(p), exist_ok=True)
    # atomic against a kill; no fsync: after a power cut the namespaces (in /run) are gone, and the next apply makes
    # them and their names again (an fsync per container would cost seconds on a disk at a thousand containers)
    atomic_write(p, "\n".join(lines) + "\n", tmp_suffix=TMP, mode=0o644, sync=False)


def _remove_file(p):
    """Remove the hosts file netstitch wrote (and its directory when that is empty), whatever step a run stopped at."""
    for leftover in (p, p + TMP):
        if os.path.lexists(leftover):
            faults.point("hosts file unlink %s" % leftover)
            try:
                os.unlink(leftover)
            except FileNotFoundError:
                pass
    d = os.path.dirname(p)
    if os.path.isdir(d) and not os.listdir(d):
        faults.point("hosts dir rmdir %s" % d)
        try:
            os.rmdir(d)
        except OSError:
            pass


def remove(netns):
    """Remove netstitch's names for a namespace that goes (idempotent, also after a run stopped half-way through it):
    its block, and the file and directory when nothing else is in them. Returns whether anything was there."""
    p = path(netns)
    if read_block(netns) is not None:
        write_block(netns, [])
        return True
    d = os.path.dirname(p)
    if os.path.lexists(p + TMP) or (not os.path.lexists(p) and os.path.isdir(d) and not os.listdir(d)):
        _remove_file(p)
        return True
    return False


class HostsFiles(object):
    """The driver of the hosts_write action; counts the files it writes."""

    def __init__(self):
        self.writes = 0

    def read(self, namespaces):
        return {ns: read_block(ns) for ns in namespaces}

    def execute(self, action):
        self.writes += 1
        try:
            write_block(action["netns"], action["entries"])
        except OSError as e:
            raise ApplyError("%s: %s" % (action["text"], e))

    def forget(self, netns):
        """A namespace netstitch removes: the names it wrote for it go first, so that a run stopped in between
        leaves a namespace that the next run removes again, names and all (idempotent)."""
        if remove(netns):
            self.writes += 1
