// libmicrohttpd probe for docs/PERF_NOTES.md: each POST streams 20 SSE events 50 ms
// apart (1 s), on MHD's one epoll thread: the content reader suspends the connection
// when no event is due and a timer thread resumes it. Build: g++ -O2 -std=c++20
// mhd_sse.cpp -o mhd_sse -lmicrohttpd -lpthread (Debian: libmicrohttpd-dev).
#include <microhttpd.h>

#include <chrono>
#include <condition_variable>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <thread>

using Clock = std::chrono::steady_clock;

struct Stream {
  MHD_Connection* connection;
  int sent = 0;
  Clock::time_point next_due;
};

std::mutex mu;
std::condition_variable cv;
std::multimap<Clock::time_point, MHD_Connection*> resumes;

ssize_t reader(void* cls, uint64_t, char* buf, size_t max) {
  auto* s = static_cast<Stream*>(cls);
  if (s->sent == 21) return MHD_CONTENT_READER_END_OF_STREAM;
  if (Clock::now() < s->next_due) {  // nothing due: park the connection until it is
    MHD_suspend_connection(s->connection);
    std::lock_guard lock(mu);
    resumes.emplace(s->next_due, s->connection);
    cv.notify_one();
    return 0;
  }
  std::string ev = s->sent == 20 ? "data: [DONE]\n\n" : "data: {\"n\":" + std::to_string(s->sent) + "}\n\n";
  s->sent++;
  s->next_due = Clock::now() + std::chrono::milliseconds(50);
  std::memcpy(buf, ev.data(), std::min(max, ev.size()));
  return static_cast<ssize_t>(ev.size());
}

MHD_Result handler(void*, MHD_Connection* c, const char*, const char*, const char*, const char*, size_t* upload_size,
                   void** state) {
  if (!*state) {
    *state = c;
    return MHD_YES;
  }
  if (*upload_size) {
    *upload_size = 0;
    return MHD_YES;
  }
  auto* s = new Stream{c, 0, Clock::now() + std::chrono::milliseconds(50)};
  MHD_Response* r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 1024, reader, s,
                                                      [](void* p) { delete static_cast<Stream*>(p); });
  MHD_add_response_header(r, "Content-Type", "text/event-stream");
  MHD_Result ret = MHD_queue_response(c, MHD_HTTP_OK, r);
  MHD_destroy_response(r);
  return ret;
}

int main(int argc, char** argv) {
  std::thread timer([] {
    std::unique_lock lock(mu);
    for (;;) {
      if (resumes.empty()) cv.wait(lock);
      else cv.wait_until(lock, resumes.begin()->first);
      while (!resumes.empty() && resumes.begin()->first <= Clock::now()) {
        MHD_resume_connection(resumes.begin()->second);
        resumes.erase(resumes.begin());
      }
    }
  });
  MHD_Daemon* d = MHD_start_daemon(MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME,
                                   static_cast<uint16_t>(argc > 1 ? std::atoi(argv[1]) : 8092), nullptr, nullptr,
                                   &handler, nullptr, MHD_OPTION_CONNECTION_LIMIT, 4000u, MHD_OPTION_END);
  if (!d) return 1;
  timer.join();
}
