/* The C client harness of the conformance matrix (`tests/run-client c URL SCENARIO|all`):
 * interprets tests/scenarios.json as tests/SCENARIOS.md describes, through the C ABI of
 * include/polysio.h only, prints `PASS name` or `FAIL name: reason` per scenario and exits 0
 * only if all passed.
 *
 * Usage: matrix_client URL SCENARIO|all SCENARIOS_JSON
 *
 * The scenario file is parsed by polysio_payload_from_json and walked with the payload
 * getters. Emitted values are built with the payload setters ({"$bytes": base64} becomes
 * binary); received values are compared as canonical JSON text (object keys sorted, binary as
 * {"$bytes": base64}), the scenario's expectations rendered the same way. Every client runs in
 * poll mode: its callbacks run on this thread only, inside polysio_client_poll, so the event
 * queues need no locks. */
#include <inttypes.h>
#include <poll.h>
#include "files.h"
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "polysio.h"

#define WAIT_MS 10000
#define MAX_CLIENTS 16

static long now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000L + t.tv_nsec / 1000000L;
}

static void *xalloc(size_t n) {
    void *p = calloc(1, n ? n : 1);
    if (!p) {
        perror("calloc");
        exit(2);
    }
    return p;
}

/* ---- growable strings ------------------------------------------------------------------- */

typedef struct {
    char *p;
    size_t n, cap;
} str;

static void s_add(str *s, const char *d, size_t n) {
    if (s->n + n + 1 > s->cap) {
        size_t cap = s->cap ? s->cap : 64;
        while (cap < s->n + n + 1) cap *= 2;
        char *p = realloc(s->p, cap);
        if (!p) {
            perror("realloc");
            exit(2);
        }
        s->p = p;
        s->cap = cap;
    }
    if (n) memcpy(s->p + s->n, d, n);
    s->n += n;
    s->p[s->n] = 0;
}

static void s_puts(str *s, const char *z) { s_add(s, z, strlen(z)); }

static void s_printf(str *s, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n <= 0) return;
    char *buf = xalloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(buf, (size_t)n + 1, fmt, ap);
    va_end(ap);
    s_add(s, buf, (size_t)n);
    free(buf);
}

static const char *s_str(const str *s) { return s->p ? s->p : ""; }

static void s_free(str *s) {
    free(s->p);
    *s = (str){0};
}

/* ---- JSON pointers (RFC 6901) ------------------------------------------------------------ */

/* base + "/" + key, with `~` as `~0` and `/` as `~1`. Free it with free(). */
static char *jp(const char *base, const char *key, size_t len) {
    str s = {0};
    s_puts(&s, base);
    s_add(&s, "/", 1);
    for (size_t i = 0; i < len; i++) {
        if (key[i] == '~')
            s_puts(&s, "~0");
        else if (key[i] == '/')
            s_puts(&s, "~1");
        else
            s_add(&s, key + i, 1);
    }
    return s.p;
}

static char *jpk(const char *base, const char *key) { return jp(base, key, strlen(key)); }

static char *jpi(const char *base, size_t i) {
    str s = {0};
    s_printf(&s, "%s/%zu", base, i);
    return s.p;
}

/* ---- base64 (the scenarios' {"$bytes": ...}) --------------------------------------------- */

static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static void b64_encode(str *out, const uint8_t *d, size_t n) {
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)d[i] << 16;
        if (i + 1 < n) v |= (uint32_t)d[i + 1] << 8;
        if (i + 2 < n) v |= d[i + 2];
        char q[4] = {B64[v >> 18 & 63], B64[v >> 12 & 63], i + 1 < n ? B64[v >> 6 & 63] : '=',
                     i + 2 < n ? B64[v & 63] : '='};
        s_add(out, q, 4);
    }
}

/* Decodes `n` characters of base64 (padding and anything else outside the alphabet skipped)
 * into a new buffer; `*len` gets its length. Free it with free(). */
