#pragma once

// The ingress proxy's insides, for ingress_proxy.cpp alone: its shared state (Impl) and one
// client connection (Session), plain or TLS.

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <glog/logging.h>

#include "frameworks/k8s-like/proxy/http1.hpp"
#include "frameworks/k8s-like/proxy/ingress_proxy.hpp"

namespace agora::kube {

namespace net = boost::asio;
namespace ssl = boost::asio::ssl;
using tcp = net::ip::tcp;

namespace ingress_detail {

inline constexpr size_t kMaxConnections = 10000;
inline constexpr uint32_t kHeaderLimit = 64 * 1024;
inline constexpr auto kIdle = std::chrono::seconds(60);
inline constexpr auto kConnect = std::chrono::seconds(5);
inline constexpr auto kLinger = std::chrono::seconds(5);
inline constexpr size_t kChunk = 16 * 1024;

}  // namespace ingress_detail

struct IngressProxy::Impl : std::enable_shared_from_this<IngressProxy::Impl> {
  net::io_context io{1};  // run by one thread
  std::optional<net::executor_work_guard<net::io_context::executor_type>> work;
  std::vector<std::thread> threads;
  mutable std::mutex mutex;
  std::shared_ptr<const IngressTable> table = std::make_shared<IngressTable>();
  // TLS contexts by certificate (its PEM), for the table's certificates.
  std::map<std::string, std::shared_ptr<ssl::context>> contexts;
  std::vector<std::shared_ptr<tcp::acceptor>> acceptors;  // the io thread's, once listening
  std::atomic<size_t> connections{0};
  std::atomic<uint64_t> requests{0};
  std::atomic<uint64_t> turn{0};

  std::shared_ptr<const IngressTable> snapshot() {
    std::lock_guard<std::mutex> lock(mutex);
    return table;
  }

  std::shared_ptr<ssl::context> contextFor(const std::string& host) {
    std::lock_guard<std::mutex> lock(mutex);
    const TlsCertificate* cert = table->certificateFor(host);
    if (cert == nullptr) return nullptr;
    auto it = contexts.find(cert->certPem);
    return it == contexts.end() ? nullptr : it->second;
  }

  static int onServerName(SSL* ssl, int*, void* arg) {
    auto* self = static_cast<Impl*>(arg);
    const char* name = ::SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    if (name != nullptr) {
      if (auto context = self->contextFor(name)) ::SSL_set_SSL_CTX(ssl, context->native_handle());
    }
    return SSL_TLSEXT_ERR_OK;
  }

  std::shared_ptr<ssl::context> makeContext(const TlsCertificate& cert) {
    auto context = std::make_shared<ssl::context>(ssl::context::tls_server);
    boost::system::error_code ec;
    context->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                         ssl::context::no_sslv3 | ssl::context::no_tlsv1 |
                         ssl::context::no_tlsv1_1);
    context->use_certificate_chain(net::buffer(cert.certPem), ec);
    if (!ec) context->use_private_key(net::buffer(cert.keyPem), ssl::context::pem, ec);
    if (ec) {
      LOG(WARNING) << "Ingress TLS certificate not usable: " << ec.message();
      return nullptr;
    }
    ::SSL_CTX_set_tlsext_servername_callback(context->native_handle(), &Impl::onServerName);
    ::SSL_CTX_set_tlsext_servername_arg(context->native_handle(), this);
    return context;
  }

  void accept(std::shared_ptr<tcp::acceptor> acceptor, bool tls);
};

namespace ingress_detail {

// Bytes read at the end and consumed from the front, kept across messages (a client may send
// its next request before it has the answer to this one).
class Buffer {
 public:
  const char* data() const { return bytes_.data() + begin_; }
  size_t size() const { return end_ - begin_; }
  bool empty() const { return begin_ == end_; }
  std::string_view view() const { return {data(), size()}; }
  void consume(size_t n) {
    begin_ += n;
    if (begin_ == end_) begin_ = end_ = 0;
  }
  void clear() { begin_ = end_ = 0; }
  // Room for a read of up to `want` bytes.
  net::mutable_buffer space(size_t want) {
    if (bytes_.size() - end_ < want && begin_ > 0) {
      std::memmove(bytes_.data(), bytes_.data() + begin_, end_ - begin_);
      end_ -= begin_;
      begin_ = 0;
    }
    if (bytes_.size() - end_ < want) bytes_.resize(end_ + want);
    return net::buffer(bytes_.data() + end_, bytes_.size() - end_);
  }
  void commit(size_t n) { end_ += n; }

