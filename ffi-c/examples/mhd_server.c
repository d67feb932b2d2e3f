/* Socket.IO inside libmicrohttpd, through polysio's host API: MHD owns the HTTP server
 * (here it answers GET / and GET /health itself); everything under /socket.io/ goes to
 * polysio_server_handle_request. A long-poll suspends its MHD connection until polysio's
 * answer comes (on a library thread), which resumes it; a WebSocket goes through MHD's
 * upgrade: MHD writes polysio's 101, then the socket is handed to polysio.
 *
 * The app: every `chat` message goes to everyone, acknowledged.
 *
 * Build and run (see ffi-c/README.md, "Inside your own HTTP server"):
 *   cc -o mhd_server ffi-c/examples/mhd_server.c \
 *       $(pkg-config --cflags --libs polysio libmicrohttpd) -lpthread
 *   ./mhd_server 3000
 *
 * The MHD glue (everything above main) is also what tests/run-server c-host runs, with the
 * conformance scenarios instead of the chat (ffi-c/tests/c/host_server.c includes this file
 * with POLYSIO_MHD_NO_MAIN). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <microhttpd.h>
#include <polysio.h>

/* More than the server's maxHttpBufferSize (default 1e6): polysio answers 413 to a bigger
 * body, so reading further is pointless. */
#define MAX_BODY (1000000 + 1)

static polysio_server *srv;

/* Prints what went wrong when a call fails. */
static void report(polysio_result r, const char *what) {
    if (r == POLYSIO_OK) return;
    char msg[256];
    polysio_last_error(msg, sizeof msg);
    fprintf(stderr, "%s: %s (%s)\n", what, msg, polysio_result_name(r));
}

/* One HTTP request to the Socket.IO path (MHD's per-request pointer). */
struct req {
    struct MHD_Connection *conn;
    polysio_host_request *hreq;
    polysio_host_pending *pending;
    char *body;
    size_t body_len;
    bool started;
    pthread_mutex_t lock; /* guards the answer: it may come on a library thread */
    bool answered, suspended;
    unsigned status;
    struct MHD_Response *response;
};

static void on_upgrade(void *cls, struct MHD_Connection *conn, void *req_cls, const char *extra_in,
                       size_t extra_in_size, MHD_socket sock, struct MHD_UpgradeResponseHandle *urh) {
    (void)conn; (void)req_cls;
    struct req *r = cls;
    /* polysio works on its own copy of the socket; MHD closes its descriptor. */
    report(polysio_server_accept_websocket_fd(srv, r->hreq, sock, (const uint8_t *)extra_in, extra_in_size, false),
          "accept websocket");
    MHD_upgrade_action(urh, MHD_UPGRADE_ACTION_CLOSE);
}

/* The response callback: builds the MHD response (now, or later on a library thread; then it
 * resumes the suspended connection so that MHD calls the handler again, which queues it). */
static void on_response(void *ud, uint16_t status, const polysio_http_header *headers, size_t n,
                        const uint8_t *body, size_t len) {
    struct req *r = ud;
    struct MHD_Response *resp;
    if (status == 101) /* an accepted WebSocket: MHD writes the 101, then calls on_upgrade */
        resp = MHD_create_response_for_upgrade(on_upgrade, r);
    else
        resp = MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    for (size_t i = 0; resp && i < n; i++) {
        /* MHD sets Content-Length, and Connection of an upgrade, itself */
        if (strcmp(headers[i].name, "content-length") == 0) continue;
        if (status == 101 && strcmp(headers[i].name, "connection") == 0) continue;
        MHD_add_response_header(resp, headers[i].name, headers[i].value);
    }
    pthread_mutex_lock(&r->lock);
    r->status = status;
    r->response = resp;
    r->answered = true;
    if (r->suspended) {
        r->suspended = false;
        MHD_resume_connection(r->conn);
    }
    pthread_mutex_unlock(&r->lock);
}

static enum MHD_Result add_header(void *cls, enum MHD_ValueKind kind, const char *key, const char *value) {
    (void)kind;
    if (value) report(polysio_host_request_add_header(cls, key, value), "header");
    return MHD_YES;
}

/* MHD gives the query decoded: encode it again. */
struct query {
    char *buf;
    size_t len, cap;
};

