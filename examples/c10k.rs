//! C10K: why people leave thread-per-connection for greenlets.
//!
//! One small blocking keep-alive HTTP/1.1 handler ([`handle`], built on the
//! shared protocol code of `examples/http_common`: `GET /` answers
//! `Hello, World!`) is served in separate child processes, one per *side*:
//!
//! - `std`: `std::net::TcpListener` and a named OS thread per accepted
//!   connection (`std::thread::Builder`, 64 KiB stacks: [`STD_STACK`]);
//! - `std-2m`: the same with std's default 2 MiB stacks;
//! - `greenhub`: the same handler on [`greenhub::server::StreamServer`]
//!   (a greenlet per connection, M:N with the default hubs, one acceptor
//!   per hub);
//! - `greenhub-1`: the same, single-threaded (one hub).
//!
//! ```text
//! cargo run --release --example c10k                          # 10,000 idle, 5 s of load, all sides
//! cargo run --release --example c10k -- --idle 1000 --secs 2
//! cargo run --release --example c10k -- --sides std,greenhub --active 64
//! cargo run --release --example c10k -- --serve greenhub --port 8080   # just a server
//! ```
//!
//! # What is measured, and how
//!
//! The parent process re-executes itself with `--serve SIDE --port 0`, waits
//! for the child's `listening on ADDR` line and then, for each side in turn:
//!
//! 1. opens `--idle N` (default 10,000) *idle* keep-alive connections: plain
//!    blocking std sockets held in a `Vec` (no thread per client), each
//!    sending one `GET /` and reading its response (in batches of
//!    [`BATCH`]), then left open and silent;
//! 2. samples the server process: `VmRSS`, `VmSize` and `Threads` from
//!    `/proc/<pid>/status` (and the machine's `KernelStack` from
//!    `/proc/meminfo`: a thread's kernel stack is not in its process's RSS);
//! 3. runs the *active* load: `--active C` (default 32) connections doing
//!    request/response loops for `--secs S` (default 5) from greenlets on a
//!    single-threaded greenhub runtime in the parent (like `wrk -t1`),
//!    recording every request's latency; a sampler thread keeps the
//!    server's peak thread count and RSS meanwhile;
//! 4. sends a second request on every idle connection, to check that the
//!    server kept them all alive;
//! 5. reads the server's own counters (accepted connections, errors such as
//!    a failed `pthread_create`) through the child's stdin, and its peak RSS
//!    (`VmHWM`); then kills the child.
//!
//! Every response is compared byte for byte with the expected one. A
//! failure (connect error, reset, EOF, timeout, wrong bytes) is counted and
//! its first messages are printed; nothing panics on them, so a side that
//! cannot create 10,000 threads shows up as failures, not as a crash.
//!
//! The clients run on the same machine as the server and compete with it
//! for the CPUs: compare the sides with each other, and expect noise.
//!
//! # Reading the numbers
//!
//! Both sides run the same handler with the same buffers (the shared
//! `Session`: a 16 KiB input buffer and an output buffer per connection),
//! and those buffers are most of either server's RSS, so the RSS ratio is
//! modest. What differs is the rest: an OS thread costs its touched stack
//! pages (in RSS), a kernel stack (16 KiB on x86-64, *not* in RSS, hence
//! the `kstack` column), a scheduler entity and its virtual memory
//! reservation (`VmSize`; 2 MiB per thread with std's default); a parked
//! greenlet costs its touched stack pages in a slab and a few words in its
//! hub. The latencies come from a closed loop (each active connection
//! sends its next request when the last one is answered), so the mean is
//! fixed by the throughput; the median and p99 show how evenly the server
//! shares the CPUs among the active connections.
//!
//! The children never outlive the run: each is killed when its side is
//! done (also when the parent panics, by a drop guard), a child exits when
//! its stdin (a pipe from the parent) reaches end-of-file, i.e. when the
//! parent dies in any way, and Ctrl-C at a terminal reaches the whole
//! process group.

// Shared with the HTTP examples; this one uses only part of it.
#[allow(dead_code)]
#[path = "http_common/mod.rs"]
mod http_common;

use std::fmt;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use http_common::{Limits, Next, PLAINTEXT, Session, Status};

/// The stack size of the `std` side's connection threads.
pub const STD_STACK: usize = 64 * 1024;

/// Idle connections opened (and then checked) at a time.
pub const BATCH: usize = 64;

