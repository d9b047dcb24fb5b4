//! Compile-fail suite: pins, with `trybuild`, every `Send`/`Sync` and
//! lifetime rule that greenhub's soundness argument relies on. Each case in
//! `tests/compile_fail/*.rs` must fail to compile with the error recorded in
//! its `.stderr` file (its top comment names the rule and why soundness needs
//! it; `tests/compile_fail/README.md` lists them). The cases in
//! `tests/compile_pass/*.rs` are positive controls: the closest allowed
//! variant of each rule must compile and run, so a case cannot keep "failing"
//! just because an API was renamed.
//!
//! The `.stderr` files are rustc's exact output: after a toolchain upgrade or
//! a change to a bound, regenerate them with
//! `TRYBUILD=overwrite cargo test --test types_compile_fail` and review the diff.

#[test]
fn compile_fail() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/compile_fail/*.rs");
    t.pass("tests/compile_pass/*.rs");
}
