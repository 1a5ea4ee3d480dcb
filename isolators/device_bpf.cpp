#include "isolators/device_bpf.hpp"

#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <sstream>

namespace agora::cgroups {

namespace {

bpf_insn insn(uint8_t code, uint8_t dst, uint8_t src, int16_t off, int32_t imm) {
  bpf_insn i{};
  i.code = code;
  i.dst_reg = dst;
  i.src_reg = src;
  i.off = off;
  i.imm = imm;
  return i;
}

// r[dst] = *(u32 *)(r[src] + off)
bpf_insn loadWord(uint8_t dst, uint8_t src, int16_t off) {
  return insn(BPF_LDX | BPF_W | BPF_MEM, dst, src, off, 0);
}
bpf_insn move32(uint8_t dst, uint8_t src) { return insn(BPF_ALU | BPF_MOV | BPF_X, dst, src, 0, 0); }
bpf_insn and32(uint8_t dst, int32_t imm) { return insn(BPF_ALU | BPF_AND | BPF_K, dst, 0, 0, imm); }
bpf_insn shiftRight32(uint8_t dst, int32_t imm) {
  return insn(BPF_ALU | BPF_RSH | BPF_K, dst, 0, 0, imm);
}
bpf_insn moveImm(uint8_t dst, int32_t imm) { return insn(BPF_ALU64 | BPF_MOV | BPF_K, dst, 0, 0, imm); }
// if r[dst] != imm: skip `off` instructions
bpf_insn jumpIfNot(uint8_t dst, int32_t imm, int16_t off) {
  return insn(BPF_JMP | BPF_JNE | BPF_K, dst, 0, off, imm);
}
bpf_insn exitProgram() { return insn(BPF_JMP | BPF_EXIT, 0, 0, 0, 0); }

long bpf(int cmd, bpf_attr* attr) {
  return ::syscall(__NR_bpf, cmd, attr, sizeof(*attr));
}

}  // namespace

Result<DeviceRule> parseDeviceRule(const std::string& text) {
  DeviceRule rule;
  std::istringstream in(text);
  std::string type;
  std::string numbers;
  std::string access;
  in >> type >> numbers >> access;
  auto bad = [&](const std::string& why) {
    return Error("device rule '" + text + "': " + why + " (expected like 'c 1:3 rwm')");
  };
  if (type == "a" && numbers.empty()) {
    return rule;  // everything
  }
  if (type.size() != 1 || (type[0] != 'c' && type[0] != 'b' && type[0] != 'a')) {
    return bad("the type is c, b or a");
  }
  rule.type = type[0];
  size_t colon = numbers.find(':');
  if (colon == std::string::npos) {
    return bad("no major:minor");
  }
  auto number = [](const std::string& s, int64_t* out) {
    if (s == "*") {
      *out = -1;
      return true;
    }
    if (s.empty() || s.size() > 9 || s.find_first_not_of("0123456789") != std::string::npos) {
      return false;
    }
    *out = std::stoll(s);
    return true;
  };
  if (!number(numbers.substr(0, colon), &rule.major) ||
      !number(numbers.substr(colon + 1), &rule.minor)) {
    return bad("major and minor are numbers or *");
  }
  if (access.empty() || access.find_first_not_of("rwm") != std::string::npos) {
    return bad("the access is some of r, w and m");
  }
  rule.access = 0;
  for (char c : access) {
    rule.access |= c == 'r' ? BPF_DEVCG_ACC_READ : c == 'w' ? BPF_DEVCG_ACC_WRITE
                                                            : BPF_DEVCG_ACC_MKNOD;
  }
  return rule;
}

Result<std::vector<bpf_insn>> deviceProgram(const std::vector<std::string>& rules) {
  // r1 points at struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; }, where
  // access_type is (access << 16) | type.
  std::vector<bpf_insn> program = {
      loadWord(2, 1, 0),                 // r2 = access_type
      move32(3, 2), and32(3, 0xffff),    // r3 = type
      move32(4, 2), shiftRight32(4, 16), // r4 = access
      loadWord(5, 1, 4),                 // r5 = major
      loadWord(6, 1, 8),                 // r6 = minor
  };
  for (const std::string& text : rules) {
    auto rule = parseDeviceRule(text);
    if (!rule) {
      return Error(rule.error());
    }
    // Each test jumps past the rule's block when it fails; the block ends "allow".
    std::vector<bpf_insn> block;
    std::vector<size_t> jumps;
    if (rule->type != 'a') {
      jumps.push_back(block.size());
      block.push_back(jumpIfNot(3, rule->type == 'c' ? BPF_DEVCG_DEV_CHAR : BPF_DEVCG_DEV_BLOCK, 0));
    }
    if (rule->major >= 0) {
      jumps.push_back(block.size());
      block.push_back(jumpIfNot(5, static_cast<int32_t>(rule->major), 0));
    }
    if (rule->minor >= 0) {
      jumps.push_back(block.size());
      block.push_back(jumpIfNot(6, static_cast<int32_t>(rule->minor), 0));
    }
    if (rule->access != 7) {
      // Whatever is asked beyond the rule's access: not this rule.
      block.push_back(move32(7, 4));
      block.push_back(and32(7, static_cast<int32_t>(~rule->access & 7)));
      jumps.push_back(block.size());
      block.push_back(jumpIfNot(7, 0, 0));
    }
    block.push_back(moveImm(0, 1));
    block.push_back(exitProgram());
    for (size_t at : jumps) {
      block[at].off = static_cast<int16_t>(block.size() - at - 1);
    }
    program.insert(program.end(), block.begin(), block.end());
  }
  program.push_back(moveImm(0, 0));
  program.push_back(exitProgram());
  return program;
}

Status attachDeviceProgram(const std::string& dir, const std::vector<std::string>& rules) {
  auto program = deviceProgram(rules);
  if (!program) {
    return Error(program.error());
  }
  static const char kLicense[] = "Apache-2.0";
  char log[4096] = {0};
  bpf_attr load{};
  load.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
  load.insns = reinterpret_cast<uint64_t>(program->data());
  load.insn_cnt = static_cast<uint32_t>(program->size());
  load.license = reinterpret_cast<uint64_t>(kLicense);
  load.log_buf = reinterpret_cast<uint64_t>(log);
  load.log_size = sizeof(log);
  load.log_level = 1;
  int prog = static_cast<int>(bpf(BPF_PROG_LOAD, &load));
  if (prog < 0) {
    std::string why = std::strerror(errno);
    return Error("cannot load the device program for " + dir + ": " + why +
                 (log[0] != '\0' ? std::string(" (") + log + ")" : ""));
  }
  int cgroup = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (cgroup < 0) {
    std::string why = std::strerror(errno);
    ::close(prog);
    return Error("cannot open " + dir + ": " + why);
  }
  bpf_attr attach{};
  attach.target_fd = static_cast<uint32_t>(cgroup);
  attach.attach_bpf_fd = static_cast<uint32_t>(prog);
  attach.attach_type = BPF_CGROUP_DEVICE;
  attach.attach_flags = 0;  // one program per cgroup: attaching replaces the one before
  long attached = bpf(BPF_PROG_ATTACH, &attach);
  std::string why = attached < 0 ? std::strerror(errno) : "";
  // The attachment holds the program; the descriptors are not needed any more.
  ::close(cgroup);
  ::close(prog);
  if (attached < 0) {
    return Error("cannot attach the device program to " + dir + ": " + why);
  }
  return ok();
}

}  // namespace agora::cgroups
