// backends/inject/rules_expression.cc — the predicate vocabulary's tables and the
// evaluation of a predicate's tree for one problem.
//
// Thread-safety: the tables are constants and evaluation only reads the tree, so a
// Predicate may be matched from several threads at once.
#include "backends/inject/rules_expression.h"

#include <algorithm>
#include <array>
#include <limits>
#include <utility>

namespace convguard::inject {
namespace rules_internal {

std::string_view TypeName(Type t) {
  switch (t) {
    case Type::kInt: return "an integer";
    case Type::kDataType: return "a dtype";
    case Type::kLayout: return "a layout";
    case Type::kDirection: return "a direction";
    case Type::kString: return "a string";
  }
  return "?";
}

std::string_view TypeValues(Type t) {
  switch (t) {
    case Type::kInt: return "an integer expression";
    case Type::kDataType: return "f32, f16 or bf16";
    case Type::kLayout: return "nchw or nhwc";
    case Type::kDirection: return "fwd, bwd_data or bwd_weights";
    case Type::kString: return "algo or a \"string\"";
  }
  return "?";
}

namespace {

Int Add(Int a, Int b) {
  int64_t r;
  if (!a || !b || __builtin_add_overflow(*a, *b, &r)) return std::nullopt;
  return r;
}
Int Sub(Int a, Int b) {
  int64_t r;
  if (!a || !b || __builtin_sub_overflow(*a, *b, &r)) return std::nullopt;
  return r;
}
Int Mul(Int a, Int b) {
  int64_t r;
  if (!a || !b || __builtin_mul_overflow(*a, *b, &r)) return std::nullopt;
  return r;
}
Int Div(Int a, Int b) {
  if (!a || !b || *b == 0) return std::nullopt;
  if (*a == std::numeric_limits<int64_t>::min() && *b == -1) return std::nullopt;
  return *a / *b;  // truncates toward zero, as in C
}
Int Mod(Int a, Int b) {
  if (!a || !b || *b == 0) return std::nullopt;
  if (*a == std::numeric_limits<int64_t>::min() && *b == -1) return std::nullopt;
  return *a % *b;  // takes the sign of the dividend, as in C
}

// Output size along one axis, computed like Problem::out_h() but defined for any field
// values (MatchFault may see a problem that was never validated).
Int OutSize(int64_t in, int64_t pad_a, int64_t pad_b, int64_t kernel, int64_t dilation,
            int64_t stride) {
  if (stride <= 0) return std::nullopt;
  const Int span = Add(Mul(Sub(kernel, 1), dilation), 1);
  return Add(Div(Sub(Add(Add(in, pad_a), pad_b), span), stride), 1);
}

constexpr std::array kFields = {
    FieldInfo{"n", Type::kInt, [](const Problem& p) -> Int { return p.n; }},
    FieldInfo{"c", Type::kInt, [](const Problem& p) -> Int { return p.c; }},
    FieldInfo{"h", Type::kInt, [](const Problem& p) -> Int { return p.h; }},
    FieldInfo{"w", Type::kInt, [](const Problem& p) -> Int { return p.w; }},
    FieldInfo{"k", Type::kInt, [](const Problem& p) -> Int { return p.k; }},
    FieldInfo{"r", Type::kInt, [](const Problem& p) -> Int { return p.r; }},
    FieldInfo{"s", Type::kInt, [](const Problem& p) -> Int { return p.s; }},
    FieldInfo{"oh", Type::kInt,
              [](const Problem& p) -> Int {
                return OutSize(p.h, p.pad_top, p.pad_bottom, p.r, p.dilation_h, p.stride_h);
              }},
    FieldInfo{"ow", Type::kInt,
              [](const Problem& p) -> Int {
                return OutSize(p.w, p.pad_left, p.pad_right, p.s, p.dilation_w, p.stride_w);
              }},
    FieldInfo{"pad_top", Type::kInt, [](const Problem& p) -> Int { return p.pad_top; }},
    FieldInfo{"pad_left", Type::kInt, [](const Problem& p) -> Int { return p.pad_left; }},
    FieldInfo{"pad_bottom", Type::kInt, [](const Problem& p) -> Int { return p.pad_bottom; }},
    FieldInfo{"pad_right", Type::kInt, [](const Problem& p) -> Int { return p.pad_right; }},
    FieldInfo{"stride_h", Type::kInt, [](const Problem& p) -> Int { return p.stride_h; }},
    FieldInfo{"stride_w", Type::kInt, [](const Problem& p) -> Int { return p.stride_w; }},
    FieldInfo{"dilation_h", Type::kInt, [](const Problem& p) -> Int { return p.dilation_h; }},
    FieldInfo{"dilation_w", Type::kInt, [](const Problem& p) -> Int { return p.dilation_w; }},
    FieldInfo{"groups", Type::kInt, [](const Problem& p) -> Int { return p.groups; }},
    FieldInfo{"c_per_group", Type::kInt,
              [](const Problem& p) -> Int { return Div(p.c, p.groups); }},
    FieldInfo{"k_per_group", Type::kInt,
              [](const Problem& p) -> Int { return Div(p.k, p.groups); }},
    FieldInfo{"bias", Type::kInt, [](const Problem& p) -> Int { return p.bias ? 1 : 0; }},
    FieldInfo{"dtype", Type::kDataType,
              [](const Problem& p) -> Int { return static_cast<int64_t>(p.dtype); }},
    FieldInfo{"layout", Type::kLayout,
              [](const Problem& p) -> Int { return static_cast<int64_t>(p.layout); }},
    FieldInfo{"direction", Type::kDirection,
              [](const Problem& p) -> Int { return static_cast<int64_t>(p.direction); }},
};

constexpr std::array kConstants = {
    ConstantInfo{"f32", Type::kDataType, static_cast<int64_t>(DataType::kF32)},
    ConstantInfo{"f16", Type::kDataType, static_cast<int64_t>(DataType::kF16)},
    ConstantInfo{"bf16", Type::kDataType, static_cast<int64_t>(DataType::kBF16)},
    ConstantInfo{"nchw", Type::kLayout, static_cast<int64_t>(Layout::kNCHW)},
    ConstantInfo{"nhwc", Type::kLayout, static_cast<int64_t>(Layout::kNHWC)},
    ConstantInfo{"fwd", Type::kDirection, static_cast<int64_t>(Direction::kForward)},
    ConstantInfo{"bwd_data", Type::kDirection, static_cast<int64_t>(Direction::kBackwardData)},
    ConstantInfo{"bwd_weights", Type::kDirection,
                 static_cast<int64_t>(Direction::kBackwardWeights)},
    ConstantInfo{"always", Type::kInt, 1},
};

constexpr std::array kFunctions = {
    FunctionInfo{"pow2", Op::kPow2, 1},
    FunctionInfo{"min", Op::kMin, 2},
    FunctionInfo{"max", Op::kMax, 2},
};

// What a predicate reads besides its own tree. An identifier that reads something new
// about the evaluating process gets a member here, filled by Predicate::Matches, rather
// than another parameter threaded through every recursive call.
struct Inputs {
  const Problem& problem;
  std::string_view algorithm;
  int64_t device;  // which of the engine's devices the process serves (see FaultRules)
  const CallHistory& history;
};

// A string operand's value; nullopt (undefined) for `prev.algo` on a first call.
std::optional<std::string_view> StringValue(const Node& n, const Inputs& in) {
  switch (n.op) {
    case Op::kAlgo: return in.algorithm;
    case Op::kPrevAlgo:
      if (in.history.previous == nullptr) return std::nullopt;
      return in.history.previous_algorithm;
    default: return std::string_view(n.str);
  }
}

Int Evaluate(const Node& n, const Inputs& in) {
  switch (n.op) {
    case Op::kConst: return n.value;
    case Op::kField: return n.get(in.problem);
    case Op::kDevice: return in.device;
    case Op::kCalls: return in.history.calls;
    case Op::kPrevField:
      if (in.history.previous == nullptr) return std::nullopt;  // the first call
      return n.get(*in.history.previous);
    case Op::kAlgo:
    case Op::kPrevAlgo:
    case Op::kString: return std::nullopt;  // never evaluated as an integer (typed out)
    case Op::kNot: {
      const Int v = Evaluate(*n.a, in);
      if (!v) return std::nullopt;
      return *v == 0 ? 1 : 0;
    }
    case Op::kNeg: return Sub(0, Evaluate(*n.a, in));
    case Op::kAdd: return Add(Evaluate(*n.a, in), Evaluate(*n.b, in));
    case Op::kSub: return Sub(Evaluate(*n.a, in), Evaluate(*n.b, in));
    case Op::kMul: return Mul(Evaluate(*n.a, in), Evaluate(*n.b, in));
    case Op::kDiv: return Div(Evaluate(*n.a, in), Evaluate(*n.b, in));
    case Op::kMod: return Mod(Evaluate(*n.a, in), Evaluate(*n.b, in));
    case Op::kEq:
    case Op::kNe: {
      bool equal;
      if (n.a->type == Type::kString) {
        const std::optional<std::string_view> x = StringValue(*n.a, in);
        const std::optional<std::string_view> y = StringValue(*n.b, in);
        if (!x || !y) return std::nullopt;
        equal = *x == *y;
      } else {
        const Int x = Evaluate(*n.a, in);
        const Int y = Evaluate(*n.b, in);
        if (!x || !y) return std::nullopt;
        equal = *x == *y;
      }
      return (equal == (n.op == Op::kEq)) ? 1 : 0;
    }
    case Op::kLt:
    case Op::kLe:
    case Op::kGt:
    case Op::kGe: {
      const Int x = Evaluate(*n.a, in);
      const Int y = Evaluate(*n.b, in);
      if (!x || !y) return std::nullopt;
      switch (n.op) {
        case Op::kLt: return *x < *y ? 1 : 0;
        case Op::kLe: return *x <= *y ? 1 : 0;
        case Op::kGt: return *x > *y ? 1 : 0;
        default: return *x >= *y ? 1 : 0;
      }
    }
    case Op::kAnd: {
      const Int x = Evaluate(*n.a, in);
      if (!x) return std::nullopt;
      if (*x == 0) return 0;
      const Int y = Evaluate(*n.b, in);
      if (!y) return std::nullopt;
      return *y != 0 ? 1 : 0;
    }
    case Op::kOr: {
      const Int x = Evaluate(*n.a, in);
      if (!x) return std::nullopt;
      if (*x != 0) return 1;
      const Int y = Evaluate(*n.b, in);
      if (!y) return std::nullopt;
      return *y != 0 ? 1 : 0;
    }
    case Op::kPow2: {
      const Int x = Evaluate(*n.a, in);
      if (!x) return std::nullopt;
      return (*x > 0 && (*x & (*x - 1)) == 0) ? 1 : 0;
    }
    case Op::kMin:
    case Op::kMax: {
      const Int x = Evaluate(*n.a, in);
      const Int y = Evaluate(*n.b, in);
      if (!x || !y) return std::nullopt;
      return n.op == Op::kMin ? std::min(*x, *y) : std::max(*x, *y);
    }
  }
  return std::nullopt;
}

// Whether some node of the tree under `n` satisfies `leaf`.
template <typename Leaf>
bool Reads(const Node* n, Leaf leaf) {
  if (n == nullptr) return false;
  return leaf(*n) || Reads(n->a.get(), leaf) || Reads(n->b.get(), leaf);
}

bool ReadsDevice(const Node* n) {
  return Reads(n, [](const Node& x) { return x.op == Op::kDevice; });
}

bool ReadsHistory(const Node* n) {
  return Reads(n, [](const Node& x) {
    return x.op == Op::kCalls || x.op == Op::kPrevField || x.op == Op::kPrevAlgo;
  });
}

}  // namespace

std::span<const FieldInfo> Fields() { return kFields; }
std::span<const ConstantInfo> Constants() { return kConstants; }
std::span<const FunctionInfo> Functions() { return kFunctions; }

}  // namespace rules_internal

Predicate::Predicate(std::shared_ptr<const Node> root, std::string text)
    : root_(std::move(root)),
      text_(std::move(text)),
      uses_device_(rules_internal::ReadsDevice(root_.get())),
      uses_history_(rules_internal::ReadsHistory(root_.get())) {}

bool Predicate::Matches(const Problem& p, std::string_view algorithm, int device,
                        const CallHistory& history) const {
  if (root_ == nullptr) return false;
  const rules_internal::Int v = rules_internal::Evaluate(*root_, {p, algorithm, device, history});
  return v.has_value() && *v != 0;
}

}  // namespace convguard::inject
