// HTTP requests of dispatchers in flight at once: a step that built a request
// starts it (targets::HttpStart) and returns; the dispatcher worker waits for
// answers of all its mappings together (targets::HttpWait) and hands each to
// the dispatcher and shard that started it, which records it (Finish).
#include <map>
#include <utility>

#include "boundary/guard.hpp"
#include "dispatch/dispatcher.hpp"
#include "worker/shmem.hpp"

namespace pgs::dispatch {
namespace {

struct Owner {
  Dispatcher* dispatcher;
  int32_t shard;
};

// Tag -> the dispatcher and shard waiting for it. Never destroyed (see
// targets::HttpStart); entries go when answered or when their dispatcher goes.
std::map<uint64_t, Owner>& Owners() {
  static auto* owners = new std::map<uint64_t, Owner>;
  return *owners;
}

}  // namespace

Dispatcher::~Dispatcher() {
  for (auto& sh : shards_) {
    if (!sh.flight) continue;
    targets::HttpCancel(sh.flight_tag);
    Owners().erase(sh.flight_tag);
    if (sh.flight_slot_function != 0) worker::ReleaseHttpSlot(MyDatabaseId, sh.flight_slot_function);
  }
}

void Dispatcher::StartRequest(Shard& sh, Plan plan, int32_t slot_function) {
  auto flight = std::make_shared<Plan>(std::move(plan));
  // While it is in flight, the request's body is the batch: recording the
  // answer needs only the records' positions.
  flight->event = std::string();
  flight->failure_doc = std::string();
  for (Record& r : flight->records) r.text = std::string();
  uint64_t tag;
  try {
    tag = targets::HttpStart(flight->request);
    Owners().emplace(tag, Owner{this, sh.state.shard});
  } catch (...) {
    if (slot_function != 0) worker::ReleaseHttpSlot(MyDatabaseId, slot_function);
    throw;
  }
  sh.flight = std::move(flight);
  sh.flight_tag = tag;
  sh.flight_slot_function = slot_function;
}

bool Dispatcher::Deliver(uint64_t tag, const targets::HttpResponse& response) {
  auto it = Owners().find(tag);
  if (it == Owners().end()) return false;
  Owner owner = it->second;
  Owners().erase(it);
  owner.dispatcher->Complete(owner.shard, tag, response);
  return true;
}

void Dispatcher::Complete(int32_t shard, uint64_t tag, const targets::HttpResponse& res) {
  for (auto& sh : shards_) {
    if (sh.state.shard != shard || !sh.flight || sh.flight_tag != tag) continue;
    std::shared_ptr<Plan> plan = std::move(sh.flight);
    sh.flight.reset();
    sh.flight_tag = 0;
    if (sh.flight_slot_function != 0) worker::ReleaseHttpSlot(MyDatabaseId, sh.flight_slot_function);
    sh.flight_slot_function = 0;
    Finish(sh, *plan, res);
    return;
  }
}

}  // namespace pgs::dispatch
