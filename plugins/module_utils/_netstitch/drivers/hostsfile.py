"""Hosts-file driver: the block netstitch manages in /etc/netns/<netns>/hosts (kinds.hosts_file), the file that
`ip netns exec` bind-mounts over /etc/hosts inside the namespace. Lines outside the block are the user's and stay."""

import os

from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.marks import HOSTS_BEGIN as BEGIN
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.marks import HOSTS_END as END

BASE = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
ETC_NETNS = "/etc/netns"


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
        try:
            os.unlink(p)
            os.rmdir(os.path.dirname(p))
        except OSError:
            pass
        return
    os.makedirs(os.path.dirname(p), exist_ok=True)
    tmp = p + ".netstitch-tmp"
    with open(tmp, "w") as f:
        f.write("\n".join(lines) + "\n")
    os.rename(tmp, p)


class HostsFiles(object):
    """The driver of the hosts_write action; counts the files it writes."""

    def __init__(self):
        self.writes = 0

    def read(self, namespaces):
        return {ns: read_block(ns) for ns in namespaces}

    def execute(self, action):
        self.writes += 1
        write_block(action["netns"], action["entries"])

    def forget(self, netns):
        """A namespace netstitch removed: the names it wrote for it go too."""
        if read_block(netns) is not None:
            self.writes += 1
            write_block(netns, [])
