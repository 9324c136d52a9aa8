// Small helpers for the workers' own transactions.
#pragma once

#include "boundary/pg.hpp"

namespace pgs::worker {

void BeginWork();  // start a transaction with a snapshot
void EndWork();    // commit it and report statistics
bool ExtensionInstalled();

}  // namespace pgs::worker
