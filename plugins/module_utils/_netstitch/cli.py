"""Command line face of the library (the `netstitch` command): validate, plan, apply, status, down, probe, watch,
boot without Ansible. The parser is here; the commands are in commands.py (exit status: 0 ok, 1 error, 2 differs).

    netstitch validate TOPOLOGY                  check a topology; every problem with its path; exit 1 if invalid
    netstitch plan TOPOLOGY [--host H]           what an apply would change on this host, grouped by kind
    netstitch apply TOPOLOGY --host H [--check]  reconcile the host this process runs in (--check: exit 2 if pending)
    netstitch status --host H                    what differs from the last applied topology (exit 2 on drift)
    netstitch down --host H [--check]            remove everything netstitch made on this host
    netstitch probe TOPOLOGY --host H            ping what the topology says this host's containers reach
    netstitch watch --host H                     re-apply when a Docker container it names starts
    netstitch boot --host H [--without-docker]   re-apply the last applied spec (at boot, after a reboot)
    netstitch graph TOPOLOGY [-o FILE]           draw hosts, networks, containers, ports and links (DOT/SVG/PNG)
    netstitch compile TOPOLOGY [--host H]        the per-host specs (JSON)
    netstitch prepare TOPOLOGY --host H          the facts other hosts need (JSON)
    netstitch plugin --host H                    Docker's network + IPAM driver for this host (docs/docker-plugin.md)
"""

import argparse
import gc
import os
import sys

from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch import commands
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.errors import NetstitchError, escape

EXIT_CODES = "exit status: 0 done/nothing pending, 1 error, 2 changes pending, drift or failed checks"


