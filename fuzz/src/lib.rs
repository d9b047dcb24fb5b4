//! Support code of the greenhub fuzz targets (`fuzz_targets/`): the
//! `schedule` target's program decoder and reference model
//! ([`program`]) and its runner ([`run`]). Built with `cfg(fuzzing)` by
//! cargo-fuzz, which exposes `greenhub::__fuzz`.

pub mod program;
#[cfg(fuzzing)]
pub mod run;
