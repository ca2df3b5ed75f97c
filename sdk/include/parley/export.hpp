// Symbol visibility for types that must be identical across the kernel and
// plugins (exceptions caught on the other side of the boundary).
#pragma once

#define PARLEY_SDK_VISIBLE __attribute__((visibility("default")))
