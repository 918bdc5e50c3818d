"""A YAML reader for hostile and huge topologies.

- libyaml's parser (PyYAML's CSafeLoader) where it is installed, else PyYAML's pure-Python one; both safe (plain data
  only: mappings, sequences, strings, numbers, booleans, null).
- A key given twice in one mapping is an error (plain YAML keeps the last silently, so a second container of the same
  name would make the first one vanish, and apply would prune it). A key a merge (``<<``) brings in may be overridden.
- Limits, checked while the value is built, before anything large exists (the numbers are in LIMITS and the README):
  the file's size, the nesting depth, and the number of nodes once every alias and merge is expanded. An alias keeps
  sharing one built value, so a 1 KB "billion laughs" file is refused after a few thousand steps, with the limit named.
- A recursive alias (an anchor used inside itself) is refused.

The value is built by one iterative pass over the composed node graph (no recursion, so no RecursionError), which
is also about twice as fast as PyYAML's own constructor on a 100,000-container file.
"""

import gc

from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.errors import NetstitchError

MAX_BYTES = 32 * 2 ** 20        # a 100,000-container topology is about 7 MB written compactly, 20 MB spelled out
MAX_DEPTH = 32                  # a topology nests at most 6 deep (containers.web.interfaces[0].ip)
MAX_NODES = 5000000             # after expanding aliases; a 100,000-container topology has about 0.9 million

LIMITS = {"bytes": MAX_BYTES, "depth": MAX_DEPTH, "nodes": MAX_NODES}

STR_TAG = "tag:yaml.org,2002:str"
MAP_TAG = "tag:yaml.org,2002:map"
SEQ_TAG = "tag:yaml.org,2002:seq"
MERGE_TAG = "tag:yaml.org,2002:merge"


class YamlLimitError(NetstitchError):
    """The file breaks one of the limits (size, depth, expanded nodes) or is not plain data."""


def _where(node):
    m = getattr(node, "start_mark", None)
    return " (line %d, column %d)" % (m.line + 1, m.column + 1) if m is not None else ""


def _loader_class():
    import yaml
    from yaml.nodes import ScalarNode
    base = getattr(yaml, "CSafeLoader", None) or yaml.SafeLoader
    pure = base is yaml.SafeLoader

    class Loader(base):
        """libyaml's (or PyYAML's) parser and composer; the value is built by ``build`` below, not PyYAML's
        constructor. Plain scalars resolve through a cache (their tag depends only on their text here: a safe loader
        has no path resolvers), which saves most of the regular-expression work on a big file."""

        def __init__(self, stream):
            base.__init__(self, stream)
            self.tag_cache = {}
            self.depth = 0

        def resolve(self, kind, value, implicit):
            if kind is ScalarNode and implicit[0]:
                tag = self.tag_cache.get(value)
                if tag is None:
                    tag = self.tag_cache[value] = base.resolve(self, kind, value, implicit)
                return tag
            return base.resolve(self, kind, value, implicit)

        def descend_resolver(self, current_node, current_index):
            pass        # no path resolvers: nothing to track

        def ascend_resolver(self):
            pass

        if pure:
            def compose_node(self, parent, index):
                # the pure-Python composer recurses once per level: stop at the limit, far below Python's own
                self.depth += 1
                try:
                    if self.depth > MAX_DEPTH:
                        raise YamlLimitError("nesting deeper than %d levels%s (the limit; a topology needs 6)"
                                             % (MAX_DEPTH, _where(self.peek_event())))
                    return base.compose_node(self, parent, index)
                finally:
                    self.depth -= 1

    return Loader


_LOADER = []


def loader_class():
    if not _LOADER:
        _LOADER.append(_loader_class())
    return _LOADER[0]


def build(loader, root):
    """The Python value of a composed node graph, built iteratively; every limit checked on the way."""
    from yaml.nodes import MappingNode, ScalarNode, SequenceNode
    if isinstance(root, ScalarNode):
        return _scalar(loader, root)
    done = {}           # id(collection node) -> (value, expanded node count)
    busy = set()        # ids of collection nodes being built (an alias to one of them is recursive)
    stack = [(root, 1, False)]
    while stack:
        node, depth, ready = stack.pop()
        key = id(node)
        if not ready:
            if key in done:
                continue
            if key in busy:
                raise YamlLimitError("a recursive alias%s: an anchor used inside itself" % _where(node))
            if depth > MAX_DEPTH:
                raise YamlLimitError("nesting deeper than %d levels%s (the limit; a topology needs 6)"
                                     % (MAX_DEPTH, _where(node)))
            if isinstance(node, MappingNode):
                if node.tag != MAP_TAG:
                    raise YamlLimitError("the tag %s%s is not allowed in a topology (plain mappings only)"
                                         % (node.tag, _where(node)))
                children = [n for pair in node.value for n in pair if not isinstance(n, ScalarNode)]
            elif isinstance(node, SequenceNode):
                if node.tag != SEQ_TAG:
                    raise YamlLimitError("the tag %s%s is not allowed in a topology (plain sequences only)"
                                         % (node.tag, _where(node)))
                children = [n for n in node.value if not isinstance(n, ScalarNode)]
            else:   # pragma: no cover - PyYAML has no other node kinds
                raise YamlLimitError("unexpected YAML node%s" % _where(node))
            busy.add(key)
            stack.append((node, depth, True))
            for child in reversed(children):
                stack.append((child, depth + 1, False))
            continue
        busy.discard(key)
        if isinstance(node, SequenceNode):
            value = []
            size = 1
            for child in node.value:
                if isinstance(child, ScalarNode):
                    value.append(child.value if child.tag == STR_TAG else _scalar(loader, child))
                    size += 1
                else:
                    v, n = done[id(child)]
                    value.append(v)
                    size += n
        else:
            value, size = _mapping(loader, node, done)
        if size > MAX_NODES:
            raise YamlLimitError("more than %d nodes once aliases and merges are expanded%s (the limit; a "
                                 "100,000-container topology has about 0.9 million)" % (MAX_NODES, _where(node)))
        done[key] = (value, size)
    return done[id(root)][0]


