/* The Redis emitter (polysio_emitter_*): a C program that is not a server reaches the clients of
 * an npm socket.io node (tests/node/redis-emitter-node.js, @socket.io/redis-adapter's classic
 * format or @socket.io/redis-streams-adapter's) and, in the classic format, of a C server node
 * (polysio_server_options_set_redis), on one real redis-server.
 * Checked: emit to a room with binary, except, namespace /chat, volatile, socketsJoin /
 * socketsLeave (the npm node's `rooms` ack shows them), serverSideEmit (the npm node relays
 * it), disconnectSockets; bad arguments refused; with no Redis, emits queue and flush fails
 * with a bounded wait and counted drops.
 *
 * Usage: test_emitter REDIS_URL NODE_PORT [classic|streams] */
#include <stdatomic.h>

#include "check.h"

typedef struct {
    atomic_int connects, news, news_bin_ok, chat, relayed, disconnects, rooms_acks;
    char rooms[256];
} state;

static bool arg_is(const polysio_payload *args, const char *ptr, const char *want) {
    const char *s = NULL;
    return polysio_payload_get_string(args, ptr, &s, NULL) == POLYSIO_OK && strcmp(s, want) == 0;
}

static void on_event(void *ud, polysio_client_socket *s, const char *ev, const polysio_payload *args, polysio_ack *ack) {
    (void)s;
    (void)ack;
    state *st = ud;
    if (strcmp(ev, "connect") == 0) atomic_fetch_add(&st->connects, 1);
    else if (strcmp(ev, "disconnect") == 0) atomic_fetch_add(&st->disconnects, 1);
    else if (strcmp(ev, "relayed") == 0 && arg_is(args, "/0", "from-emitter")) atomic_fetch_add(&st->relayed, 1);
    else if (strcmp(ev, "chat") == 0 && arg_is(args, "/0", "to-chat")) atomic_fetch_add(&st->chat, 1);
    else if (strcmp(ev, "news") == 0) {
        atomic_fetch_add(&st->news, 1);
        const uint8_t *b = NULL;
        size_t n = 0;
        if (arg_is(args, "/0", "hello") && polysio_payload_get_binary(args, "/1/bin", &b, &n) == POLYSIO_OK && n == 3
            && b[0] == 0 && b[1] == 1 && b[2] == 255)
            atomic_fetch_add(&st->news_bin_ok, 1);
    }
}

static polysio_client_socket *connect_to(const char *url, const char *nsp, int slot, state *st) {
    polysio_client *c = NULL;
    if (!pump_clients[slot]) {
        OK(polysio_client_new(url, NULL, &c));
        pump_clients[slot] = c;
    }
    polysio_client_socket *s = NULL;
    OK(polysio_client_of(pump_clients[slot], nsp, &s));
    const char *events[] = {"connect", "disconnect", "news", "chat", "relayed"};
    for (size_t i = 0; i < 5; i++) OK(polysio_client_socket_on(s, events[i], on_event, st));
    OK(polysio_client_socket_connect(s));
    return s;
}

static polysio_payload *json(const char *text) {
    polysio_payload *p = NULL;
    OK(polysio_payload_from_json(text, strlen(text), NULL, 0, &p));
    return p;
}

static atomic_int joined;
static void got_join(void *ud, polysio_result r, const polysio_payload *args) {
    (void)ud;
    (void)args;
    if (r == POLYSIO_OK) atomic_fetch_add(&joined, 1);
}

/* The npm node's `rooms` ack: the socket's rooms, sorted, as one JSON text in st->rooms. */
static void got_rooms(void *ud, polysio_result r, const polysio_payload *args) {
    state *st = ud;
    const char *text = NULL;
    size_t n = 0;
    if (r == POLYSIO_OK && polysio_payload_to_json(args, &text, &n) == POLYSIO_OK) {
        snprintf(st->rooms, sizeof st->rooms, "%s", text);
        atomic_fetch_add(&st->rooms_acks, 1);
    }
}

/* Asks the npm node for the socket's rooms until they contain `want` (or not, `present`). */
static void wait_rooms(polysio_client_socket *s, state *st, const char *want, bool present) {
    long t0 = now_ms();
    for (;;) {
        int before = atomic_load(&st->rooms_acks);
        OK(polysio_client_socket_emit_with_ack(s, "rooms", NULL, 10000, got_rooms, st));
        WAIT_UNTIL(atomic_load(&st->rooms_acks) > before);
        if ((strstr(st->rooms, want) != NULL) == present) return;
        if (now_ms() - t0 > 15000) FAIL("rooms %s: %s %s", st->rooms, present ? "without" : "still with", want);
        pump(50);
    }
}

