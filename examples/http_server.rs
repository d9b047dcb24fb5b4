//! An HTTP/1.1 server on greenhub: one greenlet per connection, written as
//! plain blocking code.
//!
//! ```text
//! cargo run --release --example http_server                       # 127.0.0.1:8080, M:N
//! cargo run --release --example http_server -- --port 0 --mode single
//! cargo run --release --example http_server -- --mode pinned --hubs 2 --max-conns 512
//! curl -i http://127.0.0.1:8080/json
//! ```
//!
//! It prints `listening on 127.0.0.1:PORT` once it accepts connections (so
//! scripts can wait for that line) and serves until SIGTERM or SIGINT, then
//! shuts down gracefully and exits 0.
//!
//! # Flags (each also read from the environment variable in brackets; a flag
//! wins)
//!
//! - `--host ADDR` [`HTTP_HOST`]: the address to bind (default `127.0.0.1`).
//! - `--port N` [`HTTP_PORT`]: the port (default 8080; 0 picks a free one,
//!   and the line printed names it).
//! - `--mode single|mn|pinned` [`HTTP_MODE`]: greenhub's scheduling mode
//!   (default `mn`). In `pinned` mode one accept greenlet is started per hub
//!   (all on one shared listener) and each connection stays on the hub that
//!   accepted it; greenhub hands the accept greenlets to whichever hubs are
//!   free, so the spread over hubs is best-effort.
//! - `--hubs N` [`HTTP_HUBS`]: the number of hubs for `mn` and `pinned`
//!   (default: one per CPU).
//! - `--max-conns N` [`HTTP_MAX_CONNS`]: connections served at once (default
//!   10000). When all are taken the server stops accepting: further clients
//!   wait in the kernel's listen backlog until a connection ends.
//! - `--header-timeout-ms N` [`HTTP_HEADER_TIMEOUT_MS`]: the time a request
//!   head may take to arrive (default 5000), see below.
//! - `--idle-timeout-ms N` [`HTTP_IDLE_TIMEOUT_MS`]: how long a kept-alive
//!   connection may wait for its next request (default 60000).
//! - `--grace-ms N` [`HTTP_GRACE_MS`]: how long shutdown waits for requests
//!   in flight before it kills their greenlets (default 5000).
//!
//! # Design
//!
//! - The protocol (parsing with `httparse`, keep-alive, pipelining, routes,
//!   error statuses, response bytes) is the IO-free `http_common` module,
//!   shared with the tokio twin `examples/http_tokio.rs`; its docs list the
//!   behaviour. This file is the IO around it.
//! - [`serve_connection`] serves one accepted stream to its end. It is
//!   separate from the accept loop ([`Server`]), so that any acceptor (a
//!   stream server) can call it.
//! - Slow clients: a connection must deliver each request head within the
//!   header timeout, counted from the accept for the first request and from
//!   the head's first byte for later ones. It is enforced by giving every
//!   read a `set_read_timeout` of the time left until that deadline, so a
//!   client that trickles one byte a second is cut off when the deadline
//!   passes, however often it sends. A client that sent part of a head then
//!   gets `408 Request Timeout`; one that sent nothing (or is idle between
//!   requests past the idle timeout) is closed without a response. Body
//!   reads must each make progress within the header timeout. Writes have a
//!   10 s timeout, so a client that stops reading cannot hold a slot.
//! - Closing after an error or a `Connection: close`: the response is
//!   written, the write half shut down, whatever the client still sends is
//!   read and dropped for a moment (up to 500 ms / 256 KiB), then the socket
//!   is closed; closing with unread input would send a reset that can destroy
//!   the response before the client reads it.
//! - The connection limit is a [`greenhub::pool::Pool`]: the accept loop
//!   waits for a free slot *before* it accepts, so a full server does not
//!   accept at all.
//! - Graceful shutdown ([`Server::shutdown`], on SIGTERM/SIGINT from
//!   `main`): the [`Shutdown`] switch is set (connections close at their next
//!   request boundary; a response in the making says `Connection: close`),
//!   idle keep-alive connections are woken by shutting down their read half,
//!   the accept greenlets are killed (which closes the listener), and
//!   in-flight requests get `grace` to finish before the remaining
//!   connection greenlets are killed.

#[path = "http_common/mod.rs"]
pub mod http_common;

