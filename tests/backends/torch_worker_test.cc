// The PyTorch backend: the C API it checks and matches fault rules with, its launcher,
// the Python worker at the protocol level (injected faults included), and the real probe
// engine driving it. Tests that need PyTorch skip
// (naming every interpreter tried) where no interpreter can import torch.
#include <gtest/gtest.h>
#include <unistd.h>  // sysconf(_SC_CLK_TCK), to read /proc/<pid>/stat in one test

#include <algorithm>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdlib>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "backends/inject/fault_rules.h"
#include "backends/inject/injecting_backend.h"
#include "capi/check_capi.h"
#include "convguard/fill.h"
#include "convguard/probe.h"
#include "convguard/problem_source.h"
#include "convguard/reference.h"
#include "convguard/text_forms.h"
#include "core/hash.h"
#include "core/json_records.h"
#include "os/pipe_io.h"
#include "os/process.h"
#include "probe/torch_launcher.h"
#include "support/cli_runner.h"
#include "worker/framing.h"
#include "worker/protocol.h"

namespace convguard {
namespace {

using testing_support::SourceDir;

#define REQUIRE_TORCH()                                            \
  do {                                                             \
    StatusOr<std::string> python_ = FindTorchPython("");           \
    if (!python_.ok()) GTEST_SKIP() << python_.status().message(); \
  } while (0)

Problem Parse(const std::string& text) {
  StatusOr<Problem> p = ParseProblem(text, TextForm::kCanonical);
  EXPECT_TRUE(p.ok()) << text << ": " << p.status().ToString();
  return p.ok() ? *p : Problem{};
}

// ---- the C API --------------------------------------------------------------------

struct CapiBuffers {
  std::vector<float> input, weight, output, bias;
};

CapiBuffers Filled(const std::string& canonical, uint64_t seed) {
  int64_t sizes[4] = {};
  char err[512] = "";
  EXPECT_EQ(cg_problem_sizes(canonical.c_str(), sizes, err, sizeof err), CG_OK) << err;
  CapiBuffers b;
  b.input.resize(static_cast<size_t>(sizes[0]));
  b.weight.resize(static_cast<size_t>(sizes[1]));
  b.output.resize(static_cast<size_t>(sizes[2]));
  b.bias.resize(static_cast<size_t>(sizes[3]));
  EXPECT_EQ(cg_fill(canonical.c_str(), seed, b.input.data(), b.weight.data(), b.output.data(),
                    b.bias.empty() ? nullptr : b.bias.data(), err, sizeof err),
            CG_OK)
      << err;
  return b;
}

// The float64 reference result of `canonical` for `seed`, rounded to float32.
std::vector<float> ReferenceResult(const std::string& canonical, uint64_t seed) {
  const Problem p = Parse(canonical);
  ConvTensors<double> t = ConvTensors<double>::Allocate(p);
  FillExact(p, seed, t);
  ReferenceConvolution(p, t);
  const std::vector<double>& r = ResultTensor(p, t);
  return std::vector<float>(r.begin(), r.end());
}

std::string Check(const std::string& canonical, uint64_t seed, const std::vector<float>& result,
                  const char* mode, int* rc = nullptr) {
  char out[4096] = "";
  const int code = cg_check(canonical.c_str(), seed, result.data(),
                            static_cast<int64_t>(result.size()), mode, 64, out, sizeof out);
  if (rc != nullptr) *rc = code;
  return out;
}

TEST(CheckCapi, SizesMatchTheProblem) {
  const std::string text = "n2_c6_h11_w9_k4_r3_s2_p1x0x2x1_u2x1_d1x2_g2_bias_f32_nhwc_fwd";
  const Problem p = Parse(text);
  int64_t sizes[4] = {};
  char err[256] = "";
  ASSERT_EQ(cg_problem_sizes(text.c_str(), sizes, err, sizeof err), CG_OK) << err;
  EXPECT_EQ(sizes[0], p.input_elements());
  EXPECT_EQ(sizes[1], p.weight_elements());
  EXPECT_EQ(sizes[2], p.output_elements());
  EXPECT_EQ(sizes[3], p.bias_elements());
  EXPECT_EQ(cg_capi_version(), CG_CAPI_VERSION);
  EXPECT_STREQ(cg_tool_version(), CONVGUARD_VERSION);

  char json[2048] = "";
  ASSERT_EQ(cg_problem_json(text.c_str(), json, sizeof json), CG_OK) << json;
  const std::string j = json;
  EXPECT_NE(j.find("\"canonical\":\"" + ToCanonical(p) + "\""), std::string::npos) << j;
  EXPECT_NE(j.find("\"pad_bottom\":2"), std::string::npos) << j;
  EXPECT_NE(j.find("\"out_h\":" + std::to_string(p.out_h())), std::string::npos) << j;
  EXPECT_NE(j.find("\"layout\":\"nhwc\""), std::string::npos) << j;
  EXPECT_NE(j.find("\"result\":\"output\""), std::string::npos) << j;
}

TEST(CheckCapi, FillsExactValuesAndPoisonsTheResult) {
  for (const char* text :
       {"n1_c4_h8_w8_k6_r3_s3_p1_bias_f32_nchw_fwd", "n2_c4_h7_w5_k4_r3_s3_p1_g2_f16_nhwc_bwd-data",
        "n1_c3_h9_w9_k5_r3_s3_p0x1x2x0_bf16_nchw_bwd-weights"}) {
    SCOPED_TRACE(text);
    const Problem p = Parse(text);
    ConvTensors<double> exact = ConvTensors<double>::Allocate(p);
    FillExact(p, 42, exact);
    CapiBuffers b = Filled(text, 42);
    const std::vector<float>& result = ResultRole(p.direction) == TensorRole::kInput    ? b.input
                                       : ResultRole(p.direction) == TensorRole::kWeight ? b.weight
                                                                                        : b.output;
    auto same = [](const std::vector<double>& want, const std::vector<float>& got) {
      if (want.size() != got.size()) return false;
      for (size_t i = 0; i < want.size(); ++i) {
        if (static_cast<double>(got[i]) != want[i]) return false;
      }
      return true;
    };
    for (TensorRole role : {TensorRole::kInput, TensorRole::kWeight, TensorRole::kOutput}) {
      const std::vector<float>& got = role == TensorRole::kInput    ? b.input
                                      : role == TensorRole::kWeight ? b.weight
                                                                    : b.output;
      const std::vector<double>& want = role == TensorRole::kInput    ? exact.input
                                        : role == TensorRole::kWeight ? exact.weight
                                                                      : exact.output;
      if (role == ResultRole(p.direction)) {
        for (float v : got) ASSERT_TRUE(std::isnan(v));
      } else {
        EXPECT_TRUE(same(want, got)) << TensorName(role, p.direction);
      }
    }
    EXPECT_TRUE(same(exact.bias, b.bias));
    EXPECT_FALSE(result.empty());
  }
}

TEST(CheckCapi, ChecksLikeTheWorker) {
  const std::string text = "n2_c6_h11_w9_k4_r3_s2_p1x0x2x1_u2x1_d1x2_g2_bias_f32_nhwc_fwd";
  std::vector<float> result = ReferenceResult(text, 7);
  int rc = -1;
  std::string json = Check(text, 7, result, "full", &rc);
  ASSERT_EQ(rc, CG_OK) << json;
  EXPECT_NE(json.find("\"outcome\":\"ok\""), std::string::npos) << json;
  EXPECT_NE(json.find("\"check\":\"full:" + std::to_string(result.size()) + "\""),
            std::string::npos)
      << json;
  json = Check(text, 7, result, "sampled", &rc);
  EXPECT_NE(json.find("\"outcome\":\"ok\""), std::string::npos) << json;
  EXPECT_NE(json.find("\"check\":\"sampled:"), std::string::npos) << json;
  EXPECT_NE(Check(text, 7, result, "none").find("\"check\":\"none\""), std::string::npos);

  // Another seed's data is not this result: exact fills make any difference a mismatch.
  json = Check(text, 8, result, "full", &rc);
  EXPECT_NE(json.find("\"outcome\":\"wrong\""), std::string::npos) << json;

  result[3] += 1.0f;
  json = Check(text, 7, result, "full", &rc);
  EXPECT_NE(json.find("\"outcome\":\"wrong\""), std::string::npos) << json;
  EXPECT_NE(json.find("\"mismatches\":1"), std::string::npos) << json;
  EXPECT_NE(json.find("1 mismatch"), std::string::npos) << json;

  result[3] = std::nanf("");
  json = Check(text, 7, result, "full", &rc);
  EXPECT_NE(json.find("\"non_finite\":1"), std::string::npos) << json;
  EXPECT_NE(json.find("\"outcome\":\"wrong\""), std::string::npos) << json;
}

TEST(CheckCapi, ErrorsAreCodesWithMessages) {
  char err[256] = "";
  int64_t sizes[4] = {};
  EXPECT_EQ(cg_problem_sizes("n1_c4_h8_w8_k3_r3_s3_p1_g2", sizes, err, sizeof err), CG_EINVAL);
  EXPECT_NE(std::string(err).find("divisible by groups"), std::string::npos) << err;
  EXPECT_EQ(cg_problem_sizes(nullptr, sizes, err, sizeof err), CG_EINVAL);
  // Only the canonical form: the protocol carries nothing else.
  EXPECT_EQ(
      cg_problem_sizes("16-64-64-3x3-32-64-64-1-1x1-1x1-1x1-0-NCHW-FP32-F", sizes, err, sizeof err),
      CG_EINVAL);

  const std::string text = "n1_c4_h8_w8_k4_r3_s3_p1";
  std::vector<float> result = ReferenceResult(text, 1);
  char out[4096] = "";
  EXPECT_EQ(cg_check(text.c_str(), 1, result.data(), 3, "full", 0, out, sizeof out), CG_EINVAL);
  EXPECT_NE(std::string(out).find("must hold 256 elements; got 3"), std::string::npos) << out;
  EXPECT_EQ(cg_check(text.c_str(), 1, result.data(), 256, "everything", 0, out, sizeof out),
            CG_EINVAL);
  EXPECT_NE(std::string(out).find("allowed: none, sampled, full"), std::string::npos) << out;
  char tiny[16] = "";
  EXPECT_EQ(cg_check(text.c_str(), 1, result.data(), 256, "full", 0, tiny, sizeof tiny),
            CG_ETOOSMALL);
  EXPECT_EQ(std::string(tiny).size(), sizeof tiny - 1);  // truncated, still terminated
  EXPECT_EQ(cg_fill(text.c_str(), 1, nullptr, nullptr, nullptr, nullptr, err, sizeof err),
            CG_EINVAL);
  std::vector<float> x(256), w(144), y(256);
  EXPECT_EQ(cg_fill("n1_c4_h8_w8_k4_r3_s3_p1_bias", 1, x.data(), w.data(), y.data(), nullptr, err,
                    sizeof err),
            CG_EINVAL);
  EXPECT_NE(std::string(err).find("bias"), std::string::npos) << err;
  EXPECT_EQ(cg_probe_open("nonsense", 1, err, sizeof err), nullptr);
  cg_probe_close(nullptr);
}

// ---- fault rules through the C API ---------------------------------------------------

// Rules with a fault of every kind, header directives and an algorithm predicate.
constexpr const char* kTorchRules =
    "# fault rules for the torch worker tests\n"
    "emulation: test stack for the torch worker (faults injected)\n"
    "stack.knobs.CONVGUARD_TEST_KNOB: on\n"
    "spin when k == 3\n"
    "block when k == 5\n"
    "segv when k == 6\n"
    "abort when k == 7\n"
    "wrong(0.25) when k == 9\n"
    "error(\"injected backend failure\") when k == 10\n"
    "slow(40) when k == 11\n"
    "oom when k == 12\n"
    "unsupported(\"injected: no kernel for this shape\") when k == 13\n"
    "exit(42) when k == 14\n"
    "wrong(1) when k == 15 && algo == \"no-mkldnn\"\n";

std::string SmallCanonical(int64_t k, int64_t c = 4) {
  return "n1_c" + std::to_string(c) + "_h8_w8_k" + std::to_string(k) +
         "_r3_s3_p1_u1_d1_g1_f32_nchw_fwd";
}

struct CapiRules {
  cg_rules* rules = nullptr;
  explicit CapiRules(const std::string& text, const std::string& origin) {
    char err[1024] = "";
    rules = cg_rules_parse(text.data(), text.size(), origin.c_str(), err, sizeof err);
    EXPECT_NE(rules, nullptr) << err;
  }
  ~CapiRules() { cg_rules_close(rules); }
  CapiRules(const CapiRules&) = delete;
  CapiRules& operator=(const CapiRules&) = delete;

