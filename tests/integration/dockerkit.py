"""Docker helpers of the integration tests: the lab image (Debian's busybox-static, imported with a unique tag), a
second Docker daemon inside a lab host namespace (its bridge driver, iptables rules and docker-proxy live there, so
nothing of it reaches the root namespace), and bookkeeping that removes every container, network, image and daemon
the tests made, whatever happened.

The system engine is only used through its API: the image, and containers started with --network none (their
network namespaces are attached to lab hosts by netstitch).
"""

import glob
import os
import shutil
import signal
import subprocess
import tempfile
import time

APPLETS = ("sh", "httpd", "nc", "ping", "ip", "sleep", "wget", "cat", "echo", "hostname", "nslookup")
SYSTEM_URL = os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"     # the engine the tests use


def run(*args, check=True, timeout=60, input=None):
    r = subprocess.run(args, capture_output=True, text=True, timeout=timeout, input=input, check=False)
    if check and r.returncode != 0:
        raise AssertionError("%s failed (%d): %s" % (" ".join(args), r.returncode, (r.stderr or r.stdout).strip()))
    return r


def skip_reason():
    """Why the Docker tests cannot run here, or None."""
    for tool in ("docker", "dockerd", "iptables", "iptables-save"):
        if shutil.which(tool) is None:
            return "the Docker tests need the %r command" % tool
    if not os.path.exists("/bin/busybox"):
        return "the Docker tests build their image from /bin/busybox (Debian package busybox-static)"
    try:
        import docker
    except ImportError:
        return "the Docker tests need the Docker SDK for Python (pip install docker)"
    try:
        docker.APIClient(base_url=SYSTEM_URL, version="auto", timeout=10).ping()
    except Exception as e:
        return "no Docker Engine at %s: %s" % (SYSTEM_URL, str(e).splitlines()[0][:200])
    return None


def api(url=SYSTEM_URL):
    import docker
    return docker.APIClient(base_url=url, version="auto", timeout=60)


class Image(object):
    """The lab image on the system engine, built from busybox-static (LAB.md's recipe) under a unique tag."""

    def __init__(self, tag, workdir):
        self.tag = tag
        self.dir = os.path.join(workdir, "img")

    def build(self):
        os.makedirs(os.path.join(self.dir, "bin"))
        shutil.copy("/bin/busybox", os.path.join(self.dir, "bin", "busybox"))
        for a in APPLETS:
            os.symlink("busybox", os.path.join(self.dir, "bin", a))
        tar = subprocess.Popen(["tar", "-C", self.dir, "-c", "."], stdout=subprocess.PIPE)
        r = subprocess.run(["docker", "-H", SYSTEM_URL, "import", "-c", 'CMD ["/bin/sh"]', "-", self.tag],
                           stdin=tar.stdout,
                           capture_output=True, text=True, timeout=60, check=False)
        tar.wait()
        assert r.returncode == 0, "docker import failed: %s" % r.stderr

    def remove(self):
        run("docker", "-H", SYSTEM_URL, "rmi", "-f", self.tag, check=False)


class Containers(object):
    """Containers a test starts on an engine (by name), removed at the end."""

    def __init__(self, url=SYSTEM_URL):
        self.url = url
        self.names = []

    def docker(self, *args, check=True, timeout=60):
        return run("docker", "-H", self.url, *args, check=check, timeout=timeout)

    def start(self, name, image, *cmd, network="none", extra=()):
        self.names.append(name)
        self.docker("run", "-d", "--name", name, "--network", network, *extra, image, *cmd)
        return name

    def exec(self, name, *cmd, check=True, timeout=30):
        return self.docker("exec", name, *cmd, check=check, timeout=timeout)

    def inspect(self, name):
        return api(self.url).inspect_container(name)

    def pid(self, name):
        return self.inspect(name)["State"]["Pid"]

    def addresses(self, name, ifname):
        """IPv4 addresses (CIDR) of one interface inside the container, or None when it has no such interface."""
        r = self.exec(name, "ip", "-o", "-4", "addr", "show", "dev", ifname, check=False)
        if r.returncode != 0:
            return None
        return sorted(l.split()[3] for l in r.stdout.splitlines())

    def remove_all(self):
        if self.names:
            self.docker("rm", "-f", "-v", *self.names, check=False)
        self.names = []