static uint8_t *b64_decode(const char *s, size_t n, size_t *len) {
    uint8_t *out = xalloc(n / 4 * 3 + 3);
    uint32_t v = 0;
    int bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        const char *at = s[i] ? strchr(B64, s[i]) : NULL;
        if (!at) continue;
        v = v << 6 | (uint32_t)(at - B64);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (uint8_t)(v >> bits);
        }
    }
    *len = o;
    return out;
}

/* ---- canonical JSON text of a payload value ---------------------------------------------- */

static void quote(str *out, const char *d, size_t n) {
    s_add(out, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)d[i];
        if (ch == '"' || ch == '\\') {
            s_add(out, "\\", 1);
            s_add(out, d + i, 1);
        } else if (ch < 0x20) {
            s_printf(out, "\\u%04x", ch);
        } else {
            s_add(out, d + i, 1);
        }
    }
    s_add(out, "\"", 1);
}

typedef struct {
    const char *d;
    size_t n;
} key;

static int key_cmp(const void *a, const void *b) {
    const key *x = a, *y = b;
    int c = memcmp(x->d, y->d, x->n < y->n ? x->n : y->n);
    return c ? c : (x->n > y->n) - (x->n < y->n);
}

/* Appends the value at `ptr` of `p` as JSON: object keys sorted, binary as {"$bytes": base64},
 * so that equal values give equal text whichever side (received or scenario) they come from. */
static void render(str *out, const polysio_payload *p, const char *ptr) {
    polysio_value_type t;
    if (polysio_payload_type(p, ptr, &t) != POLYSIO_OK) {
        s_puts(out, "<missing>");
        return;
    }
    switch (t) {
    case POLYSIO_VALUE_NULL:
        s_puts(out, "null");
        break;
    case POLYSIO_VALUE_BOOL: {
        bool b = false;
        polysio_payload_get_bool(p, ptr, &b);
        s_puts(out, b ? "true" : "false");
        break;
    }
    case POLYSIO_VALUE_INT: {
        int64_t i = 0;
        polysio_payload_get_int(p, ptr, &i);
        s_printf(out, "%" PRId64, i);
        break;
    }
    case POLYSIO_VALUE_DOUBLE: {
        double d = 0;
        char buf[40];
        polysio_payload_get_double(p, ptr, &d);
        snprintf(buf, sizeof buf, "%.15g", d);
        if (strtod(buf, NULL) != d) snprintf(buf, sizeof buf, "%.17g", d);
        s_puts(out, buf);
        break;
    }
    case POLYSIO_VALUE_STRING: {
        const char *d = NULL;
        size_t n = 0;
        polysio_payload_get_string(p, ptr, &d, &n);
        quote(out, d, n);
        break;
    }
    case POLYSIO_VALUE_BINARY: {
        const uint8_t *d = NULL;
        size_t n = 0;
        polysio_payload_get_binary(p, ptr, &d, &n);
        s_puts(out, "{\"$bytes\":\"");
        b64_encode(out, d, n);
        s_puts(out, "\"}");
        break;
    }
    case POLYSIO_VALUE_ARRAY: {
        size_t n = 0;
        polysio_payload_get_length(p, ptr, &n);
        s_add(out, "[", 1);
        for (size_t i = 0; i < n; i++) {
            char *child = jpi(ptr, i);
            if (i) s_add(out, ",", 1);
            render(out, p, child);
            free(child);
        }
        s_add(out, "]", 1);
        break;
    }
    case POLYSIO_VALUE_OBJECT: {
        size_t n = 0;
        polysio_payload_get_length(p, ptr, &n);
        key *keys = xalloc(n * sizeof *keys);
        for (size_t i = 0; i < n; i++) polysio_payload_get_key(p, ptr, i, &keys[i].d, &keys[i].n);
        qsort(keys, n, sizeof *keys, key_cmp);
        s_add(out, "{", 1);
        for (size_t i = 0; i < n; i++) {
            char *child = jp(ptr, keys[i].d, keys[i].n);
            if (i) s_add(out, ",", 1);
            quote(out, keys[i].d, keys[i].n);
            s_add(out, ":", 1);
            render(out, p, child);
            free(child);
        }
        s_add(out, "}", 1);
        free(keys);
        break;
    }
    default:
        s_puts(out, "<unknown type>");
    }
}

