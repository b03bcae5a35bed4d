# The layers of convguard and the arrows between them, enforced by the build.
#
# Each layer is one static library, convguard_<name>, built from the sources of
# src/<name>/, that links the layers it may use. What a layer may include is enforced
# at compile time: its sources see no include directory but its own include root,
# ${PROJECT_BINARY_DIR}/layers/<name>/, which holds links to nothing else than
#   - src/<layer>/ of itself and of every layer it may use (directly or through one of
#     those: arrows are transitive), and
#   - include/convguard/<header> for the public headers those layers own.
# An include of another layer's header is then "No such file or directory". The drawing
# and the reasons are docs/architecture.md; tests/layers/ checks that a forbidden
# include fails to compile.
#
#   convguard_layer(NAME <name> [DEPS <layer>...] [HEADERS <public header>...]
#                   SOURCES <file>... | TARGET <target>)
#     DEPS must name layers declared earlier, so the arrows cannot form a cycle.
#     TARGET makes an existing target (the CLI executable) the layer instead of a new
#     library.
#     HEADERS are the names (without .h) of the headers in include/convguard/ that the
#     layer implements: every public header belongs to exactly one layer.
#   convguard_use_layer_root(<target> <layer>)
#     gives <target> the include root of <layer> (for targets that are part of a layer
#     but not its library: an object library of CUDA kernels, the CLI executable, ...).
#   convguard_check_public_headers()
#     fails the configure when a header in include/convguard/ belongs to no layer.

set(CONVGUARD_LAYERS_ROOT ${PROJECT_BINARY_DIR}/layers)

function(convguard_layer)
  cmake_parse_arguments(L "" "NAME;TARGET" "DEPS;HEADERS;SOURCES" ${ARGN})
  set(name ${L_NAME})
  get_property(known GLOBAL PROPERTY CONVGUARD_LAYERS)
  if(name IN_LIST known)
    message(FATAL_ERROR "layer '${name}' is declared twice")
  endif()

  # The layers this one may see: itself, and the closure of its arrows.
  set(visible ${name})
  foreach(dep IN LISTS L_DEPS)
    if(NOT dep IN_LIST known)
      message(FATAL_ERROR "layer '${name}' uses '${dep}', which is not declared before it "
                          "(declare layers bottom up; the arrows must not form a cycle)")
    endif()
    get_property(dep_visible GLOBAL PROPERTY CONVGUARD_LAYER_VISIBLE_${dep})
    list(APPEND visible ${dep_visible})
  endforeach()
  list(REMOVE_DUPLICATES visible)
  foreach(header IN LISTS L_HEADERS)
    if(NOT EXISTS ${PROJECT_SOURCE_DIR}/include/convguard/${header}.h)
      message(FATAL_ERROR "layer '${name}': include/convguard/${header}.h does not exist")
    endif()
    get_property(owner GLOBAL PROPERTY CONVGUARD_HEADER_OWNER_${header})
    if(owner)
      message(FATAL_ERROR "include/convguard/${header}.h is claimed by '${owner}' and '${name}'")
    endif()
    set_property(GLOBAL PROPERTY CONVGUARD_HEADER_OWNER_${header} ${name})
  endforeach()
  set_property(GLOBAL PROPERTY CONVGUARD_LAYER_HEADERS_${name} ${L_HEADERS})
  set_property(GLOBAL PROPERTY CONVGUARD_LAYER_VISIBLE_${name} ${visible})
  set_property(GLOBAL APPEND PROPERTY CONVGUARD_LAYERS ${name})

  # The include root, made afresh at every configure so that a removed arrow is gone.
  set(root ${CONVGUARD_LAYERS_ROOT}/${name})
  file(REMOVE_RECURSE ${root})
  file(MAKE_DIRECTORY ${root}/convguard)
  foreach(layer IN LISTS visible)
    if(IS_DIRECTORY ${PROJECT_SOURCE_DIR}/src/${layer})
      file(CREATE_LINK ${PROJECT_SOURCE_DIR}/src/${layer} ${root}/${layer} SYMBOLIC)
    endif()
    get_property(headers GLOBAL PROPERTY CONVGUARD_LAYER_HEADERS_${layer})
    foreach(header IN LISTS headers)
      file(CREATE_LINK ${PROJECT_SOURCE_DIR}/include/convguard/${header}.h
           ${root}/convguard/${header}.h SYMBOLIC)
    endforeach()
  endforeach()

  if(L_TARGET)
    target_include_directories(${L_TARGET} PRIVATE ${root})
    foreach(dep IN LISTS L_DEPS)
      target_link_libraries(${L_TARGET} PRIVATE convguard_${dep})
    endforeach()
    return()
  endif()
  add_library(convguard_${name} STATIC ${L_SOURCES})
  target_include_directories(convguard_${name} PRIVATE ${root})
  foreach(dep IN LISTS L_DEPS)
    target_link_libraries(convguard_${name} PUBLIC convguard_${dep})
  endforeach()
  # Position-independent: libconvguard_check.so is linked from these libraries.
  set_target_properties(convguard_${name} PROPERTIES POSITION_INDEPENDENT_CODE ON)
endfunction()

function(convguard_use_layer_root target layer)
  target_include_directories(${target} PRIVATE ${CONVGUARD_LAYERS_ROOT}/${layer})
endfunction()

function(convguard_check_public_headers)
  file(GLOB headers RELATIVE ${PROJECT_SOURCE_DIR}/include/convguard
       ${PROJECT_SOURCE_DIR}/include/convguard/*.h)
  foreach(file IN LISTS headers)
    string(REGEX REPLACE "\\.h$" "" header ${file})
    get_property(owner GLOBAL PROPERTY CONVGUARD_HEADER_OWNER_${header})
    if(NOT owner)
      message(FATAL_ERROR "include/convguard/${file} belongs to no layer: name it in the "
                          "HEADERS of the layer that implements it (CMakeLists.txt)")
    endif()
  endforeach()
endfunction()
