//! Broadcast operators: `to` / `in` / `except` / `local` / `volatile` / `timeout`.

use std::time::Duration;

use futures_util::future::join_all;

use super::Namespace;
use crate::adapter::{BroadcastOptions, Room, SocketInfo};
use crate::error::{Error, Result};
use crate::parser::packet::RESERVED_EVENTS;
use crate::parser::Packet;
use crate::value::Value;

/// Selects sockets of a namespace and acts on them. Built by `Namespace::to`, `Socket::to`, ...
#[derive(Clone)]
pub struct BroadcastOperator {
    nsp: Namespace,
    opts: BroadcastOptions,
}

pub(crate) fn check_event(event: &str) -> Result<()> {
    if RESERVED_EVENTS.contains(&event) {
        return Err(Error::InvalidArgument(format!(
            "\"{event}\" is a reserved event name"
        )));
    }
    Ok(())
}

impl BroadcastOperator {
    pub(crate) fn new(nsp: Namespace) -> Self {
        BroadcastOperator {
            nsp,
            opts: BroadcastOptions::default(),
        }
    }

    pub(crate) fn with_except(mut self, room: Room) -> Self {
        self.opts.except.push(room);
        self
    }

    /// Adds a target room.
    pub fn to(mut self, room: impl Into<Room>) -> Self {
        let r = room.into();
        if !self.opts.rooms.contains(&r) {
            self.opts.rooms.push(r);
        }
        self
    }
    /// Same as [`BroadcastOperator::to`].
    pub fn in_(self, room: impl Into<Room>) -> Self {
        self.to(room)
    }
    /// Excludes a room.
    pub fn except(mut self, room: impl Into<Room>) -> Self {
        let r = room.into();
        if !self.opts.except.contains(&r) {
            self.opts.except.push(r);
        }
        self
    }
    /// Only this node.
    pub fn local(mut self) -> Self {
        self.opts.flags.local = true;
        self
    }
    /// The packet may be lost (and is not kept for state recovery).
    pub fn volatile(mut self) -> Self {
        self.opts.flags.volatile = true;
        self
    }
    /// Timeout for [`BroadcastOperator::emit_with_ack`].
    pub fn timeout(mut self, t: Duration) -> Self {
        self.opts.flags.timeout = Some(t.as_millis() as u64);
        self
    }

    /// The options built so far.
    pub fn options(&self) -> &BroadcastOptions {
        &self.opts
    }

    fn namespaces(&self) -> Vec<Namespace> {
        let children = self.nsp.children();
        if children.is_empty() {
            vec![self.nsp.clone()]
        } else {
            children
        }
    }

    /// Emits `event` to the selected sockets (encoded once).
    pub fn emit(&self, event: &str, args: Vec<Value>) -> Result<()> {
        check_event(event)?;
        for nsp in self.namespaces() {
            let packet = Packet::event(nsp.name(), event, args.clone());
            nsp.adapter().broadcast(packet, &self.opts)?;
        }
        Ok(())
    }

    /// Emits `event` asking each selected socket for an ack; resolves with every ack, or
    /// [`Error::Timeout`] if they do not all arrive within the timeout.
    pub async fn emit_with_ack(&self, event: &str, args: Vec<Value>) -> Result<Vec<Vec<Value>>> {
        check_event(event)?;
        let futs: Vec<_> = self
            .namespaces()
            .into_iter()
            .map(|nsp| {
                let packet = Packet::event(nsp.name(), event, args.clone());
                nsp.adapter().broadcast_with_ack(packet, &self.opts)
            })
            .collect();
        let mut out = Vec::new();
        for r in join_all(futs).await {
            out.extend(r?);
        }
        Ok(out)
    }

    /// The selected sockets, with rooms and data.
    pub async fn fetch_sockets(&self) -> Result<Vec<SocketInfo>> {
        let futs: Vec<_> = self
            .namespaces()
            .iter()
            .map(|n| n.adapter().fetch_sockets(&self.opts))
            .collect();
        let mut out = Vec::new();
        for r in join_all(futs).await {
            out.extend(r?);
        }
        Ok(out)
    }

    /// Makes the selected sockets join `rooms`.
    pub fn sockets_join(&self, rooms: &[&str]) {
        let rooms: Vec<Room> = rooms.iter().map(|r| Room::from(*r)).collect();
        for n in self.namespaces() {
            n.adapter().add_sockets(&self.opts, &rooms);
        }
    }

    /// Makes the selected sockets leave `rooms`.
    pub fn sockets_leave(&self, rooms: &[&str]) {
        let rooms: Vec<Room> = rooms.iter().map(|r| Room::from(*r)).collect();
        for n in self.namespaces() {
            n.adapter().del_sockets(&self.opts, &rooms);
        }
    }

    /// Disconnects the selected sockets (and their whole connection when `close`).
    pub fn disconnect_sockets(&self, close: bool) {
        for n in self.namespaces() {
            n.adapter().disconnect_sockets(&self.opts, close);
        }
    }
}
