# The ONNX layer (src/onnx): reading models' convolutions and writing fixed models.
# include()d by the top-level CMakeLists.txt. Debian 12: `apt-get install libonnx-dev
# libprotobuf-dev` (ONNX 1.12; its CMake package names its targets onnx and onnx_proto and
# refers to protobuf::libprotobuf, so Protobuf is found first).
#
# Sets CONVGUARD_ONNX_SOURCES (the layer's sources: the ONNX-backed ones when both
# packages are found, else the ones that answer "not built with ONNX") and
# CONVGUARD_HAVE_ONNX (ON/OFF); after the layer exists, convguard_onnx_link() links the
# libraries privately: ONNX's and protobuf's headers stay in src/onnx.

set(CONVGUARD_HAVE_ONNX OFF)
set(CONVGUARD_ONNX_SOURCES ${PROJECT_SOURCE_DIR}/src/onnx/onnx_common.cc)
if(CONVGUARD_ENABLE_ONNX)
  find_package(Protobuf QUIET)
  if(Protobuf_FOUND)
    find_package(ONNX QUIET)
  endif()
endif()
if(CONVGUARD_ENABLE_ONNX AND Protobuf_FOUND AND ONNX_FOUND AND TARGET onnx)
  set(CONVGUARD_HAVE_ONNX ON)
  list(APPEND CONVGUARD_ONNX_SOURCES
    ${PROJECT_SOURCE_DIR}/src/onnx/onnx_model.cc
    ${PROJECT_SOURCE_DIR}/src/onnx/onnx_reader.cc
    ${PROJECT_SOURCE_DIR}/src/onnx/onnx_structure.cc
    ${PROJECT_SOURCE_DIR}/src/onnx/onnx_fixer.cc)
  message(STATUS "ONNX: ${ONNX_VERSION} with protobuf ${Protobuf_VERSION}")
else()
  list(APPEND CONVGUARD_ONNX_SOURCES ${PROJECT_SOURCE_DIR}/src/onnx/onnx_unavailable.cc)
  message(STATUS "ONNX not found (libonnx-dev, libprotobuf-dev): scan and fix of ONNX models are not built")
endif()

function(convguard_onnx_link)
  if(CONVGUARD_HAVE_ONNX)
    target_link_libraries(convguard_onnx PRIVATE onnx onnx_proto protobuf::libprotobuf)
    target_compile_definitions(convguard_onnx PUBLIC CONVGUARD_HAVE_ONNX=1)
  endif()
endfunction()
