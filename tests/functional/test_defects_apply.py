# Copyright: (c) 2026, palhm.palhm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Every planted defect of the reliability campaign still applies to today's
engine: a substitution whose text the engine no longer holds would make
`tests/reliability/run.sh --planted` fail late, or (worse) be edited into a
no-op. This runs in the functional step, so CI sees a stale defect at once."""

from __future__ import annotations

import sys

import pytest

from conftest import ENGINE_DIR, REPO

sys.path.insert(0, str(REPO / "tests" / "reliability"))

import defects  # noqa: E402  pylint: disable=wrong-import-position,wrong-import-order


@pytest.mark.parametrize("name", sorted(defects.DEFECTS))
def test_defect_applies_and_changes_the_engine(name, tmp_path):
    out = defects.make_engine(name, tmp_path / "engine", ENGINE_DIR)
    changed = []
    for rel, _old, new in defects.DEFECTS[name][2]:
        planted = (out / "palhm" / rel).read_text(encoding="utf-8")
        pristine = (ENGINE_DIR / "palhm" / rel).read_text(encoding="utf-8")
        assert new in planted, (name, rel)
        changed.append(planted != pristine)
    assert all(changed), "defect %s leaves a file unchanged" % name
    scenario = defects.DEFECTS[name][0]
    campaign = (REPO / "tests" / "reliability" / "campaign.py").read_text(encoding="utf-8")
    assert '"%s":' % scenario in campaign, "defect %s names unknown scenario %s" % (name, scenario)
