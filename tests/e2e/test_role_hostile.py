"""The role (through ansible-playbook) on hostile topologies: the play stops at validation with the problems, each
with its path, or the limit that was broken; never a traceback or "MODULE FAILURE" (a crash of the module), and no host is touched (the
hosts here are fake ones reached by the local connection: nothing after validation may run)."""

import os
import subprocess
import sys

import pytest

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VENV_BIN = os.path.join(TOP, ".venv", "bin")

pytestmark = pytest.mark.ansible
if not os.path.exists(os.path.join(VENV_BIN, "ansible-playbook")):
    pytestmark = [pytest.mark.ansible, pytest.mark.skip(reason="no ansible-playbook in .venv")]

HEAD = "hosts: {hx1: {}}\nnetworks: {n: {subnet: 10.1.0.0/24}}\n"
BOMB = HEAD + 'l0: &l0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n' + "".join(
    "l%d: &l%d [%s]\n" % (i, i, ",".join(["*l%d" % (i - 1)] * 9)) for i in range(1, 9)) + \
    "containers: {c: {host: hx1, interfaces: [{network: n, ip: *l8}]}}\n"
FLOATS = ("hosts: {hx1: {underlay: 192.0.2.1/24}, hx2: {underlay: 192.0.2.2/24}}\n"
          "networks: {ov: {subnet: 10.1.0.0/24, overlay: {type: vxlan, vni: 100.0, port: 4789.0}}}\n"
          "containers: {\"c\\e[31m\\nx\": {host: hx1, interfaces: [{network: ov, name: all}]}}\n")


@pytest.mark.parametrize("text,wanted", [
    (BOMB, ["more than 5000000 nodes once aliases and merges are expanded"]),
    (FLOATS, ["networks.ov.overlay.vni: must be an integer, got 100.0",
              "networks.ov.overlay.port: must be an integer, got 4789.0",
              "'all' is not a valid interface name", "containers.c\\x1b[31m\\x0ax.interfaces[0].name"]),
], ids=["alias-bomb", "floats-and-names"])
def test_the_role_stops_at_validation_with_the_problems(tmp_path, text, wanted):
    topo = tmp_path / "topology.yml"
    topo.write_text(text)
    (tmp_path / "inventory.ini").write_text(
        "hx1 ansible_connection=local ansible_python_interpreter=%s\n" % sys.executable)
    (tmp_path / "play.yml").write_text("- hosts: all\n  gather_facts: false\n  roles: [netstitch.fabric.fabric]\n")
    env = dict(os.environ)
    env.update({"PATH": VENV_BIN + os.pathsep + env.get("PATH", ""),
                "ANSIBLE_COLLECTIONS_PATH": os.path.join(TOP, ".build", "collections"),
                "ANSIBLE_CONFIG": os.path.join(TOP, "ansible.cfg"), "ANSIBLE_NOCOLOR": "1",
                "ANSIBLE_LOCAL_TEMP": str(tmp_path / "tmp")})
    r = subprocess.run([os.path.join(VENV_BIN, "ansible-playbook"), "-i", str(tmp_path / "inventory.ini"),
                        str(tmp_path / "play.yml"), "-e", "netstitch_topology_file=%s" % topo,
                        "-e", "netstitch_state_dir=%s" % (tmp_path / "state")],
                       capture_output=True, text=True, timeout=240, env=env, cwd=str(tmp_path), check=False)
    out = r.stdout + r.stderr
    assert r.returncode != 0, out
    # "Module failed: <message>" is how ansible-core 2.19 shows a module's own failure; MODULE FAILURE is a crash
    assert "Traceback" not in out and "MODULE FAILURE" not in out, out
    for w in wanted:
        assert w in out, (w, out[-4000:])
    assert "\x1b[31m" not in out
    assert "Apply this host's part" not in out or "skipping" in out.split("Apply this host's part")[1][:200]
    assert not (tmp_path / "state").exists()
