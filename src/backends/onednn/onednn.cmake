# The oneDNN CPU backend (src/backends/onednn), include()d by the top-level CMakeLists.txt
# after the backends layer (convguard_backends) when CONVGUARD_ENABLE_ONEDNN is on.
#
# Finds oneDNN (Debian 12: `apt-get install libdnnl-dev`, oneDNN 2.6.3) through its CMake
# package when there is one, else by its header and library. When found, adds the backend
# to `convguard`, links oneDNN privately (only onednn_backend.cc includes dnnl.hpp) and
# defines CONVGUARD_HAVE_ONEDNN=1 for the registry; when not found the backend is simply
# not built.
#
# Sets CONVGUARD_HAVE_ONEDNN (ON/OFF) for the rest of the build (tests/CMakeLists.txt).

set(CONVGUARD_HAVE_ONEDNN OFF)
set(_convguard_dnnl_link "")
set(_convguard_dnnl_what "")

# The CMake package (Debian ships /usr/lib/<triplet>/cmake/dnnl) gives DNNL::dnnl. Its
# config calls find_package(OpenCL REQUIRED) (the Debian build has the OpenCL GPU
# runtime), and a REQUIRED failure inside a config file stops the whole configure even
# under QUIET. libdnnl-dev only *recommends* the OpenCL loader (ocl-icd-opencl-dev), so
# the package is tried only where OpenCL is present; elsewhere the header and library
# are found directly (the CPU backend never touches OpenCL).
find_package(OpenCL QUIET)
if(OpenCL_FOUND)
  find_package(dnnl CONFIG QUIET)
endif()
if(dnnl_FOUND AND TARGET DNNL::dnnl)
  set(_convguard_dnnl_link DNNL::dnnl)
  set(_convguard_dnnl_what "oneDNN ${dnnl_VERSION} (CMake package ${dnnl_DIR})")
else()
  find_path(CONVGUARD_DNNL_INCLUDE_DIR oneapi/dnnl/dnnl.hpp)
  find_library(CONVGUARD_DNNL_LIBRARY NAMES dnnl)
  if(CONVGUARD_DNNL_INCLUDE_DIR AND CONVGUARD_DNNL_LIBRARY)
    add_library(convguard_dnnl INTERFACE)
    target_include_directories(convguard_dnnl INTERFACE ${CONVGUARD_DNNL_INCLUDE_DIR})
    # dl: the backend looks up OpenMP's thread controls with dlsym.
    target_link_libraries(convguard_dnnl INTERFACE ${CONVGUARD_DNNL_LIBRARY} ${CMAKE_DL_LIBS})
    set(_convguard_dnnl_link convguard_dnnl)
    set(_convguard_dnnl_what
        "oneDNN (${CONVGUARD_DNNL_LIBRARY}, headers in ${CONVGUARD_DNNL_INCLUDE_DIR})")
  endif()
endif()

if(_convguard_dnnl_link)
  target_sources(convguard_backends PRIVATE ${PROJECT_SOURCE_DIR}/src/backends/onednn/onednn_backend.cc)
  target_link_libraries(convguard_backends PRIVATE ${_convguard_dnnl_link})
  target_compile_definitions(convguard_backends PUBLIC CONVGUARD_HAVE_ONEDNN=1)
  set(CONVGUARD_HAVE_ONEDNN ON)
  message(STATUS "oneDNN backend: ${_convguard_dnnl_what}")
else()
  message(STATUS "oneDNN not found: the onednn backend is not built")
endif()

unset(_convguard_dnnl_link)
unset(_convguard_dnnl_what)
