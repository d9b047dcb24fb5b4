//! The model of one worker's stacks (or of the thread part): its own stack
//! and the coroutines it drives, run to the end or to the step where the
//! Kahn model says the worker blocks forever (then unwound as a kill
//! unwinds it). The result is the exact log of [`Ev`]s the runner must
//! produce, and the worker's steps for the Kahn model.
//!
//! The semantics modelled (what greenhub must do):
//!
//! - Every stack has its own `timeout` frames, nested per stack: the
//!   outermost short frame of a stack keeps its earlier deadline in force
//!   over the frames inside it.
//! - A coroutine also honours, as an *outer* deadline, the deadline in
//!   force on its family's main stack (the stack running the root loop that
//!   resumed it: the nearest stack below it on the chain of resumers that is
//!   not of its own family, raw greenlets and generators being two
//!   families), that stack's outer one included, recursively. So a
//!   generator resumed from the worker sees the worker's frames, but a raw
//!   greenlet resumed by another raw greenlet sees the frames of the code
//!   that runs the pair, not its resumer's (raw child-to-child switches go
//!   through the root loop on the main stack).
//! - A blocking call is cut by the earliest deadline in force on its stack
//!   (own or outer). Short frames all last 1 ms, so the earliest deadline is
//!   the frame entered first. If it is the stack's own frame, that frame
//!   reports `Elapsed`. If it is an outer one, the stack unwinds with that
//!   frame's payload (its scopes unwind, it ends, its values are dropped) and
//!   the payload is raised in its resumer's pending resume, and so on down
//!   the chain to the stack that owns the frame, where the frame reports
//!   `Elapsed`. A `Block` (only inside a short frame of its own stack) is
//!   always cut this way; a finite blocking call (only outside them) is cut
//!   exactly when an outer short deadline is in force (the runner waits,
//!   blocking its OS thread, until such a deadline has passed before the
//!   call, so the call raises at once; otherwise the outcome would depend on
//!   timing). Long frames never expire.
//! - A coroutine unwound by a kill, a throw or a drop cannot be interrupted
//!   (nothing here blocks while unwinding).
//! - Every stack has its own `local!` values: a read sees the value its own
//!   stack last wrote (or a fresh one). A stack's values are dropped when it
//!   ends (a coroutine: after its closure returned or unwound, before its
//!   resumer continues; a worker: after its closure, coroutine handles
//!   included, has been dropped), in key order; a destructor reading a key
//!   already dropped gets an `AccessError`, one reading a later key gets
//!   that stack's value (a fresh one if it had none).
//! - A raw greenlet or generator suspended when its last handle goes is
//!   unwound there; one never started just goes.
//! - Switching into a family (raw greenlets, generators) from a stack that
//!   is not the family's running member, while one of the family runs
//!   below, is refused (`SwitchError::WrongContext`); the runner does not
//!   attempt what would panic.

use crate::program::{Act, KEYS, Node, Op, Program, Scope};

/// A local value's identity: the stack that wrote it and a per-worker
/// write counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ValId {
    /// The writing stack: 0 for the worker's (or thread's) own, then
    /// coroutines by creation order from 1.
    pub st: u32,
    /// Writes by this worker before this one.
    pub seq: u32,
}

/// How an op on a coroutine slot went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Res {
    /// Nothing done: the slot is empty, or its coroutine is running (on the
    /// chain of resumers) or dead.
    NoOp,
    /// Refused: `SwitchError::WrongContext` (raw), or not attempted
    /// (generators).
    WrongContext,
    /// Resumed; it suspended again.
    Yielded,
    /// Resumed; it ended.
    Complete,
    /// Killed (`Err(SwitchError::Exit)`), or dropped.
    Exit,
    /// The thrown payload came back.
    Raised,
}

