//! The headline comparison of monkey patching: a thread-per-connection
//! service written against std's blocking API, and the *same* code run on
//! greenlets with `patch` enabled.
//!
//! The service ([`serve`] and [`handle`]) is plain std: a
//! `std::net::TcpListener` accept loop that hands each connection to a
//! `spawn` function, and a keep-alive HTTP/1.1 handler that, for every
//! request, makes a *downstream call* (one round trip on a std `TcpStream`
//! to a downstream server that answers after `--delay-ms`, default 50; or,
//! with `--downstream sleep`, a `std::thread::sleep` of that long) and then
//! answers `ok`. Two sides run it, each in a child process:
//!
//! - `threads`: `spawn` is `std::thread::Builder::spawn` (64 KiB stacks),
//!   i.e. an OS thread per connection;
//! - `greenlets`: `spawn` is `greenhub::spawn`, on a greenhub runtime
//!   (M:N, one hub per CPU) built with `monkey_patch()`: the same accept
//!   loop and handler, unmodified, now park greenlets instead of threads.
//!
//! ```text
//! cargo run --release --features patch --example headline                 # 10,000 conns, 5 s
//! cargo run --release --features patch --example headline -- --conns 1000 --secs 2
//! cargo run --release --features patch --example headline -- --downstream sleep
//! ```
//! (`scripts/headline.sh` runs it.)
//!
//! # What is measured
//!
//! The parent process starts the downstream server (a greenhub
//! `StreamServer`: read a byte, sleep, answer a byte, for each connection),
//! then for each side starts the service and:
//!
//! 1. opens `--conns N` (default 10,000) keep-alive connections, one after
//!    another, and sends one warm-up request on each (all at once), which
//!    also opens each connection's downstream connection; every response
//!    must be exactly the expected one;
//! 2. runs a closed loop on all of them for `--secs S` (default 5): each
//!    connection sends its next request when the last one is answered,
//!    from greenlets of a single-threaded greenhub runtime in the parent
//!    (like `wrk -t1`); every latency is recorded and every response
//!    checked;
//! 3. samples the service's peak OS threads and its RSS meanwhile, then
//!    kills it.
//!
//! Without any CPU limit the loop would do `N / delay` requests/s (200,000
//! for 10,000 connections and 50 ms); on a small machine the CPUs are the
//! limit, and the question is how many requests/s each side gets out of
//! them, and at what latency. The clients, the downstream server and the
//! service share the machine's CPUs: compare the sides with each other, on
//! the same machine, and expect noise. Both sides run the same binary, so
//! the `threads` side also goes through the (disabled) hooks, which pass
//! each call straight to glibc.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

/// The stack size of the `threads` side's connection threads.
const THREAD_STACK: usize = 64 * 1024;

/// How long a client waits for a response (or a connect) before counting a
/// failure.
const IO_TIMEOUT: Duration = Duration::from_secs(30);

/// The request every client sends.
const REQUEST: &[u8] = b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n";

/// The service's response to [`REQUEST`].
const RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

/// The service's downstream call.
#[derive(Clone, Copy, Debug)]
enum Downstream {
    /// A round trip to the downstream server at this address (it answers
    /// after its delay).
    Tcp(SocketAddr),
    /// `std::thread::sleep` of this long.
    Sleep(Duration),
}

// ---------------------------------------------------------------------------
// The service: plain std code, the same on both sides.

