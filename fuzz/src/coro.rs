//! The runner's side of [`crate::stacks`]: runs one worker's (or the thread
//! part's) stacks for real, with raw greenlets, generators, `timeout` frames
//! and `local!` values, and checks every entry of their log against the
//! model's the moment it is written ([`Sink::push`]), so the first
//! difference panics where it happens (libFuzzer's panic hook aborts).

use std::cell::{Cell, RefCell};
use std::panic::{self, AssertUnwindSafe};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use greenhub::channel::Receiver;
use greenhub::greenlet::LocalKey;
use greenhub::raw::{Co as GenCo, Generator, RawGreenlet, SwitchError};

use crate::program::{Act, CoDef, Node, Op, Scope};
use crate::stacks::{Ev, Res, ValId};

/// A short frame's duration: it expires at the first `Block` inside.
pub const SHORT: Duration = Duration::from_millis(1);
/// A long frame's: never expires in a run.
pub const LONG: Duration = Duration::from_secs(3600);
/// How long a `Block` waits at most (its short frame ends it after 1 ms).
const BLOCK_BOUND: Duration = Duration::from_secs(2);

/// A stack log, checked entry by entry against the model's.
pub struct Sink {
    who: String,
    expected: Vec<Ev>,
    log: parking_lot::Mutex<Vec<Ev>>,
}

impl Sink {
    /// A log that must end up equal to `expected`.
    pub fn new(who: String, expected: Vec<Ev>) -> Sink {
        Sink {
            who,
            expected,
            log: parking_lot::Mutex::new(Vec::new()),
        }
    }

    /// Appends `ev`; panics if the model expects something else here.
    pub fn push(&self, ev: Ev) {
        let mut log = self.log.lock();
        let i = log.len();
        log.push(ev);
        if self.expected.get(i) != Some(&ev) {
            let from = i.saturating_sub(6);
            let got = log[from..].to_vec();
            drop(log);
            panic!(
                "{}: stack log entry {i} is {ev:?}, the model expects {:?}\n  log from {from}: {got:?}\n  model from {from}: {:?}",
                self.who,
                self.expected.get(i),
                &self.expected[from.min(self.expected.len())..(i + 4).min(self.expected.len())],
            );
        }
    }

    /// Checks that nothing the model expects is missing.
    pub fn finish(&self) {
        let log = self.log.lock();
        assert_eq!(
            log.len(),
            self.expected.len(),
            "{}: the stack log ends early: {:?}, the model expects {:?} more",
            self.who,
            log.last(),
            &self.expected[log.len().min(self.expected.len())..],
        );
    }
}

const CANARY: u64 = 0x6772_6565_6e68_7562;
const POISON: u64 = 0xdead_dead_dead_dead;

/// A `local!` value: a canary (poisoned when it is dropped, so that a read
/// through a dangling reference shows) and the value last written.
pub struct LCell {
    canary: Cell<u64>,
    val: RefCell<Option<Val>>,
}

impl LCell {
    fn fresh() -> LCell {
        LCell {
            canary: Cell::new(CANARY),
            val: RefCell::new(None),
        }
    }

    fn seen(&self) -> Option<ValId> {
        // SAFETY: `self` is a reference handed out by `LocalKey::with`,
        // valid if greenhub is sound; a volatile read so that a value used
        // after its drop shows its poison instead of a cached canary.
        let canary = unsafe { std::ptr::read_volatile(self.canary.as_ptr()) };
        assert_eq!(
            canary, CANARY,
            "a greenlet-local value was used after it was dropped (canary {canary:#x})"
        );
        self.val.borrow().as_ref().map(|v| v.id)
    }
}

impl Drop for LCell {
    fn drop(&mut self) {
        // SAFETY: a plain write to our own field; volatile so that it is
        // not elided although the memory is freed right after.
        unsafe { std::ptr::write_volatile(self.canary.as_ptr(), POISON) };
    }
}

greenhub::local! {
    static L0: LCell = LCell::fresh();
    static L1: LCell = LCell::fresh();
    static L2: LCell = LCell::fresh();
    static L3: LCell = LCell::fresh();
}

fn key(k: u8) -> &'static LocalKey<LCell> {
    [&L0, &L1, &L2, &L3][k as usize]
}