  nlohmann::json Match(const std::string& canonical, const std::string& algorithm,
                       int device = 0) const {
    char out[4096] = "";
    const int rc =
        cg_rules_match(rules, canonical.c_str(), algorithm.c_str(), device, out, sizeof out);
    EXPECT_EQ(rc, CG_OK) << out;
    StatusOr<nlohmann::json> j = ParseJson(out);
    EXPECT_TRUE(j.ok()) << out;
    return j.ok() ? *j : nlohmann::json();
  }

  // cg_rules_match_call; the return code goes to *rc and the text (JSON or message) back.
  std::string MatchCall(const std::string& canonical, const std::string& algorithm, int device,
                        int64_t calls, const char* previous_canonical,
                        const char* previous_algorithm, int* rc) const {
    char out[4096] = "";
    *rc = cg_rules_match_call(rules, canonical.c_str(), algorithm.c_str(), device, calls,
                              previous_canonical, previous_algorithm, out, sizeof out);
    return out;
  }

  // cg_rules_apply_fingerprint on `in` for `device`, read back.
  StatusOr<StackFingerprint> Apply(const StackFingerprint& in, int device) const {
    char out[4096] = "";
    if (const int rc = cg_rules_apply_fingerprint(rules, DumpJson(ToJson(in)).c_str(), device, out,
                                                  sizeof out);
        rc != CG_OK) {
      return Status::Internal("cg_rules_apply_fingerprint: " + std::to_string(rc) + ": " + out);
    }
    CG_ASSIGN_OR_RETURN(nlohmann::json j, ParseJson(out));
    return StackFromJson(j);
  }
};

TEST(CheckCapi, FaultRulesParseAndMatchWithTheCppMatcher) {
  const std::string origin = "torch.rules";
  StatusOr<inject::FaultRules> cpp = inject::ParseFaultRules(kTorchRules, origin);
  ASSERT_TRUE(cpp.ok()) << cpp.status().ToString();
  CapiRules capi(kTorchRules, origin);
  ASSERT_NE(capi.rules, nullptr);

  char info[1024] = "";
  ASSERT_EQ(cg_rules_json(capi.rules, info, sizeof info), CG_OK) << info;
  StatusOr<nlohmann::json> j = ParseJson(info);
  ASSERT_TRUE(j.ok()) << info;
  EXPECT_EQ((*j)["digest"], Fnv1a64Hex(kTorchRules));
  EXPECT_EQ((*j)["digest"], cpp->digest);
  EXPECT_EQ((*j)["origin"], origin);
  EXPECT_EQ((*j)["emulation"], "test stack for the torch worker (faults injected)");
  EXPECT_EQ((*j)["rules"], cpp->rules.size());

  // Every problem and algorithm: the same rule as the C++ matcher, or none.
  for (int64_t k = 1; k <= 16; ++k) {
    for (const char* algorithm : {"default", "no-mkldnn", "direct"}) {
      const std::string canonical = SmallCanonical(k);
      SCOPED_TRACE(canonical + " " + algorithm);
      const inject::FaultRule* want = cpp->Match(Parse(canonical), algorithm);
      const nlohmann::json got = capi.Match(canonical, algorithm);
      ASSERT_EQ(got["matched"], want != nullptr) << got.dump();
      if (want == nullptr) continue;
      EXPECT_EQ(got["kind"], std::string(inject::FaultKindName(want->fault.kind)));
      EXPECT_EQ(got["fatal"], inject::IsFatal(want->fault.kind));
      EXPECT_EQ(got["line"], want->line);
      EXPECT_EQ(got["where"], origin + ":" + std::to_string(want->line));
      EXPECT_EQ(got["rule"], want->ToString());
      EXPECT_EQ(got["fault"], want->fault.ToString());
      EXPECT_EQ(got["injected_by"], " [injected by " + cpp->Where(*want) + "]");
      EXPECT_EQ(got["mark"],
                "[injected " + want->fault.ToString() + " by " + cpp->Where(*want) + "]");
      EXPECT_EQ(got["announce"], "convguard: injected fault '" +
                                     std::string(inject::FaultKindName(want->fault.kind)) +
                                     "' by rule " + cpp->Where(*want) + ": " + want->ToString());
    }
  }
  const nlohmann::json wrong = capi.Match(SmallCanonical(9), "default");
  EXPECT_EQ(wrong["wrong_fraction"], 0.25);
  EXPECT_EQ(capi.Match(SmallCanonical(11), "default")["slow_ms"], 40);
  EXPECT_EQ(capi.Match(SmallCanonical(14), "default")["exit_code"], 42);
  EXPECT_EQ(capi.Match(SmallCanonical(10), "default")["message"], "injected backend failure");
  EXPECT_EQ(capi.Match(SmallCanonical(15), "no-mkldnn")["kind"], "wrong");
  EXPECT_EQ(capi.Match(SmallCanonical(15), "default")["matched"], false);
}

TEST(CheckCapi, FaultRulesErrorsAreTheParsersMessages) {
  char err[1024] = "";
  const std::string bad = "hang when c == 1\n";
  EXPECT_EQ(cg_rules_parse(bad.data(), bad.size(), "my.rules", err, sizeof err), nullptr);
  StatusOr<inject::FaultRules> cpp = inject::ParseFaultRules(bad, "my.rules");
  ASSERT_FALSE(cpp.ok());
  EXPECT_EQ(std::string(err), cpp.status().message());
  EXPECT_EQ(std::string(err).rfind("my.rules:1:1: unknown fault 'hang'", 0), 0u) << err;

  // The length counts, not a NUL: a second line past `text_len` is not read.
  const std::string two = "spin when k == 3\nhang when c == 1\n";
  cg_rules* first_line_only =
      cg_rules_parse(two.data(), two.find('\n') + 1, "two", err, sizeof err);
  EXPECT_NE(first_line_only, nullptr) << err;
  cg_rules_close(first_line_only);
  cg_rules_close(nullptr);

  CapiRules rules("spin when k == 3\n", "r");
  char out[256] = "";
  EXPECT_EQ(cg_rules_match(rules.rules, "16-64-64-3x3-32-64-64-1-1x1-1x1-1x1-0-NCHW-FP32-F",
                           "default", 0, out, sizeof out),
            CG_EINVAL);
  EXPECT_EQ(cg_rules_match(nullptr, SmallCanonical(3).c_str(), "default", 0, out, sizeof out),
            CG_EINVAL);
  EXPECT_EQ(cg_rules_match(rules.rules, SmallCanonical(3).c_str(), nullptr, 0, out, sizeof out),
            CG_EINVAL);
  EXPECT_EQ(cg_rules_match(rules.rules, SmallCanonical(3).c_str(), "default", -1, out, sizeof out),
            CG_EINVAL);
  EXPECT_NE(std::string(out).find("device -1 is negative"), std::string::npos) << out;
  EXPECT_EQ(cg_rules_apply_fingerprint(rules.rules, "{\"device\":\"x\"}", 0, out, sizeof out),
            CG_EINVAL);  // "backend" is required
  EXPECT_NE(std::string(out).find("backend"), std::string::npos) << out;
  EXPECT_EQ(cg_rules_apply_fingerprint(rules.rules, "{not json", 0, out, sizeof out), CG_EINVAL);
  EXPECT_EQ(cg_rules_apply_fingerprint(rules.rules, "{\"backend\":\"torch\"}", -2, out, sizeof out),
            CG_EINVAL);
}

TEST(CheckCapi, FingerprintGetsWhatAnInjectingBackendGives) {
  StackFingerprint inner;
  inner.backend = "torch";
  inner.device = "CPU Test";
  inner.architecture = "x86_64 avx2";
  inner.compute_units = 2;
  inner.runtime = "CPU";
  inner.library = "PyTorch 1.13; oneDNN 2.6.3";
  inner.knobs = {{"CONVGUARD_TORCH_THREADS", "1"}};
  inner.tool_version = CONVGUARD_VERSION;
  StatusOr<inject::FaultRules> cpp = inject::ParseFaultRules(kTorchRules, "torch.rules");
  ASSERT_TRUE(cpp.ok());
  CapiRules capi(kTorchRules, "torch.rules");

  for (bool already_injected : {false, true}) {
    StackFingerprint in = inner;
    if (already_injected) in.fault_rules_digest = "0123456789abcdef";
    StackFingerprint want = in;
    cpp->ApplyTo(want);
    StatusOr<StackFingerprint> got = capi.Apply(in, 0);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    EXPECT_EQ(*got, want);
    EXPECT_EQ(got->Id(), want.Id());
    EXPECT_EQ(got->knobs.at("CONVGUARD_TEST_KNOB"), "on");
    EXPECT_TRUE(got->is_emulated());
    EXPECT_EQ(got->fault_rules_digest,
              already_injected ? Fnv1a64Hex("0123456789abcdef+" + cpp->digest) : cpp->digest);
  }
}

// Rules that read `device` make each device its own stack, through the C API as in C++.
TEST(CheckCapi, DeviceRulesMatchAndDigestPerDevice) {
  const std::string text = "spin when device == 1 && k == 3\nerror(\"x\") when device >= 2\n";
  StatusOr<inject::FaultRules> cpp = inject::ParseFaultRules(text, "dev.rules");
  ASSERT_TRUE(cpp.ok()) << cpp.status().ToString();
  CapiRules capi(text, "dev.rules");
  EXPECT_EQ(capi.Match(SmallCanonical(3), "default", 0)["matched"], false);
  EXPECT_EQ(capi.Match(SmallCanonical(3), "default", 1)["kind"], "spin");
  EXPECT_EQ(capi.Match(SmallCanonical(4), "default", 1)["matched"], false);
  EXPECT_EQ(capi.Match(SmallCanonical(4), "default", 2)["kind"], "error");

  StackFingerprint in;
  in.backend = "torch";
  in.device = "GPU Test";
  std::set<std::string> ids;
  for (int device : {0, 1, 2}) {
    StackFingerprint want = in;
    cpp->ApplyTo(want, device);
    StatusOr<StackFingerprint> got = capi.Apply(in, device);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    EXPECT_EQ(*got, want);
    EXPECT_EQ(got->fault_rules_digest,
              Fnv1a64Hex(cpp->digest + "@device " + std::to_string(device)));
    ids.insert(got->Id());
  }
  EXPECT_EQ(ids.size(), 3u);
}

// Sequence faults: cg_rules_match_call gives the C++ matcher's answer for every history,
// and cg_rules_match is the first call of a fresh process.
TEST(CheckCapi, FaultRulesMatchWithTheCallHistory) {
  const std::string text =
      "error(\"late\") when calls >= 3\n"
      "spin when prev.k == 3 && k == 16 && prev.algo == \"no-mkldnn\"\n"
      "unsupported(\"first\") when calls == 1 && k == 7\n";
  StatusOr<inject::FaultRules> cpp = inject::ParseFaultRules(text, "seq.rules");
  ASSERT_TRUE(cpp.ok()) << cpp.status().ToString();
  CapiRules capi(text, "seq.rules");
  ASSERT_NE(capi.rules, nullptr);

  struct History {
    int64_t calls;
    int64_t previous_k;  // 0: no previous call
    const char* previous_algorithm;
  };
  for (const History& h :
       {History{1, 0, ""}, History{2, 3, "no-mkldnn"}, History{2, 3, "default"},
        History{2, 16, "no-mkldnn"}, History{3, 5, "default"}, History{40, 3, "no-mkldnn"}}) {
    for (int64_t k : {3, 7, 16}) {
      const std::string canonical = SmallCanonical(k);
      const std::string previous = h.previous_k > 0 ? SmallCanonical(h.previous_k) : "";
      SCOPED_TRACE(canonical + " at call " + std::to_string(h.calls) + " after '" + previous +
                   "' " + h.previous_algorithm);
      const Problem previous_problem = h.previous_k > 0 ? Parse(previous) : Problem{};
      inject::CallHistory history;
      history.calls = h.calls;
      if (h.previous_k > 0) {
        history.previous = &previous_problem;
        history.previous_algorithm = h.previous_algorithm;
      }
      const inject::FaultRule* want = cpp->Match(Parse(canonical), "default", 0, history);
      int rc = -1;
      const std::string out =
          capi.MatchCall(canonical, "default", 0, h.calls,
                         h.previous_k > 0 ? previous.c_str() : nullptr, h.previous_algorithm, &rc);
      ASSERT_EQ(rc, CG_OK) << out;
      StatusOr<nlohmann::json> got = ParseJson(out);
      ASSERT_TRUE(got.ok()) << out;
      ASSERT_EQ((*got)["matched"], want != nullptr) << out;
      if (want != nullptr) {
        EXPECT_EQ((*got)["line"], want->line) << out;
      }
    }
  }
  // The spots the rules aim at, by name.
  int rc = -1;
  EXPECT_NE(capi.MatchCall(SmallCanonical(16), "default", 0, 2, SmallCanonical(3).c_str(),
                           "no-mkldnn", &rc)
                .find("\"kind\":\"spin\""),
            std::string::npos);
  EXPECT_NE(capi.MatchCall(SmallCanonical(16), "default", 0, 3, SmallCanonical(3).c_str(),
                           "no-mkldnn", &rc)
                .find("\"message\":\"late\""),
            std::string::npos);
  // "" is no previous call, as NULL is.
  EXPECT_NE(capi.MatchCall(SmallCanonical(7), "default", 0, 1, "", "", &rc).find("\"first\""),
            std::string::npos);
  // cg_rules_match: the first call of a fresh process.
  EXPECT_EQ(capi.Match(SmallCanonical(7), "default")["kind"], "unsupported");
  EXPECT_EQ(capi.Match(SmallCanonical(16), "default")["matched"], false);

  // A history that cannot be is refused, with the reason.
  struct Bad {
    int64_t calls;
    const char* previous;
    const char* previous_algorithm;
    std::string expected;
  };
  const std::string c3 = SmallCanonical(3);
  for (const Bad& b :
       {Bad{0, nullptr, nullptr, "calls 0 is not a call's position"},
        Bad{-4, nullptr, nullptr, "calls -4 is not a call's position"},
        Bad{1, c3.c_str(), "default", "calls is 1 (the first call), yet a previous problem"},
        Bad{2, nullptr, nullptr, "calls is 2, but no previous problem is given"},
        Bad{2, "", "default", "calls is 2, but no previous problem is given"},
        Bad{2, c3.c_str(), nullptr, "the previous call's algorithm is missing"},
        Bad{2, c3.c_str(), "", "the previous call's algorithm is missing"},
        Bad{2, "n1_c4_h8_w8_k3_r3_s3_p1_g2", "default", "previous call: bad problem"}}) {
    SCOPED_TRACE(b.expected);
    const std::string out = capi.MatchCall(SmallCanonical(16), "default", 0, b.calls, b.previous,
                                           b.previous_algorithm, &rc);
    EXPECT_EQ(rc, CG_EINVAL) << out;
    EXPECT_NE(out.find(b.expected), std::string::npos) << out;
  }
  EXPECT_EQ(CG_CAPI_VERSION, 4);
}

TEST(CheckCapi, CorruptTailIsTheInjectingBackendsWrong) {
  for (double fraction : {0.01, 0.25, 0.5, 1.0}) {
    std::vector<float> want = {0.0f, -3.0f, 7.0f, 1.5f, -0.5f, 42.0f, 0.0f, -9.0f, 2.0f};
    std::vector<float> got = want;
    inject::CorruptTail(want, fraction);
    char err[256] = "";
    ASSERT_EQ(
        cg_corrupt_tail(got.data(), static_cast<int64_t>(got.size()), fraction, err, sizeof err),
        CG_OK)
        << err;
    EXPECT_EQ(got, want) << fraction;
  }
  char err[256] = "";
  float one = 1.0f;
  EXPECT_EQ(cg_corrupt_tail(&one, 1, 0.0, err, sizeof err), CG_EINVAL);
  EXPECT_EQ(cg_corrupt_tail(&one, 1, 1.5, err, sizeof err), CG_EINVAL);
  EXPECT_EQ(cg_corrupt_tail(nullptr, 4, 0.5, err, sizeof err), CG_EINVAL);
  EXPECT_EQ(cg_corrupt_tail(nullptr, 0, 0.5, err, sizeof err), CG_OK);
  EXPECT_EQ(one, 1.0f);
}

// ---- the launcher -------------------------------------------------------------------

TEST(TorchLauncher, CandidatesAreTheOverrideAloneOrTheSearchOrder) {
  EXPECT_EQ(TorchPythonCandidates("/nonexistent/python"),
            std::vector<std::string>{"/nonexistent/python"});
  const std::vector<std::string> auto_candidates = TorchPythonCandidates("");
  ASSERT_FALSE(auto_candidates.empty());
  const char* env = std::getenv("CONVGUARD_PYTHON");
  if (env == nullptr || *env == '\0') {
    EXPECT_EQ(auto_candidates.front(), "/usr/bin/python3");
  }

  StatusOr<std::string> missing = FindTorchPython("/nonexistent/python");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("/nonexistent/python (no such executable)"),
            std::string::npos)
      << missing.status().message();
  EXPECT_FALSE(TorchAvailable("/nonexistent/python"));
  StatusOr<std::vector<std::string>> command = TorchWorkerCommand("/nonexistent/python");
  ASSERT_FALSE(command.ok());
  EXPECT_NE(command.status().message().find("/nonexistent/python"), std::string::npos);

