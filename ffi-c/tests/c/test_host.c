/* The host API (Socket.IO inside the program's own HTTP server), driven with raw Engine.IO
 * requests: the polling handshake, POST, a long-poll answered later, a cancelled long-poll,
 * 413, a WebSocket handed over as a file descriptor (with read-ahead bytes) and one framed by
 * the host (message callbacks), and misuse: NULLs, bad values, double frees, use after the
 * server is freed. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check.h"

/* ---- responses ---------------------------------------------------------------------------- */

struct answer {
    pthread_mutex_t lock;
    int calls;
    unsigned status;
    char body[4096];
    size_t body_len;
    char accept[64]; /* sec-websocket-accept */
};

static void on_response(void *ud, uint16_t status, const polysio_http_header *headers, size_t n,
                        const uint8_t *body, size_t len) {
    struct answer *a = ud;
    pthread_mutex_lock(&a->lock);
    a->calls++;
    a->status = status;
    a->body_len = len < sizeof a->body - 1 ? len : sizeof a->body - 1;
    if (len) memcpy(a->body, body, a->body_len);
    a->body[a->body_len] = 0;
    for (size_t i = 0; i < n; i++)
        if (strcmp(headers[i].name, "sec-websocket-accept") == 0)
            snprintf(a->accept, sizeof a->accept, "%s", headers[i].value);
    pthread_mutex_unlock(&a->lock);
}

static int calls(struct answer *a) {
    pthread_mutex_lock(&a->lock);
    int n = a->calls;
    pthread_mutex_unlock(&a->lock);
    return n;
}

static void reset(struct answer *a) {
    pthread_mutex_lock(&a->lock);
    a->calls = 0;
    a->status = 0;
    a->body_len = 0;
    a->body[0] = 0;
    a->accept[0] = 0;
    pthread_mutex_unlock(&a->lock);
}

static struct answer ans = {.lock = PTHREAD_MUTEX_INITIALIZER};
static polysio_server *srv;

/* Sends one request; returns its pending handle (NULL: answered at once). */
static polysio_host_pending *send_req(const char *method, const char *query, const char *body, size_t len) {
    polysio_host_request *r = NULL;
    polysio_host_pending *p = (void *)1;
    OK(polysio_host_request_new(method, "/socket.io/", query, &r));
    OK(polysio_host_request_add_header(r, "Host", "localhost"));
    OK(polysio_host_request_set_remote(r, "127.0.0.1", 4242));
    if (body) OK(polysio_host_request_set_body(r, (const uint8_t *)body, len));
    reset(&ans);
    OK(polysio_server_handle_request(srv, r, on_response, &ans, &p));
    OK(polysio_host_request_free(r));
    return p;
}

/* A new polling session connected to "/"; its sid into `sid`. */
static void handshake(char *sid, size_t n) {
    CHECK(send_req("GET", "EIO=4&transport=polling", NULL, 0) == NULL);
    CHECK(calls(&ans) == 1 && ans.status == 200);
    CHECK(strncmp(ans.body, "0{\"sid\":\"", 9) == 0);
    const char *s = ans.body + 9;
    size_t l = strcspn(s, "\"");
    CHECK(l < n);
    memcpy(sid, s, l);
    sid[l] = 0;
}

static char query_buf[256];
static const char *q(const char *sid) {
    snprintf(query_buf, sizeof query_buf, "EIO=4&transport=polling&sid=%s", sid);
    return query_buf;
}

/* ---- the server ---------------------------------------------------------------------------- */

static void on_echo(void *ud, polysio_socket *s, const char *ev, const polysio_payload *args, polysio_ack *ack) {
    (void)ud; (void)ev; (void)ack;
    OK(polysio_socket_emit(s, "back", args));
}

/* ---- polling --------------------------------------------------------------------------------- */

