"""The filter netstitch.fabric.per_host: {host: hostvars[host][path...]} for the hosts that have the value."""

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.netstitch.fabric.plugins.filter.per_host import FilterModule, per_host

HOSTVARS = {
    "h1": {"prepared": {"facts": {"tinc": {"n": "key1"}}, "changed": True}, "endpoints": [{"container": "a"}]},
    "h2": {"prepared": {"skipped": True}, "endpoints": []},
    "h3": {},
}


def test_nested_path_leaves_out_hosts_without_the_value():
    assert per_host(["h1", "h2", "h3"], HOSTVARS, ["prepared", "facts"]) == {"h1": {"tinc": {"n": "key1"}}}


def test_single_name_keeps_empty_values():
    assert per_host(["h1", "h2", "h3"], HOSTVARS, "endpoints") == {"h1": [{"container": "a"}], "h2": []}


def test_unknown_host_is_left_out_and_order_follows_the_input():
    assert list(per_host(["h2", "nohost", "h1"], HOSTVARS, "endpoints")) == ["h2", "h1"]


@pytest.mark.parametrize("hosts,path", [(["h1"], []), (["h1"], 3), ("h1", "endpoints")])
def test_bad_arguments_are_filter_errors(hosts, path):
    with pytest.raises(AnsibleFilterError):
        per_host(hosts, HOSTVARS, path)


def test_registered():
    assert FilterModule().filters()["per_host"] is per_host
