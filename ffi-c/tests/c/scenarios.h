/* The scenario logic shared by the C scenario servers (see scenarios.c). */
#ifndef SCENARIOS_H
#define SCENARIOS_H
#include <stdbool.h>

#include "polysio.h"

struct scenario_opts {
    bool full; /* --full */
    bool poll; /* --poll: POLYSIO_DISPATCH_POLL */
};

/* The program's name in messages. */
extern const char *scenario_program;

/* Prints the error of a failed call to stderr. */
void check(polysio_result r, const char *what);

/* A server with the scenarios' namespaces and handlers, from the options in argv[first..]
 * ([--full] [--recovery] [--ping INTERVAL,TIMEOUT] [--poll]); NULL on a bad argument. */
polysio_server *scenario_server_new(int argc, char **argv, int first, struct scenario_opts *opts);

/* SIGINT and SIGTERM end scenario_wait (call it early); -1 on failure. */
int scenario_catch_signals(void);

/* Runs until SIGINT or SIGTERM; in poll mode, runs the server's callbacks meanwhile. */
void scenario_wait(polysio_server *srv, bool poll_mode);

#endif
