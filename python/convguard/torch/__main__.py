"""python -m convguard.torch scan|guard path/to/model.py:factory --input 1x3x224x224

The common case from a shell: load a model from a Python file (factory() returns an
nn.Module), scan it on this stack, or guard it and prove the guard: the guarded model
runs once (forward, and backward with --training) while every convolution that reaches
PyTorch is recorded, and each must be a problem the plan or the scan found OK.

Exit status (as `convguard scan`): 0 works as is, 21 works with exact rewrites (scan) or
guarded (guard), 22 blocked, 23 some layer has no verdict, 1 failure, 2 bad input.
"""

import argparse
import importlib.util
import os
import sys

USAGE_EXAMPLES = """examples:
  python -m convguard.torch scan models.py:resnet18 --input 1x3x224x224
  python -m convguard.torch guard models.py:resnet18 --input 8x3x224x224 --backend torch
  python -m convguard.torch scan net.py:make --input 1x16x64x64 --backend emulated-rdna1 --json
"""

EXIT_OK, EXIT_FAILURE, EXIT_BAD_INPUT = 0, 1, 2
EXIT_FOR_OUTCOME = {"works": 0, "works-with-rewrites": 21, "blocked": 22, "unknown": 23}


def _parser():
    p = argparse.ArgumentParser(
        prog="python -m convguard.torch",
        description="Scan a PyTorch model's convolutions on this stack, or guard it so that "
                    "it runs (and trains) where some of them misbehave.",
        epilog=USAGE_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("command", choices=["scan", "guard"],
                   help="scan: per layer verdicts and plans; guard: apply the plans and "
                        "check that only problems known to be OK reach PyTorch")
    p.add_argument("model", metavar="FILE.py:FACTORY",
                   help="a Python file and a function in it that returns the nn.Module")
    p.add_argument("--input", action="append", required=True, metavar="DIMS",
                   help="shape of one positional input, e.g. 1x3x224x224 (repeat for more); "
                        "filled with random numbers")
    p.add_argument("--dtype", default="float32", choices=["float32", "float16", "bfloat16"])
    p.add_argument("--device", default="cpu",
                   help="where the model and inputs go: cpu (default), cuda, cuda:N")
    p.add_argument("--channels-last", action="store_true",
                   help="model and inputs in channels-last (NHWC) memory format")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--training", dest="training", action="store_true", default=True,
                      help="forward and backward problems (the default)")
    mode.add_argument("--inference", dest="training", action="store_false",
                      help="forward problems only; the model is put in eval() mode")
    p.add_argument("--backend", default="torch",
                   help="convguard backend that probes (default: torch, this interpreter's "
                        "PyTorch); see `convguard describe`")
    p.add_argument("--db", help="verdict store (default: convguard's)")
    p.add_argument("--no-store", action="store_true", help="read and write no store")
    p.add_argument("--no-probe", action="store_true",
                   help="only look verdicts up; do not probe what the store does not know")
    p.add_argument("--inject", metavar="RULES", help="fault rules wrapping the backend")
    p.add_argument("--json", action="store_true", help="print the scan report as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress while probing")
    p.add_argument("--option", action="append", default=[], metavar="FLAG",
                   help="a further `convguard scan` flag, e.g. --option=--deadline-floor=300 "
                        "(FLAG=VALUE is split at the first '=')")
    return p


def _dims(text):
    try:
        dims = [int(d) for d in text.lower().split("x")]
    except ValueError:
        dims = []
    if not dims or any(d <= 0 for d in dims):
        raise ValueError("--input '%s' is not a shape (allowed: positive integers joined by "
                         "'x', e.g. 1x3x224x224)" % text)
    return dims


def _load_factory(spec):
    path, sep, name = spec.rpartition(":")
    if not sep or not path or not name:
        raise ValueError("'%s' is not FILE.py:FACTORY (a Python file, a colon, the name of "
                         "a function in it that returns the model)" % spec)
    if not os.path.isfile(path):
        raise ValueError("'%s': no such file" % path)
    module_spec = importlib.util.spec_from_file_location("convguard_user_model", path)
    module = importlib.util.module_from_spec(module_spec)
    sys.path.insert(0, os.path.dirname(os.path.abspath(path)))
    module_spec.loader.exec_module(module)
    factory = getattr(module, name, None)
    if not callable(factory):
        raise ValueError("'%s' has no function '%s' (it has: %s)" % (
            path, name, ", ".join(sorted(n for n in vars(module)
                                         if callable(vars(module)[n]) and
                                         not n.startswith("_"))) or "nothing callable"))
    return factory


