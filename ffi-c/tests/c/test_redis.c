/* Scale-out over Redis (polysio_server_options_set_redis): a C server and an npm socket.io node
 * with @socket.io/redis-adapter (tests/node/redis-cluster-node.js) on one real redis-server, in
 * the classic format (createAdapter) or the sharded one (createShardedAdapter).
 * A broadcast crosses the nodes both ways, serverCount counts both, serverSideEmit reaches the
 * npm node and the npm node's reaches polysio_namespace_on_server_side, serverSideEmitWithAck
 * is answered both ways; bad URLs, formats and arguments are refused.
 *
 * Usage: test_redis REDIS_URL NODE_PORT [classic|sharded] */
#include <stdatomic.h>

#include "check.h"

typedef struct {
    atomic_int connects, from_c, from_node, relayed;
} state;

/* What the C node's server-side callbacks and the acks saw. */
static atomic_int relay_from_node, pings, pongs_ok, node_replies_ok, no_adapter_ok;
static polysio_namespace *root_ns;

static bool arg_is(const polysio_payload *args, const char *want);

/* serverSideEmit("relay", "from-node") of the npm node */
static void on_relay(void *ud, polysio_namespace *ns, const char *ev, const polysio_payload *args, polysio_ack *ack) {
    (void)ud;
    if (ns == root_ns && strcmp(ev, "relay") == 0 && arg_is(args, "from-node") && ack == NULL)
        atomic_fetch_add(&relay_from_node, 1);
}

/* serverSideEmitWithAck("ping-node") of the npm node: answered later, from a clone */
static void on_ping(void *ud, polysio_namespace *ns, const char *ev, const polysio_payload *args, polysio_ack *ack) {
    (void)ud; (void)ns; (void)ev; (void)args;
    if (!ack) return;
    polysio_ack *later = NULL;
    OK(polysio_ack_clone(ack, &later));
    polysio_payload *p = NULL;
    OK(polysio_payload_new(&p));
    OK(polysio_payload_push_string(p, "pong-c", 6));
    OK(polysio_payload_push_string(p, "ignored", 7)); /* one value goes back: the first */
    OK(polysio_ack_send(later, p));
    ERR(polysio_ack_send(later, p), POLYSIO_ERR_INVALID_ARGUMENT);
    OK(polysio_payload_free(p));
    OK(polysio_ack_free(later));
    atomic_fetch_add(&pings, 1);
}

/* the C node's serverSideEmitWithAck: one answer, the npm node's "pong" */
static void got_pongs(void *ud, polysio_result r, const polysio_payload *answers) {
    (void)ud;
    size_t n = 0;
    if (r == POLYSIO_OK && polysio_payload_count(answers, &n) == POLYSIO_OK && n == 1 && arg_is(answers, "pong"))
        atomic_fetch_add(&pongs_ok, 1);
    else
        fprintf(stderr, "got_pongs: %s (%zu answers): %s\n", polysio_result_name(r), n, last_error());
}

/* the npm node's acknowledgement of server-side-emit-with-ack: its replies, ["pong-c"] */
static void got_node_replies(void *ud, polysio_result r, const polysio_payload *args) {
    (void)ud;
    const char *s = NULL;
    size_t n = 0;
    if (r == POLYSIO_OK && polysio_payload_get_length(args, "/0", &n) == POLYSIO_OK && n == 1
        && polysio_payload_get_string(args, "/0/0", &s, NULL) == POLYSIO_OK && strcmp(s, "pong-c") == 0)
        atomic_fetch_add(&node_replies_ok, 1);
}

/* without an adapter: no other node, no answers */
static void got_none(void *ud, polysio_result r, const polysio_payload *answers) {
    (void)ud;
    size_t n = 1;
    if (r == POLYSIO_OK && polysio_payload_count(answers, &n) == POLYSIO_OK && n == 0) atomic_fetch_add(&no_adapter_ok, 1);
}

static bool arg_is(const polysio_payload *args, const char *want) {
    const char *s = NULL;
    return polysio_payload_get_string(args, "/0", &s, NULL) == POLYSIO_OK && strcmp(s, want) == 0;
}