/* ---- scenario values into payloads ------------------------------------------------------- */

/* Puts the scenario value at `src` of `doc` into `dst` at `at` (an argument index or a path
 * inside one), {"$bytes": base64} as binary. */
static polysio_result put(polysio_payload *dst, const char *at, const polysio_payload *doc, const char *src) {
    polysio_value_type t;
    polysio_result r = polysio_payload_type(doc, src, &t);
    if (r != POLYSIO_OK) return r;
    switch (t) {
    case POLYSIO_VALUE_NULL:
        return polysio_payload_set_json(dst, at, "null", 4);
    case POLYSIO_VALUE_BOOL: {
        bool b = false;
        if ((r = polysio_payload_get_bool(doc, src, &b)) != POLYSIO_OK) return r;
        return polysio_payload_set_bool(dst, at, b);
    }
    case POLYSIO_VALUE_INT: {
        int64_t i = 0;
        if ((r = polysio_payload_get_int(doc, src, &i)) != POLYSIO_OK) return r;
        return polysio_payload_set_int(dst, at, i);
    }
    case POLYSIO_VALUE_DOUBLE: {
        double d = 0;
        if ((r = polysio_payload_get_double(doc, src, &d)) != POLYSIO_OK) return r;
        return polysio_payload_set_double(dst, at, d);
    }
    case POLYSIO_VALUE_STRING: {
        const char *d = NULL;
        size_t n = 0;
        if ((r = polysio_payload_get_string(doc, src, &d, &n)) != POLYSIO_OK) return r;
        return polysio_payload_set_string(dst, at, d, n);
    }
    case POLYSIO_VALUE_BINARY: {
        const uint8_t *d = NULL;
        size_t n = 0;
        if ((r = polysio_payload_get_binary(doc, src, &d, &n)) != POLYSIO_OK) return r;
        return polysio_payload_set_binary(dst, at, d, n);
    }
    case POLYSIO_VALUE_ARRAY: {
        size_t n = 0;
        if ((r = polysio_payload_get_length(doc, src, &n)) != POLYSIO_OK) return r;
        if ((r = polysio_payload_set_json(dst, at, "[]", 2)) != POLYSIO_OK) return r;
        for (size_t i = 0; i < n && r == POLYSIO_OK; i++) {
            char *a = jpi(at, i), *s = jpi(src, i); /* index == length appends */
            r = put(dst, a, doc, s);
            free(a);
            free(s);
        }
        return r;
    }
    case POLYSIO_VALUE_OBJECT: {
        size_t n = 0;
        const char *k = NULL;
        size_t kn = 0;
        if ((r = polysio_payload_get_length(doc, src, &n)) != POLYSIO_OK) return r;
        if (n == 1 && polysio_payload_get_key(doc, src, 0, &k, &kn) == POLYSIO_OK && kn == 6 &&
            memcmp(k, "$bytes", 6) == 0) {
            char *s = jpk(src, "$bytes");
            const char *b64 = NULL;
            size_t bn = 0;
            r = polysio_payload_get_string(doc, s, &b64, &bn);
            free(s);
            if (r != POLYSIO_OK) return r;
            size_t len = 0;
            uint8_t *bytes = b64_decode(b64, bn, &len);
            r = polysio_payload_set_binary(dst, at, bytes, len);
            free(bytes);
            return r;
        }
        if ((r = polysio_payload_set_json(dst, at, "{}", 2)) != POLYSIO_OK) return r;
        for (size_t i = 0; i < n && r == POLYSIO_OK; i++) {
            if ((r = polysio_payload_get_key(doc, src, i, &k, &kn)) != POLYSIO_OK) break;
            char *a = jp(at, k, kn), *s = jp(src, k, kn);
            r = put(dst, a, doc, s);
            free(a);
            free(s);
        }
        return r;
    }
    default:
        return POLYSIO_ERR_WRONG_TYPE;
    }
}

