#include "frameworks/k8s-like/proxy/service_proxy.hpp"

#include <sys/socket.h>

#include <array>
#include <atomic>
#include <chrono>
#include <functional>
#include <future>
#include <set>
#include <map>
#include <mutex>
#include <optional>
#include <thread>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <glog/logging.h>

namespace agora::kube {

namespace net = boost::asio;
using tcp = net::ip::tcp;
using udp = net::ip::udp;
using Clock = std::chrono::steady_clock;

namespace {

constexpr size_t kBufferSize = 64 * 1024;
constexpr auto kConnectTimeout = std::chrono::seconds(3);
constexpr auto kUdpIdle = std::chrono::seconds(30);

// One frontend's choice of endpoint, shared by its TCP or UDP listener.
class Balancer {
 public:
  void set(const Frontend& f) {
    std::lock_guard<std::mutex> lock(mutex_);
    frontend_ = f;
  }

  std::string name() {
    std::lock_guard<std::mutex> lock(mutex_);
    return frontend_.key() + " (" + frontend_.service + ")";
  }

  // The endpoints to try, best first: the client's own under affinity, else the next in turn.
  std::vector<Backend> pick(const std::string& client) {
    std::lock_guard<std::mutex> lock(mutex_);
    const auto& all = frontend_.backends;
    std::vector<Backend> order;
    if (all.empty()) {
      return order;
    }
    size_t first = next_++ % all.size();
    if (frontend_.affinitySeconds > 0) {
      auto now = Clock::now();
      auto it = sticky_.find(client);
      if (it != sticky_.end() && it->second.second > now) {
        auto at = std::find(all.begin(), all.end(), it->second.first);
        if (at != all.end()) first = static_cast<size_t>(at - all.begin());
      }
      sticky_[client] = {all[first], now + std::chrono::seconds(frontend_.affinitySeconds)};
      if (sticky_.size() > 100000) sticky_.clear();  // bounded: clients start over
    }
    for (size_t i = 0; i < all.size() && i < 3; ++i) {
      order.push_back(all[(first + i) % all.size()]);
    }
    return order;
  }

 private:
  std::mutex mutex_;
  Frontend frontend_;
  size_t next_ = 0;
  std::map<std::string, std::pair<Backend, Clock::time_point>> sticky_;
};

// Two TCP sockets relayed both ways; each direction ends with a half-close of the other side.
class Pipe : public std::enable_shared_from_this<Pipe> {
 public:
  Pipe(tcp::socket client, tcp::socket backend)
      : client_(std::move(client)), backend_(std::move(backend)) {}

  void start() {
    boost::system::error_code ignored;
    client_.set_option(tcp::no_delay(true), ignored);
    backend_.set_option(tcp::no_delay(true), ignored);
    relay(client_, backend_, up_);
    relay(backend_, client_, down_);
  }

 private:
  void relay(tcp::socket& from, tcp::socket& to, std::array<char, kBufferSize>& buffer) {
    auto self = shared_from_this();
    from.async_read_some(net::buffer(buffer), [this, self, &from, &to, &buffer](
                                                  boost::system::error_code ec, size_t n) {
      if (ec) {
        boost::system::error_code ignored;
        if (ec == net::error::eof) {
          to.shutdown(tcp::socket::shutdown_send, ignored);
        } else {
          from.close(ignored);
          to.close(ignored);
        }
        return;
      }
      net::async_write(to, net::buffer(buffer.data(), n),
                       [this, self, &from, &to, &buffer](boost::system::error_code ec, size_t) {
                         if (ec) {
                           boost::system::error_code ignored;
                           from.close(ignored);
                           to.close(ignored);
                           return;
                         }
                         relay(from, to, buffer);
                       });
    });
  }

