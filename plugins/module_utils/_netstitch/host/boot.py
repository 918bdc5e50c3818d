"""Surviving a reboot: re-apply the host's last applied spec at boot, and what puts that in place.

A reboot loses every bridge, veth, namespace, nftables table and sysctl netstitch made; its state directory (leases,
the last spec and the peers' facts it was applied with, tinc keys) stays. ``restore`` applies that spec again, as the
last run did, without the controller: addresses come back from the leases, namespaces of kind netns are made again.

    netstitch boot --host H [--state-dir D] [--without-docker] [--json]      (cli.py, commands.cmd_boot)

``install`` (module netstitch.fabric.boot) puts on a host: this library under /usr/local/lib/netstitch, a launcher
/usr/local/sbin/netstitch (the command line: boot, watch, status, ...), and on hosts with systemd the units
  netstitch-boot.service   oneshot at boot: After=network-online.target (the underlay is up: VXLAN and routed overlays
                           need its address and routes), Before=docker.service (Docker finds its bridges made, and
                           adopts nothing), runs `boot --without-docker --json` (Docker is not up yet; its containers are
                           absent, their leases kept). tinc units (netstitch-tinc-*.service) are ordered only after
                           network-online.target, like this one: a tincd that systemd started first is found running
                           and its TAP enslaved; one not started yet is started by the boot run.
  netstitch-watch.service  only when the spec names Docker containers or networks: After=docker.service; applies the
                           whole spec when it starts and whenever a named container starts.
The Docker plugin's units (role option netstitch_docker_plugin) are ordered before docker.service as well; Docker
calls the plugin only once it runs, which is after this oneshot finished, so the bridges are there by then.
A teardown (role: netstitch_state=absent or netstitch_unknown_host=purge) removes all of it (install, state=absent).
"""

import os
import shutil
import subprocess
import sys
import time

from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.errors import NetstitchError
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.host.reconcile import apply
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.host.statefile import DEFAULT_STATE_DIR, HostState

LIB_DIR = "/usr/local/lib/netstitch"
LAUNCHER = "/usr/local/sbin/netstitch"
UNIT_DIR = "/etc/systemd/system"
BOOT_UNIT = "netstitch-boot.service"
WATCH_UNIT = "netstitch-watch.service"
PKG = "ansible_collections/netstitch/fabric/plugins/module_utils/_netstitch"


def restore(host, state_dir=DEFAULT_STATE_DIR, docker=True):
    """Apply the last applied spec of ``host`` again, from its state directory alone. Returns (exit code, record):
    the record says what happened (event skip, restored or error) and how long it took."""
    t0 = time.monotonic()

    def done(code, **kw):
        kw.update(host=host, seconds=round(time.monotonic() - t0, 3))
        return code, kw

    hs = HostState(state_dir, host)
    if hs.spec is None:
        return done(0, event="skip", reason="nothing applied on this host yet (no spec in %s)" % hs.path)
    try:
        res = apply(hs.spec, state_dir=state_dir, peers=hs.peers, probe_peers=False, docker=docker)
    except NetstitchError as e:
        return done(1, event="error", error=str(e))
    return done(0, event="restored", changed=res["changed"], actions=len(res["actions"]), warnings=res["warnings"])


def text(record):
    """One readable line of a restore record (the command line's default output)."""
    head = "host %s: " % record["host"]
    if record["event"] == "skip":
        return head + record["reason"]
    if record["event"] == "error":
        return head + "boot failed after %.2fs: %s" % (record["seconds"], record["error"])
    return head + ("restored the last applied spec: %d change%s in %.2fs" % (
        record["actions"], "" if record["actions"] == 1 else "s", record["seconds"]) if record["changed"] else
        "nothing to restore (the host matches its last applied spec)") + "".join(
        "\nwarning: %s" % w for w in record["warnings"])


# -- install -------------------------------------------------------------------------------------------------------------
def library_files():
    """{path relative to LIB_DIR: bytes} of this library as this process has it: from Ansible's module zip, or from a
    directory (a checkout). Only Python files."""
    import ansible_collections.netstitch.fabric.plugins.module_utils._netstitch as pkg
    base = list(pkg.__path__)[0]
    files = {}
    marker = ".zip" + os.sep
    if marker in base:
        import zipfile
        zpath, inner = base.split(marker, 1)
        with zipfile.ZipFile(zpath + ".zip") as z:
            for name in z.namelist():
                if name.startswith(inner.rstrip("/") + "/") and name.endswith(".py"):
                    files[PKG + name[len(inner.rstrip("/")):]] = z.read(name)
        return files
    for root, dirs, names in os.walk(base):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        for n in names:
            if n.endswith(".py"):
                path = os.path.join(root, n)
                with open(path, "rb") as f:
                    files[PKG + "/" + os.path.relpath(path, base).replace(os.sep, "/")] = f.read()
    return files


def launcher(python):
    """The command line (cli.py: boot, watch, status, apply, ...) with the library installed here."""
    return ("#!%s\n# netstitch's command line on this host, installed by the netstitch.fabric role.\nimport sys\n\n"
            "sys.path.insert(0, %r)\n"
            "from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.cli import main\n\n"
            "sys.exit(main())\n" % (python, LIB_DIR)).encode()


