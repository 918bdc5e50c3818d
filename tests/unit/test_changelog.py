"""The changelog is antsibull-changelog's: fragments lint clean, and CHANGELOG.md is what the tool generates from
changelogs/changelog.yaml (checked on a copy, so a stale CHANGELOG.md fails here instead of being rewritten)."""

import os
import shutil
import subprocess
import sys

import pytest

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOOL = os.path.join(os.path.dirname(sys.executable), "antsibull-changelog")

pytestmark = pytest.mark.skipif(not os.path.exists(TOOL), reason="antsibull-changelog is not installed (setup.sh --dev)")


def test_fragments_lint_clean():
    r = subprocess.run([TOOL, "lint"], cwd=TOP, capture_output=True, text=True, timeout=120, check=False)
    assert r.returncode == 0 and not r.stdout.strip(), r.stdout + r.stderr


def test_changelog_md_is_generated(tmp_path):
    for rel in ("galaxy.yml", "CHANGELOG.md"):
        shutil.copy(os.path.join(TOP, rel), str(tmp_path / rel))
    shutil.copytree(os.path.join(TOP, "changelogs"), str(tmp_path / "changelogs"))
    r = subprocess.run([TOOL, "generate"], cwd=str(tmp_path), capture_output=True, text=True,
                       timeout=120, check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    with open(os.path.join(TOP, "CHANGELOG.md")) as a, open(str(tmp_path / "CHANGELOG.md")) as b:
        assert a.read() == b.read(), "CHANGELOG.md is stale: run antsibull-changelog generate"
