# -*- coding: utf-8 -*-
# Copyright: netstitch contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""`netstitch plugin`: the Docker network + IPAM plugin of one host, served over a unix socket (stdlib HTTP).

Runs in the host's network namespace (where dockerd runs). Every call: the protocol core answers from the plugin's
state and a view of the host's last applied spec, the actions run with netstitch's drivers (rtnetlink for the veth,
nftables for published ports), and only then is the new state kept. Bounded: the in-process lock, the lease lock
and the host lock (published ports only) are all taken with deadlines of a few seconds, and a call that cannot get
one answers with an error naming the holder (a running apply). Docker's API is never called inside a call; stale
endpoints (containers that went away while the plugin was down) are cleaned up by a background thread after start.
"""

import http.client
import http.server
import json
import os
import signal
import socket
import socketserver
import sys
import threading

from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.errors import NetstitchError
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.plugin.service import Plugin

PLUGIN_DIR = "/run/docker/plugins"
CONTENT_TYPE = "application/vnd.docker.plugins.v1+json"


class DockerAPI(object):
    """A minimal client of the Docker Engine API over its unix socket (stdlib), for the background reconcile."""

    def __init__(self, url=None):
        url = url or os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
        if not url.startswith("unix://"):
            raise OSError("only unix:// Docker addresses are supported by the plugin's reconcile: %s" % url)
        self.path = url[len("unix://"):]

    def get(self, path, timeout=10.0):
        conn = _UnixHTTP(self.path, timeout)
        try:
            conn.request("GET", path)
            r = conn.getresponse()
            data = r.read()
            return r.status, (json.loads(data) if data and data[:1] in (b"{", b"[") else {})
        finally:
            conn.close()


class _UnixHTTP(http.client.HTTPConnection):
    def __init__(self, path, timeout):
        http.client.HTTPConnection.__init__(self, "localhost", timeout=timeout)
        self.unix_path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self.unix_path)
        self.sock = s


# -- HTTP over a unix socket -------------------------------------------------------------------------------------------
class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    plugin = None

    def address_string(self):
        return "docker"

    def log_message(self, *args):
        pass

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n else b""
        try:
            body = json.loads(raw) if raw.strip() else {}
        except ValueError:
            body = None
        if body is None:
            status, resp = 400, {"Err": "%s: the request body is not JSON" % self.plugin.name}
        else:
            status, resp = self.plugin.call(self.path, body)
        data = json.dumps(resp).encode()
        self.send_response(status)
        self.send_header("Content-Type", CONTENT_TYPE)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


def _listening_socket(path):
    """The socket systemd passed (socket activation, fd 3), else a new one at ``path``."""
    if os.environ.get("LISTEN_PID") == str(os.getpid()) and os.environ.get("LISTEN_FDS") == "1":
        return socket.socket(fileno=3), False
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if os.path.exists(path):
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(path)
            probe.close()
            raise NetstitchError("another plugin already serves %s" % path)
        except (ConnectionRefusedError, FileNotFoundError):
            os.unlink(path)
        finally:
            probe.close()
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    os.chmod(path, 0o660)
    s.listen(64)
    return s, True


def main(host, state_dir, name="netstitch", sock_path=None, docker_host=None, pidfile=None):
    """Serve until SIGTERM/SIGINT. Returns an exit code."""
    sock_path = sock_path or os.path.join(PLUGIN_DIR, "%s.sock" % name)
    try:
        plugin = Plugin(host, state_dir, name, docker_host)
        lsock, own = _listening_socket(sock_path)
    except (NetstitchError, OSError) as e:
        sys.stderr.write("netstitch plugin: %s\n" % e)
        return 1
    handler = type("Handler", (_Handler,), {"plugin": plugin})
    server = _Server(sock_path, handler, bind_and_activate=False)
    server.socket.close()
    server.socket = lsock
    if pidfile:
        with open(pidfile, "w") as f:
            f.write("%d\n" % os.getpid())

    def stop(*args):
        plugin.stop.set()
        threading.Thread(target=server.shutdown, daemon=True).start()
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    plugin.log(event="serving", socket=sock_path, host=host, name=name, endpoints=len(plugin.state["endpoints"]))
    threading.Thread(target=plugin.reconcile, daemon=True, name="reconcile").start()
    try:
        server.serve_forever(poll_interval=0.5)
    finally:
        server.server_close()
        if own:
            try:
                os.unlink(sock_path)
            except OSError:
                pass
        if pidfile:
            try:
                os.unlink(pidfile)
            except OSError:
                pass
        plugin.close()
        plugin.log(event="stopped")
    return 0
