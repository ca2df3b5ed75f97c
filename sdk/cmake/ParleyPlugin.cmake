# parley_add_plugin(<name> SOURCES <files...> [MIGRATIONS <dir>] [LIBRARIES <targets...>])
#
# Builds the plugin <name> as a shared-library MODULE named parley_<name>.so
# that exports only its entry symbol. With MIGRATIONS, every NNN_name.sql file
# of <dir> is embedded and returned by parley_plugin_migrations().
set(PARLEY_EMBED_MIGRATIONS_SCRIPT ${CMAKE_CURRENT_LIST_DIR}/EmbedMigrations.cmake)
# Hidden visibility still leaves weak template instantiations exported; the
# version script keeps only the entry symbol.
set(PARLEY_PLUGIN_EXPORTS_MAP ${CMAKE_CURRENT_LIST_DIR}/plugin_exports.map)

function(parley_add_plugin name)
  cmake_parse_arguments(ARG "" "MIGRATIONS" "SOURCES;LIBRARIES" ${ARGN})
  set(target parley_${name})
  add_library(${target} MODULE ${ARG_SOURCES})
  set_target_properties(${target} PROPERTIES
    PREFIX ""
    CXX_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON)
  if(PARLEY_PLUGIN_OUTPUT_DIR)
    set_target_properties(${target} PROPERTIES LIBRARY_OUTPUT_DIRECTORY ${PARLEY_PLUGIN_OUTPUT_DIR})
  endif()
  target_link_libraries(${target} PRIVATE Parley::sdk ${ARG_LIBRARIES})
  target_link_options(${target} PRIVATE "LINKER:--version-script=${PARLEY_PLUGIN_EXPORTS_MAP}")
  set_property(TARGET ${target} APPEND PROPERTY LINK_DEPENDS ${PARLEY_PLUGIN_EXPORTS_MAP})
  if(ARG_MIGRATIONS)
    get_filename_component(dir "${ARG_MIGRATIONS}" ABSOLUTE)
    file(GLOB sql_files CONFIGURE_DEPENDS "${dir}/*.sql")
    list(SORT sql_files)
    set(generated ${CMAKE_CURRENT_BINARY_DIR}/${target}_migrations.cpp)
    add_custom_command(
      OUTPUT ${generated}
      COMMAND ${CMAKE_COMMAND} -DOUTPUT=${generated} "-DFILES=${sql_files}"
              -P ${PARLEY_EMBED_MIGRATIONS_SCRIPT}
      DEPENDS ${sql_files} ${PARLEY_EMBED_MIGRATIONS_SCRIPT}
      COMMENT "Embedding migrations of plugin ${name}"
      VERBATIM)
    target_sources(${target} PRIVATE ${generated})
  endif()
endfunction()
