/* Backpressure into a program that polls slowly (POLYSIO_DISPATCH_POLL): a raw client floods
 * the server with events over WebSocket or long-polling while the program runs its callbacks
 * late and in small doses. The queue stays bounded by max_pending_messages (the library stops
 * reading from the flooding client, which meets TCP backpressure), so does the process's RSS;
 * every event is delivered, once, in order; a second client is served meanwhile; emitting to
 * the flooding socket once it has left is a no-op (POLYSIO_OK), and an error only once its
 * handle is released.
 *
 * The same the other way (mode "client"): a server floods a C client that polls slowly; the
 * client's queue stays bounded by its own max_pending_messages.
 *
 * Usage: test_flood websocket|polling|client [EVENTS] [--unbounded]
 *   EVENTS       how many events the client sends (default 100000)
 *   --unbounded  max_pending_messages = SIZE_MAX, i.e. no backpressure: for comparing the
 *                figures only (the bounds are not checked then). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check.h"

#define PENDING 1024           /* max_pending_messages: the default */
#define PER_POST 64            /* packets per long-polling POST */

static long events_total = 100000;
static bool websocket = true;
static bool unbounded = false;
static uint16_t port;

static long long now_us(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000000LL + t.tv_nsec / 1000;
}

/* ---- process memory ---------------------------------------------------------------------- */

static long rss_kb(void) {
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return 0;
    char line[256];
    long kb = 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld kB", &kb) == 1) break;
    fclose(f);
    return kb;
}

/* ---- the flooding client: raw TCP, one thread, constant memory ---------------------------- */

static atomic_int flood_done;    /* every byte written and the connection shut down */
static atomic_long flood_sent;

static int dial(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK(connect(fd, (struct sockaddr *)&a, sizeof a) == 0);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

static void write_all(int fd, const char *p, size_t n) {
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) FAIL("flood: write: %s", strerror(errno));
        p += w;
        n -= (size_t)w;
    }
}

/* Reads one HTTP response (head and Content-Length body) into buf; returns the body. */
static char *read_response(int fd, char *buf, size_t cap) {
    size_t n = 0;
    char *body = NULL;
    long len = -1;
    for (;;) {
        if (body && len >= 0 && (size_t)(body - buf) + (size_t)len <= n) break;
        CHECK(n < cap - 1);
        ssize_t r = read(fd, buf + n, cap - 1 - n);
        if (r <= 0) FAIL("flood: the server closed the connection (%zd, %s)", r, strerror(errno));
        n += (size_t)r;
        buf[n] = 0;
        if (!body && (body = strstr(buf, "\r\n\r\n"))) {
            body += 4;
            const char *cl = strcasestr(buf, "content-length:");
            CHECK(cl != NULL && cl < body);
            len = strtol(cl + 15, NULL, 10);
        }
    }
    CHECK(strncmp(buf, "HTTP/1.1 200", 12) == 0);
    body[len] = 0;
    return body;
}

/* One event packet, numbered. The filler makes each about 100 bytes. */
static int packet(char *out, long i) {
    return sprintf(out, "42[\"n\",%ld,\"%s\"]", i,
                   "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff");
}

static void flood_websocket(void) {
    int fd = dial();
    char req[512];
    snprintf(req, sizeof req,
             "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: 127.0.0.1\r\n"
             "Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
             "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n");
    write_all(fd, req, strlen(req));
    char head[4096];
    size_t n = 0;
    while (!memmem(head, n, "\r\n\r\n", 4)) {
        ssize_t r = read(fd, head + n, sizeof head - n);
        CHECK(r > 0);
        n += (size_t)r;
    }
    CHECK(strncmp(head, "HTTP/1.1 101", 12) == 0);
    /* Frames, masked with a zero key (allowed: the key is the client's choice). What the server
     * sends back (open, connect, pings) is never read: it is tiny. */
    static char buf[1 << 16];
    size_t len = 0;
    char pkt[256];
    for (long i = -1; i < events_total; i++) {
        int plen = i < 0 ? (int)sprintf(pkt, "40") : packet(pkt, i);
        CHECK(plen < 126);
        if (len + (size_t)plen + 6 > sizeof buf) {
            write_all(fd, buf, len);
            atomic_store(&flood_sent, i);
            len = 0;
        }
        buf[len++] = (char)0x81;                 /* FIN, text */
        buf[len++] = (char)(0x80 | plen);        /* masked, length */
        memset(buf + len, 0, 4);                 /* mask key */
        len += 4;
        memcpy(buf + len, pkt, (size_t)plen);
        len += (size_t)plen;
    }
    /* Leaving: a WebSocket close frame (masked, empty), a half-close, then read what the
     * server sent until it closes too (closing with unread data would reset the connection,
     * and the kernel would drop what the server has not read yet). */
    static const char close_frame[] = {(char)0x88, (char)0x80, 0, 0, 0, 0};
    memcpy(buf + len, close_frame, sizeof close_frame);
    len += sizeof close_frame;
    write_all(fd, buf, len);
    atomic_store(&flood_sent, events_total);
    shutdown(fd, SHUT_WR);
    char sink[4096];
    while (read(fd, sink, sizeof sink) > 0) {}
    close(fd);
}

