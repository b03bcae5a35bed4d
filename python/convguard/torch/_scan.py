"""convguard.torch.scan: which convolutions of a model misbehave on this stack, and plans.

The model runs once on the example inputs (see _capture.py); its layers go to the
convguard command as a layers file (docs/models.md), which looks every problem up in the
store of the stack, probes the unknown ones in workers under the watchdog (a hang kills
a worker, never this process) and plans the bad ones. Its JSON report comes back here
as a ScanReport.

Thread-safety: scan() may run from any thread, one model at a time per model object.
"""

import json
import os
import subprocess
import sys
import tempfile
import threading

import torch

from convguard import _native
from convguard.torch._capture import as_input_tuple, capture_layers
from convguard.torch._problems import parse_canonical

# Exit statuses of `convguard scan` (README): answers, not failures.
_ANSWERS = {0: "works", 21: "works-with-rewrites", 22: "blocked", 23: "unknown"}


class ConvguardError(RuntimeError):
    """convguard could not do what was asked; the message says what and why."""


class ConvguardInputError(ConvguardError, ValueError):
    """What was handed over cannot be scanned (the model, its inputs, an option)."""


class ProblemReport(object):
    """One problem of a layer (a direction of its convolution) and what the store says."""

    def __init__(self, data):
        self.data = data
        self.problem = data["problem"]
        self.direction = parse_canonical(self.problem).direction
        self.miopen_key = data.get("miopen_key", "")
        self.verdict = data.get("verdict", "")  # OK, HANG, ... or "" when unknown
        self.state = data.get("state", "")  # OK, BAD, UNKNOWN
        self.plan = data.get("plan")  # convguard's plan JSON, or None
        self.by_forward_plan = bool(data.get("by_forward_plan", False))
        self.detail = data.get("detail", "")


class LayerReport(object):
    """One layer of the scanned model: its problems, verdicts and plan."""

    def __init__(self, data, captured):
        self.data = data
        self.name = data["name"]
        self.op = data.get("op", "")
        self.calls = data.get("calls", 1)
        self.state = data["state"]  # OK, BAD, UNKNOWN, UNSUPPORTED
        self.unsupported = data.get("unsupported")
        self.problems = [ProblemReport(p) for p in data.get("problems", [])]
        self.module = captured.module  # the nn.Conv2d, or None for a direct call
        self.forward = captured.problem  # the forward Problem (None when unsupported)

    @property
    def plan(self):
        """The plan that runs the layer (its forward problem's), or None."""
        for p in self.problems:
            if p.direction == "fwd" and p.plan is not None:
                return p.plan
        return None

    def to_dict(self):
        return dict(self.data)


class ScanReport(object):
    """What scan() found: per layer problems, verdicts and plans, and one answer.

    str(report) is a table; report.to_json() the convguard command's JSON."""

    def __init__(self, data, layers, notes):
        self.data = data
        self.layers = layers
        self.outcome = data["outcome"]  # works, works-with-rewrites, blocked, unknown
        self.answer = data["answer"]
        self.training = bool(data.get("training", False))
        self.stack = data.get("stack", {})
        self.notes = list(data.get("notes", [])) + list(notes)
        self.probed = data.get("probed", 0)
        self.scan_options = {}

    @property
    def stack_id(self):
        return self.stack.get("id", "")

    def bad_layers(self):
        return [layer for layer in self.layers if layer.state == "BAD"]

    def to_dict(self):
        out = dict(self.data)
        out["notes"] = self.notes
        return out

    def to_json(self, indent=2):
        return json.dumps(self.to_dict(), indent=indent, sort_keys=True)

    def __str__(self):
        lines = ["model %s: %d layer(s)%s" % (
            self.data.get("model", ""), len(self.layers),
            ", forward and backward (training)" if self.training else ", forward")]
        if self.stack:
            lines.append("stack %s: %s" % (self.stack_id, self.stack.get("summary", "")))
        rows = [("#", "layer", "calls", "dir", "problem", "verdict")]
        for i, layer in enumerate(self.layers, 1):
            if layer.unsupported:
                rows.append((str(i), layer.name, str(layer.calls), "", layer.op,
                             "UNSUPPORTED: " + layer.unsupported))
                continue
            for j, p in enumerate(layer.problems):
                verdict = p.verdict or p.state
                if p.plan is not None:
                    root = p.plan.get("root", {})
                    verdict += " -> %s %s" % (root.get("kind", ""), root.get("parameters", ""))
                elif p.by_forward_plan:
                    verdict += " -> runs as the forward plan's leaves"
                rows.append((str(i) if j == 0 else "", layer.name if j == 0 else "",
                             str(layer.calls) if j == 0 else "", p.direction, p.problem,
                             verdict.strip()))
        widths = [max(len(r[c]) for r in rows) for c in range(5)]
        for r in rows:
            lines.append("  ".join(r[c].ljust(widths[c]) for c in range(5)) + "  " + r[5])
        for note in self.notes:
            lines.append("note: " + note)
        lines.append("answer: " + self.answer)
        return "\n".join(lines)