use std::collections::HashMap;
use std::fmt;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown as Half, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU8, AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use greenhub::JoinHandle;
use greenhub::net::{TcpListener, TcpStream};
use greenhub::pool::Pool;
use greenhub::signal::{self, SIGINT, SIGTERM};
use greenhub::sync::Event;

use http_common::{End, Limits, Next, Phase, Session, Status};

/// Per-connection settings, and the shutdown switch connections watch.
#[derive(Clone, Debug)]
pub struct Config {
    /// Connections served at once (the accept loop's pool size).
    pub max_conns: usize,
    /// The time a request head may take (see the module docs).
    pub header_timeout: Duration,
    /// How long a kept-alive connection may wait for its next request.
    pub idle_timeout: Duration,
    /// The timeout of each write.
    pub write_timeout: Duration,
    /// How long a closing connection reads what the client still sends.
    pub drain_timeout: Duration,
    /// Request size limits.
    pub limits: Limits,
    /// Set when the server shuts down.
    pub shutdown: Shutdown,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            max_conns: 10_000,
            header_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(60),
            write_timeout: Duration::from_secs(10),
            drain_timeout: Duration::from_millis(500),
            limits: Limits::default(),
            shutdown: Shutdown::new(),
        }
    }
}

/// The most bytes a closing connection reads and drops.
const DRAIN_MAX: usize = 256 * 1024;

/// A connection's state, as the shutdown switch sees it.
const BUSY: u8 = 0;
const IDLE: u8 = 1;
const WOKEN: u8 = 2;

/// A registered connection: its stream (so shutdown can wake it) and
/// whether it is idle between requests.
struct Conn {
    stream: TcpStream,
    state: AtomicU8,
}

impl Conn {
    /// Marks the connection idle before it waits for a request; false if the
    /// server is stopping (then it must not wait).
    fn enter_idle(&self, shutdown: &Shutdown) -> bool {
        self.state.store(IDLE, SeqCst);
        // Paired with `trigger`'s store-then-scan: either we see the flag
        // here or `trigger` sees IDLE and wakes us.
        if shutdown.is_triggered() {
            self.state.store(BUSY, SeqCst);
            return false;
        }
        true
    }

    /// Marks the connection busy after its wait; false if `trigger` woke it
    /// (its read half is shut down: what was read is still answered).
    fn leave_idle(&self) -> bool {
        self.state
            .compare_exchange(IDLE, BUSY, SeqCst, SeqCst)
            .is_ok()
    }
}

#[derive(Default)]
struct ShutdownInner {
    stopping: AtomicBool,
    next_id: AtomicU64,
    conns: Mutex<HashMap<u64, Arc<Conn>>>,
}

/// The switch that tells connections the server is stopping; cheap to clone
/// (all clones are one switch).
///
/// Connections served with a [`Config`] holding it register here, so that
/// [`trigger`](Self::trigger) can wake those idle between requests.
#[derive(Clone, Default)]
pub struct Shutdown {
    inner: Arc<ShutdownInner>,
}

impl fmt::Debug for Shutdown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shutdown")
            .field("triggered", &self.is_triggered())
            .finish()
    }
}

impl Shutdown {
    /// A switch that is off.
    pub fn new() -> Shutdown {
        Shutdown::default()
    }

    /// Whether [`trigger`](Self::trigger) was called.
    pub fn is_triggered(&self) -> bool {
        self.inner.stopping.load(SeqCst)
    }

    /// Turns the switch on: every connection closes at its next request
    /// boundary, and those idle between requests now are woken (their read
    /// half is shut down). Returns how many were woken.
    pub fn trigger(&self) -> usize {
        self.inner.stopping.store(true, SeqCst);
        let conns = self.inner.conns.lock().unwrap_or_else(|e| e.into_inner());
        let mut woken = 0;
        for conn in conns.values() {
            if conn
                .state
                .compare_exchange(IDLE, WOKEN, SeqCst, SeqCst)
                .is_ok()
            {
                let _ = conn.stream.shutdown(Half::Read);
                woken += 1;
            }
        }
        woken
    }

    fn register(&self, stream: TcpStream) -> Registered<'_> {
        let id = self.inner.next_id.fetch_add(1, SeqCst);
        let conn = Arc::new(Conn {
            stream,
            state: AtomicU8::new(BUSY),
        });
        self.inner
            .conns
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, conn.clone());
        Registered {
            shutdown: self,
            id,
            conn,
        }
    }
}

