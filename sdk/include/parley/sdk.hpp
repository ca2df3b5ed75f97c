// Everything a plugin needs, in one include.
#pragma once

#include "parley/bus.hpp"
#include "parley/clock.hpp"
#include "parley/config.hpp"
#include "parley/database.hpp"
#include "parley/gateway.hpp"
#include "parley/host.hpp"
#include "parley/log.hpp"
#include "parley/metrics.hpp"
#include "parley/plugin.hpp"
#include "parley/status.hpp"
#include "parley/timestamp.hpp"
#include "parley/version.hpp"
