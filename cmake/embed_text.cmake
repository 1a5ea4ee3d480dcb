# Turns a text file into a C++ function returning it, so pages and the like are built into the
# binary. cmake -DINPUT=FILE -DOUTPUT=FILE.cpp -DNAMESPACE=agora::x -DFUNCTION=name
#   [-DINCLUDE=FILE -DMARKER=TEXT]  (MARKER in INPUT is replaced by INCLUDE's text) -P this
file(READ "${INPUT}" CONTENT)
if(DEFINED INCLUDE)
  file(READ "${INCLUDE}" INCLUDED)
  string(REPLACE "${MARKER}" "${INCLUDED}" CONTENT "${CONTENT}")
endif()
file(WRITE "${OUTPUT}" "// Generated from ${INPUT}; edit that file.\n#include <string>\n\nnamespace ${NAMESPACE} {\n\nconst std::string& ${FUNCTION}() {\n  static const std::string text = R\"AGORA_EMBED(${CONTENT})AGORA_EMBED\";\n  return text;\n}\n\n}  // namespace ${NAMESPACE}\n")
