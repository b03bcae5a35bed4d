// Exit statuses shared by every subcommand.
#pragma once

namespace convguard::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;   // the request was valid but could not be carried out
inline constexpr int kExitBadInput = 2;  // bad arguments or input; nothing was done

}  // namespace convguard::cli
