/* A C server and C clients in one process, both ways: handshake (auth, query, headers),
 * binary payloads, acks both ways (and their timeouts), rooms and broadcasts with exceptions,
 * middleware refusal, catch-all handler, disconnects and their reasons, emit on a closed
 * socket, _free from inside callbacks, graceful shutdown.
 *
 * Usage: test_loopback threads|poll. In poll mode every server and client uses
 * POLYSIO_DISPATCH_POLL and the test checks that every callback ran on the main thread; in
 * threads mode, that none did. */
#include <pthread.h>
#include <stdatomic.h>

#include "check.h"

static pthread_t main_thread;
static bool poll_mode;
static atomic_int wrong_thread;

static void on_thread(void) {
    bool on_main = pthread_equal(pthread_self(), main_thread);
    if (on_main != poll_mode) atomic_fetch_add(&wrong_thread, 1);
}

static uint32_t dispatch(void) { return poll_mode ? POLYSIO_DISPATCH_POLL : POLYSIO_DISPATCH_THREADS; }

/* ---- server ------------------------------------------------------------------------------ */

enum { A, B, C, D, E, NPEERS };
static const char *names[NPEERS] = {"A", "B", "C", "D", "E"};

static polysio_socket *srv_sock[NPEERS];
static char srv_reason[NPEERS][64];
static atomic_int srv_disconnects[NPEERS];
static atomic_int srv_connections;
static polysio_ack *later_ack;
static atomic_int later_ack_ready;
static atomic_int srv_ack_result = -1;   /* result of the server's ack to "silent" */
static atomic_int middleware_checked;

static int peer_of(polysio_socket *s) {
    const polysio_payload *hs = NULL;
    const char *name = NULL;
    if (polysio_socket_handshake(s, &hs) != POLYSIO_OK) return -1;
    if (polysio_payload_get_string(hs, "/0/auth/name", &name, NULL) != POLYSIO_OK) return -1;
    for (int i = 0; i < NPEERS; i++)
        if (strcmp(names[i], name) == 0) return i;
    return -1;
}

static void srv_on_connection(void *ud, polysio_socket *s) {
    (void)ud;
    on_thread();
    int i = peer_of(s);
    if (i < 0) return;
    srv_sock[i] = s;
    const polysio_payload *hs = NULL;
    OK(polysio_socket_handshake(s, &hs));
    const char *id = NULL;
    OK(polysio_socket_id(s, &id));
    polysio_payload *w = NULL;
    OK(polysio_payload_new(&w));
    OK(polysio_payload_push_value(w, hs, "/0/auth"));
    if (polysio_payload_push_value(w, hs, "/0/query/q") != POLYSIO_OK) OK(polysio_payload_push_null(w));
    if (polysio_payload_push_value(w, hs, "/0/headers/x-test") != POLYSIO_OK) OK(polysio_payload_push_null(w));
    OK(polysio_payload_push_string(w, id, strlen(id)));
    OK(polysio_socket_emit(s, "welcome", w));
    OK(polysio_payload_free(w));
    atomic_fetch_add(&srv_connections, 1);
}

static void srv_on_echo(void *ud, polysio_socket *s, const char *ev, const polysio_payload *args, polysio_ack *ack) {
    (void)ud; (void)ev; (void)ack;
    on_thread();
    OK(polysio_socket_emit(s, "echo", args));
}

static void srv_on_ack_me(void *ud, polysio_socket *s, const char *ev, const polysio_payload *args, polysio_ack *ack) {
    (void)ud; (void)s; (void)ev;
    on_thread();
    CHECK(ack != NULL);
    OK(polysio_ack_send(ack, args));
    ERR(polysio_ack_send(ack, args), POLYSIO_ERR_INVALID_ARGUMENT); /* only once */
    /* the borrowed payload is read-only and not ours to free */
    ERR(polysio_payload_push_int((polysio_payload *)args, 1), POLYSIO_ERR_INVALID_ARGUMENT);
    ERR(polysio_payload_free((polysio_payload *)args), POLYSIO_ERR_INVALID_ARGUMENT);
}

