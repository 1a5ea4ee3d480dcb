#include "frameworks/k8s-like/proxy/ingress_proxy.hpp"

#include <future>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <boost/asio/post.hpp>

#include "frameworks/k8s-like/proxy/ingress_session.hpp"

namespace agora::kube {

using ingress_detail::kMaxConnections;
using ingress_detail::Session;

void IngressProxy::Impl::accept(std::shared_ptr<tcp::acceptor> acceptor, bool tls) {
  acceptor->async_accept([self = shared_from_this(), acceptor, tls](boost::system::error_code ec,
                                                                    tcp::socket socket) {
    if (ec == net::error::operation_aborted || !acceptor->is_open()) return;
    if (!ec && self->connections < kMaxConnections) {
      ++self->connections;
      boost::system::error_code ignored;
      socket.set_option(tcp::no_delay(true), ignored);
      std::string client = socket.remote_endpoint(ignored).address().to_string();
      if (!tls) {
        std::make_shared<Session<tcp::socket>>(self, std::move(socket), client, false, nullptr)
            ->start();
      } else if (auto context = self->contextFor("")) {
        std::make_shared<Session<ssl::stream<tcp::socket>>>(
            self, ssl::stream<tcp::socket>(std::move(socket), *context), client, true, context)
            ->start();
      } else {
        --self->connections;  // no certificate at all: closed
      }
    }
    self->accept(acceptor, tls);
  });
}

IngressProxy::IngressProxy() : impl_(std::make_shared<Impl>()) {
  impl_->work.emplace(impl_->io.get_executor());
  impl_->threads.emplace_back([impl = impl_] { impl->io.run(); });
}

IngressProxy::~IngressProxy() {
  stop();
  impl_->work.reset();
  impl_->io.stop();
  for (auto& t : impl_->threads) t.join();
}

void IngressProxy::update(IngressTable table) {
  auto next = std::make_shared<const IngressTable>(std::move(table));
  std::map<std::string, std::shared_ptr<ssl::context>> contexts;
  for (const auto& [host, cert] : next->certificates) {
    if (contexts.count(cert.certPem)) continue;
    {
      std::lock_guard<std::mutex> lock(impl_->mutex);
      auto known = impl_->contexts.find(cert.certPem);
      if (known != impl_->contexts.end()) {
        contexts[cert.certPem] = known->second;
        continue;
      }
    }
    if (auto made = impl_->makeContext(cert)) contexts[cert.certPem] = made;
  }
  std::lock_guard<std::mutex> lock(impl_->mutex);
  impl_->table = std::move(next);
  impl_->contexts = std::move(contexts);
}

Status IngressProxy::listen(const std::string& ip, uint16_t httpPort, uint16_t httpsPort) {
  if (listening()) return ok();
  std::vector<std::pair<std::shared_ptr<tcp::acceptor>, bool>> made;
  for (auto [port, tls] : {std::pair<uint16_t, bool>{httpPort, false}, {httpsPort, true}}) {
    if (port == 0) continue;
    boost::system::error_code ec;
    tcp::endpoint endpoint(net::ip::make_address(ip, ec), port);
    if (ec) return Error("'" + ip + "' is not an address");
    auto acceptor = std::make_shared<tcp::acceptor>(impl_->io);
    acceptor->open(endpoint.protocol(), ec);
    if (!ec) acceptor->set_option(net::socket_base::reuse_address(true), ec);
    if (!ec) acceptor->bind(endpoint, ec);
    if (!ec) acceptor->listen(net::socket_base::max_listen_connections, ec);
    if (ec) {
      return Error("cannot listen on " + ip + ":" + std::to_string(port) + ": " + ec.message());
    }
    made.emplace_back(std::move(acceptor), tls);
  }
  std::promise<void> done;
  net::post(impl_->io, [impl = impl_, made, &done] {
    for (const auto& [acceptor, tls] : made) {
      impl->acceptors.push_back(acceptor);
      impl->accept(acceptor, tls);
    }
    done.set_value();
  });
  done.get_future().wait();
  return ok();
}

bool IngressProxy::listening() const {
  std::promise<bool> answer;
  net::post(impl_->io, [impl = impl_, &answer] { answer.set_value(!impl->acceptors.empty()); });
  return answer.get_future().get();
}

void IngressProxy::stop() {
  std::promise<void> done;
  net::post(impl_->io, [impl = impl_, &done] {
    for (auto& acceptor : impl->acceptors) {
      boost::system::error_code ignored;
      acceptor->close(ignored);
    }
    impl->acceptors.clear();
    done.set_value();
  });
  done.get_future().wait();
}

uint64_t IngressProxy::requests() const { return impl_->requests; }

}  // namespace agora::kube
