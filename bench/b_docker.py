"""Docker's own per-container networking, for comparison: `docker network connect` of N running containers to a
user-defined bridge network, one container at a time, timed through the CLI (what a script does) and through the
Docker SDK in one process (what a tool such as community.docker does, without a process per call).

The containers exist beforehand (started on a parking network of their own, since a container in `none` mode cannot
be connected to another network); connecting gives each a veth on the benchmark network's bridge and an address.
Docker is bounded to small N (the daemon takes a noticeable time per container); the figure is per container.
Everything is named with the run's prefix and removed at the end, image included."""

import ipaddress
import os
import shutil
import subprocess
import tempfile
import time

import labkit


def _docker(*args, check=True, timeout=300):
    return labkit.run("docker", *args, check=check, timeout=timeout)


def _cidr(word):
    try:
        ipaddress.IPv4Interface(word)
        return "/" in word
    except ValueError:
        return False


def build_image(tag):
    """A tiny image from Debian's busybox-static (../shared/LAB.md): sh, sleep, ip."""
    bb = shutil.which("busybox") or "/bin/busybox"
    d = tempfile.mkdtemp(prefix="bnimg")
    try:
        os.makedirs(os.path.join(d, "bin"))
        shutil.copy(bb, os.path.join(d, "bin", "busybox"))
        for a in ("sh", "sleep", "ip"):
            os.symlink("busybox", os.path.join(d, "bin", a))
        tar = subprocess.Popen(["tar", "-C", d, "-c", "."], stdout=subprocess.PIPE)
        subprocess.run(["docker", "import", "-c", 'CMD ["/bin/sh"]', "-", tag], stdin=tar.stdout, check=True,
                       capture_output=True, timeout=300)
        tar.wait()
    finally:
        shutil.rmtree(d, ignore_errors=True)


def run(run_, sizes, log):
    if shutil.which("docker") is None or _docker("info", check=False).returncode != 0:
        log("  Docker is not available: skipped")
        return {"skipped": "Docker Engine not available"}
    import docker as docker_sdk
    p = run_.prefix
    image = "%s/busybox:local" % p
    park, net = "%spark" % p, "%snet" % p
    made = []
    out = {"rows": []}
    client = docker_sdk.from_env(timeout=300)
    try:
        build_image(image)
        # subnets chosen by Docker from its own free pools (a fixed one may clash with another network here)
        _docker("network", "create", "--driver", "bridge", park)
        _docker("network", "create", "--driver", "bridge", net)
        subnet = ipaddress.IPv4Network(_docker("network", "inspect", "-f", "{{(index .IPAM.Config 0).Subnet}}",
                                               net).stdout.strip())
        for n in sizes:
            names = ["%sd%dc%d" % (p, n, i) for i in range(n)]
            for nm in names:
                _docker("run", "-d", "--name", nm, "--network", park, image, "sleep", "3600")
                made.append(nm)
            labkit.settle()
            t0 = time.monotonic()
            for nm in names:
                _docker("network", "connect", net, nm)
            cli = time.monotonic() - t0
            for nm in names:
                _docker("network", "disconnect", net, nm)
            labkit.settle()
            network = client.networks.get(net)
            t0 = time.monotonic()
            for nm in names:
                network.connect(nm)
            sdk = time.monotonic() - t0
            got = _docker("exec", names[0], "ip", "-o", "-4", "addr").stdout
            if not any(ipaddress.IPv4Interface(w).ip in subnet for w in got.split() if _cidr(w)):
                raise AssertionError("Docker container %s has no address in %s (%s): %s"
                                     % (names[0], net, subnet, got))
            row = {"n": n, "cli": round(cli, 3), "sdk": round(sdk, 3), "cli_per": round(cli / n, 4),
                   "sdk_per": round(sdk / n, 4)}
            out["rows"].append(row)
            log("  N=%d: docker network connect (CLI) %.2fs = %.0f ms per container; SDK %.2fs = %.0f ms per container"
                % (n, cli, cli / n * 1000, sdk, sdk / n * 1000))
            for nm in names:        # leave the network before the containers go (no endpoint left to the daemon)
                network.disconnect(nm)
            _docker("rm", "-f", *names, timeout=600)
            made = [m for m in made if m not in names]
    finally:
        for nm in made:
            _docker("network", "disconnect", "-f", net, nm, check=False)
        if made:
            _docker("rm", "-f", *made, check=False, timeout=600)
        for nw in (net, park):
            # the daemon may still be releasing the endpoints of containers just removed: retry for a while
            for _attempt in range(20):
                if _docker("network", "rm", nw, check=False).returncode == 0 or \
                        _docker("network", "inspect", nw, check=False).returncode != 0:
                    break
                time.sleep(0.5)
        _docker("rmi", image, check=False)
        client.close()
        left = [x for x in _docker("network", "ls", "--format", "{{.Name}}", check=False).stdout.split()
                + _docker("ps", "-a", "--format", "{{.Names}}", check=False).stdout.split() if x.startswith(p)]
        if left:
            raise RuntimeError("Docker objects left behind: %s" % left)
    rows = out["rows"]
    out["summary"] = {"cli_per": labkit.median([r["cli_per"] for r in rows]),
                      "sdk_per": labkit.median([r["sdk_per"] for r in rows]), "sizes": [r["n"] for r in rows]}
    return out