def _layers_document(model, layers, inputs):
    shapes = ", ".join("x".join(str(d) for d in t.shape) for t in inputs
                       if isinstance(t, torch.Tensor))
    return {
        "convguard_layers": 1,
        "origin": "torch %s: %s" % (torch.__version__.split("+")[0], type(model).__name__),
        "notes": ["shapes from the example input(s) %s" % shapes] if shapes else [],
        "layers": [
            dict({"name": layer.name, "op": layer.op, "calls": layer.calls},
                 **({"problem": layer.problem.canonical()} if layer.problem is not None else
                    {"unsupported": layer.unsupported}))
            for layer in layers
        ],
    }


def _devices_of(layers):
    indices = sorted({layer.device.index or 0 for layer in layers
                      if layer.device is not None and layer.device.type == "cuda"})
    return ",".join(str(i) for i in indices)


def _run_command(argv, env, quiet):
    """Runs the convguard command; stdout captured, stderr shown live (progress) and
    kept for messages. Returns (exit status, stdout, stderr)."""
    with subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True) as process:
        kept = []

        def pump():
            for line in process.stderr:
                kept.append(line)
                if not quiet:
                    sys.stderr.write(line)
                    sys.stderr.flush()

        reader = threading.Thread(target=pump)
        reader.daemon = True
        reader.start()
        try:
            out = process.stdout.read()
            process.wait()
        except BaseException:
            # An interrupt here (Ctrl-C) stops the command and its workers too.
            process.terminate()
            process.wait()
            raise
        reader.join()
    return process.returncode, out, "".join(kept)


def _other_stacks_note(db, env, base, stack_id):
    """When nothing is known: does the store hold verdicts of other stacks only? (Then
    say so: a store copied from another machine, another driver, another PyTorch.)"""
    where = ["--db", db] if db else []
    code, out, _ = _run_command(base + ["db", "stacks"] + where, env, True)
    if code != 0:
        return None
    others = [line.split()[0] for line in out.splitlines()
              if line.strip() and line.split()[0] != stack_id]
    if not others:
        return None
    code, _, err = _run_command(base + ["db", "show", "--stack", stack_id, "--limit", "1"] +
                                where, env, True)
    if code != 0 or not err.strip().startswith("0 verdicts"):
        return None
    return ("the store %s holds verdicts of stack(s) %s only, none of this stack (%s): "
            "probe=True probes this one" % (db or "(the default)", ", ".join(others), stack_id))


