#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "coalescing_stream.hpp"  // kernel/src/asio

namespace parley::net {
namespace {

// Each test runs on a thread of its own: the cache is per thread.
template <class Body>
void on_fresh_thread(Body body) {
  std::thread(body).join();
}

TEST(WriteBufferCacheTest, AGivenBufferIsTakenAgainEmptyWithItsMemory) {
  on_fresh_thread([] {
    std::string buffer = WriteBufferCache::take();
    EXPECT_TRUE(buffer.empty());
    EXPECT_GE(buffer.capacity(), WriteBufferCache::kInitialCapacity);
    buffer.assign(3000, 'x');
    const char* memory = buffer.data();
    WriteBufferCache::give(buffer);
    EXPECT_TRUE(buffer.empty());
    EXPECT_LT(buffer.capacity(), WriteBufferCache::kInitialCapacity);
    std::string again = WriteBufferCache::take();
    EXPECT_TRUE(again.empty());
    EXPECT_EQ(again.data(), memory);
  });
}

TEST(WriteBufferCacheTest, BuffersTooSmallOrTooLargeAreNotKept) {
  on_fresh_thread([] {
    std::string small = "a few bytes";
    WriteBufferCache::give(small);
    std::string large(WriteBufferCache::kMaxCapacity + 1, 'x');
    WriteBufferCache::give(large);
    EXPECT_TRUE(small.empty());
    EXPECT_TRUE(large.empty());
    // Had either been kept, it would come back with its own capacity.
    for (int i = 0; i < 2; ++i) {
      const std::string taken = WriteBufferCache::take();
      EXPECT_GE(taken.capacity(), WriteBufferCache::kInitialCapacity);
      EXPECT_LE(taken.capacity(), WriteBufferCache::kMaxCapacity);
    }
  });
}

TEST(WriteBufferCacheTest, KeepsAtMostItsLimitPerThread) {
  on_fresh_thread([] {
    std::vector<std::string> buffers;
    for (std::size_t i = 0; i < WriteBufferCache::kMaxBuffers + 10; ++i) {
      buffers.push_back(WriteBufferCache::take());
    }
    std::vector<const char*> given;
    for (auto& buffer : buffers) {
      given.push_back(buffer.data());
      WriteBufferCache::give(buffer);
    }
    // The first kMaxBuffers were kept and come back last given, first taken;
    // the ten past the limit were freed.
    for (std::size_t i = WriteBufferCache::kMaxBuffers; i-- > 0;) {
      EXPECT_EQ(WriteBufferCache::take().data(), given[i]);
    }
  });
}

TEST(WriteBufferCacheTest, ThreadsDoNotShareBuffers) {
  const char* given = nullptr;
  on_fresh_thread([&] {
    std::string buffer = WriteBufferCache::take();
    given = buffer.data();
    WriteBufferCache::give(buffer);
    on_fresh_thread([&] {
      std::string other = WriteBufferCache::take();
      EXPECT_NE(other.data(), given);
    });
  });
}

}  // namespace
}  // namespace parley::net