/// One entry of a stack log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ev {
    /// `New(c)`: coroutine `st` made (0: refused).
    New { c: u8, st: u32 },
    /// Coroutine `st` started running its script.
    Start { st: u32 },
    /// Coroutine `st`'s script ended, returning or unwinding.
    End { st: u32, unwound: bool },
    /// `Resume(c)`.
    Resume { c: u8, res: Res },
    /// `CoKill(c)`.
    Kill { c: u8, res: Res },
    /// `Throw(c)`.
    Throw { c: u8, res: Res },
    /// `CoDrop(c)` (logged before the handle goes).
    Released { c: u8, res: Res },
    /// A `timeout` frame of stack `st` returned (it did not unwind).
    Frame { st: u32, id: u16, elapsed: bool },
    /// `Get(key)` on stack `st`.
    Get {
        st: u32,
        key: u8,
        seen: Option<ValId>,
    },
    /// A `With(key)` scope of stack `st` ended (returning or unwinding);
    /// what its reference saw then.
    WithEnd {
        st: u32,
        key: u8,
        seen: Option<ValId>,
    },
    /// A value's destructor ran.
    Drop { key: u8, id: ValId },
    /// A destructor read `key`: `None` for `AccessError`.
    Touch {
        key: u8,
        seen: Option<Option<ValId>>,
    },
    /// A `KillOnDrop` destructor killed coroutine `st`.
    KillHeld { st: u32, res: Res },
}

/// A flattened instruction.
#[derive(Clone, Copy, Debug)]
enum Ins {
    Leaf(Op),
    /// Enter a scope; `exit` is the index of its `Exit`.
    Enter(u16, Scope, usize),
    Exit,
}

