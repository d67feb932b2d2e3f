/* SIGPIPE on the library's threads: a write to a connection the peer reset raises SIGPIPE on
 * the writing thread, and its default action kills the whole process. The library's threads
 * block it, so such a write only fails with EPIPE; the host's own threads keep their mask.
 *
 * The server's connection callback runs on a library thread (POLYSIO_DISPATCH_THREADS) and
 * writes to a pipe whose reading end is closed, the same kernel path as a reset socket: without
 * the mask this program dies of SIGPIPE there. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <unistd.h>

#include "check.h"

static atomic_int connected;
static atomic_int write_errno = -1;
static atomic_int blocked_there = -1;

static int sigpipe_blocked(void) {
    sigset_t now;
    CHECK(pthread_sigmask(SIG_BLOCK, NULL, &now) == 0);
    return sigismember(&now, SIGPIPE);
}

static void on_connection(void *ud, polysio_socket *s) {
    (void)ud;
    (void)s;
    atomic_store(&blocked_there, sigpipe_blocked());
    int fds[2];
    CHECK(pipe(fds) == 0);
    close(fds[0]);
    ssize_t n = write(fds[1], "x", 1);
    atomic_store(&write_errno, n < 0 ? errno : 0);
    close(fds[1]);
    atomic_fetch_add(&connected, 1);
}

int main(void) {
    polysio_server *srv = NULL;
    OK(polysio_server_new(NULL, &srv));
    polysio_namespace *ns = NULL;
    OK(polysio_server_of(srv, "/", &ns));
    OK(polysio_namespace_on_connection(ns, on_connection, NULL));
    uint16_t port = 0;
    OK(polysio_server_listen(srv, "127.0.0.1", 0, &port));

    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%u", port);
    polysio_client *c = NULL;
    OK(polysio_client_new(url, NULL, &c));
    polysio_client_socket *cs = NULL;
    OK(polysio_client_of(c, "/", &cs));
    OK(polysio_client_socket_connect(cs));

    WAIT_UNTIL(atomic_load(&connected) == 1);
    CHECK(atomic_load(&blocked_there) == 1);
    CHECK(atomic_load(&write_errno) == EPIPE);
    /* The host's threads are left alone. */
    CHECK(sigpipe_blocked() == 0);

    OK(polysio_client_free(c));
    OK(polysio_server_free(srv));
    CHECK(polysio_handle_count() == 0);
    printf("test_sigpipe: ok\n");
    return 0;
}
