# Copyright: (c) 2026, palhm.palhm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Loading, merging and validating a PALHM config: what an admin writes and
what they are told when it is wrong."""

from __future__ import annotations

import json
import os

import pytest

from ansible_collections.palhm.palhm.plugins.module_utils.palhm import config, jsonc
from ansible_collections.palhm.palhm.plugins.module_utils.palhm.errors import ConfigError


def write(path, doc):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc), encoding="utf-8")
    return str(path)


def inline(*argv):
    return {"type": "exec-inline", "argv": list(argv)}


def backup_task(task_id="backup", **extra):
    task = {"id": task_id, "type": "backup", "backend": "null",
            "objects": [{"path": "a", "pipeline": [inline("true")]}]}
    task.update(extra)
    return task


def config_error(doc):
    """The ConfigError that validating `doc` (module-argument style) raises."""
    with pytest.raises(ConfigError) as exc:
        config.from_dict(doc)
    return exc.value


# --------------------------------------------------------------------------
# JSON and JSONC
# --------------------------------------------------------------------------

SAMPLE_JSONC = """\
// The sample of the original PALHM, comments and all.
{
  /* block comment
     spanning lines */
  "vl": 3, // line comment after a value
  "execs": [
    { "id": "url", "argv": [ "echo", "http://example.com/a//b", "/* not a comment */" ] },
  ],
  "tasks": [
    {
      "id": "backup",
      "type": "backup",
      "backend": "null",
      "objects": [
        { "path": "x", "pipeline": [ { "type": "exec", "exec-id": "url" }, ] },
      ],
    },
  ],
}
"""


def test_jsonc_file_with_comments_and_trailing_commas_loads(tmp_path):
    cfg = config.load(write(tmp_path / "palhm.jsonc", SAMPLE_JSONC))
    assert cfg.vl == 3
    # Comment markers inside strings are data, not comments.
    assert cfg.execs["url"].argv == ("echo", "http://example.com/a//b", "/* not a comment */")
    assert [o.path for o in cfg.tasks["backup"].objects] == ["x"]


def test_plain_json_file_does_not_accept_comments(tmp_path):
    path = write(tmp_path / "palhm.conf", SAMPLE_JSONC)
    with pytest.raises(ConfigError) as exc:
        config.load(path)
    assert exc.value.path == path
    assert "invalid JSON" in str(exc.value)


def test_jsonc_syntax_error_points_at_the_line_in_the_original_file(tmp_path):
    text = '// line 1\n/* line 2\n   line 3 */\n{\n  "vl": 3\n  "nb-workers": 1\n}\n'
    with pytest.raises(ConfigError) as exc:
        config.load(write(tmp_path / "bad.jsonc", text))
    assert "line 6" in str(exc.value)


def test_jsonc_strip_keeps_escaped_quotes_inside_strings():
    assert jsonc.loads('{"a": "say \\"//hi\\"", /* c */ "b": [1, 2,],}') == {"a": 'say "//hi"', "b": [1, 2]}


def test_missing_config_file_is_a_config_error_naming_the_file(tmp_path):
    missing = str(tmp_path / "nope.conf")
    with pytest.raises(ConfigError) as exc:
        config.load(missing)
    assert str(exc.value) == "%s: config file not found" % missing


# --------------------------------------------------------------------------
# include: C-style relative resolution, included-twice detection
# --------------------------------------------------------------------------

def test_relative_top_file_resolves_from_cwd_and_includes_from_their_own_dir(tmp_path, monkeypatch):
    # etc/palhm.conf includes conf.d/core.json (relative to etc/), which
    # includes more.json (relative to etc/conf.d/, not to etc/ or the cwd).
    write(tmp_path / "etc" / "palhm.conf", {"include": ["conf.d/core.json"], "tasks": [backup_task(
        objects=[{"path": "a", "pipeline": [{"type": "exec", "exec-id": "core"},
                                            {"type": "exec", "exec-id": "more"}]}])]})
    write(tmp_path / "etc" / "conf.d" / "core.json", {"include": ["more.json"],
                                                      "execs": [{"id": "core", "argv": ["cat"]}]})
    write(tmp_path / "etc" / "conf.d" / "more.json", {"execs": [{"id": "more", "argv": ["cat"]}]})
    # Decoys where a wrong resolution would look.
    write(tmp_path / "etc" / "more.json", {"execs": [{"id": "decoy-etc", "argv": ["cat"]}]})
    write(tmp_path / "more.json", {"execs": [{"id": "decoy-cwd", "argv": ["cat"]}]})
    monkeypatch.chdir(tmp_path)
    cfg = config.load(os.path.join("etc", "palhm.conf"))
    assert sorted(cfg.execs) == ["core", "more"]
    assert cfg.files == ["etc/palhm.conf", str(tmp_path / "etc" / "conf.d" / "core.json"),
                         str(tmp_path / "etc" / "conf.d" / "more.json")]


def test_absolute_include_path_is_used_as_is(tmp_path):
    other = write(tmp_path / "elsewhere" / "execs.json", {"execs": [{"id": "z", "argv": ["zstd"]}]})
    cfg = config.load(write(tmp_path / "etc" / "palhm.conf", {"include": [other]}))
    assert list(cfg.execs) == ["z"]


def test_a_file_included_twice_is_an_error(tmp_path):
    write(tmp_path / "common.json", {"execs": [{"id": "c", "argv": ["cat"]}]})
    write(tmp_path / "a.json", {"include": ["common.json"]})
    write(tmp_path / "b.json", {"include": ["./sub/../common.json"]})
    (tmp_path / "sub").mkdir()
    top = write(tmp_path / "palhm.conf", {"include": ["a.json", "b.json"]})
    with pytest.raises(ConfigError) as exc:
        config.load(top)
    assert "included twice" in str(exc.value)
    assert "common.json" in exc.value.path


def test_circular_include_is_an_error(tmp_path):
    write(tmp_path / "a.json", {"include": ["palhm.conf"]})
    top = write(tmp_path / "palhm.conf", {"include": ["a.json"]})
    with pytest.raises(ConfigError) as exc:
        config.load(top)
    assert "included twice" in str(exc.value)


def test_missing_included_file_names_that_file(tmp_path):
    top = write(tmp_path / "palhm.conf", {"include": ["conf.d/gone.json"]})
    with pytest.raises(ConfigError) as exc:
        config.load(top)
    # The including file, the include and the file it names.
    assert exc.value.path == "%s: include[0]: %s" % (top, tmp_path / "conf.d" / "gone.json")
    assert "not found" in exc.value.msg


# --------------------------------------------------------------------------
# merge rules
# --------------------------------------------------------------------------

def test_execs_and_tasks_from_every_file_are_concatenated(tmp_path):
    write(tmp_path / "a.json", {"execs": [{"id": "a", "argv": ["cat"]}], "tasks": [backup_task("ta")]})
    write(tmp_path / "b.json", {"execs": [{"id": "b", "argv": ["cat"]}], "tasks": [backup_task("tb")]})
    cfg = config.load(write(tmp_path / "palhm.conf", {"include": ["a.json", "b.json"],
                                                      "execs": [{"id": "top", "argv": ["cat"]}],
                                                      "tasks": [backup_task("ttop")]}))
    assert list(cfg.execs) == ["a", "b", "top"]
    assert list(cfg.tasks) == ["ta", "tb", "ttop"]


def test_the_same_exec_id_in_two_files_is_an_error_naming_the_second(tmp_path):
    write(tmp_path / "core.json", {"execs": [{"id": "zstd", "argv": ["zstd"]}]})
    top = write(tmp_path / "palhm.conf", {"include": ["core.json"], "execs": [{"id": "zstd", "argv": ["xz"]}]})
    with pytest.raises(ConfigError) as exc:
        config.load(top)
    assert exc.value.path == top + ": execs[0].id"
    assert exc.value.msg == 'duplicate exec id "zstd" (also at %s: execs[0].id)' % (tmp_path / "core.json")


def test_the_same_task_id_in_two_files_is_an_error(tmp_path):
    write(tmp_path / "a.json", {"tasks": [backup_task("backup")]})
    top = write(tmp_path / "palhm.conf", {"include": ["a.json"], "tasks": [backup_task("backup")]})
    with pytest.raises(ConfigError) as exc:
        config.load(top)
    assert exc.value.path == top + ": tasks[0].id"
    assert "duplicate task id" in exc.value.msg


def test_scalars_are_overridden_by_later_files(tmp_path):
    write(tmp_path / "a.json", {"vl": 1, "nb-workers": 2})
    write(tmp_path / "b.json", {"vl": 2})
    cfg = config.load(write(tmp_path / "palhm.conf", {"include": ["a.json", "b.json"]}))
    assert (cfg.vl, cfg.nb_workers) == (2, 2)
    # As the original documents: an included file's value wins over the including file's.
    cfg = config.load(write(tmp_path / "top2.conf", {"include": ["a.json", "b.json"], "vl": 4, "nb-workers": 7}))
    assert (cfg.vl, cfg.nb_workers) == (2, 2)
    # Module arguments (from_dict) win over what they include.
    cfg = config.from_dict({"include": [str(tmp_path / "a.json")], "nb-workers": 7})
    assert (cfg.vl, cfg.nb_workers) == (1, 7)


def test_boot_report_mail_to_lists_concatenate_across_files(tmp_path):
    write(tmp_path / "a.json", {"boot-report": {"mua": "stdout", "mail-to": ["root"]}})
    write(tmp_path / "b.json", {"boot-report": {"mail-to": ["ops@example.com"]}})
    raw = config.load_raw(write(tmp_path / "palhm.conf", {"include": ["a.json", "b.json"],
                                                          "boot-report": {"mail-to": ["audit@example.com"]}}))
    assert raw.boot_report["mail-to"].value == ["root", "ops@example.com", "audit@example.com"]
    assert raw.boot_report["mua"].value == "stdout"


def test_boot_report_mua_may_be_set_only_once(tmp_path):
    write(tmp_path / "a.json", {"boot-report": {"mua": "stdout", "mail-to": ["root"]}})
    top = write(tmp_path / "palhm.conf", {"include": ["a.json"], "boot-report": {"mua": "mailx"}})
    with pytest.raises(ConfigError) as exc:
        config.load_raw(top)
    assert exc.value.path == top + ": boot-report.mua"
    assert "only once" in exc.value.msg


# --------------------------------------------------------------------------
# validation: every error names the JSON path
# --------------------------------------------------------------------------

def test_unknown_exec_in_a_pipeline_is_named_by_its_full_path():
    objects = [{"path": p, "pipeline": [{"type": "exec", "exec-id": "tar"}]} for p in ("a", "b")]
    objects.append({"path": "c", "pipeline": [{"type": "exec", "exec-id": "tar"},
                                              {"type": "exec", "exec-id": "zstd"}]})
    err = config_error({"execs": [{"id": "tar", "argv": ["tar", "-c"]}],
                        "tasks": [backup_task(objects=objects)]})
    assert str(err) == 'tasks[0].objects[2].pipeline[1].exec-id: no exec named "zstd"'


def test_errors_in_a_file_start_with_the_file_name(tmp_path):
    top = write(tmp_path / "palhm.conf", {"tasks": [backup_task(objects=[
        {"path": "a", "pipeline": [{"type": "exec", "exec-id": "zstd"}]}])]})
    with pytest.raises(ConfigError) as exc:
        config.load(top)
    assert str(exc.value) == '%s: tasks[0].objects[0].pipeline[0].exec-id: no exec named "zstd"' % top


def test_a_typo_in_a_key_is_reported_with_a_suggestion():
    err = config_error({"tasks": [{"id": "t", "type": "backup", "objcts": []}]})
    assert err.path == "tasks[0].objcts"
    assert "unknown key" in err.msg and "did you mean 'objects'" in err.msg


def test_a_typo_in_a_top_level_key_is_reported_with_a_suggestion():
    err = config_error({"exces": []})
    assert err.path == "exces"
    assert "did you mean 'execs'" in err.msg


def test_a_typo_in_backend_param_is_reported():
    err = config_error({"tasks": [backup_task(backend="localfs",
                                              **{"backend-param": {"root": "/srv", "nb-copy-limt": 3}})]})
    assert err.path == "tasks[0].backend-param.nb-copy-limt"
    assert "did you mean 'nb-copy-limit'" in err.msg


def test_a_typo_in_a_pipeline_item_is_reported():
    err = config_error({"tasks": [backup_task(objects=[{"path": "a", "pipeline": [
        {"type": "exec-inline", "argv": ["true"], "evn": {}}]}])]})
    assert err.path == "tasks[0].objects[0].pipeline[0].evn"
    assert "did you mean 'env'" in err.msg


def test_a_missing_required_key_is_named():
    err = config_error({"tasks": [backup_task(objects=[{"path": "a"}])]})
    assert str(err) == "tasks[0].objects[0].pipeline: required key is missing"


def test_a_wrong_type_names_the_path_and_the_value():
    err = config_error({"execs": [{"id": "x", "argv": "tar -c"}]})
    assert err.path == "execs[0].argv"
    assert '"tar -c"' in err.msg


def test_an_unknown_pipeline_type_is_named():
    err = config_error({"tasks": [backup_task(objects=[{"path": "a", "pipeline": [{"type": "shell"}]}])]})
    assert err.path == "tasks[0].objects[0].pipeline[0].type"
    assert "exec-inline" in err.msg


def test_an_unknown_backend_is_named():
    err = config_error({"tasks": [backup_task(backend="ftp")]})
    assert err.path == "tasks[0].backend"


def test_localfs_root_must_be_absolute():
    err = config_error({"tasks": [backup_task(backend="localfs", **{"backend-param": {"root": "backups"}})]})
    assert err.path == "tasks[0].backend-param.root"


def test_the_original_localfs_params_are_accepted():
    cfg = config.from_dict({"tasks": [backup_task(backend="localfs", **{"backend-param": {
        "root": "/media/backup/localhost", "dmode": "755", "fmode": "644", "nb-copy-limit": "Infinity",
        "root-size-limit": "Infinity", "block-size": 8388608}})]})
    params = cfg.tasks["backup"].params
    assert (params["dmode"], params["fmode"], params["block-size"]) == (0o755, 0o644, 8388608)


# --------------------------------------------------------------------------
# object groups
# --------------------------------------------------------------------------

def test_object_group_cycle_is_an_error_showing_the_cycle():
    err = config_error({"tasks": [backup_task(**{"object-groups": [
        {"id": "a", "depends": ["c"]}, {"id": "b", "depends": ["a"]}, {"id": "c", "depends": ["b"]}]})]})
    assert err.path == "tasks[0].object-groups"
    assert "cycle" in err.msg
    assert "a -> c -> b -> a" in err.msg


def test_a_group_depending_on_itself_is_an_error():
    err = config_error({"tasks": [backup_task(**{"object-groups": [{"id": "x"}, {"id": "a", "depends": ["x", "a"]}]})]})
    assert err.path == "tasks[0].object-groups[1].depends[1]"
    assert "itself" in err.msg


def test_depending_on_an_unknown_group_is_an_error():
    err = config_error({"tasks": [backup_task(**{"object-groups": [{"id": "a", "depends": ["nope"]}]})]})
    assert str(err) == 'tasks[0].object-groups[0].depends[0]: no object group named "nope"'


def test_an_object_in_an_unknown_group_is_an_error():
    err = config_error({"tasks": [backup_task(objects=[{"path": "a", "group": "sqll", "pipeline": [inline("true")]}],
                                              **{"object-groups": [{"id": "sql"}]})]})
    assert str(err) == 'tasks[0].objects[0].group: no object group named "sqll"'


def test_duplicate_group_ids_are_an_error():
    err = config_error({"tasks": [backup_task(**{"object-groups": [{"id": "a"}, {"id": "a"}]})]})
    assert err.path == "tasks[0].object-groups[1].id"


def test_groups_of_the_original_sample_build_in_dependency_order():
    objs = [{"path": g + ".tar", "group": g, "pipeline": [inline("true")]} for g in ("root", "http", "sql", "ldap")]
    cfg = config.from_dict({"tasks": [backup_task(objects=objs, **{"object-groups": [
        {"id": "root"}, {"id": "http"}, {"id": "sql", "depends": ["http"]}, {"id": "ldap", "depends": ["sql"]},
    ]})]})
    order = cfg.tasks["backup"].build_order()
    layers = [sorted(layer["objects"]) for layer in order]
    assert layers == [["http.tar", "root.tar"], ["sql.tar"], ["ldap.tar"]]


# --------------------------------------------------------------------------
# object paths
# --------------------------------------------------------------------------

@pytest.mark.parametrize("bad", ["../etc.tar", "a/../../b", "/etc/passwd", "./..", ".", "a/", "",
                                 ".palhm-manifest.json", ".palhm-anything", "x.palhm-partial"])
def test_object_paths_that_leave_the_copy_or_use_reserved_names_are_rejected(bad):
    err = config_error({"tasks": [backup_task(objects=[
        {"path": "ok.tar", "pipeline": [inline("true")]}, {"path": bad, "pipeline": [inline("true")]}])]})
    assert err.path == "tasks[0].objects[1].path"


def test_object_paths_may_have_subdirectories():
    cfg = config.from_dict({"tasks": [backup_task(objects=[{"path": "db/all.sql.zst", "pipeline": [inline("true")]}])]})
    assert cfg.tasks["backup"].objects[0].path == "db/all.sql.zst"


def test_two_objects_with_the_same_path_are_an_error():
    err = config_error({"tasks": [backup_task(objects=[
        {"path": "a", "pipeline": [inline("true")]}, {"path": "a", "pipeline": [inline("true")]}])]})
    assert err.path == "tasks[0].objects[1].path"
    assert "duplicate" in err.msg


def test_an_empty_pipeline_is_an_error():
    err = config_error({"tasks": [backup_task(objects=[{"path": "a", "pipeline": []}])]})
    assert err.path == "tasks[0].objects[0].pipeline"


# --------------------------------------------------------------------------
# decimals (nb-copy-limit, root-size-limit)
# --------------------------------------------------------------------------

def retention_of(**bp):
    bp.setdefault("root", "/srv/backup")
    cfg = config.from_dict({"tasks": [backup_task(backend="localfs", **{"backend-param": bp})]})
    return cfg.tasks["backup"].params["retention"]


@pytest.mark.parametrize("text,expected", [
    ("Infinity", float("inf")), ("inf", float("inf")), ("-inf", float("-inf")), ("-Infinity", float("-inf")),
    ("7", 7), (7, 7), ("7.9", 7), (7.9, 7),
])
def test_decimal_limits_accept_numbers_strings_and_infinity(text, expected):
    assert retention_of(**{"nb-copy-limit": text}).nb_copy_limit == expected


def test_decimal_limits_have_no_2_pow_53_limit():
    big = 2 ** 53 + 1  # not representable as a double
    assert retention_of(**{"root-size-limit": big}).root_size_limit == big
    assert retention_of(**{"root-size-limit": str(big)}).root_size_limit == big
    huge = "123456789012345678901234567890"
    assert retention_of(**{"root-size-limit": huge}).root_size_limit == int(huge)


def test_decimal_limits_parse_exactly_from_a_json_file(tmp_path):
    text = '{"tasks": [{"id": "b", "type": "backup", "backend": "localfs", ' \
           '"backend-param": {"root": "/srv/backup", "root-size-limit": 9007199254740993}, ' \
           '"objects": [{"path": "x", "pipeline": [{"type": "exec-inline", "argv": ["true"]}]}]}]}'
    cfg = config.load(write(tmp_path / "palhm.conf", text))
    assert cfg.tasks["b"].params["retention"].root_size_limit == 9007199254740993


@pytest.mark.parametrize("bad", ["lots", "NaN", True, [3], "1e"])
def test_a_bad_decimal_is_named(bad):
    with pytest.raises(ConfigError) as exc:
        retention_of(**{"nb-copy-limit": bad})
    assert exc.value.path == "tasks[0].backend-param.nb-copy-limit"


def test_vl_and_nb_workers_accept_strings_like_the_original():
    cfg = config.from_dict({"vl": "4", "nb-workers": "-1"})
    assert (cfg.vl, cfg.nb_workers) == (4, -1)
    assert cfg.workers() >= 1


def test_nb_workers_zero_means_the_cpus_this_process_may_use():
    cfg = config.from_dict({"nb-workers": 0})
    assert cfg.workers() == len(os.sched_getaffinity(0))


def test_unknown_task_is_a_usage_error_listing_the_tasks():
    cfg = config.from_dict({"tasks": [backup_task("backup")]})
    with pytest.raises(Exception) as exc:
        cfg.task("bakup")
    assert "backup" in str(exc.value) and "bakup" in str(exc.value)