fn flatten(nodes: &[Node], out: &mut Vec<Ins>) {
    for n in nodes {
        match n {
            Node::Op(op) => out.push(Ins::Leaf(*op)),
            Node::Scope(id, scope, body) => {
                let at = out.len();
                out.push(Ins::Enter(*id, *scope, 0));
                flatten(body, out);
                let exit = out.len();
                out.push(Ins::Exit);
                out[at] = Ins::Enter(*id, *scope, exit);
            }
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Status {
    Unstarted,
    Running,
    Suspended,
    Dead,
}

#[derive(Clone, Copy, Debug)]
enum Held {
    Plain,
    Touch(u8),
    Hold(Option<u32>),
    KillOnDrop(Option<u32>),
}

#[derive(Clone, Copy, Debug)]
struct Val {
    id: ValId,
    held: Held,
}

#[derive(Clone, Copy, Debug)]
enum Slot {
    Empty,
    /// A value exists; `None` is the fresh (initial) one.
    Alive(Option<Val>),
    Destroyed,
}

/// An open scope of a stack.
#[derive(Clone, Copy, Debug)]
struct Open {
    id: u16,
    scope: Scope,
    /// The index of its `Exit`.
    exit: usize,
    /// When it was entered (a per-worker counter): among short frames, the
    /// one entered first has the earliest deadline.
    born: u64,
}

/// A `timeout` frame's payload: the frame's stack and scope id.
type Payload = (u32, u16);

struct Stack {
    /// Index into `Sim::codes`.
    code: usize,
    generator: bool,
    pc: usize,
    /// Open scopes, outermost first.
    open: Vec<Open>,
    status: Status,
    /// Counted handles (raw greenlets: the slot's and values' `Hold`s).
    handles: u32,
    locals: Vec<Slot>,
}

/// What a simulation produced.
pub struct Sim {
    /// The worker's steps, in order (none for the thread part).
    pub trace: Vec<Op>,
    /// The log.
    pub events: Vec<Ev>,
}

enum Stop {
    Yielded,
    Ended,
    /// The worker reached the step it blocks at forever.
    Blocked,
    /// Unwound by an outer deadline's payload, and dead.
    Raised(Payload),
}

struct State {
    codes: Vec<Vec<Ins>>,
    generators: Vec<bool>,
    /// Stacks by id; 0 is the worker's (or thread's).
    stacks: Vec<Stack>,
    /// Coroutine slots: the id in each.
    table: Vec<Option<u32>>,
    /// Running stack ids, bottom (0) first.
    chain: Vec<u32>,
    seq: u32,
    /// Scopes entered so far (orders the short frames' deadlines).
    clock: u64,
    trace: Vec<Op>,
    events: Vec<Ev>,
    stop_at: Option<usize>,
}

/// Simulates worker `w`'s stacks (or, for `None`, the thread part's), to
/// the end, or unwound by a kill at step `stop_at`.
pub fn simulate(p: &Program, w: Option<usize>, stop_at: Option<usize>) -> Sim {
    let mut codes: Vec<Vec<Ins>> = p
        .cos
        .iter()
        .map(|c| {
            let mut v = Vec::new();
            flatten(&c.body, &mut v);
            v
        })
        .collect();
    let own = match w {
        Some(w) => &p.workers[w],
        None => p.thread.as_ref().expect("a thread part"),
    };
    let mut v = Vec::new();
    flatten(own, &mut v);
    codes.push(v);
    let mut s = State {
        generators: p.cos.iter().map(|c| c.generator).collect(),
        stacks: vec![Stack {
            code: codes.len() - 1,
            generator: false,
            pc: 0,
            open: Vec::new(),
            status: Status::Running,
            handles: 0,
            locals: vec![Slot::Empty; KEYS],
        }],
        codes,
        table: vec![None; p.cos.len()],
        chain: vec![0],
        seq: 0,
        clock: 0,
        trace: Vec::new(),
        events: Vec::new(),
        stop_at,
    };
    if let Stop::Blocked = s.run(0) {
        // The kill unwinds the worker's open scopes.
        s.unwind(0);
    }
    // The worker's closure drops its coroutine handles, slot by slot, then
    // its stack's values go.
    for c in 0..s.table.len() {
        if let Some(x) = s.table[c].take() {
            s.release(x);
        }
    }
    s.destroy_locals(0);
    Sim {
        trace: s.trace,
        events: s.events,
    }
}

impl State {
    fn push(&mut self, ev: Ev) {
        self.events.push(ev);
    }

    fn top(&self) -> u32 {
        *self.chain.last().expect("a running stack")
    }

    /// Whether the current stack may switch into family `generator`.
    fn ctx_ok(&self, generator: bool) -> bool {
        let top = self.top();
        match self
            .chain
            .iter()
            .rev()
            .find(|&&s| s != 0 && self.stacks[s as usize].generator == generator)
        {
            None => true,
            Some(&s) => s == top,
        }
    }

    /// The value a stack sees at `key`, making a fresh one if needed;
    /// `None` if its values are already dropped.
    fn access(&mut self, st: u32, key: u8) -> Option<Option<ValId>> {
        let slot = &mut self.stacks[st as usize].locals[key as usize];
        match *slot {
            Slot::Empty => {
                *slot = Slot::Alive(None);
                Some(None)
            }
            Slot::Alive(v) => Some(v.map(|v| v.id)),
            Slot::Destroyed => None,
        }
    }

    fn seen(&mut self, st: u32, key: u8) -> Option<ValId> {
        self.access(st, key)
            .expect("the model reads a value of a stack that ended")
    }

    /// Runs stack `st` from where it is until it yields, ends or blocks
    /// (the worker only).
    fn run(&mut self, st: u32) -> Stop {
        let code = self.stacks[st as usize].code;
        loop {
            let pc = self.stacks[st as usize].pc;
            let Some(&ins) = self.codes[code].get(pc) else {
                if st != 0 {
                    self.push(Ev::End { st, unwound: false });
                    self.destroy_locals(st);
                    self.stacks[st as usize].status = Status::Dead;
                }
                return Stop::Ended;
            };
            self.stacks[st as usize].pc += 1;
            match ins {
                Ins::Enter(id, scope, exit) => {
                    if let Scope::With(k) = scope {
                        self.seen(st, k);
                    }
                    let born = self.clock;
                    self.clock += 1;
                    self.stacks[st as usize].open.push(Open {
                        id,
                        scope,
                        exit,
                        born,
                    });
                }
                Ins::Exit => {
                    let o = self.stacks[st as usize].open.pop().expect("open scope");
                    self.scope_end(st, o.id, o.scope, false);
                }
                Ins::Leaf(Op::Block) => {
                    assert!(
                        self.stacks[st as usize]
                            .open
                            .iter()
                            .any(|o| o.scope == Scope::Short),
                        "Block outside a short frame"
                    );
                    let (_, fst, id) = self.in_force().expect("a short frame in force");
                    if let Some(stop) = self.raise(st, (fst, id)) {
                        return stop;
                    }
                }
                Ins::Leaf(op) => {
                    // Only a Kahn op blocks forever (an op before it that
                    // unwound shares its step number: it is no step).
                    if st == 0 && op.is_kahn() && self.stop_at == Some(self.trace.len()) {
                        self.stacks[0].pc -= 1;
                        return Stop::Blocked;
                    }
                    if let Op::CoYield = op {
                        self.stacks[st as usize].status = Status::Suspended;
                        return Stop::Yielded;
                    }
                    if let Some(p) = self.leaf(st, op) {
                        // The op unwound: not a completed step.
                        match self.raise(st, p) {
                            Some(stop) => return stop,
                            None => continue,
                        }
                    }
                    if st == 0 {
                        self.trace.push(op);
                    }
                }
            }
        }
    }

    /// The earliest short frame in force on the running stack: (when it was
    /// entered, its stack, its id).
    fn in_force(&self) -> Option<(u64, u32, u16)> {
        self.in_force_at(self.chain.len() - 1)
    }

    /// The earliest short frame in force on the stack at `i` on the chain:
    /// its own outermost one, or its outer one, the one in force on its
    /// family's main stack.
    fn in_force_at(&self, i: usize) -> Option<(u64, u32, u16)> {
        let st = self.chain[i];
        let own = self.stacks[st as usize]
            .open
            .iter()
            .find(|o| o.scope == Scope::Short)
            .map(|o| (o.born, st, o.id));
        let outer = (i > 0)
            .then(|| self.in_force_at(self.family_main(i)))
            .flatten();
        match (own, outer) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Where on the chain the main stack of the family of the coroutine at
    /// `i` is: the code that runs the family's root loop (and resumed it),
    /// the nearest stack below that is not a member of the same family.
    fn family_main(&self, i: usize) -> usize {
        let generator = self.stacks[self.chain[i] as usize].generator;
        (0..i)
            .rev()
            .find(|&j| j == 0 || self.stacks[self.chain[j] as usize].generator != generator)
            .expect("the chain starts with the worker")
    }

    /// A `timeout` payload is raised on the running stack `st`: its scopes
    /// unwind down to the frame that claims it, which reports `Elapsed`
    /// (then `st` goes on after it: `None`); a stack without that frame ends
    /// unwound, and the payload goes on to its resumer.
    fn raise(&mut self, st: u32, p: Payload) -> Option<Stop> {
        while let Some(o) = self.stacks[st as usize].open.pop() {
            if (st, o.id) == p {
                self.push(Ev::Frame {
                    st,
                    id: o.id,
                    elapsed: true,
                });
                self.stacks[st as usize].pc = o.exit + 1;
                return None;
            }
            self.unwind_scope(st, o.id, o.scope);
        }
        assert_ne!(st, 0, "a timeout payload that no frame claims");
        self.push(Ev::End { st, unwound: true });
        self.destroy_locals(st);
        self.stacks[st as usize].status = Status::Dead;
        Some(Stop::Raised(p))
    }

    /// A scope that returns (or, for a frame, ends by its deadline).
    fn scope_end(&mut self, st: u32, id: u16, scope: Scope, elapsed: bool) {
        match scope {
            Scope::With(key) => {
                let seen = self.seen(st, key);
                self.push(Ev::WithEnd { st, key, seen });
            }
            _ => self.push(Ev::Frame { st, id, elapsed }),
        }
    }

    /// A scope that unwinds: frames let the payload pass, silently.
    fn unwind_scope(&mut self, st: u32, _id: u16, scope: Scope) {
        if let Scope::With(key) = scope {
            let seen = self.seen(st, key);
            self.push(Ev::WithEnd { st, key, seen });
        }
    }

    /// Unwinds every open scope of `st`, innermost first.
    fn unwind(&mut self, st: u32) {
        while let Some(o) = self.stacks[st as usize].open.pop() {
            self.unwind_scope(st, o.id, o.scope);
        }
    }

    /// Runs one op of stack `st`; a payload if the op unwinds with it.
    fn leaf(&mut self, st: u32, op: Op) -> Option<Payload> {
        match op {
            Op::New(c) => {
                let old = self.table[c as usize];
                if let Some(x) = old {
                    if self.chain.contains(&x) {
                        self.push(Ev::New { c, st: 0 });
                        return None;
                    }
                    if !self.ctx_ok(self.stacks[x as usize].generator) {
                        self.push(Ev::New { c, st: 0 });
                        return None;
                    }
                }
                let generator = self.generators[c as usize];
                let id = self.stacks.len() as u32;
                self.stacks.push(Stack {
                    code: c as usize,
                    generator,
                    pc: 0,
                    open: Vec::new(),
                    status: Status::Unstarted,
                    handles: 1,
                    locals: vec![Slot::Empty; KEYS],
                });
                self.table[c as usize] = Some(id);
                self.push(Ev::New { c, st: id });
                if let Some(x) = old {
                    self.release(x);
                }
            }
            Op::Resume(c) => {
                let res = match self.target(c, true) {
                    Err(res) => res,
                    Ok(x) => {
                        self.chain.push(x);
                        let s = &mut self.stacks[x as usize];
                        if s.status == Status::Unstarted {
                            self.push(Ev::Start { st: x });
                        }
                        self.stacks[x as usize].status = Status::Running;
                        let r = self.run(x);
                        self.chain.pop();
                        match r {
                            Stop::Yielded => Res::Yielded,
                            Stop::Ended => Res::Complete,
                            // It died; its resumer's `resume` raises.
                            Stop::Raised(p) => return Some(p),
                            Stop::Blocked => unreachable!("only the worker blocks"),
                        }
                    }
                };
                self.push(Ev::Resume { c, res });
            }
            Op::CoKill(c) => {
                let res = match self.target(c, true) {
                    Err(res) => res,
                    Ok(x) => {
                        if self.stacks[x as usize].generator {
                            self.table[c as usize] = None;
                            self.release(x);
                        } else {
                            self.kill(x);
                        }
                        Res::Exit
                    }
                };
                self.push(Ev::Kill { c, res });
            }
            Op::Throw(c) => {
                let res = match self.target(c, true) {
                    Err(res) => res,
                    Ok(x) => {
                        self.kill(x);
                        Res::Raised
                    }
                };
                self.push(Ev::Throw { c, res });
            }
            Op::CoDrop(c) => match self.target(c, false) {
                Err(res) => self.push(Ev::Released { c, res }),
                Ok(x) => {
                    self.table[c as usize] = None;
                    self.push(Ev::Released { c, res: Res::Exit });
                    self.release(x);
                }
            },
            Op::Get(key) => {
                let seen = self.seen(st, key);
                self.push(Ev::Get { st, key, seen });
            }
            Op::Put(key, act) => {
                let held = match act {
                    Act::Plain => Held::Plain,
                    Act::Touch(k) => Held::Touch(k),
                    Act::Hold(c) => Held::Hold(self.hold(c)),
                    Act::KillOnDrop(c) => Held::KillOnDrop(self.hold(c)),
                };
                let id = ValId { st, seq: self.seq };
                self.seq += 1;
                self.seen(st, key);
                let slot = &mut self.stacks[st as usize].locals[key as usize];
                let Slot::Alive(old) = std::mem::replace(slot, Slot::Alive(Some(Val { id, held })))
                else {
                    unreachable!("a live slot")
                };
                if let Some(old) = old {
                    self.drop_val(st, key, old);
                }
            }
            // A finite blocking call: cut by an outer short deadline (the
            // stack has no short frame of its own here), else no log.
            op if op.is_finite_block() => {
                if let Some((_, fst, id)) = self.in_force() {
                    assert_ne!(fst, st, "a finite blocking call inside a short frame");
                    return Some((fst, id));
                }
            }
            // Kahn ops: no log.
            _ => {}
        }
        None
    }

    /// A counted handle to the raw greenlet in slot `c`, if there is one.
    fn hold(&mut self, c: u8) -> Option<u32> {
        let x = self.table[c as usize]?;
        if self.stacks[x as usize].generator {
            return None;
        }
        self.stacks[x as usize].handles += 1;
        Some(x)
    }

    /// The coroutine an op on slot `c` acts on, or why it does nothing.
    fn target(&self, c: u8, live: bool) -> Result<u32, Res> {
        let x = self.table[c as usize].ok_or(Res::NoOp)?;
        if self.chain.contains(&x) {
            return Err(Res::NoOp);
        }
        if live && self.stacks[x as usize].status == Status::Dead {
            return Err(Res::NoOp);
        }
        if !self.ctx_ok(self.stacks[x as usize].generator) {
            return Err(Res::WrongContext);
        }
        Ok(x)
    }

    /// Drops one counted handle of `x`: the last one of a suspended
    /// coroutine unwinds it.
    fn release(&mut self, x: u32) {
        let s = &mut self.stacks[x as usize];
        s.handles -= 1;
        if s.handles == 0 {
            match s.status {
                Status::Suspended => self.kill(x),
                // Its closure is dropped without running.
                Status::Unstarted => s.status = Status::Dead,
                _ => {}
            }
        }
    }

    /// Unwinds a suspended coroutine (an unstarted one just dies).
    fn kill(&mut self, x: u32) {
        match self.stacks[x as usize].status {
            Status::Unstarted => self.stacks[x as usize].status = Status::Dead,
            Status::Suspended => {
                self.chain.push(x);
                self.stacks[x as usize].status = Status::Running;
                self.unwind(x);
                self.push(Ev::End {
                    st: x,
                    unwound: true,
                });
                self.destroy_locals(x);
                self.stacks[x as usize].status = Status::Dead;
                self.chain.pop();
            }
            s => unreachable!("kill of a {s:?} coroutine"),
        }
    }

    /// Drops stack `st`'s values in key order.
    fn destroy_locals(&mut self, st: u32) {
        for key in 0..KEYS as u8 {
            let slot = std::mem::replace(
                &mut self.stacks[st as usize].locals[key as usize],
                Slot::Destroyed,
            );
            if let Slot::Alive(Some(v)) = slot {
                self.drop_val(st, key, v);
            }
        }
    }

    /// A value of stack `st` is dropped (on that stack).
    fn drop_val(&mut self, st: u32, key: u8, v: Val) {
        self.push(Ev::Drop { key, id: v.id });
        match v.held {
            Held::Plain | Held::Hold(None) | Held::KillOnDrop(None) => {}
            Held::Touch(k) => {
                let seen = self.access(st, k);
                self.push(Ev::Touch { key: k, seen });
            }
            Held::Hold(Some(x)) => self.release(x),
            Held::KillOnDrop(Some(x)) => {
                let res = if self.stacks[x as usize].status == Status::Dead {
                    Res::NoOp
                } else {
                    self.kill(x);
                    Res::Exit
                };
                self.push(Ev::KillHeld { st: x, res });
                self.release(x);
            }
        }
    }
}
