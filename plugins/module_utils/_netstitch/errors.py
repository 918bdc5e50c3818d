"""Errors netstitch raises. Every user-facing problem carries the path in the topology and a reason."""


class NetstitchError(Exception):
    """A failure with a message meant for the user (no traceback needed)."""


class Problem(object):
    __slots__ = ("path", "reason")

    def __init__(self, path, reason):
        self.path = path
        self.reason = reason

    def __str__(self):
        return "%s: %s" % (self.path or "(top level)", self.reason)

    def __repr__(self):
        return "Problem(%r, %r)" % (self.path, self.reason)

    def __eq__(self, other):
        return isinstance(other, Problem) and (self.path, self.reason) == (other.path, other.reason)

    def __hash__(self):
        return hash((self.path, self.reason))

    def to_dict(self):
        return {"path": self.path, "reason": self.reason}


class TopologyError(NetstitchError):
    """The topology is invalid; ``problems`` lists every problem found, each with its path."""

    def __init__(self, problems):
        self.problems = list(problems)
        lines = ["topology is invalid (%d problem%s):" % (len(self.problems), "" if len(self.problems) == 1 else "s")]
        lines.extend("  - %s" % p for p in self.problems)
        NetstitchError.__init__(self, "\n".join(lines))


class ApplyError(NetstitchError):
    """Applying a plan to a host failed."""
