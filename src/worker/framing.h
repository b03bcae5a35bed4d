// worker/framing.h — the byte framing of messages between convguard and a worker.
//
// A frame is:   "CGW1"  | length (u32, little-endian) | payload (length bytes) | CRC-32 (u32 LE)
//               magic     of the payload only            UTF-8 JSON               of the payload
// The CRC is the IEEE 802.3 / zlib CRC-32 (reflected polynomial 0xEDB88320), so any zlib
// (Python's zlib.crc32) can produce and check it. See docs/wire-framing.md for the why.
//
// The decoder is built for a peer that may misbehave: a worker that dies mid-reply leaves
// a partial frame; vendor code that prints to stdout puts junk between frames; a corrupted
// length must not make us allocate gigabytes. FrameDecoder therefore
//   - accepts bytes in any pieces (down to one at a time) and yields whole frames only;
//   - on bytes that do not start a frame, an impossible length or a CRC mismatch, skips
//     forward to the next magic and counts every skipped byte, so the caller can report
//     "the worker wrote garbage" and still read the replies that follow;
//   - never reserves memory from a length field: its buffer holds only bytes fed and not
//     yet consumed, and a length above the maximum is rejected as soon as its header is
//     complete, without waiting for (or buffering) that many bytes.
// Framing is byte-transparent: that the payload is UTF-8 JSON is checked by the protocol
// layer above, which parses it.
//
// No POSIX here: the caller reads the pipe (os/pipe_io.h) and feeds what it read.
//
// Thread-safety: a FrameDecoder is owned by one thread. The free functions are pure.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "convguard/status.h"

namespace convguard::worker {

inline constexpr std::string_view kFrameMagic = "CGW1";
inline constexpr size_t kFrameHeaderBytes = 8;   // magic + length
inline constexpr size_t kFrameTrailerBytes = 4;  // CRC-32
inline constexpr size_t kFrameOverheadBytes = kFrameHeaderBytes + kFrameTrailerBytes;
inline constexpr size_t kDefaultMaxPayloadBytes = size_t{16} << 20;  // 16 MiB

// CRC-32 (IEEE, as zlib's crc32) of `data`; Crc32("123456789") == 0xCBF43926.
uint32_t Crc32(std::string_view data);

// The frame carrying `payload`.
// Errors: kOutOfRange if payload.size() > max_payload_bytes (the receiver would reject the
// frame; refusing to send it names the problem at its source).
StatusOr<std::string> EncodeFrame(std::string_view payload,
                                  size_t max_payload_bytes = kDefaultMaxPayloadBytes);

struct DecodedFrame {
  std::string payload;
};

struct FrameDecoderOptions {
  // Frames whose length field exceeds this are rejected (counted in oversized_frames()).
  // Values above 2^32 - 1 act as 2^32 - 1, the largest length the field can hold.
  size_t max_payload_bytes = kDefaultMaxPayloadBytes;
};

class FrameDecoder {
 public:
  explicit FrameDecoder(FrameDecoderOptions options = {});

  // Appends bytes read from the peer. Bytes that cannot begin a frame are discarded (and
  // counted) at once, so junk does not accumulate.
  void Feed(std::span<const uint8_t> bytes);
  void Feed(std::string_view bytes);

  // The next complete, CRC-checked frame, or nullopt if the bytes fed so far do not yet
  // hold one. Call until nullopt after every Feed.
  std::optional<DecodedFrame> Next();

  // Bytes discarded without being part of a returned frame: junk between frames and the
  // bytes of rejected frames (counted up to the next magic found after them).
  int64_t garbage_bytes_skipped() const { return garbage_bytes_skipped_; }
  // Frames rejected for a CRC mismatch, and for a length above the maximum.
  int64_t crc_mismatches() const { return crc_mismatches_; }
  int64_t oversized_frames() const { return oversized_frames_; }

  // Bytes held that Next() could not yet turn into a frame. After Next() has returned
  // nullopt, a non-zero value means a frame has begun but not ended — at EOF, the peer died
  // mid-message.
  size_t buffered_bytes() const { return buffer_.size() - start_; }

  // Drops the held bytes, counting them as garbage; returns how many there were. For EOF,
  // or after the caller has restarted the peer.
  size_t DiscardBuffered();

 private:
  // Drops leading bytes until the held bytes start with the magic or are a proper prefix of
  // it (a magic split across two Feed calls).
  void Resync();
  void Skip(size_t n);
  void Compact();

  size_t max_payload_bytes_;
  std::string buffer_;
  size_t start_ = 0;  // bytes of buffer_ before start_ are consumed
  int64_t garbage_bytes_skipped_ = 0;
  int64_t crc_mismatches_ = 0;
  int64_t oversized_frames_ = 0;
};

}  // namespace convguard::worker
