// One libcurl transfer (an easy handle set up for a POST, its header list and
// what it collects), used by HttpPost and by the transfers in flight at once
// (HttpStart). The request must outlive the transfer (libcurl reads its body
// in place). Pure C++.
#pragma once

#include <curl/curl.h>

#include <memory>

#include "targets/http_client.hpp"

namespace pgs::targets {

struct BodySink;

class HttpTransfer {
 public:
  explicit HttpTransfer(const HttpRequest& request);
  ~HttpTransfer();
  HttpTransfer(const HttpTransfer&) = delete;
  HttpTransfer& operator=(const HttpTransfer&) = delete;

  void Attach(CURLM* multi);
  CURL* easy() const { return easy_; }
  // The response once libcurl has finished with `code` (a CURLcode).
  HttpResponse Finish(int code);

 private:
  void Detach();
  CURL* easy_ = nullptr;
  CURLM* multi_ = nullptr;
  curl_slist* headers_ = nullptr;
  std::unique_ptr<BodySink> sink_;
  HttpResponse res_;
};

}  // namespace pgs::targets
