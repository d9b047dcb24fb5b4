// Positive control for local_with_escape: `with` and `try_with` return values
// computed from the `&T`, owned copies of it included.
greenhub::local! {
    static NAME: String = String::from("per greenlet");
}

fn main() {
    greenhub::run(|| {
        let copy: String = NAME.with(|name| name.clone());
        let len = NAME.try_with(|name| name.len()).unwrap();
        assert_eq!(copy.len(), len);
    });
}
