# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palhm.palhm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The `palhm` command: the engine for cron and systemd.

Exit codes: 0 success, 1 task failed (rolled back), 2 config or usage error,
3 lock held (another run of the task), 4 cancelled by a signal, 5 verify found
a mismatch, 6 a lock or state directory (or a file in it) is unusable or unsafe,
7 `status`: some task is not ok.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys

from . import __version__, config, redact
from .errors import EXIT_CONFIG, EXIT_NOT_OK, EXIT_OK, EXIT_TASK_FAILED, PalhmError, UsageError
from .runtime import VL_DEBUG, Runtime, cancel_on_signals

HELP = {
    "run": "run [TASK]: run a task (default, or an empty TASK: %r)" % config.DEFAULT_TASK,
    "config": "config [--query EXPR]: load, validate and print the resolved config",
    "mods": "mods: list the optional engine modules",
    "list": "list TASK [--json] [--query EXPR]: the copies of a backup task (prefix, state, size, objects)",
    "status": "status [TASK] [--json] [--query EXPR]: is every task's data safe now? per task the verdict "
              "(ok, stale, failing, never-run, no-copy), last run, last success, newest complete copy and why; "
              "exit code 0 only when every task is ok",
    "verify": "verify TASK [PREFIX]: re-hash a copy's objects against its manifest (default: newest)",
    "restore": "restore TASK [PREFIX] PATH [--exec ID | --exec-inline CMD]... [--into FILE] [--verify-first]: "
               "stream one object of a complete copy (default: newest) to stdout or FILE, verified against "
               "its manifest, optionally through a pipeline of Execs",
    "boot-report": "boot-report [--mark-clean-shutdown]: compose and send the boot report",
    "help": "help [CMD]: this help",
}
EXIT_HELP = """exit codes: 0 success, 1 task failed (rolled back), 2 config or usage error,
3 another run holds the lock, 4 cancelled by a signal, 5 verify or restore mismatch,
6 lock or state directory unusable or unsafe (owner, mode, symlink, read-only),
7 status: some task is not ok
--query EXPR (status, list, config): print what the JMESPath EXPR selects, as JSON
(needs the Python library jmespath)"""


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise UsageError(message)


