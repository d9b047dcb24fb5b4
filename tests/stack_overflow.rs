//! Stack overflow reports. Each case runs in a child process (this test binary
//! re-run on one ignored helper test): a greenlet named "deep" that recurses
//! without bound must make the child die by SIGABRT after printing
//! `greenlet 'deep' (id N) has overflowed its stack (256 KiB)`, with the
//! default guard pages and with the `mprotect` fallback
//! (`GREENHUB_STACK_GUARD=mprotect`); a custom stack size is reported as such;
//! and other faults (a null-pointer write on a plain thread or in a greenlet)
//! still die by SIGSEGV without the greenlet message.

mod common;

use std::os::unix::process::ExitStatusExt;
use std::process::Output;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::{is_child, run_child};

/// Recurses forever (each frame keeps a buffer alive, so it is not turned
/// into a loop).
#[inline(never)]
fn recurse(depth: u64) -> u64 {
    if depth == u64::MAX {
        return 0;
    }
    let mut buf = [0u8; 512];
    buf[(depth % 512) as usize] = depth as u8;
    let buf = std::hint::black_box(buf);
    recurse(depth + 1) + buf[(depth % 7) as usize] as u64
}

fn overflow_in_greenlet(stack_size: Option<usize>) {
    let rt = greenhub::Builder::new().hubs(2).build().unwrap();
    rt.block_on(move || {
        // Some ordinary greenlets first, so the guard pages of reused stacks
        // are exercised too.
        for i in 0..10u64 {
            assert_eq!(greenhub::spawn(move || i).join().unwrap(), i);
        }
        let mut b = greenhub::greenlet::Builder::new().name("deep".into());
        if let Some(size) = stack_size {
            b = b.stack_size(size);
        }
        // "deep" waits until its id has been printed (it may run on the
        // other hub at once, and the abort would cut the output short).
        let printed = Arc::new(AtomicBool::new(false));
        let p2 = printed.clone();
        let h = b
            .spawn(move || {
                while !p2.load(Ordering::Acquire) {
                    greenhub::sleep(Duration::from_millis(1));
                }
                recurse(0)
            })
            .unwrap();
        println!("CHILD spawned 'deep' with id {}", h.id());
        printed.store(true, Ordering::Release);
        let r = h.join();
        println!("CHILD UNREACHABLE: join returned {r:?}");
    });
    println!("CHILD UNREACHABLE: runtime returned");
}

fn assert_overflow_report(out: &Output, kib: usize) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let ctx = format!(
        "status {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        out.status
    );
    assert_eq!(out.status.signal(), Some(libc::SIGABRT), "{ctx}");
    assert!(stderr.contains("greenlet 'deep' (id "), "{ctx}");
    assert!(
        stderr.contains(&format!("has overflowed its stack ({kib} KiB)")),
        "{ctx}"
    );
    assert!(!stdout.contains("UNREACHABLE"), "{ctx}");
    // The id in the report is the greenlet's.
    let id = stdout
        .lines()
        .find_map(|l| l.split("CHILD spawned 'deep' with id ").nth(1))
        .expect("the child printed the id");
    assert!(
        stderr.contains(&format!(
            "greenlet 'deep' (id {id}) has overflowed its stack"
        )),
        "{ctx}"
    );
}

#[test]
fn overflow_is_reported_and_aborts() {
    let out = run_child("child_overflow", &[], 60);
    assert_overflow_report(&out, 256);
}

#[test]
fn overflow_is_reported_with_mprotect_guards() {
    let out = run_child(
        "child_overflow",
        &[("GREENHUB_STACK_GUARD", "mprotect")],
        60,
    );
    assert_overflow_report(&out, 256);
}

#[test]
fn overflow_report_names_the_custom_stack_size() {
    let out = run_child("child_overflow_64k", &[], 60);
    assert_overflow_report(&out, 64);
}

#[test]
fn null_write_on_plain_thread_is_a_plain_segfault() {
    let out = run_child("child_null_write_thread", &[], 60);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let ctx = format!(
        "status {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        out.status
    );
    assert!(stdout.contains("CHILD runtime started"), "{ctx}");
    assert_eq!(out.status.signal(), Some(libc::SIGSEGV), "{ctx}");
    assert!(!stderr.contains("overflowed its stack"), "{ctx}");
    assert!(!stderr.contains("greenlet '"), "{ctx}");
    assert!(!stdout.contains("UNREACHABLE"), "{ctx}");
}

#[test]
fn null_write_in_greenlet_is_a_plain_segfault() {
    let out = run_child("child_null_write_greenlet", &[], 60);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let ctx = format!(
        "status {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        out.status
    );
    assert_eq!(out.status.signal(), Some(libc::SIGSEGV), "{ctx}");
    assert!(!stderr.contains("overflowed its stack"), "{ctx}");
    assert!(!stdout.contains("UNREACHABLE"), "{ctx}");
}

#[test]
#[ignore = "child-process helper of the overflow tests"]
fn child_overflow() {
    if is_child("child_overflow") {
        overflow_in_greenlet(None);
    }
}

#[test]
#[ignore = "child-process helper of the overflow tests"]
fn child_overflow_64k() {
    if is_child("child_overflow_64k") {
        overflow_in_greenlet(Some(64 * 1024));
    }
}

#[inline(never)]
fn write_null() {
    let p: *mut u64 = std::hint::black_box(std::ptr::null_mut());
    // SAFETY: not safe at all: this write faults on purpose (the child
    // process is expected to die by SIGSEGV).
    unsafe { std::ptr::write_volatile(p, 42) };
}

#[test]
#[ignore = "child-process helper of the null-write tests"]
fn child_null_write_thread() {
    if !is_child("child_null_write_thread") {
        return;
    }
    // Start a runtime first, so greenhub's SIGSEGV handler is installed and
    // must pass the fault on.
    let rt = greenhub::Builder::new().hubs(2).build().unwrap();
    assert_eq!(rt.block_on(|| greenhub::spawn(|| 1).join().unwrap()), 1);
    println!("CHILD runtime started");
    let t = std::thread::spawn(write_null);
    let _ = t.join();
    println!("CHILD UNREACHABLE: the thread returned");
}

#[test]
#[ignore = "child-process helper of the null-write tests"]
fn child_null_write_greenlet() {
    if !is_child("child_null_write_greenlet") {
        return;
    }
    let rt = greenhub::Builder::new().hubs(2).build().unwrap();
    rt.block_on(|| {
        let h = greenhub::greenlet::Builder::new()
            .name("nullwriter".into())
            .spawn(write_null)
            .unwrap();
        let _ = h.join();
    });
    println!("CHILD UNREACHABLE: the greenlet returned");
}
