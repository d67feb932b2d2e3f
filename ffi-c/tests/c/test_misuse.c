/* Misuse is an error code, never a crash: NULL and made-up handles, handles of the wrong type,
 * double frees, use after free, invalid UTF-8, bad options, buffers too small. */
#include "check.h"

static void last_error_api(void) {
    polysio_payload *p = NULL;
    ERR(polysio_payload_push_int(NULL, 1), POLYSIO_ERR_NULL_ARGUMENT);
    char small[8];
    size_t full = polysio_last_error(small, sizeof small);
    CHECK(full > sizeof small);             /* snprintf-like: the full length */
    CHECK(strlen(small) == sizeof small - 1); /* truncated, NUL-terminated */
    CHECK(polysio_last_error(NULL, 0) == full);
    STREQ(polysio_result_name(POLYSIO_ERR_CLOSED), "POLYSIO_ERR_CLOSED");
    STREQ(polysio_result_name(12345), "POLYSIO_UNKNOWN");
    CHECK(strlen(polysio_version()) > 0);
    (void)p;
}

static void bad_handles(void) {
    int local = 0;
    polysio_server *fake_server = (polysio_server *)&local; /* a real pointer, not a handle */
    polysio_payload *fake_payload = (polysio_payload *)(uintptr_t)0x1234;
    ERR(polysio_server_listen(fake_server, "127.0.0.1", 0, NULL), POLYSIO_ERR_INVALID_HANDLE);
    ERR(polysio_server_free(fake_server), POLYSIO_ERR_INVALID_HANDLE);
    ERR(polysio_payload_push_int(fake_payload, 1), POLYSIO_ERR_INVALID_HANDLE);
    ERR(polysio_server_free(NULL), POLYSIO_ERR_NULL_ARGUMENT);
    ERR(polysio_client_free(NULL), POLYSIO_ERR_NULL_ARGUMENT);
    ERR(polysio_socket_emit(NULL, "x", NULL), POLYSIO_ERR_NULL_ARGUMENT);
    ERR(polysio_client_socket_emit(NULL, "x", NULL), POLYSIO_ERR_NULL_ARGUMENT);
    ERR(polysio_ack_send(NULL, NULL), POLYSIO_ERR_NULL_ARGUMENT);
    ERR(polysio_broadcast_emit(NULL, "x", NULL), POLYSIO_ERR_NULL_ARGUMENT);
    ERR(polysio_refusal_set(NULL, "no", NULL), POLYSIO_ERR_NULL_ARGUMENT);

    /* a handle of another type */
    polysio_payload *p = NULL;
    OK(polysio_payload_new(&p));
    ERR(polysio_server_free((polysio_server *)p), POLYSIO_ERR_INVALID_HANDLE);
    ERR(polysio_socket_join((polysio_socket *)p, "room"), POLYSIO_ERR_INVALID_HANDLE);
    ERR(polysio_ack_free((polysio_ack *)p), POLYSIO_ERR_INVALID_HANDLE);
    OK(polysio_payload_push_int(p, 1)); /* still fine */
    OK(polysio_payload_free(p));
}

