//! Who waits for an ack JavaScript owes. The JavaScript layer gets each request as an id in its
//! event and answers through `NativeDispatcher.ack(id, args)` (see `dispatch.rs`).

use polysio::client::AckResponder;
use polysio::server::AckSender;

/// Who asked for the ack.
pub enum Asker {
    /// A client, answered by a server socket.
    Client(AckSender),
    /// A server, answered by a client socket.
    Server(AckResponder),
}
