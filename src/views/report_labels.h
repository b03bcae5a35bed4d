// views/report_labels.h — how the report names the parts of a problem, shared by its text
// forms (report.cc) and its HTML page (report_html.cc) so both group alike.
#pragma once

#include <string>

#include "convguard/problem.h"

namespace convguard::report_labels {

// The fields other than c, k, h and w, e.g. "n1 3x3 pad 1 fwd" or
// "n8 3x3 pad 1 stride 2 groups 32 f16 nhwc bwd-data": what stays the same across one
// row of a table or heat map over input size.
std::string RestOf(const Problem& p);

// "HxW" of the input.
std::string SizeOf(const Problem& p);

}  // namespace convguard::report_labels