  // An interpreter that runs but has no torch: /bin/false stands in for one.
  StatusOr<std::string> no_torch = FindTorchPython("/bin/false");
  ASSERT_FALSE(no_torch.ok());
  EXPECT_NE(no_torch.status().message().find("/bin/false ("), std::string::npos)
      << no_torch.status().message();
}

TEST(TorchLauncher, CommandRunsTheScriptWithTheCheckLibrary) {
  REQUIRE_TORCH();
  StatusOr<std::vector<std::string>> command = TorchWorkerCommand("");
  ASSERT_TRUE(command.ok()) << command.status().ToString();
  ASSERT_EQ(command->size(), 5u);
  EXPECT_EQ((*command)[0], *FindTorchPython(""));
  EXPECT_EQ((*command)[1], "-B");
  EXPECT_EQ((*command)[2], TorchWorkerScriptPath());
  EXPECT_EQ((*command)[2].rfind("/convguard_torch_worker.py"), (*command)[2].size() - 26);
  EXPECT_EQ((*command)[3], "--checklib");
  EXPECT_EQ((*command)[4], CheckLibraryPath());
  // The explicit interpreter gives the same command.
  StatusOr<std::vector<std::string>> again = TorchWorkerCommand((*command)[0]);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(*again, *command);
}

// ---- the worker at the protocol level ------------------------------------------------

// Any interpreter that runs the script (argument errors come before `import torch`).
std::optional<std::vector<std::string>> ScriptCommand() {
  StatusOr<std::vector<std::string>> command = TorchWorkerCommand("");
  if (command.ok()) return *command;
  for (const std::string& python : TorchPythonCandidates("")) {
    if (python.find('/') == std::string::npos) continue;
    return std::vector<std::string>{python, "-B", TorchWorkerScriptPath(), "--checklib",
                                    CheckLibraryPath()};
  }
  return std::nullopt;
}

struct Spawned {
  os::ChildProcess child;
  worker::FrameDecoder decoder;

