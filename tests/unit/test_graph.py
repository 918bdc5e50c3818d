"""netstitch graph: the DOT of a topology has every host, network, container, interface, published port and link
(expected sets derived from the topology file, not from the output), Graphviz renders it to SVG and PNG with the
same nodes and edges, a probe report colours it, and bad input is an error message, never a traceback."""

import os
import re
import shutil
import struct
import subprocess
import xml.etree.ElementTree as ET

import pytest
import yaml

from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch import graph
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.controller import validate

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.join(TOP, "bin", "netstitch")
RICH = os.path.join(TOP, "tests", "unit", "rich_topology.yml")
DEMO = os.path.join(TOP, "playbooks", "topology.yml")
NEEDS_DOT = pytest.mark.skipif(shutil.which("dot") is None, reason="needs Graphviz's dot (Debian package graphviz)")


def raw(path):
    with open(path) as f:
        return yaml.safe_load(f)


def parse_dot(text):
    nodes = {m.group(1): m.group(2) for m in re.finditer(r'^\s*"([^"]+)" \[(.*)\];$', text, re.M)}
    edges = {}
    for m in re.finditer(r'^\s*"([^"]+)" -> "([^"]+)"(?: \[(.*)\])?;$', text, re.M):
        edges.setdefault((m.group(1), m.group(2)), []).append(m.group(3) or "")
    return nodes, edges


def expected(data):
    """Nodes and edges the picture must hold, from the topology as written."""
    nodes = {"host:%s" % h for h in data["hosts"]} | {"net:%s" % n for n in data["networks"]}
    nodes |= {"ct:%s" % c for c in data.get("containers", {})}
    edges = set()
    for c, cd in data.get("containers", {}).items():
        for itf in cd["interfaces"]:
            edges.add(("ct:%s" % c, "br:%s:%s" % (cd["host"], itf["network"])))
            nodes.add("br:%s:%s" % (cd["host"], itf["network"]))
            edges.add(("br:%s:%s" % (cd["host"], itf["network"]), "net:%s" % itf["network"]))
        if cd.get("publish"):
            edges.add(("host:%s" % cd["host"], "ct:%s" % c))
    for ln in data.get("links", []):
        edges.add(("ct:%s" % ln["client"], "ct:%s" % ln["server"] if ln.get("server") else "net:%s" % ln["network"]))
    return nodes, edges


@pytest.mark.parametrize("path", [RICH, DEMO])
def test_dot_has_every_object(path):
    text = graph.to_dot(validate.load(raw(path)))
    nodes, edges = parse_dot(text)
    want_nodes, want_edges = expected(raw(path))
    assert want_nodes <= set(nodes), want_nodes - set(nodes)
    assert want_edges <= set(edges), want_edges - set(edges)
    # nothing drawn that the topology does not have
    extra = {n for n in nodes if not n.startswith("br:") and n != "underlay"} - want_nodes
    assert not extra, extra


def test_labels_carry_overlay_subnet_ports_and_links():
    nodes, edges = parse_dot(graph.to_dot(validate.load(raw(RICH))))
    assert "vxlan VNI 7" in nodes["net:ov"] and "10.30.0.0/24" in nodes["net:ov"]
    assert "routed (host-gw)" in nodes["net:rt"]
    assert "host-local" in nodes["net:front"] and "internal, isolated" in nodes["net:back"]
    assert "10.30.0.16/28" in nodes["br:h1:ov"]            # the explicit slice of h1
    pub = " ".join(edges[("host:h1", "ct:web")])
    assert "8080->80/tcp" in pub and "9000-9001->9000-9001/tcp" in pub
    link = edges[("ct:web", "ct:db")]
    assert len(link) == 1 and "database: tcp 5432" in link[0]
    assert "eth0 10.10.0.10" in " ".join(edges[("ct:web", "br:h1:front")])


def test_report_colours_reached_blocked_mismatched():
    report = {"h1": {"outcomes": [
        {"from_container": "web", "network": "front", "kind": "gateway", "expect": True, "reached": True, "ok": True},
        {"from_container": "web", "network": "back", "kind": "isolated", "expect": False, "reached": False,
         "ok": True}]},
        "h2": {"outcomes": [
            {"from_container": "db", "network": "back", "kind": "link", "expect": True, "reached": False,
             "ok": False},
            {"from_container": "ghost", "network": "back", "expect": True, "reached": True, "ok": True}]}}
    nodes, edges = parse_dot(graph.to_dot(validate.load(raw(RICH)), report))
    assert graph.GREEN in edges[("ct:web", "br:h1:front")][0]
    assert graph.GREY in edges[("ct:web", "br:h1:back")][0]
    assert graph.RED in edges[("ct:db", "br:h2:back")][0]
    assert graph.RED in edges[("ct:db", "net:back")][0]          # the link db -> network back
    assert graph.RED in nodes["ct:db"] and graph.RED not in nodes["ct:web"]
    plain_edges = parse_dot(graph.to_dot(validate.load(raw(RICH))))[1]
    assert graph.GREEN not in " ".join(plain_edges[("ct:web", "br:h1:front")])


