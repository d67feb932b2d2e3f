/* The scenario logic of the C scenario servers (tests/SCENARIOS.md; as
 * core/examples/test_server.rs), shared by scenario_server.c (polysio's own listener,
 * `tests/run-server c`) and host_server.c (mounted in libmicrohttpd through the host API,
 * `tests/run-server c-host`). See scenario_server.c for the options. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "scenarios.h"

const char *scenario_program = "scenario_server";

void check(polysio_result r, const char *what) {
    if (r != POLYSIO_OK) {
        char msg[512];
        polysio_last_error(msg, sizeof msg);
        fprintf(stderr, "%s: %s: %s: %s\n", scenario_program, what, polysio_result_name(r), msg);
    }
}

static void emit_auth(void *ud, polysio_socket *s) {
    (void)ud;
    const polysio_payload *hs = NULL;
    polysio_payload *p = NULL;
    check(polysio_socket_handshake(s, &hs), "handshake");
    check(polysio_payload_new(&p), "payload");
    check(polysio_payload_push_value(p, hs, "/0/auth"), "auth");
    check(polysio_socket_emit(s, "auth", p), "emit auth");
    polysio_payload_free(p);
}

static void on_message(void *ud, polysio_socket *s, const char *ev, const polysio_payload *args, polysio_ack *ack) {
    (void)ud; (void)ev; (void)ack;
    check(polysio_socket_emit(s, "message-back", args), "message-back");
}

static void on_message_with_ack(void *ud, polysio_socket *s, const char *ev, const polysio_payload *args, polysio_ack *ack) {
    (void)ud; (void)s; (void)ev;
    if (ack) check(polysio_ack_send(ack, args), "ack");
}

/* ---- --full ------------------------------------------------------------------------------- */

static polysio_namespace *root;

/* A new payload with the arguments of `args` from index `from` on. */
static polysio_payload *rest(const polysio_payload *args, size_t from) {
    polysio_payload *p = NULL;
    size_t n = 0;
    check(polysio_payload_new(&p), "payload");
    check(polysio_payload_count(args, &n), "count");
    for (size_t i = from; i < n; i++) {
        char ptr[32];
        snprintf(ptr, sizeof ptr, "/%zu", i);
        check(polysio_payload_push_value(p, args, ptr), "push");
    }
    return p;
}

static const char *first_string(const polysio_payload *args) {
    const char *s = "";
    polysio_payload_get_string(args, "/0", &s, NULL);
    return s;
}

static void got_answer(void *ud, polysio_result r, const polysio_payload *args) {
    /* ud is the socket; it may have disconnected meanwhile (then the emit says CLOSED) */
    if (r == POLYSIO_OK) polysio_socket_emit((polysio_socket *)ud, "answer", args);
}

static void on_ask_client(void *ud, polysio_socket *s, const char *ev, const polysio_payload *args, polysio_ack *ack) {
    (void)ud; (void)ev; (void)ack;
    check(polysio_socket_emit_with_ack(s, "question", args, 5000, got_answer, s), "question");
}

static void on_join(void *ud, polysio_socket *s, const char *ev, const polysio_payload *args, polysio_ack *ack) {
    (void)ud; (void)ev;
    check(polysio_socket_join(s, first_string(args)), "join");
    if (ack) {
        polysio_payload *p = NULL;
        const char *room = first_string(args);
        check(polysio_payload_new(&p), "payload");
        check(polysio_payload_push_string(p, room, strlen(room)), "push");
        check(polysio_ack_send(ack, p), "ack");
        polysio_payload_free(p);
    }
}

static void bcast(const polysio_payload *args, bool except) {
    polysio_broadcast *b = NULL;
    check(polysio_namespace_broadcast(root, &b), "broadcast");
    if (except)
        check(polysio_broadcast_except(b, first_string(args)), "except");
    else
        check(polysio_broadcast_to(b, first_string(args)), "to");
    polysio_payload *p = rest(args, 1);
    check(polysio_broadcast_emit(b, "news", p), "emit news");
    polysio_payload_free(p);
    polysio_broadcast_free(b);
}

static void on_bcast(void *ud, polysio_socket *s, const char *ev, const polysio_payload *args, polysio_ack *ack) {
    (void)ud; (void)s; (void)ev; (void)ack;
    bcast(args, false);
}

