//! The data plane's threads: with `runtime.workers = N > 1`, N threads, each running its own
//! current-thread tokio runtime, and every TCP listener bound N times with `SO_REUSEPORT`,
//! one socket per worker.
//!
//! Why this shape rather than one multi-thread runtime: with work stealing, one accept queue
//! is shared by all threads, and a connection's task (its socket's readiness, its timers, the
//! tasks it spawns) may move between threads; every move is a cross-core wakeup and cache
//! misses on the task's state. Here the kernel spreads new connections over the N accept
//! queues (by a hash of the 4-tuple), and the worker that accepted a connection serves it and
//! everything it spawns until it closes: its socket is registered with that worker's reactor,
//! its timers are on that worker's wheel, and `tokio::spawn` inside it lands on that worker.
//!
//! The control plane (reload, the Kubernetes watchers, admin, IPVS) runs on the caller's
//! runtime (the binary's main thread). Listeners are still started and stopped from there:
//! [`Workers::spawn_accept`] returns one `JoinHandle` that ends when every worker's accept
//! loop has ended, so the app's listener lifecycle (keep, stop, drain through the shared
//! `TaskTracker` and `CancellationToken`s, which are thread-safe) is the same for one worker
//! or many. The sockets are bound on the control plane (so a bind error rejects a reload
//! before anything changed), taken out of its reactor and registered with each worker's
//! reactor inside the worker.
//!
//! With one worker there is no pool: listeners have one socket (no `SO_REUSEPORT`) and run on
//! the caller's runtime, as before. UDP services keep one socket on the control-plane runtime
//! (see `deploy/README.md`).

use std::cell::Cell;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use tokio::net::{TcpListener, TcpSocket};
use tokio::runtime::Handle;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

thread_local! {
    /// This thread's worker index (0 outside a pool).
    static INDEX: Cell<usize> = const { Cell::new(0) };
}

/// What the binary sets once at start: the worker count when the config leaves it unset (one
/// per CPU), and a hook each worker runs when it parks (the allocator's collect).
static DEFAULTS: OnceLock<(usize, fn())> = OnceLock::new();

/// Sets, for this process, the worker count used when `runtime.workers` is unset and the hook
/// each worker thread runs when it parks. Without it (a library user, the tests) an unset
/// count means no pool: listeners run on the caller's runtime.
pub fn set_defaults(workers: usize, on_park: fn()) {
    let _first = DEFAULTS.set((workers, on_park));
}

/// The most worker threads started in this process (0 before any pool starts).
static STARTED: AtomicUsize = AtomicUsize::new(0);

/// How many data-plane workers there are (at least 1): per-worker state is sized by it.
pub fn count() -> usize {
    STARTED.load(Ordering::Relaxed).max(1)
}

/// The index of the worker this thread is (0 outside a pool): labels the per-worker metrics
/// and keys the upstream pool, so a pooled connection is reused only on the worker whose
/// reactor it is registered with.
pub fn current() -> usize {
    INDEX.get()
}

/// Makes this thread say it is worker `index` (tests of per-worker state).
#[cfg(test)]
pub(crate) fn pretend(index: usize) {
    INDEX.set(index);
}

/// The data-plane worker threads (none with one worker).
#[derive(Debug)]
pub struct Workers {
    /// One handle per worker thread's runtime; empty without a pool.
    handles: Vec<Handle>,
    /// Dropping these ends the worker threads (their runtimes stop and drop what is left).
    _stops: Vec<oneshot::Sender<()>>,
}

/// The sockets of one TCP listener: one on the caller's runtime, or one per worker.
#[derive(Debug)]
pub enum TcpListeners {
    /// One worker: one socket, registered with the caller's runtime.
    One(TcpListener),
    /// One socket per worker, all bound to the same address with `SO_REUSEPORT`.
    Each(Vec<std::net::TcpListener>),
}

