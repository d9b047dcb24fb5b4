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

/// A short frame's duration: it expires at the first `Block` inside (or a
/// blocking call of a coroutine that honours it as its outer deadline).
pub const SHORT: Duration = Duration::from_millis(1);
/// A long frame's: never expires in a run.
pub const LONG: Duration = Duration::from_secs(3600);
/// How long a `Block` waits at most (a short frame ends it after 1 ms).
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
                    let chain = ws.enter(x, false);
                    let r = h.kill();
                    drop(chain);
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
    /// Short frames open on each stack, by stack id.
    shorts: RefCell<Vec<u32>>,
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
            shorts: RefCell::new(Vec::new()),
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

    /// Pushes `id` on the chain of running stacks until the guard drops
    /// (the resume returning or unwinding).
    fn enter(&self, id: u32, generator: bool) -> ChainGuard<'_> {
        self.chain.borrow_mut().push((id, generator));
        ChainGuard(self)
    }

    /// Counts a short frame open on stack `st` until the guard drops.
    fn open_short(&self, st: u32) -> ShortGuard<'_> {
        let mut shorts = self.shorts.borrow_mut();
        let i = st as usize;
        if shorts.len() <= i {
            shorts.resize(i + 1, 0);
        }
        shorts[i] += 1;
        ShortGuard(self, st)
    }

    /// Whether a short frame is open on a stack below the running one: then
    /// its deadline may be the running coroutine's outer one.
    fn short_below(&self) -> bool {
        let chain = self.chain.borrow();
        let shorts = self.shorts.borrow();
        chain[..chain.len() - 1]
            .iter()
            .any(|&(s, _)| shorts.get(s as usize).is_some_and(|&n| n > 0))
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
                // An outer deadline's payload may come back through this
                // switch (unwinding us): the guards restore the chain.
                let _parent = ParentGuard(self);
                let _chain = self.enter(id, false);
                let r = h.switch(0);
                match r {
                    Ok(_) if h.is_dead() => Res::Complete,
                    Ok(_) => Res::Yielded,
                    Err(e) => panic!("switch into a raw greenlet: {e:?}"),
                }
            }
            Ok((id, true)) => {
                let g = match &mut self.table.borrow_mut()[c as usize] {
                    Some(Co::Gen(_, g)) => g.take().expect("a generator"),
                    _ => unreachable!("a generator in slot {c}"),
                };
                // Puts the generator back in its slot, also when an outer
                // deadline's payload comes back through `resume`.
                let mut g = GenGuard {
                    ws: self,
                    c,
                    g: Some(g),
                };
                let _chain = self.enter(id, true);
                let r = g.g.as_mut().expect("a generator").resume();
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
                let chain = self.enter(id, false);
                let r = h.kill();
                drop(chain);
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
                let chain = self.enter(id, false);
                let r = panic::catch_unwind(AssertUnwindSafe(|| h.throw(Boom)));
                drop(chain);
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

/// Pops the chain of running stacks (see [`Ws::enter`]).
struct ChainGuard<'a>(&'a Ws);

impl Drop for ChainGuard<'_> {
    fn drop(&mut self) {
        self.0.chain.borrow_mut().pop();
    }
}

/// Pops the raw greenlets' resumers.
struct ParentGuard<'a>(&'a Ws);

impl Drop for ParentGuard<'_> {
    fn drop(&mut self) {
        self.0.raw_parents.borrow_mut().pop();
    }
}

/// Closes a short frame's count (see [`Ws::open_short`]).
struct ShortGuard<'a>(&'a Ws, u32);

impl Drop for ShortGuard<'_> {
    fn drop(&mut self) {
        self.0.shorts.borrow_mut()[self.1 as usize] -= 1;
    }
}

/// A generator taken out of slot `c` to resume it, put back when dropped.
struct GenGuard<'a> {
    ws: &'a Ws,
    c: u8,
    g: Option<Generator<u64, u64>>,
}

impl Drop for GenGuard<'_> {
    fn drop(&mut self) {
        if let Some(Co::Gen(_, slot)) = &mut self.ws.table.borrow_mut()[self.c as usize] {
            *slot = self.g.take();
        }
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
    /// Step number `i` (from 0), a Kahn op, begins.
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
                let short = *frame == Scope::Short;
                let _open = short.then(|| ws.open_short(st));
                let dur = if short { SHORT } else { LONG };
                let r = greenhub::timeout(dur, || exec(ws, st, y, body, steps));
                ws.sink.push(Ev::Frame {
                    st,
                    id: *id,
                    elapsed: r.is_err(),
                });
            }
            Node::Op(Op::Block) => {
                // Blocks until a short frame's deadline (its stack's own, or
                // its outer one) unwinds it; its own deadline only bounds a
                // frame that lost its deadline.
                let r = ws.dead.recv_timeout(BLOCK_BOUND);
                panic!(
                    "stack {st}: a Block inside a short timeout frame was not ended by the frame's deadline (recv_timeout returned {r:?} after {BLOCK_BOUND:?})"
                );
            }
            Node::Op(op) => {
                // Only a Kahn op may block forever: `begin` tells the main
                // greenlet that the worker reached it.
                if let Some(s) = steps.as_mut().filter(|_| op.is_kahn()) {
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
            // If an outer short deadline may be in force, wait (blocking the
            // OS thread: a greenhub wait would be cut) until it has surely
            // passed: then the call raises it at once, as the model says,
            // instead of racing it.
            if ws.short_below() {
                std::thread::sleep(SHORT);
            }
            finite(&ws.dead, op);
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
