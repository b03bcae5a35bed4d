# The C API over convguard's filling, checking and fault rules (src/capi/check_capi.h), built as
# libconvguard_check.so for workers that are not C++ (python/convguard_torch_worker.py
# loads it with ctypes). include()d by the top-level CMakeLists.txt after the layers.
#
# The C API is a layer of its own on core, text and backends (fault rules): the shared
# library links those static layer libraries, which are position-independent for it
# (cmake/Layers.cmake). Only the cg_* functions are exported (a linker
# version script): convguard's C++ symbols stay private to the library, so they cannot
# clash with another C++ library loaded into the same interpreter (PyTorch links its
# own copies of common code).
#
# Also gives src/probe/torch_launcher.cc (the probe layer) the build-time
# paths it hands to the worker: CONVGUARD_PYTHON_DIR (python/ in the source tree) and
# CONVGUARD_CHECKLIB_PATH (this library's file). Both can be overridden at run time by
# the environment variables of the same names.

set(_convguard_capi_map ${PROJECT_BINARY_DIR}/generated/check_capi.map)
file(WRITE ${_convguard_capi_map}.tmp "{\n  global: cg_*;\n  local: *;\n};\n")
file(COPY_FILE ${_convguard_capi_map}.tmp ${_convguard_capi_map} ONLY_IF_DIFFERENT)

add_library(convguard_check SHARED ${PROJECT_SOURCE_DIR}/src/capi/check_capi.cc)
convguard_layer(NAME capi TARGET convguard_check DEPS core text backends)
target_link_options(convguard_check PRIVATE
  "LINKER:--version-script=${_convguard_capi_map}"
  "LINKER:--as-needed"
  "LINKER:--no-undefined")
set_target_properties(convguard_check PROPERTIES
  OUTPUT_NAME convguard_check
  LINK_DEPENDS ${_convguard_capi_map})

set_property(SOURCE ${PROJECT_SOURCE_DIR}/src/probe/torch_launcher.cc
  APPEND PROPERTY COMPILE_DEFINITIONS
    CONVGUARD_PYTHON_DIR="${PROJECT_SOURCE_DIR}/python"
    CONVGUARD_CHECKLIB_PATH="$<TARGET_FILE:convguard_check>")

unset(_convguard_capi_map)
