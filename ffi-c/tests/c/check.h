/* Tiny test helpers shared by the C test programs. */
#ifndef POLYSIO_TEST_CHECK_H
#define POLYSIO_TEST_CHECK_H

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "polysio.h"

#define FAIL(...)                                                     \
    do {                                                              \
        fprintf(stderr, "%s:%d: ", __FILE__, __LINE__);               \
        fprintf(stderr, __VA_ARGS__);                                 \
        fprintf(stderr, "\n");                                        \
        exit(1);                                                      \
    } while (0)

#define CHECK(cond)                                                   \
    do {                                                              \
        if (!(cond)) FAIL("CHECK failed: %s", #cond);                 \
    } while (0)

static inline const char *last_error(void) {
    static _Thread_local char buf[1024];
    polysio_last_error(buf, sizeof buf);
    return buf;
}

/* The call must succeed. */
#define OK(expr)                                                      \
    do {                                                              \
        polysio_result r_ = (expr);                                   \
        if (r_ != POLYSIO_OK)                                         \
            FAIL("%s -> %s: %s", #expr, polysio_result_name(r_),      \
                 last_error());                                       \
    } while (0)

/* The call must fail with `code`, and leave a message. */
#define ERR(expr, code)                                               \
    do {                                                              \
        polysio_result r_ = (expr);                                   \
        if (r_ != (code))                                             \
            FAIL("%s -> %s, expected %s (%s)", #expr,                 \
                 polysio_result_name(r_), polysio_result_name(code),  \
                 r_ == POLYSIO_OK ? "" : last_error());               \
        if (polysio_last_error(NULL, 0) == 0)                         \
            FAIL("%s: no error message", #expr);                      \
    } while (0)

#define STREQ(a, b) CHECK(strcmp((a), (b)) == 0)

static inline long now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000L + t.tv_nsec / 1000000L;
}

/* How tests wait: pump() runs queued callbacks (poll mode) or just sleeps (threads mode). */
static polysio_server *pump_servers[4];
static polysio_client *pump_clients[8];

static inline void pump(int ms) {
    struct pollfd fds[12];
    int n = 0;
    for (int i = 0; i < 4; i++) {
        int fd;
        if (pump_servers[i] && polysio_server_event_fd(pump_servers[i], &fd) == POLYSIO_OK)
            fds[n++] = (struct pollfd){.fd = fd, .events = POLLIN};
    }
    for (int i = 0; i < 8; i++) {
        int fd;
        if (pump_clients[i] && polysio_client_event_fd(pump_clients[i], &fd) == POLYSIO_OK)
            fds[n++] = (struct pollfd){.fd = fd, .events = POLLIN};
    }
    if (n == 0) {
        struct timespec t = {0, ms * 1000000L};
        nanosleep(&t, NULL);
        return;
    }
    poll(fds, n, ms);
    for (int i = 0; i < 4; i++)
        if (pump_servers[i]) polysio_server_poll(pump_servers[i], NULL);
    for (int i = 0; i < 8; i++)
        if (pump_clients[i]) polysio_client_poll(pump_clients[i], NULL);
}

/* Waits (generously: machines are slow, valgrind slower) until `cond` holds. */
#define WAIT_UNTIL(cond)                                              \
    do {                                                              \
        long t0_ = now_ms();                                          \
        while (!(cond)) {                                             \
            if (now_ms() - t0_ > 30000) FAIL("timed out waiting for: %s", #cond); \
            pump(2);                                                  \
        }                                                             \
    } while (0)

#endif
