"""The container-host lab: separate Debian hosts with systemd as PID 1, each a Docker container with its own
filesystem, /etc, state directory, nftables and sysctls (the namespace lab of lab.py shares one of each).

    chosts.py image                                   build the host image once per machine (cached by recipe hash)
    chosts.py up    [--name ch] [--hosts 3] [--dir D] start the hosts, wire the underlay, write an inventory
    chosts.py wire  [--name ch] [--dir D] [--hosts-list H1,H2]
                                                      wire the underlay (again, after `docker restart` of a host; or
                                                      for hosts another tool started, as Molecule's docker driver)
    chosts.py down  [--name ch] [--dir D]             remove the hosts, the switch and the outside namespace
    chosts.py collections [--dest DIR]                community.docker + ansible.posix from PyPI's `ansible` wheel

The image: Debian bookworm from the archive apt uses on this machine (mmdebstrap, then `docker import`), with systemd,
python3 and what managed hosts need (iproute2, nftables + its Python binding, tinc, python3-yaml, ...). Its tag is
netstitch-lab/host:<hash of the recipe and the apt sources>, so it is built once per machine; a `docker save` of it
under $NETSTITCH_HOST_IMAGE_CACHE (<dir>/<tag hash>.tar) is loaded instead of building, and written after a build.

Underlay (documentation ranges, inside lab namespaces only; no Docker network is ever made): the hosts run with
`--network none`; each gets eth0 192.0.2.N/24 from a veth whose other end is on the bridge of the switch namespace
<name>-sw (built by lab.py, with the outside router <name>-out at 192.0.2.254, 198.51.100.1 and 203.0.113.1 on its
lo). /run/netns/<name>-hN names each host's network namespace on this machine (`ip netns attach`). A restarted
container has a new namespace without eth0, as a rebooted machine whose NIC comes up: `wire` plugs it in again, and a
unit of the image (lab-underlay.service, before network-online.target) waits for that address at boot, as a real
host's network-online.target waits for its NIC.

Run options: `--privileged` where the machine's capability bounding set is complete; otherwise (this machine kind
lacks CAP_SYS_RESOURCE) every capability the set has, /proc/sys writable (systempaths=unconfined), all devices
allowed and /dev/net/tun for tinc. systemd on cgroup v1 needs --cgroupns=host and /sys/fs/cgroup mounted read-write
(see ../shared/research/container-hosts.md). Only per-network-namespace sysctls may be written in the hosts: /proc/sys
is writable, and vm.* or kernel.* would reach the machine.
"""

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import lab as nslab  # noqa: E402

IMAGE_REPO = "netstitch-lab/host"
SUITE = "bookworm"
PACKAGES = ["systemd", "systemd-sysv", "dbus", "python3", "python3-nftables", "python3-yaml", "iproute2", "nftables",
            "iputils-ping", "procps", "tinc", "iptables", "kmod"]
DPKG_OPTS = ["path-exclude=/usr/share/man/*", "path-exclude=/usr/share/doc/*", "path-include=/usr/share/doc/*/copyright",
             "path-exclude=/usr/share/locale/*", "path-exclude=/usr/share/info/*"]