 private:
  std::vector<char> bytes_;
  size_t begin_ = 0;
  size_t end_ = 0;
};

inline const char* reason(int status) {
  switch (status) {
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 431: return "Request Header Fields Too Large";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    default: return "Error";
  }
}

inline void appendHex(std::string* out, size_t n) {
  char digits[20];
  int length = std::snprintf(digits, sizeof(digits), "%zx", n);
  out->append(digits, static_cast<size_t>(length));
}

// One client connection: requests read one after the other (keep-alive), each relayed to an
// endpoint of its route and its answer relayed back. Heads are rewritten (hop-by-hop headers
// out, X-Forwarded-* in); bodies pass through as they are framed, in pieces as they come.
// One deadline per connection, moved on by each step and checked by one timer, so no step
// costs a timer operation.
template <typename Stream>
class Session : public std::enable_shared_from_this<Session<Stream>> {
 public:
  Session(std::shared_ptr<IngressProxy::Impl> proxy, Stream stream, std::string clientIp,
          bool tls, std::shared_ptr<ssl::context> context)
      : proxy_(std::move(proxy)),
        client_(std::move(stream)),
        clientIp_(std::move(clientIp)),
        tls_(tls),
        context_(std::move(context)),
        timer_(proxy_->io) {}

  ~Session() { --proxy_->connections; }

  void start() {
    deadline_ = Clock::now() + kIdle;
    watch(deadline_);
    if constexpr (std::is_same_v<Stream, ssl::stream<tcp::socket>>) {
      client_.async_handshake(ssl::stream_base::server,
                              [self = this->shared_from_this()](boost::system::error_code ec) {
                                if (!ec) self->readRequestHead();
                              });
    } else {
      readRequestHead();
    }
  }

 private:
  using Clock = std::chrono::steady_clock;

  // The deadline: past it, both connections close (and every pending step ends).
  void touch(Clock::duration within) {
    deadline_ = Clock::now() + within;
    if (deadline_ < armed_) watch(deadline_);
  }

  void watch(Clock::time_point at) {
    armed_ = at;
    timer_.expires_at(at);
    timer_.async_wait([weak = this->weak_from_this()](boost::system::error_code ec) {
      auto self = weak.lock();
      if (ec || !self) return;
      if (Clock::now() < self->deadline_) {
        self->watch(self->deadline_);
        return;
      }
      boost::system::error_code ignored;
      self->client_.lowest_layer().close(ignored);
      if (self->upstream_) self->upstream_->close(ignored);
    });
  }

  void readRequestHead() {
    touch(kIdle);
    size_t end = http1::headEnd(in_.view(), scanned_);
    if (end != std::string_view::npos) {
      scanned_ = 0;
      onRequestHead(end);
      return;
    }
    scanned_ = in_.size();
    if (in_.size() > kHeaderLimit) {
      answer(431, "request header too large");
      return;
    }
    client_.async_read_some(in_.space(kChunk),
                            [self = this->shared_from_this()](boost::system::error_code ec,
                                                              size_t n) {
                              if (ec) {
                                // A client that stops mid-head is told; one between requests not.
                                if (ec == net::error::eof && !self->in_.empty()) {
                                  self->answer(400, "incomplete request");
                                }
                                return;
                              }
                              self->in_.commit(n);
                              self->readRequestHead();
                            });
  }

