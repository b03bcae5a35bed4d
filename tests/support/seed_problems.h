// support/seed_problems.h — the seed report's convolution, shared by the tests.
#pragma once

#include <cstdint>

#include "convguard/problem.h"

namespace convguard::testing_support {

// nn.Conv2d(c, k, 3, padding=1) on an n=1 input of hw x hw, as in the seed report.
inline Problem SeedConv(int64_t c, int64_t k, int64_t hw) {
  Problem p;
  p.c = c;
  p.k = k;
  p.h = p.w = hw;
  p.r = p.s = 3;
  p.pad_top = p.pad_left = p.pad_bottom = p.pad_right = 1;
  return p;
}

}  // namespace convguard::testing_support
