// Included last by files that must stay free of PostgreSQL headers.
#pragma once

#if defined(POSTGRES_H)
static_assert(false, "this file must not include PostgreSQL headers");
#endif