/// Accepts connections forever, handing each to `spawn`.
fn serve(listener: TcpListener, downstream: Downstream, spawn: impl Fn(Box<dyn FnOnce() + Send>)) {
    loop {
        match listener.accept() {
            Ok((conn, _)) => {
                let _ = conn.set_nodelay(true);
                spawn(Box::new(move || {
                    if let Err(e) = handle(conn, downstream) {
                        // The first one only: a client sees the others as
                        // closed connections.
                        static SAID: AtomicBool = AtomicBool::new(false);
                        if !SAID.swap(true, Ordering::Relaxed) {
                            eprintln!("headline service: a connection failed: {e}");
                        }
                    }
                }));
            }
            Err(e) => {
                eprintln!("headline service: accept: {e}");
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

/// Serves one keep-alive connection: for each request head, the downstream
/// call, then [`RESPONSE`].
fn handle(mut conn: TcpStream, downstream: Downstream) -> io::Result<()> {
    let mut down: Option<TcpStream> = None;
    let mut buf = [0u8; 2048];
    let mut have = 0;
    loop {
        let end = loop {
            if let Some(at) = buf[..have].windows(4).position(|w| w == b"\r\n\r\n") {
                break at + 4;
            }
            if have == buf.len() {
                return Err(io::Error::other("request head too long"));
            }
            match conn.read(&mut buf[have..])? {
                0 => return Ok(()),
                n => have += n,
            }
        };
        buf.copy_within(end..have, 0);
        have -= end;
        match downstream {
            Downstream::Sleep(d) => std::thread::sleep(d),
            Downstream::Tcp(addr) => {
                if down.is_none() {
                    let s = TcpStream::connect(addr)?;
                    s.set_nodelay(true)?;
                    down = Some(s);
                }
                let s = down.as_mut().expect("connected above");
                s.write_all(b"?")?;
                let mut answer = [0u8; 1];
                s.read_exact(&mut answer)?;
            }
        }
        conn.write_all(RESPONSE)?;
    }
}

/// Which side a child process serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Side {
    Threads,
    Greenlets,
}

impl Side {
    fn name(self) -> &'static str {
        match self {
            Side::Threads => "threads",
            Side::Greenlets => "greenlets",
        }
    }

    fn parse(s: &str) -> Option<Side> {
        [Side::Threads, Side::Greenlets]
            .into_iter()
            .find(|side| side.name() == s)
    }
}

/// Exits the process when its stdin (a pipe from the parent) reaches
/// end-of-file, i.e. when the parent is done with it or died.
fn exit_with_parent() {
    std::thread::spawn(|| {
        let mut sink = Vec::new();
        let _ = io::stdin().lock().read_to_end(&mut sink);
        std::process::exit(0);
    });
}

/// The child: serves `side` on a free loopback port, printing
/// `listening on ADDR`.
fn serve_child(side: Side, downstream: Downstream) -> io::Result<()> {
    raise_nofile_limit();
    exit_with_parent();
    match side {
        Side::Threads => {
            let listener = TcpListener::bind("127.0.0.1:0")?;
            println!("listening on {}", listener.local_addr()?);
            serve(listener, downstream, |f| {
                let spawned = std::thread::Builder::new()
                    .stack_size(THREAD_STACK)
                    .spawn(f);
                if let Err(e) = spawned {
                    eprintln!("headline service: thread spawn: {e}");
                }
            });
            Ok(())
        }
        Side::Greenlets => {
            // SAFETY: the service's code keeps no thread-affine state
            // (C thread locals, std lock guards) across a blocking call.
            let rt = unsafe { greenhub::Builder::new().monkey_patch() }.build()?;
            rt.block_on(move || -> io::Result<()> {
                // Bound on a greenlet, so that the hooks track it.
                let listener = TcpListener::bind("127.0.0.1:0")?;
                println!("listening on {}", listener.local_addr()?);
                serve(listener, downstream, |f| {
                    greenhub::spawn(f);
                });
                Ok(())
            })
        }
    }
}

/// The downstream server child: per connection, answer each byte with a
/// byte after `delay`.
fn downstream_child(delay: Duration) -> io::Result<()> {
    raise_nofile_limit();
    exit_with_parent();
    let rt = greenhub::Builder::new().build()?;
    let server = greenhub::server::StreamServer::bind("127.0.0.1:0")?
        .per_hub(true)
        .handle(rt.handle().clone())
        .serve(move |mut conn, _| {
            let _ = conn.set_nodelay(true);
            let mut b = [0u8; 1];
            while conn.read_exact(&mut b).is_ok() {
                greenhub::sleep(delay);
                if conn.write_all(b"!").is_err() {
                    break;
                }
            }
        })?;
    println!("listening on {}", server.local_addr());
    loop {
        std::thread::park();
    }
}

// ---------------------------------------------------------------------------
// The parent: clients and figures.

/// Raises the limit on open files: to [`WANT_FILES`] where the process may
/// raise its hard limit (root), else the soft limit to the hard one. With
/// a downstream call, the service holds two descriptors per connection.
fn raise_nofile_limit() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the rlimit we pass, which lives for the call.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return;
    }
    let want = libc::rlimit {
        rlim_cur: WANT_FILES.max(lim.rlim_cur),
        rlim_max: WANT_FILES.max(lim.rlim_max),
    };
    // SAFETY: setrlimit only reads the rlimit we pass.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &want) } != 0 {
        lim.rlim_cur = lim.rlim_max;
        // SAFETY: as above.
        unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) };
    }
}

