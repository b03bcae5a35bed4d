"""convguard.torch end to end on the CPU: real models, the real convguard command probing
in real workers on the emulated RDNA1 stack (or under injected rules), a real store.

Run by ctest (CONVGUARD_BIN names the built command, PYTHONPATH the source package) and by
the README test command against the pip-installed package (CONVGUARD_TEST_INSTALLED=1).
"""

import copy
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

try:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
except ImportError:  # pragma: no cover
    torch = None
try:
    import torchvision
except ImportError:  # pragma: no cover
    torchvision = None

# Fast deadlines: the emulated hangs are busy loops; the floors only bound the wait.
QUICK = ["--deadline-floor", "300", "--confirm-floor", "800"]
HERE = os.path.dirname(os.path.abspath(__file__))


def need_torch(test):
    return unittest.skipIf(torch is None, "this interpreter cannot import torch")(test)


def need_torchvision(test):
    return unittest.skipIf(torchvision is None,
                           "this interpreter cannot import torchvision")(test)


def seed_layer():
    """The seed report's layer: nn.Conv2d(16, 32, 3, padding=1) on 16 x 64 x 64."""
    return nn.Sequential(nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(),
                         nn.Conv2d(32, 8, 3, padding=1))


def exact_(tensor, generator, low=-2, high=2):
    """Small integers: sums of their products are exact in float64 whatever the order."""
    with torch.no_grad():
        tensor.copy_(torch.randint(low, high + 1, tensor.shape, generator=generator))
    return tensor


def run_convguard(args):
    from convguard import _native

    base, env = _native.command()
    return subprocess.run(base + args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True)


def store_states(db, backend, problems, inject=None):
    """Each problem's state on the stack per the store alone (no probing): a layers file
    of the problems scanned by the convguard command."""
    tmp = tempfile.mkdtemp(prefix="convguard-py-")
    try:
        path = os.path.join(tmp, "recorded.json")
        with open(path, "w") as f:
            json.dump({"convguard_layers": 1, "origin": "recorded",
                       "layers": [{"name": "call%d" % i, "op": "conv2d", "problem": p}
                                  for i, p in enumerate(problems)]}, f)
        args = ["scan", path, "--backend", backend, "--db", db, "--json", "--quiet"]
        if inject:
            args += ["--inject", inject]
        result = run_convguard(args)
        data = json.loads(result.stdout)
        return {p["problem"]: p["state"] for layer in data["layers"] for p in layer["problems"]}
    finally:
        shutil.rmtree(tmp)


class TorchTestCase(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="convguard-torch-test-")
        cls.db = os.path.join(cls.tmp, "verdicts.sqlite")
        cls.stack = dict(backend="emulated-rdna1", db=cls.db, quiet=True, options=QUICK)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def assert_only_ok_problems_reach_torch(self, model, inputs, training=True, inject=None,
                                            backend="emulated-rdna1"):
        """Records every convolution reaching PyTorch's dispatcher while the model runs
        forward (and backward), then asks the store: each must be OK on the stack."""
        import convguard.torch as cgt

        recorder = cgt.DispatchRecorder()
        x = tuple(t.detach().clone().requires_grad_(training) for t in inputs)
        with recorder:
            out = model(*x)
            if training:
                out.sum().backward()
        self.assertFalse(recorder.unexpressed)
        recorded = sorted({p.canonical() for p in recorder.problems})
        self.assertTrue(recorded)
        if training:
            self.assertTrue(any(p.endswith("bwd-weights") for p in recorded), recorded)
        states = store_states(self.db, backend, recorded, inject)
        not_ok = {p: s for p, s in states.items() if s != "OK"}
        self.assertEqual(not_ok, {}, "problems that reached torch without an OK verdict")
        self.assertEqual(set(states), set(recorded))
        return recorded


