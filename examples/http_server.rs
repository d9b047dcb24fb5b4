//! An HTTP/1.1 server on greenhub: one greenlet per connection, written as
//! plain blocking code, served by [`StreamServer`].
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
//! Flags ([`USAGE`]; each also read from `HTTP_` + its name in capitals,
//! e.g. `HTTP_MAX_CONNS`; a flag wins) set the fields of [`Options`] and
//! [`Config`], whose docs give their meaning and default. `--mode` picks
//! greenhub's scheduling mode: `mn` (M:N, the default), `migrate` (M:N with
//! the `unsafe` migration opt-in, `Builder::migratable`), `pinned`, `single`;
//! in `mn` and `pinned` every hub accepts on its own `SO_REUSEPORT` socket
//! (so a second server of the same user on the same port joins the group
//! instead of failing), and in `pinned` a connection stays on the hub that
//! accepted it.
//!
//! # Structure
//!
//! - `http_common`: the protocol, IO-free (parsing with `httparse`,
//!   keep-alive, pipelining, routes, error statuses, response bytes), shared
//!   with the tokio twin `examples/http_tokio.rs`; its docs list the
//!   behaviour.
//! - [`serve_connection`]: the IO around it for one accepted stream, to its
//!   end: deadlines, writes, closing. Any acceptor can call it.
//! - [`Server`]: a [`StreamServer`] with `serve_connection` as its handler.
//!   StreamServer brings the acceptors (one per hub with `per_hub`), the
//!   connection limit (`max_connections`: a full server does not accept)
//!   and the stop (close the listeners, wait for the handlers, kill the rest
//!   at the deadline). `Server` adds the run's counters and the [`Shutdown`]
//!   switch, which makes the stop graceful for HTTP.
//! - [`Options`], [`run_main`] and `main`: flags, runtime, signals.
//!
//! # Behaviour
//!
//! - Slow clients: each request head must arrive within the header timeout,
//!   counted from the accept for the first request and from the head's
//!   first byte for later ones; every read gets a `set_read_timeout` of the
//!   time left, so trickling bytes does not extend it. A partial head then
//!   gets `408 Request Timeout`; a client that sent nothing (or is idle past
//!   the idle timeout) is closed without a response. Each body read must
//!   make progress within the header timeout, each write within 10 s.
//! - Closing after an error or a `Connection: close`: the response is
//!   written, the write half shut down, and what the client still sends is
//!   read and dropped for a moment (up to 500 ms / 256 KiB) before the
//!   close: closing with unread input sends a reset that can destroy the
//!   response before the client reads it.
//! - Graceful shutdown ([`Server::shutdown`], on SIGTERM/SIGINT): alone,
//!   `StreamServer::stop` would leave a connection idle between requests
//!   blocked in its read until the grace period ends, then kill it, and a
//!   response in the making would not say that the connection closes. So
//!   first the [`Shutdown`] switch is set: connections close at their next
//!   request boundary (a response in the making says `Connection: close`),
//!   and idle ones are woken by shutting down their read half. Then
//!   `stop(grace)` closes the listeners, lets requests in flight finish for
//!   up to `grace`, and kills what is left.

#[path = "http_common/mod.rs"]
pub mod http_common;

use std::collections::HashMap;
use std::fmt;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown as Half, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use greenhub::net::TcpStream;
use greenhub::server::{StreamBuilder, StreamServer};
use greenhub::signal::{self, SIGINT, SIGTERM};
use greenhub::sync::Event;

use http_common::{End, Limits, Next, Phase, Session, Status};

/// Per-connection settings, and the shutdown switch connections watch.
#[derive(Clone, Debug)]
pub struct Config {
    /// `--max-conns`, default 10000: connections served at once
    /// (StreamServer's `max_connections`); while all are taken, new clients
    /// wait in the listen backlog.
    pub max_conns: usize,
    /// `--header-timeout-ms`, default 5000: the time a request head may take
    /// (see the module docs).
    pub header_timeout: Duration,
    /// `--idle-timeout-ms`, default 60000: how long a kept-alive connection
    /// may wait for its next request.
    pub idle_timeout: Duration,
    /// The timeout of each write (default 10 s).
    pub write_timeout: Duration,
    /// How long a closing connection reads what the client still sends
    /// (default 500 ms).
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
            shutdown: Shutdown::default(),
        }
    }
}

/// Locks `m`, also after a panic of another holder (the data stays valid).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The most bytes a closing connection reads and drops.
const DRAIN_MAX: usize = 256 * 1024;

