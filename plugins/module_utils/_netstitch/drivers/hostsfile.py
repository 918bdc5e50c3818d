"""Hosts-file driver: the block netstitch manages in /etc/netns/<netns>/hosts (kinds.hosts_file), the file that
`ip netns exec` bind-mounts over /etc/hosts inside the namespace, and the same block in a Docker container's hosts
file (kinds.docker_hosts: Docker's HostsPath, which Docker bind-mounts as the container's /etc/hosts). Lines outside
the block are the user's (or Docker's) and stay."""

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
    return block_of(lines)


def block_of(lines):
    """The entries of netstitch's block in a hosts file's lines, sorted, or None when there is no block."""
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


def with_block(lines, entries):
    """Hosts-file lines with netstitch's block replaced by ``entries`` (at the end; no block without entries)."""
    lines = list(lines)
    if BEGIN in lines:
        i = lines.index(BEGIN)
        j = lines.index(END, i) if END in lines[i:] else len(lines) - 1
        del lines[i:j + 1]
    while lines and not lines[-1].strip():
        lines.pop()     # the padding an interrupted in-place write leaves (write_in_place)
    if entries:
        lines += [BEGIN] + ["%s\t%s" % (ip, name) for ip, name in entries] + [END]
    return lines


def write_block(netns, entries):
    """Replace (or add) the block; with no entries, remove the block, and the file when nothing else is in it."""
    p = path(netns)
    try:
        with open(p) as f:
            lines = f.read().splitlines()
    except OSError:
        lines = BASE.splitlines()
    lines = with_block(lines, entries)
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


def read_docker(p):
    """The entries of netstitch's block in a Docker container's hosts file (Docker's HostsPath): sorted, [] when the
    file has no block, None when there is no such file (the container was removed meanwhile)."""
    try:
        with open(p) as f:
            return block_of(f.read().splitlines()) or []
    except FileNotFoundError:
        return None


def write_docker(p, entries):
    """Replace netstitch's block in a Docker container's hosts file, in place: the file is bind-mounted as the
    container's /etc/hosts, so a file renamed over it would not be what the container sees (Docker itself rewrites
    it in place too). Never creates the file (a container that is gone has none); returns whether it was there.

    The new text is written in one write() over the old one (padded with newlines to the old length when shorter),
    then the file is cut to its length: a reader never finds it empty, and a write stopped in between leaves only
    blank lines at its end (harmless in a hosts file, and dropped by the next write)."""
    try:
        fd = os.open(p, os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        with os.fdopen(os.dup(fd), "rb") as f:
            old = f.read()
        text = ("\n".join(with_block(old.decode("utf-8", "surrogateescape").splitlines(), entries)) + "\n").encode(
            "utf-8", "surrogateescape")
        if text == old:
            return True
        faults.point("hosts file %s" % p)
        data = text + b"\n" * max(0, len(old) - len(text))
        done = 0
        while done < len(data):
            done += os.pwrite(fd, data[done:], done)
        os.ftruncate(fd, len(text))
    finally:
        os.close(fd)
    return True


class HostsFiles(object):
    """The driver of the hosts_write and docker_hosts_write actions; counts the files it writes."""

    def __init__(self):
        self.writes = 0

    def read(self, namespaces):
        return {ns: read_block(ns) for ns in namespaces}

    @staticmethod
    def read_docker(p):
        try:
            return read_docker(p)
        except OSError as e:
            raise ApplyError("reading the hosts file of a Docker container, %s: %s" % (p, e))

    def execute(self, action):
        op = action["op"]
        if op not in ("hosts_write", "docker_hosts_write"):
            raise ValueError("not a hosts-file action: %r" % op)
        self.writes += 1
        try:
            if op == "docker_hosts_write":
                write_docker(action["path"], action["entries"])
            else:
                write_block(action["netns"], action["entries"])
        except OSError as e:
            raise ApplyError("%s: %s" % (action["text"], e))

    def forget(self, netns):
        """A namespace netstitch removes: the names it wrote for it go first, so that a run stopped in between
        leaves a namespace that the next run removes again, names and all (idempotent)."""
        if remove(netns):
            self.writes += 1