  Status Send(const std::string& payload) {
    CG_ASSIGN_OR_RETURN(std::string frame, worker::EncodeFrame(payload));
    CG_ASSIGN_OR_RETURN(
        os::IoResult r,
        os::WriteAll(child.stdin_fd(), frame, os::Deadline::After(std::chrono::seconds(10))));
    if (r.timed_out()) return Status::IOError("the worker stopped reading");
    return Status::Ok();
  }

  // The next message, or an error at EOF or after `seconds`.
  StatusOr<worker::Message> Next(double seconds = 120.0) {
    const os::Deadline deadline = os::Deadline::After(
        std::chrono::duration_cast<os::Duration>(std::chrono::duration<double>(seconds)));
    for (;;) {
      if (std::optional<worker::DecodedFrame> frame = decoder.Next()) {
        return worker::DecodeMessage(frame->payload, /*from_worker=*/true);
      }
      uint8_t buf[4096];
      CG_ASSIGN_OR_RETURN(os::IoResult r, os::ReadSome(child.stdout_fd(), buf, deadline));
      if (r.eof()) return Status::IOError("EOF from the worker");
      if (r.timed_out()) return Status::IOError("no message from the worker in time");
      decoder.Feed(std::span<const uint8_t>(buf, r.bytes));
    }
  }
};

StatusOr<Spawned> SpawnWorker(std::vector<std::string> argv, os::StderrMode stderr_mode,
                              std::vector<std::pair<std::string, std::string>> env = {}) {
  os::SpawnOptions options;
  options.argv = std::move(argv);
  options.stderr_mode = stderr_mode;
  options.env_set = std::move(env);
  options.die_with_parent = true;
  Spawned s;
  CG_ASSIGN_OR_RETURN(s.child, os::SpawnChild(options));
  return s;
}

std::string ReadAll(int fd) {
  std::string out;
  uint8_t buf[4096];
  const os::Deadline deadline = os::Deadline::After(std::chrono::seconds(60));
  for (;;) {
    StatusOr<os::IoResult> r = os::ReadSome(fd, buf, deadline);
    if (!r.ok() || !r->data()) return out;
    out.append(reinterpret_cast<const char*>(buf), r->bytes);
  }
}

TEST(TorchWorkerProtocol, UnreadableOrBadFaultRulesAreFatalMessages) {
  // Both are decided before `import torch`, so any interpreter that runs the script will do.
  std::optional<std::vector<std::string>> base = ScriptCommand();
  if (!base) GTEST_SKIP() << "no Python interpreter found";
  const std::string dir = testing_support::MakeTempDir("torch-bad-rules");
  const std::string bad =
      testing_support::WriteFile(dir + "/bad.rules", "spin when k == 3\nhang when c == 1\n");
  struct Case {
    std::string path;
    std::string expected;
  };
  for (const Case& c :
       {Case{bad, bad + ":2:1: unknown fault 'hang'"},
        Case{dir + "/missing.rules", "cannot open fault rules file '" + dir + "/missing.rules'"}}) {
    SCOPED_TRACE(c.path);
    std::vector<std::string> argv = *base;
    for (const std::string& a :
         {std::string("--backend"), std::string("torch"), std::string("--inject"), c.path}) {
      argv.push_back(a);
    }
    StatusOr<Spawned> w = SpawnWorker(argv, os::StderrMode::kDevNull);
    ASSERT_TRUE(w.ok()) << w.status().ToString();
    StatusOr<worker::Message> m = w->Next(60.0);
    ASSERT_TRUE(m.ok()) << m.status().ToString();
    ASSERT_TRUE(m->fatal.has_value()) << m->type;
    EXPECT_EQ(m->fatal->rfind(c.expected, 0), 0u) << *m->fatal;
    StatusOr<os::ExitInfo> exit = w->child.WaitExit(std::chrono::seconds(60));
    ASSERT_TRUE(exit.ok() && exit->exited()) << (exit.ok() ? exit->ToString() : "");
    EXPECT_EQ(exit->exit_code, 3);
  }
}

TEST(TorchWorkerProtocol, MissingCheckLibraryIsAFatalMessage) {
  std::optional<std::vector<std::string>> argv = ScriptCommand();
  if (!argv) GTEST_SKIP() << "no Python interpreter found";
  (*argv)[4] = "/nonexistent/libconvguard_check.so";
  argv->push_back("--backend");
  argv->push_back("torch");
  StatusOr<Spawned> w = SpawnWorker(*argv, os::StderrMode::kDevNull);
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  StatusOr<worker::Message> m = w->Next(60.0);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  ASSERT_TRUE(m->fatal.has_value()) << m->type;
  EXPECT_NE(m->fatal->find("/nonexistent/libconvguard_check.so"), std::string::npos) << *m->fatal;
  StatusOr<os::ExitInfo> exit = w->child.WaitExit(std::chrono::seconds(60));
  ASSERT_TRUE(exit.ok() && exit->exited());
  EXPECT_EQ(exit->exit_code, 3);
}

TEST(TorchWorkerProtocol, SpeaksTheProtocolThroughJunkAndSplitFrames) {
  REQUIRE_TORCH();
  std::vector<std::string> argv = *TorchWorkerCommand("");
  argv.push_back("--backend");
  argv.push_back("torch");
  StatusOr<Spawned> w = SpawnWorker(argv, os::StderrMode::kDevNull);
  ASSERT_TRUE(w.ok()) << w.status().ToString();

  StatusOr<worker::Message> hello = w->Next();
  ASSERT_TRUE(hello.ok()) << hello.status().ToString();  // StackFromJson is strict
  ASSERT_TRUE(hello->hello.has_value()) << hello->type;
  EXPECT_EQ(hello->hello->backend, "torch");
  EXPECT_EQ(hello->hello->pid, w->child.pid());
  EXPECT_EQ(hello->hello->fingerprint.backend, "torch");
  EXPECT_NE(hello->hello->fingerprint.library.find("PyTorch "), std::string::npos);
  EXPECT_EQ(hello->hello->fingerprint.tool_version, CONVGUARD_VERSION);
  EXPECT_FALSE(hello->hello->fingerprint.device.empty());
  EXPECT_GT(hello->hello->fingerprint.compute_units, 0);
  // What the stack depends on: the interpreter and torch's own library are mapped, the
  // worker's modules are listed (the identity cache validates these files).
  const std::vector<std::string>& files = hello->hello->mapped_files;
  const auto listed = [&](const std::string& part) {
    return std::any_of(files.begin(), files.end(),
                       [&](const std::string& f) { return f.find(part) != std::string::npos; });
  };
  EXPECT_TRUE(listed("/libtorch")) << "torch's shared library";
  EXPECT_TRUE(listed("/python3")) << "the interpreter";
  EXPECT_TRUE(listed("/convguard/worker/main.py")) << "the worker's own code";
  EXPECT_TRUE(listed("/torch/version.py"));

  // Junk, then an algorithms request fed one byte at a time.
  ASSERT_TRUE(os::WriteAll(w->child.stdin_fd(), std::string("not a frame CGW"),
                           os::Deadline::After(std::chrono::seconds(5)))
                  .ok());
  worker::AlgorithmsRequest ask{5, "n1_c4_h8_w8_k4_r3_s3_p1_u1_d1_g1_f32_nchw_fwd"};
  StatusOr<std::string> frame = worker::EncodeFrame(worker::EncodeAlgorithmsRequest(ask));
  ASSERT_TRUE(frame.ok());
  for (char byte : *frame) {
    ASSERT_TRUE(os::WriteAll(w->child.stdin_fd(), std::string(1, byte),
                             os::Deadline::After(std::chrono::seconds(5)))
                    .ok());
  }
  StatusOr<worker::Message> names = w->Next();
  ASSERT_TRUE(names.ok()) << names.status().ToString();
  ASSERT_TRUE(names->algorithms_reply.has_value()) << names->type;
  EXPECT_EQ(names->algorithms_reply->id, 5);
  ASSERT_FALSE(names->algorithms_reply->names.empty());
  EXPECT_EQ(names->algorithms_reply->names.front(), "default");
  EXPECT_EQ(names->algorithms_reply->message, "");

  // A bad problem is a message, not a failure.
  ASSERT_TRUE(w->Send(worker::EncodeAlgorithmsRequest({6, "n1_c4_h8_w8_k3_r3_s3_p1_g2"})).ok());
  names = w->Next();
  ASSERT_TRUE(names.ok() && names->algorithms_reply.has_value());
  EXPECT_TRUE(names->algorithms_reply->names.empty());
  EXPECT_NE(names->algorithms_reply->message.find("divisible by groups"), std::string::npos);

  // A probe: phase run, phase check, result, in that order.
  worker::ProbeRequest probe;
  probe.id = 7;
  probe.problem = "n1_c4_h8_w8_k4_r3_s3_p1_u1_d1_g1_f32_nchw_fwd";
  probe.check = CheckMode::kFull;
  ASSERT_TRUE(w->Send(worker::EncodeProbeRequest(probe)).ok());
  std::vector<std::string> seen;
  for (;;) {
    StatusOr<worker::Message> m = w->Next();
    ASSERT_TRUE(m.ok()) << m.status().ToString();
    if (m->phase) {
      EXPECT_EQ(m->phase->id, 7);
      seen.push_back(std::string(worker::ProbeStageName(m->phase->phase)));
      continue;
    }
    ASSERT_TRUE(m->result.has_value()) << m->type;
    EXPECT_EQ(m->result->id, 7);
    EXPECT_EQ(m->result->outcome, worker::ProbeOutcome::kOk) << m->result->message;
    EXPECT_EQ(m->result->algorithm, "default");
    EXPECT_EQ(m->result->check, "full:256");
    EXPECT_EQ(m->result->times_ms.size(), 3u);
    EXPECT_NE(m->result->implementation.find("torch"), std::string::npos);
    break;
  }
  EXPECT_EQ(seen, (std::vector<std::string>{"run", "check"}));

  // Another protocol version is ignored; bye ends the worker with status 0.
  ASSERT_TRUE(w->Send(R"({"v":2,"type":"algorithms","id":8,"problem":"c1_h1_k1_r1"})").ok());
  ASSERT_TRUE(w->Send(worker::EncodeBye()).ok());
  StatusOr<worker::Message> after = w->Next(60.0);
  EXPECT_FALSE(after.ok());  // EOF: nothing was answered
  StatusOr<os::ExitInfo> exit = w->child.WaitExit(std::chrono::seconds(60));
  ASSERT_TRUE(exit.ok() && exit->exited()) << (exit.ok() ? exit->ToString() : "");
  EXPECT_EQ(exit->exit_code, 0);
}

// The CPU time (user + system) and the scheduler state of a live process, from
// /proc/<pid>/stat; nullopt when it cannot be read.
struct ProcStat {
  char state = '?';
  double cpu_s = 0.0;
};
std::optional<ProcStat> ReadProcStat(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const size_t paren = text.rfind(')');
  if (paren == std::string::npos) return std::nullopt;
  std::istringstream fields(text.substr(paren + 1));
  ProcStat st;
  std::string skip;
  fields >> st.state;
  for (int i = 4; i <= 13; ++i) fields >> skip;  // ppid .. cmajflt
  long long utime = 0, stime = 0;
  fields >> utime >> stime;
  if (!fields) return std::nullopt;
  st.cpu_s = static_cast<double>(utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
  return st;
}

// Starts the torch worker with `rules` (any stderr is drained into `err` as it is read).
struct FaultyWorker {
  Spawned w;
  std::string err;

  // Reads what the worker wrote to stderr within `seconds`.
  void DrainStderr(double seconds) {
    const os::Deadline deadline = os::Deadline::After(
        std::chrono::duration_cast<os::Duration>(std::chrono::duration<double>(seconds)));
    uint8_t buf[4096];
    for (;;) {
      StatusOr<os::IoResult> r = os::ReadSome(w.child.stderr_fd(), buf, deadline);
      if (!r.ok() || !r->data()) return;
      err.append(reinterpret_cast<const char*>(buf), r->bytes);
    }
  }

  // Sends a probe and collects its phases and its result (nullopt: no result, e.g. the
  // worker died or is stuck; `stop_after_run` returns right after the "run" phase).
  std::optional<worker::ProbeReply> Probe(int64_t id, const std::string& canonical,
                                          const std::string& algorithm,
                                          std::vector<std::string>& phases,
                                          bool stop_after_run = false) {
    worker::ProbeRequest probe;
    probe.id = id;
    probe.problem = canonical;
    probe.algorithm = algorithm;
    probe.check = CheckMode::kFull;
    EXPECT_TRUE(w.Send(worker::EncodeProbeRequest(probe)).ok());
    for (;;) {
      DrainStderr(0.0);
      StatusOr<worker::Message> m = w.Next(60.0);
      if (!m.ok()) return std::nullopt;
      if (m->phase) {
        EXPECT_EQ(m->phase->id, id);
        phases.push_back(std::string(worker::ProbeStageName(m->phase->phase)));
        if (stop_after_run && m->phase->phase == worker::ProbeStage::kRun) return std::nullopt;
        continue;
      }
      EXPECT_TRUE(m->result.has_value()) << m->type;
      if (!m->result) return std::nullopt;
      EXPECT_EQ(m->result->id, id);
      return *m->result;
    }
  }
};

StatusOr<FaultyWorker> StartFaultyWorker(const std::string& rules_path) {
  std::vector<std::string> argv = *TorchWorkerCommand("");
  for (const std::string& a :
       {std::string("--backend"), std::string("torch"), std::string("--inject"), rules_path}) {
    argv.push_back(a);
  }
  FaultyWorker f;
  // On the CPU whatever the machine has: the rules name the CPU's algorithm variants
  // (no-mkldnn) and the messages the CPU paths print. The GPU's spin (a real kernel) is
  // covered by TorchBackendEngine.InjectedFaultsGiveTheirVerdicts on a GPU machine.
  CG_ASSIGN_OR_RETURN(f.w,
                      SpawnWorker(argv, os::StderrMode::kPipe,
                                  {{"CUDA_VISIBLE_DEVICES", ""}, {"HIP_VISIBLE_DEVICES", ""}}));
  return f;
}

TEST(TorchWorkerFaults, EveryFaultHappensForRealAndReadsLikeACppWorkers) {
  REQUIRE_TORCH();
  const std::string dir = testing_support::MakeTempDir("torch-faults");
  const std::string rules = testing_support::WriteFile(dir + "/torch.rules", kTorchRules);
  StatusOr<inject::FaultRules> cpp = inject::ParseFaultRules(kTorchRules, rules);
  ASSERT_TRUE(cpp.ok()) << cpp.status().ToString();
  auto where = [&](int64_t k, const std::string& algorithm = "default") {
    const inject::FaultRule* rule = cpp->Match(Parse(SmallCanonical(k)), algorithm);
    return rule == nullptr ? std::string("?") : cpp->Where(*rule);
  };

  // Four workers started together (they import torch in parallel): one for the faults a
  // worker survives and then `spin`, one each for `block`, `abort` and `exit(42)`.
  std::vector<FaultyWorker> workers;
  for (int i = 0; i < 4; ++i) {
    StatusOr<FaultyWorker> f = StartFaultyWorker(rules);
    ASSERT_TRUE(f.ok()) << f.status().ToString();
    workers.push_back(std::move(*f));
  }
  for (FaultyWorker& f : workers) {
    StatusOr<worker::Message> hello = f.w.Next();
    ASSERT_TRUE(hello.ok()) << hello.status().ToString();
    ASSERT_TRUE(hello->hello.has_value()) << hello->type;
    // The stack is the plain torch stack with the rules applied as a C++ worker applies
    // them: the digest of the file's text, its emulation text and its knob.
    const StackFingerprint& fp = hello->hello->fingerprint;
    EXPECT_EQ(fp.backend, "torch");
    EXPECT_EQ(fp.fault_rules_digest, Fnv1a64Hex(kTorchRules));
    EXPECT_EQ(fp.emulation, cpp->emulation);
    EXPECT_EQ(fp.knobs.at("CONVGUARD_TEST_KNOB"), "on");
    StackFingerprint plain = fp;
    plain.emulation.clear();
    plain.fault_rules_digest.clear();
    plain.knobs.erase("CONVGUARD_TEST_KNOB");
    cpp->ApplyTo(plain);
    EXPECT_EQ(plain, fp);
  }
  FaultyWorker& a = workers[0];
  std::vector<std::string> phases;

  // unsupported: answered before anything runs (no phase), like Supports() in C++.
  std::optional<worker::ProbeReply> r = a.Probe(1, SmallCanonical(13), "", phases);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->outcome, worker::ProbeOutcome::kUnsupported);
  EXPECT_EQ(r->message, "injected: no kernel for this shape [injected by " + where(13) + "]");
  EXPECT_TRUE(phases.empty());

  // wrong(0.25): the real result, then its last quarter corrupted; the check sees it.
  phases.clear();
  r = a.Probe(2, SmallCanonical(9), "", phases);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->outcome, worker::ProbeOutcome::kWrong) << r->message;
  EXPECT_EQ(r->mismatches, 144);  // ceil(0.25 x 576): the last quarter of 9 x 8 x 8 outputs
  EXPECT_EQ(phases, (std::vector<std::string>{"run", "check"}));
  EXPECT_TRUE(r->implementation.ends_with(" [injected wrong(0.25) by " + where(9) + "]"))
      << r->implementation;