int main(int argc, char **argv) {
    if (argc < 3) FAIL("usage: test_emitter REDIS_URL NODE_PORT [classic|streams]");
    const char *redis = argv[1];
    const char *format_name = argc > 3 ? argv[3] : "classic";
    bool streams = strcmp(format_name, "streams") == 0;
    uint32_t format = streams ? POLYSIO_REDIS_STREAMS : POLYSIO_REDIS_CLASSIC;

    /* ---- refused: clear errors, no handle */
    polysio_emitter *e = NULL;
    ERR(polysio_emitter_new("http://127.0.0.1:6379", format, NULL, &e), POLYSIO_ERR_INVALID_ARGUMENT);
    CHECK(strstr(last_error(), "Redis URL") != NULL);
    ERR(polysio_emitter_new(redis, POLYSIO_REDIS_SHARDED, NULL, &e), POLYSIO_ERR_INVALID_ARGUMENT);
    CHECK(strstr(last_error(), "sharded") != NULL);
    ERR(polysio_emitter_new(redis, 9, NULL, &e), POLYSIO_ERR_INVALID_ARGUMENT);
    ERR(polysio_emitter_new(redis, format, "", &e), POLYSIO_ERR_INVALID_ARGUMENT);
    ERR(polysio_emitter_new(NULL, format, NULL, &e), POLYSIO_ERR_NULL_ARGUMENT);
    ERR(polysio_emitter_new(redis, format, NULL, NULL), POLYSIO_ERR_NULL_ARGUMENT);
    ERR(polysio_emitter_new("redis://127.0.0.1:notaport", format, NULL, &e), POLYSIO_ERR_INVALID_ARGUMENT);
    CHECK(e == NULL);
    CHECK(polysio_handle_count() == 0);

    /* ---- no Redis there: operations queue, flush fails within a bounded wait, drops counted.
     * Not under valgrind (POLYSIO_TEST_VALGRIND set): redis-rs 1.8's ConnectionManager that
     * never connected stays alive after it is dropped (about 30 KB, an Arc cycle inside it). */
    if (!getenv("POLYSIO_TEST_VALGRIND")) {
        polysio_emitter *dead = NULL;
        OK(polysio_emitter_new("redis://127.0.0.1:1", format, NULL, &dead));
        OK(polysio_emitter_emit(dead, "news", NULL));
        long t0 = now_ms();
        polysio_result r = polysio_emitter_flush(dead, 10000);
        long took = now_ms() - t0;
        if (r != POLYSIO_ERR_IO && r != POLYSIO_ERR_TIMEOUT) FAIL("flush with no Redis -> %s", polysio_result_name(r));
        if (took > 8000) FAIL("flush with no Redis took %ld ms", took);
        uint64_t published = 9, dropped = 0;
        OK(polysio_emitter_stats(dead, &published, &dropped));
        CHECK(published == 0 && dropped == 1);
        printf("# no Redis: flush -> %s after %ld ms (%s)\n", polysio_result_name(r), took, last_error());
        OK(polysio_emitter_free(dead)); /* nothing left queued */
        ERR(polysio_emitter_free(dead), POLYSIO_ERR_CLOSED);
    }

    /* ---- the peers: a client of the npm node in `/` (a: in room r1, b: not) and in `/chat`;
     * in the classic format also a client of a C server node */
    char url_node[64];
    snprintf(url_node, sizeof url_node, "http://127.0.0.1:%s", argv[2]);
    static state a, b, chat, on_c;
    polysio_client_socket *sa = connect_to(url_node, "/", 0, &a);
    polysio_client_socket *sb = connect_to(url_node, "/", 1, &b);
    connect_to(url_node, "/chat", 0, &chat);
    WAIT_UNTIL(atomic_load(&a.connects) == 1 && atomic_load(&b.connects) == 1 && atomic_load(&chat.connects) == 1);
    polysio_payload *r1 = json("[\"r1\"]");
    OK(polysio_client_socket_emit_with_ack(sa, "join", r1, 10000, got_join, NULL));
    WAIT_UNTIL(atomic_load(&joined) == 1);

    polysio_server *srv = NULL;
    if (!streams) {
        polysio_server_options *o = NULL;
        OK(polysio_server_options_new(&o));
        OK(polysio_server_options_set_redis(o, redis, NULL));
        OK(polysio_server_new(o, &srv));
        OK(polysio_server_options_free(o));
        uint16_t port = 0;
        OK(polysio_server_listen(srv, "127.0.0.1", 0, &port));
        OK(polysio_server_redis_ready(srv, 15000));
        char url_c[64];
        snprintf(url_c, sizeof url_c, "http://127.0.0.1:%u", port);
        connect_to(url_c, "/", 2, &on_c);
        WAIT_UNTIL(atomic_load(&on_c.connects) == 1);
    }

    OK(polysio_emitter_new(redis, format, NULL, &e));
    /* reserved names and NULLs refused */
    ERR(polysio_emitter_emit(e, "disconnect", NULL), POLYSIO_ERR_INVALID_ARGUMENT);
    ERR(polysio_emitter_emit(e, NULL, NULL), POLYSIO_ERR_NULL_ARGUMENT);
    ERR(polysio_emitter_to(e, NULL), POLYSIO_ERR_NULL_ARGUMENT);
    ERR(polysio_emitter_server_side_emit(e, "connect", NULL), POLYSIO_ERR_INVALID_ARGUMENT);

    /* ---- to room r1, with binary: a only (every node) */
    polysio_payload *news = json("[\"hello\", {\"bin\": null}]");
    const uint8_t bin[3] = {0, 1, 255};
    OK(polysio_payload_set_binary(news, "/1/bin", bin, 3));
    polysio_emitter *to_r1 = NULL;
    OK(polysio_emitter_of(e, "/", &to_r1));
    OK(polysio_emitter_to(to_r1, "r1"));
    OK(polysio_emitter_emit(to_r1, "news", news));
    OK(polysio_emitter_flush(to_r1, 5000));
    WAIT_UNTIL(atomic_load(&a.news_bin_ok) == 1);
    pump(300);
    CHECK(atomic_load(&b.news) == 0 && atomic_load(&on_c.news) == 0);

    /* ---- every socket of `/` except r1: b, and the C node's client */
    polysio_emitter *except = NULL;
    OK(polysio_emitter_of(e, "/", &except));
    OK(polysio_emitter_except(except, "r1"));
    OK(polysio_emitter_volatile(except));
    OK(polysio_emitter_emit(except, "news", news));
    WAIT_UNTIL(atomic_load(&b.news_bin_ok) == 1 && (streams || atomic_load(&on_c.news_bin_ok) == 1));
    pump(300);
    CHECK(atomic_load(&a.news) == 1);

    /* ---- namespace /chat ("chat" without the leading slash gets it) */
    polysio_emitter *ch = NULL;
    OK(polysio_emitter_of(e, "chat", &ch));
    polysio_payload *to_chat = json("[\"to-chat\"]");
    OK(polysio_emitter_emit(ch, "chat", to_chat));
    WAIT_UNTIL(atomic_load(&chat.chat) == 1);
    pump(200);
    CHECK(atomic_load(&a.chat) == 0 && atomic_load(&b.chat) == 0);

    /* ---- socketsJoin / socketsLeave: r1's sockets join r2, then leave it */
    OK(polysio_emitter_join(to_r1, "r2"));
    wait_rooms(sa, &a, "\"r2\"", true);
    wait_rooms(sb, &b, "\"r2\"", false);
    OK(polysio_emitter_leave(to_r1, "r2"));
    wait_rooms(sa, &a, "\"r2\"", false);

    /* ---- serverSideEmit: the npm node relays to its own sockets of `/` */
    polysio_payload *relay = json("[\"from-emitter\"]");
    OK(polysio_emitter_server_side_emit(e, "relay", relay));
    WAIT_UNTIL(atomic_load(&a.relayed) == 1 && atomic_load(&b.relayed) == 1);

    /* ---- disconnectSockets of r1: a goes, b stays */
    OK(polysio_emitter_disconnect(to_r1, false));
    WAIT_UNTIL(atomic_load(&a.disconnects) == 1);
    pump(300);
    CHECK(atomic_load(&b.disconnects) == 0);

    uint64_t published = 0, dropped = 1;
    OK(polysio_emitter_stats(e, &published, &dropped));
    printf("# %s: %llu messages written, %llu dropped\n", format_name, (unsigned long long)published,
           (unsigned long long)dropped);
    CHECK(published >= 7 && dropped == 0);

    OK(polysio_payload_free(r1));
    OK(polysio_payload_free(news));
    OK(polysio_payload_free(to_chat));
    OK(polysio_payload_free(relay));
    OK(polysio_emitter_free(to_r1));
    OK(polysio_emitter_free(except));
    OK(polysio_emitter_free(ch));
    OK(polysio_emitter_free(e));
    for (int i = 0; i < 3; i++)
        if (pump_clients[i]) {
            OK(polysio_client_free(pump_clients[i]));
            pump_clients[i] = NULL;
        }
    if (srv) OK(polysio_server_free(srv));
    if (polysio_handle_count() != 0) FAIL("%zu handles left", polysio_handle_count());
    printf("test_emitter %s: ok\n", format_name);
    return 0;
}
