/* The C client against the reference npm socket.io server (tests/node/ref-server.js):
 * handshake (auth, query, headers), binary both ways, acks both ways, a second namespace,
 * middleware refusal, reconnection with its events and the offline buffer, server disconnect.
 *
 * Usage: test_client_ref PORT threads|poll [polling|websocket|both] */
#include <stdatomic.h>

#include "check.h"

typedef struct {
    atomic_int connects, disconnects, welcomes, echoes, answers, conn_errors;
    atomic_int reconnect_attempts, reconnects;
    polysio_payload *welcome, *echo, *answer, *conn_error;
    char reason[64];
    polysio_client_socket *s;
    bool buffer_on_disconnect;
} state;

static void keep(polysio_payload **slot, const polysio_payload *args) {
    if (*slot) OK(polysio_payload_free(*slot));
    OK(polysio_payload_clone(args, slot));
}

static void on_event(void *ud, polysio_client_socket *s, const char *ev, const polysio_payload *args, polysio_ack *ack) {
    state *st = ud;
    if (strcmp(ev, "connect") == 0) {
        atomic_fetch_add(&st->connects, 1);
    } else if (strcmp(ev, "disconnect") == 0) {
        const char *r = NULL;
        OK(polysio_payload_get_string(args, "/0", &r, NULL));
        snprintf(st->reason, sizeof st->reason, "%s", r);
        if (st->buffer_on_disconnect) {
            /* offline: kept in the send buffer, sent after the reconnection */
            polysio_payload *p = NULL;
            OK(polysio_payload_new(&p));
            OK(polysio_payload_push_string(p, "buffered", 8));
            OK(polysio_client_socket_emit(s, "echo", p));
            OK(polysio_payload_free(p));
        }
        atomic_fetch_add(&st->disconnects, 1);
    } else if (strcmp(ev, "connect_error") == 0) {
        keep(&st->conn_error, args);
        atomic_fetch_add(&st->conn_errors, 1);
    } else if (strcmp(ev, "welcome") == 0) {
        keep(&st->welcome, args);
        atomic_fetch_add(&st->welcomes, 1);
    } else if (strcmp(ev, "echo") == 0) {
        keep(&st->echo, args);
        atomic_fetch_add(&st->echoes, 1);
    } else if (strcmp(ev, "answer") == 0) {
        keep(&st->answer, args);
        atomic_fetch_add(&st->answers, 1);
    } else if (strcmp(ev, "question") == 0) {
        int64_t n = 0;
        OK(polysio_payload_get_int(args, "/0", &n));
        polysio_payload *r = NULL;
        OK(polysio_payload_new(&r));
        OK(polysio_payload_push_int(r, n * 2));
        const uint8_t bin[] = {7, 7};
        OK(polysio_payload_push_binary(r, bin, 2));
        CHECK(ack != NULL);
        OK(polysio_ack_send(ack, r));
        OK(polysio_payload_free(r));
    }
}

static void on_manager(void *ud, polysio_client *c, const char *ev, const polysio_payload *args) {
    state *st = ud;
    (void)c; (void)args;
    if (strcmp(ev, "reconnect_attempt") == 0) atomic_fetch_add(&st->reconnect_attempts, 1);
    if (strcmp(ev, "reconnect") == 0) atomic_fetch_add(&st->reconnects, 1);
}

static atomic_int acks;
static polysio_payload *ack_args;
static void on_ack(void *ud, polysio_result r, const polysio_payload *args) {
    (void)ud;
    OK(r);
    keep(&ack_args, args);
    atomic_fetch_add(&acks, 1);
}

static void listen_all(state *st, polysio_client_socket *s) {
    const char *events[] = {"connect", "disconnect", "connect_error", "welcome", "echo", "answer", "question"};
    for (size_t i = 0; i < sizeof events / sizeof *events; i++) OK(polysio_client_socket_on(s, events[i], on_event, st));
}

static void expect_string(const polysio_payload *p, const char *pointer, const char *want) {
    const char *s = NULL;
    OK(polysio_payload_get_string(p, pointer, &s, NULL));
    if (strcmp(s, want) != 0) FAIL("%s is \"%s\", expected \"%s\"", pointer, s, want);
}

