// The kernel's threads carry names (`top -H`, `ps -L`, `perf`, gdb): an
// operator watching a busy server sees which part is busy, the gateway, the
// workers or the database, instead of a column of `parleyd`s.
#pragma once

#include <string_view>

#include <boost/asio/thread_pool.hpp>

namespace parley::kernel {

// Names the calling thread; Linux keeps the first 15 bytes.
void name_this_thread(std::string_view name);

// Names each of the `threads` threads of `pool`, which must be idle: it
// returns once every one of them has taken its name.
void name_pool_threads(boost::asio::thread_pool& pool, int threads, std::string_view name);

}  // namespace parley::kernel
