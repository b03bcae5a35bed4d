// cli/progress.h — progress of a probe run on stderr: a bar on a terminal, a line per
// verdict otherwise, nothing with --quiet. Shared by the commands that probe (sweep,
// scan, fix).
//
// Thread-safety: used from the thread that runs the engine.
#pragma once

#include <string>

#include "convguard/probe.h"
#include "convguard/verdict.h"

namespace convguard::cli {

// " OK 12 HANG 2 known 5": the verdicts so far by kind, and the known ones skipped.
std::string CountsByKind(const ProbeProgress& p);

class ProgressView {
 public:
  explicit ProgressView(bool quiet);
  void OnProgress(const ProbeProgress& p);
  void OnVerdict(const Verdict& v);
  // A line a person waiting should see (a possible hang being confirmed).
  void OnNotice(const std::string& text);
  // Ends the bar's line.
  void Finish();
  // Callbacks that report to this view (and `events` too, when given, for --verbose).
  ProbeCallbacks Callbacks(bool verbose);

 private:
  bool quiet_;
  bool terminal_;
  ProbeProgress last_;
};

}  // namespace convguard::cli
