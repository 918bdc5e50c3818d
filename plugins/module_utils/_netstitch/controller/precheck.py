"""A first pass over raw topology data, before the JSON Schema and the semantic checks, for what those let through or
choke on:

- **Integers are integers.** JSON Schema counts 100.0 as an integer; netstitch does not: a float where an integer
  belongs (``mtu: 1400.0``, ``vni: 100.0``, ``host_port: 80.0``, ``nan``, ``1e400``) is reported by path
  (``networks.x.overlay.vni: must be an integer, got 100.0``).
- **A list or a mapping where a single value belongs** (a name, an address, a number, a flag) is reported by path
  as such, and never reaches the checks that use the value as a name (a list is no dictionary key).
- **Interface names the kernel refuses** at apply time: ``all`` and ``default`` (taken by the per-interface sysctl
  directories), ``bonding_masters`` (a sysfs file), ``.`` and ``..``, anything with '/', ':' or whitespace, and ``lo``
  for a name on the host side.
- **Size**: at most LIMITS["nodes"] values (the YAML reader has the same limit for aliases; this one also holds for a
  topology given inline to the module).

The pass walks the data along the schema only (never deeper than the schema describes, so a deeply nested value costs
one step), and returns the problems and a copy of the data in which every value it reported is made harmless (an
integral float becomes the integer, anything else is removed), so the checks that follow report every other problem
and never a second one for the same path.
"""

import math
import reprlib

from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.errors import Problem
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.controller.checking import path_text
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.controller.schema import SCHEMA
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.controller.safeyaml import LIMITS

RESERVED_IFNAMES = {
    "all": "Linux keeps 'all' for the settings of every interface (/proc/sys/net/*/conf/all)",
    "default": "Linux keeps 'default' for the settings of new interfaces (/proc/sys/net/*/conf/default)",
    "bonding_masters": "Linux keeps 'bonding_masters' for the bonding driver (/sys/class/net/bonding_masters)",
    ".": "Linux refuses '.' and '..'",
    "..": "Linux refuses '.' and '..'",
}
HOST_SIDE_IFNAMES = ("bridge", "host_name", "device")      # names of interfaces in the host's own namespace


class _Node(object):
    """One place of the schema, reduced to what this pass needs."""
    __slots__ = ("kinds", "integer", "props", "extra", "items", "ifname", "want")

    def __init__(self):
        self.kinds = None       # allowed container kinds: {"object"}, {"array"}, {"scalar"}, or a mix; None = any
        self.integer = False    # an integer (or a port range text) belongs here
        self.props = {}         # key -> _Node
        self.extra = None       # _Node for other keys, or None
        self.items = None       # _Node for list items, or None
        self.ifname = False
        self.want = "a single value"


def _compile(schema, root, memo):
    ref = schema.get("$ref")
    if ref is not None:
        if ref not in memo:
            target = root
            for part in ref.lstrip("#/").split("/"):
                target = target[part]
            memo[ref] = node = _Node()
            _fill(node, target, root, memo)
            node.ifname = ref.endswith("/ifname")
        return memo[ref]
    node = _Node()
    _fill(node, schema, root, memo)
    return node


def _option_types(option, root):
    """The JSON types one alternative of a oneOf/anyOf allows (following a $ref; a const is of its value's type)."""
    if "$ref" in option:
        target = root
        for part in option["$ref"].lstrip("#/").split("/"):
            target = target[part]
        option = target
    inner = option.get("oneOf") or option.get("anyOf")
    if inner:
        return [t for o in inner for t in _option_types(o, root)]
    t = option.get("type")
    if t is not None:
        return [t] if isinstance(t, str) else list(t)
    if "const" in option or "enum" in option:
        value = option.get("const", (option.get("enum") or [""])[0])
        return ["integer" if isinstance(value, int) and not isinstance(value, bool) else "string"]
    return []


def _fill(node, schema, root, memo):
    types = schema.get("type")
    options = schema.get("oneOf") or schema.get("anyOf")
    if options:
        types = [t for o in options for t in _option_types(o, root)]
    if types is None and ("enum" in schema or "const" in schema):
        types = ["string"]      # only plain values are allowed where an enum or const is (mappings, lists are not)
        if isinstance(schema.get("const"), int) and not isinstance(schema.get("const"), bool):
            node.integer = True
    if types is not None:
        types = [types] if isinstance(types, str) else types
        kinds = set()
        for t in types:
            kinds.add("object" if t == "object" else "array" if t == "array" else "scalar")
            if t == "integer":
                node.integer = True
        node.kinds = kinds
        words = {"string": "a string", "integer": "an integer", "boolean": "true or false", "object": "a mapping",
                 "array": "a list", "number": "a number"}
        if "enum" in schema:
            node.want = "one of: %s" % ", ".join(str(v) for v in schema["enum"])
        elif "const" in schema:
            node.want = repr(schema["const"])
        else:
            node.want = " or ".join(words.get(t, "a %s" % t) for t in types)
    for key, sub in (schema.get("properties") or {}).items():
        node.props[key] = _compile(sub, root, memo)
    if isinstance(schema.get("additionalProperties"), dict):
        node.extra = _compile(schema["additionalProperties"], root, memo)
    if isinstance(schema.get("items"), dict):
        node.items = _compile(schema["items"], root, memo)