APT_OPTS = ['Acquire::Check-Valid-Until "false"', 'Acquire::Check-Date "false"']
SOURCES = os.environ.get("NETSTITCH_APT_SOURCES", "/etc/apt/sources.list.d/debian.sources")
# Done in the image after the packages: a unit that waits for the underlay NIC at boot (wired from outside the
# container, see the module doc), units that make no sense in a container masked, and a fixed locale-free journal.
HOOK = r"""#!/bin/sh
set -e
root=$1
cat > "$root/usr/local/sbin/lab-underlay-wait" <<'EOF'
#!/bin/sh
# lab: wait (at most 60 s) until eth0, plugged in from outside the container, has its IPv4 address
i=0
while [ $i -lt 600 ]; do
  ip -4 -o addr show dev eth0 2>/dev/null | grep -q ' inet ' && exit 0
  sleep 0.1; i=$((i + 1))
done
echo "no IPv4 address on eth0 after 60 s" >&2
exit 0
EOF
chmod 755 "$root/usr/local/sbin/lab-underlay-wait"
cat > "$root/etc/systemd/system/lab-underlay.service" <<'EOF'
[Unit]
Description=lab: wait for the underlay NIC (plugged in from outside the container)
DefaultDependencies=no
After=network-pre.target
Before=network.target network-online.target

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/local/sbin/lab-underlay-wait

[Install]
WantedBy=network-online.target
EOF
mkdir -p "$root/etc/systemd/system/network-online.target.wants" "$root/etc/systemd/system/multi-user.target.wants"
ln -sf /etc/systemd/system/lab-underlay.service "$root/etc/systemd/system/network-online.target.wants/"
ln -sf /lib/systemd/system/network-online.target "$root/etc/systemd/system/multi-user.target.wants/"
for u in getty@tty1.service console-getty.service systemd-firstboot.service systemd-udevd.service \
         systemd-udev-trigger.service systemd-modules-load.service sys-kernel-config.mount sys-kernel-debug.mount \
         sys-kernel-tracing.mount apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer fstrim.timer; do
  ln -sf /dev/null "$root/etc/systemd/system/$u"
done
: > "$root/etc/machine-id"
"""
CAP_NAMES = ["CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID", "SETPCAP",
             "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW", "IPC_LOCK", "IPC_OWNER",
             "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT", "SYS_ADMIN", "SYS_BOOT", "SYS_NICE",
             "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD", "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP",
             "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG", "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF",
             "CHECKPOINT_RESTORE"]
ANSIBLE_WHEEL = "ansible==12.3.0"
COLLECTIONS = ("ansible_collections/community/docker/", "ansible_collections/community/library_inventory_filtering_v1/",
               "ansible_collections/ansible/posix/")


def sh(*args, check=True, input=None, timeout=600):
    r = subprocess.run(args, capture_output=True, text=True, input=input, timeout=timeout, check=False)
    if check and r.returncode != 0:
        raise RuntimeError("%s failed (%d): %s" % (" ".join(args), r.returncode, (r.stderr or r.stdout).strip()[-2000:]))
    return r


def log(msg):
    print("chosts: %s" % msg, file=sys.stderr, flush=True)


# -- the image ---------------------------------------------------------------------------------------------------------
def recipe():
    try:
        with open(SOURCES) as f:
            sources = f.read()
    except OSError:
        sources = ""
    return {"suite": SUITE, "packages": PACKAGES, "dpkg": DPKG_OPTS, "apt": APT_OPTS, "hook": HOOK,
            "sources": sources, "version": 1}


def image_tag():
    digest = hashlib.sha256(json.dumps(recipe(), sort_keys=True).encode()).hexdigest()[:12]
    return "%s:%s" % (IMAGE_REPO, digest)


def image_exists(tag):
    return sh("docker", "image", "inspect", tag, check=False).returncode == 0


def image(quiet=False):
    """The host image's tag: present, loaded from the cache, or built now (and saved to the cache)."""
    tag = image_tag()
    if image_exists(tag):
        return tag
    cache = os.environ.get("NETSTITCH_HOST_IMAGE_CACHE")
    saved = os.path.join(cache, tag.split(":")[1] + ".tar") if cache else None
    if saved and os.path.exists(saved):
        t0 = time.monotonic()
        sh("docker", "load", "-i", saved)
        log("loaded %s from %s in %.1fs" % (tag, saved, time.monotonic() - t0))
        return tag
    for tool in ("mmdebstrap", "docker"):
        if sh("sh", "-c", "command -v %s" % tool, check=False).returncode != 0:
            raise RuntimeError("building the host image needs %s (scripts/setup.sh installs it)" % tool)
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="chosts-") as tmp:
        hook = os.path.join(tmp, "hook.sh")
        with open(hook, "w") as f:
            f.write(HOOK)
        os.chmod(hook, 0o755)
        cmd = ["mmdebstrap", "--quiet", "--variant=minbase", "--include=" + ",".join(PACKAGES),
               "--customize-hook=%s \"$1\"" % hook]
        cmd += ["--aptopt=%s" % o for o in APT_OPTS] + ["--dpkgopt=%s" % o for o in DPKG_OPTS]
        cmd += [SUITE, "-", SOURCES]
        build = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        imp = subprocess.run(["docker", "import", "--change", 'CMD ["/sbin/init"]', "--change", "ENV container=docker",
                              "--change", "LABEL netstitch.recipe=%s" % tag.split(":")[1], "-", tag],
                             stdin=build.stdout, capture_output=True, text=True, check=False)
        build.stdout.close()
        err = build.stderr.read().decode(errors="replace")
        if build.wait() != 0 or imp.returncode != 0:
            if imp.returncode == 0:
                sh("docker", "rmi", tag, check=False)
            raise RuntimeError("building %s failed: %s %s" % (tag, err[-2000:], imp.stderr[-500:]))
    log("built %s in %.1fs" % (tag, time.monotonic() - t0))
    if saved:
        os.makedirs(cache, exist_ok=True)
        sh("docker", "save", "-o", saved + ".tmp", tag)
        os.rename(saved + ".tmp", saved)
    return tag