/// How long a client waits for a response before counting a failure.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// The request every client sends.
pub const REQUEST: &[u8] = b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n";

/// The most distinct error messages a [`SideReport`] keeps (further ones
/// are only counted).
const MAX_ERRORS: usize = 8;

/// Adds `n` occurrences of `msg` to `errors` (distinct messages with
/// their counts; past [`MAX_ERRORS`] distinct ones, under "other errors").
fn note(errors: &mut Vec<(String, u64)>, msg: String, n: u64) {
    const OTHER: &str = "(other errors)";
    if let Some(e) = errors.iter_mut().find(|e| e.0 == msg) {
        e.1 += n;
    } else if errors.len() < MAX_ERRORS {
        errors.push((msg, n));
    } else if let Some(e) = errors.iter_mut().find(|e| e.0 == OTHER) {
        e.1 += n;
    } else {
        errors.push((OTHER.into(), n));
    }
}

/// A client-side IO error in words (a read that hit end-of-file means the
/// server closed the connection).
fn describe(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::UnexpectedEof => "connection closed by the server".into(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
            format!("no response within {} s", IO_TIMEOUT.as_secs())
        }
        _ => e.to_string(),
    }
}

/// The exact response to [`REQUEST`].
pub fn expected_response() -> Vec<u8> {
    let mut out = Vec::new();
    http_common::response(&mut out, Status::Ok, "text/plain", PLAINTEXT, None, false);
    out
}

/// Serves one connection until the client closes it: reads requests,
/// answers them (keep-alive, pipelining) and writes the responses. Plain
/// blocking code; the same function runs on an OS thread (std sockets) and
/// in a greenlet (greenhub sockets). Returns the number of requests
/// answered.
///
/// # Errors
///
/// The first read or write error (e.g. a reset).
pub fn handle<S: Read + Write>(mut stream: S) -> io::Result<u64> {
    let mut session = Session::new(Limits::default());
    loop {
        let next = session.step(false);
        if !session.out().is_empty() {
            stream.write_all(session.out())?;
            session.clear_out();
        }
        match next {
            Next::Read(_) => match stream.read(session.read_buf()) {
                Ok(0) => return Ok(session.requests()),
                Ok(n) => session.filled(n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            },
            Next::Close(_) => return Ok(session.requests()),
        }
    }
}

/// One way of serving [`handle`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// An OS thread per connection with [`STD_STACK`] stacks.
    Std,
    /// An OS thread per connection with std's default (2 MiB) stacks.
    Std2M,
    /// A greenlet per connection on `StreamServer`, M:N with the default
    /// hubs (one per CPU).
    Greenhub,
    /// A greenlet per connection on `StreamServer`, single-threaded.
    GreenhubSingle,
}

impl Side {
    /// Every side, in the default order.
    pub const ALL: [Side; 4] = [Side::Std, Side::Std2M, Side::Greenhub, Side::GreenhubSingle];

    /// The side's name on the command line (`--sides`, `--serve`).
    pub fn name(self) -> &'static str {
        match self {
            Side::Std => "std",
            Side::Std2M => "std-2m",
            Side::Greenhub => "greenhub",
            Side::GreenhubSingle => "greenhub-1",
        }
    }

    /// The side named `name`.
    pub fn parse(name: &str) -> Option<Side> {
        Side::ALL.into_iter().find(|s| s.name() == name)
    }

    /// A greenhub side (as opposed to thread-per-connection).
    pub fn is_greenhub(self) -> bool {
        matches!(self, Side::Greenhub | Side::GreenhubSingle)
    }
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Raises the soft limit on open files to the hard limit (10,000 idle
/// connections need more than the usual 1,024 descriptors); returns the
/// new soft limit.
pub fn raise_nofile_limit() -> libc::rlim_t {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the rlimit we pass, which lives for the call.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return 0;
    }
    if lim.rlim_cur < lim.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: lim.rlim_max,
            rlim_max: lim.rlim_max,
        };
        // SAFETY: setrlimit only reads the rlimit we pass.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            lim = raised;
        }
    }
    lim.rlim_cur
}

// ---------------------------------------------------------------------------
// The server child.

/// Counters of the `std` servers (greenhub's are `StreamServer::stats`).
#[derive(Default)]
struct StdCounters {
    accepted: AtomicU64,
    accept_errors: AtomicU64,
    spawn_errors: AtomicU64,
    first_error: Mutex<Option<String>>,
}

