"""The commands of the command line (cli.py parses the arguments and calls these). Each returns the exit status:

    0  done, nothing pending / in sync / every check held
    1  an error: invalid topology, unknown host, a failed apply (the message is on stderr, never a traceback)
    2  something differs from what is wanted: changes pending (apply --check, plan --detailed-exitcode, down --check),
       drift (status), connectivity checks that did not hold (probe)

Output is readable text by default (changes grouped by kind, see describe.py) and JSON with --json. Long operations
(the probe's pair matrix grows with the square of the containers) show progress on stderr when it is a terminal.

Imports are lazy: a command loads only what it uses (the validation and schema libraries are a good part of a no-op
apply's wall clock). apply and prepare take the host's compiled spec from the spec cache (speccache.py) while the
topology file and netstitch are unchanged.
"""

import json
import os
import re
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.errors import NetstitchError, escape

OK, ERROR, DIFFERS = 0, 1, 2
HERE = os.path.dirname(os.path.abspath(__file__))


def version():
    """The installed distribution's version, else the collection's (galaxy.yml of the checkout)."""
    try:
        from importlib import metadata
        return metadata.version("netstitch")
    except Exception:       # not installed as a distribution (a checkout, or the collection alone)
        pass
    root = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
    try:
        with open(os.path.join(root, "galaxy.yml")) as f:
            m = re.search(r"^version:\s*['\"]?([^'\"\s]+)", f.read(), re.M)
        return m.group(1) if m else "unknown"
    except OSError:
        return "unknown"


class Progress(object):
    """"label: 37/400 ..." rewritten in place on stderr while it is a terminal; silent otherwise."""

    def __init__(self, label, total, stream=None, every=0.1):
        self.stream = stream or sys.stderr
        self.on = bool(getattr(self.stream, "isatty", lambda: False)()) and total > 0
        self.label, self.total, self.done, self.extra = label, total, 0, ""
        self.every, self.last = every, 0.0
        self.lock = threading.Lock()

    def step(self, extra=""):
        with self.lock:
            self.done += 1
            self.extra = extra or self.extra
            now = time.monotonic()
            if self.on and (now - self.last >= self.every or self.done == self.total):
                self.last = now
                self.stream.write("\r%s: %d/%d%s" % (self.label, self.done, self.total,
                                                     " (%s)" % self.extra if self.extra else ""))
                self.stream.flush()

    def close(self):
        if self.on:
            self.stream.write("\n")
            self.stream.flush()


def say(text, stream=None):
    """One line (or block) of output, to standard output unless another stream is given (ansible-test reserves the
    print function for modules' debugging, so the command line writes to its streams itself)."""
    stream = stream or sys.stdout
    stream.write(text + "\n")


def _emit(args, data, text):
    if getattr(args, "json", False):
        say(json.dumps(data, indent=1, sort_keys=True, default=str))
    elif text:
        say(text)


def read_topology(path):
    """The topology file's bytes (at most the reader's size limit and one byte more, so a huge file is refused
    without reading it all)."""
    from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.controller.safeyaml import MAX_BYTES
    try:
        with open(path, "rb") as f:
            return f.read(MAX_BYTES + 1)
    except OSError as e:
        raise NetstitchError("cannot read topology %s: %s" % (path, e.strerror or e))


def _specs(path, data=None, compile_specs=True):
    """(model, {host: spec}) of the topology file ``path`` (or of its bytes ``data``): read, validated, compiled
    (``compile_specs`` False: the model alone, specs None)."""
    from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.controller import hostspec
    from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.controller import validate
    from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.controller.safeyaml import load_bytes
    topo = validate.load(load_bytes(read_topology(path) if data is None else data, path))
    return topo, hostspec.host_specs(topo) if compile_specs else None


def machine_names():
    """This machine's names as a topology may list it: the host name, then its first label."""
    import socket
    name = socket.gethostname()
    return [name] + ([name.split(".", 1)[0]] if "." in name else [])


