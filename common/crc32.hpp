#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace agora {

// CRC-32 (IEEE 802.3, as zlib computes it) of `data`.
uint32_t crc32(std::string_view data);

}  // namespace agora
