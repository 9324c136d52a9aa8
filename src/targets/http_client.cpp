#include "targets/http_client.hpp"

#include <curl/curl.h>

#include <strings.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <stdexcept>

namespace pgs::targets {
namespace {

// libcurl calls these from C frames: nothing may throw out of them. A
// short count aborts the transfer (CURLE_WRITE_ERROR).
struct BodySink {
  std::string body;
  bool too_large = false;  // the body passed kMaxResponseBody: reading stopped
  bool failed = false;     // out of memory
};

size_t Collect(char* data, size_t size, size_t n, void* out) noexcept {
  auto* sink = static_cast<BodySink*>(out);
  size_t len = size * n;
  if (len > kMaxResponseBody - std::min(kMaxResponseBody, sink->body.size())) {
    sink->too_large = true;
    return 0;
  }
  try {
    sink->body.append(data, len);
  } catch (...) {
    sink->failed = true;
    return 0;
  }
  return len;
}

// Takes Retry-After (seconds) and X-Amz-Function-Error from the header
// lines; allocates nothing.
size_t CollectHeader(char* data, size_t size, size_t n, void* out) noexcept {
  size_t len = size * n;
  auto* res = static_cast<HttpResponse*>(out);
  static const char kRetry[] = "retry-after:";
  static const char kFunctionError[] = "x-amz-function-error:";
  if (len > 64) return len;
  char value[65];
  if (len > sizeof(kRetry) - 1 && strncasecmp(data, kRetry, sizeof(kRetry) - 1) == 0) {
    memcpy(value, data + sizeof(kRetry) - 1, len - (sizeof(kRetry) - 1));
    value[len - (sizeof(kRetry) - 1)] = '\0';
    char* end = nullptr;
    double v = std::strtod(value, &end);
    if (end != value && v >= 0) res->retry_after_s = v;
  } else if (len > sizeof(kFunctionError) - 1 && strncasecmp(data, kFunctionError, sizeof(kFunctionError) - 1) == 0) {
    const char* v = data + sizeof(kFunctionError) - 1;
    const char* e = data + len;
    while (v < e && (*v == ' ' || *v == '\t')) ++v;
    while (e > v && (e[-1] == '\r' || e[-1] == '\n' || e[-1] == ' ')) --e;
    size_t vlen = std::min(static_cast<size_t>(e - v), sizeof(res->function_error) - 1);
    if (vlen == 0) {
      memcpy(res->function_error, "Unhandled", sizeof("Unhandled"));
    } else {
      memcpy(res->function_error, v, vlen);
      res->function_error[vlen] = '\0';
    }
  }
  return len;
}

struct EasyDeleter {
  void operator()(CURL* c) const { curl_easy_cleanup(c); }
};
struct ListDeleter {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};

// One multi handle per process, kept for the life of the process: its
// connection cache keeps connections to an endpoint alive between requests
// (a dispatcher posts batch after batch to the same URL), and its DNS cache
// spares a lookup per request. Connections the peer closed are detected and
// replaced by libcurl.
CURLM* ProcessMulti() {
  static CURLM* multi = nullptr;
  if (multi == nullptr) {
    multi = curl_multi_init();
    if (multi == nullptr) throw std::runtime_error("curl initialisation failed");
    curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, 8L);
  }
  return multi;
}

// Detaches the easy handle from the multi handle on every way out.
class Attached {
 public:
  Attached(CURLM* multi, CURL* easy) : multi_(multi), easy_(easy) {
    CURLMcode mc = curl_multi_add_handle(multi_, easy_);
    if (mc != CURLM_OK) throw std::runtime_error(curl_multi_strerror(mc));
  }
  ~Attached() { curl_multi_remove_handle(multi_, easy_); }
  Attached(const Attached&) = delete;
  Attached& operator=(const Attached&) = delete;

 private:
  CURLM* multi_;
  CURL* easy_;
};
}  // namespace

void HttpGlobalInit() {
  static bool done = false;
  if (!done) {
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) throw std::runtime_error("curl_global_init failed");
    done = true;
  }
}

HttpResponse HttpPost(const HttpRequest& req, const std::function<void()>& poll) {
  HttpGlobalInit();
  HttpResponse res;
  std::unique_ptr<CURL, EasyDeleter> easy(curl_easy_init());
  if (!easy) throw std::runtime_error("curl initialisation failed");
  CURLM* multi = ProcessMulti();
  curl_slist* raw = nullptr;
  std::vector<std::string> all = req.headers;
  // No "Expect: 100-continue" round trip before bodies over 1 kB.
  all.emplace_back("Expect:");
  for (const auto& h : all) {
    curl_slist* next = curl_slist_append(raw, h.c_str());
    if (next == nullptr) {
      curl_slist_free_all(raw);
      throw std::bad_alloc();
    }
    raw = next;
  }
  std::unique_ptr<curl_slist, ListDeleter> headers(raw);
  CURL* e = easy.get();
  curl_easy_setopt(e, CURLOPT_URL, req.url.c_str());
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(e, CURLOPT_POST, 1L);
  curl_easy_setopt(e, CURLOPT_POSTFIELDS, req.body.data());
  curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(req.body.size()));
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers.get());
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, req.timeout_ms);
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, req.timeout_ms);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, req.verify_tls ? 1L : 0L);
  curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, req.verify_tls ? 2L : 0L);
  if (!req.ca_file.empty()) curl_easy_setopt(e, CURLOPT_CAINFO, req.ca_file.c_str());
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, Collect);
  BodySink sink;
  curl_easy_setopt(e, CURLOPT_WRITEDATA, &sink);
  curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, CollectHeader);
  curl_easy_setopt(e, CURLOPT_HEADERDATA, &res);
  // A Content-Length over the cap is refused before the body is read; other
  // framings (chunked, closed connection) are cut by Collect.
  curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, static_cast<curl_off_t>(kMaxResponseBody));
  CURLcode result = CURLE_OK;
  {
    Attached attached(multi, e);
    int running = 1;
    while (running > 0) {
      CURLMcode mc = curl_multi_perform(multi, &running);
      if (mc != CURLM_OK) throw std::runtime_error(curl_multi_strerror(mc));
      if (running == 0) break;
      mc = curl_multi_poll(multi, nullptr, 0, 100, nullptr);
      if (mc != CURLM_OK) throw std::runtime_error(curl_multi_strerror(mc));
      poll();
    }
    int left = 0;
    while (CURLMsg* msg = curl_multi_info_read(multi, &left))
      if (msg->msg == CURLMSG_DONE && msg->easy_handle == e) result = msg->data.result;
  }
  if (result == CURLE_OK) {
    res.answered = true;
    res.body = std::move(sink.body);
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &res.status);
  } else if (sink.too_large || result == CURLE_FILESIZE_EXCEEDED) {
    res.too_large = true;
    res.error = "response body exceeds 6 MB";
  } else if (sink.failed) {
    res.error = "out of memory while reading the response";
  } else {
    res.timed_out = result == CURLE_OPERATION_TIMEDOUT;
    res.error = curl_easy_strerror(result);
  }
  return res;
}

}  // namespace pgs::targets
