// convguard/problem_source.h — where the problems of a sweep come from: grids and lists.
//
// A grid is a one-line spec of value lists per field, expanded into every combination
// (the cartesian product), e.g.
//
//   c=3,16,32 k=16,32,64 hw=32..64:16 n=1 r=3      -> 27 problems
//   c=16 k=32 hw=32,48,64 r=3 p=same               -> the seed report's 3 problems
//
// A problem list is a text file with one problem per line in any text form that
// text_forms.h parses (canonical, MIOpen key, MIOpenDriver arguments, benchdnn), with
// `#` comments, blank lines and includes of other lists, as benchdnn's input files do.
// MIOpen's own log lines (MIOPEN_ENABLE_LOGGING_CMD=1) are valid list lines: the
// `MIOpenDriver conv ...` part of each logged command is read.
//
// An MIOpen log is what an application prints with MIOPEN_ENABLE_LOGGING_CMD=1: the
// logged MIOpenDriver commands mixed with everything else the program writes (its own
// prints, warnings, progress bars, tracebacks). ReadMiopenLog picks the convolution
// commands out of it, counts the rest, and reports the commands it cannot read.
//
// The full grammar of all three, with examples, is in docs/problem-sources.md.
//
// Errors are values: every function returns a Status naming the key, token, file and
// line at fault; nothing throws. Nothing is run or allocated for a problem here: the
// problems returned have passed Validate() and are ready to be probed.
//
// Thread-safety: pure functions over their arguments (lists and logs read the file system).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "convguard/model.h"
#include "convguard/problem.h"
#include "convguard/status.h"

