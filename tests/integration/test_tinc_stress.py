"""Opt-in stress for the tinc overlay's start-up: the three daemons of one lab are stopped and started again in
varied orders and timings (all at once, staggered, one host only, SIGHUP while they connect, one host restarted
within the second it started), with tincd logging at debug level 5, and every ordered container pair must ping
within the overlay deadline each round. A failure, or a round that needed more than 5 s, keeps each daemon's dump
(nodes, edges, subnets, connections) and log under tests/output/tincstress-<lab>/.

    NETSTITCH_TINC_STRESS=<rounds> [NETSTITCH_TINC_SEED=<n>] [NETSTITCH_TINC_MODES=together,staggered,one,hup,
    samesecond] [NETSTITCH_TINC_BROADCAST=mst (tinc's default, to compare)] pytest tests/integration/test_tinc_stress.py
"""

import os
import random
import signal
import subprocess
import threading
import time

import pytest

import nskit
from fabrickit import HOSTS, fabric  # noqa: F401 pylint: disable=unused-import

ROUNDS = int(os.environ.get("NETSTITCH_TINC_STRESS") or 0)
pytestmark = pytest.mark.skipif(not ROUNDS, reason="opt-in: NETSTITCH_TINC_STRESS=<rounds>")
DEADLINE = 45.0


def _confdir(fabric, host):
    return os.path.join(fabric.dir, "state", "tinc", host, "ov")


def _pid(fabric, host):
    with open(os.path.join(_confdir(fabric, host), "tinc.pid")) as f:
        return int(f.read().split()[0])


def _alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _stop(fabric, host):
    pid = _pid(fabric, host)
    os.kill(pid, signal.SIGTERM)
    nskit.wait_until(lambda: not _alive(pid), timeout=10, what="tincd %d to exit" % pid)


def _start(fabric, host, port):
    d = _confdir(fabric, host)
    subprocess.run(["nsenter", "--net=/run/netns/%s" % fabric.hns(host), "--", "tincd", "-c", d, "-d5",
                    "--pidfile=%s" % os.path.join(d, "tinc.pid"), "--logfile=%s" % os.path.join(d, "tinc.log")],
                   check=True, timeout=20)
    nskit.wait_until(lambda: nskit.nsexec(fabric.hns(host), "ip", "link", "show", port["dev"],
                                          check=False).returncode == 0, timeout=10, what="tap of %s" % host)
    nskit.nsexec(fabric.hns(host), "ip", "link", "set", port["dev"], "master", port["master"], "mtu", port["mtu"],
                 "up")


def _port(fabric, host):
    with open(os.path.join(_confdir(fabric, host), "tinc.conf")) as f:
        dev = [ln.split("=")[1].strip() for ln in f if ln.startswith("Interface")][0]
    words = nskit.nsexec(fabric.hns(host), "ip", "-o", "link", "show", "dev", dev).stdout.split()
    return {"dev": dev, "master": words[words.index("master") + 1], "mtu": words[words.index("mtu") + 1]}


def _dump(fabric, sub=""):
    """Each daemon's connections, nodes (status bits: validkey, reachable; pmtu), edges and subnets into its log;
    then a copy of the logs for reading."""
    logs = {h: os.path.join(_confdir(fabric, h), "tinc.log") for h in HOSTS}

    def dumps(h):
        with open(logs[h], errors="replace") as f:
            return f.read().count("End of connections")
    before = {h: dumps(h) for h in HOSTS}
    for h in HOSTS:
        os.kill(_pid(fabric, h), signal.SIGUSR2)
        os.kill(_pid(fabric, h), signal.SIGUSR1)
    for h in HOSTS:
        nskit.wait_until(lambda h=h: dumps(h) > before[h], timeout=10, what="dump of " + h)
    out = os.path.join(nskit.TOP, "tests", "output", "tincstress-%s" % fabric.name, sub)
    os.makedirs(out, exist_ok=True)
    for h in HOSTS:
        with open(os.path.join(_confdir(fabric, h), "tinc.log")) as f, open(os.path.join(out, h + ".log"), "w") as g:
            g.write(f.read())
    return out


