#pragma once

// A small client of the kube API for the programs the kube framework runs on the agents (the
// service proxy): GET requests over HTTPS (verifying the API server against its CA) with the
// bearer token, or plain HTTP, one connection kept between requests.

#include <memory>
#include <string>

#include "common/result.hpp"
#include "common/time.hpp"

namespace agora::kube {

struct ApiClientOptions {
  std::string server;  // https://host:port or http://host:port
  std::string token;
  std::string caPem;   // the CA that signed the server's certificate (https)
  Duration timeout = seconds(5);
};

class ApiClient {
 public:
  static Result<std::unique_ptr<ApiClient>> make(ApiClientOptions options);
  ~ApiClient();

  // The body of a 200 answer to GET `target`, or why there is none.
  Result<std::string> get(const std::string& target);

  struct Impl;

 private:
  explicit ApiClient(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace agora::kube
