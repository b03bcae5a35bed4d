// core/hash.h — the one hash behind every digest convguard prints or stores: stack ids,
// fault-rules digests, sequence digests, cache keys.
//
// 64-bit FNV-1a: simple, stable across builds and machines (ids computed by one version
// are found by the next), and fast enough for keys and whole rules files. Not a
// cryptographic hash: it names things, it does not protect them.
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace convguard {

uint64_t Fnv1a64(std::string_view bytes);
// The same as 16 lower-case hex digits.
std::string Fnv1a64Hex(std::string_view bytes);

}  // namespace convguard
