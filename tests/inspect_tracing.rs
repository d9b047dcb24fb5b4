//! The `tracing` feature: a span per greenlet, entered while it runs, and
//! spawn/park/wake/exit events. Run with `cargo test --features tracing
//! --test inspect_tracing` (`.ci/run` does).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

/// Records span names with their `name` field, and events as
/// "message@innermost-span-name".
#[derive(Default)]
struct Recorder {
    next: AtomicU64,
    spans: Mutex<Vec<(u64, String)>>,
    stack: Mutex<Vec<u64>>,
    events: Mutex<Vec<String>>,
}

#[derive(Default)]
struct Fields(Vec<(String, String)>);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.push((field.name().into(), format!("{value:?}")));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.push((field.name().into(), value.into()));
    }
}

impl Fields {
    fn get(&self, k: &str) -> String {
        self.0
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    }
}

/// The subscriber: a shared handle on the recorder.
struct Rec(Arc<Recorder>);

impl Subscriber for Rec {
    fn enabled(&self, meta: &Metadata<'_>) -> bool {
        meta.target() == "greenhub"
    }
    fn new_span(&self, attrs: &Attributes<'_>) -> Id {
        let id = self.0.next.fetch_add(1, Ordering::Relaxed) + 1;
        let mut f = Fields::default();
        attrs.record(&mut f);
        self.0.spans.lock().unwrap().push((id, f.get("name")));
        Id::from_u64(id)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut f = Fields::default();
        event.record(&mut f);
        let span = event
            .parent()
            .map(|p| p.into_u64())
            .or_else(|| self.0.stack.lock().unwrap().last().copied());
        let name = span
            .and_then(|s| {
                self.0
                    .spans
                    .lock()
                    .unwrap()
                    .iter()
                    .find(|(i, _)| *i == s)
                    .map(|(_, n)| n.clone())
            })
            .unwrap_or_default();
        self.0
            .events
            .lock()
            .unwrap()
            .push(format!("{}@{name}", f.get("message")));
    }
    fn enter(&self, id: &Id) {
        self.0.stack.lock().unwrap().push(id.into_u64());
    }
    fn exit(&self, _: &Id) {
        self.0.stack.lock().unwrap().pop();
    }
}

#[test]
fn greenlets_have_spans_and_events() {
    let rec = Arc::new(Recorder::default());
    // The global default, so the hub thread sees it too.
    tracing::subscriber::set_global_default(Rec(rec.clone())).unwrap();
    let rt = greenhub::Builder::new().single_threaded().build().unwrap();
    rt.block_on(|| {
        let (tx, rx) = greenhub::channel::unbounded::<u32>();
        let h = greenhub::greenlet::Builder::new()
            .name("worker".into())
            .spawn(move || rx.recv().unwrap())
            .unwrap();
        greenhub::yield_now();
        tx.send(5).unwrap();
        assert_eq!(h.join().unwrap(), 5);
    });
    let events = rec.events.lock().unwrap().clone();
    for want in [
        "spawn@worker",
        "park@worker",
        "wake@main",
        "exit@worker",
        "exit@main",
    ] {
        assert!(
            events.iter().any(|e| e == want),
            "no {want:?} in {events:?}"
        );
    }
    let spans = rec.spans.lock().unwrap();
    assert!(spans.iter().any(|(_, n)| n == "worker") && spans.iter().any(|(_, n)| n == "main"));
}
