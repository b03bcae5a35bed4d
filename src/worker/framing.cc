#include "worker/framing.h"

#include <algorithm>
#include <array>

namespace convguard::worker {
namespace {

constexpr std::array<uint32_t, 256> MakeCrcTable() {
  std::array<uint32_t, 256> table{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    table[i] = c;
  }
  return table;
}
constexpr std::array<uint32_t, 256> kCrcTable = MakeCrcTable();

void PutU32Le(std::string& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}

uint32_t GetU32Le(const char* p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= uint32_t{static_cast<uint8_t>(p[i])} << (8 * i);
  return v;
}

constexpr size_t kMaxLengthField = 0xFFFFFFFFu;

}  // namespace

uint32_t Crc32(std::string_view data) {
  uint32_t c = 0xFFFFFFFFu;
  for (char ch : data) c = kCrcTable[(c ^ static_cast<uint8_t>(ch)) & 0xFF] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

StatusOr<std::string> EncodeFrame(std::string_view payload, size_t max_payload_bytes) {
  const size_t limit = std::min(max_payload_bytes, kMaxLengthField);
  if (payload.size() > limit) {
    return Status::OutOfRange("frame payload of " + std::to_string(payload.size()) +
                              " bytes exceeds the maximum of " + std::to_string(limit) + " bytes");
  }
  std::string frame;
  frame.reserve(kFrameOverheadBytes + payload.size());
  frame.append(kFrameMagic);
  PutU32Le(frame, static_cast<uint32_t>(payload.size()));
  frame.append(payload);
  PutU32Le(frame, Crc32(payload));
  return frame;
}

FrameDecoder::FrameDecoder(FrameDecoderOptions options)
    : max_payload_bytes_(std::min(options.max_payload_bytes, kMaxLengthField)) {}

void FrameDecoder::Feed(std::span<const uint8_t> bytes) {
  Feed(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
}

void FrameDecoder::Feed(std::string_view bytes) {
  if (bytes.empty()) return;
  Compact();
  buffer_.append(bytes);
  Resync();
}

void FrameDecoder::Skip(size_t n) {
  start_ += n;
  garbage_bytes_skipped_ += static_cast<int64_t>(n);
}

void FrameDecoder::Compact() {
  if (start_ == 0) return;
  if (start_ == buffer_.size()) {
    buffer_.clear();
    start_ = 0;
  } else if (start_ >= buffer_.size() / 2) {
    // Amortised: each byte is moved at most a bounded number of times.
    buffer_.erase(0, start_);
    start_ = 0;
  }
}

void FrameDecoder::Resync() {
  const std::string_view held(buffer_.data() + start_, buffer_.size() - start_);
  if (held.starts_with(kFrameMagic)) return;
  const size_t next = held.find(kFrameMagic);
  if (next != std::string_view::npos) {
    Skip(next);
    return;
  }
  // No magic: keep only the longest tail that could still be the start of one.
  size_t keep = std::min(held.size(), kFrameMagic.size() - 1);
  while (keep > 0 && !kFrameMagic.starts_with(held.substr(held.size() - keep))) --keep;
  Skip(held.size() - keep);
}

std::optional<DecodedFrame> FrameDecoder::Next() {
  for (;;) {
    Resync();
    const size_t held = buffer_.size() - start_;
    if (held < kFrameHeaderBytes) return std::nullopt;
    const char* frame = buffer_.data() + start_;
    const size_t length = GetU32Le(frame + kFrameMagic.size());
    if (length > max_payload_bytes_) {
      // Not a frame we accept; maybe not a frame at all (a magic inside junk). Step past
      // this magic and look for the next one.
      ++oversized_frames_;
      Skip(1);
      continue;
    }
    if (held < kFrameOverheadBytes + length) return std::nullopt;
    const std::string_view payload(frame + kFrameHeaderBytes, length);
    if (GetU32Le(frame + kFrameHeaderBytes + length) != Crc32(payload)) {
      // Corrupt, or a magic that happened to occur in junk; a real frame may start inside
      // the bytes we took for this one, so resume the search one byte further.
      ++crc_mismatches_;
      Skip(1);
      continue;
    }
    DecodedFrame out{std::string(payload)};
    start_ += kFrameOverheadBytes + length;
    Compact();
    return out;
  }
}

size_t FrameDecoder::DiscardBuffered() {
  const size_t n = buffered_bytes();
  Skip(n);
  Compact();
  return n;
}

}  // namespace convguard::worker
