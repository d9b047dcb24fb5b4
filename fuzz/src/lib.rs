//! Support code of the greenhub fuzz targets (`fuzz_targets/`): the
//! `schedule` target's program decoder and reference model
//! ([`program`], with [`stacks`] for coroutines, `timeout` frames and
//! `local!` values) and its runner ([`run`], with `coro`). Built with `cfg(fuzzing)` by
//! cargo-fuzz, which exposes `greenhub::__fuzz`.

#[cfg(fuzzing)]
pub mod coro;
pub mod program;
#[cfg(fuzzing)]
pub mod run;
pub mod stacks;
