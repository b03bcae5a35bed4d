// libFuzzer entry point for the ONNX reader (src/onnx: protobuf parsing, the opset and op
// checks, input shapes, ONNX's shape inference, the convolutions read from the graph).
//
// Any bytes are a model to read: the reader must not crash, throw or hang (exceptions of
// ONNX's own code must be caught inside src/onnx). Properties checked on every input:
//   - a failure is kInvalidArgument or kOutOfRange, with a one-line message;
//   - every convolution read either has a problem that passes Validate and reads back as
//     itself from its canonical text, or says why not;
//   - node positions increase.
// A broken property aborts with a message, which libFuzzer reports as a crash.
//
// Built by scripts/fuzz.sh (clang, -fsanitize=fuzzer,address,undefined); seeds in
// tests/fuzz/corpus/onnx/ (tests/fuzz/make_onnx_seeds.py writes them).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "convguard/onnx.h"
#include "convguard/text_forms.h"

namespace {

using namespace convguard;

[[noreturn]] void Fail(const char* what, const std::string& detail) {
  std::fprintf(stderr, "onnx_fuzz: %s: %s\n", what, detail.c_str());
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  StatusOr<ModelConvs> convs = ReadOnnxModelBytes(bytes, "fuzz.onnx");
  if (!convs.ok()) {
    const StatusCode code = convs.status().code();
    if (code != StatusCode::kInvalidArgument && code != StatusCode::kOutOfRange) {
      Fail("unexpected status code", convs.status().ToString());
    }
    if (convs.status().message().find('\n') != std::string::npos)
      Fail("multi-line message", convs.status().message());
    return 0;
  }
  int64_t last = -1;
  for (const ModelConv& c : convs->convs) {
    if (c.node <= last) Fail("node positions do not increase", c.name);
    last = c.node;
    if (!c.problem) {
      if (c.unsupported.empty()) Fail("a convolution without a problem or a reason", c.name);
      continue;
    }
    if (Status s = Validate(*c.problem); !s.ok()) Fail("an invalid problem", s.ToString());
    StatusOr<Problem> back = ParseProblem(ToCanonical(*c.problem));
    if (!back.ok() || !(*back == *c.problem))
      Fail("canonical text does not read back", ToCanonical(*c.problem));
  }
  return 0;
}
