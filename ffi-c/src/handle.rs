//! Handles: every object the C side holds is a token into one registry, never a pointer the
//! library dereferences. A token is an id that is never reused, so a freed (or closed) handle,
//! a double free, a handle of the wrong type or a made-up pointer are all reported as errors
//! instead of touching freed memory. Looking a handle up clones an `Arc`, so an object stays
//! alive while a call uses it even if another thread frees the handle meanwhile.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, RwLock};

use crate::error::{polysio_result::*, Error, Result};

/// Every kind of object behind a handle.
pub(crate) enum Obj {
    ServerOptions(Arc<crate::server::ServerOptsObj>),
    Server(Arc<crate::server::ServerObj>),
    Namespace(Arc<crate::server::NsObj>),
    Socket(Arc<crate::server::SockObj>),
    Broadcast(Arc<crate::server::BroadcastObj>),
    Emitter(Arc<crate::emitter::EmitterObj>),
    Refusal(Arc<crate::server::RefusalObj>),
    ClientOptions(Arc<crate::client::ClientOptsObj>),
    Client(Arc<crate::client::ClientObj>),
    ClientSocket(Arc<crate::client::CSockObj>),
    Payload(Arc<crate::payload::PayloadObj>),
    Ack(Arc<crate::ack::AckObj>),
    HostRequest(Arc<crate::host::HostRequestObj>),
    HostPending(Arc<crate::host::PendingObj>),
    WebSocket(Arc<crate::host::WebSocketObj>),
}

impl Obj {
    fn kind_name(&self) -> &'static str {
        match self {
            Obj::ServerOptions(_) => "polysio_server_options",
            Obj::Server(_) => "polysio_server",
            Obj::Namespace(_) => "polysio_namespace",
            Obj::Socket(_) => "polysio_socket",
            Obj::Broadcast(_) => "polysio_broadcast",
            Obj::Emitter(_) => "polysio_emitter",
            Obj::Refusal(_) => "polysio_refusal",
            Obj::ClientOptions(_) => "polysio_client_options",
            Obj::Client(_) => "polysio_client",
            Obj::ClientSocket(_) => "polysio_client_socket",
            Obj::Payload(_) => "polysio_payload",
            Obj::Ack(_) => "polysio_ack",
            Obj::HostRequest(_) => "polysio_host_request",
            Obj::HostPending(_) => "polysio_host_pending",
            Obj::WebSocket(_) => "polysio_websocket",
        }
    }
}

/// An opaque C type and the object its handles stand for.
pub(crate) trait Kind {
    type Inner: Send + Sync;
    const NAME: &'static str;
    fn wrap(a: Arc<Self::Inner>) -> Obj;
    fn unwrap(o: &Obj) -> Option<&Arc<Self::Inner>>;
}

macro_rules! kind {
    ($c:ty, $inner:ty, $variant:ident, $name:literal) => {
        impl $crate::handle::Kind for $c {
            type Inner = $inner;
            const NAME: &'static str = $name;
            fn wrap(a: std::sync::Arc<$inner>) -> $crate::handle::Obj {
                $crate::handle::Obj::$variant(a)
            }
            fn unwrap(o: &$crate::handle::Obj) -> Option<&std::sync::Arc<$inner>> {
                match o {
                    $crate::handle::Obj::$variant(a) => Some(a),
                    _ => None,
                }
            }
        }
    };
}
pub(crate) use kind;

struct Registry {
    map: RwLock<HashMap<u64, Obj>>,
    next: AtomicU64,
}

// Ids start high enough that small integers (and NULL) are never handles.
const FIRST_ID: u64 = 0x1000;

static REGISTRY: LazyLock<Registry> = LazyLock::new(|| Registry {
    map: RwLock::new(HashMap::new()),
    next: AtomicU64::new(FIRST_ID),
});

/// The id a handle pointer carries.
pub(crate) fn id_of<K>(p: *const K) -> u64 {
    p.addr() as u64
}

/// The handle pointer of an id (a token: never dereferenced).
pub(crate) fn ptr_of<K>(id: u64) -> *mut K {
    std::ptr::without_provenance_mut(id as usize)
}

/// Registers `a` and returns its new handle id.
pub(crate) fn insert<K: Kind>(a: Arc<K::Inner>) -> u64 {
    let id = REGISTRY.next.fetch_add(1, Ordering::Relaxed);
    let mut m = REGISTRY.map.write().unwrap_or_else(|p| p.into_inner());
    m.insert(id, K::wrap(a));
    id
}