/// A connection's entry in the registry, removed when dropped.
struct Registered<'a> {
    shutdown: &'a Shutdown,
    id: u64,
    conn: Arc<Conn>,
}

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        self.shutdown
            .inner
            .conns
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.id);
    }
}

/// What [`serve_connection`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stats {
    /// Requests answered (error responses not counted).
    pub requests: u64,
    /// Why the connection ended.
    pub end: End,
}

/// Reads into `buf`, giving up with `TimedOut` at `deadline`.
fn read_until(s: &TcpStream, buf: &mut [u8], deadline: Instant) -> io::Result<usize> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(ErrorKind::TimedOut.into());
    }
    s.set_read_timeout(Some(left))?;
    match (&*s).read(buf) {
        // A read timeout reads as WouldBlock, as on a std socket.
        Err(e) if e.kind() == ErrorKind::WouldBlock => Err(ErrorKind::TimedOut.into()),
        r => r,
    }
}

/// Whether `e` means the client went away (not a server problem).
fn is_disconnect(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::ConnectionReset | ErrorKind::BrokenPipe | ErrorKind::ConnectionAborted
    )
}

/// Shuts down the write half, reads and drops what the client still sends
/// for up to `cfg.drain_timeout` (or [`DRAIN_MAX`] bytes, or its EOF), so
/// that closing does not reset the connection under the response.
fn close_gracefully(s: &TcpStream, cfg: &Config) {
    if s.shutdown(Half::Write).is_err() {
        return;
    }
    let deadline = Instant::now() + cfg.drain_timeout;
    let mut scratch = [0u8; 4096];
    let mut drained = 0;
    while drained < DRAIN_MAX {
        match read_until(s, &mut scratch, deadline) {
            Ok(0) | Err(_) => return,
            Ok(n) => drained += n,
        }
    }
}

/// Serves one connection until it ends: reads requests, answers them
/// (pipelined ones in order, in one write), and closes it as the module docs
/// describe. Returns what it did; an `Err` is an IO error that is not the
/// client going away (e.g. a write timeout).
pub fn serve_connection(stream: TcpStream, cfg: &Config) -> io::Result<Stats> {
    let accepted = Instant::now();
    stream.set_nodelay(true)?;
    stream.set_write_timeout(Some(cfg.write_timeout))?;
    let reg = cfg.shutdown.register(stream);
    let conn = &*reg.conn;
    let s = &conn.stream;
    let mut session = Session::new(cfg.limits);
    let mut head_deadline = accepted + cfg.header_timeout;
    let end = loop {
        let next = session.step(cfg.shutdown.is_triggered());
        if !session.out().is_empty() {
            match (&*s).write_all(session.out()) {
                Ok(()) => session.clear_out(),
                Err(e) if is_disconnect(&e) => break End::Reset,
                Err(e) => return Err(e),
            }
        }
        let phase = match next {
            Next::Close(end) => break end,
            Next::Read(phase) => phase,
        };
        let now = Instant::now();
        let deadline = match phase {
            // The first request's head is due `header_timeout` after the
            // accept, its first byte included.
            Phase::Idle if session.requests() == 0 => head_deadline,
            Phase::Idle => now + cfg.idle_timeout,
            Phase::Head { fresh } => {
                if fresh && session.requests() > 0 {
                    head_deadline = now + cfg.header_timeout;
                }
                head_deadline
            }
            Phase::Body => now + cfg.header_timeout,
        };
        let idle = phase == Phase::Idle;
        if idle && !conn.enter_idle(&cfg.shutdown) {
            break End::Stopping;
        }
        let read = read_until(s, session.read_buf(), deadline);
        let woken = idle && !conn.leave_idle();
        match read {
            Ok(0) if woken => break End::Stopping,
            Ok(0) if idle => break End::ClientClosed,
            Ok(0) => break End::ClientClosedMidRequest,
            Ok(n) => session.filled(n),
            Err(e) if e.kind() == ErrorKind::TimedOut => {
                if idle {
                    break End::IdleTimeout;
                }
                session.reject(Status::RequestTimeout);
                let _ = (&*s).write_all(session.out());
                break End::Rejected(Status::RequestTimeout);
            }
            Err(e) if is_disconnect(&e) => break End::Reset,
            Err(e) => return Err(e),
        }
    };
    match end {
        End::ClientClosed | End::ClientClosedMidRequest | End::Reset => {}
        _ => close_gracefully(s, cfg),
    }
    Ok(Stats {
        requests: session.requests(),
        end,
    })
}