/* The arguments listed at `src` (a JSON array; missing: none) as a new payload. */
static polysio_result args_of(const polysio_payload *doc, const char *src, polysio_payload **out) {
    polysio_payload *p = NULL;
    size_t n = 0;
    polysio_result r = polysio_payload_new(&p);
    if (r != POLYSIO_OK) return r;
    if (polysio_payload_get_length(doc, src, &n) != POLYSIO_OK) n = 0;
    for (size_t i = 0; i < n && r == POLYSIO_OK; i++) {
        char *a = jpi("", i), *s = jpi(src, i);
        r = put(p, a, doc, s);
        free(a);
        free(s);
    }
    if (r != POLYSIO_OK) {
        polysio_payload_free(p);
        return r;
    }
    *out = p;
    return POLYSIO_OK;
}

/* ---- clients and what they received ------------------------------------------------------ */

typedef struct event {
    char *name;
    polysio_payload *args; /* owned copy */
    polysio_ack *ack;      /* owned clone, NULL when no ack was asked for */
    struct event *next;
} event;

typedef struct {
    char name[32];
    polysio_client *c;
    polysio_client_socket *s;
    int fd;
    event *head, **tail;
} client;

static void event_free(event *e) {
    if (!e) return;
    polysio_payload_free(e->args);
    if (e->ack) polysio_ack_free(e->ack);
    free(e->name);
    free(e);
}

/* Every event of a socket, reserved ones included, queued in order (poll mode: this thread). */
static void on_event(void *ud, polysio_client_socket *s, const char *name, const polysio_payload *args,
                     polysio_ack *ack) {
    (void)s;
    client *c = ud;
    event *e = xalloc(sizeof *e);
    e->name = strdup(name);
    if (!args || polysio_payload_clone(args, &e->args) != POLYSIO_OK) polysio_payload_new(&e->args);
    if (ack) polysio_ack_clone(ack, &e->ack);
    *c->tail = e;
    c->tail = &e->next;
}

/* Runs the client's queued callbacks, waiting at most `ms` for some. */
static void pump(client *c, long ms) {
    if (ms > 0) {
        struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
        poll(&pfd, 1, (int)(ms > 100 ? 100 : ms));
    }
    polysio_client_poll(c->c, NULL);
}

/* The next unconsumed event named `name` within `within` ms (NULL if none); free it with
 * event_free. */
static event *next(client *c, const char *name, long within) {
    long deadline = now_ms() + within;
    for (;;) {
        pump(c, 0);
        for (event **pe = &c->head; *pe; pe = &(*pe)->next) {
            if (strcmp((*pe)->name, name) == 0) {
                event *e = *pe;
                *pe = e->next;
                if (c->tail == &e->next) c->tail = pe;
                e->next = NULL;
                return e;
            }
        }
        long left = deadline - now_ms();
        if (left <= 0) return NULL;
        pump(c, left);
    }
}

static void client_free(client *c) {
    if (c->c) polysio_client_free(c->c);
    while (c->head) {
        event *e = c->head;
        c->head = e->next;
        event_free(e);
    }
    free(c);
}

/* ---- steps ------------------------------------------------------------------------------- */

typedef struct {
    const char *url;
    const polysio_payload *doc;
    client *clients[MAX_CLIENTS];
    size_t n;
} scenario;

/* The string member `key` of the step at `sp` ("" when missing). */
static const char *sget(const polysio_payload *doc, const char *sp, const char *k) {
    char *p = jpk(sp, k);
    const char *s = NULL;
    if (polysio_payload_get_string(doc, p, &s, NULL) != POLYSIO_OK) s = "";
    free(p);
    return s;
}

static bool has(const polysio_payload *doc, const char *sp, const char *k) {
    char *p = jpk(sp, k);
    polysio_value_type t;
    bool ok = polysio_payload_type(doc, p, &t) == POLYSIO_OK && t != POLYSIO_VALUE_NULL;
    free(p);
    return ok;
}