def boot_unit(host, state_dir):
    return ("""# Installed by the netstitch.fabric role: restores this host's container networks at boot.
[Unit]
Description=netstitch: restore the container networks of %(host)s (its last applied spec)
Wants=network-online.target
After=network-online.target
Before=docker.service %(watch)s

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=%(launcher)s boot --host %(host)s --state-dir %(state)s --without-docker --json
Restart=on-failure
RestartSec=3

[Install]
WantedBy=multi-user.target
""" % {"host": host, "state": state_dir, "launcher": LAUNCHER, "watch": WATCH_UNIT}).encode()


def watch_unit(host, state_dir):
    return ("""# Installed by the netstitch.fabric role: re-attaches this host's Docker containers when they start.
[Unit]
Description=netstitch watch: keep the Docker containers of %(host)s attached
Wants=docker.service
After=docker.service %(boot)s

[Service]
Type=simple
ExecStart=%(launcher)s watch --host %(host)s --state-dir %(state)s
Restart=always
RestartSec=2

[Install]
WantedBy=multi-user.target
""" % {"host": host, "state": state_dir, "launcher": LAUNCHER, "boot": BOOT_UNIT}).encode()


def uses_docker(spec):
    spec = spec or {}
    return any(c.get("kind") == "docker" for c in spec.get("containers", [])) or \
        any(n.get("docker") for n in spec.get("networks", []))


def has_systemd():
    """systemd runs this host, and this process is in its root network namespace (not a namespace "host" of a lab)."""
    if not os.path.isdir("/run/systemd/system") or not shutil.which("systemctl"):
        return False
    try:
        return os.stat("/proc/1/ns/net").st_ino == os.stat("/proc/self/ns/net").st_ino
    except OSError:
        return False


def _read(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return None


def _write(path, data, mode):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.chmod(tmp, mode)
    os.rename(tmp, path)


def _systemctl(*args):
    r = subprocess.run(("systemctl",) + args, stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False)
    return r.returncode, (r.stdout + r.stderr).strip()


def install(host, state_dir, spec=None, python=None, state="present", check_mode=False, systemd=None):
    """Put the boot pieces on this host (or take them away with state=absent). Returns a result dict: changed,
    actions (what was or would be done), units, boot_command (what to run at boot where there is no systemd)."""
    python = python or sys.executable
    systemd = has_systemd() if systemd is None else systemd
    want = {}
    if state == "present":
        for rel, data in library_files().items():
            want[os.path.join(LIB_DIR, rel)] = (data, 0o644)
        want[LAUNCHER] = (launcher(python), 0o755)
        if systemd:
            want[os.path.join(UNIT_DIR, BOOT_UNIT)] = (boot_unit(host, state_dir), 0o644)
            if uses_docker(spec):
                want[os.path.join(UNIT_DIR, WATCH_UNIT)] = (watch_unit(host, state_dir), 0o644)
    units = [os.path.basename(p) for p in want if p.startswith(UNIT_DIR + "/")]
    actions, errors = [], []
    # files: write what differs, remove ours that are no longer wanted
    have_lib = []
    for root, _dirs, names in os.walk(LIB_DIR):
        have_lib += [os.path.join(root, n) for n in names if n.endswith(".py")]
    stale = [p for p in have_lib if p not in want]
    stale += [p for p in (LAUNCHER,) if state != "present" and os.path.exists(p)]
    stale_units = [u for u in (BOOT_UNIT, WATCH_UNIT)
                   if u not in units and os.path.exists(os.path.join(UNIT_DIR, u))]
    written = sorted(p for p, (data, mode) in want.items()
                     if _read(p) != data or (os.stat(p).st_mode & 0o777) != mode)
    lib_changed = any(p.startswith(LIB_DIR) or p == LAUNCHER for p in written + stale)
    for u in stale_units:
        actions.append("disable and remove %s" % u)
    for p in written:
        actions.append("write %s" % p)
    for p in stale:
        actions.append("remove %s" % p)
    enable = []
    if systemd:
        for u in units:
            code, _out = _systemctl("is-enabled", u) if not check_mode or os.path.exists(os.path.join(UNIT_DIR, u)) \
                else (1, "")
            if code != 0:
                enable.append(u)
                actions.append("enable %s" % u + (" and start it" if u == WATCH_UNIT else ""))
        if WATCH_UNIT in units and WATCH_UNIT not in enable and lib_changed:
            actions.append("restart %s (new code)" % WATCH_UNIT)
    if not check_mode and actions:
        for u in stale_units:
            _systemctl("disable", "--now", u)
            os.unlink(os.path.join(UNIT_DIR, u))
        for p in written:
            _write(p, *want[p])
        for p in stale:
            os.unlink(p)
        if systemd and (stale_units or any(p.startswith(UNIT_DIR + "/") for p in written)):
            _systemctl("daemon-reload")
        for u in enable:
            code, text = _systemctl("enable", *(["--now"] if u == WATCH_UNIT else []), u)
            if code != 0:
                errors.append("systemctl enable %s: %s" % (u, text[-300:]))
        if WATCH_UNIT in units and WATCH_UNIT not in enable and lib_changed:
            _systemctl("try-restart", WATCH_UNIT)
    boot_command = "%s boot --host %s --state-dir %s" % (LAUNCHER, host, state_dir)
    return {"changed": bool(actions), "actions": actions, "units": sorted(units), "systemd": systemd,
            "boot_command": boot_command if state == "present" else None, "errors": errors}
