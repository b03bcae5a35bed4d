// convguard describe: shows one or more problems in every text form.
#include <cstdio>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "convguard/exit_status.h"
#include "convguard/problem.h"
#include "convguard/text_forms.h"

namespace convguard::cli {
namespace {

constexpr const char* kDescribeUsage =
    "usage: convguard describe [--form FORM] PROBLEM...\n"
    "\n"
    "Prints each PROBLEM in every text form convguard knows, with its output shape,\n"
    "FLOPs and memory. Every PROBLEM is parsed and validated before anything is printed.\n"
    "\n"
    "PROBLEM forms (detected automatically unless --form is given):\n"
    "  canonical      n1_c16_h64_w64_k32_r3_s3_p1_u1_d1_g1_f32_nchw_fwd (defaults may be\n"
    "                 omitted: c16_h64_k32_r3_p1)\n"
    "  miopen-key     16-64-64-3x3-32-64-64-1-1x1-1x1-1x1-0-NCHW-FP32-F\n"
    "  miopen-driver  'conv -n 1 -c 16 -H 64 -W 64 -k 32 -y 3 -x 3 -p 1 -q 1' (one argument)\n"
    "  benchdnn       '--dir=FWD_D mb1ic16ih64oc32oh64kh3ph1' (benchdnn's default\n"
    "                 direction is FWD_B: forward with bias)\n"
    "\n"
    "options:\n"
    "  --form FORM    parse every PROBLEM as FORM (canonical, miopen-key, miopen-driver,\n"
    "                 benchdnn) instead of detecting it\n"
    "  -h, --help     show this help\n"
    "\n"
    "exit status: 0 success, 2 a PROBLEM or option is invalid (nothing is printed to stdout).\n";

std::string HumanCount(double value, const char* unit) {
  const char* prefixes[] = {"", "K", "M", "G", "T", "P"};
  int i = 0;
  while (value >= 1000.0 && i < 5) {
    value /= 1000.0;
    ++i;
  }
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.3g %s%s", value, prefixes[i], unit);
  return buf;
}

std::string HumanBytes(int64_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes);
  int i = 0;
  while (v >= 1024.0 && i < 4) {
    v /= 1024.0;
    ++i;
  }
  char buf[64];
  if (i == 0) {
    std::snprintf(buf, sizeof buf, "%lld B", static_cast<long long>(bytes));
  } else {
    std::snprintf(buf, sizeof buf, "%.2f %s", v, units[i]);
  }
  return buf;
}

std::string OrReason(const StatusOr<std::string>& text) {
  return text.ok() ? *text : "(not expressible: " + text.status().message() + ")";
}

void PrintDescription(const std::string& input, TextForm form, const Problem& p) {
  std::printf("problem      %s\n", ToCanonical(p).c_str());
  std::printf("read as      %s: %s\n", std::string(TextFormName(form)).c_str(), input.c_str());
  std::printf("miopen key   %s\n", OrReason(ToMiopenKey(p)).c_str());
  std::printf("driver       %s\n", OrReason(ToMiopenDriver(p)).c_str());
  std::printf("benchdnn     %s\n", OrReason(ToBenchdnn(p)).c_str());
  std::printf("direction    %s, %s, %s%s\n", std::string(DirectionName(p.direction)).c_str(),
              std::string(DataTypeName(p.dtype)).c_str(), std::string(LayoutName(p.layout)).c_str(),
              p.bias ? ", bias" : "");
  std::printf("input        %lld x %lld x %lld x %lld (n x c x h x w)\n",
              static_cast<long long>(p.n), static_cast<long long>(p.c), static_cast<long long>(p.h),
              static_cast<long long>(p.w));
  std::printf("weights      %lld x %lld x %lld x %lld (k x c/groups x r x s), groups %lld\n",
              static_cast<long long>(p.k), static_cast<long long>(p.c_per_group()),
              static_cast<long long>(p.r), static_cast<long long>(p.s),
              static_cast<long long>(p.groups));
  std::printf("output       %lld x %lld x %lld x %lld (n x k x oh x ow)\n",
              static_cast<long long>(p.n), static_cast<long long>(p.k),
              static_cast<long long>(p.out_h()), static_cast<long long>(p.out_w()));
  std::printf("flops        %lld (%s)\n", static_cast<long long>(p.flops()),
              HumanCount(static_cast<double>(p.flops()), "FLOP").c_str());
  std::printf("memory       input %s, weights %s, output %s%s%s, total %s\n",
              HumanBytes(p.input_bytes()).c_str(), HumanBytes(p.weight_bytes()).c_str(),
              HumanBytes(p.output_bytes()).c_str(), p.bias ? ", bias " : "",
              p.bias ? HumanBytes(p.bias_bytes()).c_str() : "",
              HumanBytes(p.total_bytes()).c_str());
}

StatusOr<TextForm> ParseFormName(const std::string& name) {
  for (TextForm f :
       {TextForm::kCanonical, TextForm::kMiopenKey, TextForm::kMiopenDriver, TextForm::kBenchdnn}) {
    if (name == TextFormName(f)) return f;
  }
  return Status::InvalidArgument("--form '" + name +
                                 "' is not a form (allowed: canonical, miopen-key, "
                                 "miopen-driver, benchdnn)");
}

}  // namespace

int DescribeMain(const Args& args) {
  std::optional<TextForm> forced_form;
  std::vector<std::string> inputs;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "-h" || a == "--help") {
      std::fputs(kDescribeUsage, stdout);
      return kExitOk;
    }
    if (a == "--form" || a.rfind("--form=", 0) == 0) {
      std::string value;
      if (a == "--form") {
        if (i + 1 >= args.size()) {
          std::fprintf(stderr,
                       "convguard describe: --form needs a value (allowed: canonical, "
                       "miopen-key, miopen-driver, benchdnn)\n");
          return kExitBadInput;
        }
        value = args[++i];
      } else {
        value = a.substr(7);
      }
      StatusOr<TextForm> form = ParseFormName(value);
      if (!form.ok()) {
        std::fprintf(stderr, "convguard describe: %s\n", form.status().message().c_str());
        return kExitBadInput;
      }
      forced_form = *form;
      continue;
    }
    // A benchdnn problem may begin with its own --dir=/--dt= options inside one argument,
    // but a separate argument starting with "--" is ours and unknown.
    if (a.rfind("--", 0) == 0 && a.find(' ') == std::string::npos) {
      std::fprintf(stderr, "convguard describe: unknown option '%s' (allowed: --form, --help)\n",
                   a.c_str());
      return kExitBadInput;
    }
    inputs.push_back(a);
  }
  if (inputs.empty()) {
    std::fprintf(stderr, "convguard describe: no PROBLEM given; see 'convguard describe --help'\n");
    return kExitBadInput;
  }

  // Parse and validate everything before printing anything.
  std::vector<std::pair<TextForm, Problem>> parsed;
  for (const std::string& input : inputs) {
    const TextForm form = forced_form ? *forced_form : DetectTextForm(input);
    StatusOr<Problem> p = ParseProblem(input, form);
    if (!p.ok()) {
      std::fprintf(stderr, "convguard describe: '%s': %s\n", input.c_str(),
                   p.status().message().c_str());
      return kExitBadInput;
    }
    parsed.emplace_back(form, *p);
  }
  for (size_t i = 0; i < parsed.size(); ++i) {
    if (i > 0) std::printf("\n");
    PrintDescription(inputs[i], parsed[i].first, parsed[i].second);
  }
  return kExitOk;
}

}  // namespace convguard::cli