/// Gives the keys their process-wide indices in order (destruction goes by
/// index), once.
pub fn init_keys() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        for k in 0..crate::program::KEYS as u8 {
            key(k).with(|_| ());
        }
    });
}

/// What a written value does when dropped.
enum Held {
    Plain,
    Touch(u8),
    Hold(Option<RawGreenlet<u64>>),
    KillOnDrop(Option<(u32, RawGreenlet<u64>)>),
}

/// A written value.
pub struct Val {
    id: ValId,
    key: u8,
    held: Held,
    ws: Rc<Ws>,
}

impl Drop for Val {
    fn drop(&mut self) {
        let ws = self.ws.clone();
        ws.sink.push(Ev::Drop {
            key: self.key,
            id: self.id,
        });
        match std::mem::replace(&mut self.held, Held::Plain) {
            Held::Plain | Held::Hold(None) | Held::KillOnDrop(None) => {}
            Held::Touch(k) => {
                let seen = key(k).try_with(|c| c.seen()).ok();
                ws.sink.push(Ev::Touch { key: k, seen });
            }
            Held::Hold(Some(h)) => drop(h),
            Held::KillOnDrop(Some((x, h))) => {
                let res = if h.is_dead() {
                    Res::NoOp
                } else {
                    h.set_parent(&RawGreenlet::current())
                        .expect("set_parent before a kill");
                    ws.chain.borrow_mut().push((x, false));
                    let r = h.kill();
                    ws.chain.borrow_mut().pop();
                    assert_eq!(r, Err(SwitchError::Exit), "kill of a held raw greenlet");
                    Res::Exit
                };
                ws.sink.push(Ev::KillHeld { st: x, res });
                drop(h);
            }
        }
    }
}

/// A coroutine in a slot.
enum Co {
    Raw(u32, RawGreenlet<u64>),
    /// `None` while it runs (taken out to resume it).
    Gen(u32, Option<Generator<u64, u64>>),
}

/// The payload of `Throw`.
struct Boom;

/// One worker's (or the thread part's) stacks.
pub struct Ws {
    sink: Arc<Sink>,
    cos: Arc<Vec<CoDef>>,
    dead: Receiver<u64>,
    table: RefCell<Vec<Option<Co>>>,
    /// Running stacks (id, is a generator), the worker's (0) first.
    chain: RefCell<Vec<(u32, bool)>>,
    /// Who each running raw greenlet yields to (uncounted handles).
    raw_parents: RefCell<Vec<RawGreenlet<u64>>>,
    next_id: Cell<u32>,
    seq: Cell<u32>,
}

impl Ws {
    /// Stacks logging to `sink`, with coroutine scripts `cos`; `dead` is a
    /// channel nobody sends on.
    pub fn new(sink: Arc<Sink>, cos: Arc<Vec<CoDef>>, dead: Receiver<u64>) -> Rc<Ws> {
        let n = cos.len();
        Rc::new(Ws {
            sink,
            cos,
            dead,
            table: RefCell::new((0..n).map(|_| None).collect()),
            chain: RefCell::new(vec![(0, false)]),
            raw_parents: RefCell::new(Vec::new()),
            next_id: Cell::new(1),
            seq: Cell::new(0),
        })
    }

    fn ctx_ok(&self, generator: bool) -> bool {
        let chain = self.chain.borrow();
        let top = chain.last().expect("running").0;
        match chain.iter().rev().find(|(s, g)| *s != 0 && *g == generator) {
            None => true,
            Some(&(s, _)) => s == top,
        }
    }

    fn on_chain(&self, id: u32) -> bool {
        self.chain.borrow().iter().any(|&(s, _)| s == id)
    }

    /// The coroutine an op on slot `c` acts on: (id, generator), or why
    /// nothing is done.
    fn target(&self, c: u8, live: bool) -> Result<(u32, bool), Res> {
        let table = self.table.borrow();
        let (id, generator, dead) = match &table[c as usize] {
            None => return Err(Res::NoOp),
            Some(Co::Raw(id, h)) => (*id, false, h.is_dead()),
            Some(Co::Gen(id, g)) => (*id, true, g.as_ref().is_none_or(|g| g.is_complete())),
        };
        drop(table);
        if self.on_chain(id) || (live && dead) {
            return Err(Res::NoOp);
        }
        if !self.ctx_ok(generator) {
            return Err(Res::WrongContext);
        }
        Ok((id, generator))
    }