static void polling(void) {
    char sid[64];
    handshake(sid, sizeof sid);
    /* POST: connect to "/" */
    CHECK(send_req("POST", q(sid), "40", 2) == NULL);
    CHECK(calls(&ans) == 1 && ans.status == 200);
    STREQ(ans.body, "ok");
    /* the CONNECT answer (now or soon) */
    polysio_host_pending *p = send_req("GET", q(sid), NULL, 0);
    WAIT_UNTIL(calls(&ans) == 1);
    CHECK(ans.status == 200 && strncmp(ans.body, "40{\"sid\":", 9) == 0);
    if (p) OK(polysio_host_pending_free(p));

    /* a long-poll, answered later on a library thread */
    p = send_req("GET", q(sid), NULL, 0);
    CHECK(p != NULL);
    CHECK(calls(&ans) == 0);
    struct answer post = {.lock = PTHREAD_MUTEX_INITIALIZER};
    polysio_host_request *r = NULL;
    OK(polysio_host_request_new("POST", "/socket.io/", q(sid), &r));
    OK(polysio_host_request_set_body(r, (const uint8_t *)"42[\"echo\",\"hi\"]", 15));
    polysio_host_pending *p2 = (void *)1;
    OK(polysio_server_handle_request(srv, r, on_response, &post, &p2));
    CHECK(p2 == NULL && post.status == 200);
    OK(polysio_host_request_free(r));
    WAIT_UNTIL(calls(&ans) == 1);
    CHECK(ans.status == 200);
    STREQ(ans.body, "42[\"back\",\"hi\"]");
    OK(polysio_host_pending_free(p));
    ERR(polysio_host_pending_free(p), POLYSIO_ERR_CLOSED);

    /* a cancelled long-poll: the callback never runs, the session ends */
    p = send_req("GET", q(sid), NULL, 0);
    CHECK(p != NULL);
    OK(polysio_host_pending_free(p));
    pump(200);
    CHECK(calls(&ans) == 0);
    CHECK(send_req("GET", q(sid), NULL, 0) == NULL);
    CHECK(ans.status == 400); /* unknown session */
    printf("polling: handshake, POST, long-poll answered later, cancel: ok\n");

    /* 413: a body over maxHttpBufferSize (1000 here) */
    handshake(sid, sizeof sid);
    char big[1001];
    memset(big, 'x', sizeof big);
    big[0] = '4';
    CHECK(send_req("POST", q(sid), big, sizeof big) == NULL);
    CHECK(ans.status == 413);
    CHECK(send_req("GET", q(sid), NULL, 0) == NULL); /* the session ended */
    CHECK(ans.status == 400);
    printf("polling: 413: ok\n");
}

/* ---- WebSockets ----------------------------------------------------------------------------- */

static polysio_host_request *upgrade_req(void) {
    polysio_host_request *r = NULL;
    OK(polysio_host_request_new("GET", "/socket.io/", "EIO=4&transport=websocket", &r));
    OK(polysio_host_request_add_header(r, "Host", "localhost"));
    OK(polysio_host_request_add_header(r, "Upgrade", "websocket"));
    OK(polysio_host_request_add_header(r, "Connection", "Upgrade"));
    OK(polysio_host_request_add_header(r, "Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="));
    OK(polysio_host_request_add_header(r, "Sec-WebSocket-Version", "13"));
    reset(&ans);
    polysio_host_pending *p = (void *)1;
    OK(polysio_server_handle_request(srv, r, on_response, &ans, &p));
    CHECK(p == NULL && ans.status == 101);
    STREQ(ans.accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    return r;
}

/* A masked client text frame. */
static size_t ws_frame(uint8_t *out, const char *text) {
    size_t n = strlen(text);
    const uint8_t mask[4] = {1, 2, 3, 4};
    out[0] = 0x81;
    out[1] = 0x80 | (uint8_t)n;
    memcpy(out + 2, mask, 4);
    for (size_t i = 0; i < n; i++) out[6 + i] = (uint8_t)text[i] ^ mask[i % 4];
    return 6 + n;
}

static void read_all(int fd, void *buf, size_t n) {
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, (char *)buf + got, n - got);
        CHECK(r > 0);
        got += (size_t)r;
    }
}

/* Reads one unmasked server text frame (< 126 bytes) into `out`. */
static void read_frame(int fd, char *out) {
    uint8_t h[2];
    read_all(fd, h, 2);
    CHECK(h[0] == 0x81 && h[1] < 126);
    read_all(fd, out, h[1]);
    out[h[1]] = 0;
}