# -- run options ---------------------------------------------------------------------------------------------------------
def missing_caps():
    """Capabilities the machine's bounding set lacks (Docker's --privileged asks for every one the kernel knows)."""
    with open("/proc/self/status") as f:
        bnd = int([l.split()[1] for l in f if l.startswith("CapBnd:")][0], 16)
    try:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            last = int(f.read())
    except OSError:
        last = len(CAP_NAMES) - 1
    return [CAP_NAMES[i] for i in range(min(last + 1, len(CAP_NAMES))) if not bnd & (1 << i)]


def privilege_options():
    missing = missing_caps()
    if not missing:
        return ["--privileged"]
    return (["--cap-add", "ALL"] + [x for c in missing for x in ("--cap-drop", c)]
            + ["--security-opt", "systempaths=unconfined", "--device-cgroup-rule", "a *:* rwm"])


def run_options():
    return privilege_options() + [
        "--device", "/dev/net/tun", "--cgroupns=host", "-v", "/sys/fs/cgroup:/sys/fs/cgroup:rw",
        "--tmpfs", "/run", "--tmpfs", "/run/lock", "--tmpfs", "/tmp", "--network", "none",
        "--stop-signal", "SIGRTMIN+3"]


# -- hosts -------------------------------------------------------------------------------------------------------------
def host_names(name, hosts):
    return ["%s-h%d" % (name, i) for i in range(1, hosts + 1)]


def pid_of(container):
    r = sh("docker", "inspect", "-f", "{{.State.Pid}} {{.State.Running}}", container, check=False)
    if r.returncode != 0:
        return None
    pid, running = r.stdout.split()
    return int(pid) if running == "true" and int(pid) > 0 else None


def wait_until(cond, timeout, what):
    end = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > end:
            raise RuntimeError("timed out after %gs waiting for %s" % (timeout, what))
        time.sleep(0.1)


def system_running(container):
    r = sh("docker", "exec", container, "systemctl", "is-system-running", check=False)
    return r.stdout.strip() in ("running", "degraded")


def wire(name, container, i):
    """Plug host i's eth0 (192.0.2.i/24, default route via the outside router) into the switch: again after a restart.
    /run/netns/<container> names the container's current network namespace."""
    pid = wait_until(lambda: pid_of(container), 30, "container %s to run" % container)
    sw = "%s-sw" % name
    port = "%s-%d" % (name[:10], i)
    path = "/run/netns/" + container
    if os.path.lexists(path):
        try:
            same = os.stat(path).st_ino == os.stat("/proc/%d/ns/net" % pid).st_ino
        except OSError:
            same = False
        if same and sh("ip", "-n", container, "-4", "-o", "addr", "show", "dev", "eth0", check=False).stdout.strip():
            return False        # wired already
        sh("ip", "netns", "del", container, check=False)
    sh("ip", "netns", "attach", container, str(pid))
    sh("ip", "-n", sw, "link", "del", port, check=False)    # the old end, if the old namespace is still going
    nslab._add_port(sw, port, container, "eth0", nslab.UNDERLAY % i + "/24")
    sh("ip", "-n", container, "route", "add", "default", "via", nslab.OUTSIDE_IP)
    return True


