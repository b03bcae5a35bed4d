// store/pg_conninfo.h — telling a libpq connection string from a file path, and keeping
// its password out of every message. Pure text: needs no libpq, so that a build without
// PostgreSQL support still recognises (and refuses) a connection string.
//
// Thread-safety: pure functions.
#pragma once

#include <string>
#include <string_view>

namespace convguard::pg {

// Whether `target` is a libpq connection string rather than a file path: a URI starting
// with postgresql:// or postgres://, or keyword=value pairs (anything containing '=').
bool IsConnectionString(std::string_view target);

// `text` with every secret of `conninfo` (its password: a URI's user:password@ or
// ?password=, or a password=... pair; as written, unquoted and percent-decoded) replaced
// by "***".
std::string ScrubSecrets(std::string text, std::string_view conninfo);

// `conninfo` with its password replaced by "***", for naming a string that libpq could
// not parse.
std::string RedactConnectionString(std::string_view conninfo);

}  // namespace convguard::pg
