"""The docsite and the role's argument_specs follow the JSON Schema and the examples: scripts/gen_docs.py --check
passes, the reference lists every field with its type, default and an example that the field's schema accepts, every
scenario has a guide listed in extra-docs.yml, and antsibull-docs finds the collection's docs clean."""

import copy
import json
import os
import re
import shutil
import subprocess
import sys

import jsonschema
import pytest
import yaml

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(TOP, "scripts"))
import gen_docs  # noqa: E402 pylint: disable=wrong-import-position

REF = os.path.join(TOP, "docs", "docsite", "rst", "topology_reference.rst")


def schema():
    with open(os.path.join(TOP, "schemas", "topology.schema.json")) as f:
        return json.load(f)


def every_field(s):
    for key, title, _desc, _intro, props in gen_docs.fields(s):
        for name, prop, _req in props:
            yield ("" if key == "" else title + ".") + name, prop


def test_generated_files_are_current():
    r = subprocess.run([sys.executable, os.path.join(TOP, "scripts", "gen_docs.py"), "--check"], capture_output=True,
                       text=True, timeout=60, check=False)
    assert r.returncode == 0, r.stderr


def test_check_fails_on_a_stale_file(tmp_path):
    for d in ("scripts", "schemas", "examples", "docs/docsite", "roles/fabric/meta"):
        shutil.copytree(os.path.join(TOP, d), str(tmp_path / d))
    ref = tmp_path / "docs" / "docsite" / "rst" / "topology_reference.rst"
    ref.write_text(ref.read_text().replace("``hosts.<host>.underlay``", "``hosts.<host>.underlai``"))
    r = subprocess.run([sys.executable, str(tmp_path / "scripts" / "gen_docs.py"), "--check"], capture_output=True,
                       text=True, timeout=60, check=False)
    assert r.returncode != 0 and "topology_reference.rst" in r.stderr


def test_reference_has_every_field_with_type_default_and_example():
    with open(REF) as f:
        text = f.read()
    s = schema()
    paths = list(every_field(s))
    assert len(paths) >= 45
    for path, prop in paths:
        m = re.search(r"^``%s``\n((?:   .*\n|\n)+?)(?=^``|^\S|\Z)" % re.escape(path), text, re.M)
        assert m, "the reference lacks %s" % path
        block = m.group(1)
        assert ":Type: " in block and ":Required: " in block and ":Default: " in block, path
        assert ":Example: " in block, "%s has no example" % path
        if re.search(r"\(default|default:|by default", prop.get("description", ""), re.I):
            assert ":Default: none" not in block, "%s: its default is in the description but not found" % path
        assert prop["description"] in block


def test_every_example_is_valid_for_its_field():
    s = schema()
    for path, prop in every_field(s):
        assert prop.get("examples"), "%s has no example in the schema" % path
        sub = dict(copy.deepcopy(prop), **{"$defs": s["$defs"]})
        for ex in prop["examples"]:
            jsonschema.validate(ex, sub, cls=jsonschema.Draft202012Validator)


def test_defaults_are_read_from_the_descriptions():
    assert gen_docs.default_of({"description": "MTU of the underlay path (default 1500)."}) == "1500"
    assert gen_docs.default_of({"description": "Gateway (default: the subnet's first address)."}) == \
        "the subnet's first address"
    assert gen_docs.default_of({"description": "tcp (default), udp or any."}) == "tcp"
    assert gen_docs.default_of({"description": "Port (68 to 65535; default 1500)."}) == "1500"
    assert gen_docs.default_of({"description": "Name (default eth<index> for netns (see below); x)."}) == \
        "eth<index> for netns (see below)"
    assert gen_docs.default_of({"description": "A range. Default: the upper half; rest."}) == "the upper half"
    assert gen_docs.default_of({"description": "Route the default traffic here."}) is None


def test_every_scenario_has_a_listed_guide():
    with open(os.path.join(TOP, "docs", "docsite", "extra-docs.yml")) as f:
        listed = {d for sec in yaml.safe_load(f)["sections"] for d in sec["toctree"]}
    scenarios = [d for d in os.listdir(os.path.join(TOP, "examples"))
                 if os.path.isfile(os.path.join(TOP, "examples", d, "topology.yml"))]
    assert len(scenarios) >= 8
    for d in scenarios:
        assert "scenario_" + d.replace("-", "_") in listed
    for name in listed:
        assert os.path.exists(os.path.join(TOP, "docs", "docsite", "rst", name + ".rst"))


def test_role_argument_specs_document_the_top_level_fields():
    with open(os.path.join(TOP, "roles", "fabric", "meta", "argument_specs.yml")) as f:
        spec = yaml.safe_load(f)
    opts = spec["argument_specs"]["main"]["options"]["netstitch_topology"]["options"]
    assert list(opts) == list(schema()["properties"])
    for name, o in opts.items():
        assert schema()["properties"][name]["description"].split(".")[0] in " ".join(o["description"])


@pytest.mark.skipif(shutil.which("antsibull-docs", path=os.path.dirname(sys.executable)) is None,
                    reason="antsibull-docs is not installed (scripts/setup.sh --dev)")
def test_antsibull_docs_lint():
    env = dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""),
               ANSIBLE_COLLECTIONS_PATH=os.path.join(TOP, ".build", "collections"))
    r = subprocess.run(["antsibull-docs", "lint-collection-docs", "--plugin-docs", TOP], capture_output=True,
                       text=True, env=env, timeout=300, check=False)
    assert r.returncode == 0 and not r.stdout.strip(), r.stdout + r.stderr
