# Generates a C++ source holding the SQL migrations of a plugin.
# Invoked at build time: cmake -DOUTPUT=file.cpp -DFILES="a.sql;b.sql" -P EmbedMigrations.cmake
set(body "")
set(count 0)
foreach(file IN LISTS FILES)
  get_filename_component(base "${file}" NAME)
  if(NOT base MATCHES "^([0-9]+)_[A-Za-z0-9_]+\\.sql$")
    message(FATAL_ERROR "migration ${file}: name must be NNN_description.sql")
  endif()
  math(EXPR version "${CMAKE_MATCH_1}")
  file(READ "${file}" sql)
  string(APPEND body "    {${version}, \"${base}\", R\"parley_sql(${sql})parley_sql\"},\n")
  math(EXPR count "${count} + 1")
endforeach()
if(count EQUAL 0)
  message(FATAL_ERROR "no migrations in ${FILES}")
endif()
file(WRITE "${OUTPUT}.tmp" "// Generated from the plugin's migrations folder. Do not edit.
#include <parley/migrations.hpp>

namespace {
const parley::Migration kMigrations[] = {
${body}};
}  // namespace

std::span<const parley::Migration> parley_plugin_migrations() { return kMigrations; }
")
file(COPY_FILE "${OUTPUT}.tmp" "${OUTPUT}" ONLY_IF_DIFFERENT)