def _scalar(loader, node):
    return node.value if node.tag == STR_TAG else loader.construct_object(node)


def _mapping(loader, node, done):
    """A mapping's value and expanded size; keys given twice are refused, merged keys (``<<``) yield to keys given."""
    from yaml.nodes import MappingNode, ScalarNode, SequenceNode
    value = {}
    first = {}          # key -> its node, for the error message
    merged = []
    size = 1
    for key_node, value_node in node.value:
        if isinstance(value_node, ScalarNode):
            v = value_node.value if value_node.tag == STR_TAG else _scalar(loader, value_node)
            size += 2
        else:
            v, n = done[id(value_node)]
            size += n + 1
        if key_node.tag == MERGE_TAG:
            sources = value_node.value if isinstance(value_node, SequenceNode) else [value_node]
            for src in sources:
                if not isinstance(src, MappingNode):
                    raise YamlLimitError("a merge (<<)%s takes a mapping or a list of mappings" % _where(src))
                merged.append(done[id(src)][0])
            continue
        if isinstance(key_node, ScalarNode):
            k = key_node.value if key_node.tag == STR_TAG else _scalar(loader, key_node)
        else:
            raise YamlLimitError("a mapping key%s is a %s; keys are plain values (names)"
                                 % (_where(key_node), "mapping" if isinstance(key_node, MappingNode) else "list"))
        try:
            other = first.get(k)
        except TypeError:
            raise YamlLimitError("a mapping key%s is a %s; keys are plain values (names)"
                                 % (_where(key_node), type(k).__name__))
        if other is not None:
            raise YamlLimitError("found the key %s twice (first on line %d, again on line %d, column %d)"
                                 % (_short(k), other.start_mark.line + 1, key_node.start_mark.line + 1,
                                    key_node.start_mark.column + 1))
        first[k] = key_node
        value[k] = v
    for src in merged:      # the first merged mapping wins over later ones; keys given win over all
        for k, v in src.items():
            if k not in first:
                first[k] = node
                value[k] = v
    return value, size


def _short(value):
    import reprlib
    r = reprlib.Repr()
    r.maxstring = r.maxother = 60
    return r.repr(value)


def load_bytes(data, name="<topology>"):
    """The topology in ``data`` (bytes or str) as plain Python data; NetstitchError naming ``name`` if unreadable."""
    try:
        import yaml
    except ImportError:
        raise NetstitchError("the Python package PyYAML is needed to read topology file %s (pip install PyYAML)" % name)
    if len(data) > MAX_BYTES:
        raise NetstitchError("cannot read topology %s: it is larger than %d bytes (%d MiB), the limit"
                             % (name, MAX_BYTES, MAX_BYTES // 2 ** 20))
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError as e:
            raise NetstitchError("cannot read topology %s: not UTF-8 text (byte %d)" % (name, e.start))
    loader = loader_class()(data)
    collecting = gc.isenabled()
    gc.disable()        # millions of new objects, none of them garbage: collections would only rescan them (x3)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        return build(loader, node)
    except YamlLimitError as e:
        raise NetstitchError("cannot read topology %s: %s" % (name, e))
    except (yaml.YAMLError, ValueError, OverflowError) as e:
        raise NetstitchError("cannot read topology %s: %s" % (name, e))
    finally:
        loader.dispose()
        if collecting:
            gc.enable()


def load_path(path):
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_BYTES + 1)
    except OSError as e:
        raise NetstitchError("cannot read topology %s: %s" % (path, e.strerror or e))
    if len(data) > MAX_BYTES:
        raise NetstitchError("cannot read topology %s: it is larger than %d bytes (%d MiB), the limit"
                             % (path, MAX_BYTES, MAX_BYTES // 2 ** 20))
    return load_bytes(data, path)