@need_torch
class ProblemsTest(unittest.TestCase):
    def test_a_call_prints_as_convguard_prints_it(self):
        from convguard.torch._problems import conv2d_problem, parse_canonical

        x, w = torch.zeros(2, 16, 64, 48), torch.zeros(32, 8, 3, 5)
        p, reason = conv2d_problem(x, w, torch.zeros(32), (2, 1), (1, 2), 1, 2)
        self.assertIsNone(reason)
        self.assertEqual(p.canonical(), "n2_c16_h64_w48_k32_r3_s5_p1x2_u2x1_d1_g2_bias_f32_nchw_fwd")
        self.assertEqual(parse_canonical(p.canonical()), p)
        same, _ = conv2d_problem(x, torch.zeros(32, 16, 4, 4), None, 1, "same", 1, 1)
        self.assertEqual(same.canonical(), "n2_c16_h64_w48_k32_r4_s4_p1x1x2x2_u1_d1_g1_f32_nchw_fwd")
        self.assertEqual(same.as_torch_runs_it().canonical(),
                         "n2_c16_h67_w51_k32_r4_s4_p0_u1_d1_g1_f32_nchw_fwd")
        _, why = conv2d_problem(x.double(), w, None, 1, 0, 1, 2)
        self.assertIn("float64", why)

    def test_the_command_reads_what_we_print(self):
        from convguard.torch._problems import parse_canonical

        text = "n2_c16_h64_w48_k32_r3_s5_p1x2x0x1_u2x1_d1x2_g2_bias_f16_nhwc_bwd-data"
        states = store_states(os.path.join(tempfile.mkdtemp(), "empty.sqlite"), "reference",
                              [text])
        self.assertEqual(list(states), [text])  # printed back identically: the same key
        self.assertEqual(parse_canonical(text).canonical(), text)


@need_torch
class WorkerStartTest(unittest.TestCase):
    """The PyTorch worker sets every algorithm's knobs once while it starts (their first
    change can cost seconds); it must leave them as it found them."""

    def test_starting_the_worker_leaves_every_knob_as_it_found_it(self):
        from convguard.worker.torch_backend import TorchBackend

        def knobs():
            return (torch.backends.cudnn.enabled, torch.backends.cudnn.benchmark,
                    torch.backends.cudnn.deterministic, torch.backends.mkldnn.enabled,
                    torch.are_deterministic_algorithms_enabled())

        torch.backends.cudnn.benchmark = True  # not PyTorch's default: must survive too
        try:
            before = knobs()
            backend = TorchBackend(torch, "cpu")
            self.assertEqual(knobs(), before)
            self.assertTrue(backend.defaults["cudnn.benchmark"])
            self.assertFalse(backend.defaults["deterministic_algorithms"])
        finally:
            torch.backends.cudnn.benchmark = False