namespace convguard {

// ---- grids ----

struct GridOptions {
  // A grid whose combination count (the product of the value counts of its keys,
  // before invalid and duplicate combinations are dropped) exceeds this is rejected
  // with kOutOfRange before anything is expanded.
  int64_t max_problems = 1'000'000;
  // Every combination is checked with Validate(problem, limits).
  ValidationLimits limits;
};

struct GridExpansion {
  // The distinct valid problems, in expansion order (see ExpandGrid).
  std::vector<Problem> problems;
  // The product of the value counts: every combination that was considered.
  int64_t combinations = 0;
  // Combinations that failed Validate() and were dropped.
  int64_t skipped_invalid = 0;
  // Why the first dropped combination failed, naming it as a grid spec that can be
  // pasted back, e.g. "c=3 hw=32 k=16 r=3 g=2: c = 3 must be divisible by groups = 2".
  // Empty when skipped_invalid == 0.
  std::string first_skipped_reason;
  // Valid combinations equal to an earlier one (e.g. p=1 and p=same with r=3); the
  // first occurrence is kept.
  int64_t duplicates_removed = 0;
};

// Expands a grid spec: whitespace-separated `key=values` tokens.
//
// Keys (each at most once; a key and a key it overlaps, such as hw and h, or p and
// pt, may not both appear):
//   n c h w k r s g          sizes, kernel and groups
//   hw                       h and w together;  rs  r and s together
//   p                        all four pads; ph pw: symmetric pads per axis;
//   pt pl pb pr              one pad each (top, left, bottom, right)
//   u uh uw                  stride (both, height, width)
//   d dh dw                  dilation (both, height, width); 1 = dense
//   bias                     0 or 1
//   dtype                    f32 f16 bf16
//   layout                   nchw nhwc
//   dir                      fwd bwd-data bwd-weights
// Required: c, k, h or hw, r or rs. Defaults: n=1, w=h, s=r, pads 0, strides 1,
// dilations 1, g=1, bias=0, dtype=f32, layout=nchw, dir=fwd.
//
// Values: comma-separated items, each a number, a range `a..b` (step 1), `a..b:step`,
// or a geometric range `a..b:*f` (a, a*f, a*f*f, ... up to b); e.g. `1,3,5..9:2`.
// p, ph and pw also take `same`: the padding that keeps the output size at stride 1,
// d*(r-1) in total per axis, split as PyTorch's padding='same' does (the odd unit goes
// to the bottom/right), e.g. 1 per side for r=3.
//
// Expansion order is deterministic: nested loops over the keys in the order
//   n c h|hw w k r|rs s p ph pw pt pl pb pr u uh uw d dh dw g bias dtype layout dir
// (canonical-form order), the last key given varying fastest, each key's values in
// the order written.
//
// Fails with kInvalidArgument naming the key and token for: a token that is not
// key=values, an unknown key (the message lists the allowed keys), a duplicate or
// overlapping key, an empty or malformed item, a bad range (`64..32`), a zero step or
// a geometric factor below 2, a value outside a key's set, a missing required key; with
// kOutOfRange when the combination count overflows or exceeds options.max_problems;
// and, when every combination fails Validate(), with the first one's code and
// first_skipped_reason as the message.
StatusOr<GridExpansion> ExpandGrid(std::string_view spec, const GridOptions& options = {});

// ---- problem lists ----

struct ListedProblem {
  Problem problem;
  std::string source;  // "FILE:LINE" of the line it came from (the included file's own)
  std::string text;    // the problem text parsed, without comment or log prefix
  // The algorithm the line names with a trailing `algo=NAME`; "" when it names none.
  std::string algorithm;
};

// Reads a problem list. Line by line:
//   - `#` starts a comment, on its own line or after a problem; blank lines are skipped;
//   - `include OTHER` or `--batch=OTHER` reads list OTHER in place, OTHER relative to
//     the directory of the including file (or absolute); an include cycle is an error,
//     including the same list twice otherwise is not (its problems appear twice);
//   - a line containing `MIOpenDriver conv...` (conv, convfp16, convbfp16; a logged
//     command such as `MIOpen(HIP): Command [LogCmdConvolution] ./bin/MIOpenDriver conv
//     -n 1 ...`) is parsed from `conv` on; `MIOpenDriver` lines of other commands (bnorm,
//     pool, ...) and other `MIOpen(...)` / `MIOpen:` log lines are skipped, so a raw log
//     is a valid list;
//   - any other line is one problem, parsed with ParseProblem(text) (form detected);
//     it may end with `algo=NAME` (letters, digits, `_ - . :`), the algorithm to run it
//     with (ListedProblem::algorithm), as `convguard replay` writes its sequences.
// Problems are returned in file order, includes expanded in place, duplicates kept.
//
// Fails with kNotFound naming the path when a list (top-level or included) does not
// exist, kIOError when it cannot be read; a bad line fails with the parser's code and
// the message "FILE:LINE: <parser message>" (plus "(included from FILE:LINE)" for each
// including list).
StatusOr<std::vector<ListedProblem>> ReadProblemList(const std::string& path);

// The same, for a list already in memory. `origin` names it in every "source" and
// error message; includes are resolved relative to origin's directory part (the current
// directory when it has none).
StatusOr<std::vector<ListedProblem>> ParseProblemListText(std::string_view text,
                                                          std::string_view origin);

// ---- MIOpen logs ----

// One distinct problem of a log.
struct LoggedProblem {
  Problem problem;
  // Its first command, from the command word (`conv`, `convfp16`, `convbfp16`) on, as
  // logged, e.g. "conv -n 8 -c 3 -H 32 -W 32 ... -m conv -g 1 -F 1 -t 1"; paste it into
  // MIOpenDriver or `convguard describe`. Bytes outside printable ASCII are written as
  // \xNN, and whitespace other than a space as a space.
  std::string driver_args;
  int64_t first_line = 0;  // 1-based line of its first command
  // Its commands by kind: from a Find (`[LogCmdFindConvolution]`, or an older build's
  // `miopenFind...` prefix) and from an execution (`[LogCmdConvolution]`, or no tag).
  int64_t find_lines = 0;
  int64_t run_lines = 0;
};

// One convolution command of a log, in log order; repeats are kept.
struct LoggedCall {
  size_t problem = 0;  // index into MiopenLog::problems
  int64_t line = 0;    // 1-based
  bool find = false;   // from a Find (see LoggedProblem::find_lines)
};

// A convolution command (a line holding `MIOpenDriver conv...`) that convguard cannot read:
// it names something convguard does not run yet (a transposed convolution, a 3-D one, a
// data type such as convint8, mixed layouts) or an argument is malformed. Such a line is
// reported, never misread and never dropped without a count.
struct LogUnreadLine {
  int64_t line = 0;  // 1-based
  // The command from its command word on, written as LoggedProblem::driver_args is, cut
  // to kMaxLogTextBytes (a cut one ends in "...").
  std::string text;
  // kUnsupported when the command is well formed but names what convguard does not run,
  // kInvalidArgument or kOutOfRange when it is malformed (the parser's code).
  StatusCode code = StatusCode::kInvalidArgument;
  // The parser's message, e.g. "miopen-driver: flag '-m' = 'trans' is a transposed
  // convolution; convguard runs -m conv only", cut like `text`.
  std::string reason;
};

// The most bytes of a command, or of a reason, that a LogUnreadLine keeps.
inline constexpr size_t kMaxLogTextBytes = 512;

struct MiopenLog {
  std::string origin;                   // the file, or the origin given to ParseMiopenLog
  std::vector<LoggedProblem> problems;  // distinct, in order of first appearance
  std::vector<LoggedCall> calls;        // every command read, in log order
  std::vector<LogUnreadLine> unread;    // every command not read, in log order
  // Every line falls in exactly one of calls, unread and skipped_lines:
  //   lines == calls.size() + unread.size() + skipped_lines.
  int64_t lines = 0;
  // Lines with no MIOpenDriver convolution command (counted, not kept), among them
  // `other_driver_commands`: lines with an MIOpenDriver command that is not a
  // convolution (bnorm, pool, CBAInfer, ...).
  int64_t skipped_lines = 0;
  int64_t other_driver_commands = 0;
};

// Reads an MIOpen log. A line holds a command when it contains `MIOpenDriver` (after
// anything: a log prefix such as `MIOpen(HIP): Command [LogCmdConvolution] ./bin/`, an
// elapsed time, a Windows path `C:\ROCm\bin\MIOpenDriver.exe`, a progress bar, binary
// garbage) followed by whitespace and a command word:
//   - `conv`, `convfp16`, `convbfp16`, or another `conv...` word followed by a flag (such
//     as `convint8 -n ...`): a convolution command, parsed from the command word to the
//     end of the line with ParseProblem(text, TextForm::kMiopenDriver); a command the
//     parser refuses is an unread line with the parser's code and message;
//   - any other word followed by a flag or by the end of the line (`bnorm -n ...`,
//     `pool`): another driver command, counted in other_driver_commands.
// Everything else is a skipped line. The reader works on bytes: NUL bytes, invalid
// UTF-8, CRLF line ends and a UTF-8 byte order mark are accepted; of a line longer than
// 64 KiB only the first 64 KiB are looked at, and a command in such a line is unread (it
// cannot be read whole), as is one longer than 4 KiB. Nothing here throws.
//
// Fails with kNotFound naming the path when the file does not exist, kIOError when it
// cannot be read, kInvalidArgument when it is a directory; and with kInvalidArgument
// when no line holds a convolution command (read or unread): exactly when
// LooksLikeMiopenLog is false for its bytes. That message says how many lines were read
// and what was looked for, e.g. "run.log: no MIOpenDriver convolution command in 0 lines
// read (looked for 'MIOpenDriver conv', 'convfp16' or 'convbfp16' as MIOpen logs them
// with MIOPEN_ENABLE_LOGGING_CMD=1)".
StatusOr<MiopenLog> ReadMiopenLog(const std::string& path);

// The same, for a log already in memory; `origin` names it in MiopenLog::origin and in
// the error message.
StatusOr<MiopenLog> ParseMiopenLog(std::string_view text, std::string_view origin);

// Whether some line of `text` holds an MIOpenDriver convolution command (read or
// unread, as ReadMiopenLog decides): what tells a log from a problem list.
bool LooksLikeMiopenLog(std::string_view text);

// A log as a model (convguard/model.h): one ModelConv per distinct problem, named by the
// line of its first command ("line 12"), its calls the number of commands; and one per
// unread command, with the parser's reason. The notes count Find and execution
// commands and the skipped lines.
ModelConvs ModelConvsFromLog(const MiopenLog& log);

// ---- convolution layers as a framework saw them ----
//
// A JSON file listing a model's convolutions, for tools that see a model from inside a
// framework (convguard.torch writes one from forward hooks):
//   {"convguard_layers": 1,
//    "origin": "torchvision.models.resnet18",          (optional; default: the path)
//    "notes": ["batch 2 from the example inputs"],      (optional)
//    "layers": [
//      {"name": "conv1", "op": "Conv2d", "problem":
//      "n1_c3_h224_w224_k64_r7_s7_p3_u2_d1_g1_f32_nchw_fwd",
//       "calls": 1},                                    (calls optional, default 1)
//      {"name": "up", "op": "ConvTranspose2d", "unsupported": "why"}]}
// A problem is in any text form ParseProblem reads. Each layer has exactly one of
// "problem" and "unsupported"; names need not be unique. The format field must be 1.
// Errors (kInvalidArgument, one line naming the file and the layer's index): not JSON,
// another version, a missing or mistyped field, a problem that does not parse or
// validate. kNotFound for a missing file, kIOError when it cannot be read.
StatusOr<ModelConvs> ReadLayersFile(const std::string& path);
StatusOr<ModelConvs> ParseLayers(std::string_view text, const std::string& origin);

// Whether `bytes` (a file's first bytes) look like a layers file: a JSON object whose
// text names "convguard_layers". A heuristic for choosing a reader.
bool LooksLikeLayers(std::string_view bytes);

}  // namespace convguard
