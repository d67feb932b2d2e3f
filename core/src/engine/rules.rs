//! The Engine.IO server's protocol decisions as plain functions and state machines: which
//! request is what (routing and verification), the polling rules, the upgrade probe and the
//! heartbeat schedule. No sockets, no runtime, time passed in; every host ([`super::host`])
//! drives them the same way, and they are tested here without any I/O.

use std::time::{Duration, Instant};

use http::Method;

use super::config::{EngineConfig, TransportType};
use super::packet::PacketType;
use super::server::HandshakeError;

/// What a request to the Engine.IO path asks for, decided from its method, query and whether it
/// is a WebSocket upgrade, in the reference's order of checks (transport, session, method, then
/// protocol version).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    /// Refuse with this error (a JSON body, or a raw `400` text for an upgrade).
    Refuse(HandshakeError),
    /// A CORS preflight (`OPTIONS`).
    Preflight,
    /// A new session on `transport`; `eio_ok` is false when the protocol version is not 4 (the
    /// request is refused with code 5, but only after `allowRequest` has had its say).
    Open {
        /// The transport asked for.
        transport: TransportType,
        /// Whether `EIO=4`.
        eio_ok: bool,
    },
    /// A long-polling GET of session `sid`.
    Poll(String),
    /// A long-polling POST to session `sid`.
    Post(String),
    /// A WebSocket upgrade of session `sid`.
    Upgrade(String),
    /// Another method on a session (the reference answers `500`).
    OtherMethod,
}

/// Routes a request. `session(sid)` tells the transport of an open session (`None`: unknown).
pub fn route(
    config: &EngineConfig,
    method: &Method,
    query: &[(String, String)],
    is_upgrade: bool,
    session: impl FnOnce(&str) -> Option<TransportType>,
) -> Route {
    let q = |k: &str| query.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let transport = match q("transport").and_then(TransportType::parse) {
        Some(t) if config.transports.contains(&t) => t,
        _ => return Route::Refuse(HandshakeError::UnknownTransport),
    };
    if method == Method::OPTIONS {
        return Route::Preflight;
    }
    let eio_ok = q("EIO") == Some("4");
    if let Some(sid) = q("sid").filter(|s| !s.is_empty()) {
        let Some(current) = session(sid) else {
            return Route::Refuse(HandshakeError::UnknownSid);
        };
        if !eio_ok {
            return Route::Refuse(HandshakeError::BadRequest);
        }
        if is_upgrade && transport == TransportType::Websocket {
            return Route::Upgrade(sid.to_owned());
        }
        if current != transport {
            return Route::Refuse(HandshakeError::BadRequest);
        }
        return match *method {
            Method::GET => Route::Poll(sid.to_owned()),
            Method::POST => Route::Post(sid.to_owned()),
            _ => Route::OtherMethod,
        };
    }
    if method != Method::GET {
        return Route::Refuse(HandshakeError::BadHandshakeMethod);
    }
    if transport == TransportType::Websocket && !is_upgrade {
        return Route::Refuse(HandshakeError::BadRequest);
    }
    Route::Open { transport, eio_ok }
}

/// What to do with a WebSocket that asks to upgrade an existing session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpgradeCheck {
    /// Accept it and run the probe.
    Probe,
    /// Accept it, then close it at once: the session is upgrading or upgraded already (the
    /// reference ignores such a WebSocket this way, and the session goes on).
    Ignore,
    /// Refuse with a raw `400` (upgrades are off).
    Refuse,
}

/// Decides an upgrade of a session now on `transport`, `upgrading` or not.
pub fn check_upgrade(
    allow_upgrades: bool,
    transport: TransportType,
    upgrading: bool,
) -> UpgradeCheck {
    if transport != TransportType::Polling || upgrading {
        UpgradeCheck::Ignore
    } else if !allow_upgrades {
        UpgradeCheck::Refuse
    } else {
        UpgradeCheck::Probe
    }
}

/// Why a long-polling POST is refused before its body is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PostRefusal {
    /// Another POST of the session is in progress: `400`, and the session closes.
    Overlapping,
    /// A binary content type (Engine.IO v4 polling is text only): `400`, the session closes
    /// (parse error).
    Binary,
    /// `Content-Length` above the limit: `413`, the session stays.
    TooLarge,
}

