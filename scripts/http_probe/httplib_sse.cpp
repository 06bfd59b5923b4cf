// cpp-httplib probe for docs/PERF_NOTES.md: each request streams 20 SSE events 50 ms
// apart (1 s) with a chunked content provider. Build: g++ -O2 -std=c++20
// httplib_sse.cpp -o httplib_sse -lcpp-httplib -lpthread (Debian: libcpp-httplib-dev). Run: ./httplib_sse PORT
#include <httplib.h>

#include <chrono>
#include <string>
#include <thread>

int main(int argc, char** argv) {
  httplib::Server server;
  server.Post("/v1/completions", [](const httplib::Request&, httplib::Response& res) {
    auto sent = std::make_shared<int>(0);
    res.set_chunked_content_provider("text/event-stream", [sent](size_t, httplib::DataSink& sink) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));  // a token every 50 ms
      std::string ev = "data: {\"n\":" + std::to_string(*sent) + "}\n\n";
      sink.write(ev.data(), ev.size());
      if (++*sent == 20) {
        std::string done = "data: [DONE]\n\n";
        sink.write(done.data(), done.size());
        sink.done();
      }
      return true;
    });
  });
  server.listen("127.0.0.1", argc > 1 ? std::atoi(argv[1]) : 8091);
}
