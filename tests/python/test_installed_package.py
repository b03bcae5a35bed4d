"""Tests of the pip-installed package (pyproject.toml; README.md, "Installing with pip").

They check what `pip install .` put into a virtual environment: the convguard package in
its site-packages, the binary, the check library and the PyTorch worker in
convguard/_prefix, and the `convguard` console script, all working without the source
or build tree.

Run by `scripts/setup.sh test` after `pip install .` into $BUILD_DIR/pip-venv, from a
scratch folder outside the source tree, with CONVGUARD_TEST_INSTALLED=1:

    cd "$(mktemp -d)" && CONVGUARD_TEST_INSTALLED=1 VENV/bin/python -m unittest \\
        discover -s REPO/tests/python -t REPO/tests/python -v

Without CONVGUARD_TEST_INSTALLED=1 every test is skipped: in a source-tree run the
package is not installed. Standard library only.
"""

import importlib.metadata
import os
import subprocess
import sys
import sysconfig
import tempfile
import unittest
from unittest import mock

INSTALLED = os.environ.get("CONVGUARD_TEST_INSTALLED") == "1"
SKIP_REASON = (
    "tests the pip-installed package: run with CONVGUARD_TEST_INSTALLED=1, under the "
    "interpreter of the venv it was installed into, from outside the source tree "
    "(scripts/setup.sh test does)")

# tests/python/ -> the repository root.
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

SEED_PROBLEM = "n1_c16_h64_w64_k32_r3_s3_p1_u1_d1_g1_f32_nchw_fwd"
SMALL_PROBLEM = "n1_c4_h8_w8_k4_r3_s3_p1_f32_nchw_fwd"

# Generous: a probe takes seconds, but the first torch import on a cold machine is slow.
TIMEOUT_S = 300

# Variables that would point the command somewhere else than the installed package.
REDIRECTING = ("CONVGUARD_BIN", "CONVGUARD_PYTHON_DIR", "CONVGUARD_CHECKLIB_PATH",
               "CONVGUARD_PYTHON", "CONVGUARD_DB", "PYTHONPATH")


def real(path):
    return os.path.normcase(os.path.realpath(path))


def is_within(path, folder):
    path, folder = real(path), real(folder)
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