  tcp::socket client_;
  tcp::socket backend_;
  std::array<char, kBufferSize> up_;
  std::array<char, kBufferSize> down_;
};

}  // namespace

struct ServiceProxy::Impl : std::enable_shared_from_this<ServiceProxy::Impl> {
  struct TcpListener {
    std::shared_ptr<Balancer> balancer = std::make_shared<Balancer>();
    std::shared_ptr<tcp::acceptor> acceptor;
  };
  struct UdpSession {
    udp::socket socket;
    udp::endpoint client;
    Clock::time_point last;
    std::array<char, 65536> buffer;
    std::function<void()> pump;  // reads the endpoint's answers
    explicit UdpSession(net::io_context& io) : socket(io) {}
  };
  struct UdpListener {
    std::shared_ptr<Balancer> balancer = std::make_shared<Balancer>();
    std::shared_ptr<udp::socket> socket;
    std::shared_ptr<std::array<char, 65536>> buffer = std::make_shared<std::array<char, 65536>>();
    std::shared_ptr<udp::endpoint> from = std::make_shared<udp::endpoint>();
    std::shared_ptr<std::map<udp::endpoint, std::shared_ptr<UdpSession>>> sessions =
        std::make_shared<std::map<udp::endpoint, std::shared_ptr<UdpSession>>>();
  };

  net::io_context io;
  std::optional<net::executor_work_guard<net::io_context::executor_type>> work;
  std::thread thread;
  // Touched on the io thread only (apply posts).
  std::map<std::string, TcpListener> tcp;
  std::map<std::string, UdpListener> udpListeners;
  mutable std::mutex failuresMutex;
  std::map<std::string, std::string> failures;
  std::atomic<uint64_t> connections{0};
  std::atomic<uint64_t> refused{0};
  std::unique_ptr<net::steady_timer> sweeper;

  void applyNow(const std::vector<Frontend>& rules);
  std::optional<std::string> listenTcp(const Frontend& f, TcpListener* listener);
  std::optional<std::string> listenUdp(const Frontend& f, UdpListener* listener);
  void accept(std::shared_ptr<tcp::acceptor> acceptor, std::shared_ptr<Balancer> balancer,
              std::string key);
  void connect(std::shared_ptr<tcp::socket> client, std::shared_ptr<Balancer> balancer,
               std::vector<Backend> order, size_t index);
  void receive(std::string key);
  void sweep();
};

std::optional<std::string> ServiceProxy::Impl::listenTcp(const Frontend& f,
                                                         TcpListener* listener) {
  boost::system::error_code ec;
  tcp::endpoint endpoint(net::ip::make_address(f.ip, ec), f.port);
  if (ec) return ec.message();
  auto acceptor = std::make_shared<tcp::acceptor>(io);
  acceptor->open(endpoint.protocol(), ec);
  if (!ec) acceptor->set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) acceptor->bind(endpoint, ec);
  if (!ec) acceptor->listen(net::socket_base::max_listen_connections, ec);
  if (ec) return ec.message();
  listener->acceptor = std::move(acceptor);
  return std::nullopt;
}

std::optional<std::string> ServiceProxy::Impl::listenUdp(const Frontend& f,
                                                         UdpListener* listener) {
  boost::system::error_code ec;
  udp::endpoint endpoint(net::ip::make_address(f.ip, ec), f.port);
  if (ec) return ec.message();
  auto socket = std::make_shared<udp::socket>(io);
  socket->open(endpoint.protocol(), ec);
  if (!ec) socket->bind(endpoint, ec);
  if (ec) return ec.message();
  listener->socket = std::move(socket);
  return std::nullopt;
}