static void options(void) {
    polysio_server_options *o = NULL;
    OK(polysio_server_options_new(&o));
    ERR(polysio_server_options_set_ping(o, 0, 100), POLYSIO_ERR_INVALID_ARGUMENT);
    ERR(polysio_server_options_set_transports(o, 0, true), POLYSIO_ERR_INVALID_ARGUMENT);
    ERR(polysio_server_options_set_transports(o, 8, true), POLYSIO_ERR_INVALID_ARGUMENT);
    ERR(polysio_server_options_set_dispatch(o, 7), POLYSIO_ERR_INVALID_ARGUMENT);
    ERR(polysio_server_options_set_cors(o, 9, false), POLYSIO_ERR_INVALID_ARGUMENT);
    ERR(polysio_server_options_set_path(o, "no-slash"), POLYSIO_ERR_INVALID_ARGUMENT);
    ERR(polysio_server_options_set_path(o, NULL), POLYSIO_ERR_NULL_ARGUMENT);
    ERR(polysio_server_options_set_max_http_buffer_size(o, 0), POLYSIO_ERR_INVALID_ARGUMENT);
    OK(polysio_server_options_set_cors(o, POLYSIO_CORS_ANY, true));
    OK(polysio_server_options_add_cors_origin(o, "https://example.com"));
    OK(polysio_server_options_set_connection_state_recovery(o, true, 60000, true));
    /* limits and timeouts: 0 is refused, except where it means "no limit" (or, for
     * attachments, "no binary packets"); a NULL or foreign handle is refused as everywhere */
    ERR(polysio_server_options_set_http_request_body_timeout(o, 0), POLYSIO_ERR_INVALID_ARGUMENT);
    ERR(polysio_server_options_set_max_buffered_chunks(o, 0), POLYSIO_ERR_INVALID_ARGUMENT);
    ERR(polysio_server_options_set_max_buffered_bytes(o, 0), POLYSIO_ERR_INVALID_ARGUMENT);
    ERR(polysio_server_options_set_write_timeout(o, 0), POLYSIO_ERR_INVALID_ARGUMENT);
    ERR(polysio_server_options_set_max_pending_messages(o, 0), POLYSIO_ERR_INVALID_ARGUMENT);
    ERR(polysio_server_options_set_headers_timeout(o, 0), POLYSIO_ERR_INVALID_ARGUMENT);
    ERR(polysio_server_options_set_keep_alive_timeout(o, 0), POLYSIO_ERR_INVALID_ARGUMENT);
    ERR(polysio_server_options_set_http_request_body_timeout(NULL, 1000), POLYSIO_ERR_NULL_ARGUMENT);
    ERR(polysio_server_options_set_max_connections(NULL, 10), POLYSIO_ERR_NULL_ARGUMENT);
    ERR(polysio_server_options_set_max_attachments((polysio_server_options *)(uintptr_t)12, 1),
        POLYSIO_ERR_INVALID_HANDLE);
    OK(polysio_server_options_set_http_request_body_timeout(o, 1));
    OK(polysio_server_options_set_max_buffered_chunks(o, 1));
    OK(polysio_server_options_set_max_buffered_bytes(o, SIZE_MAX));
    OK(polysio_server_options_set_write_timeout(o, UINT32_MAX));
    OK(polysio_server_options_set_max_pending_messages(o, 1));
    OK(polysio_server_options_set_max_handshakes_per_second(o, 0));
    OK(polysio_server_options_set_max_handshakes_per_second(o, 100));
    OK(polysio_server_options_set_headers_timeout(o, 60000));
    OK(polysio_server_options_set_keep_alive_timeout(o, 5000));
    OK(polysio_server_options_set_max_connections(o, 0));
    OK(polysio_server_options_set_max_connections(o, 1000));
    OK(polysio_server_options_set_max_attachments(o, 0));
    OK(polysio_server_options_set_max_attachments(o, 10));
    OK(polysio_server_options_free(o));
    ERR(polysio_server_options_set_max_pending_messages(o, 1), POLYSIO_ERR_CLOSED);
    ERR(polysio_server_options_free(o), POLYSIO_ERR_CLOSED);

    polysio_client_options *c = NULL;
    OK(polysio_client_options_new(&c));
    const char bad[] = {'x', (char)0xfe, 0};
    ERR(polysio_client_options_add_header(c, "x-ok", bad), POLYSIO_ERR_INVALID_UTF8);
    ERR(polysio_client_options_add_header(c, "bad header", "v"), POLYSIO_ERR_INVALID_ARGUMENT);
    ERR(polysio_client_options_set_auth(c, "[1]", 3), POLYSIO_ERR_INVALID_ARGUMENT);
    ERR(polysio_client_options_set_auth(c, "{", 1), POLYSIO_ERR_INVALID_JSON);
    ERR(polysio_client_options_set_reconnection_delay(c, 100, 50, 0.5), POLYSIO_ERR_INVALID_ARGUMENT);
    ERR(polysio_client_options_set_reconnection_delay(c, 100, 500, 1.5), POLYSIO_ERR_INVALID_ARGUMENT);
    OK(polysio_client_options_set_auth(c, NULL, 0));
    ERR(polysio_client_options_set_max_pending_messages(c, 0), POLYSIO_ERR_INVALID_ARGUMENT);
    ERR(polysio_client_options_set_max_pending_messages(NULL, 1), POLYSIO_ERR_NULL_ARGUMENT);
    OK(polysio_client_options_set_max_pending_messages(c, 1));
    OK(polysio_client_options_free(c));
}

