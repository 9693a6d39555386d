"""The runner: a `Suite` collects cases (plain functions) and runs them,
printing "ok <case>" / "FAIL <case>: why" / "skip <case>: why" and a count.
Exit status: 1 if any case failed, 77 (meson's "skipped") if every case
skipped, else 0."""

import argparse
import os
import sys
import traceback

from .checks import CaseFailure, Skip
from .env import Env
from .proc import set_binaries, unwind_on_sigterm


def parse_args(argv):
    p = argparse.ArgumentParser(add_help=True)
    p.add_argument("--gateway", default=os.environ.get("IG_GATEWAY"))
    p.add_argument("--model", default=os.environ.get("IG_MODEL"))
    p.add_argument("-k", dest="only", action="append", default=[],
                   help="run only cases whose name contains this (repeatable)")
    p.add_argument("--keep", action="store_true", help="keep the temp dirs")
    args = p.parse_args(argv)
    set_binaries(args.gateway, args.model)
    return args


class Suite:
    def __init__(self, name):
        self.name = name
        self.cases = []

    def case(self, fn):
        self.cases.append(fn)
        return fn

    def run(self, argv=None):
        args = parse_args(sys.argv[1:] if argv is None else argv)
        Env.keep = args.keep
        unwind_on_sigterm()
        failed, skipped, passed = [], [], []
        for fn in self.cases:
            name = fn.__name__
            if args.only and not any(o in name for o in args.only):
                continue
            sys.stdout.write("-- %s\n" % name)
            sys.stdout.flush()
            try:
                fn()
            except Skip as e:
                skipped.append(name)
                print("skip %s: %s" % (name, e))
            except CaseFailure as e:
                failed.append(name)
                print("FAIL %s: %s" % (name, e))
            except Exception as e:
                failed.append(name)
                print("FAIL %s: unexpected %s: %s" % (name, type(e).__name__, e))
                traceback.print_exc(file=sys.stdout)
            else:
                passed.append(name)
                print("ok %s" % name)
            sys.stdout.flush()
        print("%s: %d passed, %d failed, %d skipped" % (self.name, len(passed), len(failed),
                                                        len(skipped)))
        if skipped:
            print("skipped: " + ", ".join(skipped))
        if failed:
            print("failed: " + ", ".join(failed))
            sys.exit(1)
        if skipped and not passed:
            sys.exit(77)
        sys.exit(0)
