"""netstitch.fabric.boot's installer (boot.install) against a scratch root: what it writes, that a second run does
nothing, check mode writes nothing, the watcher unit comes and goes with Docker in the spec, state=absent removes it
all; and the units' ordering. systemctl is replaced by a recorder (no systemd here)."""

import os

import pytest

from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.host import boot


@pytest.fixture
def root(tmp_path, monkeypatch):
    monkeypatch.setattr(boot, "LIB_DIR", str(tmp_path / "lib"))
    monkeypatch.setattr(boot, "LAUNCHER", str(tmp_path / "sbin" / "netstitch"))
    monkeypatch.setattr(boot, "UNIT_DIR", str(tmp_path / "units"))
    calls = []
    enabled = set()

    def systemctl(*args):
        calls.append(args)
        if args[0] == "is-enabled":
            return (0 if args[1] in enabled else 1), ""
        if args[0] == "enable":
            enabled.add(args[-1])
        if args[0] == "disable":
            enabled.discard(args[-1])
        return 0, ""
    monkeypatch.setattr(boot, "_systemctl", systemctl)
    return tmp_path, calls


NO_DOCKER = {"host": "h1", "networks": [{"name": "n"}], "containers": [{"name": "c", "kind": "netns"}]}
DOCKER = {"host": "h1", "networks": [{"name": "n"}], "containers": [{"name": "d", "kind": "docker"}]}


def test_install_is_idempotent_and_check_mode_writes_nothing(root):
    tmp, calls = root
    res = boot.install("h1", "/var/lib/netstitch", spec=NO_DOCKER, python="/usr/bin/python3", check_mode=True,
                       systemd=True)
    assert res["changed"] and not os.path.exists(boot.LAUNCHER) and not calls
    res = boot.install("h1", "/var/lib/netstitch", spec=NO_DOCKER, python="/usr/bin/python3", systemd=True)
    assert res["changed"] and res["units"] == [boot.BOOT_UNIT]
    assert "enable %s" % boot.BOOT_UNIT in res["actions"]
    assert os.path.exists(os.path.join(boot.LIB_DIR, boot.PKG, "engine.py"))
    assert os.path.exists(os.path.join(boot.LIB_DIR, boot.PKG, "drivers", "netlink.py"))
    with open(boot.LAUNCHER) as f:
        assert f.readline() == "#!/usr/bin/python3\n"
    assert os.stat(boot.LAUNCHER).st_mode & 0o777 == 0o755
    again = boot.install("h1", "/var/lib/netstitch", spec=NO_DOCKER, python="/usr/bin/python3", systemd=True)
    assert again["changed"] is False and again["actions"] == [], again


def test_watcher_unit_follows_docker_in_the_spec_and_absent_removes_everything(root):
    boot.install("h1", "/var/lib/netstitch", spec=NO_DOCKER, systemd=True)
    res = boot.install("h1", "/var/lib/netstitch", spec=DOCKER, systemd=True)
    assert res["units"] == [boot.BOOT_UNIT, boot.WATCH_UNIT]
    assert "enable %s and start it" % boot.WATCH_UNIT in res["actions"]
    res = boot.install("h1", "/var/lib/netstitch", spec=NO_DOCKER, systemd=True)
    assert "disable and remove %s" % boot.WATCH_UNIT in res["actions"]
    assert not os.path.exists(os.path.join(boot.UNIT_DIR, boot.WATCH_UNIT))
    res = boot.install("h1", "/var/lib/netstitch", state="absent", systemd=True)
    assert res["changed"] and res["boot_command"] is None
    assert not os.listdir(boot.UNIT_DIR) and not os.path.exists(boot.LAUNCHER)
    left = [f for _r, _d, fs in os.walk(boot.LIB_DIR) for f in fs]
    assert left == []
    assert boot.install("h1", "/var/lib/netstitch", state="absent", systemd=True)["changed"] is False


def test_without_systemd_no_unit_and_the_boot_command(root):
    res = boot.install("h1", "/srv/ns", spec=DOCKER, systemd=False)
    assert res["units"] == [] and not os.path.exists(boot.UNIT_DIR)
    assert res["boot_command"] == "%s boot --host h1 --state-dir /srv/ns" % boot.LAUNCHER


def test_unit_ordering():
    unit = boot.boot_unit("h1", "/var/lib/netstitch").decode()
    assert "After=network-online.target" in unit and "Wants=network-online.target" in unit
    assert "Before=docker.service %s" % boot.WATCH_UNIT in unit
    assert "--without-docker" in unit and "Type=oneshot" in unit
    watch = boot.watch_unit("h1", "/var/lib/netstitch").decode()
    assert "After=docker.service %s" % boot.BOOT_UNIT in watch


def test_restore_without_a_spec_does_nothing(tmp_path):
    code, record = boot.restore("h1", str(tmp_path))
    assert code == 0 and record["event"] == "skip" and record["host"] == "h1", record
    assert "nothing applied on this host yet" in boot.text(record)
    assert not os.listdir(str(tmp_path))        # nothing written either


def test_the_launcher_runs_the_command_line(root):
    boot.install("h1", "/var/lib/netstitch", spec=NO_DOCKER, python="/usr/bin/python3", systemd=True)
    with open(boot.LAUNCHER) as f:
        text = f.read()
    assert "_netstitch.cli import main" in text and repr(boot.LIB_DIR) in text
    assert os.path.exists(os.path.join(boot.LIB_DIR, boot.PKG, "cli.py"))
    assert os.path.exists(os.path.join(boot.LIB_DIR, boot.PKG, "host", "boot.py"))
    unit = boot.boot_unit("h1", "/var/lib/netstitch").decode()
    assert "ExecStart=%s boot --host h1 --state-dir /var/lib/netstitch --without-docker --json" % boot.LAUNCHER in unit


def test_a_run_without_docker_counts_docker_containers_as_stopped_and_asks_no_engine():
    from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.host.machine import without_docker

    class NoEngine(object):
        docker = None

    spec = {"host": "h1", "networks": [], "containers": [
        {"name": "d", "kind": "docker", "docker": "d", "interfaces": []},
        {"name": "c", "kind": "netns", "netns": "c", "interfaces": []}]}
    host = NoEngine()
    run, warnings = without_docker(host, spec)
    assert warnings == [] and host.docker is None
    assert run["containers"][0]["absent"] is True and run["containers"][0]["netns"] is None
    assert run["containers"][1] == spec["containers"][1]
    assert "absent" not in spec["containers"][0]        # the spec itself (recorded whole) is left as it was
