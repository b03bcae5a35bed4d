#include "worker/protocol.h"

#include <gtest/gtest.h>

#include <limits>
#include <string>
#include <vector>

namespace convguard::worker {
namespace {

TEST(Protocol, ProbeRequestRoundTrips) {
  ProbeRequest r;
  r.id = 42;
  r.problem = "n1_c16_h64_w64_k32_r3_s3_p1_u1_d1_g1_f32_nchw_fwd";
  r.algorithm = "direct";
  r.seed = 7;
  r.warmup = 2;
  r.repeats = 5;
  r.check = CheckMode::kFull;
  r.sample_points = 99;
  StatusOr<Message> m = DecodeMessage(EncodeProbeRequest(r), /*from_worker=*/false);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  ASSERT_TRUE(m->probe.has_value());
  EXPECT_EQ(m->probe->id, 42);
  EXPECT_EQ(m->probe->problem, r.problem);
  EXPECT_EQ(m->probe->algorithm, "direct");
  EXPECT_EQ(m->probe->seed, 7u);
  EXPECT_EQ(m->probe->warmup, 2);
  EXPECT_EQ(m->probe->repeats, 5);
  EXPECT_EQ(m->probe->check, CheckMode::kFull);
  EXPECT_EQ(m->probe->sample_points, 99);
  EXPECT_FALSE(m->probe->health);
  // A health check says so; an ordinary probe does not carry the field at all.
  EXPECT_EQ(EncodeProbeRequest(r).find("health"), std::string::npos);
  r.health = true;
  m = DecodeMessage(EncodeProbeRequest(r), /*from_worker=*/false);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_TRUE(m->probe->health);
}

TEST(Protocol, ReplyRoundTripsAndNonFiniteErrorsStayLarge) {
  ProbeReply r;
  r.id = 3;
  r.outcome = ProbeOutcome::kWrong;
  r.times_ms = {1.5, 2.5};
  r.mismatches = 12;
  r.non_finite = 4;
  r.tolerance = 2.5e-6;
  r.max_abs_error = std::numeric_limits<double>::infinity();
  r.message = "y[n=0,k=1,oh=2,ow=3]: got 5, expected 4";
  StatusOr<Message> m = DecodeMessage(EncodeProbeReply(r), /*from_worker=*/true);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  ASSERT_TRUE(m->result.has_value());
  EXPECT_EQ(m->result->outcome, ProbeOutcome::kWrong);
  EXPECT_EQ(m->result->times_ms, r.times_ms);
  EXPECT_EQ(m->result->mismatches, 12);
  EXPECT_EQ(m->result->tolerance, 2.5e-6);
  EXPECT_GT(m->result->max_abs_error, 1e300);
  EXPECT_EQ(m->result->message, r.message);
  EXPECT_TRUE(m->result->stage_ms.empty());  // optional, and absent unless set
}

TEST(Protocol, ProbeReplyCarriesTheWorkersOwnTimePerStage) {
  ProbeReply r;
  r.id = 4;
  r.outcome = ProbeOutcome::kOk;
  r.stage_ms = {{"prep", 0.25}, {"run", 1.5}, {"check", 0.125}, {"total", 2.0}};
  const std::string wire = EncodeProbeReply(r);
  EXPECT_NE(wire.find("\"stage_ms\""), std::string::npos) << wire;
  StatusOr<Message> m = DecodeMessage(wire, /*from_worker=*/true);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  ASSERT_TRUE(m->result.has_value());
  EXPECT_EQ(m->result->stage_ms, r.stage_ms);
}

TEST(Protocol, HelloCarriesTheFingerprint) {
  Hello h;
  h.pid = 1234;
  h.backend = "reference";
  h.fingerprint.backend = "reference";
  h.fingerprint.device = "CPU test";
  h.fingerprint.knobs["MIOPEN_FIND_MODE"] = "1";
  h.shares_device = true;
  h.visible_devices = 2;
  h.mapped_files = {"/usr/lib/libvendor.so.1", "/opt/convguard/bin/convguard"};
  h.first_call_allowance_ms = 1000;
  h.first_call_allowance_ms_by_algorithm = {{"benchmark", 2000}};
  StatusOr<Message> m = DecodeMessage(EncodeHello(h), /*from_worker=*/true);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  ASSERT_TRUE(m->hello.has_value());
  EXPECT_EQ(m->hello->first_call_allowance_ms, 1000);
  EXPECT_EQ(m->hello->first_call_allowance_ms_by_algorithm, h.first_call_allowance_ms_by_algorithm);
  EXPECT_EQ(m->hello->fingerprint, h.fingerprint);
  EXPECT_TRUE(m->hello->shares_device);
  EXPECT_EQ(m->hello->visible_devices, 2);
  EXPECT_EQ(m->hello->mapped_files, h.mapped_files);
}

TEST(Protocol, AHelloWithoutMappedFilesIsStillAHello) {
  // Workers of other builds may not say which files they mapped.
  StatusOr<Message> m = DecodeMessage(
      R"({"v":1,"type":"hello","pid":7,"backend":"reference","fingerprint":{"backend":"reference"}})",
      /*from_worker=*/true);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  ASSERT_TRUE(m->hello.has_value());
  EXPECT_TRUE(m->hello->mapped_files.empty());
  StatusOr<Message> bad = DecodeMessage(
      R"({"v":1,"type":"hello","pid":7,"backend":"reference","fingerprint":{"backend":"reference"},"mapped_files":"x"})",
      /*from_worker=*/true);
  EXPECT_FALSE(bad.ok());
}

// Found by wire_fuzz (tests/fuzz/corpus/wire/regression-encoder-invalid-utf8): the
// encoders threw (json type_error 316) on a string that is not UTF-8, such as an error
// message naming a file or a vendor library's device name; the worker died of the
// exception instead of sending its fatal message.
TEST(Protocol, EncodersTakeStringsThatAreNotUtf8) {
  const std::string bytes = "cannot open /opt/rocm/lib/libMIOpen.so: \xb3\xff";
  StatusOr<Message> fatal = DecodeMessage(EncodeFatal(bytes), /*from_worker=*/true);
  ASSERT_TRUE(fatal.ok()) << fatal.status().ToString();
  EXPECT_EQ(*fatal->fatal, "cannot open /opt/rocm/lib/libMIOpen.so: \xef\xbf\xbd\xef\xbf\xbd");
  Hello h;
  h.backend = "reference";
  h.fingerprint.backend = "reference";
  h.fingerprint.device = bytes;
  h.mapped_files = {bytes};
  StatusOr<Message> hello = DecodeMessage(EncodeHello(h), /*from_worker=*/true);
  ASSERT_TRUE(hello.ok()) << hello.status().ToString();
  EXPECT_EQ(hello->hello->mapped_files, std::vector<std::string>{*fatal->fatal});
  ProbeRequest r;
  r.problem = bytes;
  EXPECT_TRUE(DecodeMessage(EncodeProbeRequest(r), /*from_worker=*/false).ok());
  AlgorithmsRequest a;
  a.problem = bytes;
  EXPECT_TRUE(DecodeMessage(EncodeAlgorithmsRequest(a), /*from_worker=*/false).ok());
}

struct BadPayload {
  std::string name;
  std::string payload;
  bool from_worker;
  std::string message_part;
};

class ProtocolRejects : public ::testing::TestWithParam<BadPayload> {};

TEST_P(ProtocolRejects, WithAMessageNamingTheProblem) {
  StatusOr<Message> m = DecodeMessage(GetParam().payload, GetParam().from_worker);
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(m.status().message().find(GetParam().message_part), std::string::npos)
      << m.status().message();
}

INSTANTIATE_TEST_SUITE_P(
    Table, ProtocolRejects,
    ::testing::Values(
        BadPayload{"NotJson", "{{{", true, "not a JSON object"},
        BadPayload{"WrongVersion", R"({"v":2,"type":"bye"})", false, "protocol version 2"},
        BadPayload{"MissingType", R"({"v":1})", false, "missing field 'type'"},
        BadPayload{"ProbeWithoutProblem", R"({"v":1,"type":"probe","id":1})", false,
                   "missing field 'problem'"},
        BadPayload{"BadCheckMode", R"({"v":1,"type":"probe","id":1,"problem":"x","check":"most"})",
                   false, "check mode 'most'"},
        BadPayload{"ZeroRepeats", R"({"v":1,"type":"probe","id":1,"problem":"x","repeats":0})",
                   false, "repeats >= 1"},
        BadPayload{"WrongTypeOfField", R"({"v":1,"type":"result","id":"one","outcome":"ok"})", true,
                   "field 'id' has the wrong type"},
        BadPayload{"HelloFromParent", R"({"v":1,"type":"hello"})", false,
                   "unexpected message type 'hello'"},
        // Found by wire_fuzz (tests/fuzz/corpus/wire/regression-number-cast-overflow): a
        // number was cast to the field's type whatever its value, undefined behaviour for
        // a float out of range; values of another JSON type were converted silently.
        BadPayload{"FloatForAnInteger",
                   R"({"v":1,"type":"probe","id":1,"problem":"x","seed":18446744073709551616})",
                   false, "field 'seed' has the wrong type (expected an integer)"},
        BadPayload{"IntegerOutOfRange",
                   R"({"v":1,"type":"probe","id":1,"problem":"x","warmup":4294967297})", false,
                   "field 'warmup' is out of range: 4294967297"},
        BadPayload{"NegativeSeed", R"({"v":1,"type":"probe","id":1,"problem":"x","seed":-1})",
                   false, "field 'seed' is out of range: -1"},
        BadPayload{"BooleanVersion", R"({"v":true,"type":"bye"})", false,
                   "field 'v' has the wrong type"},
        BadPayload{"FractionalId", R"({"v":1,"type":"phase","id":2.5,"phase":"run"})", true,
                   "field 'id' has the wrong type"},
        BadPayload{"NumberForABoolean", R"({"v":1,"type":"probe","id":1,"problem":"x","health":1})",
                   false, "field 'health' has the wrong type (expected true or false)"},
        BadPayload{
            "AllowanceNotAnObject",
            R"({"v":1,"type":"hello","pid":7,"backend":"torch","fingerprint":{"backend":"torch"},"first_call_allowance_ms_by_algorithm":[2000]})",
            true, "field 'first_call_allowance_ms_by_algorithm' has the wrong type"},
        BadPayload{
            "AllowanceNotANumber",
            R"({"v":1,"type":"hello","pid":7,"backend":"torch","fingerprint":{"backend":"torch"},"first_call_allowance_ms_by_algorithm":{"benchmark":"2 s"}})",
            true, "member 'benchmark' has the wrong type"},
        BadPayload{
            "NegativeAllowance",
            R"({"v":1,"type":"hello","pid":7,"backend":"torch","fingerprint":{"backend":"torch"},"first_call_allowance_ms_by_algorithm":{"benchmark":-1}})",
            true, "'benchmark' has a negative"},
        BadPayload{"UnknownStage",
                   R"({"v":1,"type":"result","id":1,"outcome":"ok","stage_ms":{"upload":1}})", true,
                   "stage 'upload' is unknown (allowed: prep, run, check, total)"},
        BadPayload{"NegativeStageTime",
                   R"({"v":1,"type":"result","id":1,"outcome":"ok","stage_ms":{"run":-0.5}})", true,
                   "'run' has a negative or non-numeric time"},
        BadPayload{"StringInTimes",
                   R"({"v":1,"type":"result","id":1,"outcome":"ok","times_ms":[1.5,"2"]})", true,
                   "field 'times_ms' element 1 has the wrong type (expected a number)"}),
    [](const ::testing::TestParamInfo<BadPayload>& info) { return info.param.name; });

}  // namespace
}  // namespace convguard::worker