def run_scan(document, training, backend, db, store, probe, inject, devices, quiet, options):
    """Runs `convguard scan` on a layers document; returns (its JSON report, the command's
    argv prefix, its environment). Raises as scan() does."""
    base, env = _native.command()
    argv = base + ["scan", "", "--format", "layers", "--json", "--backend", backend]
    if training:
        argv.append("--training")
    if probe:
        argv.append("--probe")
    if quiet:
        argv.append("--quiet")
    if not store:
        argv.append("--no-store")
    elif db:
        argv += ["--db", str(db)]
    if inject:
        argv += ["--inject", str(inject)]
    if devices:
        argv += ["--devices", devices if isinstance(devices, str) else
                 ",".join(str(d) for d in devices)]
    argv += [str(o) for o in options]
    with tempfile.TemporaryDirectory(prefix="convguard-torch-") as tmp:
        path = os.path.join(tmp, "layers.json")
        with open(path, "w") as f:
            json.dump(document, f)
        argv[argv.index("scan") + 1] = path
        code, out, err = _run_command(argv, env, quiet)
    message = err.strip().splitlines()[-1] if err.strip() else ""
    if code == 2:
        raise ConvguardInputError(message.replace("convguard scan: " + path + ": ", "")
                                  or "convguard scan refused its input")
    if code not in _ANSWERS:
        raise ConvguardError("convguard scan failed (exit status %d)%s" % (
            code, ": " + message if message else ""))
    try:
        return json.loads(out), base, env
    except ValueError as e:
        raise ConvguardError("convguard scan printed no JSON report (%s)" % e)


def scan(model, example_inputs, training=True, backend="torch", db=None, store=True,
         probe=True, inject=None, devices=None, quiet=False, options=()):
    """Scans every convolution `model` runs on `example_inputs` on this stack.

    model: a torch.nn.Module; example_inputs: a tensor or a tuple of model's positional
    arguments (their shapes are the problems'). training: also the backward-data and
    backward-weights problems, and plans whose leaves run all three. backend: the
    convguard backend that probes ("torch": this interpreter's PyTorch, on the inputs'
    GPUs where they are on one). db: the store (default: convguard's, $CONVGUARD_DB or
    ~/.local/share/convguard/verdicts.sqlite); store=False reads and writes none. probe:
    probe what the store does not know (else those layers stay UNKNOWN). inject: a
    fault-rules file wrapping the backend. devices: GPU indices (default: the inputs').
    quiet: no progress on stderr. options: more `convguard scan` flags, e.g.
    ["--deadline-floor", "300"].

    Returns a ScanReport. Raises ConvguardInputError for input that cannot be scanned
    (nothing of the model is changed, nothing is probed) and ConvguardError when the
    convguard command fails."""
    if not isinstance(model, torch.nn.Module):
        raise ConvguardInputError("model must be a torch.nn.Module, not %s" %
                                  type(model).__name__)
    try:
        inputs = as_input_tuple(example_inputs)
    except TypeError as e:
        raise ConvguardInputError(str(e))
    try:
        layers = capture_layers(model, inputs)
    except Exception as e:  # the model's own error on these inputs
        raise ConvguardInputError(
            "running %s on the example inputs failed (%s: %s); example_inputs must be what "
            "model(*example_inputs) accepts" % (type(model).__name__, type(e).__name__, e))
    if not layers:
        raise ConvguardInputError(
            "%s ran on the example inputs without any convolution: nothing to scan" %
            type(model).__name__)
    if devices is None and backend == "torch":
        devices = _devices_of(layers)
    data, base, env = run_scan(_layers_document(model, layers, inputs), training, backend, db,
                               store, probe, inject, devices, quiet, options)
    if len(data.get("layers", [])) != len(layers):
        raise ConvguardError("convguard scan reported %d layers for %d sent" % (
            len(data.get("layers", [])), len(layers)))
    report_layers = [LayerReport(d, c) for d, c in zip(data["layers"], layers)]
    notes = []
    if data.get("outcome") == "unknown" and not probe and store:
        note = _other_stacks_note(db, env, base,
                                  data.get("stack", {}).get("id", ""))
        if note:
            notes.append(note)
    report = ScanReport(data, report_layers, notes)
    # How this report was made: guard() checks further problems the same way.
    report.scan_options = dict(backend=backend, db=db, store=store, probe=probe,
                               inject=inject, devices=devices, quiet=quiet,
                               options=list(options))
    return report
