#include "convguard/tensor.h"

namespace convguard {

TensorIndexer::TensorIndexer(const Problem& p) : p_(p), oh_(p.out_h()), ow_(p.out_w()) {}

int64_t TensorIndexer::input(int64_t n, int64_t c, int64_t h, int64_t w) const {
  if (p_.layout == Layout::kNHWC) return ((n * p_.h + h) * p_.w + w) * p_.c + c;
  return ((n * p_.c + c) * p_.h + h) * p_.w + w;
}

int64_t TensorIndexer::weight(int64_t k, int64_t c_in_group, int64_t r, int64_t s) const {
  const int64_t cg = p_.c_per_group();
  if (p_.layout == Layout::kNHWC) return ((k * p_.r + r) * p_.s + s) * cg + c_in_group;
  return ((k * cg + c_in_group) * p_.r + r) * p_.s + s;
}

int64_t TensorIndexer::output(int64_t n, int64_t k, int64_t oh, int64_t ow) const {
  if (p_.layout == Layout::kNHWC) return ((n * oh_ + oh) * ow_ + ow) * p_.k + k;
  return ((n * p_.k + k) * oh_ + oh) * ow_ + ow;
}

}  // namespace convguard
