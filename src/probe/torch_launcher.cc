#include "probe/torch_launcher.h"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <span>
#include <system_error>
#include <tuple>

#include "os/clock.h"
#include "os/pipe_io.h"
#include "os/process.h"
#include "os/system.h"
#include "probe/identity_cache.h"

#ifndef CONVGUARD_PYTHON_DIR
#error "CONVGUARD_PYTHON_DIR must be defined (src/capi/capi.cmake sets it)"
#endif
#ifndef CONVGUARD_CHECKLIB_PATH
#error "CONVGUARD_CHECKLIB_PATH must be defined (src/capi/capi.cmake sets it)"
#endif

namespace convguard {
namespace {

namespace fs = std::filesystem;

constexpr auto kImportTimeout = std::chrono::seconds(60);
constexpr size_t kMaxCapturedBytes = 16 * 1024;

// Prints "OK <version> <torch/__init__.py path>" or "ERR <exception>: <text>" as its last line.
// Warnings and whatever torch writes to stdout at import come before it; stderr goes to /dev/null.
constexpr const char* kImportCheck =
    "import sys\n"
    "try:\n"
    "    import torch\n"
    "except BaseException as e:\n"
    "    sys.stdout.write('\\nERR %s: %s\\n' % (type(e).__name__, e))\n"
    "    sys.exit(1)\n"
    "sys.stdout.write('\\nOK %s %s\\n' % (torch.__version__, torch.__file__))\n";

std::string EnvOr(const char* name, const std::string& fallback) {
  std::optional<std::string> v = os::GetEnv(name);
  return v && !v->empty() ? *v : fallback;
}

bool IsExecutableFile(const fs::path& p) {
  std::error_code ec;
  const fs::file_status st = fs::status(p, ec);
  if (ec || !fs::is_regular_file(st)) return false;
  const fs::perms exec = fs::perms::owner_exec | fs::perms::group_exec | fs::perms::others_exec;
  return (st.permissions() & exec) != fs::perms::none;
}

// A name with a '/' is a path; a bare name is looked up on $PATH like execvp would.
std::optional<std::string> ResolveOnPath(const std::string& name) {
  if (name.find('/') != std::string::npos) {
    if (!IsExecutableFile(name)) return std::nullopt;
    std::error_code ec;
    fs::path abs = fs::absolute(name, ec);
    return ec ? name : abs.lexically_normal().string();
  }
  const std::string path = EnvOr("PATH", "/bin:/usr/bin");
  size_t begin = 0;
  for (;;) {
    const size_t end = std::min(path.find(':', begin), path.size());
    std::string dir = path.substr(begin, end - begin);
    if (dir.empty()) dir = ".";
    const fs::path candidate = fs::path(dir) / name;
    if (IsExecutableFile(candidate)) {
      std::error_code ec;
      fs::path abs = fs::absolute(candidate, ec);
      return ec ? candidate.string() : abs.lexically_normal().string();
    }
    if (end == path.size()) break;
    begin = end + 1;
  }
  return std::nullopt;
}

// The last non-empty line of `text`.
std::string LastLine(const std::string& text) {
  size_t end = text.find_last_not_of("\r\n");
  if (end == std::string::npos) return "";
  const size_t begin = text.rfind('\n', end);
  return text.substr(begin == std::string::npos ? 0 : begin + 1,
                     end + 1 - (begin == std::string::npos ? 0 : begin + 1));
}

// Runs `python -c "import torch"`; OK with "<torch's version> <its __init__.py>", or the
// reason it failed.
StatusOr<std::string> CheckTorchImport(const std::string& python) {
  os::SpawnOptions options;
  options.argv = {python, "-c", kImportCheck};
  options.stderr_mode = os::StderrMode::kDevNull;
  options.die_with_parent = true;
  CG_ASSIGN_OR_RETURN(os::ChildProcess child, os::SpawnChild(options));
  child.CloseStdin();

  const os::Deadline deadline = os::Deadline::After(kImportTimeout);
  std::string out;
  uint8_t buf[4096];
  for (;;) {
    StatusOr<os::IoResult> r = os::ReadSome(child.stdout_fd(), buf, deadline);
    if (!r.ok()) break;  // the exit status below tells what happened
    if (r->eof()) break;
    if (r->timed_out()) {
      (void)child.KillAndReap(std::chrono::seconds(2));
      return Status::NotFound("'import torch' did not finish within " +
                              os::FormatDuration(kImportTimeout));
    }
    out.append(reinterpret_cast<const char*>(buf), r->bytes);
    if (out.size() > kMaxCapturedBytes) out.erase(0, out.size() - kMaxCapturedBytes);
  }
  const os::Duration left = std::max(deadline.Remaining(), os::Duration(std::chrono::seconds(1)));
  CG_ASSIGN_OR_RETURN(os::ExitInfo exit, child.WaitExit(left));
  if (exit.running()) {
    (void)child.KillAndReap(std::chrono::seconds(2));
    return Status::NotFound("'import torch' did not finish within " +
                            os::FormatDuration(kImportTimeout));
  }
  const std::string last = LastLine(out);
  if (exit.exited() && exit.exit_code == 0 && last.starts_with("OK ")) return last.substr(3);
  if (last.starts_with("ERR ")) return Status::NotFound(last.substr(4));
  return Status::NotFound("'import torch' " + exit.ToString());
}

// The interpreters to try, in order, as given (not yet resolved).
std::vector<std::string> CandidateNames(const std::string& python_override) {
  if (!python_override.empty()) return {python_override};
  std::vector<std::string> names;
  if (std::optional<std::string> env = os::GetEnv("CONVGUARD_PYTHON"); env && !env->empty()) {
    names.push_back(*env);
  }
  names.push_back("/usr/bin/python3");
  names.push_back("python3");
  return names;
}

struct SearchResult {
  std::string python;      // empty when none was found
  std::string tried;       // "PY (reason); PY (reason)"
  std::string torch_init;  // torch/__init__.py of the one found
};

SearchResult Search(const std::string& python_override) {
  SearchResult result;
  // Paths already tried, as written: NOT resolved through symlinks, because a virtual
  // environment's python3 is a symlink to the system interpreter and differs from it
  // only by where it was started from (its site-packages).
  std::vector<std::string> seen;
  for (const std::string& name : CandidateNames(python_override)) {
    std::optional<std::string> path = ResolveOnPath(name);
    const std::string sep = result.tried.empty() ? "" : "; ";
    if (!path) {
      result.tried +=
          sep + name + " (" +
          (name.find('/') != std::string::npos ? "no such executable" : "not found on PATH") + ")";
      continue;
    }
    if (std::find(seen.begin(), seen.end(), *path) != seen.end()) continue;
    seen.push_back(*path);
    StatusOr<std::string> version = CheckTorchImport(*path);
    if (version.ok()) {
      result.python = *path;
      if (size_t space = version->find(' '); space != std::string::npos) {
        result.torch_init = version->substr(space + 1);
      }
      return result;
    }
    result.tried += sep + *path + " (" + version.status().message() + ")";
  }
  return result;
}

// A search that found an interpreter, remembered across processes in the identity cache:
// valid while the interpreter (and what its path resolves to) and torch's __init__.py and
// version.py are unchanged, on this boot with this environment ($PATH and
// $CONVGUARD_PYTHON among it). A failed search is not remembered: installing torch is
// then noticed at once.
SearchResult RememberedSearch(const std::string& python_override, const std::string& cache_dir) {
  const probe::IdentityCache remembered(cache_dir);
  const std::string key = "override " + python_override + "\n" + probe::MachineKey();
  if (auto value = remembered.Find("torch-python", key);
      value && value->is_object() && (*value)["python"].is_string()) {
    return SearchResult{(*value)["python"].get<std::string>(), "", ""};
  }
  SearchResult found = Search(python_override);
  if (!found.python.empty() && !found.torch_init.empty()) {
    std::error_code ec;
    const fs::path torch_dir = fs::path(found.torch_init).parent_path();
    std::vector<std::string> files = {found.python, (torch_dir / "__init__.py").string(),
                                      (torch_dir / "version.py").string()};
    const fs::path real = fs::canonical(found.python, ec);
    if (!ec) files.push_back(real.string());
    (void)remembered.Remember("torch-python", key, nlohmann::json{{"python", found.python}}, files);
  }
  return found;
}

// The search result per (override, $CONVGUARD_PYTHON, $PATH), for the life of the process.
const SearchResult& CachedSearch(const std::string& python_override, const std::string& cache_dir) {
  static std::mutex mu;
  static std::map<std::tuple<std::string, std::string, std::string>, SearchResult> cache;
  const auto key =
      std::make_tuple(python_override, EnvOr("CONVGUARD_PYTHON", ""), EnvOr("PATH", ""));
  std::lock_guard<std::mutex> lock(mu);
  auto it = cache.find(key);
  if (it == cache.end())
    it = cache.emplace(key, RememberedSearch(python_override, cache_dir)).first;
  return it->second;
}

}  // namespace

std::vector<std::string> TorchPythonCandidates(const std::string& python_override) {
  std::vector<std::string> out;
  for (const std::string& name : CandidateNames(python_override)) {
    const std::string resolved = ResolveOnPath(name).value_or(name);
    if (std::find(out.begin(), out.end(), resolved) == out.end()) out.push_back(resolved);
  }
  return out;
}

std::string TorchWorkerScriptPath() {
  return EnvOr("CONVGUARD_PYTHON_DIR", CONVGUARD_PYTHON_DIR) + "/convguard_torch_worker.py";
}

std::string CheckLibraryPath() { return EnvOr("CONVGUARD_CHECKLIB_PATH", CONVGUARD_CHECKLIB_PATH); }

StatusOr<std::string> FindTorchPython(const std::string& python_override,
                                      const std::string& identity_cache_dir) {
  const SearchResult& found = CachedSearch(python_override, identity_cache_dir);
  if (!found.python.empty()) return found.python;
  return Status::NotFound("PyTorch is not importable by any of: " + found.tried +
                          (python_override.empty()
                               ? " (install it, e.g. `apt-get install python3-torch` on Debian, "
                                 "or name an interpreter with --python or $CONVGUARD_PYTHON)"
                               : ""));
}

bool TorchAvailable(const std::string& python_override, const std::string& identity_cache_dir) {
  return FindTorchPython(python_override, identity_cache_dir).ok();
}

StatusOr<std::vector<std::string>> TorchWorkerCommand(const std::string& python_override,
                                                      const std::string& identity_cache_dir) {
  const std::string script = TorchWorkerScriptPath();
  const std::string checklib = CheckLibraryPath();
  std::error_code ec;
  if (!fs::is_regular_file(script, ec)) {
    return Status::NotFound("the PyTorch worker script '" + script +
                            "' is missing (set CONVGUARD_PYTHON_DIR to the folder holding "
                            "convguard_torch_worker.py)");
  }
  if (!fs::is_regular_file(checklib, ec)) {
    return Status::NotFound("the check library '" + checklib +
                            "' the PyTorch worker needs is missing (build the "
                            "convguard_check target, or set CONVGUARD_CHECKLIB_PATH)");
  }
  CG_ASSIGN_OR_RETURN(std::string python, FindTorchPython(python_override, identity_cache_dir));
  return std::vector<std::string>{python, "-B", script, "--checklib", checklib};
}

}  // namespace convguard
