/* The chat demo's server in C (the same behaviour as core/examples/chat.rs), serving the demo
 * page examples/chat/index.html and the official socket.io browser client.
 *
 * It runs single-threaded: callbacks are queued by the library (POLYSIO_DISPATCH_POLL) and run
 * by polysio_server_poll() from a plain poll() loop, so nothing here needs a lock.
 *
 * Build and run (see ffi-c/README.md):
 *   cc -o chat_server ffi-c/examples/chat_server.c $(pkg-config --cflags --libs polysio)
 *   ./chat_server 3000 examples/chat/index.html \
 *       tests/node/node_modules/socket.io/client-dist/socket.io.min.js
 * then open http://127.0.0.1:3000/ in two browsers.
 *
 * Events: join(room, ack) leaves the previous room, joins `room`, acks with its name;
 * chat({name, text}) goes to everyone in the sender's room, the sender included;
 * typing(name) goes to the others in the room. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <polysio.h>

static int stop_pipe[2];

static void on_signal(int sig) {
    (void)sig;
    ssize_t r = write(stop_pipe[1], "x", 1);
    (void)r;
}

/* Prints what went wrong when a call fails; returns nonzero on failure. */
static int failed(polysio_result r, const char *what) {
    if (r == POLYSIO_OK) return 0;
    char msg[256];
    polysio_last_error(msg, sizeof msg);
    fprintf(stderr, "%s: %s (%s)\n", what, msg, polysio_result_name(r));
    return 1;
}

static char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc(n > 0 ? (size_t)n : 1);
    *len = buf ? fread(buf, 1, (size_t)n, f) : 0;
    fclose(f);
    return buf;
}

/* The room a socket is in: the one of its rooms that is not its own id ("lobby" if none).
 * Copied into `out`. */
static void current_room(polysio_socket *s, char *out, size_t out_len) {
    const char *id = NULL;
    polysio_payload *rooms = NULL;
    size_t n = 0;
    snprintf(out, out_len, "lobby");
    if (polysio_socket_id(s, &id) || polysio_socket_rooms(s, &rooms)) return;
    polysio_payload_count(rooms, &n);
    for (size_t i = 0; i < n; i++) {
        char ptr[24];
        const char *room = NULL;
        snprintf(ptr, sizeof ptr, "/%zu", i);
        if (polysio_payload_get_string(rooms, ptr, &room, NULL) == POLYSIO_OK && strcmp(room, id) != 0)
            snprintf(out, out_len, "%s", room);
    }
    polysio_payload_free(rooms);
}

static void on_join(void *ud, polysio_socket *s, const char *event, const polysio_payload *args,
                    polysio_ack *ack) {
    (void)ud;
    (void)event;
    const char *room = "lobby";
    polysio_payload_get_string(args, "/0", &room, NULL);
    char previous[256];
    current_room(s, previous, sizeof previous);
    polysio_socket_leave(s, previous);
    if (failed(polysio_socket_join(s, room), "join")) return;
    if (ack) {
        polysio_payload *reply = NULL;
        polysio_payload_new(&reply);
        polysio_payload_push_string(reply, room, strlen(room));
        polysio_ack_send(ack, reply);
        polysio_payload_free(reply);
    }
}

static void on_chat(void *ud, polysio_socket *s, const char *event, const polysio_payload *args,
                    polysio_ack *ack) {
    (void)ack;
    polysio_namespace *nsp = ud;
    char room[256];
    current_room(s, room, sizeof room);
    polysio_broadcast *b = NULL; /* everyone in the room, the sender included */
    if (failed(polysio_namespace_broadcast(nsp, &b), "broadcast")) return;
    polysio_broadcast_to(b, room);
    failed(polysio_broadcast_emit(b, event, args), "chat");
    polysio_broadcast_free(b);
}

static void on_typing(void *ud, polysio_socket *s, const char *event, const polysio_payload *args,
                      polysio_ack *ack) {
    (void)ud;
    (void)ack;
    char room[256];
    current_room(s, room, sizeof room);
    polysio_broadcast *b = NULL; /* the others in the room */
    if (failed(polysio_socket_broadcast(s, &b), "broadcast")) return;
    polysio_broadcast_to(b, room);
    failed(polysio_broadcast_emit(b, event, args), "typing");
    polysio_broadcast_free(b);
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: %s PORT index.html socket.io.min.js\n", argv[0]);
        return 2;
    }
    size_t page_len = 0, js_len = 0;
    char *page = read_file(argv[2], &page_len);
    char *js = read_file(argv[3], &js_len);
    if (!page || !js) {
        fprintf(stderr, "cannot read %s or %s\n", argv[2], argv[3]);
        return 1;
    }

    polysio_server_options *opts = NULL;
    polysio_server *server = NULL;
    polysio_namespace *nsp = NULL;
    polysio_server_options_new(&opts);
    polysio_server_options_set_dispatch(opts, POLYSIO_DISPATCH_POLL);
    if (failed(polysio_server_new(opts, &server), "server")) return 1;
    polysio_server_options_free(opts);

    const char *html = "text/html; charset=utf-8", *javascript = "application/javascript";
    polysio_server_serve_static(server, "/", html, (const uint8_t *)page, page_len);
    polysio_server_serve_static(server, "/index.html", html, (const uint8_t *)page, page_len);
    polysio_server_serve_static(server, "/client/socket.io.min.js", javascript, (const uint8_t *)js, js_len);
    free(page); /* copied by the server */
    free(js);

    polysio_server_of(server, "/", &nsp);
    polysio_namespace_on(nsp, "join", on_join, NULL);
    polysio_namespace_on(nsp, "chat", on_chat, nsp);
    polysio_namespace_on(nsp, "typing", on_typing, NULL);

    uint16_t port = 0;
    if (failed(polysio_server_listen(server, "127.0.0.1", (uint16_t)atoi(argv[1]), &port), "listen")) {
        polysio_server_free(server);
        return 1;
    }
    printf("chat demo running: open http://127.0.0.1:%u/\n", port);
    fflush(stdout);

    if (pipe(stop_pipe) != 0) return 1;
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    struct pollfd fds[2] = {{.fd = stop_pipe[0], .events = POLLIN}, {.events = POLLIN}};
    polysio_server_event_fd(server, &fds[1].fd);
    while (!(fds[0].revents & POLLIN)) {
        if (poll(fds, 2, -1) < 0 && errno != EINTR) break;
        if (fds[1].revents & POLLIN) polysio_server_poll(server, NULL); /* runs the callbacks */
    }
    polysio_server_free(server);
    printf("bye\n");
    return 0;
}
