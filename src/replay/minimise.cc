// Delta debugging over call sequences. See minimise.h.
#include "replay/minimise.h"

#include <algorithm>
#include <set>
#include <utility>

#include "os/system.h"

namespace convguard::replay {

StatusOr<MinimiseResult> MinimiseSequence(size_t length, const CandidateTest& test,
                                          const std::function<bool()>& budget_left,
                                          const std::function<void(size_t, int64_t)>& on_step) {
  MinimiseResult result;
  std::vector<size_t> current(length);
  for (size_t i = 0; i < length; ++i) current[i] = i;
  std::set<std::vector<size_t>> passed;  // candidates known to pass
  size_t n = 2;
  while (current.size() >= 2) {
    n = std::min(n, current.size());
    bool shrunk = false;
    // Chunk boundaries: n nearly equal parts of `current`.
    for (size_t chunk = 0; chunk < n && !shrunk; ++chunk) {
      const size_t begin = chunk * current.size() / n;
      const size_t end = (chunk + 1) * current.size() / n;
      std::vector<size_t> candidate;
      candidate.reserve(current.size() - (end - begin));
      candidate.insert(candidate.end(), current.begin(), current.begin() + begin);
      candidate.insert(candidate.end(), current.begin() + end, current.end());
      if (candidate.empty() || passed.contains(candidate)) continue;
      if (os::InterruptRequested()) {
        result.interrupted = true;
        result.kept = current;
        return result;
      }
      if (!budget_left()) {
        result.out_of_budget = true;
        result.kept = current;
        return result;
      }
      ++result.tests;
      CG_ASSIGN_OR_RETURN(std::optional<size_t> failed_at, test(candidate));
      if (!failed_at) {
        passed.insert(std::move(candidate));
        continue;
      }
      // Calls after the failing one never ran before the failure: drop them too.
      candidate.resize(std::min(candidate.size(), *failed_at + 1));
      current = std::move(candidate);
      n = std::max<size_t>(n - 1, 2);
      shrunk = true;
      if (on_step) on_step(current.size(), result.tests);
    }
    if (shrunk) continue;
    if (n >= current.size()) {
      result.one_minimal = true;
      break;
    }
    n = std::min(n * 2, current.size());
  }
  if (current.size() < 2) result.one_minimal = true;
  result.kept = std::move(current);
  return result;
}

}  // namespace convguard::replay
