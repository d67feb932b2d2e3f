/* The scenario server of the cross-language tests, in C through polysio.h
 * (`tests/run-server c PORT`): the behaviour tests/SCENARIOS.md describes (as
 * core/examples/test_server.rs).
 *
 *   scenario_server PORT [--full] [--recovery] [--ping INTERVAL,TIMEOUT] [--poll]
 *
 * Default: pingInterval 300 ms, pingTimeout 200 ms, connectTimeout 1000 ms; namespaces `/` and
 * `/custom`, each with a middleware refusing `auth.refuse`, `auth` emitted on connect, and the
 * handlers `message`, `message-with-ack`, `ask`, `join`, `to-room`, `broadcast` and
 * `disconnect-me`.
 * --full adds what tests/node/server-scenarios.js expects (as core/tests/server_node.rs):
 * ask-client, join, bcast, bcast-except, disconnect-me, a `/secret` namespace behind a
 * middleware, and broadcasts to room `green` when a socket's transport closes; it prints
 * `disconnect <reason>` for every disconnect on `/`.
 * --recovery turns connection state recovery on; --poll runs every callback on the main
 * thread (POLYSIO_DISPATCH_POLL) instead of library threads.
 * Cluster mode (tests/SCENARIOS.md): with POLYSIO_TEST_REDIS set, the server joins that Redis in
 * the format of POLYSIO_TEST_ADAPTER (classic, the default, or sharded; another exits 77), `/`
 * gets the cluster events, and the port opens once the adapter is subscribed.
 * Prints `listening PORT` when ready; runs until SIGINT or SIGTERM, then frees everything. */
#include <stdio.h>
#include <stdlib.h>

#include "files.h"
#include "scenarios.h"

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: scenario_server PORT [--full] [--recovery] [--ping I,T] [--poll]\n");
        return 2;
    }
    int port = atoi(argv[1]);

    if (scenario_catch_signals() != 0) return 1;

    struct scenario_opts opts;
    polysio_server *srv = scenario_server_new(argc, argv, 2, &opts);
    if (!srv) return 2;
    uint16_t bound = 0;
    polysio_result r;
    /* tests/run-server's TLS hook: https/wss with POLYSIO_TEST_TLS_CERT and _KEY */
    const char *cert_path = getenv("POLYSIO_TEST_TLS_CERT"), *key_path = getenv("POLYSIO_TEST_TLS_KEY");
    if (cert_path && *cert_path && key_path && *key_path) {
        size_t cert_len = 0, key_len = 0;
        char *cert = read_file(cert_path, &cert_len), *key = read_file(key_path, &key_len);
        r = polysio_server_listen_tls(srv, "127.0.0.1", (uint16_t)port, (const uint8_t *)cert,
                                      cert ? cert_len : 0, (const uint8_t *)key, key ? key_len : 0, &bound);
        free(cert);
        free(key);
    } else {
        r = polysio_server_listen(srv, "127.0.0.1", (uint16_t)port, &bound);
    }
    if (r != POLYSIO_OK) {
        check(r, "listen");
        polysio_server_free(srv);
        return 1;
    }
    printf("listening %u\n", bound);
    fflush(stdout);

    scenario_wait(srv, opts.poll);
    check(polysio_server_free(srv), "free");
    return 0;
}
