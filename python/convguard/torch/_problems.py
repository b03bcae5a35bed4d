"""Convolution problems as convguard writes them (the canonical form), from torch calls.

The canonical form is convguard's own key of every stored verdict
(docs/problem-forms.md): `n1_c16_h64_w64_k32_r3_s3_p1_u1_d1_g1_bias_f32_nchw_fwd`. This
module prints it for a convolution call PyTorch makes, and parses the fully printed form
that the convguard command writes back (every token present, pairs compressed).

Values only; no state; safe from any thread.
"""

import re

DIRECTIONS = ("fwd", "bwd-data", "bwd-weights")
_DTYPES = {"float32": "f32", "float16": "f16", "bfloat16": "bf16"}


class Problem(object):
    """One 2-D convolution problem: sizes of the forward convolution, its direction."""

    __slots__ = ("n", "c", "h", "w", "k", "r", "s", "pad_top", "pad_left", "pad_bottom",
                 "pad_right", "stride_h", "stride_w", "dilation_h", "dilation_w", "groups",
                 "bias", "dtype", "layout", "direction")

    def __init__(self, **fields):
        for name in self.__slots__:
            setattr(self, name, fields.get(name))

    def with_direction(self, direction):
        fields = {name: getattr(self, name) for name in self.__slots__}
        fields["direction"] = direction
        return Problem(**fields)

    @property
    def symmetric(self):
        return self.pad_top == self.pad_bottom and self.pad_left == self.pad_right

    def out_h(self):
        span = self.dilation_h * (self.r - 1) + 1
        return (self.h + self.pad_top + self.pad_bottom - span) // self.stride_h + 1

    def out_w(self):
        span = self.dilation_w * (self.s - 1) + 1
        return (self.w + self.pad_left + self.pad_right - span) // self.stride_w + 1

    def as_torch_runs_it(self):
        """The problem that reaches PyTorch when convguard runs this one: asymmetric pads
        become an explicit zero F.pad and an unpadded convolution (as convguard's
        PyTorch worker probes such problems, and the guard runs them)."""
        if self.symmetric:
            return self
        fields = {name: getattr(self, name) for name in self.__slots__}
        fields.update(h=self.h + self.pad_top + self.pad_bottom,
                      w=self.w + self.pad_left + self.pad_right,
                      pad_top=0, pad_left=0, pad_bottom=0, pad_right=0)
        return Problem(**fields)

    def canonical(self):
        def pair(a, b):
            return "%d" % a if a == b else "%dx%d" % (a, b)

        if self.pad_top == self.pad_bottom == self.pad_left == self.pad_right:
            pads = "%d" % self.pad_top
        elif self.symmetric:
            pads = "%dx%d" % (self.pad_top, self.pad_left)
        else:
            pads = "%dx%dx%dx%d" % (self.pad_top, self.pad_left, self.pad_bottom,
                                    self.pad_right)
        tokens = ["n%d" % self.n, "c%d" % self.c, "h%d" % self.h, "w%d" % self.w,
                  "k%d" % self.k, "r%d" % self.r, "s%d" % self.s, "p" + pads,
                  "u" + pair(self.stride_h, self.stride_w),
                  "d" + pair(self.dilation_h, self.dilation_w), "g%d" % self.groups]
        if self.bias:
            tokens.append("bias")
        tokens += [self.dtype, self.layout, self.direction]
        return "_".join(tokens)

    def __eq__(self, other):
        return isinstance(other, Problem) and self.canonical() == other.canonical()

    def __hash__(self):
        return hash(self.canonical())

    def __repr__(self):
        return "Problem(%s)" % self.canonical()


_TOKEN = re.compile(r"^([a-z]+)(\d+(?:x\d+)*)?$")


