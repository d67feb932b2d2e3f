/* The C scenario server mounted in libmicrohttpd through polysio's host API
 * (`tests/run-server c-host PORT`): the scenarios of scenarios.c served by the MHD glue of
 * ffi-c/examples/mhd_server.c (included: the example's code is what the tests run). MHD answers
 * `GET /health` with `ok` itself; everything under /socket.io/ goes through the host API;
 * long-polls suspend their MHD connection until the answer comes; WebSockets go through
 * MHD's upgrade, the socket handed to polysio.
 *
 *   host_server PORT [--full] [--recovery] [--ping INTERVAL,TIMEOUT] [--poll]
 *
 * Prints `listening PORT` when ready; runs until SIGINT or SIGTERM, then frees everything. */
#define POLYSIO_MHD_NO_MAIN
#include "../../examples/mhd_server.c"

#include "scenarios.h"

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: host_server PORT [--full] [--recovery] [--ping I,T] [--poll]\n");
        return 2;
    }
    scenario_program = "host_server";
    int port = atoi(argv[1]);
    struct scenario_opts opts;
    polysio_server *server = scenario_server_new(argc, argv, 2, &opts);
    if (!server) return 2;

    if (scenario_catch_signals() != 0) return 1;
    signal(SIGPIPE, SIG_IGN);

    uint16_t bound = 0;
    struct MHD_Daemon *d = mhd_start(server, (uint16_t)port, &bound);
    if (!d) {
        fprintf(stderr, "host_server: MHD_start_daemon failed on port %d\n", port);
        polysio_server_free(server);
        return 1;
    }
    printf("listening %u\n", bound);
    fflush(stdout);

    scenario_wait(server, opts.poll);
    mhd_stop(d);
    return 0;
}
