#include "cli/progress.h"

#include <algorithm>
#include <cstdio>

#include "os/system.h"

namespace convguard::cli {
namespace {

std::string FormatEta(double seconds) {
  if (seconds < 0 || seconds > 1e7) return "--";
  char buf[32];
  const int s = static_cast<int>(seconds + 0.5);
  if (s >= 3600) {
    std::snprintf(buf, sizeof buf, "%dh%02dm", s / 3600, (s % 3600) / 60);
  } else if (s >= 60) {
    std::snprintf(buf, sizeof buf, "%dm%02ds", s / 60, s % 60);
  } else {
    std::snprintf(buf, sizeof buf, "%ds", s);
  }
  return buf;
}

}  // namespace

std::string CountsByKind(const ProbeProgress& p) {
  std::string out;
  for (int k = 0; k < 9; ++k) {
    if (p.by_kind[k] == 0) continue;
    out += " " + std::string(VerdictName(static_cast<VerdictKind>(k))) + " " +
           std::to_string(p.by_kind[k]);
  }
  if (p.skipped_known > 0) out += " known " + std::to_string(p.skipped_known);
  return out;
}

ProgressView::ProgressView(bool quiet) : quiet_(quiet), terminal_(os::IsTerminal(2)) {}

void ProgressView::OnProgress(const ProbeProgress& p) {
  last_ = p;
  if (quiet_ || !terminal_) return;
  const int columns = os::TerminalColumns(2);
  const int bar_width = std::max(10, std::min(30, columns - 60));
  const double fraction = p.total > 0 ? static_cast<double>(p.done) / p.total : 1.0;
  const int filled = static_cast<int>(fraction * bar_width);
  const int64_t probed = p.done - p.skipped_known;
  const double eta = probed > 0 ? p.elapsed_s / probed * (p.total - p.done) : -1.0;
  std::string line = "\r[" + std::string(filled, '#') + std::string(bar_width - filled, '.') +
                     "] " + std::to_string(p.done) + "/" + std::to_string(p.total) +
                     CountsByKind(p) + "  ETA " + FormatEta(eta);
  if (static_cast<int>(line.size()) > columns) line.resize(columns);
  std::fprintf(stderr, "%s\033[K", line.c_str());
  std::fflush(stderr);
}

void ProgressView::OnVerdict(const Verdict& v) {
  if (quiet_ || terminal_) return;
  std::fprintf(stderr, "[%lld/%lld] %s %s %s (%.0f ms)\n", static_cast<long long>(last_.done + 1),
               static_cast<long long>(last_.total), std::string(VerdictName(v.kind)).c_str(),
               v.problem.c_str(), v.algorithm.c_str(), v.elapsed_ms);
}

void ProgressView::OnNotice(const std::string& text) {
  if (quiet_) return;
  if (terminal_) {
    // Above the bar, which is drawn again at the next progress report.
    std::fprintf(stderr, "\r\033[K%s\n", text.c_str());
    OnProgress(last_);
    return;
  }
  std::fprintf(stderr, "[%lld/%lld] %s\n", static_cast<long long>(last_.done),
               static_cast<long long>(last_.total), text.c_str());
}

void ProgressView::Finish() {
  if (!quiet_ && terminal_) std::fprintf(stderr, "\n");
}

ProbeCallbacks ProgressView::Callbacks(bool verbose) {
  ProbeCallbacks callbacks;
  callbacks.on_progress = [this](const ProbeProgress& p) { OnProgress(p); };
  callbacks.on_verdict = [this](const Verdict& v) { OnVerdict(v); };
  callbacks.on_notice = [this](const std::string& text) { OnNotice(text); };
  if (verbose) {
    callbacks.on_event = [](const std::string& e) {
      std::fprintf(stderr, "\nconvguard: %s\n", e.c_str());
    };
  }
  return callbacks;
}

}  // namespace convguard::cli
