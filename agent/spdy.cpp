#include "agent/spdy.hpp"

#include <algorithm>
#include <vector>

namespace agora::spdy {

namespace {

constexpr size_t kMaxFrame = 16 * 1024 * 1024;
constexpr size_t kMaxHeaderBlock = 1024 * 1024;

// SPDY/3's zlib dictionary (the spec's section 2.6.10.1): header names and common values, each
// with its 4-byte length in front, then a run of status codes, reason phrases, dates and media
// types.
const std::string& dictionary() {
  static const std::string bytes = [] {
    static const char* const kWords[] = {
        "options", "head", "post", "put", "delete", "trace", "accept", "accept-charset",
        "accept-encoding", "accept-language", "accept-ranges", "age", "allow", "authorization",
        "cache-control", "connection", "content-base", "content-encoding", "content-language",
        "content-length", "content-location", "content-md5", "content-range", "content-type",
        "date", "etag", "expect", "expires", "from", "host", "if-match", "if-modified-since",
        "if-none-match", "if-range", "if-unmodified-since", "last-modified", "location",
        "max-forwards", "pragma", "proxy-authenticate", "proxy-authorization", "range",
        "referer", "retry-after", "server", "te", "trailer", "transfer-encoding", "upgrade",
        "user-agent", "vary", "via", "warning", "www-authenticate", "method", "get", "status",
        "200 OK", "version", "HTTP/1.1", "url", "public", "set-cookie", "keep-alive", "origin"};
    std::string out;
    for (const char* word : kWords) {
      std::string w = word;
      out.push_back('\0');
      out.push_back('\0');
      out.push_back('\0');
      out.push_back(static_cast<char>(w.size()));
      out += w;
    }
    out +=
        "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504"
        "505203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request"
        "401 Unauthorized403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented"
        "503 Service UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 Mon, "
        "Tue, Wed, Thu, Fri, Sat, Sun, GMTchunked,text/html,image/png,image/jpg,image/gif,"
        "application/xml,application/xhtml+xml,text/plain,text/javascript,publicprivatemax-age="
        "gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0.";
    return out;
  }();
  return bytes;
}

void put32(std::string& out, uint32_t v) {
  out.push_back(static_cast<char>(v >> 24));
  out.push_back(static_cast<char>((v >> 16) & 0xFF));
  out.push_back(static_cast<char>((v >> 8) & 0xFF));
  out.push_back(static_cast<char>(v & 0xFF));
}

uint32_t get32(std::string_view in, size_t at) {
  return (uint32_t{static_cast<uint8_t>(in[at])} << 24) |
         (uint32_t{static_cast<uint8_t>(in[at + 1])} << 16) |
         (uint32_t{static_cast<uint8_t>(in[at + 2])} << 8) | static_cast<uint8_t>(in[at + 3]);
}

std::string control(Type type, uint8_t flags, std::string_view body) {
  std::string out;
  out.push_back(static_cast<char>(0x80));
  out.push_back(3);  // version
  out.push_back(static_cast<char>(static_cast<uint16_t>(type) >> 8));
  out.push_back(static_cast<char>(static_cast<uint16_t>(type) & 0xFF));
  out.push_back(static_cast<char>(flags));
  out.push_back(static_cast<char>((body.size() >> 16) & 0xFF));
  out.push_back(static_cast<char>((body.size() >> 8) & 0xFF));
  out.push_back(static_cast<char>(body.size() & 0xFF));
  out.append(body);
  return out;
}

}  // namespace

HeaderCodec::HeaderCodec(bool compress) : compress_(compress) {
  if (compress_) {
    ready_ = deflateInit(&zs_, Z_DEFAULT_COMPRESSION) == Z_OK &&
             deflateSetDictionary(&zs_, reinterpret_cast<const Bytef*>(dictionary().data()),
                                  static_cast<uInt>(dictionary().size())) == Z_OK;
  } else {
    ready_ = inflateInit(&zs_) == Z_OK;
  }
}

HeaderCodec::~HeaderCodec() {
  if (compress_) {
    deflateEnd(&zs_);
  } else {
    inflateEnd(&zs_);
  }
}

std::string HeaderCodec::encode(const Headers& headers) {
  std::string plain;
  put32(plain, static_cast<uint32_t>(headers.size()));
  for (const auto& [name, value] : headers) {
    put32(plain, static_cast<uint32_t>(name.size()));
    plain += name;
    put32(plain, static_cast<uint32_t>(value.size()));
    plain += value;
  }
  std::string out;
  zs_.next_in = reinterpret_cast<Bytef*>(plain.data());
  zs_.avail_in = static_cast<uInt>(plain.size());
  char buffer[4096];
  do {
    zs_.next_out = reinterpret_cast<Bytef*>(buffer);
    zs_.avail_out = sizeof(buffer);
    deflate(&zs_, Z_SYNC_FLUSH);
    out.append(buffer, sizeof(buffer) - zs_.avail_out);
  } while (zs_.avail_out == 0);
  return out;
}

Result<Headers> HeaderCodec::decode(std::string_view block) {
  if (!ready_) return Error("no zlib");
  std::string plain;
  zs_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(block.data()));
  zs_.avail_in = static_cast<uInt>(block.size());
  char buffer[4096];
  do {
    zs_.next_out = reinterpret_cast<Bytef*>(buffer);
    zs_.avail_out = sizeof(buffer);
    int rc = inflate(&zs_, Z_SYNC_FLUSH);
    if (rc == Z_NEED_DICT) {
      rc = inflateSetDictionary(&zs_, reinterpret_cast<const Bytef*>(dictionary().data()),
                                static_cast<uInt>(dictionary().size()));
      if (rc != Z_OK) return Error("a header block wants another dictionary than SPDY/3's");
      zs_.avail_out = 0;  // go round again
      continue;
    }
    plain.append(buffer, sizeof(buffer) - zs_.avail_out);
    if (rc == Z_BUF_ERROR) break;  // all of it is out
    if (rc != Z_OK) return Error("a header block does not inflate");
    if (plain.size() > kMaxHeaderBlock) return Error("a header block is too large");
  } while (zs_.avail_in > 0 || zs_.avail_out == 0);
  Headers out;
  std::string_view in(plain);
  if (in.size() < 4) return Error("a header block is cut short");
  uint32_t count = get32(in, 0);
  size_t at = 4;
  for (uint32_t i = 0; i < count; ++i) {
    std::string pair[2];
    for (std::string& part : pair) {
      if (in.size() < at + 4) return Error("a header block is cut short");
      uint32_t length = get32(in, at);
      at += 4;
      if (in.size() - at < length) return Error("a header block is cut short");
      part = std::string(in.substr(at, length));
      at += length;
    }
    std::transform(pair[0].begin(), pair[0].end(), pair[0].begin(), ::tolower);
    out[pair[0]] = pair[1];
  }
  return out;
}