    fn raw(&self, c: u8) -> RawGreenlet<u64> {
        match &self.table.borrow()[c as usize] {
            Some(Co::Raw(_, h)) => h.clone(),
            _ => unreachable!("a raw greenlet in slot {c}"),
        }
    }

    fn new_co(self: &Rc<Ws>, c: u8) {
        let old = self.table.borrow()[c as usize].as_ref().map(|co| match co {
            Co::Raw(id, _) => (*id, false),
            Co::Gen(id, _) => (*id, true),
        });
        if let Some((x, generator)) = old
            && (self.on_chain(x) || !self.ctx_ok(generator))
        {
            return self.sink.push(Ev::New { c, st: 0 });
        }
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        let ws = self.clone();
        let co = if self.cos[c as usize].generator {
            Co::Gen(
                id,
                Some(Generator::new(move |co: &GenCo<u64, u64>| {
                    script(&ws, id, c, Yield::Gen(co));
                    0
                })),
            )
        } else {
            Co::Raw(
                id,
                RawGreenlet::new(move |_first: u64| {
                    script(&ws, id, c, Yield::Raw);
                    0
                }),
            )
        };
        let old = self.table.borrow_mut()[c as usize].replace(co);
        self.sink.push(Ev::New { c, st: id });
        drop(old);
    }

    fn resume(&self, c: u8) {
        let res = match self.target(c, true) {
            Err(Res::WrongContext) if !self.cos[c as usize].generator => {
                let r = self.raw(c).switch(0);
                assert_eq!(
                    r,
                    Err(SwitchError::WrongContext),
                    "switch from a wrong context"
                );
                Res::WrongContext
            }
            Err(res) => res,
            Ok((id, false)) => {
                let h = self.raw(c);
                let me = RawGreenlet::<u64>::current();
                h.set_parent(&me).expect("set_parent before a switch");
                self.raw_parents.borrow_mut().push(me);
                self.chain.borrow_mut().push((id, false));
                let r = h.switch(0);
                self.chain.borrow_mut().pop();
                self.raw_parents.borrow_mut().pop();
                match r {
                    Ok(_) if h.is_dead() => Res::Complete,
                    Ok(_) => Res::Yielded,
                    Err(e) => panic!("switch into a raw greenlet: {e:?}"),
                }
            }
            Ok((id, true)) => {
                let mut g = match &mut self.table.borrow_mut()[c as usize] {
                    Some(Co::Gen(_, g)) => g.take().expect("a generator"),
                    _ => unreachable!("a generator in slot {c}"),
                };
                self.chain.borrow_mut().push((id, true));
                let r = g.resume();
                self.chain.borrow_mut().pop();
                if let Some(Co::Gen(_, slot)) = &mut self.table.borrow_mut()[c as usize] {
                    *slot = Some(g);
                }
                match r {
                    Some(greenhub::raw::GeneratorState::Yielded(_)) => Res::Yielded,
                    Some(greenhub::raw::GeneratorState::Complete(_)) => Res::Complete,
                    None => panic!("resume of a live generator returned None"),
                }
            }
        };
        self.sink.push(Ev::Resume { c, res });
    }

    fn kill(&self, c: u8) {
        let res = match self.target(c, true) {
            Err(Res::WrongContext) if !self.cos[c as usize].generator => {
                let r = self.raw(c).kill();
                assert_eq!(
                    r,
                    Err(SwitchError::WrongContext),
                    "kill from a wrong context"
                );
                Res::WrongContext
            }
            Err(res) => res,
            Ok((id, false)) => {
                let h = self.raw(c);
                h.set_parent(&RawGreenlet::current())
                    .expect("set_parent before a kill");
                self.chain.borrow_mut().push((id, false));
                let r = h.kill();
                self.chain.borrow_mut().pop();
                assert_eq!(r, Err(SwitchError::Exit), "kill of a raw greenlet");
                Res::Exit
            }
            Ok((_, true)) => {
                let co = self.table.borrow_mut()[c as usize].take();
                drop(co);
                Res::Exit
            }
        };
        self.sink.push(Ev::Kill { c, res });
    }

