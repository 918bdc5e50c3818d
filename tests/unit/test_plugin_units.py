"""The role's systemd units of the Docker plugin render to what dockerd and systemd need: the socket where dockerd
looks for plugins, ordered before docker.service, and a service that runs `netstitch plugin` for the host."""

import configparser
import os

import jinja2

from .conftest import HERE

TEMPLATES = os.path.join(HERE, "..", "..", "roles", "fabric", "templates")


def render(name, **kw):
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), undefined=jinja2.StrictUndefined)
    text = env.get_template(name + ".j2").render(ansible_managed="managed", **kw)
    cp = configparser.ConfigParser(strict=False, interpolation=None)
    cp.optionxform = str
    cp.read_string(text)
    return cp


def test_socket_unit():
    u = render("netstitch-plugin.socket", netstitch_docker_plugin_name="netstitch")
    assert u["Socket"]["ListenStream"] == "/run/docker/plugins/netstitch.sock"
    assert "docker.service" in u["Unit"]["Before"].split()
    assert u["Install"]["WantedBy"] == "sockets.target"


def test_service_unit():
    u = render("netstitch-plugin.service", netstitch_docker_plugin_name="nsp", inventory_hostname="h1",
               netstitch_state_dir="/var/lib/netstitch", netstitch_docker_plugin_command="/opt/netstitch/bin/netstitch")
    assert u["Service"]["ExecStart"] == ("/opt/netstitch/bin/netstitch plugin --host h1 --state-dir "
                                         "/var/lib/netstitch --name nsp")
    assert u["Unit"]["Before"] == "docker.service"
    assert u["Unit"]["Requires"] == "netstitch-plugin.socket"
    assert u["Service"]["Restart"] == "always"
