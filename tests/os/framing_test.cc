// Tests of the worker wire framing: pure byte handling, no processes.
#include "worker/framing.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace convguard::worker {
namespace {

std::string Frame(std::string_view payload) {
  StatusOr<std::string> f = EncodeFrame(payload);
  EXPECT_TRUE(f.ok()) << f.status().ToString();
  return f.ok() ? *f : std::string();
}

// Feeds `bytes` in pieces of `piece` bytes, collecting every frame as it completes.
std::vector<std::string> DecodeAll(FrameDecoder& d, std::string_view bytes, size_t piece) {
  std::vector<std::string> out;
  for (size_t i = 0; i < bytes.size(); i += piece) {
    d.Feed(bytes.substr(i, piece));
    while (auto f = d.Next()) out.push_back(std::move(f->payload));
  }
  return out;
}

TEST(Crc32Test, KnownVectors) {
  EXPECT_EQ(Crc32(""), 0x00000000u);
  EXPECT_EQ(Crc32("123456789"), 0xCBF43926u);
  EXPECT_EQ(Crc32("The quick brown fox jumps over the lazy dog"), 0x414FA339u);
}

TEST(EncodeFrameTest, LayoutIsMagicLengthPayloadCrc) {
  const std::string f = Frame("{}");
  ASSERT_EQ(f.size(), kFrameOverheadBytes + 2);
  EXPECT_EQ(f.substr(0, 4), "CGW1");
  EXPECT_EQ(f.substr(4, 4), std::string("\x02\x00\x00\x00", 4));  // little-endian 2
  EXPECT_EQ(f.substr(8, 2), "{}");
  const uint32_t crc = Crc32("{}");
  const std::string crc_le = {static_cast<char>(crc & 0xFF), static_cast<char>((crc >> 8) & 0xFF),
                              static_cast<char>((crc >> 16) & 0xFF),
                              static_cast<char>((crc >> 24) & 0xFF)};
  EXPECT_EQ(f.substr(10, 4), crc_le);
}

TEST(EncodeFrameTest, PayloadOverMaximumIsOutOfRange) {
  StatusOr<std::string> f = EncodeFrame(std::string(101, 'x'), 100);
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.status().code(), StatusCode::kOutOfRange);
  EXPECT_EQ(f.status().message(), "frame payload of 101 bytes exceeds the maximum of 100 bytes");
  EXPECT_TRUE(EncodeFrame(std::string(100, 'x'), 100).ok());
}

TEST(FrameDecoderTest, RoundTrip) {
  const std::vector<std::string> payloads = {R"({"op":"hello","backend":"onednn"})", "",
                                             std::string("\0\xff binary ok", 12),
                                             "caf\xc3\xa9 \xe2\x9c\x93", std::string(100000, 'j')};
  std::string stream;
  for (const auto& p : payloads) stream += Frame(p);
  FrameDecoder d;
  EXPECT_EQ(DecodeAll(d, stream, stream.size()), payloads);
  EXPECT_EQ(d.garbage_bytes_skipped(), 0);
  EXPECT_EQ(d.buffered_bytes(), 0u);
}

TEST(FrameDecoderTest, ByteAtATime) {
  const std::vector<std::string> payloads = {R"({"id":1})", R"({"id":2,"x":"CGW1"})", ""};
  std::string stream;
  for (const auto& p : payloads) stream += Frame(p);
  FrameDecoder d;
  EXPECT_EQ(DecodeAll(d, stream, 1), payloads);
  EXPECT_EQ(d.garbage_bytes_skipped(), 0);
}

TEST(FrameDecoderTest, NoFrameUntilTheLastByteArrives) {
  const std::string f = Frame(R"({"op":"result"})");
  FrameDecoder d;
  for (size_t i = 0; i + 1 < f.size(); ++i) {
    d.Feed(f.substr(i, 1));
    EXPECT_FALSE(d.Next().has_value()) << "after " << i + 1 << " bytes";
    EXPECT_EQ(d.buffered_bytes(), i + 1);
  }
  d.Feed(f.substr(f.size() - 1));
  auto frame = d.Next();
  ASSERT_TRUE(frame.has_value());
  EXPECT_EQ(frame->payload, R"({"op":"result"})");
  EXPECT_EQ(d.buffered_bytes(), 0u);
}

TEST(FrameDecoderTest, TruncatedFrameStaysBufferedThenDiscarded) {
  // A worker that dies mid-reply: half a frame, then EOF.
  const std::string f = Frame(R"({"op":"result","value":42})");
  FrameDecoder d;
  d.Feed(std::string_view(f).substr(0, 17));
  EXPECT_FALSE(d.Next().has_value());
  EXPECT_EQ(d.buffered_bytes(), 17u);
  EXPECT_EQ(d.garbage_bytes_skipped(), 0);
  EXPECT_EQ(d.DiscardBuffered(), 17u);
  EXPECT_EQ(d.garbage_bytes_skipped(), 17);
  EXPECT_EQ(d.buffered_bytes(), 0u);
  // The decoder is usable again (e.g. for a fresh worker).
  d.Feed(Frame("{}"));
  auto frame = d.Next();
  ASSERT_TRUE(frame.has_value());
  EXPECT_EQ(frame->payload, "{}");
}