@need_torch
class SeedLayerTest(TorchTestCase):
    def test_the_seed_layer_trains_guarded_on_the_emulated_stack(self):
        import convguard.torch as cgt

        torch.manual_seed(0)
        model = seed_layer()
        x = torch.randn(1, 16, 64, 64)
        report = cgt.scan(model, x, **self.stack)
        self.assertEqual(report.outcome, "works-with-rewrites", str(report))
        first = report.layers[0]
        self.assertEqual(first.state, "BAD")
        self.assertEqual(first.problems[0].verdict, "HANG")
        self.assertEqual([p.direction for p in first.problems], ["fwd", "bwd-data", "bwd-weights"])
        self.assertIsNotNone(first.plan)
        self.assertIn("HANG ->", str(report))
        self.assertEqual(json.loads(report.to_json())["outcome"], "works-with-rewrites")

        reference = copy.deepcopy(model)
        conv = model[0]
        weight, params, keys = conv.weight, list(model.parameters()), list(model.state_dict())
        calls = []
        conv.register_forward_hook(lambda m, i, o: calls.append(o.shape))
        model, changes = cgt.guard(model, x, report=report)
        self.assertEqual([(c.name, c.action) for c in changes], [("0", "guarded")])
        self.assertIsInstance(model[0], nn.Conv2d)
        self.assertTrue(cgt.is_guarded(model[0]))
        self.assertIs(model[0].weight, weight)
        self.assertEqual([id(p) for p in model.parameters()], [id(p) for p in params])
        self.assertEqual(list(model.state_dict()), keys)

        xg, xr = x.clone().requires_grad_(), x.clone().requires_grad_()
        y, yr = model(xg), reference(xr)
        self.assertEqual(len(calls), 1, "the module's own hooks still run")
        # float32: a plan's child sums in another order (the bit-exact check is in float64,
        # test_plans_are_exact_in_float64_on_exact_data); weight gradients sum 4096 terms.
        torch.testing.assert_close(y, yr, rtol=1e-4, atol=1e-5)
        y.square().sum().backward()
        yr.square().sum().backward()
        torch.testing.assert_close(xg.grad, xr.grad, rtol=1e-4, atol=1e-4)
        for p, q in zip(model.parameters(), reference.parameters()):
            torch.testing.assert_close(p.grad, q.grad, rtol=1e-4, atol=1e-4)
        self.assert_only_ok_problems_reach_torch(model, (x,))

        self.assertEqual(cgt.unguard(model), ["0"])
        self.assertIs(type(model[0]), nn.Conv2d)
        self.assertFalse(cgt.is_guarded(model[0]))

    def test_a_call_of_another_shape_is_refused_not_run(self):
        import convguard.torch as cgt

        model = seed_layer()
        cgt.guard(model, torch.randn(1, 16, 64, 64), **self.stack)
        with self.assertRaises(cgt.ConvguardError) as raised:
            model(torch.randn(2, 16, 64, 64))
        self.assertIn("n2_c16_h64_w64_k32", str(raised.exception))
        self.assertIn("not scanned", str(raised.exception))

    def test_plans_are_exact_in_float64_on_exact_data(self):
        """Every plan the guard runs computes the layer's function and gradients bit for
        bit on data whose sums are exact, here under rules that force spatial tiles (with
        asymmetric pads) and channel padding."""
        import convguard.torch as cgt

        rules = os.path.join(self.tmp, "tiles.rules")
        with open(rules, "w") as f:
            f.write("spin when direction == fwd && h > 24\n"
                    "spin when direction == bwd_data && k == 12\n")
        stack = dict(self.stack, backend="reference", inject=rules)
        model = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1), nn.MaxPool2d(2),
                              nn.Conv2d(8, 12, 3, padding=1, bias=False))
        x = torch.randn(2, 8, 40, 40)
        model, changes = cgt.guard(model, x, **stack)
        kinds = {c.name: c.plan.split()[0] for c in changes if c.action == "guarded"}
        self.assertEqual(kinds.get("0"), "spatial-tiling", changes)
        self.assertIn("2", kinds, changes)
        self.assert_only_ok_problems_reach_torch(model, (x,), inject=rules, backend="reference")
        g = torch.Generator().manual_seed(5)
        for index in kinds:
            module = model[int(index)]
            for step in module.__dict__["_convguard_plans"].values():
                p = step.problem
                xin = exact_(torch.empty(p.n, p.c, p.h, p.w, dtype=torch.float64), g)
                w = exact_(module.weight.detach().double().clone(), g)
                b = None if module.bias is None else exact_(module.bias.detach().double().clone(), g)
                args = [(t.clone().requires_grad_() if t is not None else None) for t in (xin, w, b)]
                ref = [(t.clone().requires_grad_() if t is not None else None) for t in (xin, w, b)]
                y = cgt.run_step(step, *args)
                yr = F.conv2d(ref[0], ref[1], ref[2], module.stride, module.padding,
                              module.dilation, module.groups)
                self.assertTrue(torch.equal(y, yr), "forward of layer %s" % index)
                dy = exact_(torch.empty_like(yr), g)
                y.backward(dy)
                yr.backward(dy)
                for got, want in zip(args, ref):
                    if got is not None:
                        self.assertTrue(torch.equal(got.grad, want.grad),
                                        "gradient of layer %s" % index)


