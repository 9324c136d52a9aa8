// The dispatcher's side of tumbling windows (TumblingWindowInSeconds,
// semantics 1.3): a batch holds records of one window; the invocation that
// sends a window's last records once the window is over is its final one,
// with no records when all of them were sent already; the state a function
// returns goes to the next invocation of the window.
#include <algorithm>

#include "boundary/guard.hpp"
#include "dispatch/dispatcher.hpp"
#include "dispatch/event.hpp"

namespace pgs::dispatch {

size_t Dispatcher::WindowPrefix(const Shard& sh, const std::vector<Record>& records) const {
  if (records.empty()) return 0;
  const int64_t size = WindowSizeUs(), base = window::Base(sh.win);
  const int64_t first = window::WindowOf(records[0].arrival_us, size, base);
  size_t n = 1;
  while (n < records.size() && window::WindowOf(records[n].arrival_us, size, base) == first) ++n;
  return n;
}

// The open window has no record left among `records` (the records after the
// checkpoint, oldest first): its final invocation is due, with no records,
// once a record of a later window is in sight or its time has passed.
bool Dispatcher::FinalDue(Shard& sh, const std::vector<Record>& records, int64_t now) const {
  const window::ShardWindow& w = sh.win;
  if (w.start_us == 0) return false;
  const int64_t size = WindowSizeUs();
  if (!records.empty()) return window::WindowOf(records[0].arrival_us, size, w.start_us) != w.start_us;
  return now >= w.start_us + size + window::kCloseGraceUs;
}

window::Invoke Dispatcher::WindowOfBatch(Shard& sh, filter::Filter* f, const std::vector<Record>& records, size_t n,
                                         bool capped, int64_t now) {
  const int64_t size = WindowSizeUs(), base = window::Base(sh.win);
  window::Invoke inv;
  inv.on = true;
  inv.start_us = window::WindowOf(records[0].arrival_us, size, base);
  inv.end_us = inv.start_us + size;
  inv.early = sh.win.start_us == inv.start_us && sh.win.early;
  // The next record after the batch, if one is in sight: read already
  // (a new batch reads one more than it takes), or looked up (a batch being
  // retried ends where it was cut).
  std::optional<int64_t> next_arrival;
  if (n < records.size()) {
    next_arrival = records[n].arrival_us;
  } else if (sh.state.batch_end) {
    ShardState after = sh.state;
    after.checkpoint = *sh.state.batch_end;
    after.batch_end.reset();
    Scan peek = ReadMatching(after, f, 1);
    if (!peek.records.empty()) next_arrival = peek.records[0].arrival_us;
    capped = peek.capped;
  }
  if (next_arrival)
    inv.final = window::WindowOf(*next_arrival, size, base) != inv.start_us;
  else
    inv.final = !capped && now >= inv.end_us + window::kCloseGraceUs;
  return inv;
}

// An empty final invocation that used up its retries: the window is closed
// without one (there are no records to hand to the OnFailure destination).
void Dispatcher::DropWindow(Shard& sh, int64_t now, StepStats& stats) {
  window::ShardWindow& w = sh.win;
  std::string start = IsoUtc(w.start_us, false);
  PgCall([&] {
    ereport(LOG, (errmsg("pg_streams: event source mapping %s: the final invocation of window %s of %s failed %d "
                         "times; the window is closed without it and its state dropped",
                         cfg_.uuid.c_str(), start.c_str(), sh.state.shard_id.c_str(), sh.state.attempts)));
  });
  window::Invoke inv;
  inv.final = true;
  inv.end_us = w.start_us + WindowSizeUs();
  window::AfterSuccess(w, inv, window::Reply{}, true);
  (void)stats;
  sh.state.blocked_since_us = 0;  // the shard moves on
  sh.warned_blocked = false;
  NextBatch(sh.state);
  sh.due_us = now;
}

// A shard idle with a window open is due when the clock ends it (a window
// already over was handled by this step, which set when to come back).
void Dispatcher::WakeForWindow(Shard& sh, int64_t now) const {
  if (cfg_.tumbling_s <= 0 || sh.win.start_us == 0) return;
  const int64_t close = sh.win.start_us + WindowSizeUs() + window::kCloseGraceUs;
  if (close > now) sh.due_us = std::min(sh.due_us, close);
}

void Dispatcher::ParseWindowReply(const Plan& plan, const std::optional<std::string>& body, Outcome* out) const {
  if (!plan.win.on || out->verdict.kind == ResponseVerdict::kFailure) return;
  out->reply = window::ReadReply(body);
  if (!out->reply.ok) {
    out->verdict = ResponseVerdict{ResponseVerdict::kFailure, 0};
    out->error = out->reply.error;
  }
}

}  // namespace pgs::dispatch