@unittest.skipUnless(INSTALLED, SKIP_REASON)
class InstalledPackageTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        # Imported here, not at module level: in a source-tree run (skipped) the package
        # may not be importable at all.
        import convguard
        import convguard._native as native
        cls.convguard = convguard
        cls.native = native
        cls.package_dir = os.path.dirname(os.path.abspath(convguard.__file__))
        cls.prefix = os.path.join(cls.package_dir, "_prefix")
        # The console script pip wrote for this interpreter's environment.
        cls.script = os.path.join(os.path.dirname(sys.executable), "convguard")
        # Stack identities are remembered in a scratch folder, not the user's cache.
        cls.scratch = tempfile.TemporaryDirectory(prefix="convguard-installed-test-")
        cls.env = {k: v for k, v in os.environ.items() if k not in REDIRECTING}
        cls.env["CONVGUARD_CACHE_DIR"] = os.path.join(cls.scratch.name, "cache")

    @classmethod
    def tearDownClass(cls):
        cls.scratch.cleanup()

    def run_script(self, *args, env=None):
        return subprocess.run([self.script, *args], env=self.env if env is None else env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              timeout=TIMEOUT_S, check=False)

    def assert_verdict_ok(self, result, problem_prefix):
        message = "exit %d\nstdout:\n%s\nstderr:\n%s" % (result.returncode, result.stdout,
                                                           result.stderr)
        verdicts = [line.split() for line in result.stdout.splitlines()
                    if line and not line[0].isspace() and len(line.split()) >= 2]
        self.assertTrue(
            any(v[0] == "OK" and v[1].startswith(problem_prefix) for v in verdicts),
            "no OK verdict line for %s; %s" % (problem_prefix, message))
        self.assertEqual(result.returncode, 0, message)

    def test_package_is_imported_from_the_venv_site_packages(self):
        self.assertNotEqual(sys.prefix, sys.base_prefix,
                            "not running in a virtual environment (%s)" % sys.executable)
        site_dirs = {real(sysconfig.get_paths()[key]) for key in ("purelib", "platlib")}
        self.assertIn(real(os.path.dirname(self.package_dir)), site_dirs,
                      "convguard was imported from %s" % self.package_dir)
        self.assertTrue(is_within(self.package_dir, sys.prefix), self.package_dir)
        self.assertFalse(is_within(self.package_dir, os.path.join(REPO, "python")),
                         "convguard was imported from the source tree: %s" % self.package_dir)
        self.assertTrue(is_within(self.native.__file__, self.package_dir),
                        self.native.__file__)

    def test_installed_version_is_the_binarys(self):
        version = importlib.metadata.version("convguard")
        result = self.run_script("--version")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout.split(), ["convguard", version])

    def test_find_binary_returns_the_installed_binary(self):
        with mock.patch.dict(os.environ):
            os.environ.pop("CONVGUARD_BIN", None)
            binary, prefix = self.native.find_binary()
        self.assertEqual(real(binary), real(os.path.join(self.prefix, "bin", "convguard")))
        self.assertEqual(real(prefix), real(self.prefix))
        self.assertTrue(os.access(binary, os.X_OK), binary)
        for part in (("lib", "libconvguard_check.so"),
                     ("python", "convguard_torch_worker.py"),
                     ("python", "convguard", "worker", "main.py")):
            self.assertTrue(os.path.isfile(os.path.join(self.prefix, *part)),
                            "missing from the installed prefix: %s" % os.path.join(*part))

    def test_console_script_prints_usage(self):
        self.assertTrue(os.path.isfile(self.script) and os.access(self.script, os.X_OK),
                        "no console script %s" % self.script)
        result = self.run_script("--help")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("usage: convguard COMMAND", result.stdout)

    def test_reference_probe_of_the_seed_problem_is_ok(self):
        result = self.run_script("probe", SEED_PROBLEM, "--backend", "reference", "--no-store")
        self.assert_verdict_ok(result, SEED_PROBLEM)

    def test_torch_probe_is_ok_with_the_default_interpreter(self):
        # The console script hands the binary CONVGUARD_PYTHON=sys.executable: this venv,
        # which sees Debian's torch through --system-site-packages.
        result = self.run_script("probe", SMALL_PROBLEM, "--backend", "torch", "--no-store")
        self.assert_verdict_ok(result, "n1_c4_h8_w8_k4")

    def torch_probe_through_recording_interpreter(self, interpreter):
        """Probes with the torch backend under `interpreter`, started through a wrapper
        that records its arguments; returns (probe result, argument lists)."""
        folder = tempfile.mkdtemp(dir=self.scratch.name)
        log = os.path.join(folder, "argv.log")
        wrapper = os.path.join(folder, "python")
        with open(wrapper, "w") as f:
            f.write('#!/bin/sh\n'
                    'for a in "$@"; do printf "%%s\\n" "$a"; done >> "%s"\n'
                    'printf "%%s\\n" --end-- >> "%s"\n'
                    'exec "%s" "$@"\n' % (log, log, interpreter))
        os.chmod(wrapper, 0o755)
        env = dict(self.env, CONVGUARD_CACHE_DIR="off")  # a fresh interpreter search
        result = self.run_script("probe", SMALL_PROBLEM, "--backend", "torch", "--no-store",
                                 "--python", wrapper, env=env)
        calls, current = [], []
        if os.path.exists(log):
            with open(log) as f:
                for line in f.read().splitlines():
                    if line == "--end--":
                        calls.append(current)
                        current = []
                    else:
                        current.append(line)
        return result, calls

    def assert_worker_ran_from_prefix(self, calls):
        workers = [c for c in calls if c[:1] == ["-B"]]
        self.assertTrue(workers, "no worker started through the wrapper: %r" % calls)
        for argv in workers:
            self.assertEqual(real(argv[1]),
                             real(os.path.join(self.prefix, "python", "convguard_torch_worker.py")),
                             argv)
            self.assertIn("--checklib", argv)
            checklib = argv[argv.index("--checklib") + 1]
            self.assertEqual(real(checklib),
                             real(os.path.join(self.prefix, "lib", "libconvguard_check.so")),
                             argv)

    def test_torch_worker_and_check_library_come_from_the_prefix(self):
        result, calls = self.torch_probe_through_recording_interpreter(sys.executable)
        self.assert_verdict_ok(result, "n1_c4_h8_w8_k4")
        self.assert_worker_ran_from_prefix(calls)

    def test_torch_worker_runs_under_an_interpreter_without_the_package(self):
        # The worker imports convguard.worker from beside its launcher script in _prefix,
        # so an interpreter that has no convguard installed (--python) runs it too.
        other = "/usr/bin/python3"
        if not os.access(other, os.X_OK):
            self.skipTest("%s is missing" % other)
        probe = subprocess.run(
            [other, "-c", "import importlib.util as u, sys; "
                          "sys.exit(0 if u.find_spec('torch') and not u.find_spec('convguard') "
                          "else 1)"],
            env=self.env, cwd=self.scratch.name, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, timeout=TIMEOUT_S, check=False)
        if probe.returncode != 0:
            self.skipTest("%s cannot import torch, or has a convguard package of its own" % other)
        result, calls = self.torch_probe_through_recording_interpreter(other)
        self.assert_verdict_ok(result, "n1_c4_h8_w8_k4")
        self.assert_worker_ran_from_prefix(calls)

    def test_bogus_convguard_bin_is_reported_by_name(self):
        bogus = os.path.join(self.scratch.name, "no-such-convguard")
        with mock.patch.dict(os.environ, {"CONVGUARD_BIN": bogus}):
            with self.assertRaises(self.native.ConvguardNotFound) as caught:
                self.native.find_binary()
        self.assertIn("CONVGUARD_BIN", str(caught.exception))
        self.assertIn(bogus, str(caught.exception))
        # The console script says the same and fails without running anything.
        result = self.run_script("--help", env=dict(self.env, CONVGUARD_BIN=bogus))
        self.assertEqual(result.returncode, 1, result.stdout)
        self.assertIn("CONVGUARD_BIN", result.stderr)
        self.assertNotIn("usage:", result.stdout)


if __name__ == "__main__":
    unittest.main()