  // error and oom: in the run stage, with the C++ worker's messages.
  phases.clear();
  r = a.Probe(3, SmallCanonical(10), "", phases);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->outcome, worker::ProbeOutcome::kError);
  EXPECT_EQ(r->message, "injected backend failure [injected by " + where(10) + "]");
  EXPECT_EQ(phases, std::vector<std::string>{"run"});
  phases.clear();
  r = a.Probe(4, SmallCanonical(12), "", phases);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->outcome, worker::ProbeOutcome::kOom);
  EXPECT_EQ(r->message,
            "allocating 1152921504606846976 bytes failed [injected by " + where(12) + "]");

  // slow(40): every run 40 ms longer, for real, and the result still right.
  phases.clear();
  const auto slow_start = std::chrono::steady_clock::now();
  r = a.Probe(5, SmallCanonical(11), "", phases);
  const double slow_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - slow_start)
          .count();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->outcome, worker::ProbeOutcome::kOk) << r->message;
  EXPECT_GE(slow_ms, 40.0 * 4);  // warm-up + 3 timed runs
  for (double t : r->times_ms) EXPECT_GE(t, 40.0);
  EXPECT_TRUE(r->implementation.ends_with(" [injected slow(40) by " + where(11) + "]"))
      << r->implementation;

  // A rule on the algorithm: no-mkldnn is corrupted, default is not.
  phases.clear();
  r = a.Probe(6, SmallCanonical(15), "no-mkldnn", phases);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->outcome, worker::ProbeOutcome::kWrong) << r->message;
  r = a.Probe(7, SmallCanonical(15), "default", phases);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->outcome, worker::ProbeOutcome::kOk) << r->message;
  EXPECT_EQ(r->implementation.find("injected"), std::string::npos) << r->implementation;

  // spin and block: after "run" the worker never answers; spin burns a core, block sleeps.
  phases.clear();
  EXPECT_FALSE(a.Probe(8, SmallCanonical(3), "", phases, /*stop_after_run=*/true).has_value());
  std::vector<std::string> block_phases;
  FaultyWorker& b = workers[1];
  EXPECT_FALSE(
      b.Probe(1, SmallCanonical(5), "", block_phases, /*stop_after_run=*/true).has_value());
  EXPECT_EQ(phases, std::vector<std::string>{"run"});
  EXPECT_EQ(block_phases, std::vector<std::string>{"run"});
  a.DrainStderr(0.5);
  b.DrainStderr(0.0);
  std::optional<ProcStat> a0 = ReadProcStat(a.w.child.pid());
  std::optional<ProcStat> b0 = ReadProcStat(b.w.child.pid());
  ASSERT_TRUE(a0 && b0);
  // Until the spinning worker has used half a second of CPU (at once on an idle core;
  // longer on a loaded machine), the blocked one must use next to none.
  std::optional<ProcStat> a1, b1;
  const auto watch_start = std::chrono::steady_clock::now();
  do {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    a1 = ReadProcStat(a.w.child.pid());
    b1 = ReadProcStat(b.w.child.pid());
    ASSERT_TRUE(a1 && b1);
  } while (a1->cpu_s - a0->cpu_s < 0.5 &&
           std::chrono::steady_clock::now() - watch_start < std::chrono::seconds(30));
  EXPECT_GE(a1->cpu_s - a0->cpu_s, 0.5) << "spin should burn a core";
  EXPECT_EQ(a1->state, 'R');
  EXPECT_LT(b1->cpu_s - b0->cpu_s, 0.1) << "block should sleep";
  EXPECT_EQ(b1->state, 'S');
  a.DrainStderr(0.2);
  b.DrainStderr(0.2);
  EXPECT_NE(
      a.err.find("convguard: injected fault 'spin' by rule " + where(3) + ": spin when k == 3"),
      std::string::npos)
      << a.err;
  EXPECT_NE(b.err.find("convguard: injected fault 'block' by rule " + where(5)), std::string::npos)
      << b.err;
  for (FaultyWorker* f : {&a, &b}) {
    StatusOr<os::ExitInfo> killed = f->w.child.KillAndReap(std::chrono::seconds(5));
    ASSERT_TRUE(killed.ok() && killed->signaled()) << (killed.ok() ? killed->ToString() : "");
    EXPECT_EQ(killed->signal, SIGKILL);
  }

  // abort and exit(42): the process ends as the rule says, after its stderr line.
  struct Fatal {
    FaultyWorker* f;
    int64_t k;
    std::string kind;
  };
  for (const Fatal& c : {Fatal{&workers[2], 7, "abort"}, Fatal{&workers[3], 14, "exit"}}) {
    SCOPED_TRACE(c.kind);
    std::vector<std::string> fatal_phases;
    EXPECT_FALSE(c.f->Probe(1, SmallCanonical(c.k), "", fatal_phases).has_value());
    EXPECT_EQ(fatal_phases, std::vector<std::string>{"run"});
    c.f->err += ReadAll(c.f->w.child.stderr_fd());
    StatusOr<os::ExitInfo> exit = c.f->w.child.WaitExit(std::chrono::seconds(30));
    ASSERT_TRUE(exit.ok()) << exit.status().ToString();
    if (c.kind == "abort") {
      ASSERT_TRUE(exit->signaled()) << exit->ToString();
      EXPECT_EQ(exit->signal, SIGABRT);
    } else {
      ASSERT_TRUE(exit->exited()) << exit->ToString();
      EXPECT_EQ(exit->exit_code, 42);
    }
    EXPECT_NE(c.f->err.find("convguard: injected fault '" + c.kind + "' by rule " + where(c.k)),
              std::string::npos)
        << c.f->err;
  }
}