def pick_host(args, specs=None, state_dir=None):
    """The host a command acts on: --host, else this machine's name when the topology lists it (commands with a
    topology), else the one host whose state the state directory holds (commands without)."""
    if args.host:
        if specs is not None and args.host not in specs:
            raise NetstitchError("host %r is not in the topology (hosts: %s)" % (args.host, ", ".join(sorted(specs))))
        return args.host
    names = machine_names()
    if specs is not None:
        for n in names:
            if n in specs:
                args.host = n
                return n
        raise NetstitchError("this machine (%s) is not under hosts of the topology; give --host (one of: %s)"
                             % (names[0], ", ".join(sorted(specs))))
    from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch import engine
    d = state_dir or engine.DEFAULT_STATE_DIR
    try:
        held = sorted(f[:-len(".json")] for f in os.listdir(d) if f.endswith(".json"))
    except OSError:
        held = []
    for n in names:
        if n in held:
            args.host = n
            return n
    if len(held) == 1:
        args.host = held[0]
        return held[0]
    raise NetstitchError("give --host: %s holds the state of %s" % (
        d, "no host" if not held else "several hosts (%s)" % ", ".join(held)))


def _host_spec(args, cached=False, store=True):
    """The spec of the host the command acts on. ``cached``: from the spec cache while the topology's bytes, the host
    and netstitch are unchanged (``store``: keep what was compiled for the next run)."""
    if not cached:
        specs = _specs(args.topology)[1]
        return specs[pick_host(args, specs)]
    from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch import engine, speccache
    cache_dir = os.path.join(args.state_dir or engine.DEFAULT_STATE_DIR, speccache.DIR)
    data = read_topology(args.topology)
    for name in [args.host] if args.host else machine_names():
        spec = speccache.get(cache_dir, name, speccache.key(data, name))
        if spec is not None:        # kept for these very bytes, so the topology lists this host
            args.host = name
            return spec
    specs = _specs(args.topology, data)[1]
    host = pick_host(args, specs)
    if store:
        speccache.put(cache_dir, host, speccache.key(data, host), specs[host])
    return specs[host]


def _engine_kw(args):
    kw = {}
    if getattr(args, "state_dir", None):
        kw["state_dir"] = args.state_dir
    if getattr(args, "peers", None):
        try:
            with open(args.peers) as f:
                kw["peers"] = json.load(f)
        except (OSError, ValueError) as e:
            raise NetstitchError("cannot read peers file %s: %s" % (args.peers, e))
    if getattr(args, "docker_force", False):
        kw["docker_force"] = True
    if getattr(args, "no_rollback", False):
        kw["rollback"] = False
    return kw


def _summary(res, host, verb_done, verb_pending, check):
    n = len(res.get("changes") or [])
    if not res["changed"]:
        head = "host %s: nothing to do" % host
    elif check:
        head = "host %s: %d change%s %s" % (host, n, "" if n == 1 else "s", verb_pending)
    else:
        w = res.get("writes") or {}
        head = "host %s: %d change%s %s (%s) in %.2fs" % (
            host, n, "" if n == 1 else "s", verb_done,
            ", ".join("%s %d" % (k, v) for k, v in sorted(w.items()) if v) or "no writes",
            (res.get("timing") or {}).get("total", 0.0))
    from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch import describe
    body = describe.text_from_plan(res.get("plan") or {})
    out = [head] + ([body] if body else [])
    out += _auto_ports(res.get("published"))
    out += _outside_routes(res.get("outside_routes"))
    out += ["warning: %s" % w for w in res.get("warnings") or []]
    return "\n".join(out)


def _outside_routes(routes):
    """The routes the outside needs to reach the routed gateway networks (networks.N.inbound) on this host."""
    return ["outside needs: route %s via %s (network %s)" % (r["dst"], r["via"], r["network"]) for r in routes or []]


def _tenants(tenants):
    """One line per tenant's router on this host (kinds.tenant), as the kernel has it."""
    return ["tenant %s: router namespace %s, %s, uplink %s" % (
        name, t["namespace"], ", ".join("gateway %s on %s" % (a, n) for n, a in sorted(t["gateways"].items())),
        t["uplink"]) for name, t in sorted((tenants or {}).items())]