impl StdCounters {
    fn error(&self, what: &str, e: &io::Error) {
        let mut first = self.first_error.lock().unwrap();
        if first.is_none() {
            eprintln!("c10k std server: {what}: {e} (further errors are only counted)");
            *first = Some(format!("{what}: {e}"));
        }
    }

    fn line(&self) -> String {
        format!(
            "accepted={} accept_errors={} spawn_errors={} first_error={}",
            self.accepted.load(Ordering::Relaxed),
            self.accept_errors.load(Ordering::Relaxed),
            self.spawn_errors.load(Ordering::Relaxed),
            self.first_error
                .lock()
                .unwrap()
                .as_deref()
                .unwrap_or("none")
        )
    }
}

/// The `std` side: a named OS thread per connection, with `stack` bytes of
/// stack (`None`: std's default).
fn serve_std(listener: std::net::TcpListener, stack: Option<usize>, counters: &StdCounters) -> ! {
    let mut n = 0u64;
    loop {
        match listener.accept() {
            Ok((conn, _peer)) => {
                counters.accepted.fetch_add(1, Ordering::Relaxed);
                n += 1;
                let _ = conn.set_nodelay(true);
                let mut b = std::thread::Builder::new().name(format!("conn-{n}"));
                if let Some(bytes) = stack {
                    b = b.stack_size(bytes);
                }
                // On failure the closure, and with it the connection, is
                // dropped: the client sees the connection closed.
                if let Err(e) = b.spawn(move || handle(conn)) {
                    counters.spawn_errors.fetch_add(1, Ordering::Relaxed);
                    counters.error("thread spawn", &e);
                }
            }
            Err(e) => {
                counters.accept_errors.fetch_add(1, Ordering::Relaxed);
                counters.error("accept", &e);
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

/// Answers the parent on this process's stdin: `stats` prints one
/// `stats ...` line made by `stats`; end-of-file (the parent is gone or done)
/// exits the process.
fn control(stats: impl Fn() -> String) -> ! {
    for line in io::stdin().lock().lines() {
        match line {
            Ok(l) if l.trim() == "stats" => println!("stats {}", stats()),
            Ok(_) => {}
            Err(_) => break,
        }
    }
    std::process::exit(0)
}

/// Runs the server of `side` on `127.0.0.1:port` (0: any free port) in this
/// process: prints `listening on ADDR`, then serves until its stdin reaches
/// end-of-file (see the module docs), when it exits the process.
///
/// # Errors
///
/// A bind or runtime error, before the server starts.
pub fn serve_child(side: Side, port: u16) -> io::Result<()> {
    raise_nofile_limit();
    match side {
        Side::Std | Side::Std2M => {
            let listener = std::net::TcpListener::bind(("127.0.0.1", port))?;
            println!("listening on {}", listener.local_addr()?);
            let stack = (side == Side::Std).then_some(STD_STACK);
            let counters = Arc::new(StdCounters::default());
            let c = counters.clone();
            std::thread::Builder::new()
                .name("accept".into())
                .spawn(move || serve_std(listener, stack, &c))?;
            control(move || counters.line())
        }
        Side::Greenhub | Side::GreenhubSingle => {
            let builder = match side {
                Side::GreenhubSingle => greenhub::Builder::new().single_threaded(),
                _ => greenhub::Builder::new(),
            };
            let rt = builder.build()?;
            let server = greenhub::server::StreamServer::bind(("127.0.0.1", port))?
                .per_hub(true)
                .handle(rt.handle().clone())
                .serve(|conn, _peer| {
                    let _ = conn.set_nodelay(true);
                    let _ = handle(conn);
                })?;
            println!("listening on {}", server.local_addr());
            let hubs = rt.hubs();
            control(move || {
                let s = server.stats();
                format!(
                    "hubs={hubs} accepted={} accept_errors={} active={} panicked={}",
                    s.accepted.iter().sum::<u64>(),
                    s.errors,
                    s.active,
                    s.panicked
                )
            })
        }
    }
}

// ---------------------------------------------------------------------------
// The clients (the parent process).

/// What a run measures.
#[derive(Clone, Debug)]
pub struct Config {
    /// Idle keep-alive connections.
    pub idle: usize,
    /// Connections of the active load.
    pub active: usize,
    /// How long the active load runs.
    pub load: Duration,
    /// The sides to measure, in order.
    pub sides: Vec<Side>,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            idle: 10_000,
            active: 32,
            load: Duration::from_secs(5),
            sides: Side::ALL.to_vec(),
        }
    }
}

/// A server process's figures from `/proc/<pid>/status` (KiB, and threads).
#[derive(Clone, Copy, Debug, Default)]
pub struct ProcStatus {
    /// `VmRSS`: resident memory.
    pub rss_kib: u64,
    /// `VmHWM`: peak resident memory.
    pub hwm_kib: u64,
    /// `VmSize`: virtual memory.
    pub vm_kib: u64,
    /// `Threads`: OS threads.
    pub threads: u64,
}

/// Reads `/proc/<pid>/status`.
pub fn proc_status(pid: u32) -> io::Result<ProcStatus> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let mut st = ProcStatus::default();
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let n = || {
            value
                .split_whitespace()
                .next()
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        match key {
            "VmRSS" => st.rss_kib = n(),
            "VmHWM" => st.hwm_kib = n(),
            "VmSize" => st.vm_kib = n(),
            "Threads" => st.threads = n(),
            _ => {}
        }
    }
    Ok(st)
}

/// The machine's `KernelStack` (KiB) from `/proc/meminfo`: the kernel
/// stacks of all threads of all processes.
pub fn kernel_stack_kib() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("KernelStack:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The figures of one side.
#[derive(Clone, Debug)]
pub struct SideReport {
    /// The side.
    pub side: Side,
    /// The server's figures once it listens, before any client.
    pub base: ProcStatus,
    /// The server's figures with the idle connections open.
    pub idle: ProcStatus,
    /// The most threads seen from the idle phase to the end of the load.
    pub peak_threads: u64,
    /// `VmHWM` at the end.
    pub hwm_kib: u64,
    /// The change of the machine's `KernelStack` from `base` to `idle`
    /// (KiB; other processes add noise).
    pub kernel_stack_delta_kib: Option<i64>,
    /// Idle connections asked for.
    pub idle_wanted: usize,
    /// Idle connections whose first request was answered.
    pub idle_ok: usize,
    /// Idle connections still answered after the load.
    pub idle_alive: usize,
    /// How long opening the idle connections took.
    pub idle_setup: Duration,
    /// Responses to the active load.
    pub responses: u64,
    /// How long the active load ran.
    pub load_time: Duration,
    /// Failed requests of the active load (each also drops its connection).
    pub load_failures: u64,
    /// The mean latency of the active load's requests.
    pub mean: Duration,
    /// The median latency of the active load's requests.
    pub p50: Duration,
    /// The 99th percentile.
    pub p99: Duration,
    /// The server's own `stats` line.
    pub server_stats: String,
    /// The failure messages (distinct ones, with how often each came).
    pub errors: Vec<(String, u64)>,
}

impl SideReport {
    fn new(side: Side, idle_wanted: usize) -> SideReport {
        SideReport {
            side,
            base: ProcStatus::default(),
            idle: ProcStatus::default(),
            peak_threads: 0,
            hwm_kib: 0,
            kernel_stack_delta_kib: None,
            idle_wanted,
            idle_ok: 0,
            idle_alive: 0,
            idle_setup: Duration::ZERO,
            responses: 0,
            load_time: Duration::ZERO,
            load_failures: 0,
            mean: Duration::ZERO,
            p50: Duration::ZERO,
            p99: Duration::ZERO,
            server_stats: String::new(),
            errors: Vec::new(),
        }
    }

    /// All failures: idle connections not served (first request or the
    /// check after the load) and failed requests of the active load.
    pub fn failures(&self) -> u64 {
        (self.idle_wanted - self.idle_alive.min(self.idle_wanted)) as u64 + self.load_failures
    }

    /// Requests per second of the active load.
    pub fn req_per_sec(&self) -> f64 {
        self.responses as f64 / self.load_time.as_secs_f64().max(1e-9)
    }

    /// The server's RSS growth per idle connection (KiB).
    pub fn kib_per_conn(&self) -> f64 {
        self.idle.rss_kib.saturating_sub(self.base.rss_kib) as f64 / self.idle_ok.max(1) as f64
    }

    fn error(&mut self, msg: String) {
        note(&mut self.errors, msg, 1);
    }
}

/// A running server child; killed (and reaped) when dropped.
struct Server {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
    addr: SocketAddr,
}

impl Server {
    /// Starts `cmd` and waits for its `listening on ADDR` line.
    fn start(mut cmd: Command) -> io::Result<Server> {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let stdout = child.stdout.take().expect("piped stdout");
        let stdin = child.stdin.take();
        let (tx, lines) = mpsc::channel();
        std::thread::Builder::new()
            .name("c10k-child-out".into())
            .spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            })?;
        let mut server = Server {
            child,
            stdin,
            lines,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        };
        let line = server.line_starting("listening on ", Duration::from_secs(30))?;
        server.addr = line
            .trim()
            .parse()
            .map_err(|e| io::Error::other(format!("bad address {line:?}: {e}")))?;
        Ok(server)
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What follows `prefix` in the first line that has it (other lines are
    /// skipped; a test harness may print before it on the same line).
    fn line_starting(&mut self, prefix: &str, wait: Duration) -> io::Result<String> {
        let deadline = Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) => {
                    if let Some(at) = l.find(prefix) {
                        return Ok(l[at + prefix.len()..].to_string());
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("no {prefix:?} line from the server"),
                    ));
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let status = self.child.try_wait().ok().flatten();
                    return Err(io::Error::other(format!(
                        "the server exited before printing {prefix:?} (status {status:?})"
                    )));
                }
            }
        }
    }

    /// The server's `stats` line.
    fn stats(&mut self) -> io::Result<String> {
        let stdin = self.stdin.as_mut().expect("stdin kept until drop");
        stdin.write_all(b"stats\n")?;
        stdin.flush()?;
        self.line_starting("stats ", Duration::from_secs(10))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The server's `/proc` figures, or zeros if they cannot be read.
fn sample(pid: u32) -> ProcStatus {
    proc_status(pid).unwrap_or_default()
}

/// Sends [`REQUEST`] on every stream of `batch` and then reads every
/// response (all with one deadline); returns whether each was answered,
/// recording the failures in `report`.
fn request_batch(
    batch: &mut [std::net::TcpStream],
    expected: &[u8],
    report: &mut SideReport,
) -> Vec<bool> {
    let mut ok: Vec<bool> = batch
        .iter_mut()
        .map(|s| match s.write_all(REQUEST) {
            Ok(()) => true,
            Err(e) => {
                report.error(format!("idle write: {}", describe(&e)));
                false
            }
        })
        .collect();
    let deadline = Instant::now() + IO_TIMEOUT;
    let mut buf = vec![0; expected.len()];
    for (s, ok) in batch.iter_mut().zip(&mut ok) {
        if !*ok {
            continue;
        }
        let left = deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(1));
        let r = s
            .set_read_timeout(Some(left))
            .and_then(|()| s.read_exact(&mut buf));
        *ok = match r {
            Ok(()) if buf == expected => true,
            Ok(()) => {
                report.error(format!(
                    "idle: unexpected response {:?}",
                    String::from_utf8_lossy(&buf)
                ));
                false
            }
            Err(e) => {
                report.error(format!("idle read: {}", describe(&e)));
                false
            }
        };
    }
    ok
}