static polysio_payload *from_json(const char *json, const polysio_buffer *atts, size_t n) {
    polysio_payload *p = NULL;
    OK(polysio_payload_from_json(json, strlen(json), atts, n, &p));
    return p;
}

static void free_state(state *st) {
    polysio_payload **slots[] = {&st->welcome, &st->echo, &st->answer, &st->conn_error};
    for (size_t i = 0; i < 4; i++)
        if (*slots[i]) OK(polysio_payload_free(*slots[i]));
}

int main(int argc, char **argv) {
    CHECK(argc == 3 || argc == 4);
    bool poll_mode = strcmp(argv[2], "poll") == 0;
    const char *transport = argc == 4 ? argv[3] : "both";
    uint32_t mask = strcmp(transport, "polling") == 0     ? POLYSIO_TRANSPORT_POLLING
                    : strcmp(transport, "websocket") == 0 ? POLYSIO_TRANSPORT_WEBSOCKET
                                                          : POLYSIO_TRANSPORT_POLLING | POLYSIO_TRANSPORT_WEBSOCKET;
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%s", argv[1]);

    polysio_client_options *o = NULL;
    OK(polysio_client_options_new(&o));
    const char *auth = "{\"token\":\"c\"}";
    OK(polysio_client_options_set_auth(o, auth, strlen(auth)));
    OK(polysio_client_options_add_query(o, "x", "1"));
    OK(polysio_client_options_add_header(o, "x-test", "yes"));
    OK(polysio_client_options_set_reconnection_delay(o, 100, 200, 0.2));
    OK(polysio_client_options_set_transports(o, mask, true));
    OK(polysio_client_options_set_dispatch(o, poll_mode ? POLYSIO_DISPATCH_POLL : POLYSIO_DISPATCH_THREADS));
    polysio_client *c = NULL;
    OK(polysio_client_new(url, o, &c));
    pump_clients[0] = c;
    static state st, custom, refused;
    OK(polysio_client_on(c, "reconnect_attempt", on_manager, &st));
    OK(polysio_client_on(c, "reconnect", on_manager, &st));
    OK(polysio_client_of(c, "/", &st.s));
    listen_all(&st, st.s);
    OK(polysio_client_socket_connect(st.s));

    /* ---- handshake as the reference server sees it */
    WAIT_UNTIL(atomic_load(&st.welcomes) == 1);
    expect_string(st.welcome, "/0/auth/token", "c");
    expect_string(st.welcome, "/0/query/x", "1");
    expect_string(st.welcome, "/0/headers/x-test", "yes");
    expect_string(st.welcome, "/0/nsp", "/");
    if (mask != (POLYSIO_TRANSPORT_POLLING | POLYSIO_TRANSPORT_WEBSOCKET))
        expect_string(st.welcome, "/0/transport", transport);
    char id[64];
    OK(polysio_client_socket_id(st.s, id, sizeof id, NULL));
    expect_string(st.welcome, "/0/id", id);

    /* ---- the transport in use: the only one allowed, else WebSocket once upgraded */
    uint32_t now = 0;
    uint32_t want = mask == POLYSIO_TRANSPORT_POLLING ? POLYSIO_TRANSPORT_POLLING : POLYSIO_TRANSPORT_WEBSOCKET;
    WAIT_UNTIL(polysio_client_transport(c, &now) == POLYSIO_OK && now == want);

    /* ---- binary nested anywhere, both ways */
    const char *json = "[1,\"two\",{\"bin\":{\"_placeholder\":true,\"num\":0},\"list\":[{\"_placeholder\":true,\"num\":1},null,true]}]";
    const uint8_t b0[] = {1, 2, 3}, b1[] = {4};
    polysio_buffer atts[2] = {{b0, 3}, {b1, 1}};
    polysio_payload *sent = from_json(json, atts, 2);
    OK(polysio_client_socket_emit(st.s, "echo", sent));
    WAIT_UNTIL(atomic_load(&st.echoes) == 1);
    const char *back = NULL;
    OK(polysio_payload_to_json(st.echo, &back, NULL));
    STREQ(back, json);
    const uint8_t *data = NULL;
    size_t len = 0;
    OK(polysio_payload_get_binary(st.echo, "/2/list/0", &data, &len));
    CHECK(len == 1 && data[0] == 4);

    /* ---- client → server ack */
    OK(polysio_client_socket_emit_with_ack(st.s, "ack", sent, 10000, on_ack, NULL));
    WAIT_UNTIL(atomic_load(&acks) == 1);
    OK(polysio_payload_to_json(ack_args, &back, NULL));
    STREQ(back, json);
    OK(polysio_payload_free(sent));

    /* ---- server → client ack (the server asks "question", we answer, it reports) */
    polysio_payload *ask = from_json("[\"question\",[21],5000]", NULL, 0);
    OK(polysio_client_socket_emit(st.s, "ask", ask));
    OK(polysio_payload_free(ask));
    WAIT_UNTIL(atomic_load(&st.answers) == 1);
    int64_t n = 0;
    OK(polysio_payload_get_int(st.answer, "/0", &n));
    CHECK(n == 42);
    OK(polysio_payload_get_binary(st.answer, "/1", &data, &len));
    CHECK(len == 2 && data[1] == 7);

    /* ---- a second namespace over the same connection, with its own auth */
    polysio_client_socket *cs = NULL;
    OK(polysio_client_of(c, "/custom", &cs));
    listen_all(&custom, cs);
    OK(polysio_client_socket_set_auth(cs, "{\"ns\":\"custom\"}", 15));
    OK(polysio_client_socket_connect(cs));
    WAIT_UNTIL(atomic_load(&custom.welcomes) == 1);
    expect_string(custom.welcome, "/0/nsp", "/custom");
    expect_string(custom.welcome, "/0/auth/ns", "custom");

    /* ---- middleware refusal (another connection) */
    polysio_client *c2 = NULL;
    OK(polysio_client_new(url, o, &c2));
    pump_clients[1] = c2;
    polysio_client_socket *rs = NULL;
    OK(polysio_client_of(c2, "/", &rs));
    listen_all(&refused, rs);
    OK(polysio_client_socket_set_auth(rs, "{\"refuse\":\"nope\"}", 17));
    OK(polysio_client_socket_connect(rs));
    WAIT_UNTIL(atomic_load(&refused.conn_errors) == 1);
    expect_string(refused.conn_error, "/0/message", "refused by middleware");
    expect_string(refused.conn_error, "/0/data/reason", "nope");
    OK(polysio_payload_get_int(refused.conn_error, "/0/data/code", &n));
    CHECK(n == 42);
    bool active = true;
    OK(polysio_client_socket_active(rs, &active));
    CHECK(!active);
    OK(polysio_client_free(c2));
    pump_clients[1] = NULL;

    /* ---- the transport drops: reconnection, and what was emitted meanwhile is delivered */
    st.buffer_on_disconnect = true;
    polysio_payload *none = NULL;
    OK(polysio_payload_new(&none));
    OK(polysio_client_socket_emit(st.s, "close-transport", none));
    WAIT_UNTIL(atomic_load(&st.disconnects) == 1);
    STREQ(st.reason, "transport close");
    WAIT_UNTIL(atomic_load(&st.connects) == 2);
    CHECK(atomic_load(&st.reconnect_attempts) >= 1);
    WAIT_UNTIL(atomic_load(&st.reconnects) == 1);
    WAIT_UNTIL(atomic_load(&st.echoes) == 2);
    expect_string(st.echo, "/0", "buffered");
    st.buffer_on_disconnect = false;

    /* ---- the server disconnects us: no reconnection */
    OK(polysio_client_socket_emit(st.s, "kick", none));
    OK(polysio_payload_free(none));
    WAIT_UNTIL(atomic_load(&st.disconnects) == 2);
    STREQ(st.reason, "io server disconnect");
    OK(polysio_client_socket_active(st.s, &active));
    CHECK(!active);
    bool connected = true;
    OK(polysio_client_socket_connected(st.s, &connected));
    CHECK(!connected);

    OK(polysio_client_free(c));
    pump_clients[0] = NULL;
    OK(polysio_client_options_free(o));
    free_state(&st);
    free_state(&custom);
    free_state(&refused);
    OK(polysio_payload_free(ack_args));
    if (polysio_handle_count() != 0) FAIL("%zu handles left", polysio_handle_count());
    printf("test_client_ref %s %s: ok\n", argv[2], transport);
    return 0;
}
