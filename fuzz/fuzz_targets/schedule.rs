//! Fuzz target `schedule`: bytes decode into a program of greenlets (see
//! `src/program.rs`), run on a single-threaded, M:N or pinned runtime and
//! checked exactly against the reference model (`src/run.rs`).
#![no_main]

use greenhub_fuzz::program::Program;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some(p) = Program::decode(data) {
        greenhub_fuzz::run::run(&p);
    }
});