/// Opens the idle connections: batches of [`BATCH`] connects, then one
/// request on each; keeps those that were answered. Gives up after three
/// batches in a row in which nothing was answered.
fn open_idle(
    addr: SocketAddr,
    n: usize,
    expected: &[u8],
    report: &mut SideReport,
) -> Vec<std::net::TcpStream> {
    let mut idle = Vec::with_capacity(n);
    let mut dead_batches = 0;
    let mut started = 0;
    while started < n && dead_batches < 3 {
        let k = BATCH.min(n - started);
        started += k;
        let mut batch = Vec::with_capacity(k);
        for _ in 0..k {
            match std::net::TcpStream::connect_timeout(&addr, IO_TIMEOUT) {
                Ok(s) => {
                    let _ = s.set_nodelay(true);
                    batch.push(s);
                }
                Err(e) => report.error(format!("idle connect: {}", describe(&e))),
            }
        }
        let ok = request_batch(&mut batch, expected, report);
        let before = idle.len();
        idle.extend(
            batch
                .into_iter()
                .zip(ok)
                .filter(|(_, ok)| *ok)
                .map(|(s, _)| s),
        );
        dead_batches = if idle.len() == before {
            dead_batches + 1
        } else {
            0
        };
    }
    if started < n {
        report.error(format!(
            "idle: gave up after {started} of {n} connections (3 batches without an answer)"
        ));
    }
    idle
}