/// Counters over a server's whole run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    /// Connections accepted.
    pub connections: u64,
    /// Requests answered.
    pub requests: u64,
    /// Connections refused with an error status (400, 408, 413, 431, 501).
    pub rejected: u64,
    /// Connections that ended in an IO error (not counting client resets).
    pub errors: u64,
}

#[derive(Default)]
struct Counters {
    connections: AtomicU64,
    requests: AtomicU64,
    rejected: AtomicU64,
    errors: AtomicU64,
}

struct ServerState {
    cfg: Config,
    pool: Pool,
    counters: Counters,
}

impl ServerState {
    fn record(&self, r: &io::Result<Stats>) {
        let c = &self.counters;
        match r {
            Ok(stats) => {
                c.requests.fetch_add(stats.requests, SeqCst);
                if matches!(stats.end, End::Rejected(_)) {
                    c.rejected.fetch_add(1, SeqCst);
                }
            }
            Err(_) => {
                c.errors.fetch_add(1, SeqCst);
            }
        }
    }
}

/// Accepts connections on `listener` and serves each in a greenlet of the
/// state's pool, until killed. Waits for a free slot before each accept.
fn accept_loop(listener: &TcpListener, state: &Arc<ServerState>) {
    loop {
        state.pool.wait_available();
        let stream = match listener.accept() {
            Ok((stream, _peer)) => stream,
            // Out of fds, say: the listener backs off before the next try.
            Err(e) => {
                eprintln!("http_server: accept: {e}");
                continue;
            }
        };
        if state.cfg.shutdown.is_triggered() {
            return; // drops the stream: closed unserved
        }
        state.counters.connections.fetch_add(1, SeqCst);
        let st = state.clone();
        // The only spawner into the pool besides other acceptors: the slot
        // waited for above is (nearly always) still free.
        drop(state.pool.spawn(move || {
            let r = serve_connection(stream, &st.cfg);
            st.record(&r);
        }));
    }
}

/// What [`Server::shutdown`] found and did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShutdownReport {
    /// Connections open when shutdown began.
    pub open: usize,
    /// Of those, the ones idle between requests, closed at once.
    pub idle_closed: usize,
    /// Whether every connection ended within the grace period (false: the
    /// rest were killed).
    pub drained: bool,
    /// The counters of the whole run, taken after the last connection ended.
    pub totals: Totals,
}

/// A running HTTP server: accept greenlets on one listener, a pool of
/// connection greenlets.
pub struct Server {
    addr: SocketAddr,
    state: Arc<ServerState>,
    acceptors: Vec<JoinHandle<()>>,
}

impl fmt::Debug for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("addr", &self.addr)
            .field("acceptors", &self.acceptors.len())
            .field("open", &self.state.pool.len())
            .finish()
    }
}

impl Server {
    /// Starts serving `listener` with one accept greenlet on the current
    /// runtime (call it on a greenlet).
    pub fn start(listener: TcpListener, cfg: Config) -> io::Result<Server> {
        Server::start_with(listener, cfg, 1, &greenhub::Handle::current())
    }

