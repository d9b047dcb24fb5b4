// Positive control for scope_spawn_not_send, scope_borrow_outlives_scope,
// scope_escapes and scope_aliasing_mut: scoped greenlets borrow data that
// outlives the scope (shared, and split `&mut` borrows), handles are joined
// inside the scope, and the borrows end when `scope` returns.
fn main() {
    greenhub::run(|| {
        let words = vec!["green", "threads"];
        let mut counts = [0u32; 3];
        let mut counter = 0u32;
        let total = greenhub::scope(|s| {
            let lens = s.spawn(|| words.iter().map(|w| w.len()).sum::<usize>());
            for (i, c) in counts.iter_mut().enumerate() {
                s.spawn(move || *c = i as u32);
            }
            s.spawn(|| counter += 1);
            lens.join().unwrap()
        });
        counter += 1; // the scope's borrow has ended
        assert_eq!(total, 12);
        assert_eq!(counts, [0, 1, 2]);
        assert_eq!(counter, 2);
    });
}