impl TcpListeners {
    /// The address the sockets are bound to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        match self {
            TcpListeners::One(l) => l.local_addr(),
            TcpListeners::Each(all) => all
                .first()
                .ok_or_else(|| io::Error::other("no socket"))?
                .local_addr(),
        }
    }
}

impl Workers {
    /// Starts `configured` worker threads (unset: the process default, see [`set_defaults`]);
    /// none if that is 1 or less.
    pub fn start(configured: Option<NonZeroUsize>) -> io::Result<Workers> {
        let defaults = DEFAULTS.get().copied();
        let count = configured
            .map(NonZeroUsize::get)
            .or(defaults.map(|d| d.0))
            .unwrap_or(1);
        let on_park = defaults.map(|d| d.1);
        let mut workers = Workers {
            handles: Vec::new(),
            _stops: Vec::new(),
        };
        if count > 1 {
            STARTED.fetch_max(count, Ordering::Relaxed);
            for index in 0..count {
                let (handle, stop) = start_thread(index, on_park)?;
                workers.handles.push(handle);
                workers._stops.push(stop);
            }
            tracing::info!(workers = count, "data-plane workers started");
        }
        Ok(workers)
    }

    /// How many worker threads run (0: none, the caller's runtime serves).
    pub fn len(&self) -> usize {
        self.handles.len()
    }

    /// Whether there is no pool.
    pub fn is_empty(&self) -> bool {
        self.handles.is_empty()
    }

    /// Binds a TCP listener: one socket without a pool; with one, a socket per worker on the
    /// same address (`SO_REUSEPORT`; port 0 takes the port the first socket got).
    pub fn bind_tcp(&self, listen: SocketAddr, backlog: u32) -> io::Result<TcpListeners> {
        if self.handles.is_empty() {
            return Ok(TcpListeners::One(bind_one(listen, false, backlog)?));
        }
        let first = bind_one(listen, true, backlog)?;
        let address = first.local_addr()?;
        let mut all = vec![first.into_std()?];
        for _ in 1..self.handles.len() {
            all.push(bind_one(address, true, backlog)?.into_std()?);
        }
        Ok(TcpListeners::Each(all))
    }

    /// Runs `accept` on each socket of `listeners`, each on its own worker; the handle ends
    /// when every accept loop has ended.
    pub fn spawn_accept<F, Fut>(&self, listeners: TcpListeners, accept: F) -> JoinHandle<()>
    where
        F: Fn(TcpListener) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let all = match listeners {
            TcpListeners::One(l) => return tokio::spawn(accept(l)),
            TcpListeners::Each(all) => all,
        };
        let accept = Arc::new(accept);
        let loops: Vec<JoinHandle<()>> = all
            .into_iter()
            .zip(&self.handles)
            .map(|(socket, worker)| {
                let accept = Arc::clone(&accept);
                // Registered inside the worker, with the worker's reactor.
                worker.spawn(async move {
                    match TcpListener::from_std(socket) {
                        Ok(listener) => accept(listener).await,
                        Err(error) => tracing::error!(%error, "listener socket not started"),
                    }
                })
            })
            .collect();
        tokio::spawn(async move {
            for accept_loop in loops {
                let _ended = accept_loop.await;
            }
        })
    }
}

/// One listening socket (`SO_REUSEADDR`, and `SO_REUSEPORT` when `shared`).
fn bind_one(listen: SocketAddr, shared: bool, backlog: u32) -> io::Result<TcpListener> {
    let socket = if listen.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }?;
    socket.set_reuseaddr(true)?;
    if shared {
        socket.set_reuseport(true)?;
    }
    socket.bind(listen)?;
    socket.listen(backlog)
}

/// How often a worker with a park hook wakes, working or not.
const WAKE: std::time::Duration = std::time::Duration::from_secs(1);