def _options(raw):
    out = []
    for option in raw:
        flag, sep, value = option.partition("=")
        out += [flag, value] if sep else [flag]
    return out


def main(argv=None):
    args = _parser().parse_args(argv)
    try:
        import torch
    except ImportError as e:
        sys.stderr.write("convguard.torch: this interpreter (%s) cannot import torch (%s); "
                         "run it with the Python that has PyTorch\n" % (sys.executable, e))
        return EXIT_BAD_INPUT
    import convguard.torch as cgt

    try:
        shapes = [_dims(t) for t in args.input]
        factory = _load_factory(args.model)
    except ValueError as e:
        sys.stderr.write("convguard.torch: %s\n" % e)
        return EXIT_BAD_INPUT
    try:
        model = factory()
    except Exception as e:
        sys.stderr.write("convguard.torch: %s() raised %s: %s\n" % (
            args.model.rpartition(":")[2], type(e).__name__, e))
        return EXIT_FAILURE
    if not isinstance(model, torch.nn.Module):
        sys.stderr.write("convguard.torch: %s() returned %s, not a torch.nn.Module\n" % (
            args.model.rpartition(":")[2], type(model).__name__))
        return EXIT_BAD_INPUT
    try:
        device = torch.device(args.device)
    except RuntimeError as e:
        sys.stderr.write("convguard.torch: --device '%s': %s\n" % (args.device, e))
        return EXIT_BAD_INPUT
    dtype = getattr(torch, args.dtype)
    fmt = torch.channels_last if args.channels_last else torch.contiguous_format
    model = model.to(device=device, dtype=dtype, memory_format=fmt)
    model.train(args.training)
    generator = torch.Generator().manual_seed(1)
    inputs = tuple(torch.randn(*s, generator=generator).to(device=device, dtype=dtype)
                   for s in shapes)
    inputs = tuple(t.contiguous(memory_format=fmt) if t.dim() == 4 else t for t in inputs)
    scan_options = dict(backend=args.backend, db=args.db, store=not args.no_store,
                        probe=not args.no_probe, inject=args.inject, quiet=args.quiet,
                        options=_options(args.option))
    try:
        if args.command == "scan":
            report = cgt.scan(model, inputs, training=args.training, **scan_options)
            print(report.to_json() if args.json else report)
            return EXIT_FOR_OUTCOME.get(report.outcome, EXIT_FAILURE)
        return _guard(cgt, torch, model, inputs, args, scan_options)
    except cgt.ConvguardInputError as e:
        sys.stderr.write("convguard.torch: %s\n" % e)
        return EXIT_BAD_INPUT
    except cgt.GuardError as e:
        sys.stderr.write("%s\n" % e)
        return EXIT_FOR_OUTCOME.get(e.report.outcome, EXIT_FAILURE)
    except cgt.ConvguardError as e:
        sys.stderr.write("convguard.torch: %s\n" % e)
        return EXIT_FAILURE


def _guard(cgt, torch, model, inputs, args, scan_options):
    report = cgt.scan(model, inputs, training=args.training, **scan_options)
    if args.json:
        print(report.to_json())
    else:
        print(report)
    model, changes = cgt.guard(model, inputs, training=args.training, report=report)
    for change in changes:
        print("changed %s" % change)
    if not changes:
        print("nothing to guard: every layer runs as is")
    # The proof: run the guarded model once (and its backward with --training) and
    # record what reaches PyTorch; each must be a problem the scan found OK or a plan
    # leaf checked in every direction it runs.
    checked = cgt.verify(model, inputs, report)
    print("ran the guarded model once: %d convolution call(s) reached PyTorch%s, %d not "
          "known to be OK" % (len(checked.recorded),
                              " (forward and backward)" if args.training else "",
                              len(checked.unexpected)))
    for problem in checked.unexpected:
        print("  not known OK: %s" % problem)
    for reason in checked.unexpressed:
        print("  not expressible: %s" % reason)
    if not checked.ok:
        return EXIT_FAILURE
    return 21 if any(c.action == "guarded" for c in changes) else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