static void on_event(void *ud, polysio_client_socket *s, const char *ev, const polysio_payload *args, polysio_ack *ack) {
    (void)s;
    (void)ack;
    state *st = ud;
    if (strcmp(ev, "connect") == 0) atomic_fetch_add(&st->connects, 1);
    else if (strcmp(ev, "hello") == 0 && arg_is(args, "from-c")) atomic_fetch_add(&st->from_c, 1);
    else if (strcmp(ev, "hello") == 0 && arg_is(args, "from-node")) atomic_fetch_add(&st->from_node, 1);
    else if (strcmp(ev, "relayed") == 0 && arg_is(args, "from-c")) atomic_fetch_add(&st->relayed, 1);
}

static polysio_client_socket *connect_to(const char *url, int slot, state *st) {
    polysio_client *c = NULL;
    OK(polysio_client_new(url, NULL, &c));
    pump_clients[slot] = c;
    polysio_client_socket *s = NULL;
    OK(polysio_client_of(c, "/", &s));
    const char *events[] = {"connect", "hello", "relayed"};
    for (size_t i = 0; i < 3; i++) OK(polysio_client_socket_on(s, events[i], on_event, st));
    OK(polysio_client_socket_connect(s));
    return s;
}

static polysio_payload *strings(int n, const char **v) {
    polysio_payload *p = NULL;
    OK(polysio_payload_new(&p));
    for (int i = 0; i < n; i++) {
        if (v[i]) OK(polysio_payload_push_string(p, v[i], strlen(v[i])));
        else OK(polysio_payload_push_null(p));
    }
    return p;
}

