//! The `vm.max_map_count` limit of the `mprotect` guard fallback. In a child
//! process forced onto that fallback (`GREENHUB_STACK_GUARD=mprotect`, two
//! memory mappings per stack), 40,000 greenlets that all park at once need
//! more stacks than the default `vm.max_map_count` (65530) allows: some of
//! them must fail to start with a `JoinError` whose `io_error()` names
//! `vm.max_map_count`, while the others run, the runtime keeps working
//! afterwards, and nothing aborts.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use common::{is_child, run_child};

const N: usize = 40_000;

#[test]
fn exceeding_max_map_count_is_an_error_not_an_abort() {
    let out = run_child(
        "child_stack_limit",
        &[("GREENHUB_STACK_GUARD", "mprotect")],
        300,
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let ctx = format!(
        "status {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        out.status
    );
    assert!(out.status.success(), "{ctx}");
    assert!(!stderr.contains("fatal runtime error"), "{ctx}");
    let line = stdout
        .lines()
        .find_map(|l| l.split("STACK-LIMIT ").nth(1))
        .unwrap_or_else(|| panic!("no summary line\n{ctx}"));
    let field = |name: &str| -> usize {
        line.split_whitespace()
            .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {line:?}"))
    };
    let (ok, failed, after) = (field("ok"), field("failed"), field("after"));
    assert_eq!(ok + failed, N, "{ctx}");
    assert!(failed > 0, "no greenlet hit the limit\n{ctx}");
    // Most of the mapping budget went to stacks: about (65530 - 4096) / 2.
    assert!(ok > 20_000, "{ctx}");
    assert_eq!(after, 1000, "{ctx}");
    assert!(stdout.contains("CHILD-OK"), "{ctx}");
}

#[test]
#[ignore = "child-process helper of exceeding_max_map_count_is_an_error_not_an_abort"]
fn child_stack_limit() {
    if !is_child("child_stack_limit") {
        return;
    }
    assert_eq!(
        std::env::var("GREENHUB_STACK_GUARD").as_deref(),
        Ok("mprotect")
    );
    let rt = greenhub::Builder::new().hubs(2).build().unwrap();
    let parked = Arc::new(AtomicUsize::new(0));
    let go = Arc::new(AtomicBool::new(false));
    let (p, g) = (parked.clone(), go.clone());
    let (ok, failed, message) = rt.block_on(move || {
        let handles: Vec<_> = (0..N)
            .map(|i| {
                let (p, g) = (p.clone(), g.clone());
                greenhub::spawn(move || {
                    p.fetch_add(1, Ordering::SeqCst);
                    while !g.load(Ordering::Acquire) {
                        greenhub::park();
                    }
                    i
                })
            })
            .collect();
        // Wait until every greenlet is either parked or finished (the ones
        // that could not get a stack finish at once, with an error).
        loop {
            let finished = handles.iter().filter(|h| h.is_finished()).count();
            if p.load(Ordering::SeqCst) + finished >= N {
                break;
            }
            greenhub::sleep(Duration::from_millis(10));
        }
        let parked_at_once = p.load(Ordering::SeqCst);
        println!("CHILD parked at once: {parked_at_once}");
        g.store(true, Ordering::Release);
        for h in &handles {
            h.greenlet().unpark();
        }
        let (mut ok, mut failed, mut message) = (0, 0, String::new());
        for (i, h) in handles.into_iter().enumerate() {
            match h.join() {
                Ok(v) => {
                    assert_eq!(v, i);
                    ok += 1;
                }
                Err(e) => {
                    let io = e
                        .io_error()
                        .unwrap_or_else(|| panic!("not an io error: {e:?}"));
                    assert!(!e.is_panic() && !e.is_killed());
                    let msg = io.to_string();
                    assert!(msg.contains("vm.max_map_count"), "{msg}");
                    assert!(e.to_string().contains("vm.max_map_count"), "{e}");
                    if message.is_empty() {
                        message = msg;
                    }
                    failed += 1;
                }
            }
        }
        assert_eq!(
            ok, parked_at_once,
            "exactly the greenlets that parked succeeded"
        );
        (ok, failed, message)
    });
    println!("CHILD error message: {message}");
    // The runtime still works once the stacks are back.
    let after = rt.block_on(|| {
        let hs: Vec<_> = (0..1000)
            .map(|_| {
                greenhub::spawn(|| {
                    greenhub::yield_now();
                    greenhub::sleep(Duration::from_millis(1));
                    1usize
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).sum::<usize>()
    });
    drop(rt);
    println!("STACK-LIMIT ok={ok} failed={failed} after={after}");
    println!("CHILD-OK");
}