@need_torch
@need_torchvision
@unittest.skipIf(os.environ.get("CONVGUARD_TEST_INSTALLED") == "1",
                 "whole torchvision models run in ctest against the build tree; the installed "
                 "package is checked by the other classes (same code, shorter runs)")
class TorchvisionTest(TorchTestCase):
    def build(self, name):
        torch.manual_seed(3)
        factory = getattr(torchvision.models, name)
        try:
            return factory(weights=None, num_classes=10)
        except TypeError:  # torchvision before 0.13
            return factory(pretrained=False, num_classes=10)

    def check_guarded_training(self, name, size, expect_guarded):
        import convguard.torch as cgt

        model = self.build(name)
        reference = copy.deepcopy(model)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        optimizer_ref = torch.optim.SGD(reference.parameters(), lr=0.1, momentum=0.9)
        x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(4))
        before = {k: v.clone() for k, v in model.state_dict().items()}
        model, changes = cgt.guard(model, x, **self.stack)
        guarded = sorted(c.name for c in changes if c.action == "guarded")
        self.assertEqual(len(guarded), expect_guarded, changes)
        # The scan left no trace on the model: BatchNorm statistics unchanged.
        for k, v in model.state_dict().items():
            self.assertTrue(torch.equal(v, before[k]), k)
        recorded = self.assert_only_ok_problems_reach_torch(model, (x,))
        self.assertTrue(any("bwd-data" in p for p in recorded))

        for m in (model, reference):
            m.zero_grad()
        torch.manual_seed(11)  # the same dropout masks in both
        out = model(x)
        torch.manual_seed(11)
        out_ref = reference(x)
        torch.testing.assert_close(out, out_ref, rtol=1e-4, atol=1e-5)
        out.square().mean().backward()
        out_ref.square().mean().backward()
        # Gradients of a whole model in float32, summed in another order inside the
        # guarded layers: compared as tensors (1% relative error of the norm; BatchNorm in
        # training mode amplifies reordering through 20 layers to about 0.1%), since single
        # elements near zero carry the reordering's absolute error. (Plans are bit-exact:
        # SeedLayerTest.test_plans_are_exact_in_float64_on_exact_data.)
        for (n, p), q in zip(model.named_parameters(), reference.parameters()):
            error = (p.grad - q.grad).norm().item()
            self.assertLessEqual(error, 1e-2 * q.grad.norm().item() + 1e-7, n)
        optimizer.step()
        optimizer_ref.step()
        for (n, p), q in zip(model.named_parameters(), reference.parameters()):
            torch.testing.assert_close(p, q, rtol=1e-4, atol=1e-4, msg=n)

        # The state dict round-trips: same keys, loads into a plain model and back.
        state = model.state_dict()
        self.assertEqual(list(state), list(reference.state_dict()))
        plain = self.build(name)
        plain.load_state_dict(state)
        model.load_state_dict(plain.state_dict())
        self.assertEqual(cgt.unguard(model), guarded)
        return changes

    def test_resnet18_trains_guarded_like_the_original(self):
        # 160 x 160: layer1's 64-channel 40 x 40 convolutions hang on the emulated stack.
        self.check_guarded_training("resnet18", 160, expect_guarded=4)

    def test_mobilenet_v2_needs_nothing_and_runs_as_is(self):
        self.check_guarded_training("mobilenet_v2", 96, expect_guarded=0)