static void srv_got_answer(void *ud, polysio_result r, const polysio_payload *args) {
    on_thread();
    polysio_socket *s = ud;
    if (r == POLYSIO_OK) OK(polysio_socket_emit(s, "answer", args));
}

static void srv_on_ask(void *ud, polysio_socket *s, const char *ev, const polysio_payload *args, polysio_ack *ack) {
    (void)ud; (void)ev; (void)ack;
    on_thread();
    OK(polysio_socket_emit_with_ack(s, "question", args, 5000, srv_got_answer, s));
}

static void srv_got_silence(void *ud, polysio_result r, const polysio_payload *args) {
    (void)ud;
    on_thread();
    CHECK(args == NULL);
    atomic_store(&srv_ack_result, (int)r);
}

/* ["silent", timeout_ms]: asks the client something it never answers */
static void srv_on_ask_silent(void *ud, polysio_socket *s, const char *ev, const polysio_payload *args, polysio_ack *ack) {
    (void)ud; (void)ev; (void)ack;
    on_thread();
    int64_t t = 0;
    OK(polysio_payload_get_int(args, "/0", &t));
    OK(polysio_socket_emit_with_ack(s, "silent", NULL, (uint32_t)t, srv_got_silence, NULL));
}

static void srv_on_join(void *ud, polysio_socket *s, const char *ev, const polysio_payload *args, polysio_ack *ack) {
    (void)ud; (void)ev;
    on_thread();
    const char *room = NULL;
    OK(polysio_payload_get_string(args, "/0", &room, NULL));
    OK(polysio_socket_join(s, room));
    if (ack) OK(polysio_ack_send(ack, args));
}

/* ["room" or "", "except" or "", message] */
static void srv_on_to_room(void *ud, polysio_socket *s, const char *ev, const polysio_payload *args, polysio_ack *ack) {
    (void)ev; (void)ack;
    on_thread();
    polysio_namespace *ns = ud;
    const char *room = NULL, *except = NULL;
    OK(polysio_payload_get_string(args, "/0", &room, NULL));
    OK(polysio_payload_get_string(args, "/1", &except, NULL));
    polysio_broadcast *b = NULL;
    OK(polysio_namespace_broadcast(ns, &b));
    if (*room) OK(polysio_broadcast_to(b, room));
    if (*except) OK(polysio_broadcast_except(b, except));
    polysio_payload *msg = NULL;
    OK(polysio_payload_new(&msg));
    OK(polysio_payload_push_value(msg, args, "/2"));
    OK(polysio_broadcast_emit(b, "news", msg));
    OK(polysio_payload_free(msg));
    OK(polysio_broadcast_free(b));
    (void)s;
}

static void srv_on_kick(void *ud, polysio_socket *s, const char *ev, const polysio_payload *args, polysio_ack *ack) {
    (void)ud; (void)ev; (void)args; (void)ack;
    on_thread();
    OK(polysio_socket_disconnect(s, false));
    /* As socket.io, emitting to a socket that has left is a no-op (POLYSIO_OK): the handle
     * stays valid until this callback returns, also in threads mode where the disconnect
     * callback has already run (inside polysio_socket_disconnect). Bad arguments still fail. */
    bool connected = true;
    OK(polysio_socket_connected(s, &connected));
    CHECK(!connected);
    OK(polysio_socket_emit(s, "too-late", NULL));
    ERR(polysio_socket_emit(s, "disconnect", NULL), POLYSIO_ERR_INVALID_ARGUMENT);
    ERR(polysio_socket_emit(s, NULL, NULL), POLYSIO_ERR_NULL_ARGUMENT);
}

static void srv_on_later_ack(void *ud, polysio_socket *s, const char *ev, const polysio_payload *args, polysio_ack *ack) {
    (void)ud; (void)s; (void)ev; (void)args;
    on_thread();
    OK(polysio_ack_clone(ack, &later_ack));
    atomic_store(&later_ack_ready, 1);
}

static void srv_on_no_answer(void *ud, polysio_socket *s, const char *ev, const polysio_payload *args, polysio_ack *ack) {
    (void)ud; (void)s; (void)ev; (void)args;
    on_thread();
    CHECK(ack != NULL); /* and never answered */
}

