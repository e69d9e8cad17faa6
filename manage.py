#!/usr/bin/env python
"""Run administrative tasks; a checkout defaults to the laptop ("local") mode."""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    os.environ.setdefault("PORTAL_MODE", "local")
    from django.core.management import execute_from_command_line

    if os.environ["PORTAL_MODE"] != "local" and sys.argv[1:2] != ["check"]:
        # `check --deploy` reports what is missing; any other command refuses to run without it.
        import django

        from portal.deployment import refuse_to_start_if_misconfigured

        django.setup()
        refuse_to_start_if_misconfigured()
    try:
        execute_from_command_line(sys.argv)
    except Exception as exc:
        # A database that is down or not migrated is the operator's to fix: one line, no
        # traceback.
        from portal.deployment import database_problem

        line = database_problem(exc, sys.argv[1] if len(sys.argv) > 1 else "")
        if line is None or "--traceback" in sys.argv:
            raise
        print(line, file=sys.stderr)
        raise SystemExit(69) from None  # EX_UNAVAILABLE


if __name__ == "__main__":
    main()
