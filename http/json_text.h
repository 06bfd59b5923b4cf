#pragma once
// JSON text as the HTTP API writes it: compact, invalid UTF-8 replaced (never thrown).
#include <nlohmann/json.hpp>

#include <string>

namespace vela::http {
inline std::string dump(const nlohmann::json& j) { return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace); }
}  // namespace vela::http
