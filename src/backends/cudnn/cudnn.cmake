# src/backends/cudnn/cudnn.cmake — the cuDNN backend's build, included by the top-level
# CMakeLists.txt after add_library(convguard ...) when CONVGUARD_ENABLE_CUDA is ON.
#
# When a CUDA compiler, the CUDA toolkit and cuDNN (header and library) are all found it
#   - adds cudnn_backend.cc and the spin kernel (spin_kernel.cu, compiled by nvcc) to
#     the backends layer (`convguard_backends`),
#   - links CUDA::cudart (the SHARED runtime) and cuDNN privately,
#   - defines CONVGUARD_HAVE_CUDNN=1 on `convguard_backends` (PUBLIC, so the registry and the
#     tests see it) and sets the CMake variable CONVGUARD_HAVE_CUDNN to ON.
# Otherwise it says why in one STATUS line and changes nothing: a build without CUDA is
# a normal build.
#
# Where cuDNN is looked for, first hit wins (header and library separately, same order):
#   1. -DCUDNN_ROOT=DIR           (DIR/include, DIR/lib, DIR/lib64)
#   2. the environment's CUDNN_ROOT
#   3. a PyTorch install: the folder of python3's `nvidia.cudnn` package
#      (<site-packages>/nvidia/cudnn/{include,lib}); -DCONVGUARD_CUDNN_PYTHON=... picks
#      the interpreter. In a wheel build (`pip install .`) it defaults to the interpreter
#      pip runs, asked without pip's build isolation (see below)
#   4. the system: /usr/include, /usr/lib/x86_64-linux-gnu, the CUDA toolkit's folders
#      and CMake's default paths
# -DCUDNN_INCLUDE_DIR=... and -DCUDNN_LIBRARY=... override the search entirely.
#
# Vendor headers stay in this folder: the cuDNN include directory is set on
# cudnn_backend.cc alone, and cudnn_backend.h includes no CUDA or cuDNN header.
#
# Runtime linkage, and why a convguard binary still starts without an NVIDIA driver:
# convguard links libcudart.so (shared) and libcudnn.so.9 (cuDNN 9's small dispatcher,
# which dlopens its sub-libraries from its own folder on first use). Neither links the
# driver (libcuda.so.1): the runtime opens it on the first CUDA call. So `convguard
# --help`, the reference backend and every CPU test run on a machine that has the
# toolkit's libraries but no GPU or driver (CI). No relocatable device code is used, so
# no device-link step exists and `convguard` links into any host-compiled executable
# with the C++ linker (CUDA_RESOLVE_DEVICE_SYMBOLS does not apply).
#
# GPU code: CMAKE_CUDA_ARCHITECTURES defaults to "80-real;90": machine code for sm_80
# (A100, and by binary compatibility sm_86/sm_89) and sm_90 (H100/H200), plus
# compute_90 PTX that the driver compiles for newer GPUs (Blackwell). CUDA 13 cannot
# target anything older than sm_75; on a GPU with no matching image the spin kernel
# fails to launch and fault injection spins on the CPU instead (docs/gpu.md). Override
# with -DCMAKE_CUDA_ARCHITECTURES=... (e.g. "native" on the GPU machine).

set(CONVGUARD_HAVE_CUDNN OFF)
set(_cg_cudnn_dir ${CMAKE_CURRENT_LIST_DIR})

if(IS_ABSOLUTE "${CMAKE_CUDA_COMPILER}" AND NOT EXISTS "${CMAKE_CUDA_COMPILER}")
  message(STATUS "cuDNN backend: not built: CMAKE_CUDA_COMPILER=${CMAKE_CUDA_COMPILER} does not exist")
  return()
endif()
include(CheckLanguage)
check_language(CUDA)
if(NOT CMAKE_CUDA_COMPILER)
  message(STATUS "cuDNN backend: not built: no working CUDA compiler (nvcc) found "
                 "(put nvcc on PATH or pass -DCMAKE_CUDA_COMPILER=/path/to/nvcc)")
  return()
endif()

# Must be a cache entry before enable_language(CUDA), or CMake picks its own default.
if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES OR CMAKE_CUDA_ARCHITECTURES STREQUAL "")
  set(CMAKE_CUDA_ARCHITECTURES "80-real;90" CACHE STRING
      "GPU targets of convguard's CUDA code (see src/backends/cudnn/cudnn.cmake)" FORCE)
endif()
enable_language(CUDA)

find_package(CUDAToolkit QUIET)
if(NOT CUDAToolkit_FOUND)
  message(STATUS "cuDNN backend: not built: nvcc is ${CMAKE_CUDA_COMPILER} but the CUDA "
                 "toolkit (headers, libcudart) was not found (pass -DCUDAToolkit_ROOT=...)")
  return()
endif()

# ---- where cuDNN may be, in search order ----
set(_cg_cudnn_roots "")
set(_cg_cudnn_origins "")
if(CUDNN_ROOT)
  list(APPEND _cg_cudnn_roots "${CUDNN_ROOT}")