/// Checks a POST before its body is read.
pub fn check_post(
    busy: bool,
    content_type: Option<&[u8]>,
    content_length: Option<u64>,
    max: usize,
) -> Result<(), PostRefusal> {
    if busy {
        return Err(PostRefusal::Overlapping);
    }
    if content_type == Some(b"application/octet-stream") {
        return Err(PostRefusal::Binary);
    }
    if content_length.is_some_and(|n| n > max as u64) {
        return Err(PostRefusal::TooLarge);
    }
    Ok(())
}

/// The packet a pending (or the next) GET of a closed polling session ends with: a noop when the
/// client closed it (it knows), else the close packet.
pub fn last_poll_packet(client_closed: bool) -> PacketType {
    if client_closed {
        PacketType::Noop
    } else {
        PacketType::Close
    }
}

/// The upgrade probe, on the new WebSocket: `2probe` is answered `3probe`; `5` completes the
/// upgrade; WebSocket pings and pongs are ignored; anything else fails it.
#[derive(Debug, Default)]
pub struct Probe {
    probed: bool,
}

/// A message on a WebSocket being probed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProbeInput<'a> {
    /// A text message.
    Text(&'a str),
    /// A binary message.
    Binary,
    /// A WebSocket ping or pong.
    Control,
}

/// What the probe says to do next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProbeStep {
    /// Answer `3probe`; from now on, end the session's pending GETs with noops (every
    /// [`PROBE_NOOP_INTERVAL`]) so the client can pause polling.
    AnswerProbe,
    /// The upgrade is complete: the session moves to the WebSocket.
    Upgraded,
    /// Nothing to do.
    Wait,
    /// The upgrade failed: close the WebSocket, the session stays on polling.
    Fail,
}

/// How often a probed upgrade ends the pending GET with a noop (a single noop may meet a poll
/// the client issued just before it paused).
pub const PROBE_NOOP_INTERVAL: Duration = Duration::from_millis(100);

impl Probe {
    /// A probe that has seen nothing yet.
    pub fn new() -> Probe {
        Probe::default()
    }

    /// Whether `2probe` was answered.
    pub fn probed(&self) -> bool {
        self.probed
    }

    /// Feeds one message.
    pub fn on_message(&mut self, msg: ProbeInput<'_>) -> ProbeStep {
        match msg {
            ProbeInput::Text("2probe") => {
                self.probed = true;
                ProbeStep::AnswerProbe
            }
            ProbeInput::Text("5") => ProbeStep::Upgraded,
            ProbeInput::Control => ProbeStep::Wait,
            _ => ProbeStep::Fail,
        }
    }
}

/// The server-driven heartbeat: a ping every `interval`; no pong within `timeout` of a ping ends
/// the session.
#[derive(Clone, Debug)]
pub struct Heartbeat {
    interval: Duration,
    timeout: Duration,
    /// When the next step is due.
    due: Instant,
    /// A ping is out, unanswered.
    awaiting: bool,
}

/// What the heartbeat says to do when its time comes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Beat {
    /// Send a ping now.
    Ping,
    /// The ping went unanswered: close the session with `ping timeout`.
    Timeout,
    /// Not yet: wait until [`Heartbeat::due`].
    Wait,
}

impl Heartbeat {
    /// A heartbeat for a session opened at `now`: the first ping is due after `interval`.
    pub fn new(interval: Duration, timeout: Duration, now: Instant) -> Heartbeat {
        Heartbeat {
            interval,
            timeout,
            due: now + interval,
            awaiting: false,
        }
    }

    /// When [`Heartbeat::on_time`] should be called next.
    pub fn due(&self) -> Instant {
        self.due
    }

    /// The time has come (or not yet, if `now` is early).
    pub fn on_time(&mut self, now: Instant) -> Beat {
        if now < self.due {
            return Beat::Wait;
        }
        if self.awaiting {
            return Beat::Timeout;
        }
        self.awaiting = true;
        // The pong is due a timeout after the ping was scheduled, as a client timing the
        // reference expects, unless the ping went out so late (a stalled process) that the
        // client would be left less than half the timeout to answer.
        let anchored = self.due + self.timeout;
        self.due = if anchored >= now + self.timeout / 2 {
            anchored
        } else {
            now + self.timeout
        };
        Beat::Ping
    }

    /// The pong awaited may come as late as `due` (a packet from the client bought it time).
    pub fn extend(&mut self, due: Instant) {
        if self.awaiting && due > self.due {
            self.due = due;
        }
    }