/// Registers the object `make` builds knowing its own id.
pub(crate) fn insert_with<K: Kind>(make: impl FnOnce(u64) -> Arc<K::Inner>) -> Arc<K::Inner> {
    let id = REGISTRY.next.fetch_add(1, Ordering::Relaxed);
    let a = make(id);
    let mut m = REGISTRY.map.write().unwrap_or_else(|p| p.into_inner());
    m.insert(id, K::wrap(a.clone()));
    a
}

fn missing<K: Kind>(id: u64) -> Error {
    if id == 0 {
        Error::null(K::NAME)
    } else if (FIRST_ID..REGISTRY.next.load(Ordering::Relaxed)).contains(&id) {
        Error::new(
            POLYSIO_ERR_CLOSED,
            format!(
                "this {} is no longer valid (freed, or its socket, connection or server closed)",
                K::NAME
            ),
        )
    } else {
        Error::new(
            POLYSIO_ERR_INVALID_HANDLE,
            format!("not a {} handle", K::NAME),
        )
    }
}

fn wrong<K: Kind>(o: &Obj) -> Error {
    Error::new(
        POLYSIO_ERR_INVALID_HANDLE,
        format!("expected a {}, got a {}", K::NAME, o.kind_name()),
    )
}

/// Gives the table's memory back once no handle is left, so a program that freed everything
/// holds no registry memory (and leak checkers see none).
fn release_if_empty(m: &mut HashMap<u64, Obj>) {
    if m.is_empty() && m.capacity() > 0 {
        *m = HashMap::new();
    }
}

/// The object behind handle `p`.
pub(crate) fn get<K: Kind>(p: *const K) -> Result<Arc<K::Inner>> {
    let id = id_of(p);
    let m = REGISTRY.map.read().unwrap_or_else(|p| p.into_inner());
    match m.get(&id) {
        Some(o) => K::unwrap(o).cloned().ok_or_else(|| wrong::<K>(o)),
        None => Err(missing::<K>(id)),
    }
}

/// The body of a getter: writes `f(object behind h)` to the out-parameter `out`.
pub(crate) fn query<K: Kind, T>(
    h: *const K,
    out: *mut T,
    f: impl FnOnce(&K::Inner) -> Result<T>,
) -> crate::error::polysio_result {
    crate::error::ffi(|| {
        crate::error::check_out(out, "out")?;
        let o = get(h)?;
        crate::error::write_out(out, f(&o)?);
        Ok(())
    })
}

/// Unregisters handle `p` (the `_free` of owned handles) and returns its object.
pub(crate) fn remove<K: Kind>(p: *const K) -> Result<Arc<K::Inner>> {
    let id = id_of(p);
    let mut m = REGISTRY.map.write().unwrap_or_else(|p| p.into_inner());
    match m.get(&id) {
        Some(o) => match K::unwrap(o) {
            Some(_) => {
                let o = m.remove(&id);
                release_if_empty(&mut m);
                drop(m);
                o.as_ref()
                    .and_then(K::unwrap)
                    .cloned()
                    .ok_or_else(|| missing::<K>(id))
            }
            None => Err(wrong::<K>(o)),
        },
        None => Err(missing::<K>(id)),
    }
}

/// Unregisters ids the library owns (borrowed handles, children of a freed object). The objects
/// are dropped after the registry lock is released.
pub(crate) fn remove_ids(ids: impl IntoIterator<Item = u64>) {
    let removed: Vec<Obj> = {
        let mut m = REGISTRY.map.write().unwrap_or_else(|p| p.into_inner());
        let removed = ids.into_iter().filter_map(|id| m.remove(&id)).collect();
        release_if_empty(&mut m);
        removed
    };
    drop(removed);
}

/// A handle registered for the duration of a callback and unregistered on drop.
pub(crate) struct Borrowed(pub u64);

impl Borrowed {
    pub fn new<K: Kind>(a: Arc<K::Inner>) -> Borrowed {
        Borrowed(insert::<K>(a))
    }
    pub fn ptr<K>(&self) -> *mut K {
        ptr_of(self.0)
    }
}

impl Drop for Borrowed {
    fn drop(&mut self) {
        remove_ids([self.0]);
    }
}

/// The number of live handles, owned and borrowed. For leak checks in tests and debugging:
/// after every object has been freed (and no callback is running), it is 0.
#[no_mangle]
pub extern "C" fn polysio_handle_count() -> usize {
    std::panic::catch_unwind(|| {
        let m = REGISTRY.map.read().unwrap_or_else(|p| p.into_inner());
        if std::env::var_os("POLYSIO_DEBUG_HANDLES").is_some() {
            for (id, o) in m.iter() {
                eprintln!("live handle {id:#x}: {}", o.kind_name());
            }
        }
        m.len()
    })
    .unwrap_or(0)
}
