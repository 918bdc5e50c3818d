# The two commands (see README.md):
#   make demo   set up this machine, build the 3-host lab, apply playbooks/site.yml to it, print a connectivity report
#   make test   set up this machine and run every test (unit, kernel integration, Ansible end-to-end, Molecule, sanity, lint)
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export ANSIBLE_COLLECTIONS_PATH := $(CURDIR)/.build/collections
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg

.PHONY: setup setup-dev demo demo-down test unit integration e2e molecule sanity lint bench docs

setup:
	bash scripts/setup.sh

setup-dev:
	bash scripts/setup.sh --dev

demo: setup
	bash scripts/demo.sh

demo-down:
	$(PY) lab/lab.py down --name fab

test: setup-dev
	bash scripts/test.sh

unit: setup-dev
	$(PY) -m pytest -q tests/unit

integration: setup-dev
	$(PY) -m pytest -q tests/integration

bench: setup-dev
	bash bench/run.sh

docs: setup-dev
	bash scripts/render_docs.sh