static void post(int fd, const char *sid, const char *body, size_t n) {
    char head[256];
    int h = snprintf(head, sizeof head,
                     "POST /socket.io/?EIO=4&transport=polling&sid=%s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     "Content-Type: text/plain;charset=UTF-8\r\nContent-Length: %zu\r\n\r\n",
                     sid, n);
    write_all(fd, head, (size_t)h);
    write_all(fd, body, n);
    char resp[4096];
    STREQ(read_response(fd, resp, sizeof resp), "ok");
}

static void flood_polling(void) {
    int fd = dial();
    const char *hs = "GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    write_all(fd, hs, strlen(hs));
    char resp[4096];
    const char *body = read_response(fd, resp, sizeof resp);
    const char *p = strstr(body, "\"sid\":\"");
    CHECK(body[0] == '0' && p != NULL);
    char sid[64];
    CHECK(sscanf(p + 7, "%63[^\"]", sid) == 1);
    post(fd, sid, "40", 2);
    static char buf[PER_POST * 128];
    size_t len = 0;
    int in_body = 0;
    for (long i = 0; i < events_total; i++) {
        if (in_body) buf[len++] = 0x1e;        /* the record separator between packets */
        len += (size_t)packet(buf + len, i);
        if (++in_body == PER_POST || i == events_total - 1) {
            post(fd, sid, buf, len);
            atomic_store(&flood_sent, i + 1);
            len = 0;
            in_body = 0;
        }
    }
    /* leaving: a close packet, as a client does */
    post(fd, sid, "1", 1);
    close(fd);
}

static void *flood(void *arg) {
    (void)arg;
    if (websocket) flood_websocket();
    else flood_polling();
    atomic_store(&flood_done, 1);
    return NULL;
}

/* ---- the server's callbacks (all on the main thread, inside polysio_server_poll) ----------- */

static long received;               /* flood events handled, in order */
static polysio_socket *flooder;     /* the flooding client's socket */
static int flooder_disconnects;
static char flooder_reason[64];
static int left_emits;              /* emits to the flooder after it left: must be POLYSIO_OK */

static void on_n(void *ud, polysio_socket *s, const char *ev, const polysio_payload *args, polysio_ack *ack) {
    (void)ud; (void)ev; (void)ack;
    int64_t i = -1;
    OK(polysio_payload_get_int(args, "/0", &i));
    if (i != received) FAIL("event %ld arrived as number %ld", (long)i, received);
    received++;
    /* the program's work: 20 us an event, so the client sends faster than it is handled */
    long long t0 = now_us();
    while (now_us() - t0 < 20) {}
    flooder = s;
    if (received == events_total) {
        /* The client has sent everything and left (by closing or with a close packet): once
         * the library noticed (it reads again since this is the only message still held),
         * emitting to the socket is a no-op that succeeds, as socket.io. Bad arguments still
         * fail. */
        long t0 = now_ms();
        bool connected = true;
        for (;;) {
            OK(polysio_socket_connected(s, &connected));
            if (!connected) break;
            if (now_ms() - t0 > 30000) FAIL("the flooding client never left");
            struct timespec t = {0, 1000000};
            nanosleep(&t, NULL);
        }
        OK(polysio_socket_emit(s, "after-leaving", NULL));
        ERR(polysio_socket_emit(s, "connect", NULL), POLYSIO_ERR_INVALID_ARGUMENT);
        left_emits++;
    }
}

static void on_hello(void *ud, polysio_socket *s, const char *ev, const polysio_payload *args, polysio_ack *ack) {
    (void)ud; (void)s; (void)ev;
    if (ack) OK(polysio_ack_send(ack, args));
}

static void on_disconnect(void *ud, polysio_socket *s, const char *reason) {
    (void)ud;
    if (s != flooder) return;
    flooder_disconnects++;
    snprintf(flooder_reason, sizeof flooder_reason, "%s", reason);
    /* still valid during this callback: a no-op */
    OK(polysio_socket_emit(s, "bye", NULL));
    left_emits++;
}

/* ---- the second client (threads mode: its callbacks run on library threads) -------------- */

static atomic_int second_connected;
static atomic_int second_answers;
static atomic_long second_worst_ms;
static atomic_long second_sent_at;

static void second_on(void *ud, polysio_client_socket *s, const char *ev, const polysio_payload *args, polysio_ack *ack) {
    (void)ud; (void)s; (void)args; (void)ack;
    if (strcmp(ev, "connect") == 0) atomic_store(&second_connected, 1);
}

