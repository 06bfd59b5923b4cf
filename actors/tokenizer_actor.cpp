// TokenizerActor: tokenizes one request's text (rendering its chat template first)
// on a thread of its own, so that a huge prompt holds up only the requests queued
// behind it on this tokenizer, not the frontend. The frontend keeps
// frontend.tokenizer_threads of them and sends each request to the shortest queue.
#include "actors/engine_actors.h"
#include "tokenizer/tokenizer.h"

namespace vela::actors {
namespace {

tokenizer_actor::behavior_type tokenizer_fn(tokenizer_actor::pointer self, std::shared_ptr<const Tokenizer> tokenizer,
                                            frontend_actor frontend, size_t index) {
  return {
      [=](TokenizeMsg& m) {
        TokenizedMsg out;
        out.job = m.job;
        out.tokenizer = index;
        if (m.prompt) {
          out.ids = tokenizer->encode(*m.prompt);
        } else {
          std::vector<ChatMessage> chat(m.chat.size());
          for (size_t i = 0; i < chat.size(); ++i) {
            chat[i].role = std::move(m.chat[i].first);
            chat[i].content = std::move(m.chat[i].second);
          }
          auto rendered = tokenizer->apply_chat_template(chat);
          if (rendered) out.ids = tokenizer->encode(*rendered);
          else out.error = "cannot render the chat template: " + rendered.error().message;
        }
        self->send(frontend, std::move(out));
      },
  };
}

}  // namespace

tokenizer_actor spawn_tokenizer(caf::local_actor* parent, std::shared_ptr<const Tokenizer> tokenizer,
                                frontend_actor frontend, size_t index) {
  return parent->spawn<caf::detached + caf::linked>(tokenizer_fn, std::move(tokenizer), std::move(frontend), index);
}

}  // namespace vela::actors
