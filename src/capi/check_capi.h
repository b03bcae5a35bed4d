// capi/check_capi.h — convguard's filling, checking and fault rules behind a small C API.
//
// Workers not written in C++ (python/convguard_torch_worker.py, loaded with ctypes) must
// fill and check exactly as `convguard worker` does, or their verdicts would not be
// comparable. Rather than a second implementation, they call this library
// (libconvguard_check.so), built from the same sources as the tool: FillExact,
// PoisonWithNaN, ChooseSamplePoints, ReferenceValuesAt, ReferenceConvolution,
// CompareSampled/CompareFull and DefaultTolerance(p, exact_filled = true), with the
// outcome mapping of src/worker/worker_main.cc. The same goes for fault injection
// (docs/fault-injection.md): a worker given `--inject FILE` parses the rules and matches
// problems through the cg_rules_* functions below, which call the parser and matcher
// that `convguard worker --inject` uses (src/backends/inject/), so a rules file means the
// same thing, and gives the same stack digest, whichever worker reads it.
//
// Conventions:
//   - `canonical` is a problem in the canonical text form (docs/problem-forms.md); other
//     forms are rejected, as the worker protocol only carries canonical text.
//   - Buffers are float32 in the layouts of include/convguard/tensor.h (NCHW: x[n][c][h][w],
//     w[k][c/g][r][s], y[n][k][oh][ow]; NHWC: x[n][h][w][c], w[k][r][s][c/g],
//     y[n][oh][ow][k]; bias b[k]), sized by cg_problem_sizes.
//   - Every function returns CG_OK (0) or one of the CG_E* codes below; on failure a
//     NUL-terminated message is written to `err` (truncated to errlen - 1 bytes; `err`
//     may be NULL when errlen is 0). No C++ exception ever leaves this library.
//   - Thread-safety: every function is reentrant. A cg_probe session (below) is used by
//     one thread at a time.
#pragma once

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// Bumped when a signature or the meaning of a result changes, or functions are added
// that callers of the new version rely on; callers check it. 2: the cg_rules_* functions
// and cg_corrupt_tail. 3: cg_rules_match and cg_rules_apply_fingerprint take the device
// the calling worker serves (a rule's `device`). 4: cg_rules_match_call, which also takes
// the worker's call history (a rule's `calls` and `prev.*`).
#define CG_CAPI_VERSION 4

#define CG_OK 0
#define CG_EINVAL 1     // bad problem text, bad argument (NULL buffer, unknown mode, ...)
#define CG_ENOMEM 2     // host memory for the float64 tensors could not be allocated
#define CG_ETOOSMALL 3  // the output text buffer is too small (the message says how big)
#define CG_EINTERNAL 4  // anything else (a bug): the message says what

// CG_CAPI_VERSION of the library actually loaded.
int cg_capi_version(void);

// convguard's version (CONVGUARD_VERSION of the build); a static string.
const char* cg_tool_version(void);

// Element counts of the input (x/dx), weight (w/dw), output (y/dy) and bias tensors of
// `canonical`, in that order (bias: 0 without bias).
int cg_problem_sizes(const char* canonical, int64_t out_sizes[4], char* err, size_t errlen);

// The parsed problem as one JSON object, so that callers never parse problem text
// themselves: {"canonical", "n", "c", "h", "w", "k", "r", "s", "pad_top", "pad_left",
// "pad_bottom", "pad_right", "stride_h", "stride_w", "dilation_h", "dilation_w", "groups",
// "bias" (bool), "dtype" ("f32"|"f16"|"bf16"), "layout" ("nchw"|"nhwc"), "direction"
// ("fwd"|"bwd-data"|"bwd-weights"), "out_h", "out_w", "input_elements",
// "weight_elements", "output_elements", "bias_elements", "result" ("input"|"weight"|
// "output": the tensor the direction computes), "macs"}.
// On failure `json_out` holds the message instead (same truncation rule as `err`).
int cg_problem_json(const char* canonical, char* json_out, size_t json_len);

// Fills the operands the direction reads with FillExact(p, seed)'s values converted to
// float32 (exact: they are small integers), zeroes the operands it does not read, and
// poisons the tensor the direction computes with quiet NaN, so an element the backend
// never writes shows as non-finite. `bias` may be NULL when the problem has no bias;
// the other three must not be NULL.
int cg_fill(const char* canonical, uint64_t seed, float* input, float* weight, float* output,
            float* bias, char* err, size_t errlen);

// Checks `result` (the tensor the direction computed, `result_elements` float32 values in
// the problem's layout) against the float64 reference of the exact operands, which are
// regenerated from `seed` (the seed given to cg_fill). `mode` is "none", "sampled"
// (ChooseSamplePoints(p, sample_points, seed) and ReferenceValuesAt) or "full"
// (ReferenceConvolution). Writes one JSON object to `json_out`:
//   {"outcome": "ok"|"wrong"|"mistrusted", "check": "none"|"sampled:N"|"full:N",
//    "tolerance", "mismatches", "non_finite", "max_abs_error", "max_rel_error", "message"}
// (`tolerance`: 0, the exact comparison the filling allows; -1 when nothing was checked)
// with the mapping of `convguard worker`: non-finite or mismatched elements -> wrong
// (message: the comparison's summary), else too few nonzero reference values ->
// mistrusted, else ok. Errors are finite: they are computed over finite results.
// On failure `json_out` holds the message instead. 4096 bytes always suffice for the
// JSON of a successful check.
int cg_check(const char* canonical, uint64_t seed, const float* result, int64_t result_elements,
             const char* mode, int64_t sample_points, char* json_out, size_t json_len);

