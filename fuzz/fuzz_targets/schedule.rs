//! Fuzz target `schedule`: bytes decode into a program of greenlets (see
//! `src/program.rs`), run on a single-threaded, M:N or pinned runtime and
//! checked exactly against the reference model (`src/run.rs`). With
//! `SCHEDULE_DEBUG` set in the environment, each program and its model's
//! outcome are printed first (to read a crash input).
#![no_main]

use greenhub_fuzz::program::Program;
use libfuzzer_sys::fuzz_target;

fn debug() -> bool {
    static DEBUG: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *DEBUG.get_or_init(|| std::env::var_os("SCHEDULE_DEBUG").is_some())
}

fuzz_target!(|data: &[u8]| {
    if let Some(p) = Program::decode(data) {
        if debug() {
            eprintln!("{p:#?}\n{:#?}", p.model());
        }
        greenhub_fuzz::run::run(&p);
    }
});
