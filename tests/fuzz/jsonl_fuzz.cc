// libFuzzer entry point for the JSON Lines import of the store (src/store/jsonl.cc over
// the JSON records of src/core/json_records.cc, into an in-memory SQLite store).
//
// Any bytes are an import to read. The import must not crash, throw or hang, must be all
// or nothing, and what it stores must export and import again as itself. Properties
// checked on every input, against a store that already holds one stack and one verdict
// (so that inputs can meet, and conflict with, stored records):
//   - ImportJsonLines fails only with kInvalidArgument "line N: ...", N a line of the
//     input; after a failure the store exports exactly what it did before;
//   - after a success, the export E reads into a fresh store that exports E again, and
//     importing E into the same store again changes nothing (every verdict identical).
// A broken property aborts with a message, which libFuzzer reports as a crash.
//
// Built by scripts/fuzz.sh; seeds in tests/fuzz/corpus/jsonl/.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "convguard/stack.h"
#include "convguard/status.h"
#include "convguard/store.h"
#include "convguard/verdict.h"
#include "fuzz/fuzz_check.h"

namespace {

using namespace convguard;

constexpr std::string_view kTarget = "jsonl_fuzz";
// Each input costs one or two fresh stores; lines beyond a few dozen add nothing new.
constexpr size_t kMaxInputBytes = 16384;

void Check(bool ok, std::string_view what, std::string_view detail = "") {
  if (!ok) fuzz::Fail(kTarget, what, detail);
}

std::unique_ptr<Store> OpenEmpty() {
  StatusOr<std::unique_ptr<Store>> store = OpenSqliteStore(":memory:");
  Check(store.ok(), "cannot open an in-memory store", store.ok() ? "" : store.status().ToString());
  return std::move(store).value();
}

// A store holding what a real one would: one stack and a verdict of it.
std::unique_ptr<Store> OpenWithOneVerdict() {
  std::unique_ptr<Store> store = OpenEmpty();
  StackFingerprint stack;
  stack.backend = "reference";
  stack.device = "CPU";
  stack.architecture = "x86_64";
  stack.compute_units = 2;
  stack.knobs["OMP_NUM_THREADS"] = "1";
  stack.tool_version = "0.1.0";
  Check(store->PutStack(stack).ok(), "PutStack failed");
  Verdict v;
  v.kind = VerdictKind::kOk;
  v.stack_id = stack.Id();
  v.problem = "n1_c16_h48_w48_k32_r3_s3_p1_u1_d1_g1_f32_nchw_fwd";
  v.algorithm = "direct";
  v.time_ms_min = 1.25;
  v.time_ms_median = 1.5;
  v.check = "sampled:256";
  v.tolerance = 0.0;
  v.attempts = 1;
  v.deadline_ms = 1000;
  v.elapsed_ms = 20.5;
  v.recorded_at = "2026-01-02T03:04:05Z";
  Check(store->PutVerdict(v).ok(), "PutVerdict failed");
  return store;
}

std::string Export(Store& store) {
  StatusOr<std::string> text = store.ExportJsonLines(VerdictFilter{});
  Check(text.ok(), "export failed", text.ok() ? "" : text.status().ToString());
  return *text;
}

// The store every input starts from, and its export. Opening a store is most of the cost
// of an input, so one is kept while inputs fail to import: a failed import leaves the
// store as it was (the property checked first), and the next input then meets exactly
// the store a fresh one would be. An input that imports something changes the store, and
// the next input gets a new one.
struct Base {
  std::unique_ptr<Store> store;
  std::string exported;
};

Base& TheBase() {
  static Base* base = new Base();
  if (base->store == nullptr) {
    base->store = OpenWithOneVerdict();
    base->exported = Export(*base->store);
  }
  return *base;
}

size_t LineCount(std::string_view text) {
  size_t lines = 1;
  for (char ch : text) lines += ch == '\n' ? 1 : 0;
  return lines;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > kMaxInputBytes) return 0;
  const std::string text(reinterpret_cast<const char*>(data), size);

  Base& base = TheBase();
  Store& store = *base.store;
  StatusOr<ImportReport> report = store.ImportJsonLines(text, /*replace=*/false);
  if (!report.ok()) {
    const Status& s = report.status();
    Check(s.code() == StatusCode::kInvalidArgument, "an import fails with another code",
          s.ToString());
    long line = 0, unused = 0;
    Check(fuzz::StartsWithPosition(s.message(), "line ", false, &line, &unused),
          "an import error does not start with 'line N: '", s.message());
    Check(line >= 1 && static_cast<size_t>(line) <= LineCount(text),
          "an import error names a line the input does not have", s.message());
    Check(Export(store) == base.exported, "a failed import changed the store", s.message());
    return 0;
  }

  const std::string exported = Export(store);
  std::unique_ptr<Store> fresh = OpenEmpty();
  StatusOr<ImportReport> again = fresh->ImportJsonLines(exported, /*replace=*/false);
  Check(again.ok(), "an export does not import into a fresh store",
        again.ok() ? "" : again.status().ToString() + "\n" + exported);
  Check(Export(*fresh) == exported, "export, import, export gives another text", exported);

  StatusOr<ImportReport> same = store.ImportJsonLines(exported, /*replace=*/false);
  Check(same.ok(), "an export does not import into its own store",
        same.ok() ? "" : same.status().ToString());
  Check(same->inserted == 0 && same->replaced == 0 && same->kept_existing == 0,
        "importing a store's own export changes verdicts", exported);
  Check(Export(store) == exported, "importing a store's own export changes it", exported);
  base.store.reset();  // changed: the next input gets a new one
  return 0;
}