static void websocket_fd(void) {
    int l = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    CHECK(bind(l, (struct sockaddr *)&a, sizeof a) == 0 && listen(l, 1) == 0);
    CHECK(getsockname(l, (struct sockaddr *)&a, &al) == 0);
    int c = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(connect(c, (struct sockaddr *)&a, sizeof a) == 0);
    int s = accept(l, NULL, NULL);
    CHECK(s >= 0);
    close(l);

    polysio_host_request *r = upgrade_req();
    /* The client's first frame ("40": connect to /) was read by the host past the request. */
    uint8_t ahead[32];
    size_t n = ws_frame(ahead, "40");
    OK(polysio_server_accept_websocket_fd(srv, r, s, ahead, n, true));
    ERR(polysio_server_accept_websocket_fd(srv, r, s, NULL, 0, true), POLYSIO_ERR_INVALID_ARGUMENT);
    OK(polysio_host_request_free(r));
    close(s); /* polysio works on its own copy */

    char head[1024];
    size_t got = 0;
    while (got < 4 || memcmp(head + got - 4, "\r\n\r\n", 4) != 0) {
        CHECK(got < sizeof head - 1);
        read_all(c, head + got, 1);
        got++;
    }
    head[got] = 0;
    CHECK(strncmp(head, "HTTP/1.1 101 Switching Protocols\r\n", 34) == 0);
    CHECK(strstr(head, "sec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n") != NULL);
    char f[128];
    read_frame(c, f);
    CHECK(strncmp(f, "0{\"sid\":", 8) == 0);
    read_frame(c, f);
    CHECK(strncmp(f, "40{\"sid\":", 9) == 0);
    uint8_t out[64];
    n = ws_frame(out, "42[\"echo\",1]");
    CHECK(write(c, out, n) == (ssize_t)n);
    read_frame(c, f);
    STREQ(f, "42[\"back\",1]");
    close(c);
    printf("websocket over a file descriptor: ok\n");
}

struct frames {
    pthread_mutex_t lock;
    int count;
    char last[256];
    bool closed;
    polysio_websocket *ws;
    bool free_inside; /* free the WebSocket from inside its send callback, on close */
};

static void on_send(void *ud, uint32_t kind, const uint8_t *data, size_t len) {
    struct frames *f = ud;
    pthread_mutex_lock(&f->lock);
    if (kind == POLYSIO_WS_CLOSE) {
        CHECK(data == NULL && len == 0);
        f->closed = true;
        if (f->free_inside) OK(polysio_websocket_free(f->ws));
    } else {
        CHECK(kind == POLYSIO_WS_TEXT);
        size_t n = len < sizeof f->last - 1 ? len : sizeof f->last - 1;
        memcpy(f->last, data, n);
        f->last[n] = 0;
        f->count++;
    }
    pthread_mutex_unlock(&f->lock);
}

static int frame_count(struct frames *f) {
    pthread_mutex_lock(&f->lock);
    int n = f->count;
    pthread_mutex_unlock(&f->lock);
    return n;
}

static bool frames_closed(struct frames *f) {
    pthread_mutex_lock(&f->lock);
    bool c = f->closed;
    pthread_mutex_unlock(&f->lock);
    return c;
}

