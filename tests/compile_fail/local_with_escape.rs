// Rule: the `&T` that `LocalKey::with` / `try_with` lends to its closure
// cannot be returned out of it (`F: FnOnce(&T) -> R`, higher-ranked over the
// reference's lifetime: `R` cannot name it).
//
// Why soundness depends on it: a `greenhub::local!` value lives in the
// current greenlet's slot map and is dropped when that greenlet ends (or, off
// a greenlet, when the thread exits). A `&T` kept past `with` could be used
// after the value is dropped: by the same greenlet's later code, or by any
// other greenlet or thread it is handed to.
greenhub::local! {
    static NAME: String = String::from("per greenlet");
}

fn with_escapes() -> &'static String {
    NAME.with(|name| name)
}

fn try_with_escapes() -> usize {
    let r = NAME.try_with(|name| name).unwrap();
    r.len()
}

fn main() {
    let _ = with_escapes();
    let _ = try_with_escapes();
}