endif()
if(DEFINED ENV{CUDNN_ROOT} AND NOT "$ENV{CUDNN_ROOT}" STREQUAL "")
  list(APPEND _cg_cudnn_roots "$ENV{CUDNN_ROOT}")
endif()
# In a wheel build (scikit-build-core sets SKBUILD and Python_EXECUTABLE) the PyTorch whose
# cuDNN should be used is the one of the environment pip installs into, so its interpreter
# is asked rather than the first python3 on PATH. pip's build isolation hides every
# site-packages folder from every interpreter it starts (PYTHONPATH with its own
# sitecustomize, PYTHONNOUSERSITE), so the question is asked without those variables.
set(_cg_cudnn_python_env "")
if(SKBUILD)
  if(Python_EXECUTABLE AND NOT DEFINED CACHE{CONVGUARD_CUDNN_PYTHON})
    set(CONVGUARD_CUDNN_PYTHON "${Python_EXECUTABLE}" CACHE FILEPATH
        "Python interpreter asked where PyTorch's nvidia.cudnn package lives")
  endif()
  set(_cg_cudnn_python_env ${CMAKE_COMMAND} -E env --unset=PYTHONPATH --unset=PYTHONNOUSERSITE)
endif()
find_program(CONVGUARD_CUDNN_PYTHON NAMES python3 python
             DOC "Python interpreter asked where PyTorch's nvidia.cudnn package lives")
set(_cg_cudnn_python_root "")
if(CONVGUARD_CUDNN_PYTHON)
  execute_process(
    COMMAND ${_cg_cudnn_python_env} "${CONVGUARD_CUDNN_PYTHON}" -c
            "import os, nvidia.cudnn as m; f = getattr(m, '__file__', None); print(os.path.dirname(f) if f else list(m.__path__)[0])"
    OUTPUT_VARIABLE _cg_cudnn_python_root
    RESULT_VARIABLE _cg_cudnn_python_rc
    ERROR_QUIET
    OUTPUT_STRIP_TRAILING_WHITESPACE
    TIMEOUT 60)
  if(_cg_cudnn_python_rc EQUAL 0 AND IS_DIRECTORY "${_cg_cudnn_python_root}")
    list(APPEND _cg_cudnn_roots "${_cg_cudnn_python_root}")
  else()
    set(_cg_cudnn_python_root "")
  endif()
endif()
set(_cg_cudnn_system_include /usr/include ${CUDAToolkit_INCLUDE_DIRS})
set(_cg_cudnn_system_lib /usr/lib/x86_64-linux-gnu ${CUDAToolkit_LIBRARY_DIR} ${CUDAToolkit_LIBRARY_ROOT}/lib64
    ${CUDAToolkit_LIBRARY_ROOT}/lib)

# Roots first (strictly in order, nothing else), then the system.
if(_cg_cudnn_roots)
  find_path(CUDNN_INCLUDE_DIR cudnn.h PATHS ${_cg_cudnn_roots} PATH_SUFFIXES include
            NO_DEFAULT_PATH DOC "Folder of cudnn.h")
  # pip wheels ship libcudnn.so.9 without the unversioned libcudnn.so symlink.
  find_library(CUDNN_LIBRARY NAMES cudnn libcudnn.so.9 PATHS ${_cg_cudnn_roots}
               PATH_SUFFIXES lib lib64 lib/x86_64-linux-gnu NO_DEFAULT_PATH
               DOC "libcudnn (cuDNN 9's dispatcher library)")
endif()
find_path(CUDNN_INCLUDE_DIR cudnn.h PATHS ${_cg_cudnn_system_include} DOC "Folder of cudnn.h")
find_library(CUDNN_LIBRARY NAMES cudnn libcudnn.so.9 PATHS ${_cg_cudnn_system_lib}
             DOC "libcudnn (cuDNN 9's dispatcher library)")

if(NOT CUDNN_INCLUDE_DIR OR NOT CUDNN_LIBRARY)
  set(_cg_missing "")
  if(NOT CUDNN_INCLUDE_DIR)
    list(APPEND _cg_missing "cudnn.h")
  endif()
  if(NOT CUDNN_LIBRARY)
    list(APPEND _cg_missing "libcudnn")
  endif()
  list(JOIN _cg_missing " and " _cg_missing)
  set(_cg_where "${_cg_cudnn_roots}")
  if(NOT _cg_where)
    set(_cg_where "no CUDNN_ROOT, no python3 nvidia.cudnn package")
  endif()
  message(STATUS "cuDNN backend: not built: ${_cg_missing} not found (looked in: ${_cg_where}; "
                 "then the system and ${CUDAToolkit_LIBRARY_ROOT}); pass -DCUDNN_ROOT=DIR")
  return()
endif()

# The version, from the header cuDNN 8 and 9 keep it in.
set(_cg_cudnn_version_header "${CUDNN_INCLUDE_DIR}/cudnn_version.h")
if(NOT EXISTS "${_cg_cudnn_version_header}")
  set(_cg_cudnn_version_header "${CUDNN_INCLUDE_DIR}/cudnn.h")
