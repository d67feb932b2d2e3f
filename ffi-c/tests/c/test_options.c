/* Server and client options take effect: path, transports, maxHttpBufferSize, CORS, static
 * files; and the limits and timeouts: request head and body timeouts, keep-alive timeout,
 * handshake rate, connection cap, maxAttachments. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check.h"

/* One raw HTTP/1.1 request; returns the response head and body (static buffer). */
static const char *http(uint16_t port, const char *request) {
    static char buf[65536];
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK(connect(fd, (struct sockaddr *)&a, sizeof a) == 0);
    CHECK(write(fd, request, strlen(request)) == (ssize_t)strlen(request));
    size_t n = 0;
    ssize_t r;
    while (n < sizeof buf - 1 && (r = read(fd, buf + n, sizeof buf - 1 - n)) > 0) n += (size_t)r;
    buf[n] = 0;
    close(fd);
    return buf;
}

static int dial(uint16_t port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK(connect(fd, (struct sockaddr *)&a, sizeof a) == 0);
    return fd;
}

static void send_str(int fd, const char *s) {
    CHECK(write(fd, s, strlen(s)) == (ssize_t)strlen(s));
}

/* Reads what the server sends until it closes the connection (at most 20 s); returns how
 * long that took, and the data in buf. */
static long read_until_closed(int fd, char *buf, size_t cap) {
    long t0 = now_ms();
    size_t n = 0;
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        long left = 20000 - (now_ms() - t0);
        if (left <= 0) FAIL("the server did not close the connection");
        if (poll(&p, 1, (int)left) <= 0) continue;
        ssize_t r = read(fd, buf + n, cap - 1 - n);
        if (r <= 0) break;
        n += (size_t)r;
        CHECK(n < cap - 1);
    }
    buf[n] = 0;
    close(fd);
    return now_ms() - t0;
}

typedef struct {
    atomic_int connects, errors, disconnects;
    char reason[64];
} events;

static void on_event(void *ud, polysio_client_socket *s, const char *ev, const polysio_payload *args, polysio_ack *ack) {
    events *e = ud;
    (void)s; (void)ack;
    if (strcmp(ev, "connect") == 0) atomic_fetch_add(&e->connects, 1);
    if (strcmp(ev, "connect_error") == 0) atomic_fetch_add(&e->errors, 1);
    if (strcmp(ev, "disconnect") == 0) {
        const char *r = "";
        polysio_payload_get_string(args, "/0", &r, NULL);
        snprintf(e->reason, sizeof e->reason, "%s", r);
        atomic_fetch_add(&e->disconnects, 1);
    }
}

static polysio_client *client(uint16_t port, const char *path, uint32_t transports, events *e, polysio_client_socket **s) {
    polysio_client_options *o = NULL;
    OK(polysio_client_options_new(&o));
    if (path) OK(polysio_client_options_set_path(o, path));
    OK(polysio_client_options_set_transports(o, transports, true));
    OK(polysio_client_options_set_reconnection(o, false, 0));
    OK(polysio_client_options_set_timeout(o, 2000));
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%u", port);
    polysio_client *c = NULL;
    OK(polysio_client_new(url, o, &c));
    OK(polysio_client_options_free(o));
    OK(polysio_client_of(c, "/", s));
    const char *evs[] = {"connect", "connect_error", "disconnect"};
    for (int i = 0; i < 3; i++) OK(polysio_client_socket_on(*s, evs[i], on_event, e));
    OK(polysio_client_socket_connect(*s));
    return c;
}

