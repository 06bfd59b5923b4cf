#include "workers/zmq_store.h"

#include <gloo/common/error.h>

#include <map>

#include "transport/zmq_io.h"

namespace vela {

Result<std::unique_ptr<ZmqStoreServer>> ZmqStoreServer::start(zmq::context_t& context, const std::string& host,
                                                             const std::string& engine_endpoint) {
  std::unique_ptr<ZmqStoreServer> server(new ZmqStoreServer(context));
  server->socket_ = std::make_unique<zmq::socket_t>(context, zmq::socket_type::router);
  transport::configure_socket(*server->socket_);
  const std::string endpoint = engine_endpoint.rfind("ipc://", 0) == 0
                                   ? transport::endpoint_beside(engine_endpoint, "store")
                                   : "tcp://" + host + ":*";
  if (auto bound = transport::bind_endpoint(*server->socket_, endpoint); !bound)
    return make_error("store_bind", "rendezvous store: " + bound.error().message);
  server->address_ = transport::last_endpoint(*server->socket_);
  server->thread_ = std::thread([s = server.get()] { s->serve(); });
  return server;
}

ZmqStoreServer::~ZmqStoreServer() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

void ZmqStoreServer::serve() {
  std::map<std::string, std::string> data;
  while (!stop_) {
    zmq::pollitem_t item{static_cast<void*>(*socket_), 0, ZMQ_POLLIN, 0};
    zmq::poll(&item, 1, std::chrono::milliseconds(50));
    while (auto frames = transport::recv_frames(*socket_)) {
      // ROUTER: [peer, empty delimiter (REQ), op, key, value?]
      if (frames->size() < 4) continue;
      const std::string& peer = (*frames)[0];
      const std::string& op = (*frames)[2];
      const std::string& key = (*frames)[3];
      transport::Frames reply;
      reply.push_back("");
      if (op == "set" && frames->size() == 5) {
        data[key] = (*frames)[4];
        reply.push_back("ok");
      } else if (op == "get") {
        auto it = data.find(key);
        if (it == data.end()) {
          reply.push_back("missing");
        } else {
          reply.push_back("ok");
          reply.push_back(it->second);
        }
      } else {
        reply.push_back("bad_request");
      }
      transport::send_frames(*socket_, reply, peer);
    }
  }
  socket_->close();
}

ZmqStore::ZmqStore(zmq::context_t& context, const std::string& address, std::chrono::milliseconds timeout)
    : context_(context), address_(address), timeout_(timeout) {}

std::vector<std::string> ZmqStore::call(const std::vector<std::string>& request) {
  // A fresh REQ socket per call: a REQ socket whose reply never came is unusable.
  socket_ = std::make_unique<zmq::socket_t>(context_, zmq::socket_type::req);
  transport::configure_socket(*socket_);
  socket_->set(zmq::sockopt::rcvtimeo, static_cast<int>(timeout_.count()));
  socket_->set(zmq::sockopt::sndtimeo, static_cast<int>(timeout_.count()));
  socket_->connect(address_);
  if (!transport::send_frames(*socket_, request, {}, false))
    throw ::gloo::IoException("rendezvous store " + address_ + ": send failed");
  zmq::pollitem_t item{static_cast<void*>(*socket_), 0, ZMQ_POLLIN, 0};
  zmq::poll(&item, 1, timeout_);
  auto reply = transport::recv_frames(*socket_);
  if (!reply || reply->empty())
    throw ::gloo::IoException("rendezvous store " + address_ + ": no reply within " +
                              std::to_string(timeout_.count()) + " ms");
  return *reply;
}

void ZmqStore::set(const std::string& key, const std::vector<char>& data) {
  auto reply = call({"set", key, std::string(data.begin(), data.end())});
  if (reply[0] != "ok") throw ::gloo::IoException("rendezvous store: set '" + key + "' failed: " + reply[0]);
}

std::vector<char> ZmqStore::get(const std::string& key) {
  wait({key}, timeout_);
  auto reply = call({"get", key});
  if (reply[0] != "ok" || reply.size() < 2)
    throw ::gloo::IoException("rendezvous store: key '" + key + "' missing");
  return std::vector<char>(reply[1].begin(), reply[1].end());
}

void ZmqStore::wait(const std::vector<std::string>& keys, const std::chrono::milliseconds& timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (const auto& key : keys) {
    while (call({"get", key})[0] != "ok") {
      if (std::chrono::steady_clock::now() >= deadline)
        throw ::gloo::IoException("rendezvous store: key '" + key + "' not set within " +
                                  std::to_string(timeout.count()) + " ms");
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  }
}

}  // namespace vela