static void on_bcast_except(void *ud, polysio_socket *s, const char *ev, const polysio_payload *args, polysio_ack *ack) {
    (void)ud; (void)s; (void)ev; (void)ack;
    bcast(args, true);
}

static void on_disconnect_me(void *ud, polysio_socket *s, const char *ev, const polysio_payload *args, polysio_ack *ack) {
    (void)ud; (void)ev; (void)args; (void)ack;
    check(polysio_socket_disconnect(s, false), "disconnect");
}

static void on_disconnect(void *ud, polysio_socket *s, const char *reason) {
    (void)ud; (void)s;
    printf("disconnect %s\n", reason);
    fflush(stdout);
    if (strcmp(reason, "transport close") == 0) {
        /* for the recovery scenario: broadcasts the client misses while away */
        const char *missed[] = {"missed-1", "missed-2"};
        for (int i = 0; i < 2; i++) {
            polysio_broadcast *b = NULL;
            polysio_payload *p = NULL;
            check(polysio_namespace_broadcast(root, &b), "broadcast");
            check(polysio_broadcast_to(b, "green"), "to");
            check(polysio_payload_new(&p), "payload");
            check(polysio_payload_push_string(p, missed[i], strlen(missed[i])), "push");
            check(polysio_broadcast_emit(b, "news", p), "emit");
            polysio_payload_free(p);
            polysio_broadcast_free(b);
        }
    }
}

static void secret_middleware(void *ud, polysio_socket *s, polysio_refusal *refusal) {
    (void)ud;
    const polysio_payload *hs = NULL;
    const char *token = "";
    check(polysio_socket_handshake(s, &hs), "handshake");
    polysio_payload_get_string(hs, "/0/auth/token", &token, NULL);
    if (strcmp(token, "ok") != 0) check(polysio_refusal_set(refusal, "not authorized", "{\"code\":42}"), "refuse");
}

/* ---- the scenarios of tests/SCENARIOS.md ------------------------------------------------ */

static void refuse_middleware(void *ud, polysio_socket *s, polysio_refusal *refusal) {
    (void)ud;
    const polysio_payload *hs = NULL;
    polysio_value_type t;
    check(polysio_socket_handshake(s, &hs), "handshake");
    if (polysio_payload_type(hs, "/0/auth/refuse", &t) != POLYSIO_OK) return;
    /* data {"reason": auth.refuse}: the value's JSON is the one-element array's text unwrapped */
    polysio_payload *p = NULL;
    const char *json = NULL;
    size_t len = 0;
    check(polysio_payload_new(&p), "payload");
    check(polysio_payload_push_value(p, hs, "/0/auth/refuse"), "push");
    check(polysio_payload_to_json(p, &json, &len), "to json");
    char *data = malloc(len + 16);
    if (data && len >= 2) {
        snprintf(data, len + 16, "{\"reason\":%.*s}", (int)(len - 2), json + 1);
        check(polysio_refusal_set(refusal, "refused", data), "refuse");
    }
    free(data);
    polysio_payload_free(p);
}

static void on_ask(void *ud, polysio_socket *s, const char *ev, const polysio_payload *args, polysio_ack *ack) {
    (void)ud; (void)ev; (void)ack;
    check(polysio_socket_emit_with_ack(s, "question", args, 0, got_answer, s), "question");
}

static void on_to_room(void *ud, polysio_socket *s, const char *ev, const polysio_payload *args, polysio_ack *ack) {
    (void)ud; (void)ev; (void)ack;
    polysio_namespace *ns = NULL;
    polysio_broadcast *b = NULL;
    check(polysio_socket_namespace(s, &ns), "namespace");
    check(polysio_namespace_broadcast(ns, &b), "broadcast");
    check(polysio_broadcast_to(b, first_string(args)), "to");
    polysio_payload *p = rest(args, 1);
    check(polysio_broadcast_emit(b, "room-message", p), "emit room-message");
    polysio_payload_free(p);
    polysio_broadcast_free(b);
}

static void on_broadcast(void *ud, polysio_socket *s, const char *ev, const polysio_payload *args, polysio_ack *ack) {
    (void)ud; (void)ev; (void)ack;
    polysio_broadcast *b = NULL;
    check(polysio_socket_broadcast(s, &b), "broadcast");
    check(polysio_broadcast_emit(b, "broadcast", args), "emit broadcast");
    polysio_broadcast_free(b);
}

