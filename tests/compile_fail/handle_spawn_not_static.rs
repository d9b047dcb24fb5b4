// Rule: `Handle::spawn`, `Runtime::spawn` and `Runtime::block_on` take only
// `'static` closures (`F: 'static`).
//
// Why soundness depends on it: the greenlet runs on a hub thread and can
// outlive the caller's frame (a dropped `JoinHandle` detaches it; `block_on`
// may be left by a panic while the greenlet is still parked), so a borrow of
// the caller's locals would dangle.
fn handle_spawn(handle: &greenhub::Handle) {
    let name = String::from("on the caller's stack");
    let r = &name;
    let _h = handle.spawn(move || r.len());
}

fn runtime_spawn(rt: &greenhub::Runtime) {
    let name = String::from("on the caller's stack");
    let r = &name;
    let _h = rt.spawn(move || r.len());
}

fn runtime_block_on(rt: &greenhub::Runtime) {
    let name = String::from("on the caller's stack");
    let r = &name;
    rt.block_on(move || r.len());
}

fn main() {
    let rt = greenhub::Runtime::new().unwrap();
    handle_spawn(rt.handle());
    runtime_spawn(&rt);
    runtime_block_on(&rt);
}
