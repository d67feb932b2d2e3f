/* TLS from C: a server on polysio_server_listen_tls and clients trusting its CA
 * (polysio_client_options_set_tls_ca_pem) over polling, WebSocket and the upgrade; a client
 * that does not trust it gets a connect_error saying so; verification off connects; PEMs that do
 * not load are POLYSIO_ERR_TLS.
 *
 * Usage: test_tls DIR, DIR holding ca.pem, server.pem and server.key (tests/tls-certs.sh). */
#include <stdatomic.h>

#include "check.h"
#include "files.h"

static char *slurp(const char *dir, const char *name, size_t *len) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    char *buf = read_file(path, len);
    if (!buf) FAIL("cannot read %s", path);
    return buf;
}

static void srv_on_echo(void *ud, polysio_socket *s, const char *ev, const polysio_payload *args, polysio_ack *ack) {
    (void)ud; (void)s; (void)ev;
    if (ack) OK(polysio_ack_send(ack, args));
}

typedef struct {
    atomic_int connects, errors, acks;
    char error[512];
} outcome;

static void cli_on(void *ud, polysio_client_socket *s, const char *ev, const polysio_payload *args, polysio_ack *ack) {
    outcome *o = ud;
    (void)s; (void)ack;
    if (strcmp(ev, "connect") == 0) atomic_fetch_add(&o->connects, 1);
    if (strcmp(ev, "connect_error") == 0) {
        const char *json = NULL;
        size_t n = 0;
        if (polysio_payload_to_json(args, &json, &n) == POLYSIO_OK)
            snprintf(o->error, sizeof o->error, "%.*s", (int)n, json);
        atomic_fetch_add(&o->errors, 1);
    }
}

static void cli_got_ack(void *ud, polysio_result r, const polysio_payload *args) {
    outcome *o = ud;
    const char *text = NULL;
    if (r == POLYSIO_OK && polysio_payload_get_string(args, "/0", &text, NULL) == POLYSIO_OK &&
        strcmp(text, "over tls") == 0)
        atomic_fetch_add(&o->acks, 1);
}

/* Connects with `co` to `url`; true if it connected (and an ack round-tripped). */
static bool try_connect(const char *url, polysio_client_options *co, outcome *o) {
    polysio_client *c = NULL;
    polysio_client_socket *s = NULL;
    OK(polysio_client_new(url, co, &c));
    OK(polysio_client_of(c, "/", &s));
    OK(polysio_client_socket_on(s, "connect", cli_on, o));
    OK(polysio_client_socket_on(s, "connect_error", cli_on, o));
    OK(polysio_client_socket_connect(s));
    WAIT_UNTIL(atomic_load(&o->connects) + atomic_load(&o->errors) > 0);
    bool connected = atomic_load(&o->connects) > 0;
    if (connected) {
        polysio_payload *p = NULL;
        OK(polysio_payload_new(&p));
        OK(polysio_payload_push_string(p, "over tls", 8));
        OK(polysio_client_socket_emit_with_ack(s, "echo", p, 10000, cli_got_ack, o));
        OK(polysio_payload_free(p));
        WAIT_UNTIL(atomic_load(&o->acks) == 1);
    }
    OK(polysio_client_free(c));
    return connected;
}

int main(int argc, char **argv) {
    CHECK(argc == 2);
    size_t ca_len, cert_len, key_len;
    char *ca = slurp(argv[1], "ca.pem", &ca_len);
    char *cert = slurp(argv[1], "server.pem", &cert_len);
    char *key = slurp(argv[1], "server.key", &key_len);

    polysio_server *srv = NULL;
    OK(polysio_server_new(NULL, &srv));
    polysio_namespace *ns = NULL;
    OK(polysio_server_of(srv, "/", &ns));
    OK(polysio_namespace_on(ns, "echo", srv_on_echo, NULL));
    uint16_t port = 0;
    /* what does not load is refused, saying why */
    ERR(polysio_server_listen_tls(srv, "127.0.0.1", 0, (const uint8_t *)"junk", 4, (const uint8_t *)key, key_len, &port),
        POLYSIO_ERR_TLS);
    ERR(polysio_server_listen_tls(srv, "127.0.0.1", 0, (const uint8_t *)ca, ca_len, (const uint8_t *)key, key_len, &port),
        POLYSIO_ERR_TLS); /* the CA's certificate with the server's key: they do not match */
    ERR(polysio_server_listen_tls(srv, "127.0.0.1", 0, NULL, 0, (const uint8_t *)key, key_len, &port),
        POLYSIO_ERR_TLS); /* no certificate */
    OK(polysio_server_listen_tls(srv, "127.0.0.1", 0, (const uint8_t *)cert, cert_len, (const uint8_t *)key, key_len, &port));
    char url[64];
    snprintf(url, sizeof url, "https://127.0.0.1:%u", port);

    /* trusting the CA: every transport */
    const uint32_t transports[3] = {POLYSIO_TRANSPORT_POLLING, POLYSIO_TRANSPORT_WEBSOCKET,
                                    POLYSIO_TRANSPORT_POLLING | POLYSIO_TRANSPORT_WEBSOCKET};
    for (int i = 0; i < 3; i++) {
        polysio_client_options *co = NULL;
        OK(polysio_client_options_new(&co));
        OK(polysio_client_options_set_transports(co, transports[i], true));
        OK(polysio_client_options_set_tls_ca_pem(co, (const uint8_t *)ca, ca_len));
        outcome o = {0};
        CHECK(try_connect(url, co, &o));
        OK(polysio_client_options_free(co));
    }
    /* not trusting it: refused, saying why; verification off: connects */
    {
        polysio_client_options *co = NULL;
        OK(polysio_client_options_new(&co));
        OK(polysio_client_options_set_reconnection(co, false, 0));
        outcome o = {0};
        CHECK(!try_connect(url, co, &o));
        if (!strstr(o.error, "not trusted")) FAIL("connect_error without the reason: %s", o.error);
        OK(polysio_client_options_set_tls_verify(co, false));
        outcome o2 = {0};
        CHECK(try_connect(url, co, &o2));
        OK(polysio_client_options_free(co));
    }
    /* client options that cannot work */
    {
        polysio_client_options *co = NULL;
        polysio_client *c = NULL;
        OK(polysio_client_options_new(&co));
        OK(polysio_client_options_set_tls_ca_pem(co, (const uint8_t *)"not a pem", 9));
        ERR(polysio_client_new(url, co, &c), POLYSIO_ERR_TLS);
        ERR(polysio_client_options_set_tls_client_cert(co, (const uint8_t *)cert, cert_len, NULL, 0),
            POLYSIO_ERR_INVALID_ARGUMENT);
        OK(polysio_client_options_set_proxy(co, "socks5://x:1")); /* checked by polysio_client_new */
        OK(polysio_client_options_set_tls_ca_pem(co, NULL, 0));
        ERR(polysio_client_new(url, co, &c), POLYSIO_ERR_INVALID_ARGUMENT); /* the socks proxy */
        OK(polysio_client_options_set_proxy(co, ""));
        OK(polysio_client_new(url, co, &c));
        OK(polysio_client_free(c));
        OK(polysio_client_options_free(co));
    }
    OK(polysio_server_free(srv));
    CHECK(polysio_handle_count() == 0);
    free(ca);
    free(cert);
    free(key);
    printf("test_tls: ok\n");
    return 0;
}