// Sends `probe` and waits for its result, skipping phase messages (nullopt: the worker
// died, is stuck, or said something else).
std::optional<worker::ProbeReply> ProbeAndWait(Spawned& w, const worker::ProbeRequest& probe) {
  if (!w.Send(worker::EncodeProbeRequest(probe)).ok()) return std::nullopt;
  for (;;) {
    StatusOr<worker::Message> m = w.Next(60.0);
    if (!m.ok()) return std::nullopt;
    if (m->phase) continue;
    if (!m->result || m->result->id != probe.id) return std::nullopt;
    return *m->result;
  }
}

// Sequence faults: the PyTorch worker keeps the call history a C++ worker's
// InjectingBackend keeps. The same probes to both, under the same rules, give the same
// outcomes and messages: a call counts when its run stage begins (a failed one too); an
// injected `unsupported` (answered before the run stage, for the call that would come
// next) and a health check (run without the rules) do not count.
TEST(TorchWorkerFaults, SequenceFaultsCountCallsLikeACppWorker) {
  REQUIRE_TORCH();
  const std::string dir = testing_support::MakeTempDir("torch-sequence");
  const std::string rules = testing_support::WriteFile(
      dir + "/sequence.rules",
      "error(\"late\") when calls >= 4\n"
      "unsupported(\"not the second\") when calls == 2 && k == 5\n"
      "error(\"after k3\") when prev.k == 3 && k == 4 && prev.algo == algo\n");
  struct Step {
    int64_t k;
    bool health;
    worker::ProbeOutcome outcome;
    std::string message;  // "" for ok
  };
  const std::string by = " [injected by " + rules + ":";
  const std::vector<Step> steps = {
      {1, false, worker::ProbeOutcome::kOk, ""},                                     // call 1
      {5, false, worker::ProbeOutcome::kUnsupported, "not the second" + by + "2]"},  // not a call
      {1, true, worker::ProbeOutcome::kOk, ""},   // a health check: not a call
      {3, false, worker::ProbeOutcome::kOk, ""},  // call 2
      {4, false, worker::ProbeOutcome::kError, "after k3" + by + "3]"},  // call 3
      {4, false, worker::ProbeOutcome::kError, "late" + by + "1]"},      // call 4
      {1, false, worker::ProbeOutcome::kError, "late" + by + "1]"},      // call 5
  };

  std::vector<std::string> torch_argv = *TorchWorkerCommand("");
  for (const std::string& a :
       {std::string("--backend"), std::string("torch"), std::string("--inject"), rules}) {
    torch_argv.push_back(a);
  }
  const std::vector<std::string> cpp_argv = {
      testing_support::ConvguardBin(), "worker", "--backend", "reference", "--inject", rules};
  for (const std::vector<std::string>& argv : {torch_argv, cpp_argv}) {
    SCOPED_TRACE(argv[0]);
    StatusOr<Spawned> w = SpawnWorker(argv, os::StderrMode::kDevNull,
                                      {{"CUDA_VISIBLE_DEVICES", ""}, {"HIP_VISIBLE_DEVICES", ""}});
    ASSERT_TRUE(w.ok()) << w.status().ToString();
    StatusOr<worker::Message> hello = w->Next();
    ASSERT_TRUE(hello.ok()) << hello.status().ToString();
    ASSERT_TRUE(hello->hello.has_value()) << hello->type;
    int64_t id = 0;
    for (const Step& step : steps) {
      SCOPED_TRACE("probe " + std::to_string(id + 1) + ": k" + std::to_string(step.k) +
                   (step.health ? " (health)" : ""));
      worker::ProbeRequest probe;
      probe.id = ++id;
      probe.problem = SmallCanonical(step.k);
      probe.check = CheckMode::kFull;
      probe.health = step.health;
      std::optional<worker::ProbeReply> r = ProbeAndWait(*w, probe);
      ASSERT_TRUE(r.has_value());
      EXPECT_EQ(r->outcome, step.outcome) << r->message;
      if (!step.message.empty()) {
        EXPECT_EQ(r->message, step.message);
      }
    }
    ASSERT_TRUE(w->Send(worker::EncodeBye()).ok());
    StatusOr<os::ExitInfo> exit = w->child.WaitExit(std::chrono::seconds(60));
    ASSERT_TRUE(exit.ok() && exit->exited()) << (exit.ok() ? exit->ToString() : "");
    EXPECT_EQ(exit->exit_code, 0);
  }
}