static void server_lifecycle(void) {
    polysio_server *s = NULL;
    OK(polysio_server_new(NULL, &s));
    uint16_t port = 0;
    OK(polysio_server_listen(s, "127.0.0.1", 0, &port));
    CHECK(port != 0);
    /* the port is taken: a second server cannot bind it */
    polysio_server *s2 = NULL;
    OK(polysio_server_new(NULL, &s2));
    ERR(polysio_server_listen(s2, "127.0.0.1", port, NULL), POLYSIO_ERR_IO);
    OK(polysio_server_free(s2));
    polysio_namespace *ns = NULL;
    const char bad[] = {'/', (char)0xff, 0};
    ERR(polysio_server_of(s, bad, &ns), POLYSIO_ERR_INVALID_UTF8);
    OK(polysio_server_of(s, "custom", &ns));
    const char *name = NULL;
    OK(polysio_namespace_name(ns, &name));
    STREQ(name, "/custom");
    polysio_namespace *again = NULL;
    OK(polysio_server_of(s, "/custom", &again));
    CHECK(again == ns);
    ERR(polysio_namespace_emit(ns, "connect", NULL), POLYSIO_ERR_INVALID_ARGUMENT); /* reserved */
    ERR(polysio_namespace_emit(ns, bad, NULL), POLYSIO_ERR_INVALID_UTF8);
    OK(polysio_namespace_emit(ns, "nobody-listens", NULL));
    ERR(polysio_namespace_use(ns, NULL, NULL), POLYSIO_ERR_NULL_ARGUMENT);
    polysio_socket *sock = NULL;
    ERR(polysio_namespace_socket(ns, "nope", &sock), POLYSIO_ERR_NOT_FOUND);
    polysio_broadcast *b = NULL;
    OK(polysio_namespace_broadcast(ns, &b));
    OK(polysio_broadcast_to(b, "room"));
    OK(polysio_broadcast_emit(b, "x", NULL));
    ERR(polysio_broadcast_emit_with_ack(b, "x", NULL, 100, NULL, NULL), POLYSIO_ERR_NULL_ARGUMENT);
    polysio_payload *ids = NULL;
    OK(polysio_broadcast_socket_ids(b, &ids));
    size_t n = 9;
    OK(polysio_payload_count(ids, &n));
    CHECK(n == 0);
    OK(polysio_payload_free(ids));
    /* threads mode: no poll, no fd */
    int fd = -1;
    ERR(polysio_server_event_fd(s, &fd), POLYSIO_ERR_INVALID_ARGUMENT);
    ERR(polysio_server_poll(s, NULL), POLYSIO_ERR_INVALID_ARGUMENT);
    OK(polysio_server_close(s));
    ERR(polysio_server_listen(s, "127.0.0.1", 0, NULL), POLYSIO_ERR_CLOSED);
    OK(polysio_server_free(s));
    ERR(polysio_server_free(s), POLYSIO_ERR_CLOSED);                 /* double free */
    ERR(polysio_namespace_emit(ns, "x", NULL), POLYSIO_ERR_CLOSED);  /* owned by the freed server */
    OK(polysio_broadcast_emit(b, "x", NULL)); /* a broadcast outlives its server: no one to reach */
    OK(polysio_broadcast_free(b));
    ERR(polysio_broadcast_free(b), POLYSIO_ERR_CLOSED);
}

static void client_lifecycle(void) {
    polysio_client *c = NULL;
    ERR(polysio_client_new("ftp://x", NULL, &c), POLYSIO_ERR_INVALID_ARGUMENT);
    OK(polysio_client_new("http://127.0.0.1:9", NULL, &c));
    polysio_client_socket *s = NULL;
    OK(polysio_client_of(c, "/", &s));
    polysio_client_socket *again = NULL;
    OK(polysio_client_of(c, "/", &again));
    CHECK(again == s);
    char id[64];
    size_t len = 0;
    ERR(polysio_client_socket_id(s, id, sizeof id, &len), POLYSIO_ERR_CLOSED); /* not connected */
    uint32_t transport = 7;
    OK(polysio_client_transport(c, &transport));
    CHECK(transport == 0); /* no connection open */
    ERR(polysio_client_transport(c, NULL), POLYSIO_ERR_NULL_ARGUMENT);
    ERR(polysio_client_transport((const polysio_client *)s, &transport), POLYSIO_ERR_INVALID_HANDLE);
    ERR(polysio_client_socket_emit(s, "disconnect", NULL), POLYSIO_ERR_INVALID_ARGUMENT);
    OK(polysio_client_socket_emit(s, "buffered", NULL)); /* kept in the offline buffer */
    ERR(polysio_client_socket_set_auth(s, "7", 1), POLYSIO_ERR_INVALID_ARGUMENT);
    ERR(polysio_client_socket_on(s, "x", NULL, NULL), POLYSIO_ERR_NULL_ARGUMENT);
    ERR(polysio_client_poll(c, NULL), POLYSIO_ERR_INVALID_ARGUMENT);
    OK(polysio_client_free(c));
    ERR(polysio_client_free(c), POLYSIO_ERR_CLOSED);
    ERR(polysio_client_socket_emit(s, "x", NULL), POLYSIO_ERR_CLOSED);
    ERR(polysio_client_socket_connect(s), POLYSIO_ERR_CLOSED);
    ERR(polysio_client_transport(c, &transport), POLYSIO_ERR_CLOSED);

    /* the offline buffer has a bound */
    polysio_client_options *o = NULL;
    OK(polysio_client_options_new(&o));
    OK(polysio_client_options_set_send_buffer_max(o, 2));
    OK(polysio_client_new("http://127.0.0.1:9", o, &c));
    OK(polysio_client_options_free(o));
    OK(polysio_client_of(c, "/", &s));
    OK(polysio_client_socket_emit(s, "a", NULL));
    OK(polysio_client_socket_emit(s, "b", NULL));
    ERR(polysio_client_socket_emit(s, "c", NULL), POLYSIO_ERR_BUFFER_FULL);
    OK(polysio_client_socket_emit_volatile(s, "d", NULL)); /* volatile: dropped, not buffered */
    OK(polysio_client_free(c));
}

int main(void) {
    last_error_api();
    bad_handles();
    options();
    server_lifecycle();
    client_lifecycle();
    CHECK(polysio_handle_count() == 0);
    printf("test_misuse: ok\n");
    return 0;
}