static void srv_on_any(void *ud, polysio_socket *s, const char *ev, const polysio_payload *args, polysio_ack *ack) {
    (void)ud; (void)s; (void)args;
    on_thread();
    if (!ack) return;
    char reply[64];
    snprintf(reply, sizeof reply, "any:%s", ev);
    polysio_payload *p = NULL;
    OK(polysio_payload_new(&p));
    OK(polysio_payload_push_string(p, reply, strlen(reply)));
    OK(polysio_ack_send(ack, p));
    OK(polysio_payload_free(p));
}

static void srv_on_disconnect(void *ud, polysio_socket *s, const char *reason) {
    (void)ud;
    on_thread();
    int i = peer_of(s);
    if (i < 0) return;
    snprintf(srv_reason[i], sizeof srv_reason[i], "%s", reason);
    atomic_fetch_add(&srv_disconnects[i], 1);
}

static void srv_middleware(void *ud, polysio_socket *s, polysio_refusal *refusal) {
    (void)ud;
    on_thread();
    bool connected = true;
    OK(polysio_socket_connected(s, &connected));
    CHECK(!connected);
    /* Not connected yet: emitting is a no-op, as to a socket that has left. */
    OK(polysio_socket_emit(s, "early", NULL));
    const polysio_payload *hs = NULL;
    const char *token = "";
    OK(polysio_socket_handshake(s, &hs));
    polysio_payload_get_string(hs, "/0/auth/token", &token, NULL);
    if (strcmp(token, "ok") != 0) OK(polysio_refusal_set(refusal, "not authorized", "{\"code\":42}"));
    atomic_fetch_add(&middleware_checked, 1);
}

/* A second server that frees itself from inside its connection callback. */
static atomic_int self_free_result = -1;
static void srv2_on_connection(void *ud, polysio_socket *s) {
    (void)s;
    on_thread();
    polysio_server *self = ud;
    atomic_store(&self_free_result, (int)polysio_server_free(self));
}

/* ---- clients ----------------------------------------------------------------------------- */

typedef struct {
    int index;
    polysio_client *c;
    polysio_client_socket *s, *secret;
    atomic_int connects, disconnects, welcomes, echoes, answers, news, conn_errors, secret_connects;
    polysio_payload *welcome, *echo, *answer, *conn_error;
    char news_log[8][32];
    char reason[64];
    atomic_int ack_count;
    int ack_result;
    polysio_payload *ack_args;
    atomic_int self_free_result;
    atomic_int closes; /* the connection's "close" events */
} peer;

static peer peers[NPEERS];

static void keep(polysio_payload **slot, const polysio_payload *args) {
    if (*slot) OK(polysio_payload_free(*slot));
    OK(polysio_payload_clone(args, slot));
}

static void cli_on(void *ud, polysio_client_socket *s, const char *ev, const polysio_payload *args, polysio_ack *ack) {
    peer *p = ud;
    (void)s;
    on_thread();
    if (strcmp(ev, "connect") == 0) {
        atomic_fetch_add(&p->connects, 1);
    } else if (strcmp(ev, "disconnect") == 0) {
        const char *r = NULL;
        OK(polysio_payload_get_string(args, "/0", &r, NULL));
        snprintf(p->reason, sizeof p->reason, "%s", r);
        atomic_fetch_add(&p->disconnects, 1);
    } else if (strcmp(ev, "welcome") == 0) {
        keep(&p->welcome, args);
        atomic_fetch_add(&p->welcomes, 1);
    } else if (strcmp(ev, "echo") == 0) {
        keep(&p->echo, args);
        atomic_fetch_add(&p->echoes, 1);
    } else if (strcmp(ev, "answer") == 0) {
        keep(&p->answer, args);
        atomic_fetch_add(&p->answers, 1);
    } else if (strcmp(ev, "news") == 0) {
        const char *m = NULL;
        OK(polysio_payload_get_string(args, "/0", &m, NULL));
        int n = atomic_load(&p->news);
        if (n < 8) snprintf(p->news_log[n], sizeof p->news_log[n], "%s", m);
        atomic_fetch_add(&p->news, 1);
    } else if (strcmp(ev, "question") == 0) {
        /* the server asks: answer {"answer": n * 2, "bin": <7>} */
        int64_t n = 0;
        OK(polysio_payload_get_int(args, "/0", &n));
        char json[64];
        snprintf(json, sizeof json, "{\"answer\":%lld}", (long long)(n * 2));
        polysio_payload *r = NULL;
        OK(polysio_payload_new(&r));
        OK(polysio_payload_push_json(r, json, strlen(json)));
        const uint8_t seven = 7;
        OK(polysio_payload_set_binary(r, "/0/bin", &seven, 1));
        CHECK(ack != NULL);
        OK(polysio_ack_send(ack, r));
        OK(polysio_payload_free(r));
    }
}

