#include "frameworks/k8s-like/proxy/http1.hpp"

#include <cstring>

namespace agora::kube::http1 {

namespace {

char lowerAscii(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

bool isToken(char c) {
  if (c >= 'a' && c <= 'z') return true;
  if (c >= 'A' && c <= 'Z') return true;
  if (c >= '0' && c <= '9') return true;
  return std::strchr("!#$%&'*+-.^_`|~", c) != nullptr && c != '\0';
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Calls f on each element of a comma-separated list, trimmed and not empty.
template <typename F>
void eachElement(std::string_view list, F f) {
  while (!list.empty()) {
    size_t comma = list.find(',');
    std::string_view element = trim(list.substr(0, comma));
    if (!element.empty()) f(element);
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
}

bool parseVersion(std::string_view text, int* version) {
  if (text == "HTTP/1.1") {
    *version = 11;
  } else if (text == "HTTP/1.0") {
    *version = 10;
  } else {
    return false;
  }
  return true;
}

// The header lines after the start line, and what they say about framing and the connection.
Status parseHeaders(std::string_view text, Head* head) {
  bool transferEncoding = false;
  while (!text.empty()) {
    size_t eol = text.find("\r\n");
    if (eol == std::string_view::npos) return Error("a header line does not end in CRLF");
    std::string_view line = text.substr(0, eol);
    text.remove_prefix(eol + 2);
    if (line.empty()) break;  // the blank line
    if (line.front() == ' ' || line.front() == '\t') return Error("folded header line");
    size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) return Error("header line without a name");
    std::string_view name = line.substr(0, colon);
    for (char c : name) {
      if (!isToken(c)) return Error("bad character in header name");
    }
    std::string_view value = trim(line.substr(colon + 1));
    head->headers.push_back({name, value});
    if (same(name, "content-length")) {
      if (value.empty() || value.size() > 18) return Error("bad Content-Length");
      uint64_t n = 0;
      for (char c : value) {
        if (c < '0' || c > '9') return Error("bad Content-Length");
        n = n * 10 + static_cast<uint64_t>(c - '0');
      }
      if (head->contentLength && *head->contentLength != n) {
        return Error("conflicting Content-Length headers");
      }
      head->contentLength = n;
    } else if (same(name, "transfer-encoding")) {
      transferEncoding = true;
      std::string_view last;
      eachElement(value, [&](std::string_view e) { last = e; });
      head->chunked = same(last, "chunked");
    } else if (same(name, "connection")) {
      eachElement(value, [&](std::string_view e) { head->connectionTokens.push_back(e); });
    } else if (same(name, "host")) {
      head->host = value;
    } else if (same(name, "expect")) {
      head->expectContinue = same(value, "100-continue");
    }
  }
  if (transferEncoding && head->contentLength) {
    return Error("both Transfer-Encoding and Content-Length");
  }
  if (transferEncoding && !head->chunked) return Error("a Transfer-Encoding other than chunked");
  bool close = false;
  bool keepAlive = false;
  bool upgrade = false;
  for (std::string_view token : head->connectionTokens) {
    close = close || same(token, "close");
    keepAlive = keepAlive || same(token, "keep-alive");
    upgrade = upgrade || same(token, "upgrade");
  }
  head->keepAlive = head->version == 11 ? !close : keepAlive && !close;
  if (upgrade) {
    for (const Header& h : head->headers) head->upgrade = head->upgrade || same(h.name, "upgrade");
  }
  return ok();
}

}  // namespace

bool same(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (lowerAscii(a[i]) != lowerAscii(b[i])) return false;
  }
  return true;
}

bool Head::hopByHop(std::string_view name) const {
  static constexpr std::string_view kAlways[] = {"connection", "keep-alive", "proxy-connection",
                                                 "transfer-encoding", "te", "trailer", "upgrade"};
  for (std::string_view h : kAlways) {
    if (same(name, h)) return true;
  }
  for (std::string_view token : connectionTokens) {
    if (same(name, token)) return true;
  }
  return false;
}

void Head::clear() {
  method = target = host = {};
  status = 0;
  version = 11;
  headers.clear();
  contentLength.reset();
  chunked = upgrade = expectContinue = false;
  keepAlive = true;
  connectionTokens.clear();
}

size_t headEnd(std::string_view buffered, size_t from) {
  from = from > 3 ? from - 3 : 0;
  size_t at = buffered.find("\r\n\r\n", from);
  return at == std::string_view::npos ? std::string_view::npos : at + 4;
}

Status parseRequest(std::string_view text, Head* head) {
  head->clear();
  size_t eol = text.find("\r\n");
  if (eol == std::string_view::npos) return Error("no request line");
  std::string_view line = text.substr(0, eol);
  size_t sp1 = line.find(' ');
  size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || sp1 == 0 || sp2 == sp1 + 1) {
    return Error("malformed request line");
  }
  head->method = line.substr(0, sp1);
  for (char c : head->method) {
    if (!isToken(c)) return Error("bad method");
  }
  head->target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  for (char c : head->target) {
    if (static_cast<unsigned char>(c) <= ' ' || c == 0x7f) return Error("bad request target");
  }
  if (!parseVersion(line.substr(sp2 + 1), &head->version)) {
    return Error("unsupported HTTP version");
  }
  return parseHeaders(text.substr(eol + 2), head);
}

Status parseResponse(std::string_view text, Head* head) {
  head->clear();
  size_t eol = text.find("\r\n");
  if (eol == std::string_view::npos) return Error("no status line");
  std::string_view line = text.substr(0, eol);
  if (line.size() < 12 || line[8] != ' ' || !parseVersion(line.substr(0, 8), &head->version)) {
    return Error("malformed status line");
  }
  int status = 0;
  for (size_t i = 9; i < 12; ++i) {
    if (line[i] < '0' || line[i] > '9') return Error("malformed status code");
    status = status * 10 + (line[i] - '0');
  }
  if (status < 100 || (line.size() > 12 && line[12] != ' ')) return Error("malformed status code");
  head->status = status;
  return parseHeaders(text.substr(eol + 2), head);
}

BodyFramer BodyFramer::none() { return BodyFramer(); }

BodyFramer BodyFramer::length(uint64_t bytes) {
  BodyFramer f;
  f.state_ = bytes == 0 ? State::kDone : State::kLength;
  f.remaining_ = bytes;
  return f;
}

BodyFramer BodyFramer::chunked() {
  BodyFramer f;
  f.state_ = State::kChunkSize;
  f.chunked_ = true;
  return f;
}

BodyFramer BodyFramer::untilClose() {
  BodyFramer f;
  f.state_ = State::kUntilClose;
  return f;
}

Result<size_t> BodyFramer::take(const char* data, size_t size, std::string* dechunked) {
  size_t i = 0;
  while (i < size && state_ != State::kDone) {
    char c = data[i];
    switch (state_) {
      case State::kDone:
        break;
      case State::kUntilClose:
        if (dechunked != nullptr) dechunked->append(data + i, size - i);
        return size;
      case State::kLength: {
        uint64_t n = std::min<uint64_t>(remaining_, size - i);
        i += n;
        remaining_ -= n;
        if (remaining_ == 0) state_ = State::kDone;
        continue;
      }
      case State::kChunkSize: {
        int digit = c >= '0' && c <= '9'   ? c - '0'
                    : c >= 'a' && c <= 'f' ? c - 'a' + 10
                    : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                           : -1;
        if (digit >= 0) {
          if (++sizeDigits_ > 15) return Error("chunk size too large");
          remaining_ = remaining_ * 16 + static_cast<uint64_t>(digit);
        } else if (sizeDigits_ == 0) {
          return Error("malformed chunk size");
        } else if (c == '\r') {
          state_ = State::kChunkSizeLf;
        } else if (c == ';' || c == ' ' || c == '\t') {
          state_ = State::kChunkExtension;
        } else {
          return Error("malformed chunk size");
        }
        break;
      }
      case State::kChunkExtension:
        if (c == '\r') state_ = State::kChunkSizeLf;
        break;
      case State::kChunkSizeLf:
        if (c != '\n') return Error("malformed chunk size line");
        sizeDigits_ = 0;
        state_ = remaining_ == 0 ? State::kTrailerStart : State::kChunkData;
        break;
      case State::kChunkData: {
        uint64_t n = std::min<uint64_t>(remaining_, size - i);
        if (dechunked != nullptr) dechunked->append(data + i, n);
        i += n;
        remaining_ -= n;
        if (remaining_ == 0) state_ = State::kChunkDataCr;
        continue;
      }
      case State::kChunkDataCr:
        if (c != '\r') return Error("chunk data longer than its size");
        state_ = State::kChunkDataLf;
        break;
      case State::kChunkDataLf:
        if (c != '\n') return Error("chunk data longer than its size");
        state_ = State::kChunkSize;
        break;
      case State::kTrailerStart:
        state_ = c == '\r' ? State::kFinalLf : State::kTrailer;
        break;
      case State::kTrailer:
        if (c == '\r') state_ = State::kTrailerLf;
        break;
      case State::kTrailerLf:
        if (c != '\n') return Error("malformed trailer");
        state_ = State::kTrailerStart;
        break;
      case State::kFinalLf:
        if (c != '\n') return Error("malformed end of chunked body");
        state_ = State::kDone;
        break;
    }
    ++i;
  }
  return i;
}

}  // namespace agora::kube::http1
