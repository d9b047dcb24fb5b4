//! `Builder::run_info_on_signal`: print the run-info dump and the metrics
//! to stderr when the process gets a signal, like Go's `SIGQUIT` dump.
//!
//! A plain thread (`greenhub-run-info`) waits on a [`Signals`] set, so the
//! dump works however busy or blocked the hubs are (a blocked hub shows up
//! as not answering, with the greenlet that holds it when the blocking
//! monitor is on). It exits when the runtime is dropped.

use std::io;
use std::sync::{Arc, Weak};
use std::time::Duration;

use crate::hub::shared::Shared;
use crate::inspect::{Metrics, dump};
use crate::signal::Signals;

/// How long the dump waits for each busy hub.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(1);

/// The listening thread; dropping this stops it.
#[derive(Debug)]
pub(crate) struct DumpOnSignal {
    signals: Arc<Signals>,
    thread: Option<std::thread::JoinHandle<()>>,
}

pub(crate) fn start(shared: &Arc<Shared>, signum: i32) -> io::Result<DumpOnSignal> {
    let signals = Arc::new(Signals::new(&[signum])?);
    let s2 = signals.clone();
    let weak: Weak<Shared> = Arc::downgrade(shared);
    let thread = std::thread::Builder::new()
        .name("greenhub-run-info".into())
        .spawn(move || {
            while s2.recv().is_ok() {
                let Some(shared) = weak.upgrade() else { return };
                let info = dump::collect(&shared, ANSWER_TIMEOUT);
                let metrics = Metrics::read(&shared);
                drop(shared);
                eprintln!("{info}\n{metrics}");
            }
        })?;
    Ok(DumpOnSignal {
        signals,
        thread: Some(thread),
    })
}

impl Drop for DumpOnSignal {
    fn drop(&mut self) {
        self.signals.close();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
