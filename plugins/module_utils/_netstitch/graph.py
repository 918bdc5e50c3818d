# Copyright: netstitch developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A picture of a topology: Graphviz DOT from the validated model (pure), rendered to SVG or PNG by Graphviz's dot.

    text = to_dot(topo, report=None)      topo: validate.load(...); report: probe outcomes (see colours())

What is drawn:
- each host as a box (cluster) with its underlay address; inside it, one bridge per network the host carries (with
  the host's pool: its overlay slice, or the subnet) and the host's containers (namespace or Docker);
- each network once, outside the hosts, with its subnet, gateway and kind (host-local, or the overlay's type, VNI,
  port); every host's bridge of it is joined to it (an overlay spans the hosts; a host-local network is one segment
  per host, drawn dotted);
- each container interface as an edge container -- bridge, labelled with its name and fixed address;
- published ports as edges from the host (its underlay address) to the container, "8080->80/tcp", ranges merged;
- links as dashed arrows client -> server (or -> the network, for a link to a whole network), with name, protocol
  and ports.

Coloured by a connectivity report (the probe module's outcomes), each container interface edge and each link is
green when something was reached through it as expected, grey when only expected blocks were checked (blocked),
and red when an outcome differed from the expectation (mismatched); a container with a mismatch is red too.
"""

import json
import shutil
import subprocess

GREEN, GREY, RED, BLACK = "#2e7d32", "#9e9e9e", "#c62828", "#37474f"
FORMATS = ("dot", "svg", "png")


def _q(text):
    """A DOT double-quoted string (labels use \\n for line breaks, given as a real newline here)."""
    return '"%s"' % str(text).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _attrs(**kw):
    items = ["%s=%s" % (k, _q(v)) for k, v in sorted(kw.items()) if v is not None]
    return " [%s]" % ", ".join(items) if items else ""


def node_id(kind, *parts):
    """Stable node names: host:H, br:H:N, net:N, ct:C, underlay."""
    return ":".join((kind,) + tuple(parts))


def _port_ranges(pubs):
    """Published ports grouped into ranges: [(host_ip, proto, host_first, host_last, cont_first)]."""
    out = []
    for p in sorted(pubs, key=lambda p: (str(p.host_ip or ""), p.protocol, p.host_port)):
        last = out[-1] if out else None
        if (last and last[0] == p.host_ip and last[1] == p.protocol and last[3] + 1 == p.host_port
                and last[4] + (p.host_port - last[2]) == p.container_port):
            out[-1] = (last[0], last[1], last[2], p.host_port, last[4])
        else:
            out.append((p.host_ip, p.protocol, p.host_port, p.host_port, p.container_port))
    return out


def _range_label(host_ip, proto, first, last, cfirst):
    hp = str(first) if first == last else "%d-%d" % (first, last)
    cp = str(cfirst) if first == last else "%d-%d" % (cfirst, cfirst + last - first)
    return "%s%s->%s/%s" % ("%s:" % host_ip if host_ip else "", hp, cp, proto)


def _network_label(net):
    lines = [net.name, str(net.subnet6 if net.v6only else net.subnet)]
    ov = net.overlay
    if net.macvlan is not None:
        lines.append("macvlan on %s (physical segment)" % net.macvlan.parent)
    elif ov is None:
        lines.append("host-local")
    elif ov.type == "vxlan":
        lines.append("vxlan VNI %s%s" % (ov.vni, " port %s" % ov.port if ov.port else ""))
    elif ov.type == "tinc":
        lines.append("tinc (encrypted)%s" % (" port %s" % ov.port if ov.port else ""))
    else:
        lines.append("routed (host-gw)")
    flags = [f for f, on in (("internal", net.internal), ("isolated", net.isolated),
                             ("no masquerade", not net.masquerade and not net.internal)) if on]
    if net.docker is not None:
        flags.append("docker: %s" % net.docker.name)
    if net.inbound is not None:
        flags.append("routed gateway (%d allowed)" % len(net.inbound))
    if getattr(net, "tenant", None):
        flags.append("tenant %s (gateway in its router)" % net.tenant)
    if net.attach:
        flags.append("attached: %s" % ", ".join("%s@%s" % (a.interface, a.host) for a in net.attach))
    if flags:
        lines.append(", ".join(flags))
    if net.gateway is not None or net.v6only:
        lines.append("gw %s, mtu %s" % (net.gateway or net.gateway6, net.mtu))
    else:
        lines.append("mtu %s" % net.mtu)
    return "\n".join(lines)


def _outcomes(report):
    """The outcome entries of a report: a probe result ({"outcomes": [...]}), a list of them, a mapping
    {host: probe result}, or a plain list of outcomes."""
    if report is None:
        return []
    if isinstance(report, dict):
        if isinstance(report.get("outcomes"), list):
            return list(report["outcomes"])
        out = []
        for v in report.values():
            out.extend(_outcomes(v) if isinstance(v, (dict, list)) else [])
        return out
    if isinstance(report, list):
        out = []
        for item in report:
            if isinstance(item, dict) and "outcomes" in item:
                out.extend(_outcomes(item))
            elif isinstance(item, dict) and "expect" in item:
                out.append(item)
        return out
    return []


def colours(topo, report):
    """From probe outcomes: {("itf", container, network) | ("link", index) | ("ct", container): state}, state one of
    reached / blocked / mismatched (a mismatch wins over reached, reached over blocked)."""
    rank = {"blocked": 0, "reached": 1, "mismatched": 2}
    state = {}

    def mark(key, value):
        if rank[value] > rank.get(state.get(key), -1):
            state[key] = value

    for o in _outcomes(report):
        cont = o.get("from_container")
        if cont not in topo.containers or "ok" not in o:
            continue
        if not o.get("ok"):
            value = "mismatched"
        elif o.get("reached") if "reached" in o else o.get("expect"):
            value = "reached"
        else:
            value = "blocked"
        mark(("ct", cont), value)
        net = o.get("network")
        if net is not None:
            mark(("itf", cont, net), value)
        if o.get("kind") == "link":
            for ln in topo.links:
                if ln.client == cont and (net is None or ln.network == net):
                    mark(("link", ln.index), value)
    return state


def _colour(state):
    return {"reached": GREEN, "blocked": GREY, "mismatched": RED}.get(state)


def to_dot(topo, report=None, title=None):
    """The DOT text of a validated topology (model.Topology), optionally coloured by probe outcomes."""
    st = colours(topo, report)
    out = ["digraph netstitch {",
           "  graph%s;" % _attrs(rankdir="LR", compound="true", fontname="Helvetica", fontsize="11",
                                 label=title, labelloc="t", nodesep="0.3", ranksep="0.9"),
           "  node%s;" % _attrs(fontname="Helvetica", fontsize="10"),
           "  edge%s;" % _attrs(fontname="Helvetica", fontsize="9", color=BLACK)]
    by_host = {}
    for c in topo.containers.values():
        by_host.setdefault(c.host, []).append(c)
    for i, (hname, host) in enumerate(topo.hosts.items()):
        out.append("  subgraph %s {" % _q("cluster_%d" % i))
        out.append("    graph%s;" % _attrs(label="host %s" % hname, style="rounded", color="#546e7a"))
        under = str(host.underlay) if host.underlay is not None else "underlay address not given"
        out.append("    %s%s;" % (_q(node_id("host", hname)),
                                  _attrs(label="%s\n%s\nmtu %s" % (hname, under, host.underlay_mtu), shape="box3d",
                                         style="filled", fillcolor="#eceff1")))
        for net in topo.networks.values():
            if hname not in net.hosts:
                continue
            pool = net.pool(hname) if (net.overlay is None or hname in net.overlay.slices) else net.subnet
            if net.v6only:      # an IPv6-only network: its IPv6 pool (the host's slice of an overlay)
                pool = net.pool6(hname) if (net.overlay is None or hname in net.overlay.slices6) else net.subnet6
            # a macvlan network has no bridge: its node is the host's parent interface (and its range, if any)
            label = "%s\n%s" % (net.bridge, pool) if net.macvlan is None else "%s (macvlan parent)%s" % (
                net.macvlan.parent, "\n%s" % pool if pool is not None else "")
            out.append("    %s%s;" % (_q(node_id("br", hname, net.name)),
                                      _attrs(label=label, shape="box", style="filled", fillcolor="#e3f2fd")))
        for c in sorted(by_host.get(hname, []), key=lambda c: c.name):
            kind = "docker %s" % c.docker if c.kind == "docker" else "netns %s" % (c.netns or c.name)
            cstate = st.get(("ct", c.name))
            out.append("    %s%s;" % (_q(node_id("ct", c.name)),
                                      _attrs(label="%s\n%s" % (c.name, kind), shape="component", style="filled",
                                             fillcolor="#ffebee" if cstate == "mismatched" else "#fffde7",
                                             color=_colour(cstate))))
        out.append("  }")
    unders = sorted({str(h.underlay.network) for h in topo.hosts.values() if h.underlay is not None})
    if unders:
        attrs = _attrs(label="underlay\n%s" % "\n".join(unders), shape="cylinder", style="filled",
                       fillcolor="#eceff1")
        out.append("  %s%s;" % (_q(node_id("underlay")), attrs))
        for hname, host in topo.hosts.items():
            if host.underlay is not None:
                out.append("  %s -> %s%s;" % (_q(node_id("host", hname)), _q(node_id("underlay")),
                                              _attrs(dir="none", color="#90a4ae", label=str(host.underlay.ip))))
    for net in topo.networks.values():
        out.append("  %s%s;" % (_q(node_id("net", net.name)),
                                _attrs(label=_network_label(net), shape="hexagon" if net.overlay else "ellipse",
                                       style="filled", fillcolor="#e8f5e9" if net.overlay else "#f5f5f5")))
        for hname in [h for h in topo.hosts if h in net.hosts]:
            style = "solid" if net.overlay is not None else "dotted"
            label = net.overlay.device if net.overlay is not None and net.overlay.device else None
            out.append("  %s -> %s%s;" % (_q(node_id("br", hname, net.name)), _q(node_id("net", net.name)),
                                          _attrs(dir="none", style=style, penwidth="2" if net.overlay else "1",
                                                 label=label)))
    for c in sorted(topo.containers.values(), key=lambda c: c.name):
        for itf in c.interfaces:
            state = st.get(("itf", c.name, itf.network))
            label = itf.name + (" %s" % itf.ip if itf.ip is not None else "")
            out.append("  %s -> %s%s;" % (_q(node_id("ct", c.name)), _q(node_id("br", c.host, itf.network)),
                                          _attrs(dir="none", label=label, color=_colour(state),
                                                 penwidth="2" if state else None)))
        for host_ip, proto, first, last, cfirst in _port_ranges(c.publish):
            out.append("  %s -> %s%s;" % (_q(node_id("host", c.host)), _q(node_id("ct", c.name)),
                                          _attrs(label=_range_label(host_ip, proto, first, last, cfirst),
                                                 color="#ef6c00", fontcolor="#ef6c00", arrowhead="vee")))
    # a link between two containers that share several networks is one link per network: drawn once
    groups = {}
    for ln in topo.links:
        target = node_id("ct", ln.server) if ln.server else node_id("net", ln.network)
        groups.setdefault((ln.client, target, ln.protocol, tuple(ln.ports)), []).append(ln)
    for (client, target, protocol, ports), lns in groups.items():
        rank = {"blocked": 0, "reached": 1, "mismatched": 2}
        states = [st[("link", ln.index)] for ln in lns if ("link", ln.index) in st]
        state = max(states, key=rank.get) if states else None
        name = next((ln.name for ln in lns if ln.name), None)
        plist = ",".join(str(a) if a == b else "%d-%d" % (a, b) for a, b in ports) or "all ports"
        nets = sorted({ln.network for ln in lns}) if target.startswith("ct:") else []
        label = "%s%s %s%s" % ("%s: " % name if name else "", protocol, plist,
                               " (on %s)" % ", ".join(nets) if nets else "")
        out.append("  %s -> %s%s;" % (_q(node_id("ct", client)), _q(target),
                                      _attrs(style="dashed", xlabel=label, color=_colour(state) or "#6a1b9a",
                                             fontcolor="#6a1b9a", constraint="false")))
    out.append("}")
    return "\n".join(out) + "\n"


def render(dot_text, fmt):
    """DOT text -> bytes in ``fmt`` (dot, svg or png); svg and png need Graphviz's dot program."""
    if fmt == "dot":
        return dot_text.encode("utf-8")
    if fmt not in FORMATS:
        raise ValueError("unknown format %r (one of %s)" % (fmt, ", ".join(FORMATS)))
    exe = shutil.which("dot")
    if exe is None:
        raise OSError("rendering %s needs Graphviz's dot program (Debian: apt-get install graphviz)" % fmt)
    r = subprocess.run([exe, "-T" + fmt], input=dot_text.encode("utf-8"), capture_output=True, timeout=120,
                       check=False)
    if r.returncode != 0:
        raise OSError("dot -T%s failed: %s" % (fmt, r.stderr.decode("utf-8", "replace").strip()))
    return r.stdout


def load_report(path):
    with open(path) as f:
        return json.load(f)
