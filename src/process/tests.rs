//! Unit tests of the exit watch's polling fallback, which the integration
//! tests cannot reach (they cannot make `pidfd_open` fail).

use std::process::Command;
use std::time::{Duration, Instant};

use super::exit::ExitWatch;

fn check_polling() {
    let mut child = Command::new("sh")
        .args(["-c", "sleep 0.2; exit 5"])
        .spawn()
        .unwrap();
    let mut watch = ExitWatch::Polling;
    let soon = Instant::now() + Duration::from_millis(20);
    assert_eq!(watch.wait(&mut child, Some(soon)).unwrap(), None);
    let status = watch.wait(&mut child, None).unwrap().unwrap();
    assert_eq!(status.code(), Some(5));
    // Reaped: the cached status, at once.
    assert_eq!(watch.wait(&mut child, None).unwrap(), Some(status));
}

#[test]
fn polling_off_a_greenlet() {
    check_polling();
}

#[test]
fn polling_on_a_greenlet() {
    crate::Builder::new()
        .single_threaded()
        .build()
        .unwrap()
        .block_on(|| {
            let ticks = crate::spawn(|| {
                for _ in 0..5 {
                    crate::sleep(Duration::from_millis(5));
                }
            });
            check_polling();
            ticks.join().unwrap();
        });
}

#[test]
fn polling_is_interrupted_by_timeout() {
    crate::run(|| {
        let mut child = Command::new("sleep").arg("5").spawn().unwrap();
        let mut watch = ExitWatch::Polling;
        let r = crate::timeout(Duration::from_millis(30), || watch.wait(&mut child, None));
        assert!(r.is_err());
        child.kill().unwrap();
        assert!(watch.wait(&mut child, None).unwrap().is_some());
    });
}