def _auto_ports(published):
    """One line per published port whose host port the host picked (host_port auto)."""
    def where(ip):      # an IPv6 host address in brackets: [2001:db8::1]:20000, [::]:20000
        return "[%s]" % ip if ip and ":" in ip else ip or "*"
    return ["automatic port: %s %s:%d -> %s:%d" % (
        p["protocol"], where(p["host_ip"]), p["host_port"], p["container"], p["container_port"])
        for p in published or [] if p.get("auto")]


def cmd_validate(args):
    topo, specs = _specs(args.topology)
    _emit(args, {"valid": True, "hosts": sorted(specs)},
          "%s: valid (%d hosts, %d networks, %d containers)"
          % (escape(args.topology), len(topo.hosts), len(topo.networks), len(topo.containers)))
    return OK


def cmd_compile(args):
    topo, specs = _specs(args.topology)
    if args.host and args.host not in specs:
        raise NetstitchError("host %r is not in the topology" % args.host)
    say(json.dumps(specs[args.host] if args.host else specs, indent=1, sort_keys=True))
    return OK


def cmd_plan(args):
    from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch import engine
    res = engine.apply(_host_spec(args), check_mode=True, probe_peers=False, **_engine_kw(args))
    res.pop("diff", None)
    _emit(args, res, _summary(res, args.host, "applied", "planned", True))
    return DIFFERS if args.detailed_exitcode and res["changed"] else OK


def cmd_apply(args):
    from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch import engine
    spec = _host_spec(args, cached=True, store=not args.check)
    if not args.json and sys.stderr.isatty():
        sys.stderr.write("host %s: %s...\n" % (args.host, "planning" if args.check else "applying"))
    res = engine.apply(spec, check_mode=args.check, **_engine_kw(args))
    res.pop("diff", None)
    _emit(args, res, _summary(res, args.host, "applied", "pending (check mode: nothing was changed)", args.check))
    return DIFFERS if args.check and res["changed"] else OK


def cmd_down(args):
    from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch import engine
    kw = _engine_kw(args)
    pick_host(args, state_dir=args.state_dir)
    res = engine.teardown(args.host, check_mode=args.check, **kw)
    res.pop("diff", None)
    _emit(args, res, _summary(res, args.host, "removed", "to remove (check mode: nothing was changed)", args.check))
    return DIFFERS if args.check and res["changed"] else OK


def cmd_status(args):
    from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch import engine
    kw = {"state_dir": args.state_dir} if args.state_dir else {}
    g = engine.gather(pick_host(args, state_dir=args.state_dir), **kw)
    if g["in_sync"] is None:
        text = "host %s: netstitch has not applied a topology here" % args.host
    elif g["in_sync"]:
        text = "host %s: in sync with the last applied topology (%d bridges, %d endpoints)" % (
            args.host, len(g["bridges"]), len(g["endpoints"]))
        lines = _tenants(g.get("tenants")) + _auto_ports(g.get("published"))
        text = "\n".join([text] + lines + _outside_routes(g.get("outside_routes")))
    else:
        n = sum(len(v) for v in g["drift"].values())
        from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch import describe
        text = "host %s: drifted from the last applied topology (%d difference%s)\n%s" % (
            args.host, n, "" if n == 1 else "s", describe.text_from_plan(g["drift"]))
    _emit(args, g, text)
    return DIFFERS if g["in_sync"] is False else OK


def cmd_prepare(args):
    from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch import engine
    kw = {"state_dir": args.state_dir} if args.state_dir else {}
    facts, changed = engine.prepare(_host_spec(args, cached=True), **kw)
    say(json.dumps({"facts": facts, "changed": changed}, indent=1, sort_keys=True))
    return OK


def cmd_graph(args):
    """The topology as Graphviz DOT (pure, graph.py), or SVG/PNG rendered by Graphviz's dot."""
    from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch import graph
    topo = _specs(args.topology, compile_specs=False)[0]
    fmt = args.format or (args.output.rsplit(".", 1)[-1].lower() if args.output and "." in args.output else "dot")
    if fmt not in graph.FORMATS:
        raise NetstitchError("graph: cannot tell the format from %r; give --format dot, svg or png" % args.output)
    try:
        report = graph.load_report(args.report) if args.report else None
        data = graph.render(graph.to_dot(topo, report, title=args.title), fmt)
        if args.output:
            with open(args.output, "wb") as f:
                f.write(data)
        else:
            sys.stdout.buffer.write(data)
            sys.stdout.flush()
    except (OSError, ValueError) as e:
        raise NetstitchError("graph: %s" % e)
    return OK


