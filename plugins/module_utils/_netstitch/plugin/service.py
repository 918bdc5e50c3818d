# -*- coding: utf-8 -*-
# Copyright: netstitch contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Docker plugin of one host: one call in, the protocol core's answer out, its actions carried out.

Runs in the host's network namespace (where dockerd runs). Every call: the protocol core answers from the plugin's
state and a view of the host's last applied spec, the actions run with netstitch's drivers (rtnetlink for the veth,
nftables for published ports), and only then is the new state kept. Bounded: the in-process lock, the lease lock
and the host lock (published ports only) are all taken with deadlines of a few seconds, and a call that cannot get
one answers with an error naming the holder (a running apply). Docker's API is never called inside a call; stale
endpoints (containers that went away while the plugin was down) are cleaned up by a background thread after start.
"""

import http.client
import json
import os
import sys
import threading
import time

from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch import links as ns_links
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.errors import NetstitchError
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.host.statefile import HostState
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.kinds import nft as nft_kind
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.kinds import sysctl
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.plugin import core, hostside

CALL_LOCK_TIMEOUT = 5.0      # in-process: one call at a time
LEASE_TIMEOUT = 3.0          # the short lease lock (an apply holds it for milliseconds)
HOST_LOCK_TIMEOUT = 3.0      # published ports change netstitch's nft table: not while an apply runs
PIN_TIMEOUT = 10.0
LEASE_CALLS = ("/IpamDriver.RequestAddress", "/IpamDriver.ReleaseAddress")


class Plugin(object):
    def __init__(self, host, state_dir, name="netstitch", docker_host=None, out=None):
        from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.drivers.netlink import Netlink
        self.host = host
        self.state_dir = state_dir
        self.name = name
        self.docker_host = docker_host
        self.out = out or sys.stdout
        self.core = core.Core(name)
        self.lock = threading.Lock()
        self.state = hostside.load(state_dir, host)
        self.started = time.time()
        self.initial_networks = set(self.state["networks"])
        self.netlink = Netlink()
        self.nft = None
        self._hs = (None, None)     # (mtime, (spec, leases, peers)) of the host state file
        self.stop = threading.Event()

    # -- logging -----------------------------------------------------------------------------------------------------
    def log(self, **kw):
        kw.setdefault("t", round(time.time(), 3))
        try:
            self.out.write(json.dumps(kw, sort_keys=True) + "\n")
            self.out.flush()
        except (OSError, ValueError):
            pass

    # -- the host state (cached by mtime) ----------------------------------------------------------------------------
    def host_state(self):
        path = os.path.join(self.state_dir, "%s.json" % self.host)
        try:
            mtime = os.stat(path).st_mtime_ns
        except OSError:
            mtime = None
        if mtime != self._hs[0] or mtime is None:
            hs = HostState(self.state_dir, self.host)
            self._hs = (mtime, (hs.spec, hs.leases, hs.peers))
        return self._hs[1]

    # -- one call ----------------------------------------------------------------------------------------------------
    def call(self, path, body):
        t0 = time.monotonic()
        key = "Error" if path.startswith("/IpamDriver.") else "Err"
        if not self.lock.acquire(timeout=CALL_LOCK_TIMEOUT):
            return 200, {key: "%s: busy with another call for more than %gs" % (self.name, CALL_LOCK_TIMEOUT)}
        try:
            status, resp, n = self._call(path, body, key)
        except NetstitchError as e:
            status, resp, n = 200, {key: "%s: %s" % (self.name, e)}, 0
        except Exception as e:      # never a traceback to Docker: the message, and the log line
            status, resp, n = 200, {key: "%s: internal error: %s: %s" % (self.name, type(e).__name__, e)}, 0
        finally:
            self.lock.release()
        self.log(call=path, ms=round((time.monotonic() - t0) * 1000, 2), actions=n,
                 error=resp.get(key) if isinstance(resp, dict) else None,
                 eid=(body or {}).get("EndpointID", "")[:12] or None)
        return status, resp

    def _call(self, path, body, key):
        spec, leases, _peers = self.host_state()
        view = hostside.view(self.host, spec, leases)
        if path in LEASE_CALLS:
            with hostside.lease_lock(self.state_dir, self.host, LEASE_TIMEOUT):
                # the newest leases of the apply, read under the lock both sides take
                self._hs = (None, None)
                spec, leases, _peers = self.host_state()
                view = hostside.view(self.host, spec, leases)
                res = self.core.handle(path, body, self.state, view, time.time())
                if res.state != self.state:
                    hostside.save(self.state_dir, self.host, res.state)
                    self.state = res.state
                return res.status, res.response, 0
        res = self.core.handle(path, body, self.state, view, time.time())
        if res.status != 200 or key in res.response:
            return res.status, res.response, 0
        later = [a for a in res.actions if a.get("async")]
        now = [a for a in res.actions if not a.get("async")]
        try:
            self.execute(now, res.state)
        except NetstitchError as e:
            return 200, {key: "%s: %s" % (self.name, e)}, len(now)
        if res.state != self.state:
            hostside.save(self.state_dir, self.host, res.state)
            self.state = res.state
        for a in later:
            threading.Thread(target=self._async, args=(a,), daemon=True).start()
        return 200, res.response, len(res.actions)

    # -- actions -----------------------------------------------------------------------------------------------------
    def execute(self, actions, new_state):
        done = []
        try:
            for a in actions:
                getattr(self, "_do_" + a["op"])(a, new_state)
                done.append(a)
        except Exception:
            for a in reversed(done):    # undo what this call made (a veth), so a failed call leaves nothing
                if a["op"] == "plugin_veth_add":
                    self._do_link_del({"name": a["name"], "text": a["text"]}, new_state)
            raise

    def _do_check_bridge(self, a, new_state):
        if self.netlink.sock(None).link_index(a["name"]) is None:
            raise NetstitchError("bridge %s of network %s does not exist on host %s: run the netstitch apply for "
                                 "this host first" % (a["name"], a["network"], self.host))

    def _do_plugin_veth_add(self, a, new_state):
        from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.drivers.rtnl import NetlinkError
        s = self.netlink.sock(None)
        master = s.link_index(a["master"])
        if master is None:
            raise NetstitchError("bridge %s does not exist on host %s: run the netstitch apply for this host first"
                                 % (a["master"], self.host))
        for attempt in (0, 1):
            try:
                s.veth_add(a["name"], a["mtu"], master, True, a["peer"], self.netlink._home, a["mtu"], a["mac"])
                break
            except NetlinkError as e:
                if e.code != 17 or attempt:     # EEXIST: a leftover of a lost endpoint with this ID; replace it
                    raise NetstitchError("%s: kernel said: %s" % (a["text"], e.args[1]))
                for name in (a["name"], a["peer"]):
                    idx = s.link_index(name)
                    if idx is not None:
                        s.link_del(idx)
        self.netlink.writes += 2
        s.link_set(s.link_index(a["name"]), alias=a["alias"], up=True)

    def _do_link_del(self, a, new_state):
        from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.drivers.rtnl import NetlinkError
        s = self.netlink.sock(None)
        idx = s.link_index(a["name"])
        if idx is None:
            return      # gone already (with its container's namespace): that is the goal
        try:
            s.link_del(idx)
            self.netlink.writes += 1
        except NetlinkError as e:
            if e.code != 19:
                raise NetstitchError("%s: kernel said: %s" % (a["text"], e.args[1]))

    def _do_ports_sync(self, a, new_state):
        """A release (Revoke, DeleteEndpoint) never fails for a busy host lock: its ports are dropped from the state
        now and from the nft maps as soon as the lock is free (a background retry); a stale map element for a
        gone endpoint harms nothing meanwhile."""
        try:
            self._sync_ports(new_state)
        except NetstitchError as e:
            if not a.get("release"):
                raise
            self.log(event="unpublish-deferred", action=a["text"], reason=str(e))
            self._retry_sync()

    def _retry_sync(self):
        def work():
            wait = 0.5
            while not self.stop.wait(wait):
                with self.lock:
                    try:
                        self._sync_ports(self.state)
                        self.log(event="unpublished")
                        return
                    except NetstitchError:
                        wait = min(wait * 2, 10.0)
        threading.Thread(target=work, daemon=True, name="ports-retry").start()

    def _sync_ports(self, new_state):
        """Published ports: netstitch's nft table as the apply would make it with the plugin's ports (one
        transaction), under the host lock, which an apply holds for its whole run: a few seconds at most here."""
        from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.drivers.nft import Nft
        path = os.path.join(self.state_dir, "%s.lock" % self.host)

        def busy(holder):
            return ("a netstitch apply is running on host %s (%s holds %s); publishing ports waits for no apply: "
                    "try again when it has finished" % (self.host, holder or "another process", path))
        with hostside.FileLock(path, HOST_LOCK_TIMEOUT, busy):
            spec, leases, peers = self.host_state()
            if spec is None:
                raise NetstitchError("nothing was applied on host %s yet" % self.host)
            addresses, addresses6 = hostside.applied_addresses(spec, leases)
            links = ns_links.resolve_links(spec, addresses, peers, addresses6)[0]
            spec2, addresses = core.with_published(spec, addresses, new_state)
            from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.drivers.netlink import read_sysctl
            bridge_nf = read_sysctl(sysctl.SYSCTL_BRIDGE_NF) == "1"
            bridge_nf6 = read_sysctl(sysctl.SYSCTL_BRIDGE_NF6) == "1"
            tables = nft_kind.desired_tables(spec2, addresses, links, bridge_nf, addresses6, bridge_nf6)
            if self.nft is None:
                self.nft = Nft()
            current = nft_kind.current_tables({f: self.nft.read(f) for f in ("inet", "bridge")})
            cmds = nft_kind.diff_all(tables, current)[0]
            self.nft.apply(cmds)
            # kept inside the host lock: an apply that starts next reads these ports
            hostside.save(self.state_dir, self.host, new_state)

    def _async(self, a):
        try:
            getattr(self, "_later_" + a["op"])(a)
        except Exception as e:
            self.log(event="async-failed", action=a["text"], error="%s: %s" % (type(e).__name__, e))

    def _later_pin_gateway(self, a):
        """Once Docker has moved the container end in, brought it up and addressed it: a permanent neighbour entry
        for the local gateway (each host's bridge of a shared segment answers for the gateway address)."""
        from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.drivers import rtnl
        end = time.monotonic() + PIN_TIMEOUT
        home = rtnl.Socket()        # sockets of this thread: the call threads' ones are not shared
        s = None
        try:
            ours = home.link_index(a["host_ifname"])
            while ours is not None and time.monotonic() < end and not self.stop.is_set():
                if s is None and os.path.exists(a["sandbox"]):
                    s = rtnl.Socket(a["sandbox"], self.netlink._home)
                if s is not None:
                    addressed = {i for i, _addr in s.addresses4()}
                    for l in s.links():
                        if l["link"] == ours and l["flags"] & 1 and l["index"] in addressed:
                            s.neigh("replace", l["index"], a["ip"], a["mac"])
                            self.log(event="pinned", action=a["text"])
                            return
                time.sleep(0.05)
            self.log(event="pin-skipped", action=a["text"], reason="the container end did not come up in time")
        finally:
            home.close()
            if s is not None:
                s.close()

    # -- stale endpoints ---------------------------------------------------------------------------------------------
    def reconcile(self, deadline=600.0):
        """After start, in the background: endpoints Docker no longer has (containers that stopped while the plugin
        was down, networks removed meanwhile) lose their veth, lease and ports. Waits for Docker's API (never called
        inside a call); endpoints made after this start are never touched."""
        end = time.monotonic() + deadline
        wait = 0.2
        while not self.stop.is_set():
            try:
                self._reconcile_once()
                return
            except (OSError, http.client.HTTPException, ValueError) as e:
                if time.monotonic() > end:
                    self.log(event="reconcile-gave-up", error=str(e))
                    return
            self.stop.wait(wait)
            wait = min(wait * 2, 5.0)

    def _reconcile_once(self):
        with self.lock:
            # the Docker networks the plugin knew at start (later ones are Docker's news, not stale)
            nets = sorted(self.initial_networks & set(self.state["networks"]) |
                          {rec["docker_network"] for rec in self.state["endpoints"].values()
                           if rec.get("created", 0) < self.started})
        if not nets:
            self.log(event="reconciled", removed=[])
            return
        from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.plugin.server import DockerAPI
        api = DockerAPI(self.docker_host)
        api.get("/_ping")
        alive, gone = {}, set()
        for nid in nets:
            status, data = api.get("/networks/%s" % nid)
            if status == 404:
                gone.add(nid)
            elif status == 200:
                alive[nid] = {c.get("EndpointID") for c in (data.get("Containers") or {}).values()}
            else:
                raise OSError("Docker answered %d for network %s" % (status, nid[:12]))
        removed = []
        with self.lock:
            st = json.loads(json.dumps(self.state))
            actions = []
            for eid, rec in sorted(st["endpoints"].items()):
                nid = rec["docker_network"]
                if rec.get("created", 0) >= self.started or (nid in alive and eid in alive[nid]) or \
                        (nid not in alive and nid not in gone):
                    continue
                actions += self.core._drop_endpoint(st, eid)
                ip = rec["address"].split("/")[0]
                lease = (st["leases"].get(rec["network"]) or {}).get(ip)
                if lease is not None and lease.get("endpoint") in (eid, None):
                    del st["leases"][rec["network"]][ip]
                ip6 = core.canon6(rec.get("address6"))
                lease6 = (st.get("leases6", {}).get(rec["network"]) or {}).get(ip6) if ip6 else None
                if lease6 is not None and lease6.get("endpoint") in (eid, None):
                    del st["leases6"][rec["network"]][ip6]
                removed.append(eid[:12])
            for nid in gone:
                rec = st["networks"].pop(nid, None)
                for pid in [p for p, pool in st["pools"].items() if rec and pool["network"] == rec["network"]]:
                    del st["pools"][pid]        # its pool goes with it (Docker's ReleasePool was lost)
            if removed or gone:
                try:
                    with hostside.lease_lock(self.state_dir, self.host, LEASE_TIMEOUT):
                        self.execute(actions, st)
                        hostside.save(self.state_dir, self.host, st)
                        self.state = st
                except NetstitchError as e:
                    self.log(event="reconcile-failed", error=str(e))
                    raise OSError(str(e))
        self.log(event="reconciled", removed=removed, networks_gone=sorted(n[:12] for n in gone))

    def close(self):
        self.stop.set()
        self.netlink.close()