  void onRequestHead(size_t end) {
    if (Status parsed = http1::parseRequest({in_.data(), end}, &request_); !parsed) {
      answer(400, "bad request: " + parsed.error());
      return;
    }
    ++proxy_->requests;
    clientVersion_ = request_.version;
    clientKeepAlive_ = request_.keepAlive;
    headRequest_ = request_.method == "HEAD";
    table_ = proxy_->snapshot();
    backend_ = table_->route(request_.host, request_.target);
    if (backend_ == nullptr) {
      answer(404, "default backend - 404");
      return;
    }
    if (backend_->endpoints.empty()) {
      answer(503, "no ready endpoint for " + backend_->service);
      return;
    }
    requestBody_ = request_.chunked           ? http1::BodyFramer::chunked()
                   : request_.contentLength ? http1::BodyFramer::length(*request_.contentLength)
                                            : http1::BodyFramer::none();
    // The head for the endpoint: HTTP/1.1 (kept alive), this hop's headers out, ours in.
    out_.clear();
    out_.append(request_.method).append(" ").append(request_.target).append(" HTTP/1.1\r\n");
    std::string_view forwardedFor;
    for (const http1::Header& h : request_.headers) {
      if (http1::same(h.name, "x-forwarded-for")) {
        forwardedFor = h.value;
        continue;
      }
      if (http1::same(h.name, "x-real-ip") || http1::same(h.name, "x-forwarded-host") ||
          http1::same(h.name, "x-forwarded-proto") ||
          (request_.expectContinue && http1::same(h.name, "expect"))) {
        continue;
      }
      if (request_.hopByHop(h.name) && !(request_.upgrade && http1::same(h.name, "upgrade"))) {
        continue;
      }
      out_.append(h.name).append(": ").append(h.value).append("\r\n");
    }
    if (request_.chunked) out_.append("Transfer-Encoding: chunked\r\n");
    if (request_.upgrade) out_.append("Connection: upgrade\r\n");
    out_.append("X-Forwarded-For: ");
    if (!forwardedFor.empty()) out_.append(forwardedFor).append(", ");
    out_.append(clientIp_).append("\r\nX-Real-IP: ").append(clientIp_);
    out_.append("\r\nX-Forwarded-Host: ").append(request_.host);
    out_.append(tls_ ? "\r\nX-Forwarded-Proto: https\r\n\r\n" : "\r\nX-Forwarded-Proto: http\r\n\r\n");
    bool continueAsked = request_.expectContinue && clientVersion_ == 11;
    in_.consume(end);  // request_'s views are not used from here on
    if (!takeRequestBody()) return;
    requestComplete_ = requestBody_.done();
    if (continueAsked && !requestComplete_) {
      // The client waits for this before its body; the endpoint is not asked.
      static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
      net::async_write(client_, net::buffer(kContinue.data(), kContinue.size()),
                       [self = this->shared_from_this()](boost::system::error_code ec, size_t) {
                         if (!ec) self->toUpstream();
                       });
      return;
    }
    toUpstream();
  }

  // Moves what is buffered of the request's body to out_.
  bool takeRequestBody() {
    auto taken = requestBody_.take(in_.data(), in_.size());
    if (!taken) {
      answer(400, "bad request body: " + taken.error());
      return false;
    }
    out_.append(in_.data(), *taken);
    in_.consume(*taken);
    return true;
  }

  void toUpstream() {
    const auto& all = backend_->endpoints;
    if (upstream_ && std::find(all.begin(), all.end(), upstreamAt_) != all.end()) {
      reused_ = true;
      sendRequest();  // the kept connection, to an endpoint still among them
      return;
    }
    upstream_.reset();
    up_.clear();
    tries_ = 0;
    first_ = proxy_->turn++;
    connect();
  }

  void connect() {
    const auto& all = backend_->endpoints;
    if (tries_ >= std::min<size_t>(all.size(), 3)) {
      answer(502, "no endpoint of " + backend_->service + " answers");
      return;
    }
    upstreamAt_ = all[(first_ + tries_++) % all.size()];
    boost::system::error_code ec;
    tcp::endpoint endpoint(net::ip::make_address(upstreamAt_.ip, ec), upstreamAt_.port);
    if (ec) {
      connect();
      return;
    }
    reused_ = false;
    upstream_ = std::make_unique<tcp::socket>(proxy_->io);
    up_.clear();
    touch(kConnect);
    upstream_->async_connect(endpoint, [self = this->shared_from_this()](boost::system::error_code ec) {
      if (ec) {
        self->upstream_.reset();
        self->connect();
        return;
      }
      boost::system::error_code ignored;
      self->upstream_->set_option(tcp::no_delay(true), ignored);
      self->sendRequest();
    });
  }

  // A kept connection the endpoint closed meanwhile fails at once; a whole request in hand is
  // sent again on a new one.
  bool retryFresh() {
    if (!reused_ || !requestComplete_) return false;
    upstream_.reset();
    up_.clear();
    tries_ = 0;
    first_ = proxy_->turn++;
    connect();
    return true;
  }

