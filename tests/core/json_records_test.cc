// JSON records of StackFingerprint and Verdict, StackFingerprint::Id()/Summary(), and the
// verdict names (src/core/json_records.cc, src/core/fingerprint.cc, src/core/verdict.cc).
#include "core/json_records.h"

#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "convguard/backend.h"
#include "convguard/verdict.h"

namespace convguard {
namespace {

using nlohmann::json;

StackFingerprint SampleStack() {
  StackFingerprint s;
  s.backend = "torch";
  s.device = "AMD Radeon RX 5700 XT";
  s.architecture = "gfx1010";
  s.compute_units = 40;
  s.driver = "6.2.4";
  s.runtime = "HIP 5.7.31921";
  s.library = "MIOpen 2.20.0";
  s.knobs = {{"MIOPEN_DEBUG_CONV_GEMM", "0"}, {"MIOPEN_FIND_MODE", "NORMAL"}};
  s.emulation = "";
  s.fault_rules_digest = "";
  s.tool_version = "0.1.0";
  return s;
}

// Every field set to something other than its default.
Verdict FullVerdict() {
  Verdict v;
  v.kind = VerdictKind::kWrong;
  v.stack_id = SampleStack().Id();
  v.problem = "n1_c16_h64_w64_k32_r3_s3_p1_u1_d1_g1_f32_nchw_fwd";
  v.algorithm = "miopenConvolutionFwdAlgoWinograd";
  v.time_ms_min = 0.125;
  v.time_ms_median = 0.1875;
  v.crash_signal = 11;
  v.exit_code = 3;
  v.message = "y[0,5,63,0]: got 17, want 18 \"quoted\"\nsecond line";
  v.check = "sampled:512";
  v.tolerance = 1.25e-5;
  v.max_abs_error = 1.0;
  v.max_rel_error = 0.0555555555555555525;
  v.mismatches = int64_t{1} << 40;
  v.non_finite = 7;
  v.implementation = "ConvBinWinogradRxSf2x3g1";
  v.attempts = 2;
  v.deadline_ms = 1500.5;
  v.elapsed_ms = 12.25;
  v.tool_version = "0.1.0";
  v.recorded_at = "2026-11-25T15:10:57Z";
  v.repro = "convguard probe --backend torch n1_c16_h64_w64_k32_r3_s3_p1_u1_d1_g1_f32_nchw_fwd";
  v.emulated = true;
  return v;
}

void ExpectSameDouble(double a, double b, const char* field) {
  if (std::isnan(a) || std::isnan(b)) {
    EXPECT_TRUE(std::isnan(a) && std::isnan(b)) << field << ": " << a << " vs " << b;
  } else {
    EXPECT_EQ(a, b) << field;
  }
}

void ExpectSameVerdict(const Verdict& a, const Verdict& b) {
  EXPECT_EQ(a.kind, b.kind);
  EXPECT_EQ(a.stack_id, b.stack_id);
  EXPECT_EQ(a.problem, b.problem);
  EXPECT_EQ(a.algorithm, b.algorithm);
  ExpectSameDouble(a.time_ms_min, b.time_ms_min, "time_ms_min");
  ExpectSameDouble(a.time_ms_median, b.time_ms_median, "time_ms_median");
  EXPECT_EQ(a.crash_signal, b.crash_signal);
  EXPECT_EQ(a.exit_code, b.exit_code);
  EXPECT_EQ(a.message, b.message);
  EXPECT_EQ(a.check, b.check);
  ExpectSameDouble(a.tolerance, b.tolerance, "tolerance");
  ExpectSameDouble(a.max_abs_error, b.max_abs_error, "max_abs_error");
  ExpectSameDouble(a.max_rel_error, b.max_rel_error, "max_rel_error");
  EXPECT_EQ(a.mismatches, b.mismatches);
  EXPECT_EQ(a.non_finite, b.non_finite);
  EXPECT_EQ(a.implementation, b.implementation);
  EXPECT_EQ(a.attempts, b.attempts);
  ExpectSameDouble(a.deadline_ms, b.deadline_ms, "deadline_ms");
  ExpectSameDouble(a.elapsed_ms, b.elapsed_ms, "elapsed_ms");
  EXPECT_EQ(a.tool_version, b.tool_version);
  EXPECT_EQ(a.recorded_at, b.recorded_at);
  EXPECT_EQ(a.repro, b.repro);
  EXPECT_EQ(a.emulated, b.emulated);
}

// ---- verdict names ----

TEST(VerdictNameTest, EveryNameRoundTrips) {
  const std::vector<std::pair<VerdictKind, std::string>> table = {
      {VerdictKind::kOk, "OK"},       {VerdictKind::kSlow, "SLOW"},
      {VerdictKind::kHang, "HANG"},   {VerdictKind::kCrash, "CRASH"},
      {VerdictKind::kWrong, "WRONG"}, {VerdictKind::kMistrusted, "MISTRUSTED"},
      {VerdictKind::kError, "ERROR"}, {VerdictKind::kUnsupported, "UNSUPPORTED"},
      {VerdictKind::kOom, "OOM"},
  };
  for (const auto& [kind, name] : table) {
    EXPECT_EQ(VerdictName(kind), name);
    StatusOr<VerdictKind> parsed = ParseVerdictName(name);
    ASSERT_TRUE(parsed.ok()) << name;
    EXPECT_EQ(*parsed, kind);
  }
}

TEST(VerdictNameTest, ParsingIgnoresCase) {
  EXPECT_EQ(*ParseVerdictName("hang"), VerdictKind::kHang);
  EXPECT_EQ(*ParseVerdictName("Unsupported"), VerdictKind::kUnsupported);
}

TEST(VerdictNameTest, UnknownNameListsTheAllowedOnes) {
  StatusOr<VerdictKind> parsed = ParseVerdictName("HUNG");
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(parsed.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(parsed.status().message(),
            "unknown verdict 'HUNG'; allowed: OK, SLOW, HANG, CRASH, WRONG, MISTRUSTED, ERROR, "
            "UNSUPPORTED, OOM");
  EXPECT_FALSE(ParseVerdictName("").ok());
  EXPECT_FALSE(ParseVerdictName("OK ").ok());
}

// ---- StackFingerprint::Id() ----

TEST(FingerprintTest, IdIsPinned) {
  // Computed once from this implementation. Id() keys every stored verdict: if this test
  // fails, every existing store has lost its verdicts. Do not update the value; fix Id().
  EXPECT_EQ(SampleStack().Id(), "61f195d1702df991");
  EXPECT_EQ(StackFingerprint{}.Id(), "725d24521b0a0362");
}

TEST(FingerprintTest, IdIsSixteenLowerCaseHexDigits) {
  const std::string id = SampleStack().Id();
  ASSERT_EQ(id.size(), 16u);
  for (char c : id) EXPECT_TRUE((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')) << id;
}

TEST(FingerprintTest, ToolVersionIsNotPartOfTheId) {
  StackFingerprint a = SampleStack();
  StackFingerprint b = a;
  b.tool_version = "9.9.9";
  EXPECT_EQ(a.Id(), b.Id());
}

TEST(FingerprintTest, EveryOtherFieldChangesTheId) {
  struct Case {
    const char* name;
    std::function<void(StackFingerprint&)> change;
  };
  const std::vector<Case> cases = {
      {"backend", [](StackFingerprint& s) { s.backend = "cudnn"; }},
      {"device", [](StackFingerprint& s) { s.device += " "; }},
      {"architecture", [](StackFingerprint& s) { s.architecture = "gfx1030"; }},
      {"compute_units", [](StackFingerprint& s) { s.compute_units = 36; }},
      {"driver", [](StackFingerprint& s) { s.driver = "6.2.5"; }},
      {"runtime", [](StackFingerprint& s) { s.runtime = ""; }},
      {"library", [](StackFingerprint& s) { s.library = "MIOpen 2.20.1"; }},
      {"knob added", [](StackFingerprint& s) { s.knobs["MIOPEN_DEBUG_CONV_FFT"] = "0"; }},
      {"knob removed", [](StackFingerprint& s) { s.knobs.erase("MIOPEN_FIND_MODE"); }},
      {"knob value", [](StackFingerprint& s) { s.knobs["MIOPEN_FIND_MODE"] = "FAST"; }},
      {"knob empty value", [](StackFingerprint& s) { s.knobs["MIOPEN_FIND_MODE"] = ""; }},
      {"emulation", [](StackFingerprint& s) { s.emulation = "RDNA1 via fault rules"; }},
      {"fault_rules_digest", [](StackFingerprint& s) { s.fault_rules_digest = "abc"; }},
  };
  const std::string base = SampleStack().Id();
  for (const Case& c : cases) {
    StackFingerprint s = SampleStack();
    c.change(s);
    EXPECT_NE(s.Id(), base) << c.name;
  }
}

TEST(FingerprintTest, FieldBoundariesAreUnambiguous) {
  StackFingerprint a, b;
  a.device = "ab";
  a.architecture = "c";
  b.device = "a";
  b.architecture = "bc";
  EXPECT_NE(a.Id(), b.Id());

  StackFingerprint c, d;
  c.knobs = {{"A", "B=C"}};
  d.knobs = {{"A=B", "C"}};
  EXPECT_NE(c.Id(), d.Id());

  StackFingerprint e, f;  // a knob that looks like the next field
  e.knobs = {{"emulation", "x"}};
  f.emulation = "x";
  EXPECT_NE(e.Id(), f.Id());
}

// ---- Summary() ----

TEST(FingerprintTest, SummaryIsOneLineNamingTheStack) {
  StackFingerprint s = SampleStack();
  EXPECT_EQ(s.Summary(),
            "torch on AMD Radeon RX 5700 XT (gfx1010, 40 CUs) MIOpen 2.20.0, driver 6.2.4, "
            "runtime HIP 5.7.31921 knobs MIOPEN_DEBUG_CONV_GEMM=0 MIOPEN_FIND_MODE=NORMAL");

  StackFingerprint cpu;
  cpu.backend = "reference";
  cpu.device = "CPU Intel(R) Xeon(R)";
  cpu.architecture = "x86_64";
  cpu.compute_units = 2;
  cpu.emulation = "RDNA1 hangs\nvia fault rules";
  cpu.fault_rules_digest = "1f2e";
  EXPECT_EQ(cpu.Summary(),
            "reference on CPU Intel(R) Xeon(R) (x86_64, 2 cores) [FAULTS INJECTED: 1f2e] "
            "[EMULATION: RDNA1 hangs via fault rules]");

  StackFingerprint gpu;
  gpu.backend = "cudnn";
  gpu.device = "NVIDIA H100";
  gpu.architecture = "sm_90";
  gpu.compute_units = 132;
  EXPECT_EQ(gpu.Summary(), "cudnn on NVIDIA H100 (sm_90, 132 SMs)");
}

// ---- JSON: stacks ----

TEST(JsonRecordsTest, StackRoundTripsEveryField) {
  StackFingerprint s = SampleStack();
  s.emulation = "RDNA1";
  s.fault_rules_digest = "d1g3st";
  s.compute_units = int64_t{1} << 40;
  json j = ToJson(s);
  EXPECT_EQ(j["backend"], "torch");
  EXPECT_EQ(j["knobs"]["MIOPEN_FIND_MODE"], "NORMAL");
  EXPECT_EQ(j["compute_units"], int64_t{1} << 40);
  EXPECT_EQ(j.size(), 11u);
  StatusOr<StackFingerprint> back = StackFromJson(j);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, s);
  // Through text as well.
  StatusOr<json> reparsed = ParseJson(DumpJson(j));
  ASSERT_TRUE(reparsed.ok());
  EXPECT_EQ(*StackFromJson(*reparsed), s);
}

TEST(JsonRecordsTest, StackAbsentFieldsKeepDefaults) {
  StatusOr<StackFingerprint> s = StackFromJson(json{{"backend", "reference"}});
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  StackFingerprint want;
  want.backend = "reference";
  EXPECT_EQ(*s, want);
}

TEST(JsonRecordsTest, StackErrorsNameTheField) {
  struct Case {
    const char* name;
    json input;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"not an object", json::array({1}), "stack fingerprint: expected a JSON object, got array"},
      {"no backend", json{{"device", "x"}}, "stack fingerprint: field 'backend': is required"},
      {"empty backend", json{{"backend", ""}},
       "stack fingerprint: field 'backend': must not be empty"},
      {"wrong type", json{{"backend", "x"}, {"compute_units", "40"}},
       "stack fingerprint: field 'compute_units': expected an integer, got string"},
      {"float count", json{{"backend", "x"}, {"compute_units", 4.5}},
       "stack fingerprint: field 'compute_units': expected an integer, got number"},
      {"knob not a string", json{{"backend", "x"}, {"knobs", {{"A", 1}}}},
       "stack fingerprint: field 'knobs': value of 'A': expected a string, got integer"},
      {"unknown field", json{{"backend", "x"}, {"devise", "typo"}},
       "stack fingerprint: unknown field 'devise'"},
      {"too big", json{{"backend", "x"}, {"compute_units", uint64_t{1} << 63}},
       "stack fingerprint: field 'compute_units': 9223372036854775808 does not fit a 64-bit "
       "signed integer"},
  };
  for (const Case& c : cases) {
    StatusOr<StackFingerprint> s = StackFromJson(c.input);
    ASSERT_FALSE(s.ok()) << c.name;
    EXPECT_EQ(s.status().code(), StatusCode::kInvalidArgument) << c.name;
    EXPECT_EQ(s.status().message(), c.message) << c.name;
  }
}

// ---- JSON: verdicts ----

TEST(JsonRecordsTest, VerdictRoundTripsEveryField) {
  const Verdict v = FullVerdict();
  json j = ToJson(v);
  EXPECT_EQ(j["kind"], "WRONG");
  EXPECT_EQ(j["check"], "sampled:512");
  EXPECT_EQ(j.size(), 23u);  // one key per Verdict field
  EXPECT_EQ(j["tolerance"], 1.25e-5);
  StatusOr<Verdict> back = VerdictFromJson(j);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  ExpectSameVerdict(*back, v);

  StatusOr<json> reparsed = ParseJson(DumpJson(j));
  ASSERT_TRUE(reparsed.ok());
  StatusOr<Verdict> back2 = VerdictFromJson(*reparsed);
  ASSERT_TRUE(back2.ok());
  ExpectSameVerdict(*back2, v);
  EXPECT_EQ(DumpJson(ToJson(*back2)), DumpJson(j));
}

TEST(JsonRecordsTest, VerdictEveryKindRoundTrips) {
  for (VerdictKind kind : {VerdictKind::kOk, VerdictKind::kSlow, VerdictKind::kHang,
                           VerdictKind::kCrash, VerdictKind::kWrong, VerdictKind::kMistrusted,
                           VerdictKind::kError, VerdictKind::kUnsupported, VerdictKind::kOom}) {
    Verdict v = FullVerdict();
    v.kind = kind;
    StatusOr<Verdict> back = VerdictFromJson(ToJson(v));
    ASSERT_TRUE(back.ok());
    EXPECT_EQ(back->kind, kind);
  }
}

TEST(JsonRecordsTest, NonFiniteDoublesRoundTripAsStrings) {
  Verdict v = FullVerdict();
  v.max_rel_error = std::numeric_limits<double>::infinity();
  v.max_abs_error = -std::numeric_limits<double>::infinity();
  v.time_ms_min = std::numeric_limits<double>::quiet_NaN();
  json j = ToJson(v);
  EXPECT_EQ(j["max_rel_error"], "inf");
  EXPECT_EQ(j["max_abs_error"], "-inf");
  EXPECT_EQ(j["time_ms_min"], "nan");
  StatusOr<Verdict> back = VerdictFromJson(*ParseJson(DumpJson(j)));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  ExpectSameVerdict(*back, v);
}

TEST(JsonRecordsTest, VerdictMinimalFormUsesDefaults) {
  StatusOr<Verdict> v = VerdictFromJson(json{
      {"kind", "hang"}, {"stack_id", "0123456789abcdef"}, {"problem", "p"}, {"algorithm", "a"}});
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_EQ(v->kind, VerdictKind::kHang);
  EXPECT_EQ(v->attempts, 0);
  EXPECT_EQ(v->message, "");
  EXPECT_FALSE(v->emulated);
  // A record from before checks recorded their tolerance: exactness unknown, not exact.
  EXPECT_LT(v->tolerance, 0.0);
}

TEST(JsonRecordsTest, VerdictErrorsNameTheField) {
  const json base = ToJson(FullVerdict());
  struct Case {
    const char* name;
    std::function<void(json&)> change;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"no kind", [](json& j) { j.erase("kind"); }, "verdict: field 'kind': is required"},
      {"bad kind", [](json& j) { j["kind"] = "HUNG"; },
       "verdict: field 'kind': unknown verdict 'HUNG'; allowed: OK, SLOW, HANG, CRASH, WRONG, "
       "MISTRUSTED, ERROR, UNSUPPORTED, OOM"},
      {"no problem", [](json& j) { j.erase("problem"); }, "verdict: field 'problem': is required"},
      {"empty algorithm", [](json& j) { j["algorithm"] = ""; },
       "verdict: field 'algorithm': must not be empty"},
      {"attempts as text", [](json& j) { j["attempts"] = "2"; },
       "verdict: field 'attempts': expected an integer, got string"},
      {"signal too big", [](json& j) { j["crash_signal"] = int64_t{1} << 33; },
       "verdict: field 'crash_signal': 8589934592 does not fit a 32-bit integer"},
      {"time as bool", [](json& j) { j["time_ms_min"] = true; },
       "verdict: field 'time_ms_min': expected a number (or \"inf\", \"-inf\", \"nan\"), got "
       "boolean"},
      {"time as word", [](json& j) { j["time_ms_min"] = "fast"; },
       "verdict: field 'time_ms_min': expected a number (or \"inf\", \"-inf\", \"nan\"), got "
       "string"},
      {"emulated as int", [](json& j) { j["emulated"] = 1; },
       "verdict: field 'emulated': expected true or false, got integer"},
      {"unknown field", [](json& j) { j["type"] = "verdict"; }, "verdict: unknown field 'type'"},
      {"null message", [](json& j) { j["message"] = nullptr; },
       "verdict: field 'message': expected a string, got null"},
  };
  for (const Case& c : cases) {
    json j = base;
    c.change(j);
    StatusOr<Verdict> v = VerdictFromJson(j);
    ASSERT_FALSE(v.ok()) << c.name;
    EXPECT_EQ(v.status().code(), StatusCode::kInvalidArgument) << c.name;
    EXPECT_EQ(v.status().message(), c.message) << c.name;
  }
}

// ---- text ----

TEST(JsonRecordsTest, DumpIsOneSortedLineAndSurvivesInvalidUtf8) {
  EXPECT_EQ(DumpJson(json{{"b", 1}, {"a", "x\ny"}}), "{\"a\":\"x\\ny\",\"b\":1}");
  Verdict v = FullVerdict();
  v.message = std::string("bad byte \xff here");
  std::string text = DumpJson(ToJson(v));  // must not throw
  EXPECT_EQ(text.find('\n'), std::string::npos);
  StatusOr<json> j = ParseJson(text);
  ASSERT_TRUE(j.ok());
  EXPECT_EQ((*j)["message"], "bad byte \xef\xbf\xbd here");  // U+FFFD
}

TEST(JsonRecordsTest, ParseErrorsAreValues) {
  StatusOr<json> j = ParseJson("{\"a\": ");
  ASSERT_FALSE(j.ok());
  EXPECT_EQ(j.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(j.status().message().rfind("not valid JSON: ", 0), 0u) << j.status().message();
  EXPECT_FALSE(ParseJson("").ok());
  EXPECT_FALSE(ParseJson("{} {}").ok());
  EXPECT_TRUE(ParseJson(" {\"a\": [1, 2]}\n").ok());
}

}  // namespace
}  // namespace convguard