@pytest.mark.timeout(120 + ROUNDS * 60)
def test_tinc_restart_orders(fabric):
    topo = fabric.topology("tinc")
    first = fabric.apply_all(topo)
    addr = {e["container"]: nskit.addr(e["address"]) for r in first.values() for e in r["endpoints"]}
    ports = {h: _port(fabric, h) for h in HOSTS}
    if os.environ.get("NETSTITCH_TINC_BROADCAST"):     # A/B against tinc's own default (mst)
        for h in HOSTS:
            conf = os.path.join(_confdir(fabric, h), "tinc.conf")
            with open(conf) as f:
                text = f.read()
            with open(conf, "w") as f:
                f.write(text.replace("Broadcast = direct", "Broadcast = " + os.environ["NETSTITCH_TINC_BROADCAST"]))
    rnd = random.Random(int(os.environ.get("NETSTITCH_TINC_SEED") or time.time()))
    modes = (os.environ.get("NETSTITCH_TINC_MODES") or "together,staggered,one,hup").split(",")
    stats = []
    for rnd_no in range(ROUNDS):
        mode = modes[rnd_no % len(modes)]
        victims = list(HOSTS) if mode not in ("one", "samesecond") else [rnd.choice(HOSTS)]
        for h in victims:
            _stop(fabric, h)
        # as the driver does: a tincd starts in a later second than its predecessor stopped (tincd seeds its random
        # request nonces with the second it starts in; peers drop repeated requests as seen)
        # ("samesecond" skips that: the peers then miss the new tincd's first edges and their graphs differ)
        stopped = time.time()
        if mode != "samesecond":
            nskit.wait_until(lambda: int(time.time()) > int(stopped), timeout=2, what="the next second")
        for h in victims:
            with open(os.path.join(_confdir(fabric, h), "tinc.log"), "w"):
                pass
        # forget the containers' neighbours so that every pair starts with ARP over the overlay
        for c in ("c1", "c2", "c3"):
            nskit.nsexec(fabric.cns(c), "ip", "neigh", "flush", "all", check=False)
        delays = {h: (rnd.uniform(0, 6) if mode == "staggered" else 0.0) for h in victims}
        threads = []
        t0 = time.monotonic()
        for h in sorted(victims, key=lambda x: delays[x]):
            def go(h=h):
                time.sleep(max(0.0, t0 + delays[h] - time.monotonic()))
                _start(fabric, h, ports[h])
            threads.append(threading.Thread(target=go))
            threads[-1].start()
        if mode == "hup":
            time.sleep(rnd.uniform(0.05, 1.0))
            for h in HOSTS:
                try:
                    os.kill(_pid(fabric, h), signal.SIGHUP)
                except (OSError, ValueError):
                    pass
        for t in threads:
            t.join()
        start = time.monotonic()
        for src in ("c1", "c2", "c3"):
            for dst in ("c1", "c2", "c3"):
                if src == dst:
                    continue
                ns, a = fabric.cns(src), addr[dst]
                try:
                    nskit.wait_until(lambda: nskit.ping(ns, a, timeout=1), timeout=DEADLINE,
                                     what="round %d (%s %s): %s to ping %s" % (rnd_no, mode, delays, src, dst))
                except AssertionError as e:
                    where = _dump(fabric)
                    raise AssertionError("%s (logs in %s)\n%s" % (e, where, fabric.diagnose())) from None
        stats.append((mode, round(time.monotonic() - start, 1)))
        if stats[-1][1] > 5:
            _dump(fabric, "slow-round-%d" % rnd_no)      # a round that needed a recovery: keep its story
        print("round %d %s %s: all pairs in %.1fs" % (rnd_no, mode, sorted(delays.items()), stats[-1][1]),
              flush=True)
    print("rounds: %s" % stats)
