//! Socket.IO v5 packet codec.

pub mod packet;

pub use packet::{Decoder, Packet, PacketData};
