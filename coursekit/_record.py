"""`python -m coursekit._record ARGS`: `nbgrader ARGS`, with nbgrader imported in advance.

`coursekit grade --jobs N` starts this while its workers execute notebooks, so the ~2 s of
importing nbgrader is off the critical path; the final recording pass then starts the moment the
process reads "go" on stdin (anything else: exit without running).
"""

from __future__ import annotations

import sys


def main() -> int:
    # the imports are the point: what `nbgrader autograde --no-execute` will need
    import nbgrader.apps.autogradeapp
    import nbgrader.converters.autograde  # noqa: F401
    from nbgrader.apps.nbgraderapp import NbGraderApp

    import coursekit.bounds
    import coursekit.restore  # noqa: F401

    if sys.stdin.readline().strip() != "go":
        return 0
    NbGraderApp.launch_instance(argv=sys.argv[1:])
    return 0


if __name__ == "__main__":
    sys.exit(main())