static void cli_on_secret(void *ud, polysio_client_socket *s, const char *ev, const polysio_payload *args, polysio_ack *ack) {
    peer *p = ud;
    (void)s; (void)ack;
    on_thread();
    if (strcmp(ev, "connect") == 0) atomic_fetch_add(&p->secret_connects, 1);
    if (strcmp(ev, "connect_error") == 0) {
        keep(&p->conn_error, args);
        atomic_fetch_add(&p->conn_errors, 1);
    }
}

static void cli_got_ack(void *ud, polysio_result r, const polysio_payload *args) {
    peer *p = ud;
    on_thread();
    p->ack_result = (int)r;
    if (p->ack_args) OK(polysio_payload_free(p->ack_args));
    p->ack_args = NULL;
    if (args) OK(polysio_payload_clone(args, &p->ack_args));
    atomic_fetch_add(&p->ack_count, 1);
}

static void cli_on_close(void *ud, polysio_client *c, const char *ev, const polysio_payload *args) {
    peer *p = ud;
    (void)c; (void)args;
    on_thread();
    if (strcmp(ev, "close") == 0) atomic_fetch_add(&p->closes, 1);
}

/* D frees its own client from inside a callback. */
static void cli_free_self(void *ud, polysio_client_socket *s, const char *ev, const polysio_payload *args, polysio_ack *ack) {
    peer *p = ud;
    (void)s; (void)ev; (void)args; (void)ack;
    on_thread();
    atomic_store(&p->self_free_result, (int)polysio_client_free(p->c));
}

static void start_peer(int i, uint16_t port, const char *extra_auth) {
    peer *p = &peers[i];
    p->index = i;
    atomic_store(&p->self_free_result, -1);
    polysio_client_options *o = NULL;
    OK(polysio_client_options_new(&o));
    char auth[128];
    snprintf(auth, sizeof auth, "{\"name\":\"%s\"%s}", names[i], extra_auth ? extra_auth : "");
    OK(polysio_client_options_set_auth(o, auth, strlen(auth)));
    OK(polysio_client_options_set_reconnection(o, false, 0));
    OK(polysio_client_options_add_query(o, "q", "1"));
    OK(polysio_client_options_add_header(o, "x-test", "yes"));
    OK(polysio_client_options_set_dispatch(o, dispatch()));
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%u", port);
    OK(polysio_client_new(url, o, &p->c));
    OK(polysio_client_options_free(o));
    pump_clients[i] = p->c;
    OK(polysio_client_on(p->c, "close", cli_on_close, p));
    OK(polysio_client_of(p->c, "/", &p->s));
    const char *events[] = {"connect", "disconnect", "welcome", "echo", "answer", "news", "question"};
    for (size_t k = 0; k < sizeof events / sizeof *events; k++)
        OK(polysio_client_socket_on(p->s, events[k], cli_on, p));
    OK(polysio_client_socket_connect(p->s));
}

static void emit_ack(peer *p, const char *ev, const char *json, uint32_t timeout_ms) {
    polysio_payload *args = NULL;
    OK(polysio_payload_from_json(json, strlen(json), NULL, 0, &args));
    int before = atomic_load(&p->ack_count);
    OK(polysio_client_socket_emit_with_ack(p->s, ev, args, timeout_ms, cli_got_ack, p));
    OK(polysio_payload_free(args));
    WAIT_UNTIL(atomic_load(&p->ack_count) > before);
}

