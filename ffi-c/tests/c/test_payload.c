/* Payloads: building, reading, the wire form (JSON + attachments) and its errors. No network. */
#include "check.h"

static void builder_and_getters(void) {
    polysio_payload *p = NULL;
    OK(polysio_payload_new(&p));
    OK(polysio_payload_push_string(p, "héllo", strlen("héllo")));
    OK(polysio_payload_push_int(p, -42));
    OK(polysio_payload_push_double(p, 2.5));
    OK(polysio_payload_push_bool(p, true));
    OK(polysio_payload_push_null(p));
    const uint8_t bin[] = {0, 1, 2, 255};
    OK(polysio_payload_push_binary(p, bin, sizeof bin));
    const char *obj = "{\"name\":\"a/b\",\"list\":[1,\"x\"],\"nested\":{\"k~\":true}}";
    OK(polysio_payload_push_json(p, obj, strlen(obj)));
    const uint8_t pic[] = {9, 8, 7};
    OK(polysio_payload_set_binary(p, "/6/pic", pic, sizeof pic));
    OK(polysio_payload_set_binary(p, "/6/list/-", pic, 1));

    size_t n = 0;
    OK(polysio_payload_count(p, &n));
    CHECK(n == 7);

    const char *s = NULL;
    size_t len = 0;
    OK(polysio_payload_get_string(p, "/0", &s, &len));
    CHECK(len == strlen("héllo") && memcmp(s, "héllo", len) == 0);
    STREQ(s, "héllo"); /* NUL-terminated too */
    int64_t i = 0;
    OK(polysio_payload_get_int(p, "/1", &i));
    CHECK(i == -42);
    double d = 0;
    OK(polysio_payload_get_double(p, "/2", &d));
    CHECK(d == 2.5);
    OK(polysio_payload_get_double(p, "/1", &d)); /* integers read as doubles */
    CHECK(d == -42.0);
    bool b = false;
    OK(polysio_payload_get_bool(p, "/3", &b));
    CHECK(b);
    polysio_value_type t;
    OK(polysio_payload_type(p, "/4", &t));
    CHECK(t == POLYSIO_VALUE_NULL);
    OK(polysio_payload_type(p, "", &t));
    CHECK(t == POLYSIO_VALUE_ARRAY);
    const uint8_t *data = NULL;
    OK(polysio_payload_get_binary(p, "/5", &data, &len));
    CHECK(len == 4 && memcmp(data, bin, 4) == 0);
    OK(polysio_payload_get_string(p, "/6/name", &s, NULL));
    STREQ(s, "a/b");
    OK(polysio_payload_get_string(p, "/6/list/1", &s, NULL));
    STREQ(s, "x");
    OK(polysio_payload_get_bool(p, "/6/nested/k~0", &b)); /* RFC 6901 escape of ~ */
    CHECK(b);
    OK(polysio_payload_get_binary(p, "/6/pic", &data, &len));
    CHECK(len == 3 && data[0] == 9);
    OK(polysio_payload_get_binary(p, "/6/list/2", &data, &len));
    CHECK(len == 1 && data[0] == 9);
    OK(polysio_payload_get_length(p, "/6", &len));
    CHECK(len == 4);
    OK(polysio_payload_get_length(p, "/6/list", &len));
    CHECK(len == 3);
    OK(polysio_payload_get_key(p, "/6", 3, &s, &len));
    CHECK(len == 3 && memcmp(s, "pic", 3) == 0);

    /* the wire form numbers the attachments in order */
    const char *json = NULL;
    size_t json_len = 0;
    OK(polysio_payload_to_json(p, &json, &json_len));
    CHECK(strlen(json) == json_len);
    STREQ(json,
          "[\"héllo\",-42,2.5,true,null,{\"_placeholder\":true,\"num\":0},"
          "{\"name\":\"a/b\",\"list\":[1,\"x\",{\"_placeholder\":true,\"num\":1}],"
          "\"nested\":{\"k~\":true},\"pic\":{\"_placeholder\":true,\"num\":2}}]");
    OK(polysio_payload_attachment_count(p, &n));
    CHECK(n == 3);
    OK(polysio_payload_attachment(p, 2, &data, &len));
    CHECK(len == 3 && data[2] == 7);
    ERR(polysio_payload_attachment(p, 3, &data, &len), POLYSIO_ERR_NOT_FOUND);

    /* and parses back to the same thing */
    polysio_buffer atts[3];
    for (size_t k = 0; k < 3; k++) OK(polysio_payload_attachment(p, k, &atts[k].data, &atts[k].len));
    polysio_payload *q = NULL;
    OK(polysio_payload_from_json(json, json_len, atts, 3, &q));
    const char *json2 = NULL;
    size_t len2 = 0;
    OK(polysio_payload_to_json(q, &json2, &len2));
    CHECK(json_len == len2 && memcmp(json, json2, len2) == 0);
    OK(polysio_payload_get_binary(q, "/6/pic", &data, &len));
    CHECK(len == 3 && data[1] == 8);

    /* forwarding values between payloads keeps binary */
    polysio_payload *r = NULL;
    OK(polysio_payload_new(&r));
    OK(polysio_payload_push_value(r, q, "/6/list"));
    OK(polysio_payload_push_value(r, r, "/0/2")); /* from itself */
    OK(polysio_payload_get_binary(r, "/1", &data, &len));
    CHECK(len == 1 && data[0] == 9);

    /* clone makes an independent copy */
    polysio_payload *c = NULL;
    OK(polysio_payload_clone(r, &c));
    OK(polysio_payload_push_int(c, 1));
    OK(polysio_payload_count(r, &n));
    CHECK(n == 2);
    OK(polysio_payload_count(c, &n));
    CHECK(n == 3);

    OK(polysio_payload_free(p));
    OK(polysio_payload_free(q));
    OK(polysio_payload_free(r));
    OK(polysio_payload_free(c));
}