def up(name="ch", hosts=3, d=None):
    d = nslab.lab_dir(name, d)
    tag = image()
    nslab.up(name, 0, d)                           # the switch and the outside router (no namespace hosts)
    names = host_names(name, hosts)
    t0 = time.monotonic()
    for h in names:
        if sh("docker", "inspect", h, check=False).returncode != 0:
            sh("docker", "run", "-d", "--name", h, "--hostname", h, "--label", "netstitch.lab=%s" % name,
               *run_options(), tag)
        elif pid_of(h) is None:
            sh("docker", "start", h)
    for i, h in enumerate(names, 1):
        wire(name, h, i)
    for h in names:
        wait_until(lambda: system_running(h), 60, "systemd in %s" % h)
    log("%d hosts up in %.1fs" % (hosts, time.monotonic() - t0))
    inv = ["[fabric]"]
    for i, h in enumerate(names, 1):
        inv.append("%s ansible_connection=community.docker.docker ansible_python_interpreter=/usr/bin/python3 "
                   "netstitch_underlay=%s" % (h, nslab.UNDERLAY % i))
    inv += ["", "[fabric:vars]", "netstitch_state_dir=/var/lib/netstitch", ""]
    with open(os.path.join(d, "inventory.ini"), "w") as f:
        f.write("\n".join(inv))
    with open(os.path.join(d, "chosts.json"), "w") as f:
        json.dump({"name": name, "hosts": names, "image": tag}, f)
    return d


def rewire(name="ch", d=None, names=None):
    """Wire the hosts (the ones `up` started, or ``names``, containers started by another tool, host i = 192.0.2.i):
    only those whose eth0 is missing. Returns the names wired now."""
    d = nslab.lab_dir(name, d)
    meta = os.path.join(d, "chosts.json")
    if names:
        nslab.up(name, 0, d)
        with open(meta, "w") as f:
            json.dump({"name": name, "hosts": names}, f)
    else:
        with open(meta) as f:
            names = json.load(f)["hosts"]
    return [h for i, h in enumerate(names, 1) if wire(name, h, i)]


def down(name="ch", d=None):
    d = nslab.lab_dir(name, d)
    r = sh("docker", "ps", "-aq", "--filter", "label=netstitch.lab=%s" % name, check=False)
    ids = r.stdout.split()
    if ids:
        sh("docker", "rm", "-f", *ids, check=False)
    for n in os.listdir("/run/netns") if os.path.isdir("/run/netns") else []:
        if n.startswith(name + "-h"):
            sh("ip", "netns", "del", n, check=False)
    nslab.down(name, d)


# -- collections -------------------------------------------------------------------------------------------------------
def collections(dest=None, wheel_dir=None):
    """community.docker (the docker connection), its dependency and ansible.posix (Molecule's docker driver), taken from
    PyPI's `ansible` wheel (pip download, no Galaxy) into DEST/ansible_collections. Nothing is done when present."""
    dest = dest or os.path.join(TOP, ".build", "collections")
    marker = os.path.join(dest, "ansible_collections", "community", "docker", "MANIFEST.json")
    if os.path.exists(marker):
        return dest
    wheel_dir = wheel_dir or os.path.join(TOP, ".build", "wheels")
    os.makedirs(wheel_dir, exist_ok=True)
    wheels = [w for w in os.listdir(wheel_dir) if w.startswith("ansible-") and w.endswith(".whl")]
    if not wheels:
        pip = os.path.join(TOP, ".venv", "bin", "pip")
        sh(pip, "download", "-q", "--no-deps", "--disable-pip-version-check", "-d", wheel_dir, ANSIBLE_WHEEL)
        wheels = [w for w in os.listdir(wheel_dir) if w.startswith("ansible-") and w.endswith(".whl")]
    with zipfile.ZipFile(os.path.join(wheel_dir, sorted(wheels)[-1])) as z:
        z.extractall(dest, [n for n in z.namelist() if n.startswith(COLLECTIONS)])
    return dest


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("image")
    for cmd in ("up", "wire", "down"):
        s = sub.add_parser(cmd)
        s.add_argument("--name", default="ch")
        s.add_argument("--dir", default=None)
        if cmd == "up":
            s.add_argument("--hosts", type=int, default=3)
        if cmd == "wire":
            s.add_argument("--hosts-list", default=None, help="comma-separated container names (host i gets 192.0.2.i)")
    c = sub.add_parser("collections")
    c.add_argument("--dest", default=None)
    a = p.parse_args(argv)
    try:
        if a.cmd == "image":
            print(image())
        elif a.cmd == "up":
            print(os.path.join(up(a.name, a.hosts, a.dir), "inventory.ini"))
        elif a.cmd == "wire":
            print(" ".join(rewire(a.name, a.dir, a.hosts_list.split(",") if a.hosts_list else None)))
        elif a.cmd == "down":
            down(a.name, a.dir)
        else:
            print(collections(a.dest))
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as e:
        print("chosts: %s" % e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
