"""`docker run` latency per container: netstitch's Docker plugin (remote network + IPAM driver) against Docker's own
bridge driver on a user-defined network, interleaved in one run (round i: one container on each, the order
alternating), N containers each.

Both networks live in one nested dockerd inside a lab host namespace (own data root, exec root, socket; its bridge
driver's iptables rules and bridges stay in that namespace), so nothing touches the machine's own Docker networks
or root namespace. The plugin runs in the same namespace (as on a real host), from the topology a netstitch apply
left there. Prints a JSON summary; with --out writes it to a file. Everything is removed at the end.

    sudo .venv/bin/python bench/b_plugin.py [--n 50] [--out docs/docker-plugin-bench.json]
"""

import argparse
import json
import os
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(TOP, "tests", "integration"))

import dockerkit  # noqa: E402
import nskit  # noqa: E402

CLI = [nskit.PY, "-m", "ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.cli"]
PLUGIN_SUBNET, BRIDGE_SUBNET = "10.66.0.0/24", "10.67.0.0/24"


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


def summary(xs):
    return {"median_ms": round(statistics.median(xs) * 1000, 1), "p10_ms": round(pct(xs, 0.1) * 1000, 1),
            "p90_ms": round(pct(xs, 0.9) * 1000, 1), "n": len(xs)}


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=50)
    p.add_argument("--out")
    a = p.parse_args(argv)
    rid = secrets.token_hex(3)
    lab = "bnp" + rid[:4]
    work = tempfile.mkdtemp(prefix="bnplugin-")
    state = os.path.join(work, "state")
    host_ns = "%s-h1" % lab
    tag = "netstitch-bench/busybox:%s" % rid
    pname = "netstitch-bench-%s" % rid
    sock = "/run/docker/plugins/%s.sock" % pname
    image = dockerkit.Image(tag, work)
    nested, plugin, eng = None, None, None
    try:
        nskit.labmod.up(lab, 1, d=os.path.join(work, "lab"), python=nskit.PY)
        image.build()
        nested = dockerkit.NestedDockerd(host_ns, "bnp" + rid).start()
        nested.load(tag)
        eng = dockerkit.Containers(nested.url)
        topo = {"hosts": {"h1": {"underlay": "192.0.2.1/24"}},
                "networks": {"pn": {"subnet": PLUGIN_SUBNET, "hosts": ["h1"]}}, "containers": {}}
        path = os.path.join(work, "topo.json")
        with open(path, "w") as f:
            json.dump(topo, f)
        nskit.run("nsenter", "--net=/run/netns/%s" % host_ns, "--", *CLI, "apply", path, "--host", "h1",
                  "--state-dir", state, timeout=120)
        log = open(os.path.join(work, "plugin.log"), "w")
        plugin = subprocess.Popen(["nsenter", "--net=/run/netns/%s" % host_ns, "--"] + CLI +
                                  ["plugin", "--host", "h1", "--state-dir", state, "--name", pname,
                                   "--docker-host", nested.url], stdout=log, stderr=subprocess.STDOUT,
                                  start_new_session=True)
        end = time.monotonic() + 20
        while not os.path.exists(sock) and time.monotonic() < end:
            time.sleep(0.05)
        eng.docker("network", "create", "-d", pname, "--ipam-driver", pname, "--subnet", PLUGIN_SUBNET, "pn")
        eng.docker("network", "create", "--subnet", BRIDGE_SUBNET, "bn")
        times = {"netstitch": [], "bridge": []}

        def one(kind, i, record=True):
            name = "%s-%s-%d" % (kind[:2], rid, i)
            eng.names.append(name)
            t0 = time.monotonic()
            eng.docker("run", "-d", "--name", name, "--network", "pn" if kind == "netstitch" else "bn", tag,
                       "sleep", "3600")
            if record:
                times[kind].append(time.monotonic() - t0)
        for i in range(2):      # warm-up (first use of each network and image)
            one("netstitch", 1000 + i, False)
            one("bridge", 1000 + i, False)
        for i in range(a.n):
            order = ("netstitch", "bridge") if i % 2 == 0 else ("bridge", "netstitch")
            for kind in order:
                one(kind, i)
        # a sample check that the plugin's containers have their address and the network works
        r = eng.docker("exec", "ne-%s-0" % rid, "ping", "-c", "1", "-W", "2", "10.66.0.1", check=False)
        handler = {}
        with open(os.path.join(work, "plugin.log")) as f:
            for line in f:
                if line.startswith("{"):
                    e = json.loads(line)
                    if "call" in e:
                        handler.setdefault(e["call"].split(".")[-1], []).append(e["ms"])
        out = {"n": a.n, "netstitch": summary(times["netstitch"]), "bridge": summary(times["bridge"]),
               "ratio_median": round(statistics.median(times["netstitch"]) / statistics.median(times["bridge"]), 3),
               "gateway_ping_ok": r.returncode == 0,
               "plugin_handler_median_ms": {k: round(statistics.median(v), 2) for k, v in sorted(handler.items())},
               "load": os.getloadavg(), "docker": nested and "nested dockerd in a lab host namespace"}
        print(json.dumps(out, indent=1))
        if a.out:
            with open(a.out, "w") as f:
                json.dump(out, f, indent=1)
        return 0
    finally:
        if eng is not None:
            eng.remove_all()
            eng.docker("network", "rm", "pn", "bn", check=False)
        if plugin is not None and plugin.poll() is None:
            plugin.send_signal(signal.SIGTERM)
            plugin.wait(timeout=20)
        if nested is not None:
            nested.stop()
        image.remove()
        nskit.labmod.down(lab, d=os.path.join(work, "lab"))
        subprocess.run(["rm", "-rf", work], check=False)


if __name__ == "__main__":
    sys.exit(main())