void ServiceProxy::Impl::applyNow(const std::vector<Frontend>& rules) {
  std::map<std::string, std::string> failed;
  std::set<std::string> wanted;
  for (const Frontend& f : rules) {
    std::string key = f.key();
    wanted.insert(key);
    if (f.protocol == "UDP") {
      auto it = udpListeners.find(key);
      if (it == udpListeners.end()) {
        UdpListener listener;
        if (auto error = listenUdp(f, &listener)) {
          failed[key] = *error;
          continue;
        }
        it = udpListeners.emplace(key, std::move(listener)).first;
        it->second.balancer->set(f);
        receive(key);
        LOG(INFO) << "Serving " << key << " (" << f.service << ")";
      }
      it->second.balancer->set(f);
    } else {
      auto it = tcp.find(key);
      if (it == tcp.end()) {
        TcpListener listener;
        if (auto error = listenTcp(f, &listener)) {
          failed[key] = *error;
          continue;
        }
        it = tcp.emplace(key, std::move(listener)).first;
        it->second.balancer->set(f);
        accept(it->second.acceptor, it->second.balancer, key);
        LOG(INFO) << "Serving " << key << " (" << f.service << ")";
      }
      it->second.balancer->set(f);
    }
  }
  for (auto it = tcp.begin(); it != tcp.end();) {
    if (wanted.count(it->first)) {
      ++it;
      continue;
    }
    LOG(INFO) << "No longer serving " << it->first;
    boost::system::error_code ignored;
    it->second.acceptor->close(ignored);
    it = tcp.erase(it);
  }
  for (auto it = udpListeners.begin(); it != udpListeners.end();) {
    if (wanted.count(it->first)) {
      ++it;
      continue;
    }
    LOG(INFO) << "No longer serving " << it->first;
    boost::system::error_code ignored;
    it->second.socket->close(ignored);
    for (auto& [client, session] : *it->second.sessions) session->socket.close(ignored);
    it = udpListeners.erase(it);
  }
  std::lock_guard<std::mutex> lock(failuresMutex);
  for (const auto& [key, why] : failed) {
    auto before = failures.find(key);
    if (before == failures.end() || before->second != why) {
      // In use: most often the proxy of another agent on this machine serves it; this one
      // takes over if that one goes.
      LOG(WARNING) << "Cannot serve " << key << " (yet): " << why;
    }
  }
  failures = std::move(failed);
}

void ServiceProxy::Impl::accept(std::shared_ptr<tcp::acceptor> acceptor,
                                std::shared_ptr<Balancer> balancer, std::string key) {
  auto self = shared_from_this();
  acceptor->async_accept([self, key, acceptor, balancer](boost::system::error_code ec,
                                                          tcp::socket socket) {
    if (ec == net::error::operation_aborted || !acceptor->is_open()) return;  // not served
    if (!ec) {
      ++self->connections;
      boost::system::error_code peerError;
      std::string client = socket.remote_endpoint(peerError).address().to_string();
      auto order = balancer->pick(client);
      if (order.empty()) {
        ++self->refused;  // no ready endpoint: refused, as kube-proxy rejects
        boost::system::error_code ignored;
        socket.close(ignored);
      } else {
        self->connect(std::make_shared<tcp::socket>(std::move(socket)), balancer,
                      std::move(order), 0);
      }
    } else {
      LOG(WARNING) << "Accepting on " << key << ": " << ec.message();
    }
    self->accept(acceptor, balancer, key);
  });
}

void ServiceProxy::Impl::connect(std::shared_ptr<tcp::socket> client,
                                 std::shared_ptr<Balancer> balancer, std::vector<Backend> order,
                                 size_t index) {
  if (index >= order.size()) {
    ++refused;
    boost::system::error_code ignored;
    client->close(ignored);
    return;
  }
  boost::system::error_code ec;
  tcp::endpoint target(net::ip::make_address(order[index].ip, ec), order[index].port);
  if (ec) {
    connect(client, balancer, std::move(order), index + 1);
    return;
  }
  auto backend = std::make_shared<tcp::socket>(io);
  auto timer = std::make_shared<net::steady_timer>(io, kConnectTimeout);
  timer->async_wait([backend](boost::system::error_code ec) {
    if (!ec) {
      boost::system::error_code ignored;
      backend->close(ignored);  // the connect below fails
    }
  });
  auto self = shared_from_this();
  backend->async_connect(target, [self, client, balancer, order = std::move(order), index,
                                  backend, timer](boost::system::error_code ec) mutable {
    timer->cancel();
    if (ec) {
      // That endpoint is gone or not listening: the next one.
      self->connect(client, balancer, std::move(order), index + 1);
      return;
    }
    std::make_shared<Pipe>(std::move(*client), std::move(*backend))->start();
  });
}

