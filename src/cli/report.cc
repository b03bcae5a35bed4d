// convguard report: the store as a terminal summary, Markdown in the seed report's
// sections, JSON, CSV or one self-contained HTML page (convguard/report.h).
#include "convguard/report.h"

#include <cstdio>
#include <filesystem>
#include <sstream>
#include <string>

#include "cli/commands.h"
#include "cli/flags.h"
#include "cli/model_common.h"
#include "cli/pattern_flags.h"
#include "cli/probe_common.h"
#include "convguard/exit_status.h"
#include "convguard/scan.h"
#include "convguard/store.h"

namespace convguard::cli {
namespace {

std::vector<FlagSpec> ReportFlagSpecs() {
  std::vector<FlagSpec> specs = {
      {"--help", "", "show this help", false, "-h"},
      {"--db", "PATH|CONNINFO",
       "the store: an SQLite file or a PostgreSQL connection string (default: $CONVGUARD_DB "
       "or ~/.local/share/convguard/verdicts.sqlite)"},
      DbWaitFlagSpec(),
      {"--stack", "ID", "only this stack (convguard db stacks lists them)"},
      {"--backend", "NAME", "only stacks of this backend (reference, onednn, cudnn, torch, ...)"},
      {"--verdict", "KINDS",
       "only verdicts of these kinds, comma-separated (OK, SLOW, HANG, CRASH, WRONG, "
       "MISTRUSTED, ERROR, UNSUPPORTED, OOM); repeatable",
       true},
      {"--model", "FILE",
       "a model's layer strip, and only its problems in the listings (ONNX, MIOpen log or "
       "layers file); repeatable",
       true},
      {"--input", "NAME=DIMS", "shape of an ONNX input with dynamic dimensions (for --model)",
       true},
      {"--training", "", "with --model: the layers' backward problems too"},
      {"--format", "FORMAT", "text (default), markdown, json, csv or html"},
      {"--output", "FILE", "write to FILE instead of stdout (never over an existing file)", false,
       "-o"},
  };
  for (FlagSpec& f : PatternFlagSpecs()) specs.push_back(std::move(f));
  return specs;
}

std::string Usage(const FlagParser& flags) {
  return "usage: convguard report [--format text|markdown|json|csv|html] [-o FILE] [filters]\n"
         "\n"
         "What the store knows, per stack: counts by verdict, the configurations that fail\n"
         "and those that work (channels in -> out, input sizes, the rest of the problem),\n"
         "the learned pattern in the fault-rules language with its measured errors, the\n"
         "layers of the models given with --model (a problem the store does not know is\n"
         "UNKNOWN, with the pattern's PREDICTED verdict), recommendations with measured\n"
         "costs (a knob variant of the stack or an algorithm choice that avoids every\n"
         "failure, or why none does), and each verdict's evidence and repro line.\n"
         "\n"
         "formats: text, a terminal summary; markdown, the seed report's sections\n"
         "(Configurations That Hang, Known Working Configurations, Models That Work,\n"
         "Pattern, Recommendation); json, everything; csv, one row per verdict; html, one\n"
         "self-contained page (no script, no network) with SVG heat maps of verdicts over\n"
         "spatial size for each (c, k) pair, one cell per verdict linked to its evidence.\n"
         "Filters narrow the listings; the pattern and the recommendations always use every\n"
         "verdict of the stack.\n"
         "\n"
         "options:\n" +
         flags.OptionsHelp() +
         "\nexit status: 0 written, 1 failure, 2 bad input (no store, an empty store, filters\n"
         "that match nothing, an unreadable model, an existing --output).\n";
}

int Fail(const Status& s) {
  std::fprintf(stderr, "convguard report: %s\n", s.message().c_str());
  return ExitStatusForError(s);
}

}  // namespace

int ReportMain(const Args& args) {
  FlagParser flags("report", ReportFlagSpecs());
  if (Status s = flags.Parse(args); !s.ok()) return Fail(s);
  if (flags.Has("--help")) {
    std::fputs(Usage(flags).c_str(), stdout);
    return kExitOk;
  }
  if (!flags.positionals().empty())
    return Fail(Status::InvalidArgument("unexpected argument '" + flags.positionals().front() +
                                        "' (a model goes with --model FILE; see --help)"));
  const std::string format = flags.Has("--format") ? flags.Get("--format") : "text";
  if (format != "text" && format != "markdown" && format != "json" && format != "csv" &&
      format != "html")
    return Fail(Status::InvalidArgument("--format '" + format +
                                        "' is unknown (allowed: text, markdown, json, csv, html)"));
  ReportOptions options;
  if (Status st = PatternOptionsFromFlags(flags, options.pattern); !st.ok()) return Fail(st);
  if (flags.Has("--stack")) options.stack_id = flags.Get("--stack");
  if (flags.Has("--backend")) options.backend = flags.Get("--backend");
  for (const std::string& list : flags.GetAll("--verdict")) {
    std::istringstream names(list);
    for (std::string name; std::getline(names, name, ',');) {
      StatusOr<VerdictKind> kind = ParseVerdictName(name);
      if (!kind.ok()) return Fail(Status::InvalidArgument("--verdict: " + kind.status().message()));
      options.kinds.push_back(*kind);
    }
  }
  if (flags.Has("--training") && !flags.Has("--model"))
    return Fail(Status::InvalidArgument("--training needs --model FILE"));
  if (flags.Has("--input") && !flags.Has("--model"))
    return Fail(Status::InvalidArgument("--input needs --model FILE"));
  options.training = flags.Has("--training");
  const std::string out = flags.Has("--output") ? flags.Get("--output") : "";
  std::error_code ec;
  if (!out.empty() && std::filesystem::exists(out, ec))
    return Fail(Status::InvalidArgument("'" + out + "' exists; choose another --output"));

  // Everything is read and checked before the store is opened.
  ModelReadOptions read;
  for (const std::string& text : flags.GetAll("--input")) {
    StatusOr<OnnxInputShape> shape = ParseOnnxInputShape(text);
    if (!shape.ok()) return Fail(shape.status());
    read.onnx.inputs.push_back(std::move(*shape));
  }
  for (const std::string& path : flags.GetAll("--model")) {
    StatusOr<ModelConvs> model = ReadModel(path, read);
    if (!model.ok()) return Fail(model.status());
    options.models.push_back(std::move(*model));
  }
  const std::string path = StorePathFromFlags(flags);
  // A server's store is opened (and created) as any other; only a file can be missing.
  if (!IsPostgresStoreTarget(path) && !std::filesystem::exists(path, ec))
    return Fail(Status::NotFound("no store at '" + path + "' (probe or sweep first, or --db)"));
  StatusOr<std::unique_ptr<Store>> store = OpenStoreFromFlags(flags);
  if (!store.ok()) return Fail(store.status());
  options.store_label = StoreTargetLabel(path);
  StatusOr<Report> report = BuildReport(**store, options);
  if (!report.ok()) return Fail(report.status());

  std::string text;
  if (format == "text") text = ReportToText(*report);
  if (format == "markdown") text = ReportToMarkdown(*report);
  if (format == "json") text = ReportToJson(*report) + "\n";
  if (format == "csv") text = ReportToCsv(*report);
  if (format == "html") text = ReportToHtml(*report);
  if (out.empty()) {
    std::fwrite(text.data(), 1, text.size(), stdout);
    return std::fflush(stdout) == 0 ? kExitOk : kExitFailure;
  }
  // A new file only ("x": fails if it exists, even one that appeared since the check
  // above), so a report never replaces what is there; a failed write removes its own file.
  std::FILE* file = std::fopen(out.c_str(), "wbx");
  if (!file)
    return Fail(
        Status::InvalidArgument("cannot create '" + out + "' (it exists, or its folder does not)"));
  const bool written = std::fwrite(text.data(), 1, text.size(), file) == text.size();
  if (std::fclose(file) != 0 || !written) {
    std::filesystem::remove(out, ec);
    return Fail(Status::Internal("cannot write '" + out + "'"));
  }
  std::fprintf(stderr, "convguard report: wrote %s (%zu bytes)\n", out.c_str(), text.size());
  return kExitOk;
}

}  // namespace convguard::cli