class NestedDockerd(object):
    """A second Docker daemon inside a lab host namespace, with its own data root, exec root, socket, pid file,
    cgroup parent and containerd, the vfs storage driver, no default bridge, and --iptables=true, so that it builds
    its real firewall (FORWARD policy DROP: forwarding is off in the namespace when it starts, and Docker turns it
    on) inside that namespace."""

    def __init__(self, hostns, label):
        self.hostns = hostns
        self.dir = tempfile.mkdtemp(prefix="nsdk-%s-" % label, dir="/tmp")
        self.sock = os.path.join(self.dir, "docker.sock")
        self.url = "unix://" + self.sock
        self.cgroup = "/netstitch-test-%s" % label
        self.proc = None
        self.log = os.path.join(self.dir, "dockerd.log")

    def start(self, timeout=60):
        with open(os.path.join(self.dir, "daemon.json"), "w") as f:
            f.write("{}\n")     # not the system's /etc/docker/daemon.json
        run("nsenter", "--net=/run/netns/%s" % self.hostns, "--", "sysctl", "-qw", "net.ipv4.ip_forward=0")
        with open(self.log, "w") as log:
            self.proc = subprocess.Popen(
                ["nsenter", "--net=/run/netns/%s" % self.hostns, "--", "dockerd",
                 "--config-file", os.path.join(self.dir, "daemon.json"),
                 "--data-root", os.path.join(self.dir, "data"), "--exec-root", os.path.join(self.dir, "exec"),
                 "--pidfile", os.path.join(self.dir, "dockerd.pid"), "-H", self.url,
                 "--storage-driver", "vfs", "--cgroup-parent", self.cgroup, "--bridge", "none",
                 "--iptables=true", "--ip-forward=true"],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise AssertionError("the nested dockerd exited (%s): %s" % (self.proc.returncode, self.tail()))
            if os.path.exists(self.sock):
                try:
                    api(self.url).ping()
                    # Docker puts its DOCKER-USER jump into FORWARD once it has loaded its networks
                    r = run("nsenter", "--net=/run/netns/%s" % self.hostns, "--", "iptables", "-S", "FORWARD",
                            check=False)
                    if "-j DOCKER-USER" in r.stdout:
                        return self
                except Exception:
                    pass
            time.sleep(0.1)
        raise AssertionError("the nested dockerd did not come up in %ds: %s" % (timeout, self.tail()))

    def tail(self):
        try:
            with open(self.log) as f:
                return f.read()[-2000:]
        except OSError:
            return ""

    def load(self, tag):
        save = subprocess.Popen(["docker", "-H", SYSTEM_URL, "save", tag], stdout=subprocess.PIPE)
        r = subprocess.run(["docker", "-H", self.url, "load"], stdin=save.stdout, capture_output=True, text=True,
                           timeout=120, check=False)
        save.wait()
        assert r.returncode == 0, "loading the image into the nested dockerd failed: %s" % r.stderr

    def _pids(self):
        """Processes of this daemon (dockerd, its containerd and shims, docker-proxy): found by our directory in
        their command line, or as dockerd itself."""
        out = set()
        mark = self.dir.encode()
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                with open("/proc/%s/cmdline" % pid, "rb") as f:
                    if mark in f.read():
                        out.add(int(pid))
            except OSError:
                pass
        if self.proc is not None and self.proc.poll() is None:
            out.add(self.proc.pid)
        return out

    def stop(self):
        """Remove its containers and networks, stop it, and remove every trace (mounts, cgroups, files)."""
        try:
            if self.proc is not None and self.proc.poll() is None:
                c = api(self.url)
                for ct in c.containers(all=True):
                    c.remove_container(ct["Id"], force=True, v=True)
                for n in c.networks():
                    if n["Name"] not in ("bridge", "host", "none"):
                        c.remove_network(n["Id"])
        except Exception:
            pass
        finally:
            if self.proc is not None and self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(timeout=10)
            for pid in self._pids():         # anything of ours that outlived dockerd
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            with open("/proc/mounts") as f:
                mounts = [l.split()[1] for l in f if l.split()[1].startswith(self.dir)]
            for m in sorted(mounts, key=len, reverse=True):
                run("umount", "-l", m, check=False)
            for d in sorted(glob.glob("/sys/fs/cgroup/*%s" % self.cgroup) +
                            glob.glob("/sys/fs/cgroup/*%s/*" % self.cgroup), key=len, reverse=True):
                try:
                    os.rmdir(d)
                except OSError:
                    pass
            shutil.rmtree(self.dir, ignore_errors=True)

    def leftovers(self):
        return {"processes": sorted(self._pids()), "dir": os.path.exists(self.dir),
                "cgroups": glob.glob("/sys/fs/cgroup/*%s" % self.cgroup)}