def _parser():
    p = _Parser(prog="palhm", description="Periodic Automatic Live Host Maintenance",
                epilog=EXIT_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    g = p.add_mutually_exclusive_group()
    g.add_argument("-q", "--quiet", action="store_true", help="only errors reach stderr (for cron)")
    g.add_argument("-v", "--verbose", action="store_true", help="debug output")
    p.add_argument("-f", "--config", default=None, metavar="FILE",
                   help="config file (default: %s, else %s when only that one exists)"
                   % (config.DEFAULT_PATH, config.DEFAULT_FALLBACK))
    p.add_argument("--version", action="version", version="palhm " + __version__)
    sub = p.add_subparsers(dest="cmd", metavar="COMMAND")
    s = sub.add_parser("run", help=HELP["run"])
    s.add_argument("task", nargs="?", default=config.DEFAULT_TASK)
    s = sub.add_parser("config", help=HELP["config"])
    _query_arg(s)
    sub.add_parser("mods", help=HELP["mods"])
    s = sub.add_parser("list", help=HELP["list"])
    s.add_argument("task")
    s.add_argument("--json", action="store_true")
    _query_arg(s)
    s = sub.add_parser("status", help=HELP["status"])
    s.add_argument("task", nargs="?")
    s.add_argument("--json", action="store_true", help="the status document as JSON (see docs/config.md)")
    _query_arg(s)
    s = sub.add_parser("verify", help=HELP["verify"])
    s.add_argument("task")
    s.add_argument("prefix", nargs="?")
    s = sub.add_parser("restore", help=HELP["restore"])
    s.add_argument("task")
    s.add_argument("args", nargs="+", metavar="[PREFIX] PATH")
    s.add_argument("--exec", dest="pipeline", action="append", metavar="ID",
                   type=lambda v: {"type": "exec", "exec-id": v},
                   help="pipe the object through this Exec of the config (repeat for a pipeline)")
    s.add_argument("--exec-inline", dest="pipeline", action="append", metavar="CMD",
                   type=lambda v: {"type": "exec-inline", "argv": shlex.split(v)},
                   help="pipe the object through this command (split like a shell would, run without one)")
    s.add_argument("--into", metavar="FILE",
                   help="write to FILE (replaced atomically, only once verified) instead of stdout")
    s.add_argument("--verify-first", action="store_true",
                   help="with a pipeline: verify the whole object before feeding it (reads it twice)")
    s = sub.add_parser("boot-report", help=HELP["boot-report"])
    s.add_argument("--mark-clean-shutdown", action="store_true")
    s = sub.add_parser("help", help=HELP["help"])
    s.add_argument("topic", nargs="?")
    return p


def _query_arg(sub):
    sub.add_argument("--query", metavar="EXPR",
                     help="print what this JMESPath expression selects from the JSON output (needs jmespath)")


def _dump(out, doc, args):
    """Write `doc` as JSON, or what --query selects from it."""
    if getattr(args, "query", None) is not None:
        from .query import search
        doc = search(args.query, doc)
    out.write(json.dumps(doc, indent=1) + "\n")


def _check_query(args):
    """A bad --query (or no jmespath) is said before anything is read."""
    if getattr(args, "query", None) is not None:
        from .query import compile_expression
        compile_expression(args.query)


def _vl(args, cfg):
    if args.quiet:
        return 0
    if args.verbose:
        return VL_DEBUG
    return cfg.vl if cfg is not None else 3


def _human(n):
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return ("%d %s" % (n, unit)) if unit == "B" else ("%.1f %s" % (n, unit))
        n /= 1024.0
    return str(n)  # pragma: no cover


def cmd_list(rt, args, out):
    from .inspect import listing
    copies, warnings = listing(rt.config, args.task, rt.hostname)
    if not args.quiet:
        for line in warnings:
            sys.stderr.write("palhm: warning: %s\n" % line)
    if args.json or args.query is not None:
        _dump(out, copies, args)
        return 0
    out.write("%-28s %-10s %12s %8s\n" % ("PREFIX", "STATE", "SIZE", "OBJECTS"))
    for c in copies:
        out.write("%-28s %-10s %12s %8d\n" % (c["prefix"], c["state"], _human(c["size"]), c["objects"]))
        if c.get("problem"):
            out.write("  %s\n" % c["problem"])
    return 0


def cmd_status(rt, args, out):
    from .status import human_age, status
    doc = status(rt.config, args.task or None)
    code = EXIT_OK if doc["ok"] else EXIT_NOT_OK
    if args.json or args.query is not None:
        _dump(out, doc, args)
        return code
    row = "%-16s %-12s %-9s %-22s %-12s %s\n"
    out.write(row % ("TASK", "TYPE", "VERDICT", "LAST RUN", "LAST SUCCESS", "NEWEST COPY"))
    for t in doc["tasks"]:
        last = t["last_run"]
        last_text = "-" if last is None else "%s ago, %s" % (human_age(last["age"]), last["result"])
        success = "-" if t["last_success"] is None else human_age(t["last_success"]["age"]) + " ago"
        newest = t["newest_copy"]
        copy_text = "-"
        if newest is not None:
            copy_text = "%s (%s, %d objects)" % (newest["prefix"], _human(newest["size"]), newest["objects"])
        out.write(row % (t["task"], t["type"], t["verdict"], last_text, success, copy_text))
        out.write("  %s%s\n" % ("(running now) " if t["running"] else "", t["reason"]))
    return code


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    out = sys.stdout
    try:
        args = _parser().parse_args(argv)
    except UsageError as e:
        sys.stderr.write("palhm: %s (see 'palhm help')\n" % e)
        return EXIT_CONFIG
    cmd = args.cmd or "help"
    try:
        if cmd == "help":
            if getattr(args, "topic", None):
                if args.topic not in HELP:
                    raise UsageError("no command %r" % args.topic)
                out.write(HELP[args.topic] + "\n")
            else:
                _parser().print_help(out)
            return 0
        if cmd == "mods":
            for name, desc in sorted(config.KNOWN_MODULES.items()):
                out.write("%s\t%s\n" % (name, desc))
            return 0
        if cmd == "boot-report" and args.mark_clean_shutdown:
            from . import bootreport
            bootreport.mark_clean_shutdown()
            return 0
        _check_query(args)
        cfg = config.load(args.config)
        if not args.quiet:
            # Accepted but ignored keys (the original's prefix, a null
            # backend's leftover parameters): said once, on stderr.
            for w in cfg.warnings:
                sys.stderr.write("palhm: warning: %s\n" % redact.text(w))
        if cmd == "config":
            if args.query is not None:
                _dump(out, cfg.describe(), args)
            else:
                out.write(json.dumps(cfg.describe(), indent=2) + "\n")
            return 0
        err = getattr(sys.stderr, "buffer", sys.stderr)
        rt = Runtime(cfg, vl=_vl(args, cfg), stdout=getattr(out, "buffer", out), stderr=err)
        if cmd == "run":
            with cancel_on_signals(rt, restore=False):
                # The original ran the default task for an empty TASK too.
                rt.run_task(args.task or config.DEFAULT_TASK)
            return 0
        if cmd == "list":
            return cmd_list(rt, args, out)
        if cmd == "status":
            return cmd_status(rt, args, out)
        if cmd == "verify":
            from .inspect import verify
            res = verify(rt.config, args.task, args.prefix)
            out.write("%s: %d objects verified, %d bytes\n" % (res["prefix"], len(res["objects"]), res["bytes"]))
            return 0
        if cmd == "restore":
            from .restore import restore
            prefix, path = (None, args.args[0]) if len(args.args) == 1 else args.args[:2]
            if len(args.args) > 2:
                raise UsageError("restore takes TASK [PREFIX] PATH")
            out.flush()
            with cancel_on_signals(rt, restore=False):
                restore(rt.config, args.task, prefix, path, dest=args.into, pipeline_items=args.pipeline,
                        rt=rt, out_fd=None if args.into else out.fileno(), verify_first=args.verify_first)
            return 0
        if cmd == "boot-report":
            from . import bootreport
            with cancel_on_signals(rt, restore=False):
                bootreport.run(cfg.boot_report, rt)
            return 0
        raise UsageError("unknown command %r" % cmd)  # pragma: no cover
    except PalhmError as e:
        # One line per problem, each prefixed, so cron mail reads well.
        for line in redact.text(str(e)).splitlines() or [type(e).__name__]:
            sys.stderr.write("palhm: %s\n" % line)
        return e.exit_code
    except KeyboardInterrupt:
        sys.stderr.write("palhm: interrupted\n")
        return 4
    except BrokenPipeError:
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
        return EXIT_TASK_FAILED
