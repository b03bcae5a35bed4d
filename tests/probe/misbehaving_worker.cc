// A worker that breaks the protocol on purpose, for the engine's integration tests.
// It says a proper hello, then answers each probe according to the problem's c:
//   c == 1  writes junk bytes, then a proper OK reply
//   c == 2  writes the first half of a reply frame and exits (dies mid-reply)
//   c == 3  writes junk and exits with status 1 without replying
//   else    a proper OK reply
#include <string>

#include "convguard/text_forms.h"
#include "os/pipe_io.h"
#include "os/system.h"
#include "worker/framing.h"
#include "worker/protocol.h"

using namespace convguard;

namespace {

void Write(int fd, const std::string& bytes) {
  (void)os::WriteAll(fd, bytes, os::Deadline::Never());
}

std::string Frame(const std::string& payload) { return *worker::EncodeFrame(payload); }

}  // namespace

int main(int argc, char** argv) {
  (void)argc;
  (void)argv;
  const int out = 1;
  worker::Hello hello;
  hello.pid = os::CurrentPid();
  hello.backend = "misbehaving";
  hello.fingerprint.backend = "misbehaving";
  hello.fingerprint.device = "test double";
  hello.fingerprint.emulation = "a test worker that breaks the protocol on purpose";
  Write(out, Frame(worker::EncodeHello(hello)));
  worker::FrameDecoder decoder;
  for (;;) {
    uint8_t buf[4096];
    StatusOr<os::IoResult> r = os::ReadSome(0, buf, os::Deadline::Never());
    if (!r.ok() || r->eof()) return 0;
    decoder.Feed(std::span<const uint8_t>(buf, r->bytes));
    while (auto frame = decoder.Next()) {
      StatusOr<worker::Message> m = worker::DecodeMessage(frame->payload, /*from_worker=*/false);
      if (!m.ok() || !m->probe) continue;
      StatusOr<Problem> p = ParseProblem(m->probe->problem);
      worker::ProbeReply reply;
      reply.id = m->probe->id;
      reply.outcome = worker::ProbeOutcome::kOk;
      reply.algorithm = m->probe->algorithm;
      reply.times_ms = {0.5, 0.5, 0.5};
      reply.check = "none";
      const std::string frame_bytes = Frame(worker::EncodeProbeReply(reply));
      const int64_t c = p.ok() ? p->c : 0;
      if (c == 1) {
        Write(out, "this is not a frame\n");
        Write(out, frame_bytes);
      } else if (c == 2) {
        Write(out, frame_bytes.substr(0, frame_bytes.size() / 2));
        return 0;
      } else if (c == 3) {
        Write(out, "garbage garbage garbage");
        return 1;
      } else {
        Write(out, frame_bytes);
      }
    }
  }
}