static void websocket_messages(void) {
    struct frames f = {.lock = PTHREAD_MUTEX_INITIALIZER};
    polysio_host_request *r = upgrade_req();
    polysio_websocket *ws = NULL;
    ERR(polysio_server_accept_websocket_messages(srv, r, NULL, &f, &ws), POLYSIO_ERR_NULL_ARGUMENT);
    OK(polysio_server_accept_websocket_messages(srv, r, on_send, &f, &ws));
    ERR(polysio_server_accept_websocket_messages(srv, r, on_send, &f, &ws), POLYSIO_ERR_INVALID_ARGUMENT);
    OK(polysio_host_request_free(r));
    WAIT_UNTIL(frame_count(&f) == 1);
    CHECK(strncmp(f.last, "0{\"sid\":", 8) == 0);
    OK(polysio_websocket_receive(ws, POLYSIO_WS_TEXT, (const uint8_t *)"40", 2));
    WAIT_UNTIL(frame_count(&f) == 2);
    CHECK(strncmp(f.last, "40{\"sid\":", 9) == 0);
    OK(polysio_websocket_receive(ws, POLYSIO_WS_TEXT, (const uint8_t *)"42[\"echo\",\"m\"]", 14));
    WAIT_UNTIL(frame_count(&f) == 3);
    STREQ(f.last, "42[\"back\",\"m\"]");
    ERR(polysio_websocket_receive(ws, 99, NULL, 0), POLYSIO_ERR_INVALID_ARGUMENT);
    ERR(polysio_websocket_receive(ws, POLYSIO_WS_TEXT, NULL, 3), POLYSIO_ERR_NULL_ARGUMENT);
    /* the client closes: polysio closes its side too */
    OK(polysio_websocket_receive(ws, POLYSIO_WS_CLOSE, NULL, 0));
    WAIT_UNTIL(frames_closed(&f));
    OK(polysio_websocket_receive(ws, POLYSIO_WS_TEXT, (const uint8_t *)"2", 1)); /* ignored */
    OK(polysio_websocket_free(ws));
    ERR(polysio_websocket_free(ws), POLYSIO_ERR_CLOSED);

    /* the server disconnects the socket; the host frees the WebSocket inside its callback */
    struct frames g = {.lock = PTHREAD_MUTEX_INITIALIZER, .free_inside = true};
    r = upgrade_req();
    OK(polysio_server_accept_websocket_messages(srv, r, on_send, &g, &g.ws));
    OK(polysio_host_request_free(r));
    WAIT_UNTIL(frame_count(&g) == 1);
    OK(polysio_websocket_receive(g.ws, POLYSIO_WS_TEXT, (const uint8_t *)"40", 2));
    WAIT_UNTIL(frame_count(&g) == 2);
    OK(polysio_websocket_receive(g.ws, POLYSIO_WS_TEXT, (const uint8_t *)"42[\"disconnect-me\"]", 19));
    WAIT_UNTIL(frames_closed(&g));
    ERR(polysio_websocket_free(g.ws), POLYSIO_ERR_CLOSED);

    /* an unused one, freed open */
    struct frames h = {.lock = PTHREAD_MUTEX_INITIALIZER};
    r = upgrade_req();
    OK(polysio_server_accept_websocket_messages(srv, r, on_send, &h, &ws));
    OK(polysio_host_request_free(r));
    OK(polysio_websocket_free(ws));
    printf("websocket over message callbacks: ok\n");
}

static void on_disconnect_me(void *ud, polysio_socket *s, const char *ev, const polysio_payload *args, polysio_ack *ack) {
    (void)ud; (void)ev; (void)args; (void)ack;
    OK(polysio_socket_disconnect(s, true));
}

/* ---- misuse --------------------------------------------------------------------------------- */

static void misuse(void) {
    polysio_host_request *r = NULL;
    ERR(polysio_host_request_new(NULL, "/socket.io/", NULL, &r), POLYSIO_ERR_NULL_ARGUMENT);
    ERR(polysio_host_request_new("GET", NULL, NULL, &r), POLYSIO_ERR_NULL_ARGUMENT);
    ERR(polysio_host_request_new("GET", "/", NULL, NULL), POLYSIO_ERR_NULL_ARGUMENT);
    ERR(polysio_host_request_new("GE T", "/", NULL, &r), POLYSIO_ERR_INVALID_ARGUMENT);
    ERR(polysio_host_request_new("GET", "\xff", NULL, &r), POLYSIO_ERR_INVALID_UTF8);
    CHECK(r == NULL);
    OK(polysio_host_request_new("GET", "/socket.io/", NULL, &r));
    ERR(polysio_host_request_add_header(r, "bad name", "v"), POLYSIO_ERR_INVALID_ARGUMENT);
    ERR(polysio_host_request_add_header(r, "x", "a\nb"), POLYSIO_ERR_INVALID_ARGUMENT);
    ERR(polysio_host_request_add_header(r, NULL, "v"), POLYSIO_ERR_NULL_ARGUMENT);
    ERR(polysio_host_request_add_header(r, "x", NULL), POLYSIO_ERR_NULL_ARGUMENT);
    ERR(polysio_host_request_set_remote(r, "nope", 1), POLYSIO_ERR_INVALID_ARGUMENT);
    OK(polysio_host_request_set_remote(r, "::1", 1));
    OK(polysio_host_request_set_secure(r, true));
    ERR(polysio_host_request_set_body(r, NULL, 3), POLYSIO_ERR_NULL_ARGUMENT);
    OK(polysio_host_request_set_body(r, NULL, 0));
    ERR(polysio_server_handle_request(srv, r, NULL, NULL, NULL), POLYSIO_ERR_NULL_ARGUMENT);
    ERR(polysio_server_handle_request(NULL, r, on_response, &ans, NULL), POLYSIO_ERR_NULL_ARGUMENT);
    ERR(polysio_server_handle_request(srv, NULL, on_response, &ans, NULL), POLYSIO_ERR_NULL_ARGUMENT);
    ERR(polysio_server_handle_request(srv, (polysio_host_request *)srv, on_response, &ans, NULL),
        POLYSIO_ERR_INVALID_HANDLE);
    ERR(polysio_server_handle_request(srv, (polysio_host_request *)(uintptr_t)0x7, on_response, &ans, NULL),
        POLYSIO_ERR_INVALID_HANDLE);
    /* a plain GET without a session: answered now (400), pending may be NULL */
    reset(&ans);
    OK(polysio_server_handle_request(srv, r, on_response, &ans, NULL));
    CHECK(calls(&ans) == 1 && ans.status == 400);
    ERR(polysio_server_accept_websocket_fd(srv, r, 0, NULL, 0, false), POLYSIO_ERR_INVALID_ARGUMENT);
    ERR(polysio_server_accept_websocket_fd(srv, r, -1, NULL, 0, false), POLYSIO_ERR_INVALID_ARGUMENT);
    polysio_websocket *ws = NULL;
    ERR(polysio_server_accept_websocket_messages(srv, r, on_send, NULL, &ws), POLYSIO_ERR_INVALID_ARGUMENT);
    ERR(polysio_server_accept_websocket_messages(srv, r, on_send, NULL, NULL), POLYSIO_ERR_NULL_ARGUMENT);
    ERR(polysio_host_pending_free(NULL), POLYSIO_ERR_NULL_ARGUMENT);
    ERR(polysio_host_pending_free((polysio_host_pending *)r), POLYSIO_ERR_INVALID_HANDLE);
    ERR(polysio_websocket_free(NULL), POLYSIO_ERR_NULL_ARGUMENT);
    ERR(polysio_websocket_receive(NULL, POLYSIO_WS_CLOSE, NULL, 0), POLYSIO_ERR_NULL_ARGUMENT);
    OK(polysio_host_request_free(r));
    ERR(polysio_host_request_free(r), POLYSIO_ERR_CLOSED);
    ERR(polysio_host_request_set_secure(r, false), POLYSIO_ERR_CLOSED);
    printf("misuse: ok\n");
}