/// The open-file limit the processes ask for.
const WANT_FILES: libc::rlim_t = 65_536;

/// A child process (a side's service or the downstream server), started
/// with this executable; killed when dropped.
struct Service {
    child: Child,
    _stdin: ChildStdin,
    addr: SocketAddr,
}

impl Service {
    fn start(args: &[String]) -> io::Result<Service> {
        let mut child = Command::new(std::env::current_exe()?)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(addr) = line.strip_prefix("listening on ") {
                    let _ = tx.send(addr.trim().to_string());
                }
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(30))
            .map_err(|_| io::Error::other(format!("no `listening on` line from {args:?}")))?;
        let addr = addr
            .parse()
            .map_err(|e| io::Error::other(format!("bad address {addr:?}: {e}")))?;
        Ok(Service {
            child,
            _stdin: stdin,
            addr,
        })
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `(Threads, VmRSS KiB)` of a process.
fn proc_status(pid: u32) -> (u64, u64) {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    };
    (field("Threads:"), field("VmRSS:"))
}

/// One request/response on `s`; checks the response.
fn round_trip(s: &mut greenhub::net::TcpStream, buf: &mut [u8]) -> Result<(), String> {
    s.write_all(REQUEST).map_err(|e| format!("write: {e}"))?;
    s.read_exact(buf).map_err(|e| format!("read: {e}"))?;
    if buf != RESPONSE {
        return Err(format!(
            "unexpected response {:?}",
            String::from_utf8_lossy(buf)
        ));
    }
    Ok(())
}

/// The figures of one side.
struct Report {
    side: Side,
    connected: usize,
    responses: usize,
    load_time: Duration,
    p50: Duration,
    p99: Duration,
    failures: usize,
    first_error: Option<String>,
    peak_threads: u64,
    rss_kib: u64,
}

impl Report {
    fn req_per_sec(&self) -> f64 {
        self.responses as f64 / self.load_time.as_secs_f64().max(1e-9)
    }
}

