#include "thread_names.hpp"

#include <pthread.h>

#include <barrier>
#include <memory>
#include <string>

#include <boost/asio/post.hpp>

namespace parley::kernel {

void name_this_thread(std::string_view name) {
  const std::string truncated(name.substr(0, 15));
  pthread_setname_np(pthread_self(), truncated.c_str());
}

void name_pool_threads(boost::asio::thread_pool& pool, int threads, std::string_view name) {
  // A thread holds its naming job until all have started one, so no thread
  // can take two and leave another unnamed. Shared: a thread may still be
  // inside arrive_and_wait() when this function returns.
  auto all_named = std::make_shared<std::barrier<>>(threads + 1);
  for (int i = 0; i < threads; ++i) {
    boost::asio::post(pool, [all_named, name = std::string(name)] {
      name_this_thread(name);
      all_named->arrive_and_wait();
    });
  }
  all_named->arrive_and_wait();
}

}  // namespace parley::kernel
