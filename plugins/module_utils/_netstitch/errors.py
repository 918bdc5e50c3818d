"""Errors netstitch raises. Every user-facing problem carries the path in the topology and a reason.

Whatever a topology's names and values contain, a message shows them safely: control and other invisible characters
(ESC, NUL, newlines, U+202E, ...) are written as escapes, so each problem stays on its own line and nothing reaches a
terminal raw, and a long value is cut (its length is given).
"""

MAX_PATH = 240          # characters of a path shown
MAX_REASON = 480        # characters of a reason shown


def escape(text, limit=None, keep_newlines=False):
    """``text`` with every non-printable character as a Python-style escape, cut to ``limit`` characters."""
    text = text if isinstance(text, str) else str(text)
    if limit is not None and len(text) > limit:
        text = "%s... (cut, %d characters in all)" % (text[:limit], len(text))
    if text.isprintable():
        return text
    out = []
    for ch in text:
        if ch.isprintable() or (keep_newlines and ch == "\n"):
            out.append(ch)
        else:
            code = ord(ch)
            out.append("\\x%02x" % code if code < 0x100 else "\\u%04x" % code if code < 0x10000 else "\\U%08x" % code)
    return "".join(out)


class NetstitchError(Exception):
    """A failure with a message meant for the user (no traceback needed)."""


class Problem(object):
    __slots__ = ("path", "reason")

    def __init__(self, path, reason):
        self.path = path
        self.reason = reason

    def __str__(self):
        return "%s: %s" % (escape(self.path, MAX_PATH) or "(top level)", escape(self.reason, MAX_REASON))

    def __repr__(self):
        return "Problem(%r, %r)" % (self.path, self.reason)

    def __eq__(self, other):
        return isinstance(other, Problem) and (self.path, self.reason) == (other.path, other.reason)

    def __hash__(self):
        return hash((self.path, self.reason))

    def to_dict(self):
        return {"path": escape(self.path, MAX_PATH), "reason": escape(self.reason, MAX_REASON)}


class TopologyError(NetstitchError):
    """The topology is invalid; ``problems`` lists every problem found, each with its path."""

    def __init__(self, problems):
        self.problems = list(problems)
        lines = ["topology is invalid (%d problem%s):" % (len(self.problems), "" if len(self.problems) == 1 else "s")]
        lines.extend("  - %s" % p for p in self.problems)
        NetstitchError.__init__(self, "\n".join(lines))


class ApplyError(NetstitchError):
    """Applying a plan to a host failed."""