int main(void) {
    polysio_server_options *o = NULL;
    OK(polysio_server_options_new(&o));
    OK(polysio_server_options_set_path(o, "/rt"));
    OK(polysio_server_options_set_transports(o, POLYSIO_TRANSPORT_WEBSOCKET, false));
    OK(polysio_server_options_set_max_http_buffer_size(o, 1000));
    OK(polysio_server_options_set_cors(o, POLYSIO_CORS_MIRROR, true));
    polysio_server *srv = NULL;
    OK(polysio_server_new(o, &srv));
    OK(polysio_server_options_free(o));
    polysio_namespace *ns = NULL;
    OK(polysio_server_of(srv, "/", &ns));
    const char *page = "<p>hi</p>";
    OK(polysio_server_serve_static(srv, "/page", "text/html", (const uint8_t *)page, strlen(page)));
    uint16_t port = 0;
    OK(polysio_server_listen(srv, "127.0.0.1", 0, &port));

    /* the path, the transports and CORS, as HTTP sees them */
    char req[256];
    snprintf(req, sizeof req,
             "GET /rt/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\nOrigin: http://a.example\r\n"
             "Connection: close\r\n\r\n");
    const char *r = http(port, req);
    CHECK(strncmp(r, "HTTP/1.1 400", 12) == 0); /* polling is off: "Transport unknown" */
    CHECK(strstr(r, "\"code\":0") != NULL);
    CHECK(strcasestr(r, "access-control-allow-origin: http://a.example") != NULL);
    CHECK(strcasestr(r, "access-control-allow-credentials: true") != NULL);
    r = http(port, "GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    CHECK(strncmp(r, "HTTP/1.1 404", 12) == 0); /* not the path */
    r = http(port, "GET /page HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    CHECK(strncmp(r, "HTTP/1.1 200", 12) == 0 && strstr(r, "<p>hi</p>") && strcasestr(r, "content-type: text/html"));

    /* a client on the right path and transport connects; a polling-only one cannot */
    static events good, polling_only;
    polysio_client_socket *gs = NULL, *ps = NULL;
    polysio_client *g = client(port, "/rt/", POLYSIO_TRANSPORT_WEBSOCKET, &good, &gs);
    polysio_client *p = client(port, "/rt/", POLYSIO_TRANSPORT_POLLING, &polling_only, &ps);
    WAIT_UNTIL(atomic_load(&good.connects) == 1);
    WAIT_UNTIL(atomic_load(&polling_only.errors) == 1);
    CHECK(atomic_load(&polling_only.connects) == 0);

    /* maxHttpBufferSize: a message over 1000 bytes closes the connection */
    polysio_payload *big = NULL;
    OK(polysio_payload_new(&big));
    char blob[2000];
    memset(blob, 'x', sizeof blob);
    OK(polysio_payload_push_string(big, blob, sizeof blob));
    OK(polysio_client_socket_emit(gs, "big", big));
    OK(polysio_payload_free(big));
    WAIT_UNTIL(atomic_load(&good.disconnects) == 1);
    STREQ(good.reason, "transport close");

    OK(polysio_client_free(g));
    OK(polysio_client_free(p));
    OK(polysio_server_free(srv));
    CHECK(polysio_handle_count() == 0);

    /* ---- limits and timeouts, as a client doing the bad thing sees them */
    static char buf[65536];
    OK(polysio_server_options_new(&o));
    OK(polysio_server_options_set_headers_timeout(o, 400));
    OK(polysio_server_options_set_http_request_body_timeout(o, 400));
    OK(polysio_server_options_set_max_handshakes_per_second(o, 1));
    OK(polysio_server_new(o, &srv));
    OK(polysio_server_options_free(o));
    OK(polysio_server_of(srv, "/", &ns));
    OK(polysio_server_listen(srv, "127.0.0.1", 0, &port));
    /* a connection that never sends a request is closed after the head timeout */
    long took = read_until_closed(dial(port), buf, sizeof buf);
    CHECK(took >= 300);
    /* one handshake a second: the next ones within the second are answered 503 */
    r = http(port, "GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    CHECK(strncmp(r, "HTTP/1.1 200", 12) == 0);
    char sid[64];
    const char *at = strstr(r, "\"sid\":\"");
    CHECK(at && sscanf(at + 7, "%63[^\"]", sid) == 1);
    bool refused = false;
    for (int i = 0; i < 3 && !refused; i++) {
        r = http(port, "GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        refused = strncmp(r, "HTTP/1.1 503", 12) == 0 && strcasestr(r, "retry-after: 1") != NULL;
    }
    CHECK(refused);
    /* a POST body that does not arrive in time: 408 */
    int fd = dial(port);
    char req2[512];
    snprintf(req2, sizeof req2,
             "POST /socket.io/?EIO=4&transport=polling&sid=%s HTTP/1.1\r\nHost: x\r\n"
             "Content-Type: text/plain\r\nContent-Length: 100\r\nConnection: close\r\n\r\n42[\"",
             sid);
    send_str(fd, req2);
    took = read_until_closed(fd, buf, sizeof buf);
    CHECK(strncmp(buf, "HTTP/1.1 408", 12) == 0);
    CHECK(took >= 300);
    OK(polysio_server_free(srv));

    OK(polysio_server_options_new(&o));
    OK(polysio_server_options_set_max_connections(o, 2));
    OK(polysio_server_options_set_keep_alive_timeout(o, 300));
    OK(polysio_server_options_set_max_attachments(o, 1));
    OK(polysio_server_new(o, &srv));
    OK(polysio_server_options_free(o));
    OK(polysio_server_of(srv, "/", &ns));
    OK(polysio_server_listen(srv, "127.0.0.1", 0, &port));
    /* two connections open: a third is answered 503 and closed */
    int held[2] = {dial(port), dial(port)};
    fd = dial(port);
    send_str(fd, "GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\n\r\n");
    read_until_closed(fd, buf, sizeof buf);
    CHECK(strncmp(buf, "HTTP/1.1 503", 12) == 0);
    close(held[0]);
    close(held[1]);
    /* a keep-alive connection left idle after a response is closed after 300 ms; once the two
     * went away, connections are served again */
    long t0 = now_ms();
    for (;;) {
        fd = dial(port);
        send_str(fd, "GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\n\r\n");
        took = read_until_closed(fd, buf, sizeof buf);
        if (strncmp(buf, "HTTP/1.1 200", 12) == 0) break;
        CHECK(strncmp(buf, "HTTP/1.1 503", 12) == 0);
        if (now_ms() - t0 > 20000) FAIL("the closed connections are still counted");
    }
    CHECK(took >= 200);
    /* maxAttachments 1: a packet with two attachments closes the connection */
    static events bin;
    polysio_client_socket *bs = NULL;
    polysio_client *bc = client(port, NULL, POLYSIO_TRANSPORT_WEBSOCKET, &bin, &bs);
    WAIT_UNTIL(atomic_load(&bin.connects) == 1);
    polysio_payload *two = NULL;
    OK(polysio_payload_new(&two));
    OK(polysio_payload_push_binary(two, (const uint8_t *)"a", 1));
    OK(polysio_payload_push_binary(two, (const uint8_t *)"b", 1));
    OK(polysio_client_socket_emit(bs, "two", two));
    OK(polysio_payload_free(two));
    WAIT_UNTIL(atomic_load(&bin.disconnects) == 1);
    STREQ(bin.reason, "transport close");
    OK(polysio_client_free(bc));
    OK(polysio_server_free(srv));
    CHECK(polysio_handle_count() == 0);
    printf("test_options: ok\n");
    return 0;
}
