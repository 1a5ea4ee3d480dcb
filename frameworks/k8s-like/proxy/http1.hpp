#pragma once

// HTTP/1.x message framing for the ingress proxy, which relays messages rather than
// interpreting them: where a head ends, what its start line and the few headers that decide
// framing and connection handling say, and where a body ends (a length, chunks, or the
// connection's close). Nothing is copied: a Head's views point into the caller's buffer.
// Pure, so it is tested without sockets (tests/unit/kube_http1_test.cpp).

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"

namespace agora::kube::http1 {

struct Header {
  std::string_view name;
  std::string_view value;
};

struct Head {
  std::string_view method;  // requests
  std::string_view target;
  int status = 0;  // responses
  int version = 11;  // 10 or 11
  std::vector<Header> headers;  // in order, as sent
  std::optional<uint64_t> contentLength;
  bool chunked = false;  // Transfer-Encoding ends in chunked
  bool keepAlive = true;  // from the version and Connection
  bool upgrade = false;  // Connection: upgrade with an Upgrade header
  bool expectContinue = false;
  std::string_view host;
  std::vector<std::string_view> connectionTokens;  // Connection's list

  // Whether a header concerns only this hop: Connection, Keep-Alive, Proxy-Connection,
  // Transfer-Encoding, TE, Trailer, Upgrade, and the ones Connection names.
  bool hopByHop(std::string_view name) const;
  void clear();
};

// Where the head that starts `buffered` ends (just past its blank line), or npos. `from` is
// how far an earlier call looked, so a head arriving in pieces is scanned once.
size_t headEnd(std::string_view buffered, size_t from = 0);

// Parse a head (start line to blank line). Errors say what is wrong, for a 400 or a 502.
Status parseRequest(std::string_view text, Head* head);
Status parseResponse(std::string_view text, Head* head);

// Case-insensitive ASCII comparison, for header names and tokens.
bool same(std::string_view a, std::string_view b);

// Where a body ends, fed the bytes that follow its head in whatever pieces they come.
class BodyFramer {
 public:
  static BodyFramer none();
  static BodyFramer length(uint64_t bytes);
  static BodyFramer chunked();
  static BodyFramer untilClose();

  // How many of the `size` bytes at `data` belong to the body (the rest is the next
  // message's). With `dechunked`, a chunked body's data is appended to it without the chunks'
  // framing. Fails on a malformed chunk.
  Result<size_t> take(const char* data, size_t size, std::string* dechunked = nullptr);
  bool done() const { return state_ == State::kDone; }
  bool isUntilClose() const { return state_ == State::kUntilClose; }
  bool isChunked() const { return chunked_; }

 private:
  enum class State {
    kDone,
    kUntilClose,
    kLength,  // remaining_ bytes to go
    kChunkSize,
    kChunkExtension,  // to the end of the size line
    kChunkSizeLf,
    kChunkData,  // remaining_ bytes
    kChunkDataCr,
    kChunkDataLf,
    kTrailerStart,  // a trailer line or the final blank line
    kTrailer,
    kTrailerLf,
    kFinalLf,
  };
  State state_ = State::kDone;
  uint64_t remaining_ = 0;
  bool chunked_ = false;
  int sizeDigits_ = 0;
};

}  // namespace agora::kube::http1