    fn throw(&self, c: u8) {
        let res = match self.target(c, true) {
            Err(Res::WrongContext) => {
                let r = self.raw(c).throw(Boom);
                assert!(
                    matches!(r, Err(SwitchError::WrongContext)),
                    "throw from a wrong context"
                );
                Res::WrongContext
            }
            Err(res) => res,
            Ok((id, _)) => {
                let h = self.raw(c);
                h.set_parent(&RawGreenlet::current())
                    .expect("set_parent before a throw");
                self.chain.borrow_mut().push((id, false));
                let r = panic::catch_unwind(AssertUnwindSafe(|| h.throw(Boom)));
                self.chain.borrow_mut().pop();
                match r {
                    Err(p) if p.is::<Boom>() => {}
                    Err(_) => panic!("throw: another payload came back"),
                    Ok(r) => panic!("throw: the payload did not come back ({r:?})"),
                }
                Res::Raised
            }
        };
        self.sink.push(Ev::Throw { c, res });
    }

    fn drop_co(&self, c: u8) {
        match self.target(c, false) {
            Err(res) => self.sink.push(Ev::Released { c, res }),
            Ok(_) => {
                let co = self.table.borrow_mut()[c as usize].take();
                self.sink.push(Ev::Released { c, res: Res::Exit });
                drop(co);
            }
        }
    }

    fn put(self: &Rc<Ws>, st: u32, k: u8, act: Act) {
        let held_raw = |c: u8| match &self.table.borrow()[c as usize] {
            Some(Co::Raw(id, h)) => Some((*id, h.clone())),
            _ => None,
        };
        let held = match act {
            Act::Plain => Held::Plain,
            Act::Touch(j) => Held::Touch(j),
            Act::Hold(c) => Held::Hold(held_raw(c).map(|(_, h)| h)),
            Act::KillOnDrop(c) => Held::KillOnDrop(held_raw(c)),
        };
        let seq = self.seq.get();
        self.seq.set(seq + 1);
        let v = Val {
            id: ValId { st, seq },
            key: k,
            held,
            ws: self.clone(),
        };
        key(k).with(|cell| {
            cell.seen();
            let old = cell.val.replace(Some(v));
            drop(old);
        });
    }
}

/// Drops the coroutine handles slot by slot when the owner's closure ends
/// (returning or unwinding).
pub struct Teardown(pub Rc<Ws>);

impl Drop for Teardown {
    fn drop(&mut self) {
        for c in 0..self.0.cos.len() {
            let co = self.0.table.borrow_mut()[c].take();
            drop(co);
        }
    }
}

/// How the running stack suspends.
#[derive(Clone, Copy)]
pub enum Yield<'a> {
    /// It cannot: the worker's (or thread's) own stack.
    Own,
    Raw,
    Gen(&'a GenCo<u64, u64>),
}

/// Logs the end of a coroutine's script, returning or unwinding.
struct EndGuard<'a> {
    ws: &'a Ws,
    st: u32,
    done: bool,
}

impl Drop for EndGuard<'_> {
    fn drop(&mut self) {
        self.ws.sink.push(Ev::End {
            st: self.st,
            unwound: !self.done,
        });
    }
}

fn script(ws: &Rc<Ws>, st: u32, c: u8, y: Yield<'_>) {
    ws.sink.push(Ev::Start { st });
    let mut end = EndGuard {
        ws,
        st,
        done: false,
    };
    let cos = ws.cos.clone();
    exec(
        ws,
        st,
        y,
        &cos[c as usize].body,
        &mut None::<&mut dyn Steps>,
    );
    end.done = true;
}

/// The worker's side of its own stack's steps: Kahn ops, and counting.
pub trait Steps {
    /// Step number `i` (from 0) begins.
    fn begin(&mut self, i: usize);
    /// A step completed.
    fn done(&mut self);
    /// Runs a Kahn op.
    fn kahn(&mut self, op: Op);
    /// Steps completed so far.
    fn count(&self) -> usize;
}

/// Logs a `With` scope's end, returning or unwinding.
struct WithGuard<'a> {
    ws: &'a Ws,
    cell: &'a LCell,
    st: u32,
    key: u8,
}

