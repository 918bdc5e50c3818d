#!/usr/bin/env bash
# Render the README's topology picture (docs/images/demo-topology.{dot,svg,png}) from playbooks/topology.yml, and the
# docsite's topology reference from the JSON Schema. tests/unit/test_graph.py and tests/unit/test_docs.py fail when
# these are stale. Needs Graphviz's dot (scripts/setup.sh installs it).
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p docs/images
title="netstitch demo: playbooks/topology.yml (3 namespace hosts)"
for fmt in dot svg png; do
  bin/netstitch graph playbooks/topology.yml --title "$title" -o "docs/images/demo-topology.$fmt"
done
if [ -f scripts/gen_docs.py ]; then .venv/bin/python scripts/gen_docs.py; fi
echo "render_docs: ok"
