// The SQL migrations embedded in this plugin by parley_add_plugin(... MIGRATIONS dir):
// every `NNN_name.sql` of that folder, in version order. Pass them to
// Database::migrate() in start().
#pragma once

#include <span>

#include "parley/database.hpp"

std::span<const parley::Migration> parley_plugin_migrations();