static void second_answer(void *ud, polysio_result r, const polysio_payload *args) {
    (void)ud; (void)args;
    OK(r);
    long took = now_ms() - atomic_load(&second_sent_at);
    if (took > atomic_load(&second_worst_ms)) atomic_store(&second_worst_ms, took);
    atomic_fetch_add(&second_answers, 1);
}

/* ---- the other way: a server floods a client that polls slowly ------------------------- */

#define CLIENT_PENDING 64

static void srv_flood(void *ud, polysio_socket *s) {
    (void)ud;
    polysio_payload *p = NULL;
    OK(polysio_payload_new(&p));
    OK(polysio_payload_push_int(p, 0));
    for (long i = 0; i < events_total; i++) {
        OK(polysio_payload_set_int(p, "/0", i));
        OK(polysio_socket_emit(s, "n", p));
    }
    OK(polysio_payload_free(p));
}

static long client_received;

static void cli_on_n(void *ud, polysio_client_socket *s, const char *ev, const polysio_payload *args, polysio_ack *ack) {
    (void)ud; (void)s; (void)ev; (void)ack;
    int64_t i = -1;
    OK(polysio_payload_get_int(args, "/0", &i));
    if (i != client_received) FAIL("event %ld arrived as number %ld", (long)i, client_received);
    client_received++;
}

static int client_mode(void) {
    polysio_server *srv = NULL;
    OK(polysio_server_new(NULL, &srv));
    polysio_namespace *ns = NULL;
    OK(polysio_server_of(srv, "/", &ns));
    OK(polysio_namespace_on_connection(ns, srv_flood, NULL));
    OK(polysio_server_listen(srv, "127.0.0.1", 0, &port));
    polysio_client_options *co = NULL;
    OK(polysio_client_options_new(&co));
    OK(polysio_client_options_set_transports(co, POLYSIO_TRANSPORT_WEBSOCKET, false));
    OK(polysio_client_options_set_dispatch(co, POLYSIO_DISPATCH_POLL));
    OK(polysio_client_options_set_max_pending_messages(co, unbounded ? SIZE_MAX : CLIENT_PENDING));
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%u", port);
    polysio_client *c = NULL;
    polysio_client_socket *cs = NULL;
    OK(polysio_client_new(url, co, &c));
    OK(polysio_client_options_free(co));
    OK(polysio_client_of(c, "/", &cs));
    OK(polysio_client_socket_on(cs, "n", cli_on_n, NULL));
    OK(polysio_client_socket_connect(cs));
    int fd;
    OK(polysio_client_event_fd(c, &fd));
    long t0 = now_ms();
    size_t max_ran = 0;
    while (client_received < events_total) {
        if (now_ms() - t0 > 120000) FAIL("timed out: %ld of %ld events", client_received, events_total);
        struct pollfd p = {.fd = fd, .events = POLLIN};
        poll(&p, 1, 10);
        struct timespec nap = {0, 5 * 1000000L};
        nanosleep(&nap, NULL);
        size_t ran = 0;
        OK(polysio_client_poll(c, &ran));
        if (ran > max_ran) max_ran = ran;
    }
    printf("test_flood client%s: %ld events in %ld ms; queue at most %zu callbacks per poll\n",
           unbounded ? " --unbounded" : "", events_total, now_ms() - t0, max_ran);
    if (!unbounded) {
        /* the connect event and one message over the bound at most */
        if (max_ran > CLIENT_PENDING + 2) FAIL("%zu callbacks queued at once", max_ran);
        if (events_total >= 10000) CHECK(max_ran >= CLIENT_PENDING / 2);
    }
    OK(polysio_client_free(c));
    OK(polysio_server_free(srv));
    CHECK(polysio_handle_count() == 0);
    printf("test_flood client: ok\n");
    return 0;
}

