# convguard_embed_text(OUTPUT <file.cc> FUNCTION <name> INPUT <file> [NAMESPACE ns])
# Writes a .cc file defining `std::string_view <name>()` that returns INPUT's text,
# regenerated whenever INPUT changes.
function(convguard_embed_text)
  cmake_parse_arguments(ARG "" "OUTPUT;FUNCTION;INPUT;NAMESPACE" "" ${ARGN})
  if(NOT ARG_NAMESPACE)
    set(ARG_NAMESPACE convguard)
  endif()
  set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${ARG_INPUT})
  file(READ ${ARG_INPUT} text)
  string(FIND "${text}" ")cgembed\"" clash)
  if(NOT clash EQUAL -1)
    message(FATAL_ERROR "${ARG_INPUT} contains the raw-string delimiter )cgembed\"")
  endif()
  file(WRITE ${ARG_OUTPUT}.tmp
    "// Generated from ${ARG_INPUT} by cmake/EmbedText.cmake; do not edit.\n"
    "#include <string_view>\n\nnamespace ${ARG_NAMESPACE} {\n\n"
    "std::string_view ${ARG_FUNCTION}() {\n"
    "  static constexpr std::string_view kText = R\"cgembed(${text})cgembed\";\n"
    "  return kText;\n}\n\n}  // namespace ${ARG_NAMESPACE}\n")
  file(COPY_FILE ${ARG_OUTPUT}.tmp ${ARG_OUTPUT} ONLY_IF_DIFFERENT)
endfunction()