int main(int argc, char **argv) {
    if (argc < 3) FAIL("usage: test_redis REDIS_URL NODE_PORT");
    const char *redis = argv[1];
    const char *format_name = argc > 3 ? argv[3] : "classic";
    uint32_t format = strcmp(format_name, "sharded") == 0 ? POLYSIO_REDIS_SHARDED : POLYSIO_REDIS_CLASSIC;

    /* ---- bad URLs: clear errors, no server */
    polysio_server_options *o = NULL;
    OK(polysio_server_options_new(&o));
    ERR(polysio_server_options_set_redis(o, "http://127.0.0.1:6379", NULL), POLYSIO_ERR_INVALID_ARGUMENT);
    CHECK(strstr(last_error(), "Redis URL") != NULL);
    ERR(polysio_server_options_set_redis(o, redis, ""), POLYSIO_ERR_INVALID_ARGUMENT);
    OK(polysio_server_options_set_redis(o, "redis://127.0.0.1:notaport", NULL));
    polysio_server *bad = NULL;
    ERR(polysio_server_new(o, &bad), POLYSIO_ERR_INVALID_ARGUMENT);
    CHECK(bad == NULL);
    CHECK(strstr(last_error(), "Redis URL") != NULL);
    /* NULL turns it off again: a server without adapter, ready says so */
    OK(polysio_server_options_set_redis(o, NULL, NULL));
    polysio_server *plain = NULL;
    OK(polysio_server_new(o, &plain));
    ERR(polysio_server_redis_ready(plain, 10), POLYSIO_ERR_NOT_FOUND);
    polysio_namespace *plain_ns = NULL;
    OK(polysio_server_of(plain, "/", &plain_ns));
    OK(polysio_namespace_server_side_emit_with_ack(plain_ns, "ping-node", NULL, 0, got_none, NULL));
    ERR(polysio_namespace_server_side_emit_with_ack(plain_ns, "ping-node", NULL, 0, NULL, NULL), POLYSIO_ERR_NULL_ARGUMENT);
    ERR(polysio_namespace_server_side_emit_with_ack(plain_ns, "connect", NULL, 0, got_none, NULL), POLYSIO_ERR_INVALID_ARGUMENT);
    ERR(polysio_namespace_on_server_side(plain_ns, NULL, on_relay, NULL), POLYSIO_ERR_NULL_ARGUMENT);
    OK(polysio_namespace_on_server_side(plain_ns, "relay", on_relay, NULL));
    OK(polysio_namespace_on_server_side(plain_ns, "relay", NULL, NULL)); /* removed */
    WAIT_UNTIL(atomic_load(&no_adapter_ok) == 1);
    OK(polysio_server_free(plain));
    /* formats and subscription modes */
    ERR(polysio_server_options_set_redis_format(o, 7, POLYSIO_REDIS_SUBSCRIPTION_DYNAMIC), POLYSIO_ERR_INVALID_ARGUMENT);
    ERR(polysio_server_options_set_redis_format(o, POLYSIO_REDIS_SHARDED, 9), POLYSIO_ERR_INVALID_ARGUMENT);
    OK(polysio_server_options_set_redis_format(o, format, POLYSIO_REDIS_SUBSCRIPTION_DYNAMIC));

    /* ---- a C node of the cluster */
    OK(polysio_server_options_set_redis(o, redis, "socket.io"));
    polysio_server *srv = NULL;
    OK(polysio_server_new(o, &srv));
    OK(polysio_server_options_free(o));
    polysio_namespace *ns = NULL;
    OK(polysio_server_of(srv, "/", &ns));
    root_ns = ns;
    OK(polysio_namespace_on_server_side(ns, "relay", on_relay, NULL));
    OK(polysio_namespace_on_server_side(ns, "ping-node", on_ping, NULL));
    uint16_t port = 0;
    OK(polysio_server_listen(srv, "127.0.0.1", 0, &port));
    OK(polysio_server_redis_ready(srv, 15000));

    char url_c[64], url_node[64];
    snprintf(url_c, sizeof url_c, "http://127.0.0.1:%u", port);
    snprintf(url_node, sizeof url_node, "http://127.0.0.1:%s", argv[2]);
    static state on_c, on_node;
    polysio_client_socket *sc = connect_to(url_c, 0, &on_c);
    polysio_client_socket *sn = connect_to(url_node, 1, &on_node);
    (void)sc;
    WAIT_UNTIL(atomic_load(&on_c.connects) == 1 && atomic_load(&on_node.connects) == 1);

    /* ---- serverCount: this node and the npm node */
    size_t count = 0;
    OK(polysio_namespace_server_count(ns, &count));
    if (count != 2) FAIL("server count %zu, expected 2", count);

    /* ---- C -> npm: a broadcast from the C server reaches the npm node's client */
    const char *from_c[] = {"from-c"};
    polysio_payload *p = strings(1, from_c);
    OK(polysio_namespace_emit(ns, "hello", p));
    WAIT_UNTIL(atomic_load(&on_node.from_c) == 1 && atomic_load(&on_c.from_c) == 1);

    /* ---- npm -> C: io.emit on the npm node reaches the C server's client */
    const char *emit_to[] = {NULL, "hello", "from-node"};
    polysio_payload *q = strings(3, emit_to);
    OK(polysio_client_socket_emit(sn, "emit-to", q));
    WAIT_UNTIL(atomic_load(&on_c.from_node) == 1 && atomic_load(&on_node.from_node) == 1);

    /* ---- serverSideEmit: the npm node relays to its own sockets */
    const char *relay[] = {"relay", "from-c"};
    polysio_payload *r = strings(1, relay + 1);
    OK(polysio_namespace_server_side_emit(ns, relay[0], r));
    WAIT_UNTIL(atomic_load(&on_node.relayed) == 1);
    pump(300);
    CHECK(atomic_load(&on_c.relayed) == 0); /* not sent to this node's clients */
    CHECK(atomic_load(&on_c.from_c) == 1 && atomic_load(&on_node.from_c) == 1); /* once each */

    /* ---- npm -> C: serverSideEmit("relay", "from-node") reaches on_relay, once */
    const char *from_node[] = {"from-node"};
    polysio_payload *fn = strings(1, from_node);
    OK(polysio_client_socket_emit(sn, "server-side-emit", fn));
    WAIT_UNTIL(atomic_load(&relay_from_node) == 1);

    /* ---- serverSideEmitWithAck both ways */
    OK(polysio_namespace_server_side_emit_with_ack(ns, "ping-node", NULL, 5000, got_pongs, NULL));
    WAIT_UNTIL(atomic_load(&pongs_ok) == 1);
    OK(polysio_client_socket_emit_with_ack(sn, "server-side-emit-with-ack", NULL, 10000, got_node_replies, NULL));
    WAIT_UNTIL(atomic_load(&node_replies_ok) == 1);
    CHECK(atomic_load(&pings) == 1);
    pump(200);
    CHECK(atomic_load(&relay_from_node) == 1);
    OK(polysio_payload_free(fn));

    OK(polysio_payload_free(p));
    OK(polysio_payload_free(q));
    OK(polysio_payload_free(r));
    for (int i = 0; i < 2; i++) {
        OK(polysio_client_free(pump_clients[i]));
        pump_clients[i] = NULL;
    }
    OK(polysio_server_free(srv));
    if (polysio_handle_count() != 0) FAIL("%zu handles left", polysio_handle_count());
    printf("test_redis %s: ok\n", format_name);
    return 0;
}
