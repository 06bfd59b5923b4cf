// Reads tokenizer.json (+ tokenizer_config.json) into a Tokenizer. Everything the
// file asks for that this tokenizer does not implement is an error naming the key,
// so an unsupported tokenizer fails at load instead of encoding differently from HF.
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/logging.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/tokenizer.h"

namespace vela {

using json = nlohmann::json;

namespace {
// j[key] without copying, or null when j is not an object or has no such key
// (json::value() returns a copy, which for "model" would copy the whole vocab).
const json& member(const json& j, const char* key) {
  static const json kNull;
  if (!j.is_object()) return kNull;
  auto it = j.find(key);
  return it == j.end() ? kNull : *it;
}
}  // namespace

class TokenizerLoader {
 public:
  TokenizerLoader(Tokenizer& tok, std::string source) : tok_(tok), source_(std::move(source)) {}

  Status load(const json& root, const json* config) {
    std::vector<std::pair<std::string, int32_t>> vocab_entries;
    VELA_TRY(load_model(member(root, "model"), &vocab_entries));
    VELA_TRY(load_added_tokens(member(root, "added_tokens")));
    VELA_TRY(load_normalizer(member(root, "normalizer")));
    VELA_TRY(load_pre_tokenizer(member(root, "pre_tokenizer")));
    VELA_TRY(load_decoder(member(root, "decoder")));
    VELA_TRY(load_post_processor(member(root, "post_processor")));
    build_id_tables(vocab_entries);
    load_config(config);
    return ok_status();
  }

 private:
  Error error(const std::string& what) const { return make_error("bad_tokenizer", source_ + ": " + what); }
  static std::string type_of(const json& j) { return j.is_object() ? j.value("type", std::string()) : ""; }