// ---- the real probe engine ----------------------------------------------------------

ProbeOptions TorchOptions() {
  ProbeOptions o;
  o.backend = "torch";
  o.worker_executable = testing_support::ConvguardBin();
  o.workers_per_device = 2;
  o.warmup = 1;
  o.repeats = 2;
  return o;
}

// Every verdict is OK, except f16 on the CPU, which PyTorch may not implement: then it
// must be UNSUPPORTED with PyTorch's reason.
void ExpectOkVerdicts(const StackFingerprint& stack, const std::vector<Verdict>& verdicts) {
  const bool cpu = stack.device.rfind("CPU", 0) == 0;
  for (const Verdict& v : verdicts) {
    SCOPED_TRACE(v.problem + " " + v.algorithm);
    const Problem p = Parse(v.problem);
    if (cpu && p.dtype == DataType::kF16 && v.kind == VerdictKind::kUnsupported) {
      EXPECT_FALSE(v.message.empty());
      continue;
    }
    EXPECT_EQ(v.kind, VerdictKind::kOk) << VerdictName(v.kind) << ": " << v.message;
    EXPECT_NE(v.implementation.find("torch"), std::string::npos) << v.implementation;
    EXPECT_GT(v.time_ms_median, 0.0);
    EXPECT_FALSE(v.check.empty());
  }
}

TEST(TorchBackendEngine, SeedProblemsAreOkUnderEveryAlgorithm) {
  REQUIRE_TORCH();
  StatusOr<std::vector<ListedProblem>> seed =
      ReadProblemList(SourceDir() + "/tests/inputs/seed.list");
  ASSERT_TRUE(seed.ok()) << seed.status().ToString();
  std::vector<ProbeJob> jobs;
  for (const ListedProblem& lp : *seed) jobs.push_back({lp.problem, "*"});

  auto engine = ProbeEngine::Start(TorchOptions(), nullptr);
  ASSERT_TRUE(engine.ok()) << engine.status().ToString();
  const StackFingerprint& stack = (*engine)->stack();
  EXPECT_EQ(stack.backend, "torch");
  EXPECT_NE(stack.library.find("PyTorch"), std::string::npos) << stack.library;
  EXPECT_FALSE(stack.is_emulated());

  auto result = (*engine)->Run(jobs);
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  // "*" expands to every algorithm the worker offers (at least default and one more).
  EXPECT_GE(result->verdicts.size(), 2 * jobs.size());
  std::map<std::string, int> algorithms;
  for (const Verdict& v : result->verdicts) algorithms[v.algorithm]++;
  EXPECT_TRUE(algorithms.contains("default"));
  EXPECT_TRUE(algorithms.contains("deterministic"));
  ExpectOkVerdicts(stack, result->verdicts);
}

TEST(TorchBackendEngine, GroupsDilationPadsLayoutsDirectionsAndBiasAreOk) {
  REQUIRE_TORCH();
  std::vector<ProbeJob> jobs;
  for (const char* shape : {
           "n2_c6_h11_w9_k4_r3_s2_p1x0x2x1_u2x1_d1x2_g2",  // asymmetric pads, stride, dilation,
                                                           // groups
           "n1_c4_h10_w12_k6_r3_s3_p0x2x1x0_d2",           // asymmetric pads, dilation
           "n3_c8_h7_w7_k8_r1_s1_p0_g8",                   // depthwise 1x1
           "n2_c3_h17_w15_k5_r5_s3_p2x1_u3x2",             // non-square everything
           "n1_c8_h9_w9_k12_r3_s3_p1_bias",                // bias (forward only adds it)
       }) {
    for (const char* layout : {"nchw", "nhwc"}) {
      for (const char* direction : {"fwd", "bwd-data", "bwd-weights"}) {
        for (const char* dtype : {"f32", "bf16", "f16"}) {
          const std::string text =
              std::string(shape) + "_" + dtype + "_" + layout + "_" + direction;
          jobs.push_back({Parse(text), "*"});
        }
      }
    }
  }
  ProbeOptions options = TorchOptions();
  options.check = CheckMode::kFull;
  // The question here is whether every result is right, not how long it takes (deadlines
  // have tests of their own). On a GPU shared with other tests, cudnn.benchmark's first
  // autotuning of a shape has taken over 2 s, past the run-stage deadline (a SLOW verdict
  // with a right result); a long floor keeps timing out of this test's answer.
  options.deadlines.floor_ms = 30000.0;
  auto engine = ProbeEngine::Start(options, nullptr);
  ASSERT_TRUE(engine.ok()) << engine.status().ToString();
  auto result = (*engine)->Run(jobs);
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_GE(result->verdicts.size(), 2 * jobs.size());
  ExpectOkVerdicts((*engine)->stack(), result->verdicts);
  for (const Verdict& v : result->verdicts) {
    if (v.kind == VerdictKind::kOk) {
      EXPECT_EQ(v.check.rfind("full:", 0), 0u) << v.check;
    }
  }
}