void ServiceProxy::Impl::receive(std::string key) {
  auto it = udpListeners.find(key);
  if (it == udpListeners.end()) return;
  UdpListener& l = it->second;
  auto socket = l.socket;
  auto buffer = l.buffer;
  auto from = l.from;
  auto sessions = l.sessions;
  auto balancer = l.balancer;
  auto self = shared_from_this();
  socket->async_receive_from(
      net::buffer(*buffer), *from,
      [self, key, socket, buffer, from, sessions, balancer](boost::system::error_code ec,
                                                            size_t n) {
        if (ec == net::error::operation_aborted || !socket->is_open()) return;
        if (!ec) {
          auto found = sessions->find(*from);
          std::shared_ptr<UdpSession> session;
          if (found != sessions->end()) {
            session = found->second;
          } else {
            auto order = balancer->pick(from->address().to_string());
            boost::system::error_code error;
            if (!order.empty()) {
              udp::endpoint target(net::ip::make_address(order[0].ip, error), order[0].port);
              session = std::make_shared<UdpSession>(self->io);
              session->client = *from;
              if (!error) session->socket.open(target.protocol(), error);
              if (!error) session->socket.connect(target, error);
              if (error) session.reset();
            }
            if (!session) {
              ++self->refused;
            } else {
              ++self->connections;
              (*sessions)[*from] = session;
              // Answers from the endpoint go back to the client from the frontend's address.
              std::weak_ptr<UdpSession> weak = session;
              session->pump = [weak, socket] {
                auto s = weak.lock();
                if (!s) return;
                s->socket.async_receive(
                    net::buffer(s->buffer), [weak, socket](boost::system::error_code ec,
                                                           size_t n) {
                      auto s = weak.lock();
                      if (ec || !s) return;
                      s->last = Clock::now();
                      boost::system::error_code ignored;
                      socket->send_to(net::buffer(s->buffer.data(), n), s->client, 0, ignored);
                      s->pump();
                    });
              };
              session->pump();
            }
          }
          if (session) {
            session->last = Clock::now();
            boost::system::error_code ignored;
            session->socket.send(net::buffer(buffer->data(), n), 0, ignored);
          }
        }
        self->receive(key);
      });
}

void ServiceProxy::Impl::sweep() {
  auto now = Clock::now();
  for (auto& [key, l] : udpListeners) {
    for (auto it = l.sessions->begin(); it != l.sessions->end();) {
      if (now - it->second->last > kUdpIdle) {
        boost::system::error_code ignored;
        it->second->socket.close(ignored);
        it = l.sessions->erase(it);
      } else {
        ++it;
      }
    }
  }
  std::weak_ptr<Impl> weak = shared_from_this();
  sweeper->expires_after(std::chrono::seconds(10));
  sweeper->async_wait([weak](boost::system::error_code ec) {
    if (auto self = weak.lock(); self && !ec) self->sweep();
  });
}

ServiceProxy::ServiceProxy() : impl_(std::make_shared<Impl>()) {}

ServiceProxy::~ServiceProxy() { stop(); }

void ServiceProxy::start() {
  if (impl_->thread.joinable()) return;
  impl_->work.emplace(impl_->io.get_executor());
  impl_->sweeper = std::make_unique<net::steady_timer>(impl_->io);
  net::post(impl_->io, [impl = impl_] { impl->sweep(); });
  impl_->thread = std::thread([impl = impl_] { impl->io.run(); });
}

void ServiceProxy::stop() {
  if (!impl_->thread.joinable()) return;
  impl_->work.reset();
  impl_->io.stop();
  impl_->thread.join();
}

void ServiceProxy::apply(std::vector<Frontend> rules) {
  if (!impl_->thread.joinable()) {
    impl_->applyNow(rules);  // not started: nothing runs beside us
    return;
  }
  std::promise<void> done;
  auto future = done.get_future();
  net::post(impl_->io, [impl = impl_, rules = std::move(rules), &done] {
    impl->applyNow(rules);
    done.set_value();
  });
  future.wait();
}

std::vector<std::string> ServiceProxy::failures() const {
  std::lock_guard<std::mutex> lock(impl_->failuresMutex);
  std::vector<std::string> out;
  for (const auto& [key, why] : impl_->failures) out.push_back(key + ": " + why);
  return out;
}

uint64_t ServiceProxy::connections() const { return impl_->connections; }
uint64_t ServiceProxy::refused() const { return impl_->refused; }

}  // namespace agora::kube