  Status load_model(const json& model, std::vector<std::pair<std::string, int32_t>>* vocab_entries) {
    if (type_of(model) != "BPE") return error("model.type must be \"BPE\", got " + member(model, "type").dump());
    if (!member(model, "dropout").is_null()) return error("model.dropout is set; BPE dropout is not supported");
    if (model.value("byte_fallback", false)) return error("model.byte_fallback is not supported (byte-level BPE only)");
    for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
      const json& v = member(model, key);
      if (!v.is_null() && v != "") return error(std::string("model.") + key + " = " + v.dump() + " is not supported");
    }
    const json& vocab = member(model, "vocab");
    if (!vocab.is_object()) return error("model.vocab must be an object of token -> id");
    vocab_.reserve(vocab.size());
    vocab_entries->reserve(vocab.size());
    for (const auto& [token, id] : vocab.items()) {
      if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() > INT32_MAX) {
        return error("model.vocab[\"" + token + "\"] is not a valid id: " + id.dump());
      }
      vocab_.emplace(token, id.get<int32_t>());
      vocab_entries->emplace_back(token, id.get<int32_t>());
    }
    // Merges are "left right" strings (older files) or [left, right] pairs.
    std::vector<std::pair<std::string, std::string>> merges;
    const json& merge_list = member(model, "merges");
    merges.reserve(merge_list.size());
    for (size_t i = 0; i < merge_list.size(); ++i) {
      const json& m = merge_list[i];
      if (m.is_string()) {
        const std::string& s = m.get_ref<const std::string&>();
        size_t space = s.find(' ');
        if (space == std::string::npos || s.find(' ', space + 1) != std::string::npos) {
          return error("model.merges[" + std::to_string(i) + "] = \"" + s + "\" is not two tokens separated by a space");
        }
        merges.emplace_back(s.substr(0, space), s.substr(space + 1));
      } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
        merges.emplace_back(m[0].get<std::string>(), m[1].get<std::string>());
      } else {
        return error("model.merges[" + std::to_string(i) + "] is neither \"a b\" nor [\"a\", \"b\"]: " + m.dump());
      }
    }
    auto bpe = BpeModel::build(vocab_, merges, model.value("ignore_merges", false));
    if (!bpe) return error(bpe.error().message);
    tok_.bpe_ = std::move(bpe.value());
    return ok_status();
  }

  Status load_added_tokens(const json& added) {
    if (!added.is_array()) return error("added_tokens must be an array");
    for (const json& t : added) {
      if (!t.is_object() || !t.contains("id") || !t.contains("content") || !t["content"].is_string()) {
        return error("added_tokens entry without id/content: " + t.dump());
      }
      std::string content = t["content"].get<std::string>();
      for (const char* flag : {"lstrip", "rstrip", "single_word"}) {
        if (t.value(flag, false)) return error("added token '" + content + "' sets " + flag + ", which is not supported");
      }
      int32_t id = t["id"].get<int32_t>();
      added_.push_back(AddedEntry{content, id, t.value("special", false)});
      tok_.added_tokens_.add(content, id);
    }
    return ok_status();
  }

  Status load_normalizer(const json& normalizer) {
    NormalizerKind kind = NormalizerKind::kNone;
    std::vector<json> parts;
    if (type_of(normalizer) == "Sequence") {
      for (const json& n : normalizer.value("normalizers", json::array())) parts.push_back(n);
    } else if (!normalizer.is_null()) {
      parts.push_back(normalizer);
    }
    for (const json& n : parts) {
      if (type_of(n) != "NFC") return error("normalizer " + n.dump() + " is not supported (only NFC)");
      kind = NormalizerKind::kNfc;
    }
    auto created = Normalizer::create(kind);
    if (!created) return error(created.error().message);
    tok_.normalizer_ = created.value();
    return ok_status();
  }

  Status load_pre_tokenizer(const json& pre) {
    std::vector<json> parts;
    if (type_of(pre) == "Sequence") {
      for (const json& p : pre.value("pretokenizers", json::array())) parts.push_back(p);
    } else if (!pre.is_null()) {
      parts.push_back(pre);
    }
    std::optional<std::string> pattern;
    for (const json& p : parts) {
      std::string type = type_of(p);
      std::optional<std::string> this_pattern;
      if (type == "Split") {
        const json& pat = p.value("pattern", json());
        if (!pat.is_object() || !pat.contains("Regex")) return error("pre_tokenizer Split needs a Regex pattern: " + pat.dump());
        if (p.value("behavior", std::string()) != "Isolated" || p.value("invert", false)) {
          return error("pre_tokenizer Split supports behavior Isolated without invert, got " + p.dump());
        }
        this_pattern = pat["Regex"].get<std::string>();
      } else if (type == "ByteLevel") {
        tok_.add_prefix_space_ = p.value("add_prefix_space", false);
        if (p.value("use_regex", true)) this_pattern = std::string(PreTokenizer::kGpt2Pattern);
      } else {
        return error("pre_tokenizer type '" + type + "' is not supported (Split, ByteLevel, Sequence of them)");
      }
      if (this_pattern && pattern) return error("more than one regex pre-tokenizer is not supported");
      if (this_pattern) pattern = this_pattern;
    }
    if (pattern) {
      auto compiled = PreTokenizer::compile(*pattern);
      if (!compiled) return error(compiled.error().message);
      tok_.pre_tokenizer_ = std::move(compiled.value());
    }
    return ok_status();
  }

  Status load_decoder(const json& decoder) {
    if (type_of(decoder) != "ByteLevel") return error("decoder must be ByteLevel, got " + decoder.dump());
    return ok_status();
  }

  Status load_post_processor(const json& post) {
    std::vector<json> parts;
    if (type_of(post) == "Sequence") {
      for (const json& p : post.value("processors", json::array())) parts.push_back(p);
    } else if (!post.is_null()) {
      parts.push_back(post);
    }
    for (const json& p : parts) {
      std::string type = type_of(p);
      if (type == "ByteLevel") continue;  // adjusts offsets only
      if (type != "TemplateProcessing") return error("post_processor type '" + type + "' is not supported");
      // "single": [{"SpecialToken": {"id": "<|begin_of_text|>"}}, {"Sequence": {"id": "A"}}]
      bool seen_sequence = false;
      for (const json& item : p.value("single", json::array())) {
        if (item.contains("Sequence")) {
          seen_sequence = true;
          continue;
        }
        std::string name = item.value("SpecialToken", json::object()).value("id", std::string());
        const json& special = p.value("special_tokens", json::object()).value(name, json());
        if (!special.is_object() || !special.contains("ids")) {
          return error("post_processor template names special token '" + name + "' without ids");
        }
        auto& target = seen_sequence ? tok_.suffix_ids_ : tok_.prefix_ids_;
        for (const json& id : special["ids"]) target.push_back(id.get<int32_t>());
      }
    }
    return ok_status();
  }

  void build_id_tables(const std::vector<std::pair<std::string, int32_t>>& vocab_entries) {
    int32_t max_id = -1;
    for (const auto& [token, id] : vocab_entries) max_id = std::max(max_id, id);
    for (const auto& a : added_) max_id = std::max(max_id, a.id);
    const size_t vocab_size = static_cast<size_t>(max_id + 1);
    tok_.id_to_token_.assign(vocab_size, std::string());
    tok_.is_special_.assign(vocab_size, 0);
    for (const auto& [token, id] : vocab_entries) tok_.id_to_token_[id] = token;
    for (const auto& a : added_) {
      tok_.id_to_token_[a.id] = a.content;  // an added token overrides a vocab entry of the same id
      tok_.is_special_[a.id] = a.special;
    }
    tok_.token_to_id_ = std::move(vocab_);
    for (const auto& a : added_) tok_.token_to_id_[a.content] = a.id;
    // Decoded bytes of every token, precomputed so decode is a copy per token.
    tok_.token_bytes_.clear();
    tok_.token_bytes_offsets_.assign(1, 0);
    tok_.token_bytes_offsets_.reserve(vocab_size + 1);
    for (const std::string& token : tok_.id_to_token_) {
      tok_.token_bytes_ += byte_level::decode_token(token);
      tok_.token_bytes_offsets_.push_back(static_cast<uint32_t>(tok_.token_bytes_.size()));
    }
  }

  // tokenizer_config.json writes a token as "text" or as {"content": "text", ...}.
  static std::optional<std::string> token_text(const json& config, const char* key) {
    if (!config.contains(key)) return std::nullopt;
    const json& v = config[key];
    if (v.is_string()) return v.get<std::string>();
    if (v.is_object() && v.contains("content") && v["content"].is_string()) return v["content"].get<std::string>();
    return std::nullopt;
  }

  void load_config(const json* config) {
    std::string bos_text;
    if (config != nullptr) {
      if (auto eos = token_text(*config, "eos_token")) {
        tok_.eos_token_id_ = tok_.token_to_id(*eos);
        if (!tok_.eos_token_id_) logger("tokenizer")->warn("{}: eos_token '{}' is not in the vocabulary", source_, *eos);
      }
      if (auto bos = token_text(*config, "bos_token")) {
        bos_text = *bos;
        tok_.bos_token_id_ = tok_.token_to_id(*bos);
      }
    }
    std::string jinja;
    if (config != nullptr && config->contains("chat_template")) {
      const json& t = (*config)["chat_template"];
      if (t.is_string()) jinja = t.get<std::string>();
      // Some configs list named templates: [{"name": "default", "template": "..."}].
      if (t.is_array()) {
        for (const json& named : t) {
          if (named.value("name", std::string()) == "default") jinja = named.value("template", std::string());
        }
      }
    }
    auto chosen = !jinja.empty() ? ChatTemplate::from_jinja(jinja, bos_text)
                                 : ChatTemplate::from_special_tokens(tok_.token_to_id("<|im_start|>").has_value(),
                                                                     tok_.token_to_id("<|start_header_id|>").has_value(),
                                                                     bos_text);
    if (chosen) {
      tok_.chat_template_ = chosen.value();
    } else {
      tok_.chat_template_error_ = source_ + ": " + chosen.error().message;
    }
  }

  struct AddedEntry {
    std::string content;
    int32_t id;
    bool special;
  };
  Tokenizer& tok_;
  std::string source_;
  StringIdMap vocab_;
  std::vector<AddedEntry> added_;
};