endif()
file(STRINGS "${_cg_cudnn_version_header}" _cg_cudnn_defines REGEX "^#define CUDNN_(MAJOR|MINOR|PATCHLEVEL) +[0-9]+")
set(CONVGUARD_CUDNN_VERSION "")
foreach(_cg_part MAJOR MINOR PATCHLEVEL)
  string(REGEX MATCH "CUDNN_${_cg_part} +([0-9]+)" _cg_match "${_cg_cudnn_defines}")
  if(_cg_match)
    list(APPEND CONVGUARD_CUDNN_VERSION "${CMAKE_MATCH_1}")
  endif()
endforeach()
list(JOIN CONVGUARD_CUDNN_VERSION "." CONVGUARD_CUDNN_VERSION)
if(NOT CONVGUARD_CUDNN_VERSION MATCHES "^([0-9]+)\\.")
  message(STATUS "cuDNN backend: not built: cannot read the cuDNN version from ${_cg_cudnn_version_header}")
  return()
endif()
if(CMAKE_MATCH_1 LESS 9)
  message(STATUS "cuDNN backend: not built: cuDNN ${CONVGUARD_CUDNN_VERSION} at ${CUDNN_INCLUDE_DIR} "
                 "is older than 9 (needed: cudnnGetLastErrorString, the 9.x status codes)")
  return()
endif()

# ---- the targets ----
if(NOT TARGET convguard_cudnn_library)
  add_library(convguard_cudnn_library SHARED IMPORTED)
  set_target_properties(convguard_cudnn_library PROPERTIES IMPORTED_LOCATION "${CUDNN_LIBRARY}")
endif()

# The spin kernel is compiled in its own object library: the directory's warning flags
# (-Wall -Wextra -Wpedantic, -Werror) are host-compiler flags that nvcc rejects, so they
# are replaced by their -Xcompiler forms.
add_library(convguard_cudnn_kernels OBJECT ${_cg_cudnn_dir}/spin_kernel.cu)
set_property(TARGET convguard_cudnn_kernels PROPERTY COMPILE_OPTIONS "")
target_compile_options(convguard_cudnn_kernels PRIVATE -Xcompiler=-Wall,-Wextra)
if(CONVGUARD_WERROR)
  target_compile_options(convguard_cudnn_kernels PRIVATE -Xcompiler=-Werror --Werror=all-warnings)
endif()
convguard_use_layer_root(convguard_cudnn_kernels backends)
target_link_libraries(convguard_cudnn_kernels PRIVATE CUDA::cudart)
set_target_properties(convguard_cudnn_kernels PROPERTIES
  CUDA_STANDARD 17
  CUDA_STANDARD_REQUIRED ON
  CUDA_RUNTIME_LIBRARY Shared
  POSITION_INDEPENDENT_CODE ON)

target_sources(convguard_backends PRIVATE ${_cg_cudnn_dir}/cudnn_backend.cc $<TARGET_OBJECTS:convguard_cudnn_kernels>)
set_property(SOURCE ${_cg_cudnn_dir}/cudnn_backend.cc APPEND PROPERTY INCLUDE_DIRECTORIES "${CUDNN_INCLUDE_DIR}")
target_link_libraries(convguard_backends PRIVATE CUDA::cudart convguard_cudnn_library)
target_compile_definitions(convguard_backends PUBLIC CONVGUARD_HAVE_CUDNN=1)
set(CONVGUARD_HAVE_CUDNN ON)

# Which search step found the library (for the STATUS line).
set(_cg_cudnn_origin "system")
foreach(_cg_pair "python3 nvidia.cudnn|${_cg_cudnn_python_root}" "env CUDNN_ROOT|$ENV{CUDNN_ROOT}"
                 "-DCUDNN_ROOT|${CUDNN_ROOT}")
  string(FIND "${_cg_pair}" "|" _cg_bar)
  string(SUBSTRING "${_cg_pair}" 0 ${_cg_bar} _cg_label)
  math(EXPR _cg_bar "${_cg_bar} + 1")
  string(SUBSTRING "${_cg_pair}" ${_cg_bar} -1 _cg_root)
  if(NOT _cg_root STREQUAL "")
    string(FIND "${CUDNN_LIBRARY}" "${_cg_root}" _cg_at)
    if(_cg_at EQUAL 0)
      set(_cg_cudnn_origin "${_cg_label} ${_cg_root}")
    endif()
  endif()
endforeach()
message(STATUS "cuDNN backend: built: cuDNN ${CONVGUARD_CUDNN_VERSION} (${_cg_cudnn_origin}); "
               "header ${CUDNN_INCLUDE_DIR}/cudnn.h; library ${CUDNN_LIBRARY}")
message(STATUS "cuDNN backend: CUDA ${CUDAToolkit_VERSION} (nvcc ${CMAKE_CUDA_COMPILER}), "
               "runtime ${CUDAToolkit_LIBRARY_DIR}/libcudart.so (shared); "
               "GPU targets ${CMAKE_CUDA_ARCHITECTURES}")