static void scenario_namespace(polysio_namespace *ns) {
    check(polysio_namespace_use(ns, refuse_middleware, NULL), "use");
    check(polysio_namespace_on_connection(ns, emit_auth, NULL), "on connection");
    check(polysio_namespace_on(ns, "message", on_message, NULL), "on");
    check(polysio_namespace_on(ns, "message-with-ack", on_message_with_ack, NULL), "on");
    check(polysio_namespace_on(ns, "ask", on_ask, NULL), "on");
    check(polysio_namespace_on(ns, "join", on_join, NULL), "on");
    check(polysio_namespace_on(ns, "to-room", on_to_room, NULL), "on");
    check(polysio_namespace_on(ns, "broadcast", on_broadcast, NULL), "on");
    check(polysio_namespace_on(ns, "disconnect-me", on_disconnect_me, NULL), "on");
}

polysio_server *scenario_server_new(int argc, char **argv, int first, struct scenario_opts *opts) {
    opts->full = false;
    opts->poll = false;
    bool recovery = false;
    unsigned ping_interval = 300, ping_timeout = 200;
    for (int i = first; i < argc; i++) {
        if (strcmp(argv[i], "--full") == 0) opts->full = true;
        else if (strcmp(argv[i], "--recovery") == 0) recovery = true;
        else if (strcmp(argv[i], "--poll") == 0) opts->poll = true;
        else if (strcmp(argv[i], "--ping") == 0 && i + 1 < argc
                 && sscanf(argv[++i], "%u,%u", &ping_interval, &ping_timeout) == 2) {}
        else {
            fprintf(stderr, "%s: bad argument %s\n", scenario_program, argv[i]);
            return NULL;
        }
    }
    polysio_server_options *o = NULL;
    check(polysio_server_options_new(&o), "options");
    check(polysio_server_options_set_ping(o, ping_interval, ping_timeout), "ping");
    check(polysio_server_options_set_connect_timeout(o, 1000), "connect timeout");
    if (recovery) check(polysio_server_options_set_connection_state_recovery(o, true, 120000, true), "recovery");
    if (opts->poll) check(polysio_server_options_set_dispatch(o, POLYSIO_DISPATCH_POLL), "dispatch");
    polysio_server *srv = NULL;
    check(polysio_server_new(o, &srv), "server");
    polysio_server_options_free(o);
    if (!srv) return NULL;

    polysio_namespace *custom = NULL;
    check(polysio_server_of(srv, "/", &root), "of /");
    check(polysio_server_of(srv, "/custom", &custom), "of /custom");
    scenario_namespace(root);
    scenario_namespace(custom);
    if (opts->full) {
        check(polysio_namespace_on(root, "ask-client", on_ask_client, NULL), "on");
        check(polysio_namespace_on(root, "bcast", on_bcast, NULL), "on");
        check(polysio_namespace_on(root, "bcast-except", on_bcast_except, NULL), "on");
        check(polysio_namespace_on_disconnect(root, on_disconnect, NULL), "on disconnect");
        polysio_namespace *secret = NULL;
        check(polysio_server_of(srv, "/secret", &secret), "of /secret");
        check(polysio_namespace_use(secret, secret_middleware, NULL), "use");
    }
    return srv;
}

static int stop_pipe[2] = {-1, -1};

static void on_signal(int sig) {
    (void)sig;
    int saved = errno;
    ssize_t r = write(stop_pipe[1], "x", 1);
    (void)r;
    errno = saved;
}

int scenario_catch_signals(void) {
    if (pipe(stop_pipe) != 0) return -1;
    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    return 0;
}

void scenario_wait(polysio_server *srv, bool poll_mode) {
    struct pollfd fds[2] = {{.fd = stop_pipe[0], .events = POLLIN}, {.fd = -1, .events = POLLIN}};
    if (poll_mode) check(polysio_server_event_fd(srv, &fds[1].fd), "event fd");
    for (;;) {
        if (poll(fds, 2, -1) < 0 && errno != EINTR) break;
        if (fds[0].revents) break;
        if (fds[1].revents) check(polysio_server_poll(srv, NULL), "poll");
    }
    close(stop_pipe[0]);
    close(stop_pipe[1]);
}
