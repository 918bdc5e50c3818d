"""Data plane: iperf3 TCP throughput container to container, in one lab (lab/lab.py: hosts on an underlay switch):

- underlay:       host h1 -> host h2 on the underlay addresses (no encapsulation: the ceiling);
- netstitch vxlan: container on h1 -> container on h2 over netstitch's VXLAN overlay (veth, bridge, VXLAN device
                  with static per-peer FDB, MTU 1450), as netstitch applies it with its own nftables table;
- hand vxlan:     the same shape built by hand with `ip` on hosts h3 and h4 of the same lab (bridge, veth, VXLAN
                  without learning and static FDB entries, MTU 1450; no firewall);
- netstitch tinc: container on h1 -> container on h2 over netstitch's tinc overlay (encrypted, user space).

Controls: afterwards netstitch's nftables table on h1 and h2 is taken apart step by step (the NAT chain, then the
forward chain, then the table) and its VXLAN path measured again beside the hand-made one at each step: what is left
of a gap without the table is the devices' own, the rest is netstitch's firewall (on this machine kind br_netfilter
is on, so bridged frames pass the inet hooks, netstitch's forward chain and conntrack).

Each path is measured ``reps`` times for ``seconds`` s, the paths interleaved (a round of all four, then the next
round), so drifts of a noisy machine hit every path alike; medians are reported, and the ratios of each round.
"""

import json
import os
import subprocess
import time

import labkit
from labkit import TOP, median, run as sh

CLI = [labkit.PY, "-m", "ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.cli"]