/// With a park hook, wakes the worker every [`WAKE`], so that a worker gone quiet parks once
/// more after its last work and the hook (the allocator's collect, at most once per second)
/// sees what that work freed; without this, a worker that stays asleep kept it until it next
/// worked (10,000 connections closed on two workers left RSS 19 % above its start). Never
/// ends.
async fn wake_now_and_then(hooked: bool) {
    if !hooked {
        return std::future::pending().await;
    }
    let mut every = tokio::time::interval(WAKE);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
    }
}

/// Starts worker `index`: a thread running a current-thread runtime until its stop sender is
/// dropped. Waits (briefly, at start only) for the runtime to be built.
fn start_thread(index: usize, on_park: Option<fn()>) -> io::Result<(Handle, oneshot::Sender<()>)> {
    let (stop, stopped) = oneshot::channel::<()>();
    let (ready, started) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name(format!("switchyard-w{index}"))
        .spawn(move || {
            INDEX.set(index);
            let mut builder = tokio::runtime::Builder::new_current_thread();
            builder.enable_all();
            if let Some(hook) = on_park {
                builder.on_thread_park(hook);
            }
            match builder.build() {
                Ok(runtime) => {
                    let _sent = ready.send(Ok(runtime.handle().clone()));
                    runtime.block_on(async move {
                        tokio::select! {
                            _ = stopped => {}
                            () = wake_now_and_then(on_park.is_some()) => {}
                        }
                    });
                }
                Err(error) => {
                    let _sent = ready.send(Err(error));
                }
            }
        })?;
    let handle = started
        .recv()
        .map_err(|_| io::Error::other("worker thread ended while starting"))??;
    Ok((handle, stop))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parks of the worker started by the test below (the only one with this hook).
    static PARKS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

    fn count_park() {
        PARKS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    #[test]
    fn a_quiet_worker_with_a_park_hook_parks_again_every_second() {
        let parks = || PARKS.load(std::sync::atomic::Ordering::Relaxed);
        let (_handle, stop) = start_thread(9, Some(count_park)).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(300));
        let settled = parks();
        // Nothing to do: only its own wake-ups make it park (and collect) again.
        std::thread::sleep(std::time::Duration::from_millis(3500));
        let later = parks();
        drop(stop);
        assert!(
            later - settled >= 2,
            "a quiet worker parked {} times in 3.5 s",
            later - settled
        );
    }

    #[tokio::test]
    async fn each_worker_accepts_on_its_own_socket_and_thread() {
        let workers = Workers::start(NonZeroUsize::new(2)).unwrap();
        assert_eq!(workers.len(), 2);
        let listeners = workers
            .bind_tcp("127.0.0.1:0".parse().unwrap(), 64)
            .unwrap();
        let TcpListeners::Each(all) = &listeners else {
            panic!("one socket per worker expected");
        };
        assert_eq!(all.len(), 2);
        let address = listeners.local_addr().unwrap();
        assert_eq!(all[1].local_addr().unwrap(), address);
        let (seen, mut got) = tokio::sync::mpsc::unbounded_channel();
        let task = workers.spawn_accept(listeners, move |_listener| {
            let seen = seen.clone();
            async move {
                let _sent = seen.send((current(), std::thread::current().id()));
            }
        });
        task.await.unwrap();
        let (a, b) = (got.recv().await.unwrap(), got.recv().await.unwrap());
        let mut indexes = [a.0, b.0];
        indexes.sort_unstable();
        assert_eq!(indexes, [0, 1]);
        assert_ne!(a.1, b.1);
        assert_ne!(a.1, std::thread::current().id());
    }

    #[tokio::test]
    async fn without_a_pool_one_socket_on_the_callers_runtime() {
        let workers = Workers::start(NonZeroUsize::new(1)).unwrap();
        assert!(workers.is_empty());
        let listeners = workers
            .bind_tcp("127.0.0.1:0".parse().unwrap(), 64)
            .unwrap();
        assert!(matches!(listeners, TcpListeners::One(_)));
    }
}
