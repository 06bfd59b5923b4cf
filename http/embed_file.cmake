# cmake -DIN=file -DOUT=file.cpp -DNAMESPACE=ns -DFUNC=name -P embed_file.cmake
# Writes a .cpp whose function returns IN's bytes (no raw-string delimiter to clash with).
file(READ "${IN}" hex HEX)
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "'\\\\x\\1'," bytes "${hex}")
string(LENGTH "${hex}" hex_len)
math(EXPR len "${hex_len} / 2")
file(WRITE "${OUT}" "// Generated from ${IN} by http/embed_file.cmake; do not edit.\n#include <string_view>\nnamespace ${NAMESPACE} {\nnamespace {\nconst char kBytes[] = {${bytes} 0};\n}\nstd::string_view ${FUNC}() { return std::string_view(kBytes, ${len}); }\n}  // namespace ${NAMESPACE}\n")