/// One active client: request/response loops until `deadline`, recording
/// each latency (ns); reconnects after a failure.
fn active_client(
    addr: SocketAddr,
    deadline: Instant,
    expected: &[u8],
    lat: &mut Vec<u64>,
    errors: &Mutex<Vec<(String, u64)>>,
) -> u64 {
    use greenhub::net::TcpStream;
    let mut failures = 0;
    let mut fail = |msg: String| {
        failures += 1;
        note(&mut errors.lock().unwrap(), msg, 1);
        // A failing server fails fast: do not hammer it.
        greenhub::sleep(Duration::from_millis(10));
    };
    let mut buf = vec![0; expected.len()];
    while Instant::now() < deadline {
        let s = match TcpStream::connect_timeout(&addr, IO_TIMEOUT) {
            Ok(s) => s,
            Err(e) => {
                fail(format!("active connect: {}", describe(&e)));
                continue;
            }
        };
        let _ = s.set_nodelay(true);
        let _ = s.set_read_timeout(Some(IO_TIMEOUT));
        let mut s = s;
        while Instant::now() < deadline {
            let t0 = Instant::now();
            let r = s.write_all(REQUEST).and_then(|()| s.read_exact(&mut buf));
            match r {
                Ok(()) if buf == expected => lat.push(t0.elapsed().as_nanos() as u64),
                Ok(()) => {
                    fail(format!(
                        "active: unexpected response {:?}",
                        String::from_utf8_lossy(&buf)
                    ));
                    break;
                }
                Err(e) => {
                    fail(format!("active: {}", describe(&e)));
                    break;
                }
            }
        }
    }
    failures
}