static void errors(void) {
    polysio_payload *p = NULL;
    const char *bad_json = "[1, 2";
    ERR(polysio_payload_from_json(bad_json, strlen(bad_json), NULL, 0, &p), POLYSIO_ERR_INVALID_JSON);
    const char not_utf8[] = {'[', '"', (char)0xff, '"', ']'};
    ERR(polysio_payload_from_json(not_utf8, sizeof not_utf8, NULL, 0, &p), POLYSIO_ERR_INVALID_UTF8);
    const char *obj = "{\"a\":1}";
    ERR(polysio_payload_from_json(obj, strlen(obj), NULL, 0, &p), POLYSIO_ERR_INVALID_ARGUMENT);
    const char *ph = "[{\"_placeholder\":true,\"num\":1}]";
    polysio_buffer one = {(const uint8_t *)"x", 1};
    ERR(polysio_payload_from_json(ph, strlen(ph), &one, 1, &p), POLYSIO_ERR_INVALID_ARGUMENT);
    ERR(polysio_payload_from_json(ph, strlen(ph), NULL, 0, &p), POLYSIO_ERR_INVALID_ARGUMENT);
    const char *neg = "[{\"_placeholder\":true,\"num\":-1}]";
    ERR(polysio_payload_from_json(neg, strlen(neg), &one, 1, &p), POLYSIO_ERR_INVALID_ARGUMENT);
    ERR(polysio_payload_from_json(ph, strlen(ph), NULL, 2, &p), POLYSIO_ERR_NULL_ARGUMENT);
    polysio_buffer null_buf = {NULL, 3};
    const char *ph0 = "[{\"_placeholder\":true,\"num\":0}]";
    ERR(polysio_payload_from_json(ph0, strlen(ph0), &null_buf, 1, &p), POLYSIO_ERR_NULL_ARGUMENT);
    ERR(polysio_payload_from_json(NULL, 3, NULL, 0, &p), POLYSIO_ERR_NULL_ARGUMENT);
    ERR(polysio_payload_from_json("[]", 2, NULL, 0, NULL), POLYSIO_ERR_NULL_ARGUMENT);
    CHECK(p == NULL); /* out-parameters are only written on success */
    /* a deeply nested document is an error, not a stack overflow */
    size_t depth = 100000;
    char *deep = malloc(2 * depth);
    memset(deep, '[', depth);
    memset(deep + depth, ']', depth);
    ERR(polysio_payload_from_json(deep, 2 * depth, NULL, 0, &p), POLYSIO_ERR_INVALID_JSON);
    free(deep);

    OK(polysio_payload_new(&p));
    ERR(polysio_payload_push_string(p, not_utf8, sizeof not_utf8), POLYSIO_ERR_INVALID_UTF8);
    ERR(polysio_payload_push_json(p, bad_json, strlen(bad_json)), POLYSIO_ERR_INVALID_JSON);
    ERR(polysio_payload_push_binary(p, NULL, 1), POLYSIO_ERR_NULL_ARGUMENT);
    OK(polysio_payload_push_binary(p, NULL, 0)); /* empty binary is fine */
    OK(polysio_payload_push_json(p, "{\"k\":[1]}", 9));
    int64_t i;
    const char *s;
    ERR(polysio_payload_get_int(p, "/9", &i), POLYSIO_ERR_NOT_FOUND);
    ERR(polysio_payload_get_int(p, "/1/k/5", &i), POLYSIO_ERR_NOT_FOUND);
    ERR(polysio_payload_get_int(p, "/01", &i), POLYSIO_ERR_NOT_FOUND);
    ERR(polysio_payload_get_int(p, "1", &i), POLYSIO_ERR_INVALID_ARGUMENT);
    ERR(polysio_payload_get_string(p, "/1/k", &s, NULL), POLYSIO_ERR_WRONG_TYPE);
    ERR(polysio_payload_get_int(p, "/0", &i), POLYSIO_ERR_WRONG_TYPE);
    ERR(polysio_payload_get_int(p, NULL, &i), POLYSIO_ERR_NULL_ARGUMENT);
    ERR(polysio_payload_get_int(p, "/1/k/0", NULL), POLYSIO_ERR_NULL_ARGUMENT);
    ERR(polysio_payload_set_binary(p, "", (const uint8_t *)"x", 1), POLYSIO_ERR_INVALID_ARGUMENT);
    ERR(polysio_payload_set_binary(p, "/1/k/0/deeper", (const uint8_t *)"x", 1), POLYSIO_ERR_WRONG_TYPE);
    ERR(polysio_payload_set_binary(p, "/7/x", (const uint8_t *)"x", 1), POLYSIO_ERR_NOT_FOUND);
    ERR(polysio_payload_push_value(p, p, "/5"), POLYSIO_ERR_NOT_FOUND);
    const char bad_ptr[] = {'/', (char)0xc3, 0};
    ERR(polysio_payload_get_int(p, bad_ptr, &i), POLYSIO_ERR_INVALID_UTF8);
    OK(polysio_payload_free(p));
    ERR(polysio_payload_free(p), POLYSIO_ERR_CLOSED);          /* double free */
    ERR(polysio_payload_push_int(p, 1), POLYSIO_ERR_CLOSED);   /* use after free */
    ERR(polysio_payload_free(NULL), POLYSIO_ERR_NULL_ARGUMENT);
}

int main(void) {
    builder_and_getters();
    errors();
    CHECK(polysio_handle_count() == 0);
    printf("test_payload: ok\n");
    return 0;
}