@need_torch
class BadInputTest(TorchTestCase):
    def test_bad_input_is_one_clear_message(self):
        import convguard.torch as cgt

        with self.assertRaisesRegex(cgt.ConvguardInputError, "without any convolution"):
            cgt.scan(nn.Linear(4, 4), torch.randn(1, 4), **self.stack)
        with self.assertRaisesRegex(cgt.ConvguardInputError,
                                    "failed .*expected input.*example_inputs must be"):
            cgt.scan(seed_layer(), torch.randn(1, 3, 64, 64), **self.stack)
        with self.assertRaisesRegex(cgt.ConvguardInputError, "torch.nn.Module"):
            cgt.scan(lambda t: t, torch.randn(1, 3, 8, 8), **self.stack)
        with self.assertRaisesRegex(cgt.ConvguardInputError, "backend"):
            cgt.scan(seed_layer(), torch.randn(1, 16, 8, 8), **dict(self.stack, backend="nope"))

    def test_a_store_of_another_stack_is_named(self):
        import convguard.torch as cgt

        db = os.path.join(self.tmp, "other.sqlite")
        model = nn.Conv2d(4, 4, 3)
        x = torch.randn(1, 4, 8, 8)
        cgt.scan(model, x, **dict(self.stack, db=db, backend="reference"))
        report = cgt.scan(model, x, **dict(self.stack, db=db, probe=False))
        self.assertEqual(report.outcome, "unknown")
        self.assertTrue(any("none of this stack" in n for n in report.notes), report.notes)
        import convguard.torch._guard as guard_module

        with self.assertRaises(guard_module.GuardError) as raised:
            cgt.guard(model, x, report=report)
        self.assertIn("unknown", str(raised.exception))

    def test_the_command_line(self):
        env = dict(os.environ)
        model_file = os.path.join(self.tmp, "models.py")
        with open(model_file, "w") as f:
            f.write("import torch.nn as nn\n"
                    "def seed():\n"
                    "    return nn.Sequential(nn.Conv2d(16, 32, 3, padding=1), nn.ReLU())\n")
        base = [sys.executable, "-m", "convguard.torch"]
        quick = ["--option=--deadline-floor=300", "--option=--confirm-floor=800", "--quiet",
                 "--db", self.db, "--backend", "emulated-rdna1"]
        guard = subprocess.run(base + ["guard", model_file + ":seed", "--input", "1x16x64x64"] +
                               quick, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               universal_newlines=True)
        self.assertEqual(guard.returncode, 21, guard.stdout + guard.stderr)
        self.assertIn("changed 0: guarded by", guard.stdout)
        self.assertIn("(forward and backward), 0 not known to be OK", guard.stdout)
        for args, says in [
            (["scan", model_file + ":nothing", "--input", "1x16x8x8"], "has no function 'nothing'"),
            (["scan", model_file + ":seed", "--input", "1x16xx8"], "is not a shape"),
            (["scan", model_file + ":seed", "--input", "1x3x8x8"], "example_inputs must be"),
        ]:
            r = subprocess.run(base + args + quick, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, universal_newlines=True)
            self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
            self.assertIn(says, r.stderr)
            self.assertEqual(len(r.stderr.strip().splitlines()), 1, r.stderr)
        # An interpreter without torch: -S leaves out site-packages (where torch lives),
        # PYTHONPATH still finds convguard.
        no_torch = subprocess.run([sys.executable, "-S", "-c", "import torch"],
                                  stderr=subprocess.PIPE)
        if no_torch.returncode == 0:
            self.skipTest("this interpreter imports torch even without site-packages")
        env["PYTHONPATH"] = os.path.dirname(os.path.dirname(
            __import__("convguard").__file__)) + os.pathsep + env.get("PYTHONPATH", "")
        r = subprocess.run([sys.executable, "-S", "-m", "convguard.torch", "scan",
                            model_file + ":seed", "--input", "1x16x8x8"], env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           universal_newlines=True)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("cannot import torch", r.stderr)
        self.assertEqual(len(r.stderr.strip().splitlines()), 1, r.stderr)


if __name__ == "__main__":
    unittest.main()
