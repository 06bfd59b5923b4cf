#pragma once
// Multipart ZeroMQ I/O shared by the engine, the workers and the client. A socket is
// owned by one thread; these helpers only move frames, they never keep the socket.
#include <zmq.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

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
// ipc endpoints live under $XDG_RUNTIME_DIR (or /tmp) and carry the pid and `name`.
std::string make_endpoint(const std::string& transport, const std::string& host,
                          const std::string& name);

// Removes the socket file of an ipc:// endpoint (no-op for other transports).
void remove_ipc_file(const std::string& endpoint);

}  // namespace vela::transport