// Sessions: cg_fill and cg_check's work, keeping the float64 exact operands from filling
// to checking as `convguard worker` does, so that a check costs only the reference and
// not a second FillExact (the engine's check-stage deadline allows for the reference
// alone). A worker opens one session per probe.
// Memory: one float64 copy of every tensor, until cg_probe_close.
typedef struct cg_probe cg_probe;

// Parses `canonical` and computes FillExact(p, seed). NULL on failure (message in err).
cg_probe* cg_probe_open(const char* canonical, uint64_t seed, char* err, size_t errlen);
// As cg_fill, from the session's operands.
int cg_probe_fill(cg_probe* probe, float* input, float* weight, float* output, float* bias,
                  char* err, size_t errlen);
// As cg_check, against the session's operands (seed: the session's).
int cg_probe_check(cg_probe* probe, const float* result, int64_t result_elements, const char* mode,
                   int64_t sample_points, char* json_out, size_t json_len);
// Frees the session; NULL is allowed.
void cg_probe_close(cg_probe* probe);

// ---- fault injection (docs/fault-injection.md) ---------------------------------------
// A parsed rules file. Immutable once parsed: matching may run from several threads.
typedef struct cg_rules cg_rules;

// Parses the whole text of a rules file (`text_len` bytes, which need not end in NUL)
// with convguard's own parser (inject::ParseFaultRules). `origin` names the file in
// messages and in "<origin>:<line>" (`convguard worker --inject FILE` uses FILE as
// given). NULL on failure, with "<origin>:<line>:<column>: ..." in `err`.
cg_rules* cg_rules_parse(const char* text, size_t text_len, const char* origin, char* err,
                         size_t errlen);

// What the rules are: {"origin", "digest" (FNV-1a of the whole text, 16 hex digits),
// "emulation" ("" without an `emulation:` line), "rules" (how many)}.
int cg_rules_json(const cg_rules* rules, char* json_out, size_t json_len);

// The fault that InjectingBackend::Run would perform for (canonical, algorithm): the
// first rule whose predicate matches (FaultRules::Match). Writes {"matched": false}, or
//   {"matched": true, "kind": "spin"|"block"|"segv"|"abort"|"exit"|"wrong"|"error"|
//    "slow"|"oom"|"unsupported", "fatal" (spin, block, segv, abort, exit),
//    "fault" (as written: "wrong(0.25)"), "wrong_fraction", "slow_ms", "exit_code",
//    "message" (error/unsupported text), "line", "where" ("<origin>:<line>"),
//    "rule" ("<fault> when <predicate>"),
//    "announce" (the stderr line a C++ worker writes before a fatal fault, no newline),
//    "injected_by" (" [injected by <where>]", what C++ appends to error, unsupported
//    and oom messages), "mark" ("[injected <fault> by <where>]", what C++ appends,
//    after a space, to the implementation string of wrong and slow)}.
// `algorithm` is the resolved name (never empty: a probe without one uses the backend's
// first algorithm, as the C++ worker does). `device` is what a rule's `device` reads: the
// index the engine gave the worker in CONVGUARD_DEVICE_INDEX (0 when unset); >= 0.
// It matches as for the first call of a fresh process: `calls` is 1 and every `prev.*` is
// undefined (see cg_rules_match_call).
int cg_rules_match(const cg_rules* rules, const char* canonical, const char* algorithm, int device,
                   char* json_out, size_t json_len);

// As cg_rules_match, for the call the worker is about to make, given its call history
// (docs/fault-injection.md, "Sequence faults"): `calls` is this call's position among the
// worker's convolution calls (the run stages it has begun), counting from 1 and including
// this one; `previous_canonical` and `previous_algorithm` are the problem (canonical text)
// and resolved algorithm of the call before it. NULL or "" for `previous_canonical` means
// there is none (every `prev.*` is undefined, so a rule reading one does not match), which
// must be so exactly when `calls` is 1; with a previous call, `previous_algorithm` must not
// be NULL or empty. The worker itself counts: an injected `unsupported` answers before the
// run stage, so the match for it is made with the view of the next call, and only a run
// stage that begins counts (as InjectingBackend::Run counts).
int cg_rules_match_call(const cg_rules* rules, const char* canonical, const char* algorithm,
                        int device, int64_t calls, const char* previous_canonical,
                        const char* previous_algorithm, char* json_out, size_t json_len);

// Applies the rules to a stack fingerprint as InjectingBackend::Fingerprint does
// (FaultRules::ApplyTo: `stack.*` overrides, emulation text, fault_rules_digest, chained
// with the ones already there). In and out are the fingerprint's JSON object as the
// worker protocol's hello carries it (docs/store.md); the input is read strictly.
// `device` as for cg_rules_match: rules that read `device` give each device its own digest.
int cg_rules_apply_fingerprint(const cg_rules* rules, const char* fingerprint_json, int device,
                               char* json_out, size_t json_len);

// Frees parsed rules; NULL is allowed.
void cg_rules_close(cg_rules* rules);

// What `wrong(fraction)` does to the tensor a direction produces (inject::CorruptTail):
// the last ceil(fraction * elements) values, in memory order (at least one), change from
// v to v + 1 + |v|. `data` holds `elements` float32 values; fraction in (0, 1].
int cg_corrupt_tail(float* data, int64_t elements, double fraction, char* err, size_t errlen);

#ifdef __cplusplus
}  // extern "C"
#endif