    /// Starts `acceptors` accept greenlets sharing `listener`, spawned with
    /// `handle` (from outside the runtime they go to whichever hubs are
    /// free; from one of its greenlets, to the caller's hub).
    ///
    /// # Panics
    ///
    /// If `cfg.max_conns` or `acceptors` is 0.
    pub fn start_with(
        listener: TcpListener,
        cfg: Config,
        acceptors: usize,
        handle: &greenhub::Handle,
    ) -> io::Result<Server> {
        assert!(acceptors > 0, "a server needs an accept greenlet");
        let addr = listener.local_addr()?;
        let listener = Arc::new(listener);
        let state = Arc::new(ServerState {
            pool: Pool::new(cfg.max_conns),
            cfg,
            counters: Counters::default(),
        });
        let acceptors = (0..acceptors)
            .map(|_| {
                let (listener, state) = (listener.clone(), state.clone());
                handle.spawn(move || accept_loop(&listener, &state))
            })
            .collect();
        Ok(Server {
            addr,
            state,
            acceptors,
        })
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Connections being served now.
    pub fn open_connections(&self) -> usize {
        self.state.pool.len()
    }

    /// The counters so far (connections are counted when they end).
    pub fn totals(&self) -> Totals {
        let c = &self.state.counters;
        Totals {
            connections: c.connections.load(SeqCst),
            requests: c.requests.load(SeqCst),
            rejected: c.rejected.load(SeqCst),
            errors: c.errors.load(SeqCst),
        }
    }

    /// Stops gracefully: triggers the [`Shutdown`] switch (idle connections
    /// close now, busy ones after their current request), stops accepting
    /// (the listener closes), waits up to `grace` for the connections to
    /// end, then kills the rest. Call it on a greenlet (or a plain thread).
    pub fn shutdown(mut self, grace: Duration) -> ShutdownReport {
        let open = self.state.pool.len();
        let idle_closed = self.state.cfg.shutdown.trigger();
        for a in &self.acceptors {
            a.kill();
        }
        for a in self.acceptors.drain(..) {
            let _ = a.join(); // killed: Err(killed), expected
        }
        let drained = self.state.pool.join_timeout(grace);
        if !drained {
            self.state.pool.kill();
            self.state.pool.join();
        }
        ShutdownReport {
            open,
            idle_closed,
            drained,
            totals: self.totals(),
        }
    }
}

/// greenhub's scheduling mode (`--mode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// One hub (`Builder::single_threaded`).
    Single,
    /// M:N with work stealing (the default).
    Mn,
    /// N hubs without stealing (`Builder::pinned`), one acceptor per hub.
    Pinned,
}

/// The command line (and environment) settings.
#[derive(Clone, Debug)]
pub struct Options {
    /// The address to bind.
    pub host: String,
    /// The port (0: any free one).
    pub port: u16,
    /// The scheduling mode.
    pub mode: Mode,
    /// Hubs for `mn` and `pinned` (None: one per CPU).
    pub hubs: Option<usize>,
    /// The connection settings (`max_conns`, timeouts).
    pub config: Config,
    /// How long shutdown waits for requests in flight.
    pub grace: Duration,
}

/// The usage text.
pub const USAGE: &str = "usage: http_server [--host ADDR] [--port N] [--mode single|mn|pinned] \
[--hubs N] [--max-conns N] [--header-timeout-ms N] [--idle-timeout-ms N] [--grace-ms N]
(each flag also read from HTTP_HOST, HTTP_PORT, HTTP_MODE, ...; a flag wins)";

impl Default for Options {
    fn default() -> Options {
        Options {
            host: "127.0.0.1".into(),
            port: 8080,
            mode: Mode::Mn,
            hubs: None,
            config: Config::default(),
            grace: Duration::from_secs(5),
        }
    }
}

impl Options {
    /// Parses `args` (without the program name), with `env` as the source
    /// of the `HTTP_*` variables (a flag wins over its variable).
    pub fn parse(args: &[String], env: impl Fn(&str) -> Option<String>) -> Result<Options, String> {
        const FLAGS: [&str; 8] = [
            "host",
            "port",
            "mode",
            "hubs",
            "max-conns",
            "header-timeout-ms",
            "idle-timeout-ms",
            "grace-ms",
        ];
        let mut values: HashMap<&str, String> = HashMap::new();
        for flag in FLAGS {
            let var = format!("HTTP_{}", flag.to_uppercase().replace('-', "_"));
            if let Some(v) = env(&var) {
                values.insert(flag, v);
            }
        }
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            let (name, inline) = match arg.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (arg.as_str(), None),
            };
            let Some(flag) = name
                .strip_prefix("--")
                .and_then(|n| FLAGS.iter().find(|f| **f == n))
            else {
                return Err(format!("unknown argument `{arg}`"));
            };
            let value = match inline.or_else(|| it.next().cloned()) {
                Some(v) => v,
                None => return Err(format!("--{flag} needs a value")),
            };
            values.insert(flag, value);
        }
        let mut o = Options::default();
        fn num<T: std::str::FromStr>(flag: &str, v: &str) -> Result<T, String> {
            v.parse()
                .map_err(|_| format!("--{flag}: `{v}` is not a valid number"))
        }
        for (flag, v) in &values {
            match *flag {
                "host" => o.host = v.clone(),
                "port" => o.port = num(flag, v)?,
                "mode" => {
                    o.mode = match v.as_str() {
                        "single" => Mode::Single,
                        "mn" => Mode::Mn,
                        "pinned" => Mode::Pinned,
                        _ => return Err(format!("--mode: `{v}` is not single, mn or pinned")),
                    }
                }
                "hubs" => o.hubs = Some(num(flag, v)?),
                "max-conns" => o.config.max_conns = num(flag, v)?,
                "header-timeout-ms" => {
                    o.config.header_timeout = Duration::from_millis(num(flag, v)?)
                }
                "idle-timeout-ms" => o.config.idle_timeout = Duration::from_millis(num(flag, v)?),
                "grace-ms" => o.grace = Duration::from_millis(num(flag, v)?),
                _ => unreachable!("every flag is handled"),
            }
        }
        if o.config.max_conns == 0 || o.hubs == Some(0) {
            return Err("--max-conns and --hubs must be at least 1".into());
        }
        if o.config.header_timeout.is_zero() || o.config.idle_timeout.is_zero() {
            return Err("timeouts must be at least 1 ms".into());
        }
        Ok(o)
    }

    /// The runtime builder for these options.
    pub fn builder(&self) -> greenhub::Builder {
        let b = match self.mode {
            Mode::Single => return greenhub::Builder::new().single_threaded(),
            Mode::Mn => greenhub::Builder::new(),
            Mode::Pinned => greenhub::Builder::new().pinned(),
        };
        match self.hubs {
            Some(n) => b.hubs(n),
            None => b,
        }
    }
}

