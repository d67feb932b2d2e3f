// polysio.h from C++ (g++ -std=c++17 -Wall -Wextra -Werror -pedantic): a server and a client in
// one process, captureless lambdas as callbacks, binary payloads and acks both ways.
#include <polysio.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>

#define OK(expr)                                                                  \
    do {                                                                          \
        polysio_result r_ = (expr);                                               \
        if (r_ != POLYSIO_OK) {                                                   \
            char m_[512];                                                         \
            polysio_last_error(m_, sizeof m_);                                    \
            std::fprintf(stderr, "%s:%d: %s -> %s: %s\n", __FILE__, __LINE__,     \
                         #expr, polysio_result_name(r_), m_);                     \
            std::exit(1);                                                         \
        }                                                                         \
    } while (0)

#define CHECK(cond)                                                               \
    do {                                                                          \
        if (!(cond)) {                                                            \
            std::fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
            std::exit(1);                                                         \
        }                                                                         \
    } while (0)

namespace {
std::atomic<int> acked{0};
std::string reply;

template <class F>
void wait_until(F cond) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (!cond()) {
        CHECK(std::chrono::steady_clock::now() < deadline);
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
}
}  // namespace

int main() {
    polysio_server *server = nullptr;
    OK(polysio_server_new(nullptr, &server));
    polysio_namespace *nsp = nullptr;
    OK(polysio_server_of(server, "/", &nsp));
    // Acks every "double" with twice its number and the binary it got, reversed.
    OK(polysio_namespace_on(
        nsp, "double",
        [](void *, polysio_socket *, const char *, const polysio_payload *args, polysio_ack *ack) {
            int64_t n = 0;
            const uint8_t *bin = nullptr;
            size_t len = 0;
            OK(polysio_payload_get_int(args, "/0", &n));
            OK(polysio_payload_get_binary(args, "/1", &bin, &len));
            std::string rev(reinterpret_cast<const char *>(bin), len);
            rev = std::string(rev.rbegin(), rev.rend());
            polysio_payload *p = nullptr;
            OK(polysio_payload_new(&p));
            OK(polysio_payload_push_int(p, n * 2));
            OK(polysio_payload_push_binary(p, reinterpret_cast<const uint8_t *>(rev.data()), rev.size()));
            OK(polysio_ack_send(ack, p));
            OK(polysio_payload_free(p));
        },
        nullptr));
    uint16_t port = 0;
    OK(polysio_server_listen(server, "127.0.0.1", 0, &port));

    polysio_client *client = nullptr;
    std::string url = "http://127.0.0.1:" + std::to_string(port);
    OK(polysio_client_new(url.c_str(), nullptr, &client));
    polysio_client_socket *socket = nullptr;
    OK(polysio_client_of(client, "/", &socket));
    OK(polysio_client_socket_connect(socket));

    polysio_payload *args = nullptr;
    OK(polysio_payload_new(&args));
    OK(polysio_payload_push_int(args, 21));
    const uint8_t bin[] = {1, 2, 3};
    OK(polysio_payload_push_binary(args, bin, sizeof bin));
    OK(polysio_client_socket_emit_with_ack(
        socket, "double", args, 10000,
        [](void *, polysio_result r, const polysio_payload *reply_args) {
            OK(r);
            int64_t n = 0;
            const uint8_t *b = nullptr;
            size_t len = 0;
            OK(polysio_payload_get_int(reply_args, "/0", &n));
            OK(polysio_payload_get_binary(reply_args, "/1", &b, &len));
            reply = std::to_string(n) + ":" + std::to_string(len == 3 ? b[0] * 100 + b[1] * 10 + b[2] : -1);
            acked = 1;
        },
        nullptr));
    OK(polysio_payload_free(args));
    wait_until([] { return acked.load() == 1; });
    CHECK(reply == "42:321");

    OK(polysio_client_free(client));
    OK(polysio_server_free(server));
    CHECK(polysio_handle_count() == 0);
    std::printf("test_cpp: ok\n");
    return 0;
}
