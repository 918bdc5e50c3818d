"""Write points: the one seam through which netstitch's crash-consistency tests stop an apply.

Every driver calls ``point(what)`` just before each write it makes to the kernel or to disk: each netlink request,
the nft transaction, each state/hosts-file write and rename, each step of creating or removing a namespace (file,
unshare, bind mount, unmount, unlink), each tinc and Docker call. The engine calls ``action(index, text)`` before
each planned action. Unarmed (always, unless the environment says otherwise) both do nothing but count.

``NETSTITCH_FAULT`` arms it; ``arm_from_env()`` (called at the start of every apply) reads it:

    kill:N           SIGKILL this process just before its Nth write point (1-based): a real crash, as an OOM kill
                     or a power cut would leave the host (nothing of Python runs after it: no finally, no flush)
    fail-action:I    raise ApplyError just before planned action I (0-based, as in the result's actions), once
    fail-both:I      the same, and then the rollback's first action fails too (to see what a failed rollback says)
    count:PATH       append one line per write point ("N what") to PATH (to enumerate the points of a run)
"""

import os
import signal

from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.errors import ApplyError

ENV = "NETSTITCH_FAULT"


class _Seam(object):
    def __init__(self):
        self.mode = None
        self.arg = None
        self.count = 0


_seam = _Seam()


def arm(spec):
    """Arm the seam from a NETSTITCH_FAULT value (None or "" disarms it); the count starts again at zero."""
    _seam.count = 0
    _seam.mode = _seam.arg = None
    if not spec:
        return
    mode, _sep, arg = spec.partition(":")
    if mode == "kill" and arg.isdigit():
        _seam.mode, _seam.arg = mode, int(arg)
    elif mode in ("fail-action", "fail-both") and arg.isdigit():
        _seam.mode, _seam.arg = mode, int(arg)
    elif mode == "count" and arg:
        _seam.mode, _seam.arg = mode, arg
    else:
        raise ApplyError("%s=%r: expected kill:N, fail-action:I, fail-both:I or count:PATH" % (ENV, spec))


def arm_from_env():
    arm(os.environ.get(ENV))


def point(what):
    """Called just before one write (see the module's docstring)."""
    _seam.count += 1
    if _seam.mode is None:
        return
    if _seam.mode == "kill" and _seam.count == _seam.arg:
        os.kill(os.getpid(), signal.SIGKILL)
    elif _seam.mode == "count":
        with open(_seam.arg, "a") as f:
            f.write("%d %s\n" % (_seam.count, what))


def action(index, text):
    """Called just before planned action ``index``: fails it when armed with fail-action:index (once)."""
    if _seam.mode in ("fail-action", "fail-both") and index == _seam.arg:
        _seam.mode = "then-rollback" if _seam.mode == "fail-both" else None
        raise ApplyError("%s: injected failure (%s)" % (text, ENV))


def rollback():
    """Called when a rollback starts: after fail-both, its first action fails; any other setting is disarmed."""
    if _seam.mode == "then-rollback":
        _seam.mode, _seam.arg = "fail-action", 0
    else:
        _seam.mode = None