  void sendRequest() {
    touch(kIdle);
    net::async_write(*upstream_, net::buffer(out_),
                     [self = this->shared_from_this()](boost::system::error_code ec, size_t) {
                       if (ec) {
                         if (!self->retryFresh()) {
                           self->answer(502, "cannot send to " + self->backend_->service);
                         }
                         return;
                       }
                       self->pumpRequestBody();
                     });
  }

  // The rest of the request's body, as the client sends it.
  void pumpRequestBody() {
    if (requestBody_.done()) {
      readResponseHead();
      return;
    }
    touch(kIdle);
    client_.async_read_some(in_.space(kChunk), [self = this->shared_from_this()](
                                                   boost::system::error_code ec, size_t n) {
      if (ec) {
        self->closeAll();  // the client went away mid-request
        return;
      }
      self->in_.commit(n);
      self->out_.clear();
      if (!self->takeRequestBody()) return;
      net::async_write(*self->upstream_, net::buffer(self->out_),
                       [self](boost::system::error_code ec, size_t) {
                         if (ec) {
                           self->answer(502, "cannot send to " + self->backend_->service);
                           return;
                         }
                         self->pumpRequestBody();
                       });
    });
  }

  void readResponseHead() {
    touch(kIdle);
    size_t end = http1::headEnd(up_.view(), upScanned_);
    if (end != std::string_view::npos) {
      upScanned_ = 0;
      onResponseHead(end);
      return;
    }
    upScanned_ = up_.size();
    if (up_.size() > kHeaderLimit) {
      upstream_.reset();
      answer(502, "the answer of " + backend_->service + " has too large a header");
      return;
    }
    upstream_->async_read_some(up_.space(kChunk), [self = this->shared_from_this()](
                                                      boost::system::error_code ec, size_t n) {
      if (ec) {
        bool nothing = self->up_.empty() && !self->interim_;
        if (nothing && self->retryFresh()) return;
        self->upstream_.reset();
        if (nothing) {
          self->answer(502, "the endpoint of " + self->backend_->service +
                                " did not answer: " + ec.message());
        } else {
          self->closeAll();
        }
        return;
      }
      self->up_.commit(n);
      self->readResponseHead();
    });
  }

  void onResponseHead(size_t end) {
    std::string_view text(up_.data(), end);
    if (Status parsed = http1::parseResponse(text, &response_); !parsed) {
      upstream_.reset();
      answer(502, "the endpoint of " + backend_->service + " answered badly: " + parsed.error());
      return;
    }
    int status = response_.status;
    if (status == 100) {  // the proxy said it already, or the client did not ask
      up_.consume(end);
      readResponseHead();
      return;
    }
    if (status > 100 && status < 200 && status != 101) {
      // An interim answer goes through as it is; the real one follows.
      interim_ = true;
      out_.assign(text);
      up_.consume(end);
      net::async_write(client_, net::buffer(out_),
                       [self = this->shared_from_this()](boost::system::error_code ec, size_t) {
                         if (!ec) self->readResponseHead();
                       });
      return;
    }
    bool tunnel = status == 101 && request_.upgrade;
    if (status == 101 && !tunnel) {
      upstream_.reset();
      answer(502, "the endpoint of " + backend_->service + " switched protocols unasked");
      return;
    }
    responseBody_ = tunnel || headRequest_ || status == 204 || status == 304
                        ? http1::BodyFramer::none()
                    : response_.chunked       ? http1::BodyFramer::chunked()
                    : response_.contentLength ? http1::BodyFramer::length(*response_.contentLength)
                                              : http1::BodyFramer::untilClose();
    upstreamKeepAlive_ = response_.keepAlive && !responseBody_.isUntilClose() && !tunnel;
    dechunk_ = response_.chunked && clientVersion_ == 10 && !responseBody_.done();
    wrapChunks_ = responseBody_.isUntilClose() && clientKeepAlive_ && clientVersion_ == 11;
    if (dechunk_ || (responseBody_.isUntilClose() && !wrapChunks_)) clientKeepAlive_ = false;
    // The head for the client: its version, this hop's headers out.
    out_.assign(clientVersion_ == 11 ? "HTTP/1.1" : "HTTP/1.0");
    out_.append(text.substr(8, text.find("\r\n") - 8)).append("\r\n");
    for (const http1::Header& h : response_.headers) {
      if (response_.hopByHop(h.name) && !(tunnel && http1::same(h.name, "upgrade"))) continue;
      out_.append(h.name).append(": ").append(h.value).append("\r\n");
    }
    if ((response_.chunked && !dechunk_ && !responseBody_.done()) || wrapChunks_) {
      out_.append("Transfer-Encoding: chunked\r\n");
    }
    if (tunnel) {
      out_.append("Connection: upgrade\r\n");
    } else if (!clientKeepAlive_) {
      out_.append("Connection: close\r\n");
    } else if (clientVersion_ == 10) {
      out_.append("Connection: keep-alive\r\n");
    }
    out_.append("\r\n");
    up_.consume(end);
    if (tunnel) {
      startTunnel();
      return;
    }
    if (!takeResponseBody()) return;
    writeResponse();
  }

