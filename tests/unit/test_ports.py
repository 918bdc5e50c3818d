"""Automatic host ports (ports.py): free, stable, never colliding; and their validation."""

import pytest

from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch import ports
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.errors import TopologyError
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.controller import hostspec, validate

LOW = ports.AUTO_RANGE[0]


def _spec(*publish):
    return {"host": "h1", "publish": [dict({"container": "web", "ifname": "eth0", "network": "front",
                                            "host_ip": None, "protocol": "tcp"}, **p) for p in publish]}


def test_two_autos_never_collide_and_skip_fixed_listening_and_ephemeral_ports():
    spec = _spec({"host_port": None, "container_port": 80}, {"host_port": LOW + 1, "container_port": 81},
                 {"host_port": None, "container_port": 82}, {"host_port": None, "container_port": 83})
    listening = {("tcp", LOW)}
    out, leases, fresh, problems = ports.resolve(spec, {}, listening, (LOW + 3, LOW + 5))
    assert problems == []
    got = [p["host_port"] for p in out["publish"]]
    assert got == [LOW + 2, LOW + 1, LOW + 6, LOW + 7]     # not listened on, not fixed, not ephemeral, not twice
    assert leases == {"web * tcp/80": LOW + 2, "web * tcp/82": LOW + 6, "web * tcp/83": LOW + 7}
    assert len(fresh) == 3 and spec["publish"][0]["host_port"] is None      # the input is left as it was


def test_a_recorded_port_is_kept_and_a_new_mapping_does_not_take_it():
    spec = _spec({"host_port": None, "container_port": 90}, {"host_port": None, "container_port": 80})
    out, leases, fresh, _problems = ports.resolve(spec, {"web * tcp/80": LOW}, set(), None)
    assert [p["host_port"] for p in out["publish"]] == [LOW + 1, LOW]
    assert fresh == ["web * tcp/90"] and leases["web * tcp/80"] == LOW
    # a recorded port that a fixed mapping now takes moves (the fixed one wins)
    spec2 = _spec({"host_port": LOW, "container_port": 70}, {"host_port": None, "container_port": 80})
    out2, leases2 = ports.resolve(spec2, {"web * tcp/80": LOW}, set(), None)[:2]
    assert out2["publish"][1]["host_port"] == LOW + 1 and leases2 == {"web * tcp/80": LOW + 1}


def test_tcp_and_udp_are_separate_and_a_full_range_is_a_problem():
    spec = _spec({"host_port": None, "container_port": 53, "protocol": "udp"},
                 {"host_port": None, "container_port": 53})
    out = ports.resolve(spec, {}, {("tcp", LOW)}, None)[0]
    assert [p["host_port"] for p in out["publish"]] == [LOW, LOW + 1]
    full = ports.resolve(spec, {}, set(), ports.AUTO_RANGE)
    assert full[3] and "no free host port" in full[3][0] and full[0]["publish"] == []


def test_published_marks_the_automatic_ones():
    spec = _spec({"host_port": LOW, "container_port": 80}, {"host_port": 8080, "container_port": 81})
    out = ports.published(spec, {"web * tcp/80": LOW})
    assert [p["auto"] for p in out] == [True, False]


def test_validation_of_automatic_ports():
    topo = {"hosts": {"h1": {"underlay": "192.0.2.1/24"}}, "networks": {"front": {"subnet": "10.91.0.0/24"}},
            "containers": {"web": {"host": "h1", "netns": "web", "interfaces": [{"network": "front"}],
                                   "publish": [{"container_port": 80}, {"host_port": "auto", "container_port": 81},
                                               {"host_port": 8080, "container_port": 80}]}}}
    spec = hostspec.host_specs(validate.load(topo))["h1"]
    assert [(p["host_port"], p["container_port"]) for p in spec["publish"]] == [(None, 80), (None, 81), (8080, 80)]
    topo["containers"]["web"]["publish"] += [{"container_port": 80}, {}, {"container_port": "80-81"}]
    with pytest.raises(TopologyError) as e:
        validate.load(topo)
    assert [str(p).split(":", maxsplit=1)[0] for p in e.value.problems] == [
        "containers.web.publish[3]", "containers.web.publish[4].container_port",
        "containers.web.publish[5].container_port"], e.value.problems


def _exposing(**web):
    return {"hosts": {"h1": {"underlay": "192.0.2.1/24"}},
            "networks": {"front": {"subnet": "10.91.0.0/24", "isolated": True}},
            "containers": {"web": dict({"host": "h1", "netns": "web", "interfaces": [{"network": "front"}],
                                        "expose": [80, "53/udp", "8000-8001/tcp"]}, **web),
                           "cli": {"host": "h1", "netns": "cli", "interfaces": [{"network": "front"}]}},
            "links": [{"client": "cli", "server": "web"},
                      {"client": "cli", "server": "web", "protocol": "udp", "name": "web-udp"},
                      {"client": "cli", "server": "web", "ports": [9000], "name": "web-9000"}]}


