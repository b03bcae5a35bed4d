// convguard run: executes a problem's plan in this process on generated data and checks
// the output against the float64 reference.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/plan_common.h"
#include "cli/probe_common.h"
#include "convguard/compare.h"
#include "convguard/exit_status.h"
#include "convguard/fill.h"
#include "convguard/reference.h"
#include "convguard/text_forms.h"
#include "os/system.h"

namespace convguard::cli {
namespace {

double NowMs() {
  return std::chrono::duration<double, std::milli>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::string Usage(const FlagParser& flags) {
  return "usage: convguard run PROBLEM [options]\n"
         "\n"
         "Plans PROBLEM like 'convguard plan', then executes the plan in this process on\n"
         "exactly filled data (--seed), --runs times, and checks the output against the\n"
         "float64 reference (--check full by default; sampled for a spot check). Only plans\n"
         "whose every leaf has an OK verdict are executed, so nothing known to hang, crash\n"
         "or compute wrong runs here. Reports the plan, its times and the check.\n"
         "\n"
         "With --device-tensors (device backends: cudnn) the data is uploaded once into the\n"
         "backend's device memory and every execution takes it from there, as a program\n"
         "whose tensors already live on the GPU would (Guard::RunOnDevice); the report says\n"
         "whether the plan ran device-resident or through host memory (steps without a\n"
         "device node: spatial tiling, group and batch splits, fallbacks).\n"
         "\n" +
         PlanFlagsHelp() + "\noptions:\n" + flags.OptionsHelp() + "\n" + EngineFlagsHelp() +
         "\nexit status: 0 the plan ran and its output is exact, 13 the output is WRONG,\n"
         "20 no exact plan, 1 failure, 2 bad input.\n";
}

// Whether --device-tensors can run on `backend`; says why not on stderr. Unknown names
// pass here and are reported where the backend is opened.
bool TakesDeviceTensors(const std::string& backend) {
  const StatusOr<BackendDescriptor> descriptor = DescribeBackend(backend);
  if (!descriptor.ok() || descriptor->device_tensors) return true;
  std::fprintf(stderr,
               "convguard run: --device-tensors needs a backend whose tensors live in device "
               "memory (cudnn where built); the %s backend computes in host memory\n",
               descriptor->name.c_str());
  return false;
}

}  // namespace

int RunMain(const Args& args) {
  FlagParser flags("run", PlanFlagSpecs(/*for_run=*/true));
  if (Status s = flags.Parse(args); !s.ok()) {
    std::fprintf(stderr, "convguard run: %s\n", s.message().c_str());
    return kExitBadInput;
  }
  if (flags.Has("--help")) {
    std::fputs(Usage(flags).c_str(), stdout);
    return kExitOk;
  }
  // Checks that need no store come first: bad input opens nothing.
  int64_t runs = 5;
  if (flags.Has("--runs")) {
    StatusOr<int64_t> r = ParseIntFlag("--runs", flags.Get("--runs"), 1, 100000);
    if (!r.ok()) {
      std::fprintf(stderr, "convguard run: %s\n", r.status().message().c_str());
      return kExitBadInput;
    }
    runs = *r;
  }
  // Checked again once the default backend is known (without --backend).
  const bool device_tensors = flags.Has("--device-tensors");
  if (device_tensors && flags.Has("--backend") && !TakesDeviceTensors(flags.Get("--backend")))
    return kExitBadInput;
  if (flags.Has("--backend")) {
    const StatusOr<BackendDescriptor> descriptor = DescribeBackend(flags.Get("--backend"));
    if (descriptor.ok() && !descriptor->in_process) {
      std::fprintf(
          stderr,
          "convguard run: 'run' executes plans in this process and the %s backend runs only "
          "in its Python worker; use a C++ backend (reference, emulated-rdna1, onednn, cudnn "
          "where built)\n",
          descriptor->name.c_str());
      return kExitBadInput;
    }
  }
  StatusOr<PlanSetup> setup = PlanSetupFromFlags(flags);
  if (!setup.ok()) {
    std::fprintf(stderr, "convguard run: %s\n", setup.status().message().c_str());
    return setup.status().code() == StatusCode::kInvalidArgument ||
                   setup.status().code() == StatusCode::kOutOfRange
               ? kExitBadInput
               : kExitFailure;
  }
  const Problem& p = setup->problem;
  const ProbeOptions& probe = setup->guard.probe;
  if (device_tensors && !TakesDeviceTensors(setup->guard.backend)) return kExitBadInput;
  // run checks every element unless told otherwise (probes default to sampled).
  const CheckMode check = flags.Has("--check") ? probe.check : CheckMode::kFull;
  os::InstallInterruptHandlers();

  StatusOr<std::unique_ptr<Guard>> guard = Guard::Open(setup->guard, setup->store.get());
  if (!guard.ok()) {
    std::fprintf(stderr, "convguard run: %s\n", guard.status().message().c_str());
    return kExitFailure;
  }
  // On stdout with the plan, so that a run on an emulated stack always says so.
  std::printf("stack %s: %s\n", (*guard)->stacks().front().stack_id.c_str(),
              (*guard)->stack().Summary().c_str());
  const double plan_start = NowMs();
  StatusOr<const Plan*> plan = (*guard)->PlanFor(p);
  const double plan_ms = NowMs() - plan_start;
  if (!plan.ok()) {
    std::fprintf(stderr, "convguard run: %s\n", plan.status().message().c_str());
    return plan.status().code() == StatusCode::kNotFound ? kExitNoPlan : kExitFailure;
  }
  std::printf("problem %s\nplan (made in %.1f ms): %s", ToCanonical(p).c_str(), plan_ms,
              PlanToText(**plan).c_str());

  // Exactly filled inputs, the reference in float64, the output poisoned with NaN.
  ConvTensors<double> exact = ConvTensors<double>::Allocate(p);
  FillExact(p, probe.seed, exact);
  ConvTensors<float> io;
  ToFloatOperands(p, exact, io);
  std::vector<float>& result = ResultTensor(p, io);

  // --device-tensors: the data uploaded once into the backend's device memory.
  std::unique_ptr<DeviceTensorCopy> device;
  if (device_tensors) {
    StatusOr<DeviceMemory*> memory = (*guard)->device_memory();
    StatusOr<std::unique_ptr<DeviceTensorCopy>> uploaded =
        memory.ok() ? DeviceTensorCopy::Upload(**memory, p, io)
                    : StatusOr<std::unique_ptr<DeviceTensorCopy>>(memory.status());
    if (!uploaded.ok()) {
      std::fprintf(stderr, "convguard run: --device-tensors: %s\n",
                   uploaded.status().message().c_str());
      return kExitFailure;
    }
    device = std::move(*uploaded);
  }

  std::vector<double> times;
  for (int64_t i = 0; i < runs; ++i) {
    PoisonWithNaN(result);
    const WeightsAre weights = i == 0 ? WeightsAre::kNew : WeightsAre::kUnchanged;
    Status s;
    double start = 0;
    if (device) {
      s = device->Replace(device->result(), result);  // the poisoned result, untimed
      start = NowMs();
      if (s.ok()) s = (*guard)->RunOnDevice(p, device->tensors(), weights);
    } else {
      start = NowMs();
      s = (*guard)->Run(p, io, weights);
    }
    times.push_back(NowMs() - start);
    if (!s.ok()) {
      std::fprintf(stderr, "convguard run: executing the plan: %s\n", s.message().c_str());
      return kExitFailure;
    }
    if (os::InterruptRequested()) {
      std::fprintf(stderr, "convguard run: interrupted\n");
      return kExitInterrupted;
    }
  }
  if (device) {
    if (Status s = device->DownloadResult(result); !s.ok()) {
      std::fprintf(stderr, "convguard run: reading the result back: %s\n", s.message().c_str());
      return kExitFailure;
    }
  }
  std::vector<double> steady(times.begin() + (times.size() > 1 ? 1 : 0), times.end());
  std::sort(steady.begin(), steady.end());
  std::printf(
      "executed %lld time(s)%s: first %.3f ms (builds buffers, loads weights), median %.3f ms\n",
      static_cast<long long>(runs),
      !device                                ? " on host tensors"
      : (*guard)->last_run_device_resident() ? " on device tensors, device-resident"
                                             : " on device tensors, through host memory",
      times.front(), steady[steady.size() / 2]);

  Comparison cmp;
  // Exact data: every multiply-add algorithm reproduces the reference bit for bit, and
  // every rewrite is exact; a leaf that transforms (Winograd, FFT) rounds, and the plan's
  // output is then held to the rounding bound its verdict was checked with.
  const bool leaves_exact = (*guard)->last_run_exact();
  const double tolerance = (*guard)->last_run_tolerance();
  if (check == CheckMode::kNone) {
    std::printf("check: none (--check none)\n");
    return kExitOk;
  }
  if (check == CheckMode::kFull) {
    ReferenceConvolution(p, exact);
    cmp = CompareFull(p, result, ResultTensor(p, exact), tolerance);
  } else {
    const std::vector<int64_t> points = ChooseSamplePoints(p, probe.sample_points, probe.seed);
    cmp = CompareSampledWithReference(p, result, exact, points, tolerance);
  }
  std::printf(
      "check: %s against the float64 reference (%s): %s\n",
      check == CheckMode::kFull ? "full" : "sampled",
      leaves_exact
          ? "exact equality: every leaf is bit-exact"
          : "a leaf rounds: the rounding tolerance of its verdict (--exact-leaves avoids it)",
      cmp.Summary().c_str());
  if (!cmp.passed()) {
    std::printf("verdict: WRONG — the plan's output differs from the reference\n");
    return ExitStatusForVerdict(VerdictKind::kWrong);
  }
  std::printf("verdict: %s\n", leaves_exact ? "exact" : "within the rounding tolerance");
  return kExitOk;
}

}  // namespace convguard::cli
