"""Lines on stderr: the engine's log, never the protocol stream.

The reply channel is a private copy of the original stdout (see main), so stderr is the
only place for diagnostics. Writing must never raise: a worker whose stderr is closed or
broken still answers probes.
"""

import sys


def write_line(line):
    """`line` and a newline on stderr, flushed; errors are ignored."""
    try:
        sys.stderr.write(line + "\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


def log(message):
    """One line on stderr (the engine's log); never on the protocol stream."""
    write_line("convguard torch worker: %s" % message)