def _load_lab():
    import importlib.util
    spec = importlib.util.spec_from_file_location("netstitch_lab", os.path.join(TOP, "lab", "lab.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


class DataLab(object):
    def __init__(self, run_):
        self.lab = _load_lab()
        self.name = run_.prefix + "d"
        self.dir = os.path.join(run_.workdir, "dataplane")
        self.state = os.path.join(self.dir, "state")

    def hns(self, i):
        return "%s-h%d" % (self.name, i)

    def cns(self, short):
        return "%s-%s" % (self.name, short)

    def up(self):
        self.lab.up(self.name, 4, d=self.dir, python=labkit.PY)

    def down(self):
        self.lab.down(self.name, d=self.dir)

    def cli(self, host, *args):
        r = subprocess.run(["nsenter", "--net=/run/netns/%s" % self.hns(int(host[1:])), "--"] + CLI + list(args)
                           + ["--host", host, "--state-dir", self.state] + (["--json"] if args[0] == "apply" else []),
                           capture_output=True, text=True, timeout=300, check=False)
        if r.returncode != 0:
            raise RuntimeError("netstitch %s on %s failed: %s" % (args[0], host, r.stderr[-3000:]))
        return json.loads(r.stdout)

    def topology(self):
        return {"version": 1,
                "hosts": {"h1": {"underlay": "192.0.2.1/24"}, "h2": {"underlay": "192.0.2.2/24"}},
                "networks": {"vx": {"subnet": "10.91.0.0/24", "overlay": {"type": "vxlan", "vni": 4291}},
                             "tn": {"subnet": "10.92.0.0/24", "overlay": {"type": "tinc"}}},
                "containers": {
                    "v1": {"host": "h1", "netns": self.cns("v1"), "interfaces": [{"network": "vx"}]},
                    "v2": {"host": "h2", "netns": self.cns("v2"), "interfaces": [{"network": "vx"}]},
                    "t1": {"host": "h1", "netns": self.cns("t1"), "interfaces": [{"network": "tn"}]},
                    "t2": {"host": "h2", "netns": self.cns("t2"), "interfaces": [{"network": "tn"}]}}}

    def apply(self):
        os.makedirs(self.dir, exist_ok=True)
        path = labkit.write_json(os.path.join(self.dir, "topology.json"), self.topology())
        peers = {h: self.cli(h, "prepare", path)["facts"] for h in ("h1", "h2")}
        ppath = labkit.write_json(os.path.join(self.dir, "peers.json"), peers)
        addrs = {}
        for h in ("h1", "h2"):
            res = self.cli(h, "apply", path, "--peers", ppath)
            for e in res["endpoints"]:
                addrs[e["container"]] = e["address"].split("/")[0]
        return addrs

    def hand_vxlan(self):
        """h3 and h4: the same shape as netstitch's VXLAN, made with ip by hand. Returns the server's address."""
        macs = {3: "02:00:5e:10:00:03", 4: "02:00:5e:10:00:04"}
        brmac = {3: "02:00:5e:10:01:03", 4: "02:00:5e:10:01:04"}
        for i, peer in ((3, 4), (4, 3)):
            h, c = self.hns(i), self.cns("m%d" % i)
            sh("ip", "netns", "add", c)
            lines = [
                "link add br0 address %s mtu 1450 type bridge" % brmac[i],
                "link add vx0 mtu 1450 type vxlan id 4299 local 192.0.2.%d dstport 4789 nolearning" % i,
                "link set vx0 master br0 up",
                "link add m%d mtu 1450 type veth peer name eth0 netns %s address %s mtu 1450" % (i, c, macs[i]),
                "link set m%d master br0 up" % i,
                "link set br0 up",
            ]
            labkit.ip_batch(lines, ns=h)
            for mac in ("00:00:00:00:00:00", macs[peer], brmac[peer]):
                verb = "append" if mac == "00:00:00:00:00:00" else "add"
                sh("bridge", "-n", h, "fdb", verb, mac, "dev", "vx0", "dst", "192.0.2.%d" % peer)
            labkit.ip_batch(["addr add 10.93.0.%d/24 dev eth0" % i, "link set eth0 up", "link set lo up"], ns=c)
        return "10.93.0.4"


def iperf(client_ns, server_ns, addr, seconds):
    srv = subprocess.Popen(["ip", "netns", "exec", server_ns, "iperf3", "-s", "-1", "-B", addr],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _n in range(50):             # wait for the listener
            if addr in sh("ip", "netns", "exec", server_ns, "ss", "-ltnH", check=False).stdout:
                break
            time.sleep(0.1)
        r = sh("ip", "netns", "exec", client_ns, "iperf3", "-J", "-c", addr, "-t", str(seconds),
               timeout=seconds + 60, check=False)
        doc = json.loads(r.stdout)
        if "error" in doc:
            raise RuntimeError("iperf3 %s -> %s: %s" % (client_ns, addr, doc["error"]))
        return doc["end"]["sum_received"]["bits_per_second"]
    finally:
        if srv.poll() is None:
            srv.kill()
        srv.wait(timeout=10)


def run(run_, seconds, reps, log):
    lab = DataLab(run_)
    rows = []
    bridge_nf = None
    controls = []
    control_reps = max(1, min(reps, 3))
    try:
        lab.up()
        addrs = lab.apply()
        hand = lab.hand_vxlan()
        for c in ("v1", "t1", "m3"):        # first packets (ARP, tinc's key exchange) before any timing
            target = {"v1": addrs["v2"], "t1": addrs["t2"], "m3": hand}[c]
            for _n in range(40):
                if sh("ip", "netns", "exec", lab.cns(c), "ping", "-c", "1", "-W", "1", target, check=False).returncode == 0:
                    break
            else:
                raise RuntimeError("%s does not reach %s before the measurement" % (c, target))
        paths = {
            "underlay": (lab.hns(1), lab.hns(2), "192.0.2.2"),
            "netstitch_vxlan": (lab.cns("v1"), lab.cns("v2"), addrs["v2"]),
            "hand_vxlan": (lab.cns("m3"), lab.cns("m4"), hand),
            "netstitch_tinc": (lab.cns("t1"), lab.cns("t2"), addrs["t2"]),
        }
        for r in range(reps):
            row = {}
            for name, (cl, sv, addr) in paths.items():
                labkit.settle(max_wait=5)
                row[name] = iperf(cl, sv, addr, seconds)
            row["vxlan_over_underlay"] = row["netstitch_vxlan"] / row["underlay"]
            row["vxlan_over_hand"] = row["netstitch_vxlan"] / row["hand_vxlan"]
            row["hand_over_underlay"] = row["hand_vxlan"] / row["underlay"]
            row["tinc_over_underlay"] = row["netstitch_tinc"] / row["underlay"]
            log("  round %d: underlay %.2f, netstitch vxlan %.2f, hand vxlan %.2f, netstitch tinc %.3f Gbit/s"
                % (r, row["underlay"] / 1e9, row["netstitch_vxlan"] / 1e9, row["hand_vxlan"] / 1e9,
                   row["netstitch_tinc"] / 1e9))
            rows.append(row)
        # controls: netstitch's nftables table taken apart step by step (on these lab hosts only), the netstitch
        # VXLAN measured beside the hand-made one again at each step: tells the devices' share of a gap from the
        # firewall's
        bridge_nf = sh("ip", "netns", "exec", lab.hns(1), "cat", "/proc/sys/net/bridge/bridge-nf-call-iptables",
                       check=False).stdout.strip() or None

        def control(key, label):
            """netstitch's VXLAN measured beside the hand-made one, as the hosts stand now."""
            got = []
            for _round in range(control_reps):
                pair = {}
                for name in ("netstitch_vxlan", "hand_vxlan"):
                    cl, sv, addr = paths[name]
                    labkit.settle(max_wait=5)
                    pair[name] = iperf(cl, sv, addr, seconds)
                got.append(pair)
            c = {"key": key, "label": label, "netstitch_vxlan": median([g["netstitch_vxlan"] for g in got]),
                 "hand_vxlan": median([g["hand_vxlan"] for g in got]),
                 "ratio": median([g["netstitch_vxlan"] / g["hand_vxlan"] for g in got]), "rounds": got}
            controls.append(c)
            log("  control %s: netstitch vxlan %.2f, hand vxlan %.2f Gbit/s, ratio %.2f"
                % (label, c["netstitch_vxlan"] / 1e9, c["hand_vxlan"] / 1e9, c["ratio"]))

        # first: netstitch beside a hand-made VXLAN that also gives its containers a way out (one masquerade rule in
        # a table of its own on h3 and h4): any outbound NAT turns connection tracking on in the host, and with
        # br_netfilter every bridged frame then passes the inet prerouting path; that is the fair "same shape"
        hand_nat = ("table ip handnat {\n chain post {\n  type nat hook postrouting priority srcnat; policy accept;\n"
                    "  ip saddr 10.93.0.0/24 ip daddr != 10.93.0.0/24 masquerade\n }\n}\n")
        for i in (3, 4):
            sh("ip", "netns", "exec", lab.hns(i), "nft", "-f", "-", input=hand_nat)
        control("hand_nat", "beside a hand-made VXLAN with one outbound masquerade rule")
        for i in (3, 4):
            sh("ip", "netns", "exec", lab.hns(i), "nft", "delete", "table", "ip", "handnat", check=False)
        steps = [("no_nat", "without the NAT chain", [["delete", "chain", "inet", "netstitch", "postrouting"]]),
                 ("no_forward", "without the NAT and forward chains (table empty)",
                  [["delete", "chain", "inet", "netstitch", "forward"]]),
                 ("no_table", "without netstitch's tables", [["delete", "table", "inet", "netstitch"],
                                                             ["delete", "table", "bridge", "netstitch"]])]
        for key, label, cmds in steps:
            for i in (1, 2):
                for c in cmds:
                    sh("ip", "netns", "exec", lab.hns(i), "nft", *c, check=False)
            control(key, label)
    finally:
        lab.down()
        for ns in labkit.netns_list():
            if ns.startswith(lab.name + "-"):
                sh("ip", "netns", "del", ns, check=False)
    summary = {k: median([r[k] for r in rows]) for k in rows[0]}
    summary["bridge_nf_call_iptables"] = bridge_nf
    summary["controls"] = [{k: v for k, v in c.items() if k != "rounds"} for c in controls]
    summary["control_reps"] = control_reps
    summary["seconds"] = seconds
    summary["reps"] = reps
    return {"rows": rows, "summary": summary}