    /// A pong arrived at `now`: the next ping is due after `interval`.
    pub fn on_pong(&mut self, now: Instant) {
        if self.awaiting {
            self.awaiting = false;
            self.due = now + self.interval;
        }
    }
}

/// At most `per_second` handshakes in any one-second window (a fixed window, reset each
/// second): over it, a handshake is answered 503.
#[derive(Debug)]
pub struct HandshakeRate {
    per_second: u32,
    window: Option<Instant>,
    count: u32,
}

impl HandshakeRate {
    /// A limit of `per_second` handshakes.
    pub fn new(per_second: u32) -> HandshakeRate {
        HandshakeRate {
            per_second,
            window: None,
            count: 0,
        }
    }

    /// Counts a handshake at `now`; false if it is over the rate.
    pub fn allow(&mut self, now: Instant) -> bool {
        match self.window {
            Some(w) if now.saturating_duration_since(w) < Duration::from_secs(1) => {}
            _ => {
                self.window = Some(now);
                self.count = 0;
            }
        }
        if self.count >= self.per_second {
            return false;
        }
        self.count += 1;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> Vec<(String, String)> {
        super::super::server::parse_query(s)
    }

    fn r(method: Method, query: &str, upgrade: bool, sess: Option<TransportType>) -> Route {
        route(
            &EngineConfig::default(),
            &method,
            &q(query),
            upgrade,
            |_| sess,
        )
    }

    #[test]
    fn routes_in_the_reference_order() {
        use HandshakeError::*;
        use TransportType::*;
        assert_eq!(
            r(Method::GET, "EIO=4", false, None),
            Route::Refuse(UnknownTransport)
        );
        assert_eq!(
            r(Method::GET, "EIO=4&transport=x", false, None),
            Route::Refuse(UnknownTransport)
        );
        assert_eq!(
            r(Method::OPTIONS, "transport=polling", false, None),
            Route::Preflight
        );
        assert_eq!(
            r(Method::GET, "EIO=4&transport=polling&sid=a", false, None),
            Route::Refuse(UnknownSid)
        );
        // Unknown sid is checked before the protocol version.
        assert_eq!(
            r(Method::GET, "EIO=3&transport=polling&sid=a", false, None),
            Route::Refuse(UnknownSid)
        );
        assert_eq!(
            r(
                Method::GET,
                "EIO=3&transport=polling&sid=a",
                false,
                Some(Polling)
            ),
            Route::Refuse(BadRequest)
        );
        assert_eq!(
            r(
                Method::GET,
                "EIO=4&transport=polling&sid=a",
                false,
                Some(Polling)
            ),
            Route::Poll("a".into())
        );
        assert_eq!(
            r(
                Method::POST,
                "EIO=4&transport=polling&sid=a",
                false,
                Some(Polling)
            ),
            Route::Post("a".into())
        );
        assert_eq!(
            r(
                Method::PUT,
                "EIO=4&transport=polling&sid=a",
                false,
                Some(Polling)
            ),
            Route::OtherMethod
        );
        // Polling on a session that moved to WebSocket.
        assert_eq!(
            r(
                Method::GET,
                "EIO=4&transport=polling&sid=a",
                false,
                Some(Websocket)
            ),
            Route::Refuse(BadRequest)
        );
        assert_eq!(
            r(
                Method::GET,
                "EIO=4&transport=websocket&sid=a",
                true,
                Some(Polling)
            ),
            Route::Upgrade("a".into())
        );
        assert_eq!(
            r(
                Method::GET,
                "EIO=4&transport=websocket&sid=a",
                true,
                Some(Websocket)
            ),
            Route::Upgrade("a".into())
        );
        assert_eq!(
            r(Method::POST, "EIO=4&transport=polling", false, None),
            Route::Refuse(BadHandshakeMethod)
        );
        assert_eq!(
            r(Method::GET, "EIO=4&transport=websocket", false, None),
            Route::Refuse(BadRequest)
        );
        assert_eq!(
            r(Method::GET, "EIO=4&transport=polling", false, None),
            Route::Open {
                transport: Polling,
                eio_ok: true
            }
        );
        assert_eq!(
            r(Method::GET, "EIO=3&transport=websocket", true, None),
            Route::Open {
                transport: Websocket,
                eio_ok: false
            }
        );
    }

    #[test]
    fn a_transport_turned_off_is_unknown() {
        let config = EngineConfig {
            transports: vec![TransportType::Websocket],
            ..EngineConfig::default()
        };
        let got = route(
            &config,
            &Method::GET,
            &q("EIO=4&transport=polling"),
            false,
            |_| None,
        );
        assert_eq!(got, Route::Refuse(HandshakeError::UnknownTransport));
    }

    #[test]
    fn upgrades_of_upgraded_or_upgrading_sessions_are_ignored() {
        use TransportType::*;
        assert_eq!(check_upgrade(true, Polling, false), UpgradeCheck::Probe);
        assert_eq!(check_upgrade(true, Polling, true), UpgradeCheck::Ignore);
        assert_eq!(check_upgrade(true, Websocket, false), UpgradeCheck::Ignore);
        assert_eq!(check_upgrade(false, Polling, false), UpgradeCheck::Refuse);
    }

    #[test]
    fn posts_are_checked_before_their_body() {
        assert_eq!(
            check_post(false, Some(b"text/plain"), Some(10), 100),
            Ok(())
        );
        assert_eq!(check_post(false, None, None, 100), Ok(()));
        assert_eq!(
            check_post(true, None, None, 100),
            Err(PostRefusal::Overlapping)
        );
        assert_eq!(
            check_post(false, Some(b"application/octet-stream"), None, 100),
            Err(PostRefusal::Binary)
        );
        assert_eq!(
            check_post(false, None, Some(101), 100),
            Err(PostRefusal::TooLarge)
        );
        assert_eq!(check_post(false, None, Some(100), 100), Ok(()));
        assert_eq!(last_poll_packet(true), PacketType::Noop);
        assert_eq!(last_poll_packet(false), PacketType::Close);
    }

    #[test]
    fn the_probe_answers_then_upgrades() {
        let mut p = Probe::new();
        assert_eq!(p.on_message(ProbeInput::Control), ProbeStep::Wait);
        assert!(!p.probed());
        assert_eq!(
            p.on_message(ProbeInput::Text("2probe")),
            ProbeStep::AnswerProbe
        );
        assert!(p.probed());
        assert_eq!(p.on_message(ProbeInput::Text("5")), ProbeStep::Upgraded);
        assert_eq!(
            Probe::new().on_message(ProbeInput::Text("4hello")),
            ProbeStep::Fail
        );
        assert_eq!(Probe::new().on_message(ProbeInput::Binary), ProbeStep::Fail);
    }

    #[test]
    fn the_heartbeat_pings_then_times_out_without_a_pong() {
        let t0 = Instant::now();
        let (i, t) = (Duration::from_millis(300), Duration::from_millis(200));
        let mut h = Heartbeat::new(i, t, t0);
        assert_eq!(h.due(), t0 + i);
        assert_eq!(h.on_time(t0 + Duration::from_millis(299)), Beat::Wait);
        assert_eq!(h.on_time(t0 + i), Beat::Ping);
        assert_eq!(h.due(), t0 + i + t);
        // A pong reschedules the next ping an interval after it.
        let pong = t0 + i + Duration::from_millis(50);
        h.on_pong(pong);
        assert_eq!(h.due(), pong + i);
        assert_eq!(h.on_time(pong + i), Beat::Ping);
        assert_eq!(h.on_time(pong + i + t), Beat::Timeout);
        // A ping sent a little late (timer jitter) keeps its scheduled deadline; one sent so
        // late that the client would have under half the timeout gets the whole timeout.
        let mut h = Heartbeat::new(i, t, t0);
        assert_eq!(h.on_time(t0 + i + Duration::from_millis(5)), Beat::Ping);
        assert_eq!(h.due(), t0 + i + t);
        let mut h = Heartbeat::new(i, t, t0);
        let stalled = t0 + i + Duration::from_millis(150);
        assert_eq!(h.on_time(stalled), Beat::Ping);
        assert_eq!(h.due(), stalled + t);
        // A pong that was not asked for changes nothing.
        let mut h = Heartbeat::new(i, t, t0);
        h.on_pong(t0 + Duration::from_millis(10));
        assert_eq!(h.due(), t0 + i);
    }

    #[test]
    fn handshakes_are_limited_per_second() {
        let t0 = Instant::now();
        let mut r = HandshakeRate::new(2);
        assert!(r.allow(t0));
        assert!(r.allow(t0 + Duration::from_millis(10)));
        assert!(!r.allow(t0 + Duration::from_millis(999)));
        assert!(r.allow(t0 + Duration::from_millis(1000)), "a new second");
    }
}