TEST(FrameDecoderTest, GarbageBeforeAndBetweenFramesIsSkippedAndCounted) {
  struct Case {
    const char* name;
    std::string before;
    std::string between;
    std::string after;
  };
  const std::vector<Case> cases = {
      {"stdout noise", "Loading MIOpen kernels...\n", "warning: slow path\n", ""},
      {"magic prefixes", "CGCGW", "CG", "CGW"},
      {"binary junk", std::string("\0\x01\x02\xff", 4), std::string(1000, '\x7f'), "xyz"},
      {"nothing", "", "", ""},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    const std::string stream = c.before + Frame("first") + c.between + Frame("second") + c.after;
    for (size_t piece : {size_t{1}, size_t{3}, size_t{4096}}) {
      SCOPED_TRACE(piece);
      FrameDecoder d;
      EXPECT_EQ(DecodeAll(d, stream, piece), (std::vector<std::string>{"first", "second"}));
      // Trailing bytes that could still start a magic stay buffered, not yet counted.
      EXPECT_EQ(d.garbage_bytes_skipped() + static_cast<int64_t>(d.buffered_bytes()),
                static_cast<int64_t>(c.before.size() + c.between.size() + c.after.size()));
      EXPECT_EQ(d.crc_mismatches(), 0);
    }
  }
}

TEST(FrameDecoderTest, CorruptedCrcFrameIsSkippedAndNextDecoded) {
  std::string bad = Frame(R"({"id":1})");
  bad[10] ^= 0x20;  // flip a payload bit
  const std::string good = Frame(R"({"id":2})");
  for (size_t piece : {size_t{1}, size_t{5}, size_t{1000}}) {
    SCOPED_TRACE(piece);
    FrameDecoder d;
    EXPECT_EQ(DecodeAll(d, bad + good, piece), (std::vector<std::string>{R"({"id":2})"}));
    EXPECT_EQ(d.crc_mismatches(), 1);
    EXPECT_EQ(d.garbage_bytes_skipped(), static_cast<int64_t>(bad.size()));
  }
}

TEST(FrameDecoderTest, CorruptedCrcFieldIsSkipped) {
  std::string bad = Frame("payload");
  bad.back() ^= 0x01;
  FrameDecoder d;
  EXPECT_EQ(DecodeAll(d, bad + Frame("next"), 2), (std::vector<std::string>{"next"}));
  EXPECT_EQ(d.crc_mismatches(), 1);
}

TEST(FrameDecoderTest, FrameHiddenInsideAFalseStartIsFound) {
  // Junk that contains the magic with a plausible length swallows the real frame's start;
  // after the CRC check fails the decoder must find the real frame inside those bytes.
  const std::string real = Frame("real");
  const std::string stream = std::string("CGW1\x05\x00\x00\x00", 8) + real;
  FrameDecoder d;
  EXPECT_EQ(DecodeAll(d, stream, stream.size()), (std::vector<std::string>{"real"}));
  EXPECT_EQ(d.crc_mismatches(), 1);
  EXPECT_EQ(d.garbage_bytes_skipped(), 8);
}

TEST(FrameDecoderTest, OversizedLengthIsRejectedWithoutWaitingOrAllocating) {
  FrameDecoder d(FrameDecoderOptions{.max_payload_bytes = 1024});
  // A length of 4 GiB - 1: were it trusted, the decoder would wait for (or reserve) it.
  const std::string header = std::string("CGW1") + std::string("\xff\xff\xff\xff", 4);
  d.Feed(header);
  EXPECT_FALSE(d.Next().has_value());
  EXPECT_EQ(d.oversized_frames(), 1);
  EXPECT_EQ(d.buffered_bytes(), 0u);  // rejected at once: nothing kept waiting
  EXPECT_EQ(d.garbage_bytes_skipped(), 8);
  d.Feed(Frame("after"));
  auto f = d.Next();
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->payload, "after");
}

TEST(FrameDecoderTest, LengthJustOverConfiguredMaximumIsRejected) {
  FrameDecoder d(FrameDecoderOptions{.max_payload_bytes = 16});
  const std::string ok = Frame(std::string(16, 'a'));
  const std::string too_big = Frame(std::string(17, 'b'));
  EXPECT_EQ(DecodeAll(d, too_big + ok, 4), (std::vector<std::string>{std::string(16, 'a')}));
  EXPECT_EQ(d.oversized_frames(), 1);
  EXPECT_EQ(d.garbage_bytes_skipped(), static_cast<int64_t>(too_big.size()));
}

TEST(FrameDecoderTest, JunkDoesNotAccumulate) {
  FrameDecoder d;
  const std::string junk(1 << 20, 'z');
  for (int i = 0; i < 16; ++i) {
    d.Feed(junk);
    EXPECT_FALSE(d.Next().has_value());
    EXPECT_EQ(d.buffered_bytes(), 0u);
  }
  EXPECT_EQ(d.garbage_bytes_skipped(), 16 << 20);
}

TEST(FrameDecoderTest, SpanFeedMatchesStringFeed) {
  const std::string f = Frame("span");
  FrameDecoder d;
  d.Feed(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(f.data()), f.size()));
  auto frame = d.Next();
  ASSERT_TRUE(frame.has_value());
  EXPECT_EQ(frame->payload, "span");
}

TEST(FrameDecoderTest, ManyFramesInOneFeedAllDecode) {
  std::string stream;
  std::vector<std::string> payloads;
  for (int i = 0; i < 1000; ++i) {
    payloads.push_back(R"({"id":)" + std::to_string(i) + "}");
    stream += Frame(payloads.back());
  }
  FrameDecoder d;
  EXPECT_EQ(DecodeAll(d, stream, 777), payloads);
  EXPECT_EQ(d.buffered_bytes(), 0u);
}

}  // namespace
}  // namespace convguard::worker