/* Requests, pendings and WebSockets that outlive their server. */
static void after_free(void) {
    char sid[64];
    handshake(sid, sizeof sid);
    polysio_host_pending *p = send_req("GET", q(sid), NULL, 0);
    CHECK(p != NULL);
    struct frames f = {.lock = PTHREAD_MUTEX_INITIALIZER};
    polysio_host_request *r = upgrade_req();
    polysio_websocket *ws = NULL;
    OK(polysio_server_accept_websocket_messages(srv, r, on_send, &f, &ws));
    polysio_host_request *r2 = upgrade_req(); /* answered 101, never accepted */
    polysio_server *old = srv;
    OK(polysio_server_free(srv));
    ERR(polysio_server_free(old), POLYSIO_ERR_CLOSED);
    reset(&ans);
    ERR(polysio_server_handle_request(old, r, on_response, &ans, NULL), POLYSIO_ERR_CLOSED);
    ERR(polysio_server_accept_websocket_fd(old, r2, 0, NULL, 0, false), POLYSIO_ERR_CLOSED);
    ERR(polysio_server_accept_websocket_messages(old, r2, on_send, &f, &ws), POLYSIO_ERR_CLOSED);
    CHECK(calls(&ans) == 0);
    OK(polysio_websocket_receive(ws, POLYSIO_WS_TEXT, (const uint8_t *)"40", 2)); /* goes nowhere */
    OK(polysio_websocket_free(ws));
    OK(polysio_host_pending_free(p));
    OK(polysio_host_request_free(r));
    OK(polysio_host_request_free(r2));
    printf("after the server is freed: ok\n");
}

int main(void) {
    polysio_server_options *o = NULL;
    OK(polysio_server_options_new(&o));
    OK(polysio_server_options_set_max_http_buffer_size(o, 1000));
    OK(polysio_server_new(o, &srv));
    OK(polysio_server_options_free(o));
    polysio_namespace *ns = NULL;
    OK(polysio_server_of(srv, "/", &ns));
    OK(polysio_namespace_on(ns, "echo", on_echo, NULL));
    OK(polysio_namespace_on(ns, "disconnect-me", on_disconnect_me, NULL));

    polling();
    websocket_fd();
    websocket_messages();
    misuse();
    after_free();
    pump(100);
    size_t left = polysio_handle_count();
    if (left) FAIL("%zu handles left", left);
    printf("test_host: all passed\n");
    return 0;
}
