#pragma once

#include <ostream>
#include <string>
#include <vector>

namespace agora::cli {

// Prints rows as aligned columns, the header first, like `kubectl get`.
class Table {
 public:
  explicit Table(std::vector<std::string> header) : rows_{std::move(header)} {}
  void add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  void print(std::ostream& out) const;

 private:
  std::vector<std::vector<std::string>> rows_;
};

// 0.5 -> "0.5", 2 -> "2", 1024.25 -> "1024.25".
std::string formatNumber(double v);

}  // namespace agora::cli