def test_a_link_without_ports_allows_the_exposed_ones_of_its_protocol():
    links = hostspec.host_specs(validate.load(_exposing()))["h1"]["links"]
    assert [(ln["protocol"], ln["ports"]) for ln in links] == [
        ("tcp", [[80, 80], [8000, 8001]]), ("udp", [[53, 53]]), ("tcp", [[9000, 9000]])], links
    # a server that exposes nothing: every port, as before
    topo = _exposing()
    del topo["containers"]["web"]["expose"]
    assert [ln["ports"] for ln in hostspec.host_specs(validate.load(topo))["h1"]["links"]] == [[], [], [[9000, 9000]]]


def test_publish_all_publishes_every_exposed_port_on_an_automatic_port():
    spec = hostspec.host_specs(validate.load(_exposing(publish_all=True,
                                                       publish=[{"host_port": 8080, "container_port": 80}])))["h1"]
    assert sorted((p["protocol"], p["container_port"], p["host_port"] or 0) for p in spec["publish"]) == [
        ("tcp", 80, 8080), ("tcp", 8000, 0), ("tcp", 8001, 0), ("udp", 53, 0)]     # 0: automatic


def test_bad_exposed_ports_are_reported():
    with pytest.raises(TopologyError) as e:
        validate.load(_exposing(expose=["70000", "81-80/tcp", "x"]))
    assert sorted(str(p).split(":", maxsplit=1)[0] for p in e.value.problems) == [
        "containers.web.expose[0]", "containers.web.expose[1]", "containers.web.expose[2]"], e.value.problems


def test_ports_the_docker_plugin_or_docker_publish_are_not_chosen_and_a_recorded_one_they_took_moves():
    spec = _spec({"host_port": None, "container_port": 80}, {"host_port": None, "container_port": 81},
                 {"host_port": None, "container_port": 53, "protocol": "udp"})
    extra = {("tcp", LOW), ("tcp", LOW + 2), ("udp", LOW + 1)}
    out, leases, fresh, problems = ports.resolve(spec, {"web * tcp/81": LOW + 2}, set(), None, extra)
    assert problems == []
    assert [p["host_port"] for p in out["publish"]] == [LOW + 1, LOW + 3, LOW]
    assert sorted(fresh) == ["web * tcp/80", "web * tcp/81", "web * udp/53"]
    # without them, the same mappings take the first ports
    out, _leases, _fresh, _problems = ports.resolve(spec, {}, set(), None)
    assert [p["host_port"] for p in out["publish"]] == [LOW, LOW + 1, LOW]


def test_what_docker_publishes_is_read_from_its_container_list():
    from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.drivers import docker as docker_mod
    listed = [{"Id": "a", "Ports": [{"IP": "0.0.0.0", "PrivatePort": 80, "PublicPort": 20000, "Type": "tcp"},
                                    {"IP": "::", "PrivatePort": 80, "PublicPort": 20000, "Type": "tcp"},
                                    {"PrivatePort": 443, "Type": "tcp"}]},          # exposed, not published
              {"Id": "b", "Ports": [{"IP": "127.0.0.1", "PrivatePort": 53, "PublicPort": 20001, "Type": "udp"},
                                    {"PrivatePort": 9, "PublicPort": 20002, "Type": "sctp"}]},
              {"Id": "c", "Ports": None}]
    assert docker_mod.published_of(listed) == {("tcp", 20000), ("udp", 20001)}
    assert docker_mod.published_of(None) == set()


def test_the_host_gathers_the_ports_of_the_plugins_endpoints_and_of_docker(tmp_path, monkeypatch):
    import types
    from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.host import machine
    from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.plugin import hostside
    state = {"networks": {}, "pools": {}, "leases": {}, "endpoints": {
        "e1": {"address": "10.0.0.2/24", "ports": [{"protocol": "tcp", "host_ip": None, "host_port": LOW,
                                                    "container_port": 80}]},
        "e2": {"address": "10.0.0.3/24", "ports": []}}}
    hostside.save(str(tmp_path), "h1", state)
    hstate = types.SimpleNamespace(state_dir=str(tmp_path), spec=None)
    host = machine.Host.__new__(machine.Host)
    # a spec without Docker, on a host whose engine socket is not there: the plugin's ports only, no engine asked
    spec = {"host": "h1", "networks": [], "containers": [], "docker_host": "unix://%s/no.sock" % tmp_path}
    assert host.ports_published_by_others(spec, hstate) == {("tcp", LOW)}

    class Engine(object):
        def published_ports(self):
            return {("tcp", LOW + 5)}
    asked = []
    monkeypatch.setattr(machine.Host, "docker_engine", lambda self, s, why: asked.append(why) or Engine())
    spec["containers"] = [{"name": "web", "kind": "docker", "docker": "web", "interfaces": []}]
    assert host.ports_published_by_others(spec, hstate) == {("tcp", LOW), ("tcp", LOW + 5)}
    assert asked == ["Docker container web"]