// The engine decides injected faults of the torch worker as it does a C++ worker's:
// HANG for spin (confirmed in place: it is the worker's first probe; with a short
// confirmation to keep the test fast),
// CRASH with SIGSEGV, WRONG (with the same errors as the reference backend under the same
// rules), UNSUPPORTED, ERROR and OOM; the rules' digest is in the stack.
TEST(TorchBackendEngine, InjectedFaultsGiveTheirVerdicts) {
  REQUIRE_TORCH();
  const std::string dir = testing_support::MakeTempDir("torch-engine-faults");
  const std::string rules = testing_support::WriteFile(dir + "/torch.rules", kTorchRules);
  ProbeOptions options = TorchOptions();
  options.fault_rules_path = rules;
  options.deadlines.confirm_floor_ms = 700;
  std::vector<ProbeJob> jobs;
  for (int64_t k : {3, 6, 9, 10, 12, 13, 16}) jobs.push_back({Parse(SmallCanonical(k)), ""});

  const auto start = std::chrono::steady_clock::now();
  auto engine = ProbeEngine::Start(options, nullptr);
  ASSERT_TRUE(engine.ok()) << engine.status().ToString();
  const StackFingerprint& stack = (*engine)->stack();
  EXPECT_EQ(stack.backend, "torch");
  EXPECT_EQ(stack.fault_rules_digest, Fnv1a64Hex(kTorchRules));
  EXPECT_TRUE(stack.is_emulated());
  auto result = (*engine)->Run(jobs);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  ASSERT_EQ(result->verdicts.size(), jobs.size());
  std::map<int64_t, Verdict> by_k;
  for (const Verdict& v : result->verdicts) by_k[Parse(v.problem).k] = v;

  EXPECT_EQ(by_k[3].kind, VerdictKind::kHang) << by_k[3].message;
  // The hang is its worker's first probe, so it is confirmed in place (1 attempt), except
  // on a GPU while the other worker, on the same device, is still running a probe: a
  // confirmation is judged alone there, so it runs in a fresh worker (2 attempts). Which
  // of the two happens on a GPU depends on timing; the message must say the one it was.
  if ((*engine)->stacks().front().device < 0) EXPECT_EQ(by_k[3].attempts, 1);
  if (by_k[3].attempts == 1) {
    EXPECT_NE(by_k[3].message.find("confirmed in place"), std::string::npos) << by_k[3].message;
  } else {
    EXPECT_EQ(by_k[3].attempts, 2);
    EXPECT_NE(by_k[3].message.find("the confirmation in a fresh worker"), std::string::npos)
        << by_k[3].message;
  }
  // The evidence is the worker's last stderr line: the rule that fired on the CPU, the
  // spinning kernel it launched on a GPU.
  EXPECT_TRUE(by_k[3].message.find("injected fault 'spin'") != std::string::npos ||
              by_k[3].message.find("spin kernel launched") != std::string::npos)
      << by_k[3].message;
  EXPECT_EQ(by_k[6].kind, VerdictKind::kCrash) << by_k[6].message;
  EXPECT_EQ(by_k[6].crash_signal, SIGSEGV) << by_k[6].message;
  EXPECT_EQ(by_k[9].kind, VerdictKind::kWrong) << by_k[9].message;
  EXPECT_GT(by_k[9].mismatches, 0);
  EXPECT_NE(by_k[9].implementation.find("[injected wrong(0.25) by " + rules + ":"),
            std::string::npos)
      << by_k[9].implementation;
  EXPECT_EQ(by_k[10].kind, VerdictKind::kError) << by_k[10].message;
  EXPECT_EQ(by_k[12].kind, VerdictKind::kOom) << by_k[12].message;
  EXPECT_EQ(by_k[13].kind, VerdictKind::kUnsupported) << by_k[13].message;
  EXPECT_NE(by_k[13].message.find("no kernel for this shape [injected by " + rules + ":"),
            std::string::npos);
  EXPECT_EQ(by_k[16].kind, VerdictKind::kOk) << by_k[16].message;
  for (const Verdict& v : result->verdicts) {
    EXPECT_EQ(v.stack_id, stack.Id());
    EXPECT_NE(v.repro.find("--inject " + rules), std::string::npos) << v.repro;
  }
  // Python and torch start three times (the first worker, the hang's confirmation, the
  // replacement after the crash); the decisions themselves take about a second.
  EXPECT_LT(seconds, 90.0);

  // The same rules over the C++ reference worker corrupt the same elements by the same
  // amounts: the checks agree to the last digit.
  ProbeOptions reference = options;
  reference.backend = "reference";
  auto ref_engine = ProbeEngine::Start(reference, nullptr);
  ASSERT_TRUE(ref_engine.ok()) << ref_engine.status().ToString();
  EXPECT_EQ((*ref_engine)->stack().fault_rules_digest, stack.fault_rules_digest);
  auto ref = (*ref_engine)->Run({{Parse(SmallCanonical(9)), ""}});
  ASSERT_TRUE(ref.ok()) << ref.status().ToString();
  ASSERT_EQ(ref->verdicts.size(), 1u);
  EXPECT_EQ(ref->verdicts[0].kind, VerdictKind::kWrong);
  EXPECT_EQ(ref->verdicts[0].mismatches, by_k[9].mismatches);
  EXPECT_EQ(ref->verdicts[0].max_abs_error, by_k[9].max_abs_error);
  EXPECT_EQ(ref->verdicts[0].check, by_k[9].check);
}

// The torch worker reads CONVGUARD_DEVICE_INDEX as `convguard worker` does: a rule's
// `device`, and a digest of its own for that device. Holds on any GPU count: on a host
// without GPUs the worker inherits the index set here (the CPU gets no per-device pools);
// with GPUs the engine pins one pool per card and tells each worker its own index, so
// every card's stack, digest and verdicts are checked against the index it was given.
TEST(TorchBackendEngine, DeviceIndexReachesTheRules) {
  REQUIRE_TORCH();
  const std::string dir = testing_support::MakeTempDir("torch-engine-device");
  const std::string text =
      "error(\"first card\") when device == 0 && k == 5\n"
      "error(\"second card\") when device == 1 && k == 5\n";
  const std::string rules = testing_support::WriteFile(dir + "/device.rules", text);
  ProbeOptions options = TorchOptions();
  options.fault_rules_path = rules;
  options.workers_per_device = 1;
  constexpr int kInheritedIndex = 1;
  const char* saved = std::getenv("CONVGUARD_DEVICE_INDEX");
  const std::optional<std::string> restore =
      saved ? std::optional<std::string>(saved) : std::nullopt;
  ::setenv("CONVGUARD_DEVICE_INDEX", std::to_string(kInheritedIndex).c_str(), 1);
  auto engine = ProbeEngine::Start(options, nullptr);
  if (restore)
    ::setenv("CONVGUARD_DEVICE_INDEX", restore->c_str(), 1);
  else
    ::unsetenv("CONVGUARD_DEVICE_INDEX");
  ASSERT_TRUE(engine.ok()) << engine.status().ToString();

  // The index each stack's workers were given: their card's, or the inherited one.
  std::map<std::string, int> index_of_stack;
  for (const DeviceStack& d : (*engine)->stacks()) {
    const int index = d.device >= 0 ? d.device : kInheritedIndex;
    EXPECT_EQ(d.stack.fault_rules_digest,
              Fnv1a64Hex(Fnv1a64Hex(text) + "@device " + std::to_string(index)))
        << "device " << d.device;
    index_of_stack[d.stack.Id()] = index;
  }
  ASSERT_FALSE(index_of_stack.empty());

  auto result = (*engine)->Run({{Parse(SmallCanonical(5)), ""}, {Parse(SmallCanonical(6)), ""}});
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  // Every stack probes both jobs (each card's digest makes it a stack of its own).
  ASSERT_EQ(result->verdicts.size(), 2 * index_of_stack.size());
  for (const Verdict& v : result->verdicts) {
    ASSERT_EQ(index_of_stack.count(v.stack_id), 1u) << v.stack_id;
    const int index = index_of_stack[v.stack_id];
    if (Parse(v.problem).k == 5 && index <= 1) {
      EXPECT_EQ(v.kind, VerdictKind::kError) << v.message;
      const std::string said = index == 0 ? "first card" : "second card";
      EXPECT_NE(
          v.message.find(said + " [injected by " + rules + ":" + std::to_string(index + 1) + "]"),
          std::string::npos)
          << v.message;
    } else {
      EXPECT_EQ(v.kind, VerdictKind::kOk) << v.message;
    }
  }
}

// `convguard probe --backend torch --inject FILE` is accepted and its exit status is the
// verdict's.
TEST(TorchBackendEngine, ProbeCommandAcceptsInject) {
  REQUIRE_TORCH();
  const std::string dir = testing_support::MakeTempDir("torch-cli-faults");
  const std::string rules = testing_support::WriteFile(dir + "/torch.rules", kTorchRules);
  testing_support::CliResult r =
      testing_support::RunConvguard({"probe", SmallCanonical(13), "--backend", "torch", "--inject",
                                     rules, "--no-store", "--workers", "1"},
                                    180.0);
  EXPECT_TRUE(r.exited) << r.err;
  EXPECT_EQ(r.exit_code, 16) << r.out << r.err;  // UNSUPPORTED
  EXPECT_NE(r.out.find("UNSUPPORTED"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("[injected by " + rules + ":"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace convguard
