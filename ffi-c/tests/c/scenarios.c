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
#include <stdint.h>
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

/* ---- cluster mode (tests/SCENARIOS.md, "Cluster mode") ---------------------------------- */

/* Acks `{"error": message}` with the calling thread's last error. */
static void ack_error(polysio_ack *ack) {
    char msg[512];
    polysio_payload *p = NULL;
    polysio_last_error(msg, sizeof msg);
    check(polysio_payload_new(&p), "payload");
    check(polysio_payload_push_json(p, "{}", 2), "push");
    check(polysio_payload_set_string(p, "/0/error", msg, strlen(msg)), "set error");
    check(polysio_ack_send(ack, p), "ack error");
    polysio_payload_free(p);
}

static void ack_empty(polysio_ack *ack) {
    if (ack) check(polysio_ack_send(ack, NULL), "ack");
}

static void ack_int(polysio_ack *ack, int64_t n) {
    polysio_payload *p = NULL;
    check(polysio_payload_new(&p), "payload");
    check(polysio_payload_push_int(p, n), "push");
    check(polysio_ack_send(ack, p), "ack");
    polysio_payload_free(p);
}

static int by_string(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* JavaScript's String(v) of the value at `ptr`: the string itself, else its JSON text. */
static char *js_string(const polysio_payload *args, const char *ptr) {
    const char *s = NULL;
    size_t len = 0;
    if (polysio_payload_get_string(args, ptr, &s, &len) == POLYSIO_OK) return strndup(s, len);
    polysio_payload *one = NULL;
    const char *json = "[null]";
    len = 6;
    check(polysio_payload_new(&one), "payload");
    if (polysio_payload_push_value(one, args, ptr) == POLYSIO_OK) polysio_payload_to_json(one, &json, &len);
    char *r = strndup(json + 1, len - 2);
    polysio_payload_free(one);
    return r;
}

/* Acks one argument: the array of String(value at `fmt` % i) for every argument i of `from`,
 * sorted. */
static void ack_sorted(polysio_ack *ack, const polysio_payload *from, const char *fmt) {
    size_t n = 0;
    check(polysio_payload_count(from, &n), "count");
    char **v = calloc(n ? n : 1, sizeof *v);
    for (size_t i = 0; i < n; i++) {
        char ptr[32];
        snprintf(ptr, sizeof ptr, fmt, i);
        v[i] = js_string(from, ptr);
    }
    qsort(v, n, sizeof *v, by_string);
    polysio_payload *p = NULL;
    check(polysio_payload_new(&p), "payload");
    check(polysio_payload_push_json(p, "[]", 2), "push");
    for (size_t i = 0; i < n; i++) {
        check(polysio_payload_set_string(p, "/0/-", v[i], strlen(v[i])), "append");
        free(v[i]);
    }
    free(v);
    check(polysio_ack_send(ack, p), "ack");
    polysio_payload_free(p);
}

static void on_fetch_sockets(void *ud, polysio_socket *s, const char *ev, const polysio_payload *args, polysio_ack *ack) {
    (void)ud; (void)s; (void)ev;
    if (!ack) return;
    polysio_broadcast *b = NULL;
    polysio_payload *ids = NULL;
    check(polysio_namespace_broadcast(root, &b), "broadcast");
    check(polysio_broadcast_to(b, first_string(args)), "in");
    if (polysio_broadcast_socket_ids(b, &ids) != POLYSIO_OK) { /* blocks until every node answered */
        ack_error(ack);
    } else {
        ack_sorted(ack, ids, "/%zu");
        polysio_payload_free(ids);
    }
    polysio_broadcast_free(b);
}

static void on_sockets_join(void *ud, polysio_socket *s, const char *ev, const polysio_payload *args, polysio_ack *ack) {
    (void)ud; (void)s; (void)ev;
    const char *target = NULL, *room = NULL;
    if (polysio_payload_get_string(args, "/0", &target, NULL) == POLYSIO_OK
        && polysio_payload_get_string(args, "/1", &room, NULL) == POLYSIO_OK) {
        polysio_broadcast *b = NULL;
        check(polysio_namespace_broadcast(root, &b), "broadcast");
        check(polysio_broadcast_to(b, target), "in");
        check(polysio_broadcast_join(b, room), "join");
        polysio_broadcast_free(b);
    }
    ack_empty(ack);
}

static void on_disconnect_room(void *ud, polysio_socket *s, const char *ev, const polysio_payload *args, polysio_ack *ack) {
    (void)ud; (void)s; (void)ev;
    ack_empty(ack);
    const char *room = NULL;
    if (polysio_payload_get_string(args, "/0", &room, NULL) != POLYSIO_OK) return;
    polysio_broadcast *b = NULL;
    check(polysio_namespace_broadcast(root, &b), "broadcast");
    check(polysio_broadcast_to(b, room), "in");
    check(polysio_broadcast_disconnect(b, false), "disconnect");
    polysio_broadcast_free(b);
}

static void on_server_side_emit(void *ud, polysio_socket *s, const char *ev, const polysio_payload *args, polysio_ack *ack) {
    (void)ud; (void)s; (void)ev;
    check(polysio_namespace_server_side_emit(root, "relay", args), "serverSideEmit");
    ack_empty(ack);
}

/* The answers of serverSideEmitWithAck("ping-node"); ud: the client's ack (a clone). */
static void got_pongs(void *ud, polysio_result r, const polysio_payload *answers) {
    polysio_ack *ack = ud;
    size_t n = 0;
    if (r == POLYSIO_OK && polysio_payload_count(answers, &n) == POLYSIO_OK) ack_int(ack, (int64_t)n);
    else ack_error(ack);
    check(polysio_ack_free(ack), "ack free");
}

static void on_server_side_emit_with_ack(void *ud, polysio_socket *s, const char *ev, const polysio_payload *args, polysio_ack *ack) {
    (void)ud; (void)s; (void)ev; (void)args;
    polysio_ack *later = NULL;
    if (!ack || polysio_ack_clone(ack, &later) != POLYSIO_OK) return;
    if (polysio_namespace_server_side_emit_with_ack(root, "ping-node", NULL, 5000, got_pongs, later) != POLYSIO_OK) {
        ack_error(later);
        polysio_ack_free(later);
    }
}

/* The replies of ask-all's question, one argument per socket (the array of its ack args). */
static void got_replies(void *ud, polysio_result r, const polysio_payload *replies) {
    polysio_ack *ack = ud;
    if (r != POLYSIO_OK) ack_error(ack);
    else ack_sorted(ack, replies, "/%zu/0");
    check(polysio_ack_free(ack), "ack free");
}

static void on_ask_all(void *ud, polysio_socket *s, const char *ev, const polysio_payload *args, polysio_ack *ack) {
    (void)ud; (void)s; (void)ev;
    polysio_ack *later = NULL;
    if (!ack || polysio_ack_clone(ack, &later) != POLYSIO_OK) return;
    polysio_broadcast *b = NULL;
    check(polysio_namespace_broadcast(root, &b), "broadcast");
    if (polysio_broadcast_emit_with_ack(b, "question", args, 3000, got_replies, later) != POLYSIO_OK) {
        ack_error(later);
        polysio_ack_free(later);
    }
    polysio_broadcast_free(b);
}

static void on_server_count(void *ud, polysio_socket *s, const char *ev, const polysio_payload *args, polysio_ack *ack) {
    (void)ud; (void)s; (void)ev; (void)args;
    size_t n = 0;
    if (!ack) return;
    if (polysio_namespace_server_count(root, &n) == POLYSIO_OK) ack_int(ack, (int64_t)n);
    else ack_error(ack);
}

/* serverSideEmit `relay` from another node: to this node's own sockets of `/`. */
static void on_relay(void *ud, polysio_namespace *ns, const char *ev, const polysio_payload *args, polysio_ack *ack) {
    (void)ud; (void)ev; (void)ack;
    polysio_broadcast *b = NULL;
    check(polysio_namespace_broadcast(ns, &b), "broadcast");
    check(polysio_broadcast_local(b), "local");
    check(polysio_broadcast_emit(b, "relayed", args), "emit relayed");
    polysio_broadcast_free(b);
}

static void on_ping_node(void *ud, polysio_namespace *ns, const char *ev, const polysio_payload *args, polysio_ack *ack) {
    (void)ud; (void)ns; (void)ev; (void)args;
    if (!ack) return;
    polysio_payload *p = NULL;
    check(polysio_payload_new(&p), "payload");
    check(polysio_payload_push_string(p, "pong", 4), "push");
    check(polysio_ack_send(ack, p), "pong");
    polysio_payload_free(p);
}

/* POLYSIO_TEST_REDIS / POLYSIO_TEST_ADAPTER into the options: false when not in cluster mode;
 * exits 77 on an adapter this server does not have. */
static bool cluster_options(polysio_server_options *o) {
    const char *url = getenv("POLYSIO_TEST_REDIS"), *adapter = getenv("POLYSIO_TEST_ADAPTER");
    if (!url || !*url) return false;
    if (!adapter || !*adapter) adapter = "classic";
    uint32_t format;
    if (strcmp(adapter, "classic") == 0) format = POLYSIO_REDIS_CLASSIC;
    else if (strcmp(adapter, "sharded") == 0) format = POLYSIO_REDIS_SHARDED;
    else {
        fprintf(stderr, "adapter %s not supported by c (POLYSIO_TEST_ADAPTER; known: classic, sharded)\n", adapter);
        exit(77);
    }
    check(polysio_server_options_set_redis(o, url, NULL), "redis");
    check(polysio_server_options_set_redis_format(o, format, POLYSIO_REDIS_SUBSCRIPTION_DYNAMIC), "redis format");
    return true;
}

static void cluster_namespace(polysio_namespace *ns) {
    check(polysio_namespace_on_server_side(ns, "relay", on_relay, NULL), "on relay");
    check(polysio_namespace_on_server_side(ns, "ping-node", on_ping_node, NULL), "on ping-node");
    check(polysio_namespace_on(ns, "fetch-sockets", on_fetch_sockets, NULL), "on");
    check(polysio_namespace_on(ns, "sockets-join", on_sockets_join, NULL), "on");
    check(polysio_namespace_on(ns, "disconnect-room", on_disconnect_room, NULL), "on");
    check(polysio_namespace_on(ns, "server-side-emit", on_server_side_emit, NULL), "on");
    check(polysio_namespace_on(ns, "server-side-emit-with-ack", on_server_side_emit_with_ack, NULL), "on");
    check(polysio_namespace_on(ns, "ask-all", on_ask_all, NULL), "on");
    check(polysio_namespace_on(ns, "server-count", on_server_count, NULL), "on");
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
    bool cluster = cluster_options(o);
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
    if (cluster) {
        cluster_namespace(root);
        /* subscribed before the port opens, so that the other nodes count this one from then on */
        polysio_result r = polysio_server_redis_ready(srv, 20000);
        if (r != POLYSIO_OK) {
            check(r, "Redis not ready");
            polysio_server_free(srv);
            exit(1);
        }
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
