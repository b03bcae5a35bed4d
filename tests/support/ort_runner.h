// tests/support/ort_runner.h — runs scripts/ort_compare.py, which checks a fixed ONNX model
// against its original with onnxruntime, and reads its JSON report.
//
// onnxruntime is a runtime nobody here wrote; it comes from PyPI, pinned, in the venv that
// scripts/setup.sh makes ($BUILD_DIR/venv). Its interpreter reaches the tests in two ways:
// CMake's CONVGUARD_ORT_PYTHON, checked at configure time by tests/ort/ort.cmake (which
// keeps the reason when it does not import onnxruntime), and $CONVGUARD_ORT_PYTHON at test
// time, which overrides it. Either way the interpreter is tried once per process before
// use, so a venv deleted after configuring skips the tests instead of failing them.
//
// Tests that need onnxruntime begin with CONVGUARD_REQUIRE_ORT(): where it does not import,
// the test is skipped with the reason (the interpreter tried and why it failed), never
// failed. What the script compares, and its exit statuses (0 agree, 1 differ, 2 bad input),
// are in docs/verification.md.
//
// Thread-safety: OrtAvailable caches its answer in a function-local static (thread-safe
// initialisation); everything else only spawns processes and may run from any thread.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "support/cli_runner.h"

namespace convguard::testing_support {

// The interpreter the ort tests use: $CONVGUARD_ORT_PYTHON, else the one CMake accepted
// (empty when it accepted none).
std::string OrtPython();

// scripts/ort_compare.py in the source tree.
std::string OrtCompareScript();

// Whether `python` can import onnxruntime. On false, *why (when not null) names the
// interpreter and says what went wrong ("... cannot import onnxruntime: ModuleNotFoundError:
// No module named 'onnxruntime'").
bool OrtImportsUnder(const std::string& python, std::string* why);

// OrtImportsUnder(OrtPython()), asked once per process; with no interpreter at all, *why
// is CMake's reason (CONVGUARD_ORT_PYTHON unset, or the one it was given did not import).
bool OrtAvailable(std::string* why);

#define CONVGUARD_REQUIRE_ORT()                                             \
  do {                                                                      \
    std::string ort_unavailable_;                                           \
    if (!::convguard::testing_support::OrtAvailable(&ort_unavailable_)) {   \
      GTEST_SKIP() << "onnxruntime is not available: " << ort_unavailable_; \
    }                                                                       \
  } while (0)

struct OrtCompareOptions {
  std::string inputs = "random";  // random | exact | both
  uint64_t seed = 0;
  std::optional<double> tolerance;   // --tolerance; unset: the script's default per mode
  std::string save_optimized_dir;    // --save-optimized; empty: not asked
  std::string optimization = "all";  // --optimization: basic | extended | all
  double timeout_s = 300.0;
};

// One output of one run. An infinite error (shapes differ, a NaN on one side) is +inf.
struct OrtOutputComparison {
  std::string name;
  std::vector<int64_t> shape;
  int64_t elements = 0;
  double max_abs = 0;
  double max_rel = 0;      // max_abs / max(1, max |original|)
  int64_t mismatches = 0;  // elements that are not equal
  bool bit_equal = false;
  bool agree = false;
};

// One set of inputs, fed to both models.
struct OrtRun {
  std::string inputs;     // random | exact
  std::string criterion;  // "max_rel <= 0.0001", "every element equal"
  bool agree = false;
  std::vector<OrtOutputComparison> outputs;
};

// A graph onnxruntime runs after its own rewrites (--save-optimized), and its node counts
// keyed by op type ("Conv"; "DOMAIN.Conv" outside the ONNX domain).
struct OrtOptimizedGraph {
  std::string path;
  std::map<std::string, int> nodes;
};

struct OrtComparison {
  CliResult process;        // how ort_compare.py ended, and what it wrote
  bool parsed = false;      // stdout held the JSON report (exit status 0 or 1)
  std::string parse_error;  // why not, when the script exited 0 or 1 without one
  std::string onnxruntime_version;
  std::string input_mode;
  bool agree = false;
  std::vector<OrtRun> runs;
  std::map<std::string, OrtOptimizedGraph> optimized;  // "original", "fixed"
};

// Runs `ort_compare.py ORIGINAL FIXED --json ...` under OrtPython(). REQUIRES OrtAvailable.
OrtComparison CompareWithOrt(const std::string& original, const std::string& fixed,
                             const OrtCompareOptions& options = {});

// Runs `ort_compare.py --make-exact ORIGINAL OUT --seed SEED`: OUT is ORIGINAL with integer
// weights, for the caller to fix and compare with exact inputs. REQUIRES OrtAvailable.
CliResult MakeExactCopy(const std::string& original, const std::string& out, uint64_t seed = 0);

}  // namespace convguard::testing_support
