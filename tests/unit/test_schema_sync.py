"""The schema shipped to managed hosts (plugins/module_utils/_netstitch/controller/schema.py) is generated from
schemas/topology.schema.json, the one source of truth; this fails when the two differ or a property is undocumented."""

import json
import os
import subprocess
import sys

import pytest

from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.controller.schema import SCHEMA

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SRC = os.path.join(TOP, "schemas", "topology.schema.json")


def _load():
    with open(SRC) as f:
        return json.load(f)


def test_gen_schema_check_passes():
    r = subprocess.run([sys.executable, os.path.join(TOP, "scripts", "gen_schema.py"), "--check"],
                       capture_output=True, text=True, timeout=60, check=False)
    assert r.returncode == 0, "schema.py differs from schemas/topology.schema.json: %s" % r.stderr


def test_generated_module_equals_the_json_schema():
    assert SCHEMA == _load()


def _properties(node, path):
    """Yield (path, property schema) for every entry of every "properties" mapping in the schema."""
    if isinstance(node, dict):
        for key, sub in node.items():
            if key == "properties" and isinstance(sub, dict):
                for name, prop in sub.items():
                    yield "%s.%s" % (path, name), prop
                    yield from _properties(prop, "%s.%s" % (path, name))
            else:
                yield from _properties(sub, "%s/%s" % (path, key))
    elif isinstance(node, list):
        for i, sub in enumerate(node):
            yield from _properties(sub, "%s[%d]" % (path, i))


def test_every_property_has_a_description():
    props = list(_properties(_load(), "#"))
    assert len(props) > 30      # the walk found the schema's properties (it would pass vacuously otherwise)
    missing = [p for p, s in props if not (isinstance(s, dict) and str(s.get("description", "")).strip())]
    assert missing == [], "properties without a description: %s" % ", ".join(missing)


@pytest.mark.parametrize("module", ["schema.py", "hostspec_schema.py"])
def test_check_mode_detects_a_stale_schema_module(tmp_path, module):
    """gen_schema.py --check must fail when a generated schema module differs (run on a copy of the tree, never the
    real files)."""
    import shutil
    for sub in ("scripts", "schemas"):
        shutil.copytree(os.path.join(TOP, sub), str(tmp_path / sub))
    dst = tmp_path / "plugins" / "module_utils" / "_netstitch" / "controller"
    dst.mkdir(parents=True)
    texts = {}
    for name in ("schema.py", "hostspec_schema.py"):
        with open(os.path.join(TOP, "plugins", "module_utils", "_netstitch", "controller", name)) as f:
            texts[name] = f.read()
        (dst / name).write_text(texts[name])
    script = str(tmp_path / "scripts" / "gen_schema.py")
    assert subprocess.run([sys.executable, script, "--check"], capture_output=True, timeout=60, check=False).returncode == 0
    (dst / module).write_text(texts[module] + "# edited by hand\n")
    r = subprocess.run([sys.executable, script, "--check"], capture_output=True, text=True, timeout=60, check=False)
    assert r.returncode != 0 and "%s is out of date" % module in r.stderr