def parse_canonical(text):
    """A Problem from the canonical form as convguard prints it (every token present).

    Raises ValueError naming the token that does not fit."""
    fields = {"bias": False, "dtype": "f32", "layout": "nchw", "direction": "fwd",
              "n": 1, "pad_top": 0, "pad_left": 0, "pad_bottom": 0, "pad_right": 0,
              "stride_h": 1, "stride_w": 1, "dilation_h": 1, "dilation_w": 1, "groups": 1}
    for token in text.split("_"):
        if token == "bias":
            fields["bias"] = True
            continue
        if token in ("f32", "f16", "bf16"):
            fields["dtype"] = token
            continue
        if token in ("nchw", "nhwc"):
            fields["layout"] = token
            continue
        if token in DIRECTIONS:
            fields["direction"] = token
            continue
        m = _TOKEN.match(token)
        if not m or m.group(2) is None:
            raise ValueError("problem '%s': token '%s' is not canonical" % (text, token))
        key, values = m.group(1), [int(v) for v in m.group(2).split("x")]
        if key in ("n", "c", "h", "w", "k", "r", "s", "g") and len(values) == 1:
            fields["groups" if key == "g" else key] = values[0]
        elif key == "p" and len(values) in (1, 2, 4):
            if len(values) == 1:
                values = values * 4
            elif len(values) == 2:
                values = values * 2
            (fields["pad_top"], fields["pad_left"], fields["pad_bottom"],
             fields["pad_right"]) = values
        elif key in ("u", "d") and len(values) in (1, 2):
            a, b = values if len(values) == 2 else values * 2
            names = ("stride_h", "stride_w") if key == "u" else ("dilation_h", "dilation_w")
            fields[names[0]], fields[names[1]] = a, b
        else:
            raise ValueError("problem '%s': token '%s' is not canonical" % (text, token))
    for needed in ("c", "h", "k", "r"):
        if needed not in fields:
            raise ValueError("problem '%s' has no '%s' token" % (text, needed))
    fields.setdefault("w", fields["h"])
    fields.setdefault("s", fields["r"])
    return Problem(**fields)


def _pair(value):
    if isinstance(value, (tuple, list)):
        if len(value) == 1:
            return int(value[0]), int(value[0])
        return int(value[0]), int(value[1])
    return int(value), int(value)


def dtype_token(dtype):
    """convguard's data type token for a torch dtype, or None when it has none."""
    return _DTYPES.get(str(dtype).replace("torch.", ""))


def layout_of(tensor):
    """nhwc when the tensor is laid out channels-last (and not also plain contiguous)."""
    import torch

    if tensor.dim() == 4 and not tensor.is_contiguous() and tensor.is_contiguous(
            memory_format=torch.channels_last):
        return "nhwc"
    return "nchw"


def conv2d_problem(x, weight, bias, stride, padding, dilation, groups):
    """The forward Problem of F.conv2d(x, weight, bias, stride, padding, dilation, groups).

    Returns (problem, None), or (None, reason) when convguard cannot express the call yet
    (unbatched input, a data type it does not probe)."""
    if x.dim() != 4:
        return None, "an unbatched (3-D) input; convguard takes N x C x H x W"
    dtype = dtype_token(x.dtype)
    if dtype is None:
        return None, "data type %s (convguard probes float32, float16 and bfloat16)" % (
            str(x.dtype).replace("torch.", ""))
    n, c, h, w = (int(v) for v in x.shape)
    k, _, r, s = (int(v) for v in weight.shape)
    stride_h, stride_w = _pair(stride)
    dilation_h, dilation_w = _pair(dilation)
    if isinstance(padding, str):
        if padding == "valid":
            pads = (0, 0, 0, 0)
        elif padding == "same":
            # PyTorch puts the odd unit of 'same' padding at the end (bottom, right).
            total_h, total_w = dilation_h * (r - 1), dilation_w * (s - 1)
            pads = (total_h // 2, total_w // 2, total_h - total_h // 2, total_w - total_w // 2)
        else:
            return None, "padding '%s'" % padding
    else:
        ph, pw = _pair(padding)
        pads = (ph, pw, ph, pw)
    return Problem(n=n, c=c, h=h, w=w, k=k, r=r, s=s, pad_top=pads[0], pad_left=pads[1],
                   pad_bottom=pads[2], pad_right=pads[3], stride_h=stride_h,
                   stride_w=stride_w, dilation_h=dilation_h, dilation_w=dilation_w,
                   groups=int(groups), bias=bias is not None, dtype=dtype,
                   layout=layout_of(x), direction="fwd"), None
