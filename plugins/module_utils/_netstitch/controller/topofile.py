"""Reading a topology file: YAML, strictly (a key given twice is an error, not a silent overwrite)."""

from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.errors import NetstitchError


def strict_loader():
    """A safe YAML loader that refuses a key given twice in one mapping (plain YAML keeps the last silently, so a
    second container of the same name would make the first one vanish, and apply would prune it)."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    def mapping(loader, node, deep=False):
        seen = {}
        for key_node, _value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue    # '<<': merged keys may be overridden
            key = loader.construct_object(key_node, deep=deep)
            try:
                first = seen.get(key)
            except TypeError:
                continue    # unhashable: the base constructor reports it
            if first is not None:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping", node.start_mark,
                    "found the key %r twice (first on line %d)" % (key, first.line + 1), key_node.start_mark)
            seen[key] = key_node.start_mark
        return yaml.SafeLoader.construct_mapping(loader, node, deep)

    Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, mapping)
    return Loader


def load_file(path):
    try:
        import yaml
    except ImportError:
        raise NetstitchError("the Python package PyYAML is needed to read topology file %s (pip install PyYAML)" % path)
    try:
        with open(path) as f:
            return yaml.load(f, Loader=strict_loader())
    except (OSError, ValueError, yaml.YAMLError) as e:    # ValueError: bytes that are not UTF-8
        raise NetstitchError("cannot read topology %s: %s" % (path, e))
