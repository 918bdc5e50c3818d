"""What netstitch keeps on disk survives a crash at any moment: files are replaced atomically (written beside, fsync'd,
renamed, the directory fsync'd), and the per-host state file is read defensively (a clear error naming the file, never
a traceback).

The state file <state_dir>/<host>.json is also the intent journal and the checkpoint of an apply:
- ``spec``, ``leases``, ``peers``: the last successful apply (the checkpoint a failed apply rolls back to);
- ``owned_netns``: the namespaces netstitch created; a namespace is added here, fsync'd, *before* it is created;
- ``attached``: the interfaces netstitch did not make but enslaved to one of its bridges ({interface: {"bridge",
  "index"}}, kinds.attach); one is added here, fsync'd, *before* it is enslaved, and only these are ever released;
- ``pending``: set (fsync'd) before an apply touches the host, removed when it has succeeded or rolled back. Found at
  the start of an apply, it says the previous one was interrupted (killed, power cut); what that run made carries
  netstitch's marks (interface alias or creation group, route protocol, nft table, hosts-file block, Docker labels,
  tinc configuration under the state directory) or is in ``owned_netns``, so the new run simply reconciles it.
"""

import errno
import ipaddress
import json
import os

from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch import faults
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.errors import ApplyError

_FIELDS = {"leases": dict, "owned_netns": list, "spec": (dict, type(None)), "peers": (dict, type(None)),
           "pending": (dict, type(None)), "attached": dict}


def atomic_write(path, text, tmp_suffix=".tmp", mode=0o600, sync=True):
    """Replace ``path`` by ``text`` so that a crash leaves either the old or the new content, never a mix or nothing:
    write a file beside it, fsync it, rename it over ``path``, fsync the directory. On an error the file beside is
    removed and OSError is raised (the old content is still there). ``sync=False`` skips the fsyncs, for a file that
    means nothing after a reboot (the rename alone is atomic against a killed process)."""
    tmp = path + tmp_suffix
    faults.point("write %s" % tmp)
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, mode)
        try:
            data = text.encode("utf-8")
            while data:
                data = data[os.write(fd, data):]
            if sync:
                os.fsync(fd)
        finally:
            os.close(fd)
        faults.point("rename %s" % path)
        os.rename(tmp, path)
    except OSError:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    if sync:
        fsync_dir(os.path.dirname(path) or ".")


def fsync_dir(d):
    try:
        fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def what_to_do(e):
    """A hint for an OSError on the state directory."""
    return {errno.EROFS: "the file system is read-only: remount it read-write or give another state_dir",
            errno.ENOSPC: "the file system is full: free some space",
            errno.EDQUOT: "the disk quota is exhausted: free some space",
            errno.EACCES: "permission denied: run as root or give a state_dir this user may write",
            errno.EPERM: "permission denied: run as root or give a state_dir this user may write",
            errno.ENOTDIR: "a path component is not a directory: give another state_dir"}.get(
        e.errno, "check the state directory")


def state_error(path, e, done="nothing was changed on the host"):
    return ApplyError("netstitch's state file %s could not be written (%s); %s. To fix: %s."
                      % (path, e.strerror or e, done, what_to_do(e)))


def load_state(path):
    """(data, text) of a host's state file; ({}, None) when there is none. A file that cannot be read, is not JSON,
    or is JSON of another shape is an ApplyError that names the file and says what to do (nothing is guessed: the
    file holds the leases and the namespaces netstitch owns)."""
    try:
        with open(path) as f:
            text = f.read()
    except FileNotFoundError:
        return {}, None
    except OSError as e:
        raise ApplyError("netstitch's state file %s cannot be read (%s). To fix: %s." % (path, e.strerror or e,
                                                                                         what_to_do(e)))
    hint = ("it holds netstitch's address leases and the namespaces it created: restore it from a backup, or move it "
            "away to start afresh (netstitch then no longer knows those namespaces as its own)")
    try:
        data = json.loads(text)
    except ValueError as e:
        raise ApplyError("netstitch's state file %s is not valid JSON (%s); %s." % (path, e, hint))
    if not isinstance(data, dict):
        raise ApplyError("netstitch's state file %s holds a JSON %s where an object is expected; %s."
                         % (path, type(data).__name__, hint))
    for key, kind in _FIELDS.items():
        if key in data and not isinstance(data[key], kind):
            raise ApplyError("netstitch's state file %s: %r is a JSON %s, not of the expected shape; %s."
                             % (path, key, type(data[key]).__name__, hint))
    if not all(isinstance(n, str) for n in data.get("owned_netns", [])):
        raise ApplyError("netstitch's state file %s: 'owned_netns' must be a list of names; %s." % (path, hint))
    for name, rec in data.get("attached", {}).items():
        if not (isinstance(rec, dict) and isinstance(rec.get("bridge"), str) and isinstance(rec.get("index"), int)):
            raise ApplyError("netstitch's state file %s: the record of attached interface %r is not of the expected "
                             "shape ({\"bridge\": name, \"index\": number}); %s." % (path, name, hint))
    for net, leases in data.get("leases", {}).items():
        for key, addr in (leases.items() if isinstance(leases, dict) else [(None, leases)]):
            try:
                if not isinstance(addr, str):
                    raise ValueError(addr)
                # an interface's IPv6 lease (ipam.lease_key6) beside its IPv4 one
                (ipaddress.IPv6Address if str(key).endswith("/6") else ipaddress.IPv4Address)(addr)
            except ValueError:
                raise ApplyError("netstitch's state file %s: the leases of network %r are not of the expected shape "
                                 "({container/interface[/6]: address}, found %s); %s."
                                 % (path, net, json.dumps(leases)[:80], hint))
    return data, text
