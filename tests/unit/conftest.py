"""Shared helpers for the pure-core unit tests (no kernel, no root, no drivers)."""

import copy
import os

import pytest
import yaml

HERE = os.path.dirname(os.path.abspath(__file__))

# A small valid topology the tests derive variants from: two hosts, a masqueraded, an internal and a quiet network.
BASE = {
    "version": 1,
    "hosts": {"h1": {"underlay": "192.0.2.1/24"}, "h2": {"underlay": "192.0.2.2/24"}, "h3": {}},
    "networks": {
        "front": {"subnet": "10.10.0.0/24"},
        "back": {"subnet": "10.20.0.0/24", "internal": True},
        "mgmt": {"subnet": "10.30.0.0/24", "masquerade": False, "mtu": 1400, "hosts": ["h2"]},
    },
    "containers": {
        "web": {"host": "h1", "interfaces": [{"network": "front", "ip": "10.10.0.10"}, {"network": "back"}]},
        "api": {"host": "h1", "interfaces": [{"network": "front"}]},
        "db": {"host": "h2", "interfaces": [{"network": "back", "ip": "10.20.0.5"}]},
    },
}


@pytest.fixture
def base():
    return copy.deepcopy(BASE)


def read_yaml(path):
    with open(path) as f:
        return yaml.safe_load(f)