static void q_put(struct query *q, const char *s, bool encode) {
    for (; s && *s; s++) {
        if (q->len + 4 >= q->cap) {
            q->cap = q->cap ? q->cap * 2 : 256;
            q->buf = realloc(q->buf, q->cap);
        }
        unsigned char c = (unsigned char)*s;
        if (!encode || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || strchr("-._~", c))
            q->buf[q->len++] = (char)c;
        else
            q->len += (size_t)snprintf(q->buf + q->len, 4, "%%%02X", c);
    }
    if (q->buf) q->buf[q->len] = 0;
}

static enum MHD_Result add_arg(void *cls, enum MHD_ValueKind kind, const char *key, const char *value) {
    (void)kind;
    struct query *q = cls;
    if (q->len) q_put(q, "&", false);
    q_put(q, key, true);
    if (value) {
        q_put(q, "=", false);
        q_put(q, value, true);
    }
    return MHD_YES;
}

static polysio_host_request *host_request(struct MHD_Connection *conn, const char *method, const char *url) {
    struct query q = {0};
    MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, add_arg, &q);
    polysio_host_request *h = NULL;
    report(polysio_host_request_new(method, url, q.buf ? q.buf : "", &h), "request");
    free(q.buf);
    if (!h) return NULL;
    MHD_get_connection_values(conn, MHD_HEADER_KIND, add_header, h);
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (ci && ci->client_addr) {
        char ip[INET6_ADDRSTRLEN] = "";
        uint16_t port = 0;
        if (ci->client_addr->sa_family == AF_INET) {
            const struct sockaddr_in *a = (const void *)ci->client_addr;
            inet_ntop(AF_INET, &a->sin_addr, ip, sizeof ip);
            port = ntohs(a->sin_port);
        } else if (ci->client_addr->sa_family == AF_INET6) {
            const struct sockaddr_in6 *a = (const void *)ci->client_addr;
            inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof ip);
            port = ntohs(a->sin6_port);
        }
        if (*ip) report(polysio_host_request_set_remote(h, ip, port), "remote");
    }
    return h;
}

static enum MHD_Result text(struct MHD_Connection *conn, unsigned status, const char *body) {
    struct MHD_Response *resp = MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_PERSISTENT);
    MHD_add_response_header(resp, "Content-Type", "text/plain");
    enum MHD_Result ret = MHD_queue_response(conn, status, resp);
    MHD_destroy_response(resp);
    return ret;
}