std::string dataFrame(uint32_t streamId, std::string_view data, bool fin) {
  std::string out;
  put32(out, streamId & 0x7FFFFFFF);
  out.push_back(static_cast<char>(fin ? kFlagFin : 0));
  out.push_back(static_cast<char>((data.size() >> 16) & 0xFF));
  out.push_back(static_cast<char>((data.size() >> 8) & 0xFF));
  out.push_back(static_cast<char>(data.size() & 0xFF));
  out.append(data);
  return out;
}

std::string synReply(HeaderCodec& codec, uint32_t streamId, const Headers& headers, bool fin) {
  std::string body;
  put32(body, streamId & 0x7FFFFFFF);
  body += codec.encode(headers);
  return control(Type::kSynReply, fin ? kFlagFin : 0, body);
}

std::string synStream(HeaderCodec& codec, uint32_t streamId, const Headers& headers, bool fin) {
  std::string body;
  put32(body, streamId & 0x7FFFFFFF);
  put32(body, 0);       // associated to no stream
  body.push_back(0);    // priority
  body.push_back(0);    // slot
  body += codec.encode(headers);
  return control(Type::kSynStream, fin ? kFlagFin : 0, body);
}

std::string rstStream(uint32_t streamId, uint32_t status) {
  std::string body;
  put32(body, streamId & 0x7FFFFFFF);
  put32(body, status);
  return control(Type::kRstStream, 0, body);
}

