# Checks that the build enforces the layers (cmake/Layers.cmake, docs/architecture.md):
# a source file of a layer that includes another layer's header, or a public header of
# a layer it may not use, fails to compile; allowed includes compile. Also refuses
# relative includes ("../") in src/, which would reach around the include roots.
#
#   cmake -DCXX=<compiler> -DLAYERS=<build>/layers -DSRC=<source dir> -DWORK=<dir>
#         -P check_layers.cmake
cmake_minimum_required(VERSION 3.25)
foreach(var CXX LAYERS SRC WORK)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "check_layers.cmake needs -D${var}=...")
  endif()
endforeach()
file(MAKE_DIRECTORY ${WORK})

set(failures "")
# layer | header included | whether it must compile
set(cases
  "core|store/sqlite_store.h|no"
  "core|convguard/store.h|no"
  "core|convguard/problem.h|yes"
  "text|convguard/backend.h|no"
  "store|convguard/backend.h|no"
  "store|convguard/stack.h|yes"
  "backends|probe/launcher.h|no"
  "worker|convguard/probe.h|no"
  "worker|worker/protocol.h|yes"
  "rewrite|convguard/store.h|no"
  "probe|plan/internal.h|no"
  "probe|convguard/probe.h|yes"
  "plan|convguard/store.h|yes"
  "plan|convguard/guard.h|yes")
foreach(case IN LISTS cases)
  string(REPLACE "|" ";" parts "${case}")
  list(GET parts 0 layer)
  list(GET parts 1 header)
  list(GET parts 2 must_compile)
  string(MAKE_C_IDENTIFIER "${layer}_${header}" stem)
  set(file ${WORK}/${stem}.cc)
  file(WRITE ${file} "#include \"${header}\"\nint main() { return 0; }\n")
  execute_process(
    COMMAND ${CXX} -std=c++20 -fsyntax-only -I${LAYERS}/${layer} ${file}
    RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(must_compile STREQUAL "yes" AND NOT rc EQUAL 0)
    string(APPEND failures "  layer ${layer} may include ${header}, but it did not compile:\n${err}\n")
  elseif(must_compile STREQUAL "no" AND rc EQUAL 0)
    string(APPEND failures "  layer ${layer} must not include ${header}, but it compiled\n")
  elseif(must_compile STREQUAL "no" AND NOT err MATCHES "No such file or directory")
    string(APPEND failures "  layer ${layer} including ${header} failed, but not for want of the file:\n${err}\n")
  endif()
endforeach()

file(GLOB_RECURSE sources ${SRC}/src/*.cc ${SRC}/src/*.h ${SRC}/src/*.cu ${SRC}/src/*.cuh
     ${SRC}/include/*.h)
foreach(source IN LISTS sources)
  file(STRINGS ${source} relative REGEX "^[ \t]*#[ \t]*include[ \t]*\"[^\"]*\\.\\./")
  if(relative)
    string(APPEND failures "  ${source}: a relative include reaches around the layers: ${relative}\n")
  endif()
endforeach()

if(failures)
  message(FATAL_ERROR "the layers are not enforced:\n${failures}")
endif()
list(LENGTH cases count)
message(STATUS "layers: ${count} include cases behave as drawn; no relative includes in src/")