  // Moves what is buffered of the answer's body to out_, framed for the client.
  bool takeResponseBody() {
    auto taken = responseBody_.take(up_.data(), up_.size(), dechunk_ ? &out_ : nullptr);
    if (!taken) {
      LOG(WARNING) << "Ingress: the endpoint of " << backend_->service
                   << " sent a bad body: " << taken.error();
      closeAll();
      return false;
    }
    if (!dechunk_ && *taken > 0) {
      if (wrapChunks_) {
        appendHex(&out_, *taken);
        out_.append("\r\n").append(up_.data(), *taken).append("\r\n");
      } else {
        out_.append(up_.data(), *taken);
      }
    }
    up_.consume(*taken);
    return true;
  }

  void writeResponse() {
    touch(kIdle);
    net::async_write(client_, net::buffer(out_),
                     [self = this->shared_from_this()](boost::system::error_code ec, size_t) {
                       if (ec) {
                         self->closeAll();
                         return;
                       }
                       self->pumpResponseBody();
                     });
  }

  void pumpResponseBody() {
    if (responseBody_.done()) {
      finishResponse();
      return;
    }
    touch(kIdle);
    upstream_->async_read_some(up_.space(kChunk), [self = this->shared_from_this()](
                                                      boost::system::error_code ec, size_t n) {
      self->out_.clear();
      if (ec) {
        if (ec == net::error::eof && self->responseBody_.isUntilClose()) {
          // The body that ends with the connection has ended.
          self->upstream_.reset();
          self->up_.clear();
          self->responseBody_ = http1::BodyFramer::none();
          if (self->wrapChunks_) self->out_.append("0\r\n\r\n");
          self->writeResponse();
          return;
        }
        self->closeAll();  // the client sees the connection close mid-answer
        return;
      }
      self->up_.commit(n);
      if (!self->takeResponseBody()) return;
      self->writeResponse();
    });
  }

  void finishResponse() {
    interim_ = false;
    if (!upstreamKeepAlive_ || !up_.empty()) {
      upstream_.reset();
      up_.clear();
    }
    if (clientKeepAlive_) {
      readRequestHead();
    } else {
      close();
    }
  }

  // After 101 Switching Protocols: bytes both ways as they come, until either side ends.
  void startTunnel() {
    out_.append(up_.data(), up_.size());
    up_.clear();
    upstreamKeepAlive_ = false;
    net::async_write(client_, net::buffer(out_),
                     [self = this->shared_from_this()](boost::system::error_code ec, size_t) {
                       if (ec) {
                         self->closeAll();
                         return;
                       }
                       self->tunnelUp();
                       self->tunnelDown();
                     });
  }

  void tunnelUp() {
    if (!in_.empty()) {
      size_t n = in_.size();
      net::async_write(*upstream_, net::buffer(in_.data(), n),
                       [self = this->shared_from_this(), n](boost::system::error_code ec, size_t) {
                         if (ec) {
                           self->closeAll();
                           return;
                         }
                         self->in_.consume(n);
                         self->tunnelUp();
                       });
      return;
    }
    touch(kIdle);
    client_.async_read_some(in_.space(kChunk), [self = this->shared_from_this()](
                                                   boost::system::error_code ec, size_t n) {
      if (ec) {
        boost::system::error_code ignored;
        if (self->upstream_) self->upstream_->shutdown(tcp::socket::shutdown_send, ignored);
        return;
      }
      self->in_.commit(n);
      self->tunnelUp();
    });
  }