int main(int argc, char **argv) {
    CHECK(argc >= 2);
    /* the client mode's server queues all its events at once: 20000 stay well under its
     * 16 MiB bound of bytes queued for one client */
    bool client = strcmp(argv[1], "client") == 0;
    if (client) events_total = 20000;
    else if (strcmp(argv[1], "polling") == 0) websocket = false;
    else CHECK(strcmp(argv[1], "websocket") == 0);
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--unbounded") == 0) unbounded = true;
        else events_total = strtol(argv[i], NULL, 10);
    }
    CHECK(events_total > 0);
    if (client) return client_mode();

    polysio_server_options *o = NULL;
    OK(polysio_server_options_new(&o));
    OK(polysio_server_options_set_dispatch(o, POLYSIO_DISPATCH_POLL));
    if (unbounded) OK(polysio_server_options_set_max_pending_messages(o, SIZE_MAX));
    polysio_server *srv = NULL;
    OK(polysio_server_new(o, &srv));
    OK(polysio_server_options_free(o));
    polysio_namespace *ns = NULL;
    OK(polysio_server_of(srv, "/", &ns));
    OK(polysio_namespace_on(ns, "n", on_n, NULL));
    OK(polysio_namespace_on(ns, "hello", on_hello, NULL));
    OK(polysio_namespace_on_disconnect(ns, on_disconnect, NULL));
    OK(polysio_server_listen(srv, "127.0.0.1", 0, &port));
    int fd;
    OK(polysio_server_event_fd(srv, &fd));

    /* the second client, connected before the flood */
    polysio_client_options *co = NULL;
    OK(polysio_client_options_new(&co));
    OK(polysio_client_options_set_reconnection(co, false, 0));
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%u", port);
    polysio_client *second = NULL;
    polysio_client_socket *ss = NULL;
    OK(polysio_client_new(url, co, &second));
    OK(polysio_client_options_free(co));
    OK(polysio_client_of(second, "/", &ss));
    OK(polysio_client_socket_on(ss, "connect", second_on, NULL));
    OK(polysio_client_socket_connect(ss));
    pump_servers[0] = srv;
    WAIT_UNTIL(atomic_load(&second_connected));
    pump(50);

    long rss0 = rss_kb(), rss_peak = rss0;
    pthread_t t;
    CHECK(pthread_create(&t, NULL, flood, NULL) == 0);

    /* The slow program: every 10 ms it runs what is queued, 20 us of work for each event. */
    long t0 = now_ms(), last_ask = 0;
    size_t max_ran = 0;
    int asked = 0;
    while (!(atomic_load(&flood_done) && received == events_total && flooder_disconnects == 1)) {
        if (now_ms() - t0 > 300000) FAIL("timed out: %ld of %ld events handled", received, events_total);
        struct pollfd p = {.fd = fd, .events = POLLIN};
        poll(&p, 1, 10);
        struct timespec nap = {0, 10 * 1000000L};
        nanosleep(&nap, NULL);
        size_t ran = 0;
        OK(polysio_server_poll(srv, &ran));
        if (ran > max_ran) max_ran = ran;
        long rss = rss_kb();
        if (rss > rss_peak) rss_peak = rss;
        /* the second client asks every 200 ms while the flood goes on */
        if (!atomic_load(&flood_done) && now_ms() - last_ask > 200 &&
            atomic_load(&second_answers) == asked) {
            last_ask = now_ms();
            atomic_store(&second_sent_at, last_ask);
            polysio_payload *a = NULL;
            OK(polysio_payload_new(&a));
            OK(polysio_payload_push_int(a, asked));
            OK(polysio_client_socket_emit_with_ack(ss, "hello", a, 10000, second_answer, NULL));
            OK(polysio_payload_free(a));
            asked++;
        }
    }
    long took = now_ms() - t0;
    CHECK(pthread_join(t, NULL) == 0);
    WAIT_UNTIL(atomic_load(&second_answers) == asked);

    long grew = (rss_peak - rss0) / 1024;
    printf("test_flood %s%s: %ld events (%ld MB on the wire) in %ld ms; queue at most %zu "
           "callbacks per poll; RSS %ld MB before, peak +%ld MB; second client: %d answers, "
           "slowest %ld ms\n",
           argv[1], unbounded ? " --unbounded" : "", events_total, events_total * 100 / 1000000,
           took, max_ran, rss0 / 1024, grew, asked, atomic_load(&second_worst_ms));
    CHECK(received == events_total);
    CHECK(left_emits == 2);
    if (strcmp(flooder_reason, "transport close") != 0) FAIL("the flooder left with \"%s\"", flooder_reason);
    /* the handle is released once the disconnect callback returned */
    ERR(polysio_socket_emit(flooder, "x", NULL), POLYSIO_ERR_CLOSED);
    CHECK(asked >= 1);
    if (!unbounded) {
        /* The queue never held more than the bound (plus one POST's packets over polling,
         * handed over together), and not much less either: the bound was reached, so the
         * client did meet backpressure. */
        size_t most = PENDING + (websocket ? 1 : PER_POST) + 8;
        if (max_ran > most) FAIL("%zu callbacks queued at once, more than %zu", max_ran, most);
        if (events_total >= 10 * PENDING) CHECK(max_ran >= PENDING / 2);
        if (grew > 64) FAIL("RSS grew by %ld MB", grew);
        if (atomic_load(&second_worst_ms) > 5000) FAIL("the second client waited %ld ms", atomic_load(&second_worst_ms));
    }

    OK(polysio_client_free(second));
    OK(polysio_server_free(srv));
    CHECK(polysio_handle_count() == 0);
    printf("test_flood %s: ok\n", argv[1]);
    return 0;
}
