/* The scenario server of the cross-language tests, in C through polysio.h
 * (`tests/run-server c PORT`): the behaviour tests/SCENARIOS.md describes (as
 * core/examples/test_server.rs).
 *
 *   scenario_server PORT [--full] [--recovery] [--ping INTERVAL,TIMEOUT] [--poll]
 *
 * Default: pingInterval 300 ms, pingTimeout 200 ms, connectTimeout 1000 ms; namespaces `/` and
 * `/custom`, each with a middleware refusing `auth.refuse`, `auth` emitted on connect, and the
 * handlers `message`, `message-with-ack`, `ask`, `join`, `to-room`, `broadcast` and
 * `disconnect-me`.
 * --full adds what tests/node/server-scenarios.js expects (as core/tests/server_node.rs):
 * ask-client, join, bcast, bcast-except, disconnect-me, a `/secret` namespace behind a
 * middleware, and broadcasts to room `green` when a socket's transport closes; it prints
 * `disconnect <reason>` for every disconnect on `/`.
 * --recovery turns connection state recovery on; --poll runs every callback on the main
 * thread (POLYSIO_DISPATCH_POLL) instead of library threads.
 * Prints `listening PORT` when ready; runs until SIGINT or SIGTERM, then frees everything. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "scenarios.h"

static int stop_pipe[2] = {-1, -1};

static void on_signal(int sig) {
    (void)sig;
    int saved = errno;
    ssize_t r = write(stop_pipe[1], "x", 1);
    (void)r;
    errno = saved;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: scenario_server PORT [--full] [--recovery] [--ping I,T] [--poll]\n");
        return 2;
    }
    int port = atoi(argv[1]);

    if (pipe(stop_pipe) != 0) return 1;
    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    struct scenario_opts opts;
    polysio_server *srv = scenario_server_new(argc, argv, 2, &opts);
    if (!srv) return 2;
    bool poll_mode = opts.poll;
    uint16_t bound = 0;
    polysio_result r = polysio_server_listen(srv, "127.0.0.1", (uint16_t)port, &bound);
    if (r != POLYSIO_OK) {
        check(r, "listen");
        polysio_server_free(srv);
        return 1;
    }
    printf("listening %u\n", bound);
    fflush(stdout);

    struct pollfd fds[2] = {{.fd = stop_pipe[0], .events = POLLIN}, {.fd = -1, .events = POLLIN}};
    if (poll_mode) check(polysio_server_event_fd(srv, &fds[1].fd), "event fd");
    for (;;) {
        if (poll(fds, 2, -1) < 0 && errno != EINTR) break;
        if (fds[0].revents) break;
        if (fds[1].revents) check(polysio_server_poll(srv, NULL), "poll");
    }
    check(polysio_server_free(srv), "free");
    close(stop_pipe[0]);
    close(stop_pipe[1]);
    return 0;
}
