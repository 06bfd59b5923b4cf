#pragma once
// CURVE authentication (libzmq's built-in elliptic-curve encryption + ZAP), for every
// tcp:// socket that must not take strangers: the client endpoint with keys from the
// files the config names, the engine <-> worker sockets with keys made per run.
// Keys are Z85 text, 40 characters (zmq_curve_keypair); a key file holds one key on
// a line of its own, lines starting with # are comments.
#include <zmq.hpp>

#include <atomic>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "common/result.h"

namespace vela::transport {

struct CurveKeyPair {
  std::string public_key;  // Z85, 40 chars
  std::string secret_key;  // Z85, 40 chars
};

Result<CurveKeyPair> new_curve_keypair();
// The secret key in `path` and the public key derived from it.
Result<CurveKeyPair> load_curve_secret_key(const std::string& path);
// Every key in `path` (an authorized-keys file: one public key a line); at least one.
Result<std::vector<std::string>> load_curve_public_keys(const std::string& path);
// Writes PREFIX.key (the secret, mode 0600) and PREFIX.pub; refuses to overwrite.
Result<CurveKeyPair> write_curve_keypair(const std::string& prefix);

// The ZAP handler of one ZeroMQ context: a CURVE client whose public key is in
// `allowed` is let in, any other is refused (and counted). Must be started before
// a CURVE server socket of the context binds, and destroyed before the context.
class CurveAuthenticator {
 public:
  static Result<std::unique_ptr<CurveAuthenticator>> start(zmq::context_t& context,
                                                           const std::vector<std::string>& allowed_public_keys);
  ~CurveAuthenticator();
  uint64_t num_refused() const { return num_refused_.load(); }

 private:
  CurveAuthenticator() = default;
  void serve();
  std::unique_ptr<zmq::socket_t> socket_;  // REP on inproc://zeromq.zap.01; the thread's
  std::set<std::string> allowed_;          // 32-byte binary keys
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> num_refused_{0};
  std::thread thread_;
};

// A server socket that only talks CURVE (set before bind).
void make_curve_server(zmq::socket_t& socket, const CurveKeyPair& server);
// A client socket that talks CURVE to a server with `server_public_key` (before connect).
void make_curve_client(zmq::socket_t& socket, const std::string& server_public_key, const CurveKeyPair& client);

// Worker sockets: the engine hands each worker its keys through the environment
// (never argv, which every local user can read in /proc).
inline constexpr const char* kWorkerServerKeyEnv = "VELA_CURVE_SERVER_PUBLIC_KEY";
inline constexpr const char* kWorkerPublicKeyEnv = "VELA_CURVE_PUBLIC_KEY";
inline constexpr const char* kWorkerSecretKeyEnv = "VELA_CURVE_SECRET_KEY";
std::vector<std::string> worker_curve_env(const std::string& server_public_key, const CurveKeyPair& worker);
// In the worker: makes `socket` a CURVE client when the engine passed keys (and
// removes them from the environment); a no-op otherwise.
void apply_worker_curve_env(zmq::socket_t& socket);

}  // namespace vela::transport
