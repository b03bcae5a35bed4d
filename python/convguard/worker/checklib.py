"""The ctypes binding of libconvguard_check.so (src/capi/check_capi.h).

One implementation of filling, checking and fault rules, shared with the C++ worker: the
worker never parses problem text, fills operands, compares results or reads fault rules
itself, so its verdicts mean what a C++ worker's mean. The library exports only cg_*
symbols, so its C++ cannot clash with PyTorch's in one interpreter.

A failed call raises CheckLibError with the library's code (CG_EINVAL, CG_ENOMEM, ...)
and message. Threads: the library's functions are reentrant, and a probe session is used
by one thread at a time; this worker has one thread.
"""

import ctypes
import json

CAPI_VERSION = 4
CG_OK, CG_EINVAL, CG_ENOMEM = 0, 1, 2


class CheckLibError(Exception):
    def __init__(self, code, message):
        Exception.__init__(self, message)
        self.code = code


class CheckLib:
    BUFFER = 64 * 1024

    def __init__(self, path):
        lib = ctypes.CDLL(path)
        c_char_p, c_size_t, c_int, c_int64 = ctypes.c_char_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int64
        c_uint64, c_void_p = ctypes.c_uint64, ctypes.c_void_p
        lib.cg_capi_version.argtypes = []
        lib.cg_capi_version.restype = c_int
        version = lib.cg_capi_version()
        if version != CAPI_VERSION:
            raise RuntimeError("%s speaks C API version %d; this worker needs version %d "
                               "(rebuild convguard)" % (path, version, CAPI_VERSION))
        lib.cg_tool_version.argtypes = []
        lib.cg_tool_version.restype = c_char_p
        lib.cg_problem_json.argtypes = [c_char_p, c_char_p, c_size_t]
        lib.cg_problem_json.restype = c_int
        lib.cg_probe_open.argtypes = [c_char_p, c_uint64, c_char_p, c_size_t]
        lib.cg_probe_open.restype = c_void_p
        lib.cg_probe_fill.argtypes = [c_void_p, c_void_p, c_void_p, c_void_p, c_void_p,
                                      c_char_p, c_size_t]
        lib.cg_probe_fill.restype = c_int
        lib.cg_probe_check.argtypes = [c_void_p, c_void_p, c_int64, c_char_p, c_int64,
                                       c_char_p, c_size_t]
        lib.cg_probe_check.restype = c_int
        lib.cg_probe_close.argtypes = [c_void_p]
        lib.cg_probe_close.restype = None
        lib.cg_rules_parse.argtypes = [c_char_p, c_size_t, c_char_p, c_char_p, c_size_t]
        lib.cg_rules_parse.restype = c_void_p
        lib.cg_rules_json.argtypes = [c_void_p, c_char_p, c_size_t]
        lib.cg_rules_json.restype = c_int
        lib.cg_rules_match_call.argtypes = [c_void_p, c_char_p, c_char_p, c_int, c_int64, c_char_p,
                                            c_char_p, c_char_p, c_size_t]
        lib.cg_rules_match_call.restype = c_int
        lib.cg_rules_apply_fingerprint.argtypes = [c_void_p, c_char_p, c_int, c_char_p, c_size_t]
        lib.cg_rules_apply_fingerprint.restype = c_int
        lib.cg_rules_close.argtypes = [c_void_p]
        lib.cg_rules_close.restype = None
        lib.cg_corrupt_tail.argtypes = [c_void_p, c_int64, ctypes.c_double, c_char_p, c_size_t]
        lib.cg_corrupt_tail.restype = c_int
        self.lib = lib
        self.path = path

    def tool_version(self):
        return self.lib.cg_tool_version().decode("utf-8", "replace")

    def _text(self, buf):
        return buf.value.decode("utf-8", "replace")

    def problem(self, canonical):
        """The parsed problem (cg_problem_json) as a dict; CheckLibError if it is bad."""
        buf = ctypes.create_string_buffer(self.BUFFER)
        rc = self.lib.cg_problem_json(canonical.encode("utf-8"), buf, self.BUFFER)
        if rc != CG_OK:
            raise CheckLibError(rc, self._text(buf))
        return json.loads(self._text(buf))

    def open_probe(self, canonical, seed):
        err = ctypes.create_string_buffer(4096)
        handle = self.lib.cg_probe_open(canonical.encode("utf-8"), seed & 0xFFFFFFFFFFFFFFFF,
                                        err, 4096)
        if not handle:
            message = self._text(err)
            code = CG_ENOMEM if message.startswith("out of host memory") else CG_EINVAL
            raise CheckLibError(code, message)
        return handle

    def fill(self, handle, input_ptr, weight_ptr, output_ptr, bias_ptr):
        err = ctypes.create_string_buffer(4096)
        rc = self.lib.cg_probe_fill(handle, input_ptr, weight_ptr, output_ptr, bias_ptr or None,
                                    err, 4096)
        if rc != CG_OK:
            raise CheckLibError(rc, self._text(err))

    def check(self, handle, result_ptr, elements, mode, sample_points):
        buf = ctypes.create_string_buffer(self.BUFFER)
        rc = self.lib.cg_probe_check(handle, result_ptr, elements, mode.encode("ascii"),
                                     sample_points, buf, self.BUFFER)
        if rc != CG_OK:
            raise CheckLibError(rc, self._text(buf))
        return json.loads(self._text(buf))

    def close_probe(self, handle):
        self.lib.cg_probe_close(handle)

    # Fault rules (docs/fault-injection.md): parsed and matched by convguard's own code.

    def parse_rules(self, text, origin):
        """A handle for the parsed rules; CheckLibError with "<origin>:<line>:<col>: ..."."""
        err = ctypes.create_string_buffer(4096)
        handle = self.lib.cg_rules_parse(text, len(text), origin.encode("utf-8"), err, 4096)
        if not handle:
            raise CheckLibError(CG_EINVAL, self._text(err))
        return handle

    def rules_info(self, handle):
        buf = ctypes.create_string_buffer(self.BUFFER)
        rc = self.lib.cg_rules_json(handle, buf, self.BUFFER)
        if rc != CG_OK:
            raise CheckLibError(rc, self._text(buf))
        return json.loads(self._text(buf))

    def match_rule(self, handle, canonical, algorithm, device, calls=1, previous=None):
        """The matched fault as a dict (cg_rules_match_call), or None when no rule matches.

        `calls` is the call's position among the worker's run stages, from 1; `previous` is
        (canonical, algorithm) of the call before it, or None on the first call.
        """
        previous_canonical, previous_algorithm = previous if previous is not None else ("", "")
        buf = ctypes.create_string_buffer(self.BUFFER)
        rc = self.lib.cg_rules_match_call(handle, canonical.encode("utf-8"),
                                          algorithm.encode("utf-8"), device, calls,
                                          previous_canonical.encode("utf-8"),
                                          previous_algorithm.encode("utf-8"), buf, self.BUFFER)
        if rc != CG_OK:
            raise CheckLibError(rc, self._text(buf))
        fault = json.loads(self._text(buf))
        return fault if fault.get("matched") else None

    def apply_rules(self, handle, fingerprint, device):
        buf = ctypes.create_string_buffer(self.BUFFER)
        rc = self.lib.cg_rules_apply_fingerprint(
            handle, json.dumps(fingerprint).encode("utf-8"), device, buf, self.BUFFER)
        if rc != CG_OK:
            raise CheckLibError(rc, self._text(buf))
        return json.loads(self._text(buf))

    def corrupt_tail(self, data_ptr, elements, fraction):
        err = ctypes.create_string_buffer(1024)
        rc = self.lib.cg_corrupt_tail(data_ptr, elements, fraction, err, 1024)
        if rc != CG_OK:
            raise CheckLibError(rc, self._text(err))
