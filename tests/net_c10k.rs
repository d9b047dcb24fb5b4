//! Runs the logic of `examples/c10k.rs` (included here as a module) with
//! small numbers: the `std` and `greenhub` servers in child processes (this
//! test binary re-run as the ignored helper test `c10k_server_child`), 200
//! idle keep-alive clients and one second of active load. Checks what the
//! example reports, not its timings: every idle client was served (before
//! and after the load), the load got answers without failures, and the
//! greenhub server needed far fewer threads than connections.

mod common;

#[allow(dead_code)]
#[path = "../examples/c10k.rs"]
mod c10k;

use std::process::Command;
use std::time::Duration;

use c10k::{Config, Side};

/// The side a server child runs (an environment variable of the child).
const SIDE_ENV: &str = "GREENHUB_C10K_SIDE";

const CHILD: &str = "c10k_server_child";

/// The server child: serves the side named in `SIDE_ENV` until its stdin
/// closes (then the process exits). A no-op unless run by `server_cmd`.
#[test]
#[ignore = "helper: the server child of c10k_example_small_run"]
fn c10k_server_child() {
    if !common::is_child(CHILD) {
        return;
    }
    let side = std::env::var(SIDE_ENV).expect("side");
    let side = Side::parse(&side).expect("known side");
    c10k::serve_child(side, 0).expect("serve");
}

/// The command that runs `side`'s server: this test binary, running only
/// the helper test.
fn server_cmd(side: Side) -> Command {
    let mut cmd = Command::new(std::env::current_exe().expect("current_exe"));
    cmd.args([
        CHILD,
        "--exact",
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ])
    .env(common::CHILD_ENV, CHILD)
    .env(SIDE_ENV, side.name());
    cmd
}

#[test]
fn c10k_example_small_run() {
    const IDLE: usize = 200;
    let cfg = Config {
        idle: IDLE,
        active: 4,
        load: Duration::from_secs(1),
        sides: vec![Side::Std, Side::Greenhub],
    };
    let c = cfg.clone();
    let reports = common::with_deadline("c10k", 180, move || c10k::run(&c, server_cmd));
    let table = c10k::table(&cfg, &reports);
    println!("{table}");
    assert_eq!(reports.len(), 2, "{table}");
    for r in &reports {
        assert_eq!(r.idle_ok, IDLE, "{}: first requests\n{table}", r.side);
        assert_eq!(r.idle_alive, IDLE, "{}: after the load\n{table}", r.side);
        assert!(r.responses > 0, "{}: no responses\n{table}", r.side);
        assert_eq!(r.failures(), 0, "{}: failures\n{table}", r.side);
        assert!(r.server_stats.contains("accepted="), "{table}");
    }
    let std = &reports[0];
    let green = &reports[1];
    assert_eq!(std.side, Side::Std);
    // A thread per connection: at least one per idle client.
    assert!(std.peak_threads >= IDLE as u64, "{table}");
    assert!(green.peak_threads > 0, "{table}");
    assert!(green.peak_threads < IDLE as u64, "{table}");
}
