// A chat client in C++ for the chat demo (ffi-c/examples/chat_server.c or
// core/examples/chat.rs): joins a room, sends each line typed on stdin, prints the room's chat.
//
// Callbacks run on the library's threads (the default dispatch mode), so the state they share
// with main() is guarded by a mutex. polysio.h is a C header; the few RAII helpers below are
// all a C++ program needs.
//
// Build and run (see ffi-c/README.md):
//   c++ -std=c++17 -o chat_client ffi-c/examples/chat_client.cpp $(pkg-config --cflags --libs polysio)
//   ./chat_client http://127.0.0.1:3000 alice lobby
//   ./chat_client http://127.0.0.1:3000 bob lobby --once "hello"   # send one line, wait for it, exit

#include <polysio.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>

namespace {

// Throws with the library's message when a call fails.
void check(polysio_result r, const char *what) {
    if (r != POLYSIO_OK) {
        char msg[256];
        polysio_last_error(msg, sizeof msg);
        throw std::runtime_error(std::string(what) + ": " + msg + " (" + polysio_result_name(r) + ")");
    }
}

// Owned handles free themselves.
struct ClientFree {
    void operator()(polysio_client *c) const { polysio_client_free(c); }
};
struct PayloadFree {
    void operator()(polysio_payload *p) const { polysio_payload_free(p); }
};
using Client = std::unique_ptr<polysio_client, ClientFree>;
using Payload = std::unique_ptr<polysio_payload, PayloadFree>;

Payload new_payload() {
    polysio_payload *p = nullptr;
    check(polysio_payload_new(&p), "payload");
    return Payload(p);
}

std::string get_string(const polysio_payload *p, const char *pointer) {
    const char *s = nullptr;
    size_t len = 0;
    if (polysio_payload_get_string(p, pointer, &s, &len) != POLYSIO_OK) return "";
    return std::string(s, len);
}

struct Chat {
    std::string name, room, once;
    std::mutex mu;
    std::condition_variable cv;
    bool joined = false, got_once = false;
};

// Every event of the socket arrives here, on a library thread.
void on_event(void *ud, polysio_client_socket *socket, const char *event, const polysio_payload *args,
              polysio_ack *) {
    auto *chat = static_cast<Chat *>(ud);
    std::string ev = event;
    if (ev == "connect") {
        // (Re)join the room on every connection; the server acks with the room's name.
        auto p = new_payload();
        check(polysio_payload_push_string(p.get(), chat->room.data(), chat->room.size()), "push");
        check(polysio_client_socket_emit_with_ack(
                  socket, "join", p.get(), 5000,
                  [](void *ud, polysio_result r, const polysio_payload *args) {
                      auto *chat = static_cast<Chat *>(ud);
                      if (r != POLYSIO_OK) return;
                      std::cout << "* joined " << get_string(args, "/0") << std::endl;
                      std::lock_guard<std::mutex> lock(chat->mu);
                      chat->joined = true;
                      chat->cv.notify_all();
                  },
                  chat),
              "join");
    } else if (ev == "chat") {
        std::string from = get_string(args, "/0/name"), text = get_string(args, "/0/text");
        std::cout << from << ": " << text << std::endl;
        std::lock_guard<std::mutex> lock(chat->mu);
        if (from == chat->name && text == chat->once) {
            chat->got_once = true;
            chat->cv.notify_all();
        }
    } else if (ev == "typing") {
        std::cout << "* " << get_string(args, "/0") << " is typing" << std::endl;
    } else if (ev == "disconnect") {
        std::cout << "* disconnected: " << get_string(args, "/0") << std::endl;
    } else if (ev == "connect_error") {
        std::cout << "* cannot connect: " << get_string(args, "/0/message") << std::endl;
    }
}

void send_chat(polysio_client_socket *socket, const Chat &chat, const std::string &text) {
    auto p = new_payload();
    check(polysio_payload_push_json(p.get(), "{}", 2), "push");
    check(polysio_payload_set_string(p.get(), "/0/name", chat.name.data(), chat.name.size()), "name");
    check(polysio_payload_set_string(p.get(), "/0/text", text.data(), text.size()), "text");
    check(polysio_client_socket_emit(socket, "chat", p.get()), "chat");
}

}  // namespace

int main(int argc, char **argv) {
    if (argc != 4 && !(argc == 6 && std::strcmp(argv[4], "--once") == 0)) {
        std::cerr << "usage: " << argv[0] << " URL NAME ROOM [--once MESSAGE]\n";
        return 2;
    }
    Chat chat;
    chat.name = argv[2];
    chat.room = argv[3];
    if (argc == 6) chat.once = argv[5];
    try {
        polysio_client *raw = nullptr;
        check(polysio_client_new(argv[1], nullptr, &raw), "client");
        Client client(raw);
        polysio_client_socket *socket = nullptr;  // belongs to the client
        check(polysio_client_of(client.get(), "/", &socket), "socket");
        for (const char *ev : {"connect", "disconnect", "connect_error", "chat", "typing"})
            check(polysio_client_socket_on(socket, ev, on_event, &chat), ev);
        check(polysio_client_socket_connect(socket), "connect");

        if (!chat.once.empty()) {
            std::unique_lock<std::mutex> lock(chat.mu);
            if (!chat.cv.wait_for(lock, std::chrono::seconds(20), [&] { return chat.joined; }))
                throw std::runtime_error("could not join");
            lock.unlock();
            send_chat(socket, chat, chat.once);
            lock.lock();
            if (!chat.cv.wait_for(lock, std::chrono::seconds(20), [&] { return chat.got_once; }))
                throw std::runtime_error("the message did not come back");
            return 0;  // `client` is freed on the way out
        }
        for (std::string line; std::getline(std::cin, line);) {
            if (!line.empty()) send_chat(socket, chat, line);
        }
    } catch (const std::exception &e) {
        std::cerr << "error: " << e.what() << std::endl;
        return 1;
    }
    return 0;
}
