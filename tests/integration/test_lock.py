"""Two applies on one host serialise on the host lock; a lock held too long gives a clear error."""

import time

from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch import engine

from nskit import base_topology, netns_exists

HOLD = 1.0


def test_an_apply_waits_for_the_lock_then_proceeds(env):
    topo = base_topology(env)
    with engine.HostLock(env.state_dir, env.HOST, timeout=5):
        p = env.start_apply(topo)
        env.wait_locking(p)
        time.sleep(HOLD)
        assert p.poll() is None, "the apply finished while another process held the host lock"
        assert env.link("nsbr-front") is None, "the apply changed the host while another process held the lock"
        assert env.mine() == []
        released = time.time()
    reply = env.finish(p, ok=None)
    assert reply["ok"], reply.get("error")
    res = reply["result"]
    assert res["changed"] is True and env.link("nsbr-front") is not None
    assert reply["lock"]["acquired"] >= released
    assert res["timing"]["lock_wait"] >= HOLD * 0.9, res["timing"]


def test_two_applies_at_once_serialise(env):
    topo = base_topology(env)
    # hold the lock until both ask for it, so they certainly overlap in time; then let them race for it
    with engine.HostLock(env.state_dir, env.HOST, timeout=5):
        procs = [env.start_apply(topo), env.start_apply(topo)]
        for p in procs:
            env.wait_locking(p)
        time.sleep(0.2)
        released = time.time()
    replies = [env.finish(p, ok=None) for p in procs]
    assert all(r["ok"] for r in replies), [r.get("error") for r in replies]
    first, second = sorted(replies, key=lambda r: r["lock"]["acquired"])
    assert max(r["lock"]["requested"] for r in replies) < released <= first["lock"]["acquired"]
    # one ran after the other: the intervals during which each held the lock do not overlap...
    assert first["lock"]["released"] <= second["lock"]["acquired"]
    # ...and the second saw the first's work, so it had nothing left to do (run concurrently, both would have
    # tried to create the same bridges and veths)
    assert first["result"]["changed"] is True
    assert second["result"]["changed"] is False and second["result"]["actions"] == []
    # each waited for the lock (the test's hold, then the first apply): the engine reports the wait it saw
    assert min(r["result"]["timing"]["lock_wait"] for r in replies) > 0.1
    assert first["result"]["endpoints"] == second["result"]["endpoints"]


def test_lock_timeout_gives_a_clear_error_and_changes_nothing(env):
    topo = base_topology(env)
    with engine.HostLock(env.state_dir, env.HOST, timeout=5) as held:
        t0 = time.monotonic()
        err = env.apply(topo, lock_timeout=0.5, ok=False)
        took = time.monotonic() - t0
    assert err["type"] == "ApplyError"
    assert "another netstitch apply holds %s" % held.path in err["error"], err["error"]
    assert "0.5s" in err["error"], err["error"]
    assert took < 5
    assert env.link("nsbr-front") is None and env.mine() == [] and not env.has_netstitch_table()
    assert not netns_exists(env.ns("web"))
    # once the lock is free, the same apply goes through
    assert env.apply(topo, lock_timeout=0.5)["changed"] is True