impl Drop for WithGuard<'_> {
    fn drop(&mut self) {
        self.ws.sink.push(Ev::WithEnd {
            st: self.st,
            key: self.key,
            seen: self.cell.seen(),
        });
    }
}

/// Runs `nodes` on stack `st`. `steps` is the worker's, on its own stack.
pub fn exec(
    ws: &Rc<Ws>,
    st: u32,
    y: Yield<'_>,
    nodes: &[Node],
    steps: &mut Option<&mut dyn Steps>,
) {
    for node in nodes {
        match node {
            Node::Scope(_, Scope::With(k), body) => {
                key(*k).with(|cell| {
                    let _g = WithGuard {
                        ws,
                        cell,
                        st,
                        key: *k,
                    };
                    exec(ws, st, y, body, steps);
                });
            }
            Node::Scope(id, frame, body) => {
                let dur = if *frame == Scope::Short { SHORT } else { LONG };
                let r = greenhub::timeout(dur, || exec(ws, st, y, body, steps));
                ws.sink.push(Ev::Frame {
                    st,
                    id: *id,
                    elapsed: r.is_err(),
                });
            }
            Node::Op(Op::Block) => {
                // Blocks until the short frame's deadline unwinds it; its
                // own deadline only bounds a frame that lost its deadline.
                let r = ws.dead.recv_timeout(BLOCK_BOUND);
                panic!(
                    "stack {st}: a Block inside a short timeout frame was not ended by the frame's deadline (recv_timeout returned {r:?} after {BLOCK_BOUND:?})"
                );
            }
            Node::Op(op) => {
                if let Some(s) = steps.as_mut() {
                    let i = s.count();
                    s.begin(i);
                }
                leaf(ws, st, y, *op, steps);
                if let Some(s) = steps.as_mut() {
                    s.done();
                }
            }
        }
    }
}

fn leaf(ws: &Rc<Ws>, st: u32, y: Yield<'_>, op: Op, steps: &mut Option<&mut dyn Steps>) {
    match op {
        op if op.is_kahn() => steps
            .as_mut()
            .expect("a Kahn op on a worker's own stack")
            .kahn(op),
        op if op.is_finite_block() => {
            let r = panic::catch_unwind(AssertUnwindSafe(|| finite(&ws.dead, op)));
            if r.is_err() {
                panic!(
                    "stack {st}: {op:?} outside any short timeout frame of its own stack was interrupted"
                );
            }
        }
        Op::CoYield => match y {
            Yield::Raw => {
                let to = ws.raw_parents.borrow().last().cloned().expect("a resumer");
                to.switch(0).expect("yield of a raw greenlet");
            }
            Yield::Gen(co) => co.yield_(0),
            Yield::Own => unreachable!("CoYield on a worker's own stack"),
        },
        Op::New(c) => ws.new_co(c),
        Op::Resume(c) => ws.resume(c),
        Op::CoKill(c) => ws.kill(c),
        Op::Throw(c) => ws.throw(c),
        Op::CoDrop(c) => ws.drop_co(c),
        Op::Get(k) => {
            let seen = key(k).with(|cell| cell.seen());
            ws.sink.push(Ev::Get { st, key: k, seen });
        }
        Op::Put(k, act) => ws.put(st, k, act),
        op => unreachable!("{op:?}"),
    }
}

/// The finite blocking calls, each checked for its own outcome.
pub fn finite(dead: &Receiver<u64>, op: Op) {
    match op {
        Op::Yield => greenhub::yield_now(),
        Op::Sleep(ms) => greenhub::sleep(Duration::from_millis(ms.into())),
        Op::TimeoutDead => {
            let r = greenhub::timeout(Duration::from_millis(1), || dead.recv());
            assert!(r.is_err(), "timeout around a dead recv returned {r:?}");
        }
        Op::RecvTimeoutDead => {
            let r = dead.recv_timeout(Duration::from_millis(1));
            assert!(r.is_err(), "recv_timeout on a dead channel returned {r:?}");
        }
        Op::TimeoutOk => {
            greenhub::timeout(Duration::from_secs(10), greenhub::yield_now)
                .expect("a yield inside a 10 s timeout elapsed");
        }
        op => unreachable!("{op:?} is not a finite blocking call"),
    }
}
