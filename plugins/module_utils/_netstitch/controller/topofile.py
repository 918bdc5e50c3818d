"""Reading a topology file: YAML, strictly (a key given twice is an error, not a silent overwrite) and within limits
on size, depth and alias expansion (see safeyaml)."""

from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.controller import safeyaml


def load_file(path):
    """The topology in the YAML file ``path`` as plain data; NetstitchError (one readable message) if it cannot be
    read, is not YAML, gives a key twice, or breaks a limit."""
    return safeyaml.load_path(path)


def load_text(text, name="<topology>"):
    """The topology in ``text`` (bytes or str) as plain data, read like a file."""
    return safeyaml.load_bytes(text, name)