def _sub(sub, name, helptext, example, func):
    p = sub.add_parser(name, help=helptext, description=helptext,
                       epilog="example:\n  %s\n\n%s" % (example, EXIT_CODES),
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.set_defaults(func=func)
    return p


def _topology(p):
    p.add_argument("topology", metavar="TOPOLOGY", help="the topology file (YAML or JSON)")


def _host(p, with_topology=True):
    p.add_argument("--host", metavar="NAME",
                   help="this host's name in the topology; the process acts on the network namespace it runs in "
                        "(default: this machine's host name%s)" % (
                            " when the topology lists it" if with_topology else
                            ", else the one host whose state --state-dir holds"))


def _state_dir(p):
    p.add_argument("--state-dir", metavar="DIR", default=None,
                   help="netstitch's state directory on this host (leases, last spec, tinc keys, lock; "
                        "default /var/lib/netstitch)")


def _json(p):
    p.add_argument("--json", action="store_true", help="print the full result as JSON instead of readable text")


def _peers(p):
    p.add_argument("--peers", metavar="FILE",
                   help="JSON file {host: facts that `netstitch prepare` printed on that host} (tinc keys, "
                        "addresses of linked containers on other hosts)")


def _docker_force(p):
    p.add_argument("--docker-force", action="store_true",
                   help="re-create or remove Docker networks even while containers are connected to them "
                        "(they are disconnected, and connected again with the same addresses where these fit)")


class _Version(argparse.Action):
    """--version, looked up only when asked for (the distribution's metadata costs every other command 0.1 s)."""

    def __init__(self, option_strings, **kw):
        kw.update(dest=argparse.SUPPRESS, default=argparse.SUPPRESS, nargs=0)
        argparse.Action.__init__(self, option_strings, **kw)

    def __call__(self, parser, namespace, values, option_string=None):
        commands.say("netstitch %s" % commands.version())
        parser.exit()


def parser():
    p = argparse.ArgumentParser(
        prog="netstitch", description="declarative container networking: one topology, every host reconciled",
        epilog="example:\n  netstitch validate topology.yml && netstitch plan topology.yml --host h1\n\n" + EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action=_Version, help="print the version and exit")
    sub = p.add_subparsers(dest="cmd", metavar="COMMAND")
    sub.required = True

    v = _sub(sub, "validate", "check a topology and print every problem with its path",
             "netstitch validate topology.yml", commands.cmd_validate)
    _topology(v)
    _json(v)

    c = _sub(sub, "plan", "what an apply would change on this host, grouped by kind of object (nothing is changed)",
             "netstitch plan topology.yml --host h1", commands.cmd_plan)
    _topology(c)
    _host(c)
    _state_dir(c)
    _peers(c)
    _json(c)
    c.add_argument("--detailed-exitcode", action="store_true",
                   help="exit 2 when changes are pending (0 when the host already matches)")

    a = _sub(sub, "apply", "reconcile this host with its part of the topology (root; for a lab host, run it "
                           "inside the host's namespace with nsenter)",
             "netstitch apply topology.yml --host h1 --check   # exit 2 when changes are pending",
             commands.cmd_apply)
    _topology(a)
    _host(a)
    a.add_argument("--check", action="store_true",
                   help="plan only: change nothing, print what would change, exit 2 when something would")
    _state_dir(a)
    _peers(a)
    _docker_force(a)
    a.add_argument("--no-rollback", action="store_true",
                   help="when the apply fails part-way, leave the host as the failure found it (for debugging) "
                        "instead of returning it to the last successful apply")
    _json(a)

    s = _sub(sub, "status", "what differs on this host from the topology netstitch applied last, by kind "
                            "(exit 2 on drift)",
             "netstitch status --host h1 --state-dir /var/lib/netstitch", commands.cmd_status)
    _host(s, with_topology=False)
    _state_dir(s)
    _json(s)

    d = _sub(sub, "down", "remove everything netstitch made on this host (interfaces, namespaces it created, "
                          "routes, nft tables, tinc, Docker networks, hosts files, DOCKER-USER rules, state)",
             "netstitch down --host h1 --check   # list what would go", commands.cmd_down)
    _host(d, with_topology=False)
    d.add_argument("--check", action="store_true",
                   help="change nothing, print what would be removed, exit 2 when something would")
    _state_dir(d)
    _docker_force(d)
    _json(d)

    pr = _sub(sub, "probe", "ping from this host's containers what the topology says they should and should not "
                            "reach (progress on a terminal; exit 2 when a check does not hold)",
              "netstitch probe topology.yml --host h1 --outside 203.0.113.10", commands.cmd_probe)
    _topology(pr)
    _host(pr)
    _state_dir(pr)
    pr.add_argument("--outside", action="append", metavar="ADDR",
                    help="an address beyond the hosts to check the way out with (repeatable)")
    pr.add_argument("--no-pairs", action="store_true",
                    help="leave out container-to-container pairs (their number grows with the square of the "
                         "containers)")
    pr.add_argument("--timeout", type=int, default=1, metavar="SECONDS", help="seconds to wait for each answer")
    pr.add_argument("--parallel", type=int, default=32, metavar="N", help="pings in flight at once")
    _json(pr)

    w = _sub(sub, "watch", "re-apply this host's last applied spec whenever a Docker container it names starts",
             "netstitch watch --host h1", commands.cmd_watch)
    _host(w, with_topology=False)
    _state_dir(w)
    w.add_argument("--docker-host", default=None, metavar="URL",
                   help="Docker Engine address (default: the spec's docker_host, DOCKER_HOST, "
                        "unix:///var/run/docker.sock)")

    b = _sub(sub, "boot", "apply this host's last applied spec again from its state directory alone (what "
                          "netstitch-boot.service runs at boot; without systemd, run it from the boot scripts)",
             "netstitch boot --host h1 --without-docker   # before Docker starts", commands.cmd_boot)
    _host(b, with_topology=False)
    _state_dir(b)
    b.add_argument("--without-docker", action="store_true",
                   help="leave Docker alone (at boot it is not up yet): its containers are attached later by the "
                        "watcher, their leases are kept")
    b.add_argument("--json", action="store_true", help="print the result as one JSON line (for the journal)")

    g = _sub(sub, "plugin", "serve Docker's network and IPAM driver calls for this host (docker network create "
                            "-d netstitch --ipam-driver netstitch -o netstitch.network=NET NAME)",
             "netstitch plugin --host h1 --state-dir /var/lib/netstitch", commands.cmd_plugin)
    g.add_argument("--host", metavar="NAME", required=True, help="this host's name in the topology")
    _state_dir(g)
    g.add_argument("--name", default="netstitch", help="the driver name Docker knows (default netstitch)")
    g.add_argument("--socket", default=None, metavar="PATH",
                   help="default /run/docker/plugins/NAME.sock (or the socket systemd passes)")
    g.add_argument("--docker-host", default=None, metavar="URL",
                   help="Docker Engine address for the stale-endpoint clean-up after start")
    g.add_argument("--pidfile", default=None, metavar="PATH", help="write the daemon's PID here")

    gr = _sub(sub, "graph", "draw the topology: hosts, networks (subnet, VNI, overlay type), containers, published "
                            "ports and links as Graphviz DOT, or SVG/PNG rendered by Graphviz's dot",
              "netstitch graph topology.yml -o topology.svg --report probe.json", commands.cmd_graph)
    _topology(gr)
    gr.add_argument("-o", "--output", metavar="FILE",
                    help="file to write; its extension (.dot, .svg, .png) sets the format unless --format does "
                         "(default: DOT on standard output)")
    gr.add_argument("--format", choices=["dot", "svg", "png"], help="output format (default: from --output)")
    gr.add_argument("--report", metavar="FILE",
                    help="JSON file of probe results (the probe module's return, a list of them, or {host: result}) "
                         "to colour what was reached, blocked or mismatched")
    gr.add_argument("--title", help="a title drawn above the picture")

    k = _sub(sub, "compile", "print the per-host specs the apply module receives (JSON)",
             "netstitch compile topology.yml --host h1", commands.cmd_compile)
    _topology(k)
    k.add_argument("--host", metavar="NAME", help="print only this host's spec (default: every host's)")

    r = _sub(sub, "prepare", "print the facts other hosts need from this one (addresses, tinc public keys) as JSON",
             "netstitch prepare topology.yml --host h1 > h1.json", commands.cmd_prepare)
    _topology(r)
    _host(r)
    _state_dir(r)
    return p


DAEMONS = ("watch", "plugin")      # long-lived: they keep the garbage collector


def main(argv=None):
    """Run one command; its exit status. Never a traceback, whatever the input: an unexpected failure is one line
    naming it (NETSTITCH_DEBUG=1 shows the traceback)."""
    args = parser().parse_args(argv)
    if args.cmd not in DAEMONS:
        gc.disable()    # a short-lived command: collections would only rescan the topology's objects (x2 at 100,000)
    try:
        return args.func(args)
    except NetstitchError as e:
        commands.say(escape(str(e), keep_newlines=True), sys.stderr)
        return commands.ERROR
    except KeyboardInterrupt:
        commands.say("interrupted", sys.stderr)
        return 130
    except (OSError, ValueError) as e:
        commands.say("netstitch %s: %s" % (args.cmd, escape(str(e), 2000)), sys.stderr)
        return commands.ERROR
    except Exception as e:  # noqa: BLE001 - never a traceback for any input; NETSTITCH_DEBUG=1 shows it
        if os.environ.get("NETSTITCH_DEBUG"):
            raise
        commands.say("netstitch %s: internal error (%s: %s); run again with NETSTITCH_DEBUG=1 for the traceback, and "
                     "please report it" % (args.cmd, type(e).__name__, escape(str(e), 300)), sys.stderr)
        return commands.ERROR


if __name__ == "__main__":
    raise SystemExit(main())
