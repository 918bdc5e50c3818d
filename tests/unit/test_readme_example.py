"""The README's tour of the topology format is a valid topology: a newcomer can copy it."""

import os
import re

from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.controller import hostspec as comp
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.controller import validate
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.controller.topofile import load_file

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_the_readme_tour_validates_and_compiles(tmp_path):
    with open(os.path.join(TOP, "README.md")) as f:
        text = f.read()
    m = re.search(r"## A tour of the topology\n\n```yaml\n(.*?)```", text, re.S)
    assert m, "README.md has no tour of the topology"
    # read as the tool reads a topology file (its strict loader: duplicate keys are errors, for one)
    path = tmp_path / "tour.yml"
    path.write_text(m.group(1))
    topo = validate.load(load_file(str(path)))
    specs = comp.host_specs(topo)
    assert set(specs) == {"fab-h1", "fab-h2"}
    web = [c for c in specs["fab-h1"]["containers"] if c["name"] == "web"][0]
    assert [i["name"] for i in web["interfaces"]] == ["eth0", "eth1"]
    assert len(specs["fab-h1"]["publish"]) == 12          # 8080, the range 9000-9009 and 443 on an automatic port
    assert [p["host_port"] for p in specs["fab-h1"]["publish"] if p["container_port"] == 443] == [None]
    assert {ln["network"] for ln in specs["fab-h1"]["links"]} == {"back"}