def run(*args):
    return subprocess.run([BIN] + list(args), capture_output=True, timeout=120, check=False)


@NEEDS_DOT
def test_svg_and_png_render_with_the_same_nodes_and_edges(tmp_path):
    svg, png = str(tmp_path / "t.svg"), str(tmp_path / "t.png")
    for out in (svg, png):
        r = run("graph", RICH, "-o", out)
        assert r.returncode == 0, r.stderr
    ns = {"s": "http://www.w3.org/2000/svg"}
    root = ET.parse(svg).getroot()
    titles = {g.get("class"): set() for g in root.iter("{http://www.w3.org/2000/svg}g")}
    for g in root.iter("{http://www.w3.org/2000/svg}g"):
        t = g.find("s:title", ns)
        if t is not None and g.get("class") in ("node", "edge"):
            titles[g.get("class")].add(t.text)
    want_nodes, want_edges = expected(raw(RICH))
    assert want_nodes <= titles["node"]
    assert {"%s->%s" % e for e in want_edges} <= titles["edge"]
    with open(png, "rb") as f:
        head = f.read(24)
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", head[16:24])
    assert width > 300 and height > 200


def test_cli_dot_to_stdout_and_errors(tmp_path):
    r = run("graph", RICH)
    assert r.returncode == 0 and r.stdout.startswith(b"digraph netstitch {")
    bad = tmp_path / "r.json"
    bad.write_text("{not json")
    for args in (["graph", RICH, "--report", str(bad)], ["graph", RICH, "--report", str(tmp_path / "none")],
                 ["graph", RICH, "-o", str(tmp_path / "x.gif")]):
        r = run(*args)
        assert r.returncode == 1 and b"graph:" in r.stderr and b"Traceback" not in r.stderr, r.stderr


def test_cli_without_graphviz_says_so(tmp_path):
    env = dict(os.environ, PATH="/nonexistent")
    exe = os.path.join(TOP, ".venv", "bin", "python")
    if not os.path.exists(exe):
        pytest.skip("no .venv")
    r = subprocess.run([exe, BIN, "graph", RICH, "-o", str(tmp_path / "x.svg")], capture_output=True, env=env,
                       timeout=60, check=False)
    assert r.returncode == 1 and b"Graphviz" in r.stderr and b"Traceback" not in r.stderr, r.stderr


def test_docs_picture_is_current():
    """docs/images/demo-topology.dot is what `netstitch graph playbooks/topology.yml` draws today (the SVG and PNG
    next to it are rendered from it by scripts/render_docs.sh)."""
    with open(os.path.join(TOP, "docs", "images", "demo-topology.dot")) as f:
        committed = f.read()
    assert committed == graph.to_dot(validate.load(raw(DEMO)), title=DEMO_TITLE), \
        "run: bash scripts/render_docs.sh"


DEMO_TITLE = "netstitch demo: playbooks/topology.yml (3 namespace hosts)"


def test_sdn_ve_networks_say_what_they_are():
    """Issue 16: a macvlan network is drawn on its parent interface (no bridge), a routed gateway and attached
    interfaces are named on their network."""
    topo = validate.load({
        "version": 1, "hosts": {"h1": {"underlay": "192.0.2.1/24"}},
        "networks": {"phys": {"subnet": "192.0.2.0/24",
                              "macvlan": {"parent": "eth0", "ranges": {"h1": "192.0.2.96/28"}}},
                     "pub": {"subnet": "10.62.0.0/24", "inbound": {"allow": [{"ports": [80]}]},
                             "attach": [{"host": "h1", "interface": "tap-vm1"}]}},
        "containers": {"m": {"host": "h1", "interfaces": [{"network": "phys"}, {"network": "pub"}]}}})
    dot = graph.to_dot(topo)
    assert "eth0 (macvlan parent)\\n192.0.2.96/28" in dot and "nsbr-phys" not in dot
    assert "macvlan on eth0 (physical segment)" in dot
    assert "routed gateway (1 allowed)" in dot and "attached: tap-vm1@h1" in dot