static void emit_json(peer *p, const char *ev, const char *json) {
    polysio_payload *args = NULL;
    OK(polysio_payload_from_json(json, strlen(json), NULL, 0, &args));
    OK(polysio_client_socket_emit(p->s, ev, args));
    OK(polysio_payload_free(args));
}

static void expect_string(const polysio_payload *p, const char *pointer, const char *want) {
    const char *s = NULL;
    OK(polysio_payload_get_string(p, pointer, &s, NULL));
    if (strcmp(s, want) != 0) FAIL("%s is \"%s\", expected \"%s\"", pointer, s, want);
}

/* A server in the test's dispatch mode, pumped by the tests' waits; `ns` gets its "/". */
static polysio_server *new_server(int slot, polysio_namespace **ns) {
    polysio_server_options *o = NULL;
    polysio_server *s = NULL;
    OK(polysio_server_options_new(&o));
    OK(polysio_server_options_set_dispatch(o, dispatch()));
    OK(polysio_server_new(o, &s));
    OK(polysio_server_options_free(o));
    pump_servers[slot] = s;
    OK(polysio_server_of(s, "/", ns));
    return s;
}

int main(int argc, char **argv) {
    CHECK(argc == 2);
    poll_mode = strcmp(argv[1], "poll") == 0;
    main_thread = pthread_self();

    /* ---- the server */
    polysio_namespace *ns = NULL;
    polysio_server *srv = new_server(0, &ns);
    OK(polysio_namespace_on_connection(ns, srv_on_connection, NULL));
    OK(polysio_namespace_on_disconnect(ns, srv_on_disconnect, NULL));
    OK(polysio_namespace_on(ns, "echo", srv_on_echo, NULL));
    OK(polysio_namespace_on(ns, "ack-me", srv_on_ack_me, NULL));
    OK(polysio_namespace_on(ns, "ask", srv_on_ask, NULL));
    OK(polysio_namespace_on(ns, "ask-silent", srv_on_ask_silent, NULL));
    OK(polysio_namespace_on(ns, "join", srv_on_join, NULL));
    OK(polysio_namespace_on(ns, "to-room", srv_on_to_room, ns));
    OK(polysio_namespace_on(ns, "kick", srv_on_kick, NULL));
    OK(polysio_namespace_on(ns, "later-ack", srv_on_later_ack, NULL));
    OK(polysio_namespace_on(ns, "no-answer", srv_on_no_answer, NULL));
    OK(polysio_namespace_on_any(ns, srv_on_any, NULL));
    polysio_namespace *secret = NULL;
    OK(polysio_server_of(srv, "/secret", &secret));
    OK(polysio_namespace_use(secret, srv_middleware, NULL));
    uint16_t port = 0;
    OK(polysio_server_listen(srv, "127.0.0.1", 0, &port));

    /* ---- handshake: auth, query, headers */
    start_peer(A, port, ",\"token\":\"abc\"");
    start_peer(B, port, NULL);
    start_peer(C, port, NULL);
    for (int i = A; i <= C; i++) WAIT_UNTIL(atomic_load(&peers[i].welcomes) == 1);
    peer *a = &peers[A], *b = &peers[B], *c = &peers[C];
    expect_string(a->welcome, "/0/name", "A");
    expect_string(a->welcome, "/0/token", "abc");
    expect_string(a->welcome, "/1", "1");
    expect_string(a->welcome, "/2", "yes");
    CHECK(atomic_load(&a->connects) == 1);
    /* the client's id is the server's socket id */
    char id[64];
    size_t id_len = 0;
    OK(polysio_client_socket_id(a->s, id, sizeof id, &id_len));
    expect_string(a->welcome, "/3", id);
    char tiny[4];
    ERR(polysio_client_socket_id(a->s, tiny, sizeof tiny, &id_len), POLYSIO_ERR_BUFFER_TOO_SMALL);
    CHECK(id_len == strlen(id));
    polysio_socket *found = NULL;
    OK(polysio_namespace_socket(ns, id, &found));
    CHECK(found == srv_sock[A]);

    /* ---- binary nested anywhere, both ways */
    const char *json = "[1,\"two\",{\"bin\":{\"_placeholder\":true,\"num\":0},"
                       "\"list\":[{\"_placeholder\":true,\"num\":1},null]}]";
    const uint8_t b0[] = {1, 2, 3}, b1[] = {4};
    polysio_buffer atts[2] = {{b0, 3}, {b1, 1}};
    polysio_payload *sent = NULL;
    OK(polysio_payload_from_json(json, strlen(json), atts, 2, &sent));
    OK(polysio_client_socket_emit(a->s, "echo", sent));
    WAIT_UNTIL(atomic_load(&a->echoes) == 1);
    const char *back = NULL;
    size_t back_len = 0;
    OK(polysio_payload_to_json(a->echo, &back, &back_len));
    STREQ(back, json);
    const uint8_t *data = NULL;
    size_t len = 0;
    OK(polysio_payload_get_binary(a->echo, "/2/bin", &data, &len));
    CHECK(len == 3 && memcmp(data, b0, 3) == 0);
    OK(polysio_payload_get_binary(a->echo, "/2/list/0", &data, &len));
    CHECK(len == 1 && data[0] == 4);

    /* ---- client → server ack, with binary */
    int before = atomic_load(&a->ack_count);
    OK(polysio_client_socket_emit_with_ack(a->s, "ack-me", sent, 10000, cli_got_ack, a));
    WAIT_UNTIL(atomic_load(&a->ack_count) > before);
    CHECK(a->ack_result == POLYSIO_OK);
    OK(polysio_payload_to_json(a->ack_args, &back, &back_len));
    STREQ(back, json);
    OK(polysio_payload_get_binary(a->ack_args, "/2/bin", &data, &len));
    CHECK(len == 3 && data[2] == 3);
    OK(polysio_payload_free(sent));

    /* ---- server → client ack: the server asks, the client answers, the server reports */
    emit_json(a, "ask", "[21]");
    WAIT_UNTIL(atomic_load(&a->answers) == 1);
    int64_t n = 0;
    OK(polysio_payload_get_int(a->answer, "/0/answer", &n));
    CHECK(n == 42);
    OK(polysio_payload_get_binary(a->answer, "/0/bin", &data, &len));
    CHECK(len == 1 && data[0] == 7);

    /* ---- ack timeouts, both ways */
    emit_json(a, "ask-silent", "[200]");
    WAIT_UNTIL(atomic_load(&srv_ack_result) != -1);
    CHECK(atomic_load(&srv_ack_result) == POLYSIO_ERR_TIMEOUT);
    emit_ack(a, "no-answer", "[]", 300);
    CHECK(a->ack_result == POLYSIO_ERR_TIMEOUT && a->ack_args == NULL);

    /* ---- catch-all handler, with ack */
    emit_ack(a, "whatever", "[1]", 10000);
    CHECK(a->ack_result == POLYSIO_OK);
    expect_string(a->ack_args, "/0", "any:whatever");

    /* ---- an ack answered later, from another thread than the callback's */
    before = atomic_load(&a->ack_count);
    polysio_payload *args = NULL;
    OK(polysio_payload_new(&args));
    OK(polysio_client_socket_emit_with_ack(a->s, "later-ack", args, 10000, cli_got_ack, a));
    WAIT_UNTIL(atomic_load(&later_ack_ready));
    OK(polysio_payload_push_string(args, "late", 4));
    OK(polysio_ack_send(later_ack, args));
    ERR(polysio_ack_send(later_ack, args), POLYSIO_ERR_INVALID_ARGUMENT);
    OK(polysio_ack_free(later_ack));
    ERR(polysio_ack_free(later_ack), POLYSIO_ERR_CLOSED);
    OK(polysio_payload_free(args));
    WAIT_UNTIL(atomic_load(&a->ack_count) > before);
    expect_string(a->ack_args, "/0", "late");

    /* ---- rooms and broadcasts with exceptions */
    emit_ack(a, "join", "[\"red\"]", 10000);
    emit_ack(b, "join", "[\"red\"]", 10000);
    emit_ack(c, "join", "[\"blue\"]", 10000);
    polysio_payload *rooms = NULL;
    OK(polysio_socket_rooms(srv_sock[A], &rooms));
    OK(polysio_payload_count(rooms, &len));
    CHECK(len == 2); /* its own id, and red */
    OK(polysio_payload_free(rooms));
    polysio_broadcast *in_red = NULL;
    OK(polysio_namespace_broadcast(ns, &in_red));
    OK(polysio_broadcast_to(in_red, "red"));
    polysio_payload *ids = NULL;
    OK(polysio_broadcast_socket_ids(in_red, &ids));
    OK(polysio_payload_count(ids, &len));
    CHECK(len == 2);
    OK(polysio_payload_free(ids));
    OK(polysio_broadcast_free(in_red));
    emit_json(c, "to-room", "[\"red\",\"\",\"to-red\"]");
    emit_json(c, "to-room", "[\"\",\"red\",\"not-red\"]");
    emit_json(c, "to-room", "[\"\",\"\",\"all\"]");
    for (int i = A; i <= C; i++) WAIT_UNTIL(atomic_load(&peers[i].news) == 2);
    STREQ(a->news_log[0], "to-red");
    STREQ(a->news_log[1], "all");
    STREQ(b->news_log[0], "to-red");
    STREQ(c->news_log[0], "not-red");
    STREQ(c->news_log[1], "all");
    /* a socket's broadcast leaves the socket out */
    polysio_broadcast *others = NULL;
    OK(polysio_socket_broadcast(srv_sock[A], &others));
    OK(polysio_broadcast_to(others, "red"));
    polysio_payload *msg = NULL;
    OK(polysio_payload_new(&msg));
    OK(polysio_payload_push_string(msg, "from-a", 6));
    OK(polysio_broadcast_emit(others, "news", msg));
    OK(polysio_payload_free(msg));
    OK(polysio_broadcast_free(others));
    WAIT_UNTIL(atomic_load(&b->news) == 3);
    STREQ(b->news_log[2], "from-a");

    /* ---- middleware refusal with a message and data, then acceptance */
    OK(polysio_client_of(a->c, "/secret", &a->secret));
    OK(polysio_client_socket_on(a->secret, "connect", cli_on_secret, a));
    OK(polysio_client_socket_on(a->secret, "connect_error", cli_on_secret, a));
    const char *bad_auth = "{\"name\":\"A\",\"token\":\"bad\"}";
    OK(polysio_client_socket_set_auth(a->secret, bad_auth, strlen(bad_auth)));
    OK(polysio_client_socket_connect(a->secret));
    WAIT_UNTIL(atomic_load(&a->conn_errors) == 1);
    expect_string(a->conn_error, "/0/message", "not authorized");
    OK(polysio_payload_get_int(a->conn_error, "/0/data/code", &n));
    CHECK(n == 42);
    const char *good_auth = "{\"name\":\"A\",\"token\":\"ok\"}";
    OK(polysio_client_socket_set_auth(a->secret, good_auth, strlen(good_auth)));
    OK(polysio_client_socket_connect(a->secret));
    WAIT_UNTIL(atomic_load(&a->secret_connects) == 1);
    CHECK(atomic_load(&middleware_checked) == 2);

    /* ---- a server-side disconnect; emit on the closed socket */
    polysio_socket *b_sock = srv_sock[B];
    emit_json(b, "kick", "[]");
    WAIT_UNTIL(atomic_load(&b->disconnects) == 1);
    STREQ(b->reason, "io server disconnect");
    WAIT_UNTIL(atomic_load(&srv_disconnects[B]) == 1);
    if (strcmp(srv_reason[B], "server namespace disconnect") != 0) FAIL("B: %s", srv_reason[B]);
    /* once the callbacks given it returned (just after the counter moved), the handle is
     * released like any other: POLYSIO_ERR_CLOSED */
    bool b_connected;
    WAIT_UNTIL(polysio_socket_connected(b_sock, &b_connected) == POLYSIO_ERR_CLOSED);
    ERR(polysio_socket_emit(b_sock, "x", NULL), POLYSIO_ERR_CLOSED);
    ERR(polysio_socket_join(b_sock, "red"), POLYSIO_ERR_CLOSED);

    /* ---- a pending ack is reported closed when the socket goes away; client disconnect */
    emit_json(c, "ask-silent", "[0]");
    atomic_store(&srv_ack_result, -1);
    emit_ack(c, "join", "[\"x\"]", 10000); /* the question has been asked by now */
    OK(polysio_client_socket_disconnect(c->s));
    WAIT_UNTIL(atomic_load(&srv_disconnects[C]) == 1);
    STREQ(srv_reason[C], "client namespace disconnect");
    WAIT_UNTIL(atomic_load(&srv_ack_result) != -1);
    CHECK(atomic_load(&srv_ack_result) == POLYSIO_ERR_CLOSED);
    WAIT_UNTIL(atomic_load(&c->disconnects) == 1);
    STREQ(c->reason, "io client disconnect");

    /* ---- _free from inside a callback: a client, then a server */
    peer *d = &peers[D];
    start_peer(D, port, NULL);
    OK(polysio_client_socket_on(d->s, "welcome", cli_free_self, d));
    WAIT_UNTIL(atomic_load(&d->self_free_result) != -1);
    CHECK(atomic_load(&d->self_free_result) == POLYSIO_OK);
    ERR(polysio_client_socket_emit(d->s, "x", NULL), POLYSIO_ERR_CLOSED);
    ERR(polysio_client_free(d->c), POLYSIO_ERR_CLOSED);
    pump_clients[D] = NULL;

    polysio_namespace *ns2 = NULL;
    polysio_server *srv2 = new_server(1, &ns2);
    OK(polysio_namespace_on_connection(ns2, srv2_on_connection, srv2));
    uint16_t port2 = 0;
    OK(polysio_server_listen(srv2, "127.0.0.1", 0, &port2));
    start_peer(E, port2, NULL);
    WAIT_UNTIL(atomic_load(&self_free_result) != -1);
    CHECK(atomic_load(&self_free_result) == POLYSIO_OK);
    ERR(polysio_server_free(srv2), POLYSIO_ERR_CLOSED);
    pump_servers[1] = NULL;
    /* E sees the connection close (whether or not its CONNECT got through first) */
    WAIT_UNTIL(atomic_load(&peers[E].closes) == 1
               && atomic_load(&peers[E].connects) == atomic_load(&peers[E].disconnects));
    OK(polysio_client_free(peers[E].c));
    pump_clients[E] = NULL;

    /* ---- graceful shutdown: every socket is told, the port is released */
    OK(polysio_server_close(srv));
    WAIT_UNTIL(atomic_load(&srv_disconnects[A]) >= 1);
    STREQ(srv_reason[A], "server shutting down");
    WAIT_UNTIL(atomic_load(&a->disconnects) == 1);
    ERR(polysio_server_listen(srv, "127.0.0.1", 0, NULL), POLYSIO_ERR_CLOSED);
    polysio_server *again = NULL;
    OK(polysio_server_new(NULL, &again));
    OK(polysio_server_listen(again, "127.0.0.1", port, NULL)); /* the port is free again */
    OK(polysio_server_free(again));

    for (int i = A; i < NPEERS; i++) {
        peer *p = &peers[i];
        if (i <= C) OK(polysio_client_free(p->c));
        pump_clients[i] = NULL;
        polysio_payload **slots[] = {&p->welcome, &p->echo, &p->answer, &p->conn_error, &p->ack_args};
        for (size_t k = 0; k < sizeof slots / sizeof *slots; k++)
            if (*slots[k]) OK(polysio_payload_free(*slots[k]));
    }
    OK(polysio_server_free(srv));
    pump_servers[0] = NULL;
    CHECK(atomic_load(&wrong_thread) == 0);
    if (polysio_handle_count() != 0) FAIL("%zu handles left", polysio_handle_count());
    printf("test_loopback %s: ok\n", argv[1]);
    return 0;
}