/* The member `key` of the step at `sp`, rendered as canonical JSON. */
static void srender(str *out, const polysio_payload *doc, const char *sp, const char *k) {
    char *p = jpk(sp, k);
    render(out, doc, p);
    free(p);
}

static bool api_failed(str *why, const char *what, polysio_result r) {
    char msg[512];
    polysio_last_error(msg, sizeof msg);
    s_printf(why, "%s: %s: %s", what, polysio_result_name(r), msg);
    return false;
}

#define TRY(expr)                                                                                  \
    do {                                                                                           \
        polysio_result r_ = (expr);                                                                \
        if (r_ != POLYSIO_OK) return api_failed(why, #expr, r_);                                   \
    } while (0)

/* Compares received `got` (a payload's arguments) with the scenario's `want` at sp/key. */
static bool same(str *why, const char *what, const polysio_payload *got, const polysio_payload *doc,
                 const char *sp, const char *k) {
    str g = {0}, w = {0};
    render(&g, got, "");
    srender(&w, doc, sp, k);
    bool ok = strcmp(s_str(&g), s_str(&w)) == 0;
    if (!ok) s_printf(why, "%s: got %s, expected %s", what, s_str(&g), s_str(&w));
    s_free(&g);
    s_free(&w);
    return ok;
}

static bool open_client(scenario *sc, const char *sp, bool reconnection, client **out, str *why) {
    const polysio_payload *doc = sc->doc;
    if (sc->n == MAX_CLIENTS) {
        s_puts(why, "too many clients");
        return false;
    }
    polysio_client_options *o = NULL;
    TRY(polysio_client_options_new(&o));
    client *c = xalloc(sizeof *c);
    c->tail = &c->head;
    snprintf(c->name, sizeof c->name, "%s", sget(doc, sp, "client"));
    sc->clients[sc->n++] = c; /* freed with the scenario, whatever happens next */
    TRY(polysio_client_options_set_dispatch(o, POLYSIO_DISPATCH_POLL));
    TRY(polysio_client_options_set_reconnection(o, reconnection, 0));
    TRY(polysio_client_options_set_reconnection_delay(o, 500, 2000, 0.5));
    if (has(doc, sp, "transports")) {
        char *tp = jpk(sp, "transports");
        size_t n = 0;
        uint32_t mask = 0;
        polysio_payload_get_length(doc, tp, &n);
        for (size_t i = 0; i < n; i++) {
            char *p = jpi(tp, i);
            const char *t = "";
            polysio_payload_get_string(doc, p, &t, NULL);
            mask |= strcmp(t, "websocket") == 0 ? POLYSIO_TRANSPORT_WEBSOCKET : POLYSIO_TRANSPORT_POLLING;
            free(p);
        }
        free(tp);
        TRY(polysio_client_options_set_transports(o, mask, true));
    }
    if (has(doc, sp, "auth")) {
        str auth = {0};
        srender(&auth, doc, sp, "auth");
        polysio_result r = polysio_client_options_set_auth(o, auth.p, auth.n);
        s_free(&auth);
        TRY(r);
    }
    /* tests/run-client's TLS hook: trust POLYSIO_TEST_CA_FILE besides the system's roots */
    const char *ca_path = getenv("POLYSIO_TEST_CA_FILE");
    if (ca_path && *ca_path) {
        size_t ca_len = 0;
        char *ca = read_file(ca_path, &ca_len);
        if (!ca) {
            polysio_client_options_free(o);
            s_puts(why, "cannot read POLYSIO_TEST_CA_FILE");
            return false;
        }
        polysio_result rc = polysio_client_options_set_tls_ca_pem(o, (const uint8_t *)ca, ca_len);
        free(ca);
        TRY(rc);
    }
    polysio_result r = polysio_client_new(sc->url, o, &c->c);
    polysio_client_options_free(o);
    TRY(r);
    TRY(polysio_client_event_fd(c->c, &c->fd));
    TRY(polysio_client_of(c->c, sget(doc, sp, "nsp"), &c->s));
    TRY(polysio_client_socket_on(c->s, "connect", on_event, c));
    TRY(polysio_client_socket_on(c->s, "connect_error", on_event, c));
    TRY(polysio_client_socket_on(c->s, "disconnect", on_event, c));
    TRY(polysio_client_socket_on_any(c->s, on_event, c));
    TRY(polysio_client_socket_connect(c->s));
    *out = c;
    return true;
}

static bool expect(client *c, const char *name, event **out, str *why) {
    *out = next(c, name, WAIT_MS);
    if (!*out) s_printf(why, "no \"%s\" event within %d ms", name, WAIT_MS);
    return *out != NULL;
}

typedef struct {
    bool done;
    polysio_result r;
    polysio_payload *args;
} ack_wait;

static void on_ack(void *ud, polysio_result r, const polysio_payload *args) {
    ack_wait *w = ud;
    w->r = r;
    if (args) polysio_payload_clone(args, &w->args);
    w->done = true;
}

static const char *transport_name(uint32_t t) {
    return t == POLYSIO_TRANSPORT_POLLING ? "polling" : t == POLYSIO_TRANSPORT_WEBSOCKET ? "websocket" : "none";
}

static bool connect_step(scenario *sc, const char *sp, bool refused, str *why) {
    client *c = NULL;
    event *e = NULL;
    if (!open_client(sc, sp, !refused, &c, why)) return false;
    if (!refused) {
        bool ok = expect(c, "connect", &e, why);
        event_free(e);
        return ok;
    }
    if (!expect(c, "connect_error", &e, why)) return false;
    /* {message, data (when the scenario expects some)}, keys sorted as render() sorts them */
    str got = {0};
    s_puts(&got, "{");
    char *errp = jpk(sp, "error");
    bool with_data = has(sc->doc, errp, "data");
    free(errp);
    if (with_data) {
        s_puts(&got, "\"data\":");
        render(&got, e->args, "/0/data");
        s_puts(&got, ",");
    }
    s_puts(&got, "\"message\":");
    render(&got, e->args, "/0/message");
    s_puts(&got, "}");
    str want = {0};
    srender(&want, sc->doc, sp, "error");
    bool ok = strcmp(s_str(&got), s_str(&want)) == 0;
    if (!ok) s_printf(why, "connect_error: got %s, expected %s", s_str(&got), s_str(&want));
    s_free(&got);
    s_free(&want);
    event_free(e);
    return ok;
}

static bool step(scenario *sc, const char *sp, str *why) {
    const polysio_payload *doc = sc->doc;
    const char *op = sget(doc, sp, "op");
    if (strcmp(op, "connect") == 0 || strcmp(op, "connect_refused") == 0)
        return connect_step(sc, sp, strcmp(op, "connect_refused") == 0, why);
    if (strcmp(op, "restart_server") == 0) {
        char line[64];
        printf("@@restart-server\n");
        fflush(stdout);
        if (!fgets(line, sizeof line, stdin) || !line[0]) {
            s_puts(why, "no answer from the runner on stdin");
            return false;
        }
        return true;
    }
    const char *name = sget(doc, sp, "client");
    client *c = NULL;
    for (size_t i = sc->n; i-- > 0 && !c;)
        if (strcmp(sc->clients[i]->name, name) == 0) c = sc->clients[i];
    if (!c || !c->s) {
        s_printf(why, "unknown client \"%s\"", name);
        return false;
    }
    const char *ev = sget(doc, sp, "event");
    char *p = NULL;
    event *e = NULL;
    bool ok = true;

    if (strcmp(op, "emit") == 0) {
        polysio_payload *args = NULL;
        p = jpk(sp, "args");
        polysio_result r = args_of(doc, p, &args);
        free(p);
        TRY(r);
        r = polysio_client_socket_emit(c->s, ev, args);
        polysio_payload_free(args);
        TRY(r);
    } else if (strcmp(op, "emit_large") == 0) {
        int64_t n = 0;
        p = jpk(sp, "bytes");
        polysio_payload_get_int(doc, p, &n);
        free(p);
        char *big = xalloc((size_t)n + 1);
        memset(big, 'x', (size_t)n);
        polysio_payload *args = NULL;
        polysio_result r = polysio_payload_new(&args);
        if (r == POLYSIO_OK) r = polysio_payload_push_string(args, big, (size_t)n);
        if (r == POLYSIO_OK) r = polysio_client_socket_emit(c->s, ev, args);
        polysio_payload_free(args);
        free(big);
        TRY(r);
    } else if (strcmp(op, "expect") == 0) {
        ok = expect(c, ev, &e, why) && same(why, ev, e->args, doc, sp, "args");
    } else if (strcmp(op, "expect_none") == 0) {
        int64_t ms = 300;
        p = jpk(sp, "ms");
        polysio_payload_get_int(doc, p, &ms);
        free(p);
        if ((e = next(c, ev, (long)ms))) {
            str got = {0};
            render(&got, e->args, "");
            s_printf(why, "unexpected \"%s\" %s", ev, s_str(&got));
            s_free(&got);
            ok = false;
        }
    } else if (strcmp(op, "call") == 0) {
        polysio_payload *args = NULL;
        p = jpk(sp, "args");
        polysio_result r = args_of(doc, p, &args);
        free(p);
        TRY(r);
        /* heap: should the answer never come, a late callback must not write into a dead frame */
        ack_wait *w = xalloc(sizeof *w);
        r = polysio_client_socket_emit_with_ack(c->s, ev, args, WAIT_MS, on_ack, w);
        polysio_payload_free(args);
        if (r != POLYSIO_OK) {
            free(w);
            TRY(r);
        }
        long deadline = now_ms() + WAIT_MS + 5000;
        while (!w->done && now_ms() < deadline) pump(c, deadline - now_ms());
        if (!w->done) {
            s_printf(why, "ack of \"%s\": no answer, not even a timeout", ev);
            return false; /* w stays allocated: the callback may still run */
        }
        if (w->r != POLYSIO_OK) {
            s_printf(why, "ack of \"%s\": %s", ev, polysio_result_name(w->r));
            ok = false;
        } else {
            str what = {0};
            s_printf(&what, "ack of \"%s\"", ev);
            ok = same(why, s_str(&what), w->args, doc, sp, "reply");
            s_free(&what);
        }
        if (w->args) polysio_payload_free(w->args);
        free(w);
    } else if (strcmp(op, "answer") == 0) {
        ok = expect(c, ev, &e, why) && same(why, ev, e->args, doc, sp, "args");
        if (ok && !e->ack) {
            s_printf(why, "\"%s\" did not ask for an ack", ev);
            ok = false;
        }
        if (ok) {
            polysio_payload *reply = NULL;
            p = jpk(sp, "reply");
            polysio_result r = args_of(doc, p, &reply);
            free(p);
            if (r == POLYSIO_OK) {
                r = polysio_ack_send(e->ack, reply);
                polysio_payload_free(reply);
            }
            if (r != POLYSIO_OK) ok = api_failed(why, "polysio_ack_send", r);
        }
    } else if (strcmp(op, "expect_transport") == 0) {
        const char *want = sget(doc, sp, "transport");
        long deadline = now_ms() + WAIT_MS;
        for (;;) {
            uint32_t t = 0;
            TRY(polysio_client_transport(c->c, &t));
            if (strcmp(transport_name(t), want) == 0) break;
            if (now_ms() >= deadline) {
                s_printf(why, "transport %s, expected %s", transport_name(t), want);
                ok = false;
                break;
            }
            pump(c, 10);
        }
    } else if (strcmp(op, "disconnect") == 0) {
        TRY(polysio_client_socket_disconnect(c->s));
    } else if (strcmp(op, "expect_disconnect") == 0) {
        if (!expect(c, "disconnect", &e, why)) return false;
        const char *reason = "";
        polysio_payload_get_string(e->args, "/0", &reason, NULL);
        p = jpk(sp, "reasons");
        size_t n = 0;
        polysio_payload_get_length(doc, p, &n);
        ok = false;
        for (size_t i = 0; i < n && !ok; i++) {
            char *rp = jpi(p, i);
            const char *r = "";
            polysio_payload_get_string(doc, rp, &r, NULL);
            ok = strcmp(r, reason) == 0;
            free(rp);
        }
        free(p);
        if (!ok) {
            str want = {0};
            srender(&want, doc, sp, "reasons");
            s_printf(why, "disconnect reason \"%s\", expected one of %s", reason, s_str(&want));
            s_free(&want);
        }
    } else if (strcmp(op, "expect_connect") == 0) {
        ok = expect(c, "connect", &e, why);
    } else {
        s_printf(why, "unknown op \"%s\"", op);
        ok = false;
    }
    event_free(e);
    return ok;
}

/* Runs the steps at `scp`; true if all passed, else `why` says what differed. */
static bool run_scenario(const char *url, const polysio_payload *doc, const char *scp, str *why) {
    scenario sc = {.url = url, .doc = doc};
    size_t n = 0;
    bool ok = true;
    polysio_payload_get_length(doc, scp, &n);
    for (size_t i = 0; i < n && ok; i++) {
        char *sp = jpi(scp, i);
        str what = {0};
        if (!step(&sc, sp, &what)) {
            s_printf(why, "step %zu (%s): %s", i + 1, sget(doc, sp, "op"), s_str(&what));
            ok = false;
        }
        s_free(&what);
        free(sp);
    }
    for (size_t i = 0; i < sc.n; i++) client_free(sc.clients[i]);
    return ok;
}

static char *read_as_array(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    str s = {0};
    char buf[8192];
    size_t n;
    s_add(&s, "[", 1); /* the payload parser wants an array: the file becomes argument 0 */
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) s_add(&s, buf, n);
    fclose(f);
    s_add(&s, "]", 1);
    *len = s.n;
    return s.p;
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: matrix_client URL SCENARIO|all SCENARIOS_JSON\n");
        return 2;
    }
    const char *url = argv[1], *which = argv[2];
    size_t len = 0;
    char *text = read_as_array(argv[3], &len);
    if (!text) {
        perror(argv[3]);
        return 2;
    }
    polysio_payload *doc = NULL;
    polysio_result r = polysio_payload_from_json(text, len, NULL, 0, &doc);
    free(text);
    if (r != POLYSIO_OK) {
        char msg[512];
        polysio_last_error(msg, sizeof msg);
        fprintf(stderr, "%s: %s\n", argv[3], msg);
        return 2;
    }
    size_t count = 0, ran = 0;
    bool all_ok = true;
    polysio_payload_get_length(doc, "/0", &count);
    for (size_t i = 0; i < count; i++) {
        const char *k = NULL;
        size_t kn = 0;
        polysio_payload_get_key(doc, "/0", i, &k, &kn);
        char name[128];
        snprintf(name, sizeof name, "%.*s", (int)kn, k);
        if (strcmp(which, "all") != 0 && strcmp(which, name) != 0) continue;
        ran++;
        char *scp = jp("/0", k, kn);
        str why = {0};
        if (run_scenario(url, doc, scp, &why)) {
            printf("PASS %s\n", name);
        } else {
            for (char *q = why.p; q && *q; q++)
                if (*q == '\n' || *q == '\r') *q = ' ';
            printf("FAIL %s: %s\n", name, s_str(&why));
            all_ok = false;
        }
        fflush(stdout);
        s_free(&why);
        free(scp);
    }
    polysio_payload_free(doc);
    if (ran == 0) {
        fprintf(stderr, "no scenario named \"%s\"\n", which);
        return 1;
    }
    if (polysio_handle_count() != 0) {
        fprintf(stderr, "%zu polysio handles still alive at exit\n", polysio_handle_count());
        return 1;
    }
    return all_ok ? 0 : 1;
}