Result<std::unique_ptr<Tokenizer>> Tokenizer::from_json(std::string_view tokenizer_json, std::string_view config_json,
                                                        const std::string& source) {
  json root = json::parse(tokenizer_json, nullptr, /*allow_exceptions=*/false);
  if (root.is_discarded() || !root.is_object()) {
    return make_error("bad_tokenizer", source + ": tokenizer.json is not a JSON object");
  }
  json config;
  if (!config_json.empty()) {
    config = json::parse(config_json, nullptr, false);
    if (config.is_discarded() || !config.is_object()) {
      return make_error("bad_tokenizer", source + ": tokenizer_config.json is not a JSON object");
    }
  }
  std::unique_ptr<Tokenizer> tok(new Tokenizer());
  TokenizerLoader loader(*tok, source);
  try {
    VELA_TRY(loader.load(root, config.is_object() ? &config : nullptr));
  } catch (const json::exception& e) {  // a value of the wrong JSON type somewhere
    return make_error("bad_tokenizer", source + ": " + e.what());
  }
  return tok;
}

namespace {

Result<std::string> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error("io", "cannot open " + path);
  std::ostringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

}  // namespace

Result<std::unique_ptr<Tokenizer>> Tokenizer::from_file(const std::string& tokenizer_json_path) {
  VELA_TRY_ASSIGN(const std::string text, read_file(tokenizer_json_path));
  std::string config_text;
  auto config_path = std::filesystem::path(tokenizer_json_path).parent_path() / "tokenizer_config.json";
  if (std::filesystem::exists(config_path)) {
    VELA_TRY_ASSIGN(config_text, read_file(config_path.string()));
  }
  return from_json(text, config_text, tokenizer_json_path);
}

}  // namespace vela