def _ping(check, timeout=1, attempts=2):
    path = check["from_netns"]
    path = path if path.startswith("/") else os.path.join("/run/netns", path)
    res = dict(check, expect=check.get("expect", True) is not False, reached=False, error=None, attempts=0)
    if not os.path.exists(path):
        res.update(ok=False, error="network namespace %s does not exist on this host" % path)
        return res
    for n in range(attempts):
        r = subprocess.run(["nsenter", "--net=%s" % path, "--", "ping", "-n", "-q", "-c", "1", "-W", str(timeout),
                            check["to"]], capture_output=True, text=True, check=False)
        res["attempts"], res["reached"] = n + 1, r.returncode == 0
        res["error"] = None if r.returncode in (0, 1) else (r.stderr or r.stdout).strip()
        if res["reached"]:
            break
    res["ok"] = res["reached"] == res["expect"] and not (res["expect"] and res["error"])
    return res


def cmd_probe(args):
    """Ping from this host's containers what the topology says they should and should not reach."""
    from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch import engine
    from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.controller import reachability as verify
    topo, specs = _specs(args.topology)
    pick_host(args, specs)
    kw = {"state_dir": args.state_dir} if args.state_dir else {}
    planned = engine.apply(specs[args.host], check_mode=True, probe_peers=False, **kw)
    checks, skipped = verify.expected_checks(specs, {args.host: planned["endpoints"]},
                                             outside=args.outside or [], pairs=not args.no_pairs)
    checks = verify.for_host(checks, args.host)
    progress = Progress("probe %s" % args.host, len(checks))
    bad = []

    def one(check):
        r = _ping(check, args.timeout)
        if not r["ok"]:
            bad.append(r)
        progress.step("%d mismatched" % len(bad) if bad else "")
        return r
    try:
        with ThreadPoolExecutor(max_workers=max(1, min(args.parallel, len(checks) or 1))) as pool:
            results = list(pool.map(one, checks))
    finally:
        progress.close()
    mism = [r for r in results if not r["ok"]]
    data = {"outcomes": results, "mismatches": mism, "all_ok": not mism, "unchecked": skipped,
            "counts": {"checks": len(results), "ok": len(results) - len(mism), "mismatched": len(mism)}}
    tail = "%d checks, %d as expected, %d mismatched" % (len(results), len(results) - len(mism), len(mism))
    notes = [] if args.outside else ["outside: not tested (no --outside address was given)"]
    _emit(args, data, "\n".join(verify.report(results, title="pings from the containers on %s" % args.host) + notes
                                + [tail]))
    return DIFFERS if mism else OK


def cmd_watch(args):
    from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch import engine
    from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.host import watch
    pick_host(args, state_dir=args.state_dir)
    return watch.main(args.host, args.state_dir or engine.DEFAULT_STATE_DIR, args.docker_host)


def cmd_boot(args):
    """Apply this host's last applied spec again from its state directory alone (what netstitch-boot.service runs at
    boot; on a host without systemd, run it from its boot scripts). --json prints one line (for the journal)."""
    from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.host import boot
    from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.host.statefile import DEFAULT_STATE_DIR
    pick_host(args, state_dir=args.state_dir)
    code, record = boot.restore(args.host, args.state_dir or DEFAULT_STATE_DIR, docker=not args.without_docker)
    if args.json:
        say(json.dumps(record, sort_keys=True))
    else:
        say(boot.text(record), sys.stderr if code else None)
    return code


def cmd_plugin(args):
    from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch import engine
    from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.plugin import server
    return server.main(args.host, args.state_dir or engine.DEFAULT_STATE_DIR, args.name, args.socket,
                       args.docker_host, args.pidfile)