/// A connection as the [`Shutdown`] switch sees it: its stream (so that it
/// can be woken) and whether it waits for a request.
struct Conn {
    stream: TcpStream,
    idle: AtomicBool,
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
        write!(f, "Shutdown {{ triggered: {} }}", self.is_triggered())
    }
}

impl Shutdown {
    /// Whether [`trigger`](Self::trigger) was called.
    pub fn is_triggered(&self) -> bool {
        self.inner.stopping.load(SeqCst)
    }

    /// Turns the switch on: every connection closes at its next request
    /// boundary, and those idle between requests now are woken (their read
    /// half is shut down). Returns how many were woken.
    pub fn trigger(&self) -> usize {
        // Store, then scan; a connection marks itself idle, then checks the
        // flag (in `serve_connection`): one of the two sees the other.
        self.inner.stopping.store(true, SeqCst);
        let mut woken = 0;
        for conn in lock(&self.inner.conns).values() {
            if conn.idle.load(SeqCst) {
                let _ = conn.stream.shutdown(Half::Read);
                woken += 1;
            }
        }
        woken
    }

    fn register(&self, stream: TcpStream) -> Registered<'_> {
        let id = self.inner.next_id.fetch_add(1, SeqCst);
        let idle = AtomicBool::new(false);
        let conn = Arc::new(Conn { stream, idle });
        lock(&self.inner.conns).insert(id, conn.clone());
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
        lock(&self.shutdown.inner.conns).remove(&self.id);
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
    let (conn, s) = (&*reg.conn, &reg.conn.stream);
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
        // Marked idle while it waits for a request, so that a shutdown can
        // wake it; no wait once the server stops.
        let idle = phase == Phase::Idle;
        conn.idle.store(idle, SeqCst);
        let stopping = || idle && cfg.shutdown.is_triggered();
        let read = match stopping() {
            true => Ok(0),
            false => read_until(s, session.read_buf(), deadline),
        };
        conn.idle.store(false, SeqCst);
        match read {
            Ok(0) if stopping() => break End::Stopping,
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

/// A running HTTP server: a [`StreamServer`] that serves each connection
/// with [`serve_connection`], and the counters of its run.
#[derive(Debug)]
pub struct Server {
    streams: StreamServer,
    shutdown: Shutdown,
    /// All but `connections`, which the StreamServer counts.
    totals: Arc<Mutex<Totals>>,
}

impl Server {
    /// Starts serving with `builder` (bound, with `per_hub` and `handle` as
    /// the caller wants) at most `cfg.max_conns` connections at once; fails
    /// as [`StreamBuilder::serve`] does (e.g. the bind), panics if
    /// `max_conns` is 0.
    pub fn start(builder: StreamBuilder, cfg: Config) -> io::Result<Server> {
        let totals = Arc::new(Mutex::new(Totals::default()));
        let (shutdown, t) = (cfg.shutdown.clone(), totals.clone());
        let streams = builder
            .max_connections(cfg.max_conns)
            .serve(move |stream, _peer| {
                let r = serve_connection(stream, &cfg);
                let mut t = lock(&t);
                match r {
                    Ok(stats) => {
                        t.requests += stats.requests;
                        t.rejected += u64::from(matches!(stats.end, End::Rejected(_)));
                    }
                    Err(_) => t.errors += 1,
                }
            })?;
        Ok(Server {
            streams,
            shutdown,
            totals,
        })
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.streams.local_addr()
    }

    /// Connections being served now.
    pub fn open_connections(&self) -> usize {
        self.streams.connections()
    }

    /// The counters so far (requests are counted when their connection
    /// ends).
    pub fn totals(&self) -> Totals {
        Totals {
            connections: self.streams.stats().accepted.iter().sum(),
            ..*lock(&self.totals)
        }
    }

    /// Stops gracefully (see the module docs): triggers the [`Shutdown`]
    /// switch (idle connections close now, busy ones after their current
    /// request), then [`StreamServer::stop`]s: the listeners close, the
    /// connections get up to `grace` to end, the rest are killed. Call it
    /// on a greenlet (or a plain thread).
    pub fn shutdown(self, grace: Duration) -> ShutdownReport {
        let open = self.streams.connections();
        let idle_closed = self.shutdown.trigger();
        let report = self.streams.stop(grace);
        ShutdownReport {
            open,
            idle_closed,
            drained: report.killed == 0,
            totals: self.totals(),
        }
    }
}

/// greenhub's scheduling mode (`--mode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// One hub (`Builder::single_threaded`), one acceptor.
    Single,
    /// M:N with work stealing (the default), an acceptor per hub.
    Mn,
    /// M:N where started connection greenlets may also move to an idle hub
    /// (`Builder::migratable`), an acceptor per hub.
    Migrate,
    /// N hubs without stealing (`Builder::pinned`), an acceptor per hub.
    Pinned,
}

/// The command line (and environment) settings.
#[derive(Clone, Debug)]
pub struct Options {
    /// `--host`, default 127.0.0.1: the address to bind.
    pub host: String,
    /// `--port`, default 8080 (0: a free one, which the line printed names).
    pub port: u16,
    /// `--mode single|mn|migrate|pinned`, default mn: the scheduling mode.
    pub mode: Mode,
    /// `--hubs`, default one per CPU: hubs for `mn` and `pinned`.
    pub hubs: Option<usize>,
    /// The connection settings (`--max-conns`, the timeouts).
    pub config: Config,
    /// `--grace-ms`, default 5000: how long shutdown waits for requests in
    /// flight before it kills their greenlets.
    pub grace: Duration,
}

/// The usage text.
pub const USAGE: &str =
    "usage: http_server [--host ADDR] [--port N] [--mode single|mn|migrate|pinned] \
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
        const FLAGS: &str =
            "host port mode hubs max-conns header-timeout-ms idle-timeout-ms grace-ms";
        let mut flags = HashMap::new();
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            let (name, inline) = match arg.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (arg.as_str(), None),
            };
            let known = |n: &&str| FLAGS.split_whitespace().any(|f| f == *n);
            let flag = (name.strip_prefix("--").filter(known))
                .ok_or_else(|| format!("unknown argument `{arg}`"))?;
            let value = inline.or_else(|| it.next().cloned());
            flags.insert(flag, value.ok_or(format!("--{flag} needs a value"))?);
        }
        // A flag's value, else its variable's.
        let get = |flag: &str| {
            let var = format!("HTTP_{}", flag.to_uppercase().replace('-', "_"));
            flags.get(flag).cloned().or_else(|| env(&var))
        };
        fn num<T: std::str::FromStr>(flag: &str, v: Option<String>) -> Result<Option<T>, String> {
            let bad = |v| format!("--{flag}: `{v}` is not a valid number");
            v.map(|v| v.parse().map_err(|_| bad(v))).transpose()
        }
        let ms = |flag: &str| Ok::<_, String>(num(flag, get(flag))?.map(Duration::from_millis));
        let d = Options::default();
        let o = Options {
            host: get("host").unwrap_or(d.host),
            port: num("port", get("port"))?.unwrap_or(d.port),
            mode: match get("mode").as_deref() {
                None | Some("mn") => Mode::Mn,
                Some("single") => Mode::Single,
                Some("pinned") => Mode::Pinned,
                Some("migrate") => Mode::Migrate,
                Some(v) => {
                    return Err(format!(
                        "--mode: `{v}` is not single, mn, migrate or pinned"
                    ));
                }
            },
            hubs: num("hubs", get("hubs"))?,
            config: Config {
                max_conns: num("max-conns", get("max-conns"))?.unwrap_or(d.config.max_conns),
                header_timeout: ms("header-timeout-ms")?.unwrap_or(d.config.header_timeout),
                idle_timeout: ms("idle-timeout-ms")?.unwrap_or(d.config.idle_timeout),
                ..d.config
            },
            grace: ms("grace-ms")?.unwrap_or(d.grace),
        };
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
            // SAFETY: the connection greenlets keep a socket, byte buffers
            // and `Arc`s of atomics across their blocking calls; the
            // server's locks (parking_lot) are never held across one.
            Mode::Migrate => unsafe { greenhub::Builder::new().migratable() },
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
    // Started from outside the runtime, hence `handle`.
    let builder = StreamServer::bind((opts.host.as_str(), opts.port))?
        .per_hub(opts.mode != Mode::Single)
        .handle(rt.handle().clone());
    let server = Server::start(builder, opts.config.clone())?;
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
    let printed = |addr| {
        println!("listening on {addr}");
        let _ = io::stdout().flush();
    };
    let s = run_main(&opts, printed).unwrap_or_else(|e| {
        eprintln!("http_server: {e}");
        std::process::exit(1);
    });
    let (r, t) = (s.report, s.report.totals);
    let name = signal::name(s.signal).unwrap_or("a signal");
    let drained = match r.drained {
        true => "all drained",
        false => "the rest killed after the grace period",
    };
    println!(
        "caught {name}: {} connection(s) open, {} idle closed, {drained}; {} requests on {} \
         connections, {} rejected ({mode:?}, {} hub(s)); bye",
        r.open, r.idle_closed, t.requests, t.connections, t.rejected, s.hubs,
    );
}