/// The active load: `cfg.active` client greenlets on a single-threaded
/// greenhub runtime for `cfg.load`; fills the load fields of `report`.
fn active_load(addr: SocketAddr, cfg: &Config, expected: &[u8], report: &mut SideReport) {
    let rt = match greenhub::Builder::new().single_threaded().build() {
        Ok(rt) => rt,
        Err(e) => {
            report.error(format!("client runtime: {e}"));
            return;
        }
    };
    let errors = Arc::new(Mutex::new(Vec::new()));
    let expected = Arc::new(expected.to_vec());
    let (active, load) = (cfg.active, cfg.load);
    let start = Instant::now();
    let errs = errors.clone();
    let (mut lat, failures) = rt.block_on(move || {
        let deadline = Instant::now() + load;
        let clients: Vec<_> = (0..active)
            .map(|_| {
                let (errs, expected) = (errs.clone(), expected.clone());
                greenhub::spawn(move || {
                    let mut lat = Vec::with_capacity(1 << 16);
                    let f = active_client(addr, deadline, &expected, &mut lat, &errs);
                    (lat, f)
                })
            })
            .collect();
        let mut all = Vec::new();
        let mut failures = 0;
        for c in clients {
            match c.join() {
                Ok((lat, f)) => {
                    all.extend(lat);
                    failures += f;
                }
                Err(_) => failures += 1,
            }
        }
        (all, failures)
    });
    report.load_time = start.elapsed();
    rt.shutdown();
    report.responses = lat.len() as u64;
    report.load_failures = failures;
    for (msg, n) in errors.lock().unwrap().drain(..) {
        note(&mut report.errors, msg, n);
    }
    lat.sort_unstable();
    if !lat.is_empty() {
        report.mean = Duration::from_nanos(lat.iter().sum::<u64>() / lat.len() as u64);
    }
    let pct = |p: usize| {
        lat.get((lat.len() * p / 100).min(lat.len().saturating_sub(1)))
            .map_or(Duration::ZERO, |&ns| Duration::from_nanos(ns))
    };
    report.p50 = pct(50);
    report.p99 = pct(99);
}

