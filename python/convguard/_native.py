"""Where the convguard command is, and how to run it from Python.

The probing, the store and the planner are C++ (the `convguard` command); the Python
package drives that command in a child process, so that nothing that can hang runs in
the user's interpreter. This module finds the command and the environment it needs.

Where the command comes from, in order:

1. $CONVGUARD_BIN: a path to a `convguard` binary (a build tree, a test). The binary then
   finds the PyTorch worker and libconvguard_check.so where its build put them.
2. The installed package (`pip install .`): `convguard/_prefix/bin/convguard` inside this
   package, with the worker script in `_prefix/python` and the check library in
   `_prefix/lib`, handed to the binary by CONVGUARD_PYTHON_DIR and
   CONVGUARD_CHECKLIB_PATH.
3. `convguard` on $PATH (Debian `scripts/setup.sh` builds, installed by hand).

The torch backend runs its worker in an interpreter that imports torch: convguard's own
search prefers $CONVGUARD_PYTHON. Run from Python, the command gets
CONVGUARD_PYTHON=sys.executable (unless the caller set it), so the stack that is probed
is the PyTorch the caller runs.

Thread-safety: the functions read the environment and the file system only.
"""

import os
import shutil
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
_PREFIX = os.path.join(_HERE, "_prefix")


class ConvguardNotFound(RuntimeError):
    """No convguard command could be found; the message says where it was looked for."""


def installed_prefix():
    """The installed package's prefix holding bin/, lib/ and python/, or None."""
    binary = os.path.join(_PREFIX, "bin", "convguard")
    return _PREFIX if os.path.isfile(binary) and os.access(binary, os.X_OK) else None


def find_binary():
    """(path of the convguard binary, the prefix it was installed with or None)."""
    env = os.environ.get("CONVGUARD_BIN", "")
    if env:
        if not (os.path.isfile(env) and os.access(env, os.X_OK)):
            raise ConvguardNotFound(
                "CONVGUARD_BIN names '%s', which is not an executable file" % env)
        return os.path.abspath(env), None
    prefix = installed_prefix()
    if prefix is not None:
        return os.path.join(prefix, "bin", "convguard"), prefix
    on_path = shutil.which("convguard")
    if on_path:
        return on_path, None
    raise ConvguardNotFound(
        "no convguard command: not in $CONVGUARD_BIN, not installed with this package (%s), "
        "not on $PATH; install the package with `pip install .` from the repository, or "
        "set CONVGUARD_BIN to a built binary" % os.path.join(_PREFIX, "bin"))


def environment(prefix=None, base=None):
    """The environment the command runs with: `base` (default os.environ) plus what an
    installed prefix needs, and CONVGUARD_PYTHON = this interpreter unless set."""
    env = dict(os.environ if base is None else base)
    if prefix is not None:
        env.setdefault("CONVGUARD_PYTHON_DIR", os.path.join(prefix, "python"))
        env.setdefault("CONVGUARD_CHECKLIB_PATH",
                       os.path.join(prefix, "lib", "libconvguard_check.so"))
    if sys.executable:
        env.setdefault("CONVGUARD_PYTHON", sys.executable)
    return env


def command():
    """(argv prefix, environment) to run the convguard command."""
    binary, prefix = find_binary()
    return [binary], environment(prefix)


def main(argv=None):
    """The `convguard` console script of the installed package: runs the binary with
    the package's environment, replacing this process (signals, exit status and
    terminal go to the binary as if it had been started directly)."""
    argv = sys.argv[1:] if argv is None else argv
    try:
        binary, prefix = find_binary()
    except ConvguardNotFound as e:
        sys.stderr.write("convguard: %s\n" % e)
        return 1
    os.execve(binary, [binary] + list(argv), environment(prefix))
