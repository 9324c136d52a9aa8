// The one place where PostgreSQL's C headers enter C++ code.
// Bridge files include their C++ and third-party headers first, then this
// file (PostgreSQL's port.h redefines snprintf and friends).
#pragma once

extern "C" {
#include "postgres.h"

#include "access/xact.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/elog.h"
#include "utils/memutils.h"
}