/* Queues the answer that came (r->lock held). */
static enum MHD_Result queue_answer(struct req *r) {
    if (!r->response) return MHD_NO;
    enum MHD_Result ret = MHD_queue_response(r->conn, r->status, r->response);
    MHD_destroy_response(r->response);
    r->response = NULL;
    return ret;
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                               const char *version, const char *upload_data, size_t *upload_data_size,
                               void **req_cls) {
    (void)cls; (void)version;
    if (strcmp(url, "/health") == 0) return text(conn, 200, "ok");
    if (strcmp(url, "/") == 0) return text(conn, 200, "a Socket.IO server in libmicrohttpd\n");
    if (strncmp(url, "/socket.io/", 11) != 0) return text(conn, 404, "not found");
    struct req *r = *req_cls;
    if (!r) {
        r = calloc(1, sizeof *r);
        if (!r) return MHD_NO;
        r->conn = conn;
        pthread_mutex_init(&r->lock, NULL);
        *req_cls = r;
        return MHD_YES; /* the body (if any) comes in the next calls */
    }
    if (*upload_data_size) {
        size_t take = *upload_data_size;
        if (r->body_len + take > MAX_BODY) take = MAX_BODY - r->body_len;
        if (take) {
            char *b = realloc(r->body, r->body_len + take);
            if (!b) return MHD_NO;
            memcpy(b + r->body_len, upload_data, take);
            r->body = b;
            r->body_len += take;
        }
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (!r->started) {
        r->started = true;
        r->hreq = host_request(conn, method, url);
        if (!r->hreq) return MHD_NO;
        if (r->body_len) report(polysio_host_request_set_body(r->hreq, (const uint8_t *)r->body, r->body_len), "body");
        polysio_result res = polysio_server_handle_request(srv, r->hreq, on_response, r, &r->pending);
        if (res != POLYSIO_OK) {
            report(res, "handle request");
            return text(conn, 503, "unavailable");
        }
    }
    pthread_mutex_lock(&r->lock);
    enum MHD_Result ret = MHD_YES;
    if (r->answered) {
        ret = queue_answer(r);
    } else {
        /* a long-poll: wait for on_response, which resumes the connection */
        r->suspended = true;
        MHD_suspend_connection(conn);
    }
    pthread_mutex_unlock(&r->lock);
    return ret;
}

/* The request ended (answered, or its client went away): a pending answer is cancelled. */
static void completed(void *cls, struct MHD_Connection *conn, void **req_cls, enum MHD_RequestTerminationCode toe) {
    (void)cls; (void)conn; (void)toe;
    struct req *r = *req_cls;
    if (!r) return;
    if (r->pending) report(polysio_host_pending_free(r->pending), "pending free");
    if (r->hreq) report(polysio_host_request_free(r->hreq), "request free");
    if (r->response) MHD_destroy_response(r->response);
    pthread_mutex_destroy(&r->lock);
    free(r->body);
    free(r);
    *req_cls = NULL;
}

/* Serves `server` in a new MHD daemon on `port` (0: any free port, written to *bound). */
static struct MHD_Daemon *mhd_start(polysio_server *server, uint16_t port, uint16_t *bound) {
    srv = server;
    /* MHD_ALLOW_UPGRADE: for WebSockets; MHD_ALLOW_SUSPEND_RESUME: for long-polls;
     * MHD_USE_TURBO: MHD never shutdown()s a socket (polysio works on its own descriptor of an
     * upgraded one, which a shutdown() would end too; closing MHD's descriptor is fine). */
    struct MHD_Daemon *d = MHD_start_daemon(
        MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ERROR_LOG | MHD_ALLOW_SUSPEND_RESUME | MHD_ALLOW_UPGRADE | MHD_USE_TURBO,
        port, NULL, NULL, handler, NULL,
        MHD_OPTION_NOTIFY_COMPLETED, completed, NULL,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)120,
        MHD_OPTION_END);
    const union MHD_DaemonInfo *info = d ? MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT) : NULL;
    *bound = info ? info->port : port;
    return d;
}

/* Stops both: polysio first (its sessions end, answering the suspended long-polls), then MHD. */
static void mhd_stop(struct MHD_Daemon *d) {
    report(polysio_server_close(srv), "close");
    MHD_stop_daemon(d);
    report(polysio_server_free(srv), "free");
}

#ifndef POLYSIO_MHD_NO_MAIN
static void on_chat(void *ud, polysio_socket *s, const char *event, const polysio_payload *args,
                    polysio_ack *ack) {
    (void)ud; (void)s;
    polysio_namespace *ns = NULL;
    polysio_socket_namespace(s, &ns);
    report(polysio_namespace_emit(ns, event, args), "emit");
    if (ack) report(polysio_ack_send(ack, NULL), "ack");
}

static int stop_pipe[2];

static void on_signal(int sig) {
    (void)sig;
    ssize_t r = write(stop_pipe[1], "x", 1);
    (void)r;
}

int main(int argc, char **argv) {
    uint16_t port = argc > 1 ? (uint16_t)atoi(argv[1]) : 3000, bound = 0;
    polysio_server *server = NULL;
    polysio_namespace *nsp = NULL;
    report(polysio_server_new(NULL, &server), "server");
    if (!server) return 1;
    report(polysio_server_of(server, "/", &nsp), "of");
    report(polysio_namespace_on(nsp, "chat", on_chat, NULL), "on chat");
    signal(SIGPIPE, SIG_IGN);
    struct MHD_Daemon *d = mhd_start(server, port, &bound);
    if (!d) {
        fprintf(stderr, "MHD_start_daemon failed on port %u\n", port);
        polysio_server_free(server);
        return 1;
    }
    printf("listening %u: http://127.0.0.1:%u/socket.io/\n", bound, bound);
    fflush(stdout);
    /* MHD and polysio both run on their own threads: this one waits for SIGINT / SIGTERM. */
    if (pipe(stop_pipe) != 0) return 1;
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    char c;
    while (read(stop_pipe[0], &c, 1) < 0 && errno == EINTR) {}
    mhd_stop(d);
    return 0;
}
#endif