std::string ping(uint32_t id) {
  std::string body;
  put32(body, id);
  return control(Type::kPing, 0, body);
}

std::string goAway(uint32_t lastStreamId) {
  std::string body;
  put32(body, lastStreamId & 0x7FFFFFFF);
  put32(body, 0);  // OK
  return control(Type::kGoAway, 0, body);
}

Result<std::optional<Frame>> Decoder::next() {
  std::string_view in(buffer_);
  in.remove_prefix(consumed_);
  if (in.size() < 8) return std::optional<Frame>();
  uint32_t length = (uint32_t{static_cast<uint8_t>(in[5])} << 16) |
                    (uint32_t{static_cast<uint8_t>(in[6])} << 8) | static_cast<uint8_t>(in[7]);
  if (length > kMaxFrame) return Error("a frame is larger than 16 MiB");
  if (in.size() < 8 + length) return std::optional<Frame>();
  std::string_view body = in.substr(8, length);
  Frame frame;
  frame.flags = static_cast<uint8_t>(in[4]);
  bool isControl = (static_cast<uint8_t>(in[0]) & 0x80) != 0;
  consumed_ += 8 + length;
  if (consumed_ == buffer_.size() || consumed_ > 64 * 1024) {
    buffer_.erase(0, consumed_);
    consumed_ = 0;
  }
  if (!isControl) {
    frame.type = Type::kData;
    frame.streamId = get32(in, 0) & 0x7FFFFFFF;
    frame.data = std::string(body);
    return std::optional<Frame>(std::move(frame));
  }
  uint16_t version = static_cast<uint16_t>(((static_cast<uint8_t>(in[0]) & 0x7F) << 8) |
                                           static_cast<uint8_t>(in[1]));
  if (version != 3) return Error("SPDY version " + std::to_string(version) + " is not spoken");
  uint16_t type = static_cast<uint16_t>((static_cast<uint8_t>(in[2]) << 8) |
                                        static_cast<uint8_t>(in[3]));
  frame.type = static_cast<Type>(type);
  auto need = [&](size_t bytes) { return body.size() >= bytes; };
  switch (frame.type) {
    case Type::kSynStream: {
      if (!need(10)) return Error("a SYN_STREAM frame is cut short");
      frame.streamId = get32(body, 0) & 0x7FFFFFFF;
      auto headers = headers_.decode(body.substr(10));
      if (!headers) return Error(headers.error());
      frame.headers = std::move(*headers);
      break;
    }
    case Type::kSynReply:
    case Type::kHeaders: {
      if (!need(4)) return Error("a SYN_REPLY or HEADERS frame is cut short");
      frame.streamId = get32(body, 0) & 0x7FFFFFFF;
      auto headers = headers_.decode(body.substr(4));
      if (!headers) return Error(headers.error());
      frame.headers = std::move(*headers);
      break;
    }
    case Type::kRstStream:
    case Type::kWindowUpdate:
      if (!need(8)) return Error("a RST_STREAM or WINDOW_UPDATE frame is cut short");
      frame.streamId = get32(body, 0) & 0x7FFFFFFF;
      frame.value = get32(body, 4);
      break;
    case Type::kPing:
      if (!need(4)) return Error("a PING frame is cut short");
      frame.value = get32(body, 0);
      break;
    case Type::kGoAway:
      if (!need(4)) return Error("a GOAWAY frame is cut short");
      frame.value = get32(body, 0) & 0x7FFFFFFF;
      break;
    default:
      break;  // SETTINGS and the rest: nothing this side acts on
  }
  return std::optional<Frame>(std::move(frame));
}

}  // namespace agora::spdy
