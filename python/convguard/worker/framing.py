"""The wire frames between convguard and this worker, and the channel built on them.

A frame (docs/wire-framing.md) is "CGW1", the payload's length as u32 LE, the payload,
and the payload's CRC-32 as u32 LE; the payload is one JSON message of the protocol
(docs/worker-protocol.md), which Channel stamps with the protocol version. The decoder
follows src/worker/framing.cc: a frame split across reads waits for its last byte, and
junk, oversized lengths and bad CRCs are skipped, so one damaged request costs only
itself.

No threads: the worker reads a request, answers it, and reads the next.
"""

import json
import os
import struct
import zlib

from .log import log

PROTOCOL_VERSION = 1
FRAME_MAGIC = b"CGW1"
FRAME_HEADER = 8  # magic + u32 length
FRAME_OVERHEAD = 12  # header + u32 CRC
MAX_PAYLOAD = 16 << 20  # the C++ side's default


class FrameDecoder:
    """Survives partial reads; skips junk and frames whose CRC or length is wrong."""

    def __init__(self, max_payload=MAX_PAYLOAD):
        self.max_payload = max_payload
        self.buffer = bytearray()
        self.garbage_bytes = 0

    def feed(self, data):
        self.buffer += data

    def _skip(self, n):
        del self.buffer[:n]
        self.garbage_bytes += n

    def next(self):
        """The next complete, intact payload (bytes), or None until more is fed."""
        while True:
            start = self.buffer.find(FRAME_MAGIC)
            if start < 0:
                # Keep only a tail that could still begin a magic.
                keep = 0
                for k in range(min(len(FRAME_MAGIC) - 1, len(self.buffer)), 0, -1):
                    if FRAME_MAGIC.startswith(bytes(self.buffer[-k:])):
                        keep = k
                        break
                self._skip(len(self.buffer) - keep)
                return None
            if start > 0:
                self._skip(start)
            if len(self.buffer) < FRAME_HEADER:
                return None
            (length,) = struct.unpack_from("<I", self.buffer, 4)
            if length > self.max_payload:
                self._skip(1)  # not a frame we accept; search past this magic
                continue
            if len(self.buffer) < FRAME_OVERHEAD + length:
                return None
            payload = bytes(self.buffer[FRAME_HEADER:FRAME_HEADER + length])
            (crc,) = struct.unpack_from("<I", self.buffer, FRAME_HEADER + length)
            if crc != (zlib.crc32(payload) & 0xFFFFFFFF):
                self._skip(1)  # a magic inside junk, or a corrupt frame
                continue
            del self.buffer[:FRAME_OVERHEAD + length]
            return payload


def encode_frame(payload):
    return (FRAME_MAGIC + struct.pack("<I", len(payload)) + payload +
            struct.pack("<I", zlib.crc32(payload) & 0xFFFFFFFF))


class ChannelBroken(Exception):
    pass


class Channel:
    """Requests from `in_fd`, replies to `out_fd` (the private copy of the original stdout)."""

    def __init__(self, in_fd, out_fd):
        self.in_fd = in_fd
        self.out_fd = out_fd
        self.decoder = FrameDecoder()

    def send(self, message):
        message = dict(message)
        message["v"] = PROTOCOL_VERSION
        payload = json.dumps(message, separators=(",", ":"), allow_nan=False).encode("utf-8")
        view = memoryview(encode_frame(payload))
        try:
            while view:
                written = os.write(self.out_fd, view)
                view = view[written:]
        except OSError as e:  # EPIPE: the engine is gone
            raise ChannelBroken(str(e))

    def receive(self):
        """The next request as a dict; None at EOF. Junk and bad JSON are skipped."""
        while True:
            payload = self.decoder.next()
            if payload is not None:
                try:
                    message = json.loads(payload.decode("utf-8"))
                except (UnicodeDecodeError, ValueError) as e:
                    log("ignoring a request that is not JSON: %s" % e)
                    continue
                if not isinstance(message, dict):
                    log("ignoring a request that is not a JSON object")
                    continue
                return message
            try:
                data = os.read(self.in_fd, 65536)
            except InterruptedError:
                continue
            except OSError as e:
                raise ChannelBroken(str(e))
            if not data:
                return None
            self.decoder.feed(data)