_ROOT = []


def _root():
    if not _ROOT:
        _ROOT.append(_compile(SCHEMA, SCHEMA, {}))
    return _ROOT[0]


_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxstring, _REPR.maxother = 3, 40, 40


def _short(value):
    """A short repr, however long or deep the value (a plain repr recurses once per level)."""
    return _REPR.repr(value)


class _Walk(object):
    def __init__(self):
        self.problems = []
        self.fixes = []         # (parts, replacement or _DROP)
        self.count = 0
        self.over = False

    def report(self, parts, reason, fix):
        self.problems.append(Problem(path_text(parts), reason))
        self.fixes.append((parts, fix))

    def walk(self, value, node, parts):
        self.count += 1
        if self.count > LIMITS["nodes"]:
            if not self.over:
                self.over = True
                self.problems.append(Problem("", "more than %d values in the topology (the limit; a 100,000-container "
                                                 "topology has about 0.9 million)" % LIMITS["nodes"]))
            return
        kinds = node.kinds
        if isinstance(value, dict):
            if kinds is not None and "object" not in kinds:
                return self.wrong_kind(value, node, parts)
            props, extra = node.props, node.extra
            for key, sub in value.items():
                child = props.get(key) if props else None
                if child is None:
                    child = extra
                if child is not None:
                    self.walk(sub, child, parts + (key,))
                    if self.over:
                        return
        elif isinstance(value, list):
            if kinds is not None and "array" not in kinds:
                return self.wrong_kind(value, node, parts)
            items = node.items
            if items is not None:
                for i, sub in enumerate(value):
                    self.walk(sub, items, parts + (i,))
                    if self.over:
                        return
        elif isinstance(value, float):
            if node.integer:
                if math.isfinite(value) and value == int(value):
                    self.report(parts, "must be an integer, got %r" % value, int(value))
                else:
                    self.report(parts, "must be an integer, got %r" % value, _DROP)
        elif isinstance(value, str):
            if node.ifname:
                self.interface_name(value, parts)

    def wrong_kind(self, value, node, parts):
        kind = "a mapping" if isinstance(value, dict) else "a list"
        self.report(parts, "must be %s, not %s (%s)" % (node.want, kind, _short(value)), _DROP)

    def interface_name(self, name, parts):
        reason = RESERVED_IFNAMES.get(name)
        if reason is None and name == "lo" and parts[-1] in HOST_SIDE_IFNAMES:
            reason = "'lo' is the host's loopback interface"
        if reason is None and any(c == "/" or c == ":" or c.isspace() for c in name):
            reason = "Linux refuses '/', ':' and whitespace in interface names"
        if reason is not None:
            self.report(parts, "%r is not a valid interface name (%s)" % (name, reason), _KEEP)


_DROP = object()
_KEEP = object()


def check(data):
    """(problems, data to check further): the problems this pass finds, each with its path, and the data with every
    reported value made harmless (a copy; ``data`` itself is never changed)."""
    w = _Walk()
    if isinstance(data, dict):
        w.walk(data, _root(), ())
    fixes = [(parts, fix) for parts, fix in w.fixes if fix is not _KEEP]
    if not fixes:
        return w.problems, data
    data, copies = dict(data), {}
    mine = set([id(data)])      # containers already copied (changed in place from here on)
    for n, (parts, fix) in enumerate(fixes):
        parent = data
        try:
            for p in parts[:-1]:
                child = parent[p]
                if id(child) not in mine:
                    # copy only the containers on the way to the value (the rest is shared, never changed); a
                    # container reached twice (a YAML alias) is copied once
                    c = copies.get(id(child))
                    if c is None:
                        c = copies[id(child)] = dict(child) if isinstance(child, dict) else list(child)
                        mine.add(id(c))
                    parent[p] = c
                    child = c
                parent = child
            last = parts[-1]
            if fix is not _DROP:
                parent[last] = fix
            elif isinstance(parent, dict):
                parent.pop(last, None)
            else:
                # keep the positions of the items after it; distinct (a list may have to hold unique items), and
                # a string no check takes for a name, address or port (what they say of it is not reported)
                parent[last] = "\x00removed-%d" % n
        except (KeyError, IndexError, TypeError):   # pragma: no cover - the walk saw these very places
            continue
    return w.problems, data


def supersedes(problems):
    """A test telling whether a later problem is about a value this pass already reported (same path or below)."""
    paths = set(p.path for p in problems)
    if not paths:
        return lambda problem: False

    def covered(problem):
        path = problem.path
        if path in paths:
            return True
        for i, ch in enumerate(path):
            if (ch == "." or ch == "[") and path[:i] in paths:
                return True
        return False
    return covered