  void tunnelDown() {
    if (!up_.empty()) {
      size_t n = up_.size();
      net::async_write(client_, net::buffer(up_.data(), n),
                       [self = this->shared_from_this(), n](boost::system::error_code ec, size_t) {
                         if (ec) {
                           self->closeAll();
                           return;
                         }
                         self->up_.consume(n);
                         self->tunnelDown();
                       });
      return;
    }
    touch(kIdle);
    upstream_->async_read_some(up_.space(kChunk), [self = this->shared_from_this()](
                                                      boost::system::error_code ec, size_t n) {
      if (ec) {
        // The client's side reads on (tunnelUp) until the client ends too.
        boost::system::error_code ignored;
        self->client_.lowest_layer().shutdown(tcp::socket::shutdown_send, ignored);
        return;
      }
      self->up_.commit(n);
      self->tunnelDown();
    });
  }

  // The proxy's own answer, after which the connection closes.
  void answer(int status, const std::string& text) {
    std::string body = text + "\n";
    out_.assign(clientVersion_ == 10 ? "HTTP/1.0 " : "HTTP/1.1 ");
    out_.append(std::to_string(status)).append(" ").append(reason(status));
    out_.append("\r\nContent-Type: text/plain; charset=utf-8\r\nServer: agora-ingress\r\n");
    out_.append("Connection: close\r\nContent-Length: ").append(std::to_string(body.size()));
    out_.append("\r\n\r\n").append(body);
    touch(kIdle);
    net::async_write(client_, net::buffer(out_),
                     [self = this->shared_from_this()](boost::system::error_code, size_t) {
                       self->close();
                     });
  }

  // Closes the client's connection after what was written, reading (and dropping) what it
  // still sends for a while: closing with unread bytes would reset the connection, and the
  // client could lose the answer.
  void close() {
    boost::system::error_code ignored;
    client_.lowest_layer().shutdown(tcp::socket::shutdown_send, ignored);
    in_.clear();
    touch(kLinger);
    linger();
  }

  tcp::socket& rawSocket() {
    if constexpr (std::is_same_v<Stream, tcp::socket>) {
      return client_;
    } else {
      return client_.next_layer();
    }
  }

  void linger() {
    rawSocket().async_read_some(
        in_.space(kChunk), [self = this->shared_from_this()](boost::system::error_code ec, size_t) {
          if (!ec) self->linger();
        });
  }

  void closeAll() {
    boost::system::error_code ignored;
    client_.lowest_layer().close(ignored);
    upstream_.reset();
  }

  std::shared_ptr<IngressProxy::Impl> proxy_;
  Stream client_;
  std::string clientIp_;
  bool tls_;
  std::shared_ptr<ssl::context> context_;  // kept while the TLS stream uses it
  net::steady_timer timer_;
  Clock::time_point deadline_;
  Clock::time_point armed_ = Clock::time_point::max();
  Buffer in_;  // from the client
  size_t scanned_ = 0;
  http1::Head request_;
  http1::BodyFramer requestBody_;
  std::string out_;  // what is being written, to either side
  std::unique_ptr<tcp::socket> upstream_;
  Backend upstreamAt_;
  Buffer up_;  // from the endpoint
  size_t upScanned_ = 0;
  http1::Head response_;
  http1::BodyFramer responseBody_;
  std::shared_ptr<const IngressTable> table_;  // keeps backend_ valid
  const IngressBackend* backend_ = nullptr;
  int clientVersion_ = 11;
  bool clientKeepAlive_ = false;
  bool upstreamKeepAlive_ = false;
  bool headRequest_ = false;
  bool requestComplete_ = false;  // all of it in out_, so it can be sent again
  bool reused_ = false;  // the endpoint's connection served an earlier request
  bool interim_ = false;  // a 1xx went to the client
  bool dechunk_ = false;  // a chunked answer to an HTTP/1.0 client
  bool wrapChunks_ = false;  // an answer ending at close, chunked for a kept client
  size_t tries_ = 0;
  uint64_t first_ = 0;
};

}  // namespace ingress_detail

}  // namespace agora::kube
