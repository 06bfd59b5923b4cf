#include "transport/curve_auth.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>

#include "common/logging.h"
#include "transport/zmq_io.h"

namespace vela::transport {
namespace {

constexpr size_t kZ85KeyChars = 40;

bool decode_key(const std::string& z85, std::string* binary) {
  if (z85.size() != kZ85KeyChars) return false;
  uint8_t out[32];
  if (!zmq_z85_decode(out, z85.c_str())) return false;
  if (binary) binary->assign(reinterpret_cast<const char*>(out), sizeof out);
  return true;
}

// The keys in a key file: every line that is not blank or a # comment.
Result<std::vector<std::string>> read_keys(const std::string& path) {
  std::ifstream in(path);
  if (!in) return make_error("key_file", "cannot read the key file '" + path + "'");
  std::vector<std::string> keys;
  std::string line;
  for (int n = 1; std::getline(in, line); ++n) {
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t')) line.pop_back();
    size_t start = line.find_first_not_of(" \t");
    if (start == std::string::npos || line[start] == '#') continue;
    line = line.substr(start);
    if (!decode_key(line, nullptr))
      return make_error("key_file", path + ":" + std::to_string(n) + ": not a Z85 CURVE key (40 characters)");
    keys.push_back(line);
  }
  if (keys.empty()) return make_error("key_file", "'" + path + "' holds no key");
  return keys;
}

}  // namespace

Result<CurveKeyPair> new_curve_keypair() {
  char pub[41], sec[41];
  if (zmq_curve_keypair(pub, sec) != 0)
    return make_error("curve_unsupported", "this libzmq has no CURVE support (zmq_curve_keypair failed)");
  return CurveKeyPair{pub, sec};
}

Result<CurveKeyPair> load_curve_secret_key(const std::string& path) {
  VELA_TRY_ASSIGN(auto keys, read_keys(path));
  if (keys.size() != 1) return make_error("key_file", "'" + path + "' must hold exactly one secret key");
  char pub[41];
  if (zmq_curve_public(pub, keys[0].c_str()) != 0)
    return make_error("key_file", "'" + path + "': cannot derive the public key");
  return CurveKeyPair{pub, keys[0]};
}

Result<std::vector<std::string>> load_curve_public_keys(const std::string& path) { return read_keys(path); }

Result<CurveKeyPair> write_curve_keypair(const std::string& prefix) {
  VELA_TRY_ASSIGN(auto pair, new_curve_keypair());
  const std::string secret_path = prefix + ".key", public_path = prefix + ".pub";
  // O_EXCL: never overwrite a key; 0600 from the start (no window with a wider mode).
  int fd = ::open(secret_path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return make_error("key_file", "cannot create '" + secret_path + "' (it may exist already)");
  const std::string secret_text = "# vela CURVE secret key: keep it private (mode 0600)\n" + pair.secret_key + "\n";
  const bool written = ::write(fd, secret_text.data(), secret_text.size()) == static_cast<ssize_t>(secret_text.size());
  ::close(fd);
  if (!written) return make_error("key_file", "cannot write '" + secret_path + "'");
  std::ofstream pub(public_path, std::ios::trunc);
  pub << "# vela CURVE public key\n" << pair.public_key << "\n";
  if (!pub) return make_error("key_file", "cannot write '" + public_path + "'");
  return pair;
}

Result<std::unique_ptr<CurveAuthenticator>> CurveAuthenticator::start(zmq::context_t& context,
                                                                      const std::vector<std::string>& allowed) {
  std::unique_ptr<CurveAuthenticator> a(new CurveAuthenticator());
  for (const auto& key : allowed) {
    std::string binary;
    if (!decode_key(key, &binary)) return make_error("bad_key", "'" + key + "' is not a Z85 CURVE public key");
    a->allowed_.insert(binary);
  }
  a->socket_ = std::make_unique<zmq::socket_t>(context, zmq::socket_type::rep);
  configure_socket(*a->socket_);
  try {
    a->socket_->bind("inproc://zeromq.zap.01");
  } catch (const zmq::error_t& e) {
    return make_error("zap_bind", std::string("cannot start the CURVE authenticator: ") + e.what());
  }
  a->thread_ = std::thread([p = a.get()] { p->serve(); });
  return a;
}

CurveAuthenticator::~CurveAuthenticator() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
  socket_.reset();
}

void CurveAuthenticator::serve() {
  // ZAP (RFC 27): [version, request id, domain, address, identity, mechanism,
  // credentials...] -> [version, request id, status code, status text, user id, metadata].
  while (!stop_) {
    zmq::pollitem_t item{static_cast<void*>(*socket_), 0, ZMQ_POLLIN, 0};
    zmq::poll(&item, 1, std::chrono::milliseconds(50));
    while (auto frames = recv_frames(*socket_)) {
      if (frames->size() < 6) {
        send_frames(*socket_, {"1.0", frames->size() > 1 ? (*frames)[1] : "", "500", "malformed ZAP request", "", ""},
                    {}, false);
        continue;
      }
      const std::string& mechanism = (*frames)[5];
      const bool allowed = mechanism == "CURVE" && frames->size() >= 7 && allowed_.count((*frames)[6]) > 0;
      if (!allowed) {
        num_refused_.fetch_add(1);
        logger("transport")->warn("refused a {} connection from {}: {}", mechanism, (*frames)[3],
                                  mechanism == "CURVE" ? "its public key is not authorized" : "CURVE is required");
      }
      send_frames(*socket_, {"1.0", (*frames)[1], allowed ? "200" : "400", allowed ? "OK" : "not authorized",
                             allowed ? "client" : "", ""},
                  {}, false);
    }
  }
}

void make_curve_server(zmq::socket_t& socket, const CurveKeyPair& server) {
  socket.set(zmq::sockopt::curve_server, 1);
  socket.set(zmq::sockopt::curve_secretkey, server.secret_key);
  socket.set(zmq::sockopt::zap_domain, "vela");
}

void make_curve_client(zmq::socket_t& socket, const std::string& server_public_key, const CurveKeyPair& client) {
  socket.set(zmq::sockopt::curve_serverkey, server_public_key);
  socket.set(zmq::sockopt::curve_publickey, client.public_key);
  socket.set(zmq::sockopt::curve_secretkey, client.secret_key);
}

std::vector<std::string> worker_curve_env(const std::string& server_public_key, const CurveKeyPair& worker) {
  return {std::string(kWorkerServerKeyEnv) + "=" + server_public_key,
          std::string(kWorkerPublicKeyEnv) + "=" + worker.public_key,
          std::string(kWorkerSecretKeyEnv) + "=" + worker.secret_key};
}

void apply_worker_curve_env(zmq::socket_t& socket) {
  const char* server = std::getenv(kWorkerServerKeyEnv);
  const char* pub = std::getenv(kWorkerPublicKeyEnv);
  const char* sec = std::getenv(kWorkerSecretKeyEnv);
  if (server && pub && sec) make_curve_client(socket, server, CurveKeyPair{pub, sec});
  ::unsetenv(kWorkerServerKeyEnv);
  ::unsetenv(kWorkerPublicKeyEnv);
  ::unsetenv(kWorkerSecretKeyEnv);
}

}  // namespace vela::transport
