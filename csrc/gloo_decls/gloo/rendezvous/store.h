// Declarations for tada's c10d shim; see csrc/gloo_decls/README.md.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

// c10d's GlooStore overrides the extended interface when this is defined, as with the real gloo.
#define GLOO_STORE_HAS_STORE_V2 1

namespace gloo {

// The key-value interface gloo rendezvous through; c10d adapts its own Store to it. Virtual
// functions in gloo's order, so the adapter the c10d header defines matches libtorch's.
class IStore {
 public:
  virtual ~IStore() = default;
  virtual void set(const std::string& key, const std::vector<char>& data) = 0;
  virtual std::vector<char> get(const std::string& key) = 0;
  virtual std::vector<char> wait_get(
      const std::string& key,
      const std::chrono::milliseconds& timeout) {
    wait({key}, timeout);
    return get(key);
  }
  virtual void wait(
      const std::vector<std::string>& keys,
      const std::chrono::milliseconds& timeout) = 0;
  virtual bool has_v2_support() = 0;
  virtual std::vector<std::vector<char>> multi_get(
      const std::vector<std::string>& keys) = 0;
  virtual void multi_set(
      const std::vector<std::string>& keys,
      const std::vector<std::vector<char>>& values) = 0;
  virtual void append(const std::string& key, const std::vector<char>& value) = 0;
  virtual int64_t add(const std::string& key, int64_t value) = 0;
};

namespace rendezvous {

class Store : public IStore {
 public:
  virtual ~Store() = default;
  virtual void set(const std::string& key, const std::vector<char>& data) = 0;
  virtual std::vector<char> get(const std::string& key) = 0;
  virtual void wait(const std::vector<std::string>& keys) = 0;
  virtual void wait(
      const std::vector<std::string>& keys,
      const std::chrono::milliseconds& /*timeout*/) {
    wait(keys);
  }
  // The extended operations; the real defaults throw, and the shim never calls them on a
  // gloo store (GlooStore overrides every one).
  virtual bool has_v2_support() {
    return false;
  }
  virtual std::vector<std::vector<char>> multi_get(
      const std::vector<std::string>& keys);
  virtual void multi_set(
      const std::vector<std::string>& keys,
      const std::vector<std::vector<char>>& values);
  virtual void append(const std::string& key, const std::vector<char>& data);
  virtual int64_t add(const std::string& key, int64_t value);
};

} // namespace rendezvous
} // namespace gloo