/// Measures one side against the service at `addr` (process `pid`).
fn measure(side: Side, addr: SocketAddr, pid: u32, cfg: &Config) -> Report {
    let stop = Arc::new(AtomicBool::new(false));
    let peak = Arc::new(AtomicU64::new(0));
    let peak_rss = Arc::new(AtomicU64::new(0));
    let sampler = {
        let (stop, peak, peak_rss) = (stop.clone(), peak.clone(), peak_rss.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let (threads, rss) = proc_status(pid);
                peak.fetch_max(threads, Ordering::Relaxed);
                peak_rss.fetch_max(rss, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };
    let (conns, secs) = (cfg.conns, cfg.secs);
    let rt = greenhub::Builder::new()
        .single_threaded()
        .build()
        .expect("client runtime");
    let (connected, lat, load_time, errors) = rt.block_on(move || {
        let mut errors: Vec<String> = Vec::new();
        // 1. Connect one after another, then one warm-up request on each.
        let mut streams = Vec::with_capacity(conns);
        for _ in 0..conns {
            match greenhub::net::TcpStream::connect_timeout(&addr, IO_TIMEOUT) {
                Ok(s) => {
                    let _ = s.set_nodelay(true);
                    let _ = s.set_read_timeout(Some(IO_TIMEOUT));
                    streams.push(s);
                }
                Err(e) => errors.push(format!("connect: {e}")),
            }
        }
        let warm: Vec<_> = streams
            .into_iter()
            .map(|mut s| {
                greenhub::spawn(move || round_trip(&mut s, &mut [0u8; RESPONSE.len()]).map(|()| s))
            })
            .collect();
        let mut streams = Vec::with_capacity(conns);
        for h in warm {
            match h.join().expect("warm-up greenlet") {
                Ok(s) => streams.push(s),
                Err(e) => errors.push(format!("warm-up {e}")),
            }
        }
        let connected = streams.len();
        // 2. The closed loop.
        let start = Instant::now();
        let deadline = start + secs;
        let clients: Vec<_> = streams
            .into_iter()
            .map(|mut s| {
                greenhub::spawn(move || {
                    let mut lat = Vec::new();
                    let mut buf = [0u8; RESPONSE.len()];
                    while Instant::now() < deadline {
                        let t0 = Instant::now();
                        if let Err(e) = round_trip(&mut s, &mut buf) {
                            return (lat, Some(e));
                        }
                        lat.push(t0.elapsed().as_micros() as u32);
                    }
                    (lat, None)
                })
            })
            .collect();
        let mut all = Vec::new();
        for h in clients {
            let (lat, err) = h.join().expect("client greenlet");
            all.extend(lat);
            errors.extend(err);
        }
        (connected, all, start.elapsed(), errors)
    });
    stop.store(true, Ordering::Relaxed);
    let _ = sampler.join();
    let mut lat = lat;
    lat.sort_unstable();
    let pct = |p: usize| {
        lat.get((lat.len() * p / 100).min(lat.len().saturating_sub(1)))
            .map_or(Duration::ZERO, |&us| Duration::from_micros(us.into()))
    };
    Report {
        side,
        connected,
        responses: lat.len(),
        load_time,
        p50: pct(50),
        p99: pct(99),
        failures: errors.len(),
        first_error: errors.first().cloned(),
        peak_threads: peak.load(Ordering::Relaxed),
        rss_kib: peak_rss.load(Ordering::Relaxed),
    }
}

/// What a run measures.
struct Config {
    conns: usize,
    secs: Duration,
    delay: Duration,
    tcp: bool,
    sides: Vec<Side>,
}

fn usage() -> String {
    "usage: headline [--conns N] [--secs S] [--delay-ms D] [--downstream tcp|sleep] \
     [--sides threads,greenlets]"
        .into()
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Err(e) = run(&args) {
        eprintln!("headline: {e}");
        std::process::exit(2);
    }
}

/// Parses the command line and runs the comparison; or, in a child, with
/// `--serve SIDE` or `--serve-downstream` (and `--delay-ms`,
/// `--downstream-addr`), a server.
fn run(args: &[String]) -> Result<(), String> {
    let mut cfg = Config {
        conns: 10_000,
        secs: Duration::from_secs(5),
        delay: Duration::from_millis(50),
        tcp: true,
        sides: vec![Side::Threads, Side::Greenlets],
    };
    let mut serve = None;
    let mut serve_downstream = false;
    let mut downstream_addr = None;
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let mut value = || it.next().cloned().ok_or(format!("{flag} needs a value"));
        let num = |v: String| {
            v.parse::<f64>()
                .map_err(|_| format!("{flag}: not a number: {v:?}"))
        };
        match flag.as_str() {
            "--conns" => cfg.conns = num(value()?)?.max(1.0) as usize,
            "--secs" => cfg.secs = Duration::from_secs_f64(num(value()?)?.max(0.1)),
            "--delay-ms" => cfg.delay = Duration::from_secs_f64(num(value()?)?.max(0.0) / 1e3),
            "--downstream" => {
                cfg.tcp = match value()?.as_str() {
                    "tcp" => true,
                    "sleep" => false,
                    v => return Err(format!("--downstream tcp|sleep, not {v:?}")),
                }
            }
            "--sides" => {
                cfg.sides = value()?
                    .split(',')
                    .map(|s| Side::parse(s).ok_or(format!("unknown side {s:?}")))
                    .collect::<Result<_, _>>()?;
            }
            "--serve" => {
                let v = value()?;
                serve = Some(Side::parse(&v).ok_or(format!("unknown side {v:?}"))?);
            }
            "--serve-downstream" => serve_downstream = true,
            "--downstream-addr" => {
                let v = value()?;
                downstream_addr = Some(v.parse().map_err(|e| format!("{v:?}: {e}"))?);
            }
            "-h" | "--help" => return Err(usage()),
            other => return Err(format!("unknown argument {other:?}; {}", usage())),
        }
    }
    if serve_downstream {
        return downstream_child(cfg.delay).map_err(|e| e.to_string());
    }
    if let Some(side) = serve {
        let downstream = match downstream_addr {
            Some(addr) => Downstream::Tcp(addr),
            None => Downstream::Sleep(cfg.delay),
        };
        return serve_child(side, downstream).map_err(|e| e.to_string());
    }

    raise_nofile_limit();
    let delay_ms = format!("{}", cfg.delay.as_secs_f64() * 1e3);
    let down = if cfg.tcp {
        let args = [
            "--serve-downstream".to_string(),
            "--delay-ms".into(),
            delay_ms.clone(),
        ];
        Some(Service::start(&args).map_err(|e| format!("downstream server: {e}"))?)
    } else {
        None
    };
    let what = if cfg.tcp {
        "a std TcpStream round trip to a downstream server that answers after"
    } else {
        "std::thread::sleep"
    };
    eprintln!(
        "headline: {} keep-alive connections, closed loop for {:.1} s; per request {what} {} ms",
        cfg.conns,
        cfg.secs.as_secs_f64(),
        delay_ms
    );
    let mut reports = Vec::new();
    for &side in &cfg.sides {
        let mut args = vec![
            "--serve".to_string(),
            side.name().into(),
            "--delay-ms".into(),
        ];
        args.push(delay_ms.clone());
        if let Some(d) = &down {
            args.push("--downstream-addr".into());
            args.push(d.addr.to_string());
        }
        let service = Service::start(&args).map_err(|e| format!("{} service: {e}", side.name()))?;
        eprintln!("headline: measuring {} ...", side.name());
        let r = measure(side, service.addr, service.child.id(), &cfg);
        drop(service);
        // Let the machine settle (thousands of exiting threads).
        std::thread::sleep(Duration::from_secs(1));
        reports.push(r);
    }
    print_table(&cfg, &reports);
    Ok(())
}

fn print_table(cfg: &Config, reports: &[Report]) {
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "{} keep-alive connections, {:.1} s, {} ms downstream {}; {} CPUs shared by clients, \
         downstream and service; load average {}; no-CPU-limit ideal {:.0} req/s",
        cfg.conns,
        cfg.secs.as_secs_f64(),
        ms(cfg.delay),
        if cfg.tcp { "call (TCP)" } else { "sleep" },
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        std::fs::read_to_string("/proc/loadavg")
            .ok()
            .and_then(|l| l.split_whitespace().next().map(str::to_string))
            .unwrap_or_default(),
        cfg.conns as f64 / cfg.delay.as_secs_f64().max(1e-9),
    );
    println!(
        "| side      | connections | OS threads | peak RSS MiB | requests | req/s    | p50 ms  | p99 ms  | failures |"
    );
    println!(
        "|-----------|-------------|------------|--------------|----------|----------|---------|---------|----------|"
    );
    for r in reports {
        println!(
            "| {:<9} | {:>11} | {:>10} | {:>12.1} | {:>8} | {:>8.0} | {:>7.1} | {:>7.1} | {:>8} |",
            r.side.name(),
            r.connected,
            r.peak_threads,
            r.rss_kib as f64 / 1024.0,
            r.responses,
            r.req_per_sec(),
            ms(r.p50),
            ms(r.p99),
            r.failures,
        );
        if let Some(e) = &r.first_error {
            println!("  {}: first failure: {e}", r.side.name());
        }
    }
    let side = |s: Side| reports.iter().find(|r| r.side == s);
    if let (Some(t), Some(g)) = (side(Side::Threads), side(Side::Greenlets)) {
        let ratio = |a: f64, b: f64| {
            if b > 0.0 {
                format!("{:.2}x", a / b)
            } else {
                "n/a".into()
            }
        };
        println!(
            "greenlets vs threads: req/s {}, p50 {} lower, p99 {} lower",
            ratio(g.req_per_sec(), t.req_per_sec()),
            ratio(ms(t.p50), ms(g.p50)),
            ratio(ms(t.p99), ms(g.p99)),
        );
    }
}
