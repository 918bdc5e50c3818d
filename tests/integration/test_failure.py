"""An apply that fails half-way (the executor is made to fail at one action, as a kernel refusal would) reports a clean
error, leaves nothing netstitch cannot find again, and the next run converges; removing everything leaves nothing.
These runs opt out of the rollback (rollback: false) to see what a failure leaves; test_crash.py covers the rollback."""

from nskit import assert_noop, base_topology, endpoints, ping


def test_a_run_that_fails_half_way_is_repaired_by_the_next_and_leaks_nothing(env):
    topo = base_topology(env)
    # namespaces and bridges are made before the veths: fail at the first veth
    err = env.apply(topo, fail_at="veth_add", ok=False, rollback=False)
    assert err["type"] == "ApplyError" and "injected failure" in err["error"], err
    assert "not rolled back (rollback: false)" in err["error"], err
    assert env.link("nsbr-front") is not None                   # the run did get that far
    made = env.mine()
    assert sorted(made) == sorted(env.ns(c) for c in ("web", "web2", "api", "db"))

    g = env.gather()
    assert g["in_sync"] is False and any(p.startswith("create veth") for p in g["pending"]), g
    res = env.apply(topo)                                       # the next run finishes the job
    assert res["changed"] and not any(a.startswith("create network namespace") for a in res["actions"])
    assert endpoints(res)["web2/eth0"]["address"] == "10.77.1.2/24"
    assert ping(env.ns("web"), "10.77.1.2")
    assert env.gather()["in_sync"] is True
    assert_noop(env.apply(topo))

    # and the namespaces made by the failed run are netstitch's: removing everything removes them
    env.apply({"hosts": {env.HOST: {}}, "networks": {}, "containers": {}})
    assert env.mine() == []


def test_namespaces_made_by_a_failed_run_are_pruned_even_if_never_completed(env):
    topo = base_topology(env)
    env.apply(topo, fail_at="veth_add", ok=False, rollback=False)
    assert len(env.mine()) == 4
    # the topology is abandoned before any run succeeds: the namespaces netstitch made must still go
    env.apply({"hosts": {env.HOST: {}}, "networks": {}, "containers": {}})
    assert env.mine() == [], "namespaces made by the failed run leaked"
    assert sorted(env.links()) == ["eth0", "lo"] and not env.has_netstitch_table()


def test_a_link_that_vanishes_between_read_and_write_is_not_an_error(env):
    """A container's namespace destroyed while netstitch prunes it: the kernel removes the veth on its own, a moment
    before netstitch's own removal. The goal (no such veth) is reached, so the run succeeds."""
    topo = base_topology(env)
    gone = endpoints(env.apply(topo))["web2/eth0"]["host_ifname"]
    topo2 = dict(topo, containers={k: v for k, v in topo["containers"].items() if k != "web2"})
    res = env.apply(topo2, vanish=gone)
    assert any(a.startswith("remove veth %s" % gone) for a in res["actions"]), res["actions"]
    assert env.link(gone) is None and env.ns("web2") not in env.mine()
    assert env.gather()["in_sync"] is True
    assert_noop(env.apply(topo2))


def test_a_failed_first_apply_rolls_back_to_nothing(env):
    topo = base_topology(env)
    before = env.snapshot([env.hostns])
    err = env.apply(topo, fail_at="veth_add", ok=False)
    assert "injected failure" in err["error"] and "rolled back to the state before netstitch's first apply" in \
        err["error"], err
    assert env.mine() == [] and env.snapshot([env.hostns]) == before
    res = env.apply(topo)
    assert ping(env.ns("web"), "10.77.1.2") and endpoints(res)["web2/eth0"]["address"] == "10.77.1.2/24"
    assert_noop(env.apply(topo))
    env.apply({"hosts": {env.HOST: {}}, "networks": {}, "containers": {}})
