// Rule: every other way into a runtime from outside a greenlet requires
// `Send` closures and values as well: `Handle::spawn`, `Runtime::spawn`,
// `Runtime::block_on` and `greenhub::run` (`F: Send`, `T: Send`).
//
// Why soundness depends on it: these are called from a plain thread (or
// from any hub) and the greenlet runs on one of the runtime's hub threads;
// its value comes back to the caller's thread. An `Rc` captured or returned
// would be shared by two threads.
use std::rc::Rc;

fn handle_spawn(handle: &greenhub::Handle) {
    let shared = Rc::new(1u32);
    let _h = handle.spawn(move || *shared);
}

fn runtime_spawn(rt: &greenhub::Runtime) {
    let _h = rt.spawn(|| Rc::new(1u32));
}

fn runtime_block_on(rt: &greenhub::Runtime) {
    let shared = Rc::new(1u32);
    rt.block_on(move || *shared);
}

fn run() {
    let _v = greenhub::run(|| Rc::new(1u32));
}

fn main() {
    let rt = greenhub::Runtime::new().unwrap();
    handle_spawn(rt.handle());
    runtime_spawn(&rt);
    runtime_block_on(&rt);
    run();
}
