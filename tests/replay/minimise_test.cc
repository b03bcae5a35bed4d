// Delta debugging over call sequences (src/replay/minimise.h), with the candidate test
// played by predicates over the indices: no processes.
#include "replay/minimise.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <optional>
#include <set>
#include <vector>

namespace convguard::replay {
namespace {

// The sequence's calls, by index: which problem each one runs.
using Calls = std::vector<char>;

// Fails at the first call of `target` that is the `n`-th call or later (like the rule
// `spin when calls >= n && c == target`); the position returned is within the candidate.
CandidateTest HangsAfter(const Calls& calls, size_t n, char target, int64_t* runs = nullptr) {
  return [=](const std::vector<size_t>& candidate) -> StatusOr<std::optional<size_t>> {
    if (runs != nullptr) ++*runs;
    for (size_t i = n - 1; i < candidate.size(); ++i) {
      if (calls[candidate[i]] == target) return std::optional<size_t>(i);
    }
    return std::optional<size_t>();
  };
}

// Fails at the first call of `b` that directly follows a call of `a`.
CandidateTest HangsWhenFollows(const Calls& calls, char a, char b) {
  return [=](const std::vector<size_t>& candidate) -> StatusOr<std::optional<size_t>> {
    for (size_t i = 1; i < candidate.size(); ++i) {
      if (calls[candidate[i - 1]] == a && calls[candidate[i]] == b) {
        return std::optional<size_t>(i);
      }
    }
    return std::optional<size_t>();
  };
}

std::function<bool()> Unlimited() {
  return [] { return true; };
}

Calls Mixed(size_t length) {
  Calls calls;
  const char kinds[] = {'a', 'b', 'c', 'd', 'x'};
  for (size_t i = 0; i < length; ++i) calls.push_back(kinds[(i * 7 + i / 3) % 5]);
  return calls;
}

TEST(MinimiseSequence, AHangAfterTheNthCallShrinksToNCallsEndingWithTheTrigger) {
  for (size_t n : {1u, 2u, 5u, 8u, 13u, 40u}) {
    Calls calls = Mixed(100);
    // The original failure: the first 'x' at or after position n - 1.
    size_t fail = n - 1;
    while (calls[fail] != 'x') ++fail;
    const Calls prefix(calls.begin(), calls.begin() + static_cast<long>(fail) + 1);
    StatusOr<MinimiseResult> m =
        MinimiseSequence(prefix.size(), HangsAfter(prefix, n, 'x'), Unlimited());
    ASSERT_TRUE(m.ok()) << m.status().ToString();
    EXPECT_EQ(m->kept.size(), n) << "n = " << n;
    EXPECT_EQ(prefix[m->kept.back()], 'x') << "n = " << n;
    EXPECT_TRUE(m->one_minimal);
    EXPECT_TRUE(std::is_sorted(m->kept.begin(), m->kept.end()));
    // 1-minimal for real: removing any one call makes it pass.
    for (size_t drop = 0; drop < m->kept.size(); ++drop) {
      std::vector<size_t> smaller = m->kept;
      smaller.erase(smaller.begin() + static_cast<long>(drop));
      EXPECT_FALSE(*HangsAfter(prefix, n, 'x')(smaller)) << "n = " << n << ", drop " << drop;
    }
  }
}

TEST(MinimiseSequence, AHangThatNeedsAThenBShrinksToExactlyAB) {
  // a then b directly: only at positions 57, 58 of 60.
  // a, c, b repeated: every b follows a c, so only the pair planted at 57, 58 matches.
  Calls calls(60, 'c');
  for (size_t i = 0; i < calls.size(); i += 3) calls[i] = 'a';
  for (size_t i = 2; i < calls.size(); i += 3) calls[i] = 'b';
  calls[57] = 'a';
  calls[58] = 'b';
  calls.resize(59);
  // Nothing before 57 has a directly followed by b.
  for (size_t i = 1; i < 57; ++i) ASSERT_FALSE(calls[i - 1] == 'a' && calls[i] == 'b') << i;
  StatusOr<MinimiseResult> m =
      MinimiseSequence(calls.size(), HangsWhenFollows(calls, 'a', 'b'), Unlimited());
  ASSERT_TRUE(m.ok());
  ASSERT_EQ(m->kept.size(), 2u);
  EXPECT_EQ(calls[m->kept[0]], 'a');
  EXPECT_EQ(calls[m->kept[1]], 'b');
  EXPECT_TRUE(m->one_minimal);
}

TEST(MinimiseSequence, ACandidateIsNeverRunTwiceAndTheBudgetStopsWithTheBestSoFar) {
  const Calls calls = Mixed(64);
  size_t fail = 19;
  while (calls[fail] != 'x') ++fail;
  const Calls prefix(calls.begin(), calls.begin() + static_cast<long>(fail) + 1);

  std::set<std::vector<size_t>> seen;
  bool repeated = false;
  CandidateTest inner = HangsAfter(prefix, 20, 'x');
  CandidateTest remembering = [&](const std::vector<size_t>& c) {
    repeated = repeated || !seen.insert(c).second;
    return inner(c);
  };
  StatusOr<MinimiseResult> full = MinimiseSequence(prefix.size(), remembering, Unlimited());
  ASSERT_TRUE(full.ok());
  EXPECT_FALSE(repeated);
  EXPECT_EQ(full->tests, static_cast<int64_t>(seen.size()));

  // Three tests allowed: the result still fails, is not called minimal, and says why.
  int64_t runs = 0;
  int64_t asked = 0;
  StatusOr<MinimiseResult> cut = MinimiseSequence(prefix.size(), HangsAfter(prefix, 20, 'x', &runs),
                                                  [&] { return asked++ < 3; });
  ASSERT_TRUE(cut.ok());
  EXPECT_TRUE(cut->out_of_budget);
  EXPECT_FALSE(cut->one_minimal);
  EXPECT_EQ(runs, 3);
  EXPECT_TRUE(*HangsAfter(prefix, 20, 'x')(cut->kept));
  EXPECT_LT(cut->kept.size(), prefix.size() + 1);
}

TEST(MinimiseSequence, AnErrorOfTheTestIsReturned) {
  CandidateTest broken = [](const std::vector<size_t>&) -> StatusOr<std::optional<size_t>> {
    return Status::Internal("the worker would not start");
  };
  StatusOr<MinimiseResult> m = MinimiseSequence(10, broken, Unlimited());
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("would not start"), std::string::npos);
}

TEST(MinimiseSequence, OneCallIsAlreadyMinimal) {
  int64_t runs = 0;
  CandidateTest never = [&](const std::vector<size_t>&) -> StatusOr<std::optional<size_t>> {
    ++runs;
    return std::optional<size_t>();
  };
  StatusOr<MinimiseResult> m = MinimiseSequence(1, never, Unlimited());
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->kept, std::vector<size_t>{0});
  EXPECT_TRUE(m->one_minimal);
  EXPECT_EQ(runs, 0);
}

}  // namespace
}  // namespace convguard::replay
