#pragma once
// Multipart ZeroMQ I/O shared by the engine, the workers and the client. A socket is
// owned by one thread; these helpers only move frames, they never keep the socket.
#include <zmq.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"

namespace vela::transport {

using Frames = std::vector<std::string>;

// Sends `frames` as one multipart message, preceded by `routing_id` when it is not
// empty (ROUTER sockets address a peer by that first frame). Returns false when the
// message could not be queued (dontwait and the peer's queue is full, or the peer is
// unknown to a ROUTER with ZMQ_ROUTER_MANDATORY).
bool send_frames(zmq::socket_t& socket, const Frames& frames, const std::string& routing_id = {},
                 bool dontwait = true);

// Receives one whole multipart message without blocking; nullopt when none is ready.
// `source_fd` (optional) receives the file descriptor the first frame came in on
// (ZMQ_SRCFD), which lets a ROUTER map peers to connections.
std::optional<Frames> recv_frames(zmq::socket_t& socket, int* source_fd = nullptr);

// Same, into `frames` (its strings keep their capacity: no allocation once warm);
// false when no message is ready. With `routing_id`, the first part (a ROUTER's peer
// identity) goes there instead of into frames.
bool recv_frames_into(zmq::socket_t& socket, Frames& frames, std::string* routing_id = nullptr);

// Bounds every socket: linger, high-water marks. A bounded queue means a slow peer
// makes send_frames() return false instead of growing memory without limit.
void configure_socket(zmq::socket_t& socket, int send_hwm = 100000, int recv_hwm = 100000,
                      int linger_ms = 0);

// The endpoint a socket actually bound (resolves tcp://host:* to the chosen port).
std::string last_endpoint(zmq::socket_t& socket);

// A fresh endpoint name for a socket this process binds. transport is "ipc" or "tcp";
// ipc endpoints live in this process's private directory (private_ipc_dir()).
std::string make_endpoint(const std::string& transport, const std::string& host,
                          const std::string& name);

// This process's directory for the ipc sockets it makes: mkdtemp under
// $XDG_RUNTIME_DIR (or /tmp), mode 0700, so no other user can reach a socket in it
// or guess its path; removed with whatever is left in it when the process exits.
const std::string& private_ipc_dir();

// An ipc endpoint named `name` in the directory of `ipc_endpoint` (a worker's socket
// beside its engine's, in the engine's private directory).
std::string endpoint_beside(const std::string& ipc_endpoint, const std::string& name);

// Binds `socket`. For ipc: refuses when a live server answers on the path (ZeroMQ
// would unlink it and take it over, stranding that server), creates the socket file
// mode 0600 whatever the umask. Errors name the endpoint and the cause.
Status bind_endpoint(zmq::socket_t& socket, const std::string& endpoint);

// For ipc: an error when a live server answers on the endpoint's path (a stale file
// with no listener is fine: the bind replaces it). No-op for other transports.
Status check_ipc_free(const std::string& endpoint);

// Removes the socket file of an ipc:// endpoint (no-op for other transports).
void remove_ipc_file(const std::string& endpoint);

}  // namespace vela::transport
