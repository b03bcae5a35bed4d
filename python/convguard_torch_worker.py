#!/usr/bin/env python3
"""Entry script of convguard's PyTorch worker (the "torch" backend).

The C++ engine (src/backends/torch/torch_launcher.cc) and the tests run this file by
path:

    PYTHON -B convguard_torch_worker.py --checklib LIBCONVGUARD_CHECK \\
        [--device cpu|cuda|auto] --backend torch [--inject RULES_FILE]

The worker itself is the package convguard.worker beside this file (command line and
exit status: convguard/worker/main.py; docs/torch-worker.md). This script only makes
that package importable and runs it; it imports neither torch nor anything else heavy.
"""

import os
import sys

# This folder first: the worker must be the code of the tree the engine was built from,
# even where another convguard package is installed. realpath: a symlinked script still
# finds the package beside the real file, as Python's own sys.path[0] would.
_HERE = os.path.dirname(os.path.realpath(__file__))
if sys.path[:1] != [_HERE]:
    sys.path.insert(0, _HERE)

from convguard.worker.main import main  # noqa: E402 (needs the path above)

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
