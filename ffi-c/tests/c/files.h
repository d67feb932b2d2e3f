/* Reading a whole file (the PEM certificates of the TLS tests and hooks). */
#ifndef POLYSIO_TEST_FILES_H
#define POLYSIO_TEST_FILES_H

#include <stdio.h>
#include <stdlib.h>

/* The bytes of `path` (NUL-terminated, `*len` without the NUL; free() them), or NULL. */
static inline char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = NULL;
    long n = -1;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
        (buf = malloc((size_t)n + 1)) != NULL && fread(buf, 1, (size_t)n, f) == (size_t)n) {
        buf[n] = 0;
        *len = (size_t)n;
    } else {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    return buf;
}

#endif
