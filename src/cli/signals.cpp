#include "cli/signals.hpp"

#include <csignal>
#include <ctime>

namespace pgs::cli {

namespace {

volatile std::sig_atomic_t g_stop = 0;

extern "C" void on_stop_signal(int)
{
    g_stop = 1;
}

}  // namespace

void install_stop_handlers()
{
    struct sigaction sa {};
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;  // no SA_RESTART: a sleep returns at once
    sigaction(SIGINT, &sa, nullptr);
    sigaction(SIGTERM, &sa, nullptr);
}

bool stop_requested()
{
    return g_stop != 0;
}

bool sleep_unless_stopped(int ms)
{
    // Short naps, so a signal that arrives between the check and the nap
    // delays the stop by 50 ms at most.
    for (int waited = 0; waited < ms && !g_stop; waited += 50) {
        struct timespec ts {0, 50L * 1000 * 1000};
        nanosleep(&ts, nullptr);
    }
    return !g_stop;
}

}  // namespace pgs::cli
