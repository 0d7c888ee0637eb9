# Copyright: (c) 2026, palhm.palhm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""secrets-and-dirs (issue 12 items 6, 8, 9). Each run draws a secret env
name, fresh secret values and an int-opts form, then checks from outside:
(1) `palhm config` shows no secret; (2) `palhm -v run` of a stage that
echoes its environment and one whose argv holds a password prints no
secret, and the manifest and metrics hold none; (3) a failing stage and a
failing mailx are named without their secrets; (4) a lock-file symlink never
truncates its target and a group/world-writable or unusable lock directory
is one line, exit 6; (5) a backup task without objects and an out-of-range
duration are exit 2 naming the key, and the existing copy stays."""

from __future__ import annotations

import json
import os
import uuid

from lib import Palhm, Result

ENV_NAMES = ["PGPASSWORD", "MYSQL_PWD", "BORG_PASSPHRASE", "RESTIC_PASSWORD", "AWS_SECRET_ACCESS_KEY",
             "VAULT_TOKEN", "API_KEY", "REDISCLI_AUTH", "db_password"]
INT_OPTS = ["smtp-auth-password=%s", "smtp-auth-password-bob@mail.example=%s", "password-bob@mail.example=%s",
            "mta=smtps://bob:%s@mail.example:465", "smtp=smtp://bob:%s@mail.example"]
DURATIONS = [("keep-within", "10000y"), ("keep-within", "99999999999999d"), ("keep-within", 10 ** 20)]


def _secret(tag):
    return "S3cret-%s-%s" % (tag, uuid.uuid4().hex[:12])


def _doc(p, root, env_name, env_pw, argv_pw, mailx_pw, opt, fail=False, objects=True, mailx="mailx", **bp):
    echo = "echo \"using ${%s}\" >&2; env >&2; echo data" % env_name
    second = "cat; echo \"args: $*\" >&2" + ("; exit 9" if fail else "")
    params = {"root": str(root)}
    params.update(bp)
    task = {"id": "backup", "type": "backup", "backend": "localfs", "backend-param": params}
    if objects:
        task["objects"] = [{"path": "db.dump", "pipeline": [
            {"type": "exec", "exec-id": "dump"},
            {"type": "exec-inline", "argv": ["sh", "-c", second, "f", "--password=" + argv_pw]}]}]
    return {"metrics": {"path": str(p.workdir / "metrics" / "palhm.prom")},
            "execs": [{"id": "dump", "argv": ["sh", "-c", echo], "env": {env_name: env_pw}}],
            "tasks": [task],
            "boot-report": {"mua": "mailx", "mail-to": ["root@localhost"],
                            "mua-param": {"exec": mailx, "int-opts": ["v15-compat", opt % mailx_pw]}}}


def _one_line(r, code):
    lines = r.stderr.strip().splitlines()
    if r.returncode != code or len(lines) != 1 or "Traceback" in r.stderr:
        return "exit %d (want %d), stderr %r" % (r.returncode, code, r.stderr.strip()[-300:])
    return None


def one_run(ctx, res, n):
    p = Palhm(ctx, ctx.tmp / ("secrets-dirs-%d" % n))
    root = p.workdir / "root"
    env_name = ctx.rng.choice(ENV_NAMES)
    opt = ctx.rng.choice(INT_OPTS)
    env_pw, argv_pw, mailx_pw = _secret("env"), _secret("argv"), _secret("mailx")
    secrets = (env_pw, argv_pw, mailx_pw)
    probs = []

    def leaks(what, *texts):
        for s in secrets:
            if any(s in t for t in texts):
                probs.append("%s shows a secret (%s, int-opt %s)" % (what, env_name, opt.split("=")[0]))
                return

    p.write_config(_doc(p, root, env_name, env_pw, argv_pw, mailx_pw, opt))
    r = p.run("config")
    if r.returncode != 0:
        probs.append("palhm config: exit %d: %s" % (r.returncode, r.stderr.strip()[-200:]))
    leaks("palhm config", r.stdout, r.stderr)
    r = p.run("-v", "run", "backup")
    if r.returncode != 0:
        probs.append("palhm -v run: exit %d: %s" % (r.returncode, r.stderr.strip()[-200:]))
    leaks("palhm -v run (a stage echoing its env)", r.stdout, r.stderr)
    copies = sorted(c for c in os.listdir(str(root)) if not c.startswith(".")) if root.exists() else []
    if len(copies) != 1:
        probs.append("want one copy after the run, got %r" % copies)
    else:
        leaks("the manifest", (root / copies[0] / ".palhm-manifest.json").read_text())
    metrics = p.workdir / "metrics" / "palhm.prom"
    leaks("the metrics file", metrics.read_text() if metrics.exists() else "")

    p.write_config(_doc(p, root, env_name, env_pw, argv_pw, mailx_pw, opt, fail=True))
    r = p.run("run", "backup")
    if r.returncode != 1 or "exited with code 9" not in r.stderr:
        probs.append("a failing stage: exit %d, %r" % (r.returncode, r.stderr.strip()[-200:]))
    leaks("a failing stage's error", r.stdout, r.stderr)
    mailx = p.workdir / "mailx"
    mailx.write_text("#!/bin/sh\ncat >/dev/null\necho \"cannot send: $*\" >&2\nexit 1\n")
    mailx.chmod(0o755)
    p.write_config(_doc(p, root, env_name, env_pw, argv_pw, mailx_pw, opt, mailx=str(mailx)))
    r = p.run("boot-report")
    if r.returncode != 1:
        probs.append("a failing mailx: exit %d, %r" % (r.returncode, r.stderr.strip()[-200:]))
    leaks("a failing mailx's error", r.stdout, r.stderr)
    res.record(probs)

    # -- directories ----------------------------------------------------------
    probs = []
    run = p.workdir / "run"
    victim = p.workdir / "victim.txt"
    victim.write_text("precious\n")
    lock = run / "task-backup.lock"
    if lock.exists() or lock.is_symlink():
        lock.unlink()
    lock.symlink_to(victim)
    r = p.run("run", "backup")
    if victim.read_text() != "precious\n":
        probs.append("a symlinked lock file was followed: its target was truncated")
    bad = _one_line(r, 6)
    if bad:
        probs.append("a symlinked lock file: " + bad)
    lock.unlink()
    mode = ctx.rng.choice([0o777, 0o770, 0o722])
    run.chmod(mode)
    r = p.run("run", "backup")
    bad = _one_line(r, 6)
    if bad:
        probs.append("a lock directory of mode %04o: %s" % (mode, bad))
    run.chmod(0o700)
    (p.workdir / "afile").write_text("")
    saved = p.env["PALHM_RUN_DIR"]
    p.env["PALHM_RUN_DIR"] = str(p.workdir / "afile" / "run")
    bad = _one_line(p.run("run", "backup"), 6)
    if bad:
        probs.append("a lock directory under a file: " + bad)
    p.env["PALHM_RUN_DIR"] = saved
    res.record(probs)

    # -- what cannot be a sound backup ----------------------------------------
    probs = []
    before = sorted(os.listdir(str(root))) if root.exists() else []
    p.write_config(_doc(p, root, env_name, env_pw, argv_pw, mailx_pw, opt, objects=False, **{"nb-copy-limit": 1}))
    r = p.run("run", "backup")
    bad = _one_line(r, 2)
    if bad or "tasks[0].objects" not in r.stderr:
        probs.append("a backup task without objects: %s" % (bad or r.stderr.strip()))
    key, value = ctx.rng.choice(DURATIONS)
    p.write_config(_doc(p, root, env_name, env_pw, argv_pw, mailx_pw, opt, **{key: value}))
    r = p.run("run", "backup")
    bad = _one_line(r, 2)
    if bad or "backend-param.%s" % key not in r.stderr:
        probs.append("%s %s: %s" % (key, json.dumps(value), bad or r.stderr.strip()))
    after = sorted(os.listdir(str(root))) if root.exists() else []
    lost = len([c for c in before if c not in after and not c.startswith(".")])
    res.record(probs, lost=lost)


def secrets_and_dirs(ctx, runs):
    res = Result("secrets and dirs (redaction, lock dirs, refusals)")
    for n in range(runs):
        one_run(ctx, res, n)
    return res