/// Measures one side: starts its server with `cmd` (which must run
/// [`serve_child`] for `side`), runs the clients as the module docs
/// describe, kills the server. Failures are recorded in the report, never
/// raised.
pub fn run_side(side: Side, cfg: &Config, cmd: Command) -> SideReport {
    let mut report = SideReport::new(side, cfg.idle);
    let mut server = match Server::start(cmd) {
        Ok(s) => s,
        Err(e) => {
            report.error(format!("server: {e}"));
            return report;
        }
    };
    let pid = server.pid();
    let expected = expected_response();
    std::thread::sleep(Duration::from_millis(100));
    report.base = sample(pid);
    let kstack_base = kernel_stack_kib();

    let t0 = Instant::now();
    let mut idle = open_idle(server.addr, cfg.idle, &expected, &mut report);
    report.idle_setup = t0.elapsed();
    report.idle_ok = idle.len();
    std::thread::sleep(Duration::from_millis(200)); // let the counters settle
    report.idle = sample(pid);
    report.kernel_stack_delta_kib = kstack_base
        .zip(kernel_stack_kib())
        .map(|(a, b)| b as i64 - a as i64);

    // The load, with a sampler of the server's peak threads.
    let stop = Arc::new(AtomicBool::new(false));
    let peak = Arc::new(AtomicU64::new(report.idle.threads));
    let sampler = {
        let (stop, peak) = (stop.clone(), peak.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                peak.fetch_max(sample(pid).threads, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };
    active_load(server.addr, cfg, &expected, &mut report);
    stop.store(true, Ordering::Relaxed);
    let _ = sampler.join();
    report.peak_threads = peak.load(Ordering::Relaxed);

    // Are the idle connections still served?
    let mut alive = 0;
    for chunk in idle.chunks_mut(BATCH) {
        alive += request_batch(chunk, &expected, &mut report)
            .into_iter()
            .filter(|&ok| ok)
            .count();
    }
    report.idle_alive = alive;

    match server.stats() {
        Ok(s) => report.server_stats = s,
        Err(e) => report.error(format!("server stats: {e}")),
    }
    report.hwm_kib = sample(pid).hwm_kib;
    drop(server);
    drop(idle);
    report
}

/// Runs every side of `cfg` in turn, printing progress; `cmd(side)` makes
/// the command that starts that side's server.
pub fn run(cfg: &Config, cmd: impl Fn(Side) -> Command) -> Vec<SideReport> {
    raise_nofile_limit();
    cfg.sides
        .iter()
        .map(|&side| {
            eprintln!("c10k: measuring {side} ...");
            let r = run_side(side, cfg, cmd(side));
            eprintln!("c10k: {side}: {}", summary(&r));
            r
        })
        .collect()
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// One line of a side's details.
fn summary(r: &SideReport) -> String {
    let kstack = r
        .kernel_stack_delta_kib
        .map_or("?".into(), |k| format!("{:+.1} MiB", k as f64 / 1024.0));
    format!(
        "idle {}/{} served in {:.2} s, {} still alive after the load; \
         RSS {:.1} -> {:.1} MiB ({:.1} KiB/conn), VmSize {:.2} GiB, \
         machine KernelStack {kstack}; server: {}",
        r.idle_ok,
        r.idle_wanted,
        r.idle_setup.as_secs_f64(),
        r.idle_alive,
        mib(r.base.rss_kib),
        mib(r.idle.rss_kib),
        r.kib_per_conn(),
        r.idle.vm_kib as f64 / (1024.0 * 1024.0),
        r.server_stats,
    )
}

/// The comparison table, the details and the ratios against `greenhub`.
pub fn table(cfg: &Config, reports: &[SideReport]) -> String {
    use std::fmt::Write as _;
    let mut t = String::new();
    let _ = writeln!(
        t,
        "{} idle keep-alive connections + {} active for {:.1} s (GET /, \"Hello, World!\"); \
         {} CPUs shared by servers and clients; load average {}",
        cfg.idle,
        cfg.active,
        cfg.load.as_secs_f64(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        std::fs::read_to_string("/proc/loadavg")
            .ok()
            .and_then(|l| l.split_whitespace().next().map(str::to_string))
            .unwrap_or_default(),
    );
    let _ = writeln!(
        t,
        "| side       | RSS idle MiB | VmHWM MiB | KiB/conn | kstack MiB | threads | req/s    | mean us | p50 us  | p99 us  | failures |"
    );
    let _ = writeln!(
        t,
        "|------------|--------------|-----------|----------|------------|---------|----------|---------|---------|---------|----------|"
    );
    for r in reports {
        let _ = writeln!(
            t,
            "| {:<10} | {:>12.1} | {:>9.1} | {:>8.1} | {:>10} | {:>7} | {:>8.0} | {:>7.0} | {:>7.0} | {:>7.0} | {:>8} |",
            r.side.name(),
            mib(r.idle.rss_kib),
            mib(r.hwm_kib),
            r.kib_per_conn(),
            r.kernel_stack_delta_kib
                .map_or("?".into(), |k| format!("{:+.1}", k as f64 / 1024.0)),
            r.peak_threads,
            r.req_per_sec(),
            us(r.mean),
            us(r.p50),
            us(r.p99),
            r.failures(),
        );
    }
    let _ = writeln!(
        t,
        "RSS idle: the server's VmRSS with the idle connections open; KiB/conn: its growth \
         per idle connection; kstack: the machine's KernelStack growth meanwhile (kernel \
         stacks of threads, outside any RSS; other processes add noise); threads: the \
         server's peak; latencies: the active requests (a closed loop of {} connections, \
         so mean = connections / req/s); failures: idle connections not served before or \
         after the load, plus failed active requests.",
        cfg.active
    );
    let _ = writeln!(t);
    for r in reports {
        let _ = writeln!(t, "{}: {}", r.side, summary(r));
        for (e, n) in &r.errors {
            let _ = writeln!(t, "  error (x{n}): {e}");
        }
    }
    if let Some(g) = reports.iter().find(|r| r.side == Side::Greenhub) {
        let _ = writeln!(t);
        let ratio = |a: f64, b: f64| {
            if b > 0.0 {
                format!("{:.2}x", a / b)
            } else {
                "n/a".to_string()
            }
        };
        for r in reports.iter().filter(|r| r.side != Side::Greenhub) {
            let _ = writeln!(
                t,
                "{} / greenhub: RSS {}, threads {}, req/s {}, p50 {}, p99 {}",
                r.side,
                ratio(r.idle.rss_kib as f64, g.idle.rss_kib as f64),
                ratio(r.peak_threads as f64, g.peak_threads as f64),
                ratio(r.req_per_sec(), g.req_per_sec()),
                ratio(us(r.p50), us(g.p50)),
                ratio(us(r.p99), us(g.p99)),
            );
        }
    }
    t
}

/// Parses the command line: `--idle N`, `--active N`, `--secs S`,
/// `--sides a,b`; or `--serve SIDE [--port P]` (the child). Returns the
/// config and the side to serve, if any.
pub fn parse_args(args: &[String]) -> Result<(Config, Option<(Side, u16)>), String> {
    let mut cfg = Config::default();
    let mut serve = None;
    let mut port = 0u16;
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next()
                .ok_or_else(|| format!("{flag} needs a value"))
                .cloned()
        };
        let num = |v: String| {
            v.parse::<f64>()
                .map_err(|_| format!("{flag} takes a number, not {v:?}"))
        };
        match flag.as_str() {
            "--idle" => cfg.idle = num(value()?)? as usize,
            "--active" => cfg.active = (num(value()?)? as usize).max(1),
            "--secs" => cfg.load = Duration::from_secs_f64(num(value()?)?.max(0.1)),
            "--port" => port = num(value()?)? as u16,
            "--sides" => {
                cfg.sides = value()?
                    .split(',')
                    .map(|s| Side::parse(s).ok_or_else(|| format!("unknown side {s:?}")))
                    .collect::<Result<_, _>>()?;
            }
            "--serve" => {
                let v = value()?;
                serve = Some(Side::parse(&v).ok_or_else(|| format!("unknown side {v:?}"))?);
            }
            "-h" | "--help" => {
                return Err("usage: c10k [--idle N] [--active N] [--secs S] \
                            [--sides std,std-2m,greenhub,greenhub-1] | --serve SIDE [--port P]"
                    .into());
            }
            other => return Err(format!("unknown argument {other:?} (try --help)")),
        }
    }
    Ok((cfg, serve.map(|s| (s, port))))
}

#[allow(dead_code)]
fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (cfg, serve) = parse_args(&args).unwrap_or_else(|e| {
        eprintln!("{e}");
        std::process::exit(2)
    });
    if let Some((side, port)) = serve {
        if let Err(e) = serve_child(side, port) {
            eprintln!("c10k --serve {side}: {e}");
            std::process::exit(1);
        }
        return;
    }
    let exe = std::env::current_exe().expect("current_exe");
    let reports = run(&cfg, |side| {
        let mut cmd = Command::new(&exe);
        cmd.args(["--serve", side.name(), "--port", "0"]);
        cmd
    });
    println!();
    print!("{}", table(&cfg, &reports));
}
