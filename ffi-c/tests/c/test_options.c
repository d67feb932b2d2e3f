/* Server and client options take effect: path, transports, maxHttpBufferSize, CORS, static
 * files. */
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
    printf("test_options: ok\n");
    return 0;
}
