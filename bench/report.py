"""Render benchmark results (bench/bench.py's JSON) as docs/benchmarks.md with its plot docs/benchmarks.png, and
keep the raw results beside them as docs/benchmarks.json.

    report.py RESULTS.json [--docs DIR] [--before BEFORE.json]

``--before`` (default docs/benchmarks-before.json when it exists): the same apply benchmark run on the code before
the optimisations, for the before/after table.
"""

import argparse
import json
import math
import os
import shutil

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(HERE)


def s(x, digits=2):
    """Seconds, readable."""
    if x is None:
        return "-"
    if x < 0.1:
        return "%.0f ms" % (x * 1000)
    if x < 10:
        return ("%%.%df s" % digits) % x
    return "%.1f s" % x


def ms(x):
    return "-" if x is None else ("%.1f ms" % (x * 1000) if x < 0.1 else "%.0f ms" % (x * 1000))


def ratio(x):
    return "-" if x is None else ("%.1f×" % x if x >= 1.95 else "%.2f×" % x)


def gbit(x):
    return "-" if x is None else "%.2f Gbit/s" % (x / 1e9)


def slope(points):
    """Least-squares exponent b of t = a * N^b over (N, t) points."""
    pts = [(math.log(n), math.log(t)) for n, t in points if t]
    if len(pts) < 2:
        return None
    mx = sum(p[0] for p in pts) / len(pts)
    my = sum(p[1] for p in pts) / len(pts)
    den = sum((p[0] - mx) ** 2 for p in pts)
    return sum((p[0] - mx) * (p[1] - my) for p in pts) / den if den else None


