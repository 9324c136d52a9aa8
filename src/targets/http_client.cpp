#include "targets/http_client.hpp"
#include "targets/http_transfer.hpp"

#include <curl/curl.h>

#include <strings.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <stdexcept>

namespace pgs::targets {

struct BodySink {
  std::string body;
  bool too_large = false;  // the body passed kMaxResponseBody: reading stopped
  bool failed = false;     // out of memory
};

namespace {

// libcurl calls these from C frames: nothing may throw out of them. A
// short count aborts the transfer (CURLE_WRITE_ERROR).
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

// One multi handle per process, kept for the life of the process: its
// connection cache keeps connections to an endpoint alive between requests
// (a dispatcher posts batch after batch to the same URL), and its DNS cache
// spares a lookup per request. Connections the peer closed are detected and
// replaced by libcurl. HttpPost uses one, the transfers in flight at once
// (HttpStart) another, so neither takes the other's finished transfers.
CURLM* NewMulti() {
  CURLM* multi = curl_multi_init();
  if (multi == nullptr) throw std::runtime_error("curl initialisation failed");
  curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, 8L);
  return multi;
}

CURLM* ProcessMulti() {
  static CURLM* multi = nullptr;
  if (multi == nullptr) multi = NewMulti();
  return multi;
}

}  // namespace

void HttpGlobalInit() {
  static bool done = false;
  if (!done) {
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) throw std::runtime_error("curl_global_init failed");
    done = true;
  }
}

HttpTransfer::HttpTransfer(const HttpRequest& req) {
  HttpGlobalInit();
  sink_ = std::make_unique<BodySink>();
  easy_ = curl_easy_init();
  if (easy_ == nullptr) throw std::runtime_error("curl initialisation failed");
  std::vector<std::string> all = req.headers;
  // No "Expect: 100-continue" round trip before bodies over 1 kB.
  all.emplace_back("Expect:");
  for (const auto& h : all) {
    curl_slist* next = curl_slist_append(headers_, h.c_str());
    if (next == nullptr) throw std::bad_alloc();
    headers_ = next;
  }
  CURL* e = easy_;
  curl_easy_setopt(e, CURLOPT_URL, req.url.c_str());
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(e, CURLOPT_POST, 1L);
  curl_easy_setopt(e, CURLOPT_POSTFIELDS, req.body.data());
  curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(req.body.size()));
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers_);
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, req.timeout_ms);
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, req.timeout_ms);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, req.verify_tls ? 1L : 0L);
  curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, req.verify_tls ? 2L : 0L);
  if (!req.ca_file.empty()) curl_easy_setopt(e, CURLOPT_CAINFO, req.ca_file.c_str());
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, Collect);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, sink_.get());
  curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, CollectHeader);
  curl_easy_setopt(e, CURLOPT_HEADERDATA, &res_);
  // A Content-Length over the cap is refused before the body is read; other
  // framings (chunked, closed connection) are cut by Collect.
  curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, static_cast<curl_off_t>(kMaxResponseBody));
}

HttpTransfer::~HttpTransfer() {
  Detach();
  if (easy_ != nullptr) curl_easy_cleanup(easy_);
  if (headers_ != nullptr) curl_slist_free_all(headers_);
}

void HttpTransfer::Attach(CURLM* multi) {
  CURLMcode mc = curl_multi_add_handle(multi, easy_);
  if (mc != CURLM_OK) throw std::runtime_error(curl_multi_strerror(mc));
  multi_ = multi;
}

void HttpTransfer::Detach() {
  if (multi_ != nullptr) curl_multi_remove_handle(multi_, easy_);
  multi_ = nullptr;
}

HttpResponse HttpTransfer::Finish(int code) {
  Detach();
  auto result = static_cast<CURLcode>(code);
  HttpResponse res = std::move(res_);
  if (result == CURLE_OK) {
    res.answered = true;
    res.body = std::move(sink_->body);
    curl_easy_getinfo(easy_, CURLINFO_RESPONSE_CODE, &res.status);
  } else if (sink_->too_large || result == CURLE_FILESIZE_EXCEEDED) {
    res.too_large = true;
    res.error = "response body exceeds 6 MB";
  } else if (sink_->failed) {
    res.error = "out of memory while reading the response";
  } else {
    res.timed_out = result == CURLE_OPERATION_TIMEDOUT;
    res.error = curl_easy_strerror(result);
  }
  return res;
}

HttpResponse HttpPost(const HttpRequest& req, const std::function<void()>& poll) {
  HttpTransfer t(req);
  CURLM* multi = ProcessMulti();
  t.Attach(multi);
  CURLcode result = CURLE_OK;
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
    if (msg->msg == CURLMSG_DONE && msg->easy_handle == t.easy()) result = msg->data.result;
  return t.Finish(result);
}

// Transfers in flight at once ------------------------------------------------
namespace {

struct InFlight {
  CURLM* multi = nullptr;
  std::map<uint64_t, std::unique_ptr<HttpTransfer>> transfers;
  uint64_t next_tag = 1;
};

// Never destroyed: a process ends with proc_exit, which runs no C++ static
// destructors we could rely on anyway.
InFlight& Flights() {
  static InFlight* f = nullptr;
  if (f == nullptr) {
    f = new InFlight;
    f->multi = NewMulti();
  }
  return *f;
}

}  // namespace

uint64_t HttpStart(const HttpRequest& request) {
  InFlight& f = Flights();
  auto t = std::make_unique<HttpTransfer>(request);
  t->Attach(f.multi);
  uint64_t tag = f.next_tag++;
  f.transfers.emplace(tag, std::move(t));
  return tag;
}

void HttpCancel(uint64_t tag) { Flights().transfers.erase(tag); }

size_t HttpInFlight() { return Flights().transfers.size(); }

std::vector<std::pair<uint64_t, HttpResponse>> HttpWait(int timeout_ms) {
  InFlight& f = Flights();
  std::vector<std::pair<uint64_t, HttpResponse>> done;
  if (f.transfers.empty()) return done;
  int running = 0;
  CURLMcode mc = curl_multi_perform(f.multi, &running);
  if (mc != CURLM_OK) throw std::runtime_error(curl_multi_strerror(mc));
  if (running > 0 && timeout_ms > 0) {
    mc = curl_multi_poll(f.multi, nullptr, 0, timeout_ms, nullptr);
    if (mc != CURLM_OK) throw std::runtime_error(curl_multi_strerror(mc));
    mc = curl_multi_perform(f.multi, &running);
    if (mc != CURLM_OK) throw std::runtime_error(curl_multi_strerror(mc));
  }
  int left = 0;
  while (CURLMsg* msg = curl_multi_info_read(f.multi, &left)) {
    if (msg->msg != CURLMSG_DONE) continue;
    for (auto it = f.transfers.begin(); it != f.transfers.end(); ++it) {
      if (it->second->easy() != msg->easy_handle) continue;
      CURLcode result = msg->data.result;  // msg is invalid once the handle is removed
      done.emplace_back(it->first, it->second->Finish(result));
      f.transfers.erase(it);
      break;
    }
  }
  return done;
}

}  // namespace pgs::targets
