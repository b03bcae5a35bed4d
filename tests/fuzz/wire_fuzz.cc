// libFuzzer entry point for the worker wire protocol: the frame decoder
// (src/worker/framing.cc) and the messages inside frames (src/worker/protocol.cc).
//
// Any bytes are both what a misbehaving peer may write to the pipe and a payload to
// decode. Nothing may crash, throw, hang or allocate from a length field. Properties
// checked on every input:
//   - framing: fed in pieces whose sizes derive from the input (down to one byte), the
//     decoder yields the same frames, counters and held bytes as when fed everything at
//     once; at every point each byte fed is exactly one of: in a returned frame, counted as
//     skipped, or held; every returned payload encodes (EncodeFrame) to a frame that a
//     fresh decoder returns as the same payload with nothing skipped; a decoder with a
//     small maximum payload keeps the same accounting;
//   - messages: DecodeMessage, from the worker and from the parent, of the input and of
//     every frame's payload, fails only with kInvalidArgument; a decoded message has the
//     field its type says, and re-encoded with its Encode* function it decodes again to a
//     message that encodes to the same text (encode(decode(encode(m))) == encode(m));
//   - encoders take any string: a fatal message and a hello made of the input's first
//     bytes encode without throwing, and decode.
// A broken property aborts with a message, which libFuzzer reports as a crash.
//
// Built by scripts/fuzz.sh; seeds in tests/fuzz/corpus/wire/.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "convguard/status.h"
#include "fuzz/fuzz_check.h"
#include "worker/framing.h"
#include "worker/protocol.h"

namespace {

using namespace convguard;
using namespace convguard::worker;

constexpr std::string_view kTarget = "wire_fuzz";
// Big enough for several frames and a long message; the decoder's cost is linear.
constexpr size_t kMaxInputBytes = 65536;

void Check(bool ok, std::string_view what, std::string_view detail = "") {
  if (!ok) fuzz::Fail(kTarget, what, detail);
}

// The piece sizes: a deterministic function of the input (not read from it, so that a
// seed that is one valid frame stays one).
class Pieces {
 public:
  explicit Pieces(std::string_view bytes) {
    state_ = 0xcbf29ce484222325ULL;
    for (unsigned char b : bytes) state_ = (state_ ^ b) * 0x100000001b3ULL;
    if (state_ == 0) state_ = 1;
  }
  size_t Next() {
    state_ ^= state_ << 13;
    state_ ^= state_ >> 7;
    state_ ^= state_ << 17;
    // Mostly short pieces, which split headers, payloads and CRCs; sometimes long ones.
    return (state_ & 3) == 0 ? 1 + (state_ >> 8) % 4096 : 1 + (state_ >> 8) % 9;
  }