/// How a [`run_main`] ended.
#[derive(Clone, Copy, Debug)]
pub struct Summary {
    /// The signal that stopped it.
    pub signal: i32,
    /// The hubs it ran on.
    pub hubs: usize,
    /// What shutdown found (and the run's counters).
    pub report: ShutdownReport,
}

/// The whole program: builds the runtime, installs the SIGINT/SIGTERM
/// handlers, binds, starts the server, calls `on_listening` with the bound
/// address, serves until a signal arrives, then shuts down gracefully.
pub fn run_main(opts: &Options, on_listening: impl FnOnce(SocketAddr)) -> io::Result<Summary> {
    let rt = opts.builder().build()?;
    let stop = Arc::new(Event::new());
    let caught = Arc::new(AtomicI32::new(0));
    let mut handlers = Vec::new();
    for sig in [SIGINT, SIGTERM] {
        let (stop, caught) = (stop.clone(), caught.clone());
        handlers.push(signal::signal_handler_on(rt.handle(), sig, move || {
            let _ = caught.compare_exchange(0, sig, SeqCst, SeqCst);
            stop.set();
        })?);
    }
    let listener = TcpListener::bind((opts.host.as_str(), opts.port))?;
    let acceptors = match opts.mode {
        Mode::Pinned => rt.hubs(),
        Mode::Single | Mode::Mn => 1,
    };
    // Spawned from outside the runtime: the acceptors go to free hubs.
    let server = Server::start_with(listener, opts.config.clone(), acceptors, rt.handle())?;
    on_listening(server.local_addr());
    let grace = opts.grace;
    let report = rt.block_on(move || {
        stop.wait();
        server.shutdown(grace)
    });
    drop(handlers);
    Ok(Summary {
        signal: caught.load(SeqCst),
        hubs: rt.hubs(),
        report,
    })
}

#[allow(dead_code)]
fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "-h" || a == "--help") {
        println!("{USAGE}");
        return;
    }
    let opts = match Options::parse(&args, |k| std::env::var(k).ok()) {
        Ok(o) => o,
        Err(msg) => {
            eprintln!("http_server: {msg}\n{USAGE}");
            std::process::exit(2);
        }
    };
    let mode = opts.mode;
    let summary = run_main(&opts, |addr| {
        println!("listening on {addr}");
        let _ = io::stdout().flush();
    });
    match summary {
        Ok(s) => {
            let name = signal::name(s.signal).unwrap_or("a signal");
            println!(
                "caught {name}: {} connection(s) open, {} idle closed, {}; \
                 {} requests on {} connections, {} rejected ({mode:?}, {} hub(s)); bye",
                s.report.open,
                s.report.idle_closed,
                if s.report.drained {
                    "all drained"
                } else {
                    "the rest killed after the grace period"
                },
                s.report.totals.requests,
                s.report.totals.connections,
                s.report.totals.rejected,
                s.hubs,
            );
        }
        Err(e) => {
            eprintln!("http_server: {e}");
            std::process::exit(1);
        }
    }
}
