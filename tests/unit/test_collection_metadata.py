# Copyright: (c) 2026, PALHM maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The collection's metadata agrees with what the collection ships."""

from __future__ import annotations

import pathlib

import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]

# ansible-lint's galaxy[tags] rule accepts only these (production profile).
ALLOWED_GALAXY_TAGS = {
    'application', 'cloud', 'database', 'eda', 'infrastructure', 'linux',
    'monitoring', 'networking', 'security', 'storage', 'tools', 'windows',
}


def load(relpath):
    with open(ROOT / relpath, encoding='utf-8') as f:
        return yaml.safe_load(f)


def module_names():
    return {
        p.stem for p in (ROOT / 'plugins' / 'modules').glob('*.py')
        if p.name != '__init__.py'
    }


def test_galaxy_names_the_collection_palhm_palhm_under_gpl3():
    galaxy = load('galaxy.yml')
    assert (galaxy['namespace'], galaxy['name']) == ('palhm', 'palhm')
    assert galaxy['license'] == ['GPL-3.0-or-later']
    assert (ROOT / 'LICENSE').is_file()


def test_galaxy_tags_are_ones_ansible_lint_accepts():
    tags = set(load('galaxy.yml')['tags'])
    assert tags, 'galaxy.yml needs at least one tag'
    assert tags <= ALLOWED_GALAXY_TAGS, sorted(tags - ALLOWED_GALAXY_TAGS)


def test_built_collection_leaves_out_test_output_and_caches():
    ignored = set(load('galaxy.yml')['build_ignore'])
    for path in ('.ansible', 'tests/output', 'tests/integration/inventory',
                 '.venv*', 'bench/results', '*.tar.gz'):
        assert path in ignored, path


def test_action_group_lists_every_module_and_only_modules_that_exist():
    runtime = load('meta/runtime.yml')
    assert runtime['requires_ansible'] == '>=2.19.0'
    group = runtime['action_groups']['palhm']
    assert len(group) == len(set(group)), 'duplicate entry in action group palhm'
    on_disk = module_names()
    missing_from_group = sorted(on_disk - set(group))
    without_module_file = sorted(set(group) - on_disk)
    assert not missing_from_group, 'modules not in action group palhm: %s' % missing_from_group
    assert not without_module_file, 'action group palhm names missing modules: %s' % without_module_file


def test_execution_environment_points_at_existing_dependency_files():
    ee = load('meta/execution-environment.yml')
    for kind in ('python', 'system'):
        assert (ROOT / ee['dependencies'][kind]).is_file(), ee['dependencies'][kind]