 private:
  uint64_t state_;
};

struct Decoded {
  std::vector<std::string> payloads;
  int64_t garbage = 0, crc = 0, oversized = 0;
  size_t held = 0;
};

void CheckAccounting(const FrameDecoder& d, size_t fed, size_t in_frames) {
  Check(static_cast<int64_t>(fed) == static_cast<int64_t>(in_frames) + d.garbage_bytes_skipped() +
                                         static_cast<int64_t>(d.buffered_bytes()),
        "fed bytes != frame bytes + skipped + held",
        std::to_string(fed) + " fed, " + std::to_string(in_frames) + " in frames, " +
            std::to_string(d.garbage_bytes_skipped()) + " skipped, " +
            std::to_string(d.buffered_bytes()) + " held");
}

Decoded Decode(std::string_view bytes, size_t max_payload, bool in_pieces) {
  FrameDecoder d(FrameDecoderOptions{max_payload});
  Decoded out;
  size_t fed = 0, in_frames = 0;
  Pieces pieces(bytes);
  while (fed < bytes.size()) {
    const size_t n = in_pieces ? std::min(pieces.Next(), bytes.size() - fed) : bytes.size();
    d.Feed(bytes.substr(fed, n));
    fed += n;
    CheckAccounting(d, fed, in_frames);
    while (std::optional<DecodedFrame> f = d.Next()) {
      Check(f->payload.size() <= max_payload, "a frame over the maximum payload was returned");
      in_frames += kFrameOverheadBytes + f->payload.size();
      out.payloads.push_back(std::move(f->payload));
      CheckAccounting(d, fed, in_frames);
    }
  }
  out.garbage = d.garbage_bytes_skipped();
  out.crc = d.crc_mismatches();
  out.oversized = d.oversized_frames();
  out.held = d.buffered_bytes();
  const size_t discarded = d.DiscardBuffered();
  Check(discarded == out.held && d.buffered_bytes() == 0 &&
            d.garbage_bytes_skipped() == out.garbage + static_cast<int64_t>(out.held),
        "DiscardBuffered does not count what it drops");
  return out;
}

// Returns the payloads of the frames in `bytes`.
std::vector<std::string> CheckFraming(std::string_view bytes) {
  const Decoded whole = Decode(bytes, kDefaultMaxPayloadBytes, false);
  const Decoded pieces = Decode(bytes, kDefaultMaxPayloadBytes, true);
  Check(whole.payloads == pieces.payloads, "frames depend on how the bytes were split");
  Check(whole.garbage == pieces.garbage && whole.crc == pieces.crc &&
            whole.oversized == pieces.oversized && whole.held == pieces.held,
        "counters depend on how the bytes were split",
        std::to_string(whole.garbage) + "/" + std::to_string(pieces.garbage) + " skipped, " +
            std::to_string(whole.crc) + "/" + std::to_string(pieces.crc) + " crc, " +
            std::to_string(whole.held) + "/" + std::to_string(pieces.held) + " held");
  for (const std::string& payload : whole.payloads) {
    StatusOr<std::string> frame = EncodeFrame(payload);
    Check(frame.ok() && frame->size() == payload.size() + kFrameOverheadBytes,
          "a decoded payload does not encode");
    FrameDecoder fresh;
    fresh.Feed(*frame);
    std::optional<DecodedFrame> back = fresh.Next();
    Check(back.has_value() && back->payload == payload && fresh.garbage_bytes_skipped() == 0 &&
              fresh.buffered_bytes() == 0 && !fresh.Next().has_value(),
          "a re-encoded payload does not decode as itself");
  }
  // A small maximum: more frames are oversized, the accounting must still hold (Decode
  // checks it).
  (void)Decode(bytes, 64, true);
  return whole.payloads;
}

// The text of `m` encoded with the Encode* function of its type.
std::string Encode(const Message& m, bool from_worker) {
  auto one_field = [&](bool has) {
    Check(has, "a decoded message lacks its type's field", m.type);
  };
  if (m.type == "hello") {
    one_field(m.hello.has_value());
    return EncodeHello(*m.hello);
  }
  if (m.type == "fatal") {
    one_field(m.fatal.has_value());
    return EncodeFatal(*m.fatal);
  }
  if (m.type == "probe") {
    one_field(m.probe.has_value());
    return EncodeProbeRequest(*m.probe);
  }
  if (m.type == "phase") {
    one_field(m.phase.has_value());
    return EncodePhase(*m.phase);
  }
  if (m.type == "result") {
    one_field(m.result.has_value());
    return EncodeProbeReply(*m.result);
  }
  if (m.type == "algorithms" && from_worker) {
    one_field(m.algorithms_reply.has_value());
    return EncodeAlgorithmsReply(*m.algorithms_reply);
  }
  if (m.type == "algorithms") {
    one_field(m.algorithms_request.has_value());
    return EncodeAlgorithmsRequest(*m.algorithms_request);
  }
  Check(m.type == "bye", "a decoded message of an unknown type", m.type);
  return EncodeBye();
}

// encode(decode(encode(m))) == encode(m), from the first decode of `payload` on.
void CheckMessage(std::string_view payload, bool from_worker) {
  StatusOr<Message> m = DecodeMessage(payload, from_worker);
  if (!m.ok()) {
    Check(m.status().code() == StatusCode::kInvalidArgument, "a message fails with another code",
          m.status().ToString());
    return;
  }
  const std::string first = Encode(*m, from_worker);
  StatusOr<Message> back = DecodeMessage(first, from_worker);
  Check(back.ok(), "a re-encoded message does not decode",
        first + ": " + (back.ok() ? "" : back.status().ToString()));
  Check(back->type == m->type, "a re-encoded message decodes as another type", first);
  const std::string second = Encode(*back, from_worker);
  Check(first == second, "a re-encoded message changes when encoded again", first + "\n" + second);
}

// Encoders meet strings from vendor libraries and the file system: any bytes. Every
// encoder writes through the same function, so the two the worker fills with foreign
// strings (a fatal message, the mapped files of a hello) stand for all.
void CheckEncodersTakeAnyString(std::string_view bytes) {
  const std::string s(bytes);
  try {
    CheckMessage(EncodeFatal(s), true);
    Hello h;
    h.backend = "reference";
    h.fingerprint.backend = "reference";
    h.mapped_files = {s};
    CheckMessage(EncodeHello(h), true);
  } catch (const std::exception& e) {
    fuzz::Fail(kTarget, "an encoder threw", e.what());
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > kMaxInputBytes) return 0;
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  const std::vector<std::string> payloads = CheckFraming(bytes);
  for (bool from_worker : {true, false}) {
    CheckMessage(bytes, from_worker);
    for (const std::string& payload : payloads) CheckMessage(payload, from_worker);
  }
  CheckEncodersTakeAnyString(bytes.substr(0, 64));
  return 0;
}