def plot(res, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    ap = res.get("apply") or {}
    sizes = sorted(int(n) for n in ap)
    summ = {n: ap[str(n)]["summary"] for n in sizes}
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(12, 4.8))

    def line(ax, key, label, style, src=summ, xs=sizes):
        pts = [(n, src[n].get(key)) for n in xs if src[n].get(key)]
        if pts:
            ax.plot([p[0] for p in pts], [p[1] for p in pts], style, label=label)
    line(a1, "cold", "netstitch cold apply (engine.apply)", "o-")
    line(a1, "script", "iproute2 script (LAB.md recipe)", "s--")
    line(a1, "floor", "ip -batch floor (2 processes)", "^:")
    an = res.get("ansible") or {}
    if an:
        xs = sorted(int(n) for n in an)
        a1.plot(xs, [an[str(n)]["summary"]["cold"] for n in xs], "d-.", label="ansible-playbook (whole run)")
    dk = (res.get("docker") or {}).get("summary") or {}
    if dk.get("cli_per") and sizes:
        a1.plot(sizes, [dk["cli_per"] * n for n in sizes], color="grey", linestyle="-", alpha=0.6,
                label="docker network connect, %d ms/container x N (measured N<=%d, extrapolated)"
                % (round(dk["cli_per"] * 1000), max(dk["sizes"])))
    a1.set_xscale("log")
    a1.set_yscale("log")
    a1.set_xlabel("container endpoints on one host (N)")
    a1.set_ylabel("seconds")
    a1.set_title("Cold apply")
    a1.grid(True, which="both", alpha=0.3)
    a1.legend(fontsize=7)
    line(a2, "noop", "no-op re-apply (engine.apply)", "o-")
    line(a2, "prune", "prune of all N (engine.apply)", "v-")
    line(a2, "ip_prune_each", "ip -batch prune, one link del each", "s--")
    line(a2, "ip_prune_group", "ip -batch prune, one link group", "^:")
    a2.axhline(1.0, color="red", linewidth=0.8, alpha=0.5)
    a2.text(sizes[0] if sizes else 10, 1.05, "1 s (no-op goal at N=1,000)", color="red", fontsize=7)
    a2.set_xscale("log")
    a2.set_yscale("log")
    a2.set_xlabel("container endpoints on one host (N)")
    a2.set_ylabel("seconds")
    a2.set_title("No-op re-apply and prune")
    a2.grid(True, which="both", alpha=0.3)
    a2.legend(fontsize=7)
    reps = summ[sizes[-1]]["reps"] if sizes else "?"
    fig.suptitle("netstitch on %s, %s CPUs (medians of %s runs)" % (res["machine"]["kernel"], res["machine"]["cpus"], reps),
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def render(res, before=None):
    m = res["machine"]
    ap = res.get("apply") or {}
    sizes = sorted(int(n) for n in ap)
    summ = {n: ap[str(n)]["summary"] for n in sizes}
    an = {int(n): v["summary"] for n, v in (res.get("ansible") or {}).items()}
    dk = res.get("docker") or {}
    dks = dk.get("summary") or {}
    pl = res.get("planner")
    dp = (res.get("dataplane") or {}).get("summary")
    big = sizes[-1] if sizes else None
    L = []
    w = L.append
    w("# Benchmarks")
    w("")
    w("Figures measured on one machine by one command, on the code of commit %s:" % res.get("commit", "?"))
    w("")
    w("```")
    w("make bench            # = bash bench/run.sh (as root): about %d minutes; rewrites this page" % max(1, round(res.get("seconds", 0) / 60.0)))
    w("bash bench/run.sh --smoke   # under a minute: 10 and 100 endpoints, asserts no-op = zero writes (also run by scripts/test.sh)")
    w("```")
    w("")
    if res.get("errors"):
        w("**Sections that failed in this run** (their figures are missing below): %s." % ", ".join(sorted(res["errors"])))
        w("")
    w("Raw results: [benchmarks.json](benchmarks.json); the code: `bench/` (one module per section, each says what it "
      "measures). Every namespace and Docker object the run makes carries a unique prefix and is removed at the end, "
      "also on failure; nothing in the machine's own namespace is changed.")
    w("")
    w("**Machine.** %s; kernel %s; %s CPUs; %s; Python %s; %s; Docker %s; %s. Run started %s, %.0f s in all. "
      "Load average %.2f at the start, %.2f at the end." % (
          m.get("cpu"), m.get("kernel"), m.get("cpus"), m.get("iproute2"), m.get("python"), m.get("iperf3"),
          m.get("docker"), (m.get("ansible") or "").replace("[core ", "ansible-core ").replace("]", ""),
          res.get("started"), res.get("seconds", 0), m.get("loadavg_start", 0), m.get("loadavg_end", 0)))
    w("")
    w("**Noise.** This is a shared 2-CPU virtual machine (other jobs were running): single timings vary by 2-3× "
      "from one run to the next. So every figure is the median of several runs (repetitions below), each run starts "
      "when the machine has settled (under half a CPU busy, waited for at most 8 s), the tools compared are measured "
      "one after the other within each repetition in a rotating order, and every ratio is computed within a "
      "repetition, then the median taken.")
    w("")
    # -- goals -------------------------------------------------------------------------------------------------
    w("## Goals")
    w("")
    w("| goal (../shared/GUIDE.md, the issue) | measured | |")
    w("| --- | --- | --- |")
    if big:
        b = summ[big]
        verdict = "met, stretch met" if b["script_over_cold"] >= 4 else (
            "met" if b["script_over_cold"] >= 2 else "missed")
        w("| cold apply of %s endpoints: at most ½ of the iproute2 script's time (stretch ¼) | %s vs %s: **%s faster** "
          "| %s |" % (format(big, ","), s(b["cold"]), s(b["script"]), ratio(b["script_over_cold"]), verdict))
        w("| cold apply within 2× of the ip -batch floor | %s vs %s: **%s** of the floor | %s |" % (
            s(b["cold"]), s(b["floor"]), ratio(b["cold_over_floor"]), "met" if b["cold_over_floor"] <= 2 else "missed"))
        if dks.get("cli_per"):
            per = b["cold"] / big
            w("| 10× faster than `docker network connect` per container | %s vs %s per container (CLI; SDK %s): "
              "**%s** | %s |" % (ms(per), ms(dks["cli_per"]), ms(dks["sdk_per"]), ratio(dks["sdk_per"] / per),
                                 "met" if dks["sdk_per"] / per >= 10 else "missed"))
        w("| no-op re-apply of %s under 1 s inside the module (2 s at most), zero kernel writes | %s (engine "
          "timing.total), writes %s in every run | %s |"
          % (format(big, ","), s(b["noop"]), "all 0" if b["noop_writes_max"] == 0 else "NOT 0",
             "met" if b["noop"] < 1 and b["noop_writes_max"] == 0 else "missed"))
    if dp:
        notable = [c["ratio"] for c in dp.get("controls") or [] if c["key"] == "no_table"]
        with_nat = [c["ratio"] for c in dp.get("controls") or [] if c["key"] == "hand_nat"]
        w("| overlay throughput at least 0.95× a hand-made VXLAN of the same shape | %s of the hand-made one%s | %s |"
          % (ratio(dp["vxlan_over_hand"]),
             (" (%s with netstitch's nftables table removed" % ratio(notable[0]) if notable else " (") +
             ("; %s of a hand-made one that also has an outbound masquerade rule)" % ratio(with_nat[0])
              if with_nat else ")"),
             "met" if dp["vxlan_over_hand"] >= 0.95 else
             ("missed against a hand-made VXLAN without NAT; %s against one with a way out: see Data plane"
              % ("met" if with_nat and with_nat[0] >= 0.95 else "missed") if with_nat else "missed: see Data plane")))
    pr = res.get("ports")
    if pr:
        m = pr["median"]
        w("| %s published ports in one transaction under 1 s; changing one touches one element | %s for the "
          "transaction (engine cold apply of the host %s); one change: one map key (%d elements: old value out, new "
          "in) in %s | %s |" % (format(pr["ports"], ","), ms(m["add_all"]), s(m["engine_cold"]),
                                m["change_one_elements"], ms(m["change_one"]),
                                "met" if m["add_all"] < 1 and m["change_one_elements"] <= 2 else "missed"))
    else:
        w("| 5,000 published ports in one transaction under 1 s; changing one touches one element | not measured "
          "in this run | |")
    w("")
    # -- apply -------------------------------------------------------------------------------------------------
    if sizes:
        w("## Cold apply, no-op re-apply, prune: N endpoints on one host")
        w("")
        w("N single-interface containers on one host, split over bridges of 250 ports (host-local networks, "
          "masquerade on, as by default). The containers' network namespaces exist beforehand (containers exist "
          "before their networking; netstitch uses an existing named namespace as it is and never removes one it "
          "did not create). Medians of %d repetitions." % summ[big]["reps"])
        w("")
        w("| N | netstitch cold (engine.apply) | same, whole process | ansible-playbook cold (module) | iproute2 "
          "script | ip -batch floor | docker connect × N (per container) | script ÷ netstitch | netstitch ÷ floor "
          "| no-op (process) | ansible no-op (module) | prune | ip prune: one by one / one group |")
        w("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        for n in sizes:
            b = summ[n]
            a = an.get(n)
            dock = "%s (%s)" % (s(dks["cli_per"] * n), ms(dks["cli_per"])) if dks.get("cli_per") else "-"
            if dks.get("sizes") and n > max(dks["sizes"]):
                dock += " extrapolated"
            w("| %s | **%s** | %s | %s | %s | %s | %s | %s | %s | **%s** (%s) | %s | %s | %s / %s |" % (
                format(n, ","), s(b["cold"]), s(b["cold_process"]),
                "%s (%s)" % (s(a["cold"]), s(a["cold_module"])) if a else "-",
                s(b["script"]), s(b["floor"]), dock, ratio(b["script_over_cold"]), ratio(b["cold_over_floor"]),
                s(b["noop"]), s(b["noop_process"]), "%s (%s)" % (s(a["noop"]), s(a["noop_module"])) if a else "-",
                s(b["prune"]), s(b.get("ip_prune_each")), s(b.get("ip_prune_group"))))
        w("")
        b = summ[big]
        w("What each column measures:")
        w("")
        w("- **netstitch cold**: `engine.apply` of the compiled host spec in a fresh Python process inside the host's "
          "namespace, exactly what the apply module runs on a managed host; the engine's own `timing.total`: lock, "
          "read of the host and of every container namespace, IPAM, plan, %s netlink writes, one nftables "
          "transaction, state file, and the verify re-read of everything touched. *Whole process* adds the "
          "interpreter start, imports and reading the spec file." % format(b["cold_writes"]["netlink"], ","))
        w("- **ansible-playbook**: wall time of `ansible-playbook` running the fabric role (validate on the "
          "controller, one apply module call) against the lab host through an interpreter wrapper that enters its "
          "namespace; in brackets the apply module's own `timing.total`.")
        w("- **iproute2 script**: ../shared/LAB.md's best iproute2 recipe doing the same kernel work: one `ip -batch` "
          "for the host side (bridges with MAC, MTU, alias, address; per container a veth with the peer made "
          "straight in the container's namespace with its MAC and MTU, enslaved, aliased, up), then one "
          "`ip -n C -batch` per container (address, up, default route). %s operations at N=%s." % (
              format(b["ops"], ","), format(big, ",")))
        w("- **ip -batch floor**: the same %s netlink operations in just two `ip -batch` processes: the host side as "
          "above and all container-side operations in one batch, their container ends all in one scratch namespace. "
          "It is the kernel's own share plus two process starts; anything that configures N separate namespaces must "
          "enter each of them and cannot go below it." % format(b["ops"], ","))
        w("- **docker connect**: `docker network connect` of running containers to a user-defined bridge network, "
          "one by one (section below); N × the per-container median.")
        w("- **no-op**: the same apply again on the unchanged host (after the machine settled): engine `timing.total`; "
          "every no-op run is asserted to report changed=false, no actions and zero writes counted by the drivers "
          "(netlink, nft, files, tinc, iptables, docker).")
        w("- **prune**: applying a topology without these containers: every veth and bridge netstitch made is removed "
          "(the namespaces it did not create stay); asserted: the host namespace holds nothing but `lo` and the "
          "containers' namespaces (every tenth checked) are empty again. *ip prune*: one `ip -batch` with one `link del` per veth and "
          "bridge; and one `ip -batch` putting them in a link group and removing the group (what netstitch does).")
        w("")
    # -- docker ------------------------------------------------------------------------------------------------
    if dk.get("rows"):
        w("## Docker, per container")
        w("")
        w("`docker network connect` of N running containers (a busybox-static image built locally; the containers "
          "start on a parking network, since a container in `none` mode cannot join another network) to a "
          "user-defined bridge network, one container at a time. N is bounded (Docker takes tens of ms per "
          "container); the per-container figure is what the table above multiplies by N.")
        w("")
        w("| N | CLI total | CLI per container | SDK (one process) total | SDK per container |")
        w("| ---: | ---: | ---: | ---: | ---: |")
        for r in dk["rows"]:
            w("| %d | %s | %s | %s | %s |" % (r["n"], s(r["cli"]), ms(r["cli_per"]), s(r["sdk"]), ms(r["sdk_per"])))
        w("")
        if big:
            per = summ[big]["cold"] / big
            w("netstitch at N=%s: %s per endpoint, **%s** faster than Docker's SDK and %s faster than its CLI per "
              "container." % (format(big, ","), ms(per), ratio(dks["sdk_per"] / per), ratio(dks["cli_per"] / per)))
            w("")
    elif dk.get("skipped"):
        w("## Docker, per container")
        w("")
        w("Not measured in this run: %s." % dk["skipped"])
        w("")
    # -- ansible -----------------------------------------------------------------------------------------------
    if an:
        w("## Through Ansible")
        w("")
        w("| N | ansible-playbook cold | apply module inside it | ansible-playbook no-op | apply module inside it |")
        w("| ---: | ---: | ---: | ---: | ---: |")
        for n in sorted(an):
            a = an[n]
            w("| %s | %s | %s | %s | %s |"
              % (format(n, ","), s(a["cold"]), s(a["cold_module"]), s(a["noop"]), s(a["noop_module"])))
        w("")
        ns_ = sorted(an)
        over = [an[n]["noop"] - an[n]["noop_module"] for n in ns_]
        w("The difference between a playbook and its module is Ansible itself: %s at N=%s, %s at N=%s (no-op runs), "
          "for the interpreter, the controller-side validation and compilation, and carrying the spec (every "
          "container of the host) as the module's argument and back; ../shared/GUIDE.md counts 0.3-0.8 s per task "
          "for the interpreter alone. netstitch makes one module call per host, whatever N." % (
              s(over[0]), format(ns_[0], ","), s(over[-1]), format(ns_[-1], ",")))
        w("")
    # -- scaling -----------------------------------------------------------------------------------------------
    if len(sizes) >= 2:
        w("## Scaling")
        w("")
        w("![cold apply, no-op and prune against N](benchmarks.png)")
        w("")
        hi = [n for n in sizes if n >= 100]
        sc = slope([(n, summ[n]["cold"]) for n in hi])
        sn = slope([(n, summ[n]["noop"]) for n in hi])
        sp = slope([(n, summ[n]["script"]) for n in hi])
        lo, hi_n = min(hi), max(hi)
        marg = (summ[hi_n]["cold"] - summ[lo]["cold"]) / (hi_n - lo)
        margn = (summ[hi_n]["noop"] - summ[lo]["noop"]) / (hi_n - lo)
        sf = slope([(n, summ[n]["floor"]) for n in hi])
        w("Fitted exponent b of time ∝ N^b for N from %d to %s: netstitch cold apply **%.2f**, no-op **%.2f**; the "
          "iproute2 script %.2f and the ip -batch floor %.2f. Each further endpoint costs netstitch about %s on a cold "
          "apply and %s on a no-op." % (lo, format(hi_n, ","), sc, sn, sp, sf, ms(marg), ms(margn)))
        w("")
        cpu = [n for n in hi if summ[n].get("cold_user") is not None]
        if len(cpu) >= 2:
            su = slope([(n, summ[n]["cold_user"]) for n in cpu])
            ss = slope([(n, summ[n]["cold_sys"]) for n in cpu])
            top = cpu[-1]
            w("Where the time goes (CPU time of the apply process, medians): at N=%s a cold apply spends %s in "
              "Python (netstitch's own work: read decoding, IPAM, plan, encoding, verify) and %s in the kernel "
              "working for it; a no-op %s and %s. From N=%d to %s the Python part grows with exponent %.2f "
              "and the kernel part with %.2f." % (
                  format(top, ","), s(summ[top]["cold_user"]), s(summ[top]["cold_sys"]), s(summ[top]["noop_user"]),
                  s(summ[top]["noop_sys"]), cpu[0], format(top, ","), su, ss))
            w("")
        verdict = ("linear or better" if sc <= 1.1 and sn <= 1.1 else
                   "somewhat worse than linear, and less so than the floor's: the extra growth is the kernel's "
                   "(a namespace's netlink work costs more when there are many namespaces and links; the floor, which "
                   "is nothing but that work, grows fastest)" if sf is not None and sc < sf else "worse than linear")
        w("**Growth: %s.** Below about 100 endpoints fixed costs (process, lock, nftables transaction, state file) "
          "dominate, hence the flat start of the curves." % verdict)
        w("")
    # -- planner -----------------------------------------------------------------------------------------------
    if pl:
        w("## Planner alone")
        w("")
        w("A topology of %s hosts × %d containers = %s containers: half of each host's containers on a VXLAN overlay "
          "spanning 20 hosts (%d overlays: every host has 19 peers and %d static FDB entries), half on a host-local "
          "network. No kernel involved; medians of 3 fresh processes." % (
              format(pl["hosts"], ","), pl["host_containers"], format(pl["containers"], ","), pl["networks"] - 1,
              pl["fdb_entries"]))
        w("")
        w("| step | time |")
        w("| --- | ---: |")
        w("| validate.load (JSON Schema + semantic checks, whole topology) | %s |" % s(pl["validate"]))
        w("| compile.host_specs (every host's spec) | %s |" % s(pl["compile"]))
        w("| engine.compute for one host (IPAM, desired state, plan of %d actions, nftables) | %s |" % (
            pl["actions"], ms(pl["plan_one_host"])))
        w("| total | **%s** |" % s(pl["total"]))
        w("")
        w("Peak memory: %.0f MB of Python allocations (tracemalloc, in a separate run) and %.0f MB peak resident "
          "size of the process (ru_maxrss, interpreter and libraries included)."
          % (pl["tracemalloc_peak_mb"], pl["maxrss_mb"]))
        w("")
    # -- data plane --------------------------------------------------------------------------------------------
    if dp:
        w("## Data plane")
        w("")
        w("iperf3 TCP, one stream, %d s, container to container across two lab hosts on a veth underlay (medians "
          "of %d interleaved rounds)%s:" % (dp["seconds"], dp["reps"],
                                            "; measured " + dp["measured"] if dp.get("measured") else ""))
        w("")
        w("| path | throughput | ÷ underlay |")
        w("| --- | ---: | ---: |")
        w("| underlay, host to host (no encapsulation) | %s | 1 |" % gbit(dp["underlay"]))
        w("| netstitch VXLAN overlay | %s | %s |" % (gbit(dp["netstitch_vxlan"]), ratio(dp["vxlan_over_underlay"])))
        w("| hand-made VXLAN of the same shape (`ip` by hand: bridge, veth, VXLAN without learning, static FDB, "
          "MTU 1450; no firewall) | %s | %s |" % (gbit(dp["hand_vxlan"]), ratio(dp["hand_over_underlay"])))
        w("| netstitch tinc overlay (encrypted, user space) | %s | %s |"
          % (gbit(dp["netstitch_tinc"]), ratio(dp["tinc_over_underlay"])))
        w("")
        w("netstitch VXLAN ÷ hand-made VXLAN: **%s** (median of the per-round ratios)." % ratio(dp["vxlan_over_hand"]))
        w("")
        if dp.get("controls"):
            w("Controls, in the same run: netstitch's nftables table on the two hosts taken apart step by step, the "
              "netstitch VXLAN measured beside the hand-made one again at each step (medians of %d rounds):"
              % dp["control_reps"])
            w("")
            w("| netstitch's firewall on both hosts (first row: the hand-made hosts get an outbound masquerade "
              "rule, then lose it again) | netstitch VXLAN | hand-made VXLAN | ratio |")
            w("| --- | ---: | ---: | ---: |")
            w("| complete (as applied) | %s | %s | %s |"
              % (gbit(dp["netstitch_vxlan"]), gbit(dp["hand_vxlan"]), ratio(dp["vxlan_over_hand"])))
            for c in dp["controls"]:
                w("| %s | %s | %s | %s |" % (c["label"], gbit(c["netstitch_vxlan"]), gbit(c["hand_vxlan"]),
                                             ratio(c["ratio"])))
            w("")
        w("The overlay devices netstitch builds are those of the hand-made one (same kinds, MTU, static FDB, no "
          "learning); what differs is netstitch's firewall on the hosts. On this machine "
          "`net.bridge.bridge-nf-call-iptables` is %s, so every bridged frame of the overlay also passes the inet "
          "hooks: netstitch's forward chain (isolation between networks) and, because that chain and the NAT chain "
          "use connection tracking, conntrack, on both hosts. The controls show how much of the gap each part "
          "takes; single rounds vary by about ±10%% on this machine, so differences below about 0.1 are noise. "
          "(During development, exempting the tunnel's UDP packets and the frames within a network from "
          "conntrack was tried in the same lab and gained nothing measurable, so it was not kept: once connection "
          "tracking is on in a host, br_netfilter sends every bridged frame through the inet prerouting path, "
          "tracked or not. A lab run of variants, 6 interleaved rounds: no table 1.00, a forward chain without "
          "conntrack 0.94, conntrack on by a NAT chain alone 0.88, netstitch's whole table 0.87.) So the floor of "
          "an overlay whose containers have a way out (any outbound NAT: netstitch's, Docker's, a hand-made one) "
          "on a host with br_netfilter is what the row \"beside a hand-made VXLAN with one outbound masquerade rule\" shows. "
          "flannel's published ratio for comparison: 0.29 of host to host (../shared/GUIDE.md); tinc, in user "
          "space with encryption, reaches %s of the underlay here."
          % (dp.get("bridge_nf_call_iptables"), ratio(dp["tinc_over_underlay"])))
        w("")
    # -- published ports ---------------------------------------------------------------------------------------
    w("## Published ports")
    w("")
    pr = res.get("ports")
    if not pr:
        w("Not measured in this run (`bench/bench.py --sections ports`).")
        w("")
    else:
        m = pr["median"]
        w("%s published ports of 5 containers on one host (every host address, tcp), medians of %d repetitions "
          "(`bench/b_ports.py`)%s:" % (format(pr["ports"], ","), len(pr["rows"]),
                                       "; measured " + pr["measured"] if pr.get("measured") else ""))
        w("")
        w("| what | time | in the transaction |")
        w("| --- | ---: | --- |")
        w("| all %s ports added to netstitch's table: **one** nftables transaction (Nft.apply) | **%s** | %d commands, "
          "%s map elements (address map + port map) |" % (format(pr["ports"], ","), ms(m["add_all"]),
                                                          m["add_all_commands"], format(m["add_all_elements"], ",")))
        w("| one port's container port changed | **%s** | %d commands, %d elements: %s |" % (
            ms(m["change_one"]), m["change_one_commands"], m["change_one_elements"],
            "; ".join(pr["change_one_texts"])))
        w("| reading the table back and diffing it (a no-op finds nothing) | %s + %s | - |" % (
            ms(m["read"]), ms(m["noop_diff"])))
        w("| engine.apply, cold: the host, 5 containers and the %s ports | %s | one transaction |" % (
            format(pr["ports"], ","), s(m["engine_cold"])))
        w("| engine.apply, no-op (asserted: zero writes) | %s (read %s) | none |" % (
            s(m["engine_noop"]), s(m["engine_noop_read"])))
        w("| engine.apply, one port changed (asserted: one nft write, no netlink write) | %s | one transaction |"
          % s(m["engine_change_one"]))
        w("")
        w("Published ports are elements of four nftables maps (address and port, for every host address and for one "
          "address), looked up by one DNAT rule per hook, so a change is an element change, never a rule rewrite. A "
          "changed mapping is one key of one map: its old value removed and its new value added in the same "
          "transaction. Most of a no-op's time at this size is reading the 10,000 elements back as JSON.")
        w("")
    # -- optimisations -----------------------------------------------------------------------------------------
    w("## Optimisations made for these figures")
    w("")
    if before and before.get("apply"):
        bs = {int(n): v["summary"] for n, v in before["apply"].items()}
        w("The same apply benchmark on the code before them (commit %s, %s; medians of %s runs there), beside this "
          "run:" % (before.get("commit", "?"), before.get("started", "?"), min(v["reps"] for v in bs.values())))
        w("")
        w("| N | cold before → now | no-op before → now | prune before → now |")
        w("| ---: | ---: | ---: | ---: |")
        for n in sorted(bs):
            if n in summ:
                w("| %s | %s → **%s** | %s → **%s** | %s → **%s** |" % (
                    format(n, ","), s(bs[n]["cold"]), s(summ[n]["cold"]), s(bs[n]["noop"]), s(summ[n]["noop"]),
                    s(bs[n]["prune"]), s(summ[n]["prune"])))
        w("")
    for line in OPTIMISATIONS:
        w("- " + line)
    w("")
    return "\n".join(L)


OPTIMISATIONS = [
    "**Netlink without pyroute2 objects** (`drivers/rtnl.py`): pyroute2 0.9's IPRoute costs about 1.5 ms per "
    "request (an asyncio loop turn each) and decodes every attribute of every dumped message; netstitch's netlink "
    "driver now speaks NETLINK_ROUTE itself: one raw socket per namespace (made by entering the namespace on the "
    "calling thread and coming straight back), dumps decoded into only the fields the planner uses (link dumps "
    "without counters), requests encoded as pyroute2 sends them (checked with strace), each acknowledged. Same "
    "design: one dump per kind per namespace, every write counted in `Netlink._write`.",
    "**Prune in one kernel batch**: removing a link waits for an RCU grace period (about 20 ms per veth on this "
    "machine, whatever the tool: see *ip prune, one by one*); a run of removals is now one `link_del_many` action: the "
    "links are put in a random link group, a dump checks no other link is in it, and the group is removed with one "
    "wait (falling back to one removal per link on any doubt).",
    "**engine.view** (the diff of the apply result) looked for each veth's container end in every namespace: "
    "O(N²), about 1 s at 1,000 endpoints; now one index.",
    "**HostState.save** rendered the whole state file (with the spec of every container) twice per run to see "
    "whether it changed; it now compares data and renders only to write.",
    "**compile.host_specs** sorted every container of the topology once per host: 37 s for the planner "
    "benchmark's 1,000 hosts × 50 containers (single run during development, `python bench/b_planner.py`), about "
    "0.5 s now (Planner alone). **validate** collected the hosts of all containers once per network: about 2.3 s "
    "→ 1.7 s there.",
]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("results")
    p.add_argument("--docs", default=os.path.join(TOP, "docs"))
    p.add_argument("--before", default=None)
    a = p.parse_args()
    with open(a.results) as f:
        res = json.load(f)
    before_path = a.before or os.path.join(a.docs, "benchmarks-before.json")
    before = None
    if os.path.exists(before_path):
        with open(before_path) as f:
            before = json.load(f)
    os.makedirs(a.docs, exist_ok=True)
    if res.get("apply"):
        plot(res, os.path.join(a.docs, "benchmarks.png"))
    with open(os.path.join(a.docs, "benchmarks.md"), "w") as f:
        f.write(render(res, before))
    if os.path.abspath(a.results) != os.path.abspath(os.path.join(a.docs, "benchmarks.json")):
        shutil.copy(a.results, os.path.join(a.docs, "benchmarks.json"))
    print("report: %s" % os.path.join(a.docs, "benchmarks.md"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
