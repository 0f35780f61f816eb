#define _POSIX_C_SOURCE 200809L
#include "stop_signal.h"

#include <signal.h>
#include <string.h>

static volatile sig_atomic_t received_signal = 0;

static void on_stop_signal(int signal_number) {
    if (received_signal != 0) {
        /* Second signal: give up on the clean stop. */
        signal(signal_number, SIG_DFL);
        raise(signal_number);
        return;
    }
    received_signal = signal_number;
}

int stop_signal_install(void) {
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = on_stop_signal;
    sigemptyset(&action.sa_mask);
    if (sigaction(SIGINT, &action, NULL) != 0 || sigaction(SIGTERM, &action, NULL) != 0) {
        return -1;
    }
    return stop_signal_ignore_file_size();
}

int stop_signal_ignore_file_size(void) {
    struct sigaction ignore;
    memset(&ignore, 0, sizeof ignore);
    ignore.sa_handler = SIG_IGN;
    sigemptyset(&ignore.sa_mask);
    return sigaction(SIGXFSZ, &ignore, NULL);
}

int stop_signal_received(void) {
    return received_signal;
}
