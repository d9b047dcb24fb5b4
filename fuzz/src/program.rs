//! The `schedule` target's programs: decoding fuzzer bytes into greenlet
//! programs, and the reference model that says how each one must end.
//!
//! A program is a few *workers* (each a list of ops) and a few *victims*
//! (greenlets that block forever in one primitive until a kill). Workers talk
//! over a ring of single-producer single-consumer channels (worker `i` sends
//! on channel `i`, worker `i + 1` receives from it), set and wait on events
//! that are never cleared, and wait for each other to finish. Such a program
//! is a Kahn process network: which ops each worker completes, and which
//! values it receives in which order, do not depend on the schedule. So the
//! model below (a round-robin interpreter run to its fixpoint) gives the
//! exact outcome for *every* mode, single-threaded and M:N alike; the runner
//! then kills whatever the model says is blocked forever.
//!
//! # Stacks
//!
//! Workers also drive *coroutines* of their own: raw greenlets
//! (`greenhub::raw::RawGreenlet`) and generators (`raw::Generator`), made
//! from a few shared scripts ([`CoDef`]), resumed, killed, thrown into and
//! dropped while suspended. Every stack (a worker, a coroutine, or the plain
//! thread of [`Program::thread`]) enters `timeout` frames ([`Scope::Short`]
//! expires, [`Scope::Long`] never does), holds `greenhub::local!` values
//! (read, written, held by reference across a suspension with
//! [`Scope::With`], with destructors that read other keys or kill raw
//! greenlets) and blocks inside them. What happens on one worker's stacks is
//! deterministic (raw switches are synchronous), so [`crate::stacks`] models
//! it exactly: which frame reports `Elapsed`, which value every read sees,
//! which destructors run in which order. The model's rule is that frames
//! and local values belong to the stack that made them, whatever other
//! stacks do meanwhile, except that a coroutine also honours the deadline
//! in force on the stack that runs its family as an outer one (an expiring
//! outer deadline unwinds the coroutine, and its resumers up to the frame's
//! own stack; see [`crate::stacks`]).
//!
//! The decoder keeps that model exact with timing out of it: a stack inside
//! a short frame of its own only blocks forever ([`Op::Block`], so a
//! deadline is what ends the block), and never makes a finite blocking call
//! (whose outcome would depend on how fast it ran); outside short frames it
//! never blocks forever. A coroutine's finite blocking call made while a
//! short frame may be in force as its outer deadline is made only once that
//! deadline has passed (the runner waits first), so it raises at once.

use crate::stacks::{self, Ev};

/// What a channel of the ring is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChanKind {
    /// `channel::unbounded`.
    Unbounded,
    /// `channel::rendezvous`: a send completes when a receiver takes it.
    Rendezvous,
    /// `channel::bounded(n)`, `n` in 1..=3.
    Bounded(usize),
}

/// Where a victim blocks until it is killed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VictimKind {
    /// `recv` on a channel nobody sends on.
    Recv,
    /// The second `send` on a full `bounded(1)` channel nobody reads.
    SendFull,
    /// `send` on a rendezvous channel nobody reads.
    SendRendezvous,
    /// `Event::wait` on an event nobody sets.
    EventWait,
    /// `Mutex::lock` on a mutex the main greenlet holds.
    Lock,
    /// `sleep` for an hour.
    Sleep,
    /// `recv` on a dead channel inside `timeout(1 h)`.
    InTimeout,
}

/// What a value written by [`Op::Put`] does when it is dropped (after
/// logging its drop).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Act {
    /// Nothing more.
    Plain,
    /// Reads local key `k` (`try_with`) and logs what it saw.
    Touch(u8),
    /// Holds a handle of the raw greenlet in coroutine slot `c` (if it is
    /// one): dropping the last handle of a suspended one kills it. Worker
    /// stacks only.
    Hold(u8),
    /// Like `Hold`, and kills it (`RawGreenlet::kill`) before dropping the
    /// handle. Worker stacks only.
    KillOnDrop(u8),
}

/// One step of a stack.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// `yield_now`.
    Yield,
    /// `sleep` for 0, 1 or 3 ms.
    Sleep(u8),
    /// Send the worker's next value on its outgoing channel.
    Send,
    /// Receive from the incoming channel (logged).
    Recv,
    /// Set event `e`.
    Set(u8),
    /// Wait for event `e`.
    Wait(u8),
    /// Lock the shared mutex, read the counter, yield `k` times, write it + 1.
    Critical(u8),
    /// Kill victim `v` (if there is one).
    Kill(u8),
    /// Wait until worker `g` has finished.
    Join(u8),
    /// `timeout(1 ms, dead.recv())` must elapse.
    TimeoutDead,
    /// `dead.recv_timeout(1 ms)` must time out.
    RecvTimeoutDead,
    /// `timeout(10 s, yield_now)` must not elapse.
    TimeoutOk,
    /// Spawn a helper greenlet (joined when the worker finishes).
    Spawn,
    /// A new coroutine from script `c` into slot `c` (the old one's handle
    /// is dropped).
    New(u8),
    /// Resume the coroutine in slot `c` (`switch` / `Generator::resume`).
    Resume(u8),
    /// Suspend this coroutine back to whoever resumed it (coroutine
    /// scripts only).
    CoYield,
    /// `RawGreenlet::kill` the coroutine in slot `c`; for a generator, drop
    /// it.
    CoKill(u8),
    /// `RawGreenlet::throw` a payload into the raw greenlet in slot `c`
    /// (decoded as `Resume` for a generator slot).
    Throw(u8),
    /// Drop the handle in slot `c`.
    CoDrop(u8),
    /// Block forever (`recv` on a dead channel): only inside a short frame,
    /// whose deadline (or an earlier outer one) ends it.
    Block,
    /// Read local key `k`.
    Get(u8),
    /// Write a fresh value into local key `k`.
    Put(u8, Act),
}

impl Op {
    /// An op of the Kahn network (blocks on, or changes, what other
    /// workers see): worker stacks only.
    pub fn is_kahn(self) -> bool {
        matches!(
            self,
            Op::Send
                | Op::Recv
                | Op::Set(_)
                | Op::Wait(_)
                | Op::Critical(_)
                | Op::Kill(_)
                | Op::Join(_)
                | Op::Spawn
        )
    }

    /// A call that may block for a while but always returns (by itself).
    pub fn is_finite_block(self) -> bool {
        matches!(
            self,
            Op::Yield | Op::Sleep(_) | Op::TimeoutDead | Op::RecvTimeoutDead | Op::TimeoutOk
        )
    }
}

/// A scope a stack enters around some of its ops.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// `timeout(1 ms, ..)`: expires at the first [`Op::Block`] inside, or
    /// at the first blocking call of a coroutine that honours it as its
    /// outer deadline.
    Short,
    /// `timeout(1 h, ..)`: never expires in a run.
    Long,
    /// `KEY[k].with(|v| ..)`: holds a reference to the stack's value.
    With(u8),
}

/// An op, or a scope around ops.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Node {
    /// One op.
    Op(Op),
    /// A scope; `id` is unique in the program (for the log).
    Scope(u16, Scope, Vec<Node>),
}

/// A coroutine script: what every coroutine of one slot runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CoDef {
    /// A `Generator<u64, u64>` rather than a `RawGreenlet<u64>`.
    pub generator: bool,
    /// Its ops.
    pub body: Vec<Node>,
}

/// The number of events workers share.
pub const EVENTS: usize = 4;
/// At most this many ops (and scopes) per stack.
pub const MAX_OPS: usize = 12;
/// The number of `local!` keys.
pub const KEYS: usize = 4;
/// At most this many coroutine slots (scripts).
pub const MAX_COS: usize = 3;
/// How deep scopes nest.
const MAX_DEPTH: usize = 3;

/// A decoded program.
#[derive(Clone, Debug)]
pub struct Program {
    /// 0: single-threaded, 1: M:N with 2 hubs, 2: pinned with 2 hubs, 3: M:N
    /// with 2 hubs and migratable greenlets (`Builder::migratable`; workers
    /// that drive coroutines or use locals are `spawn_local`ed: they keep
    /// `Rc`s across blocking calls).
    pub mode: u8,
    /// Channel `i` carries worker `i`'s sends to worker `(i + 1) % n`.
    pub chans: Vec<ChanKind>,
    /// Each worker's ops. Workers (and the thread part) begin with a
    /// `New(c)` for every coroutine slot, so that a stream's `Resume` finds
    /// a coroutine.
    pub workers: Vec<Vec<Node>>,
    /// The victims.
    pub victims: Vec<VictimKind>,
    /// Coroutine scripts, one per slot.
    pub cos: Vec<CoDef>,
    /// Ops run on a plain thread (no runtime) before the runtime starts:
    /// stack ops and finite blocking calls only, no locals of its own.
    pub thread: Option<Vec<Node>>,
}

/// The value worker `w` sends the `s`-th time.
pub fn value(w: usize, s: usize) -> u64 {
    (w as u64) * 1000 + s as u64
}

/// Which stack an op stream builds.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Target {
    Worker,
    Script,
    Thread,
}

/// Builds one stack's tree from its op stream.
struct Builder {
    target: Target,
    /// Open scopes, outermost first, with their ops so far.
    open: Vec<(u16, Scope, Vec<Node>)>,
    top: Vec<Node>,
    count: usize,
}

impl Builder {
    fn new(target: Target) -> Builder {
        Builder {
            target,
            open: Vec::new(),
            top: Vec::new(),
            count: 0,
        }
    }

    fn in_short(&self) -> bool {
        self.open.iter().any(|(_, s, _)| *s == Scope::Short)
    }

    fn push(&mut self, node: Node) {
        match self.open.last_mut() {
            Some((_, _, body)) => body.push(node),
            None => self.top.push(node),
        }
    }

    /// Adds `op` if this stack may run it here.
    fn op(&mut self, op: Op) {
        if self.count >= MAX_OPS {
            return;
        }
        let short = self.in_short();
        let ok = match op {
            op if op.is_kahn() => self.target == Target::Worker && !short,
            op if op.is_finite_block() => !short,
            Op::Block => short,
            Op::CoYield => self.target == Target::Script,
            Op::Get(_) | Op::Put(..) => self.target != Target::Thread,
            _ => true,
        };
        if ok {
            self.count += 1;
            self.push(Node::Op(op));
        }
    }

    fn open(&mut self, id: &mut u16, scope: Scope) {
        if self.count >= MAX_OPS || self.open.len() >= MAX_DEPTH {
            return;
        }
        if matches!(scope, Scope::With(_)) && self.target == Target::Thread {
            return;
        }
        self.count += 1;
        self.open.push((*id, scope, Vec::new()));
        *id += 1;
    }

    fn close(&mut self) {
        if let Some((id, scope, body)) = self.open.pop() {
            self.push(Node::Scope(id, scope, body));
        }
    }

    fn finish(mut self) -> Vec<Node> {
        while !self.open.is_empty() {
            self.close();
        }
        self.top
    }
}

impl Program {
    /// Decodes bytes; `None` if there are too few.
    pub fn decode(data: &[u8]) -> Option<Program> {
        let mut it = data.iter().copied();
        let head = it.next()?;
        let mode = head % 4;
        let thread = (head / 4) % 2 == 1;
        let shape = it.next()?;
        let n = 2 + (shape % 4) as usize;
        let nv = ((shape / 4) % 4) as usize;
        let nc = ((shape / 16) % 4).min(MAX_COS as u8) as usize;
        let mut chans = Vec::with_capacity(n);
        for _ in 0..n {
            chans.push(match it.next()? % 5 {
                0 => ChanKind::Unbounded,
                1 => ChanKind::Rendezvous,
                k => ChanKind::Bounded(k as usize - 1),
            });
        }
        let mut victims = Vec::with_capacity(nv);
        for _ in 0..nv {
            victims.push(match it.next()? % 7 {
                0 => VictimKind::Recv,
                1 => VictimKind::SendFull,
                2 => VictimKind::SendRendezvous,
                3 => VictimKind::EventWait,
                4 => VictimKind::Lock,
                5 => VictimKind::Sleep,
                _ => VictimKind::InTimeout,
            });
        }
        let mut gens = Vec::with_capacity(nc);
        for _ in 0..nc {
            gens.push(it.next()? % 2 == 1);
        }
        // Stream targets: workers, then scripts, then the thread.
        let mut builders: Vec<Builder> = (0..n)
            .map(|_| Builder::new(Target::Worker))
            .chain((0..nc).map(|_| Builder::new(Target::Script)))
            .chain(thread.then(|| Builder::new(Target::Thread)))
            .collect();
        let targets = builders.len();
        let mut scope_id = 0u16;
        while let (Some(a), Some(b)) = (it.next(), it.next()) {
            let t = (a >> 4) as usize % targets;
            let bld = &mut builders[t];
            // A coroutine slot, if there are any.
            let slot = |x: u8| (nc > 0).then(|| x % nc as u8);
            // A throw into a generator slot resumes it instead.
            let throw = |c: u8| {
                if gens[c as usize] {
                    Op::Resume(c)
                } else {
                    Op::Throw(c)
                }
            };
            let code = a & 15;
            let op = match (bld.target, code) {
                // Worker stacks: the Kahn ops (exactly the old table when
                // there are no coroutine scripts).
                (Target::Worker, 0..=12) => match code {
                    0 => Op::Yield,
                    1 => Op::Sleep([0, 1, 3][b as usize % 3]),
                    2 => Op::Send,
                    3 => Op::Recv,
                    4 => Op::Set(b % EVENTS as u8),
                    5 => Op::Wait(b % EVENTS as u8),
                    6 => Op::Critical(b % 3),
                    7 => Op::Kill(b % 4),
                    8 => Op::Join(b % n as u8),
                    9 => Op::TimeoutDead,
                    10 if nc > 0 && b & 1 == 1 => Op::TimeoutOk,
                    10 => Op::RecvTimeoutDead,
                    11 => match slot(b) {
                        Some(c) => Op::Resume(c),
                        None => Op::TimeoutOk,
                    },
                    _ => Op::Spawn,
                },
                // Coroutine scripts and the thread part have no Kahn ops:
                // these codes are stack ops there.
                (_, 0..=12) => match (code, slot(b)) {
                    (0, _) => Op::Yield,
                    (1, _) => Op::Sleep([0, 1, 3][b as usize % 3]),
                    (2 | 3, _) => Op::CoYield,
                    (10, _) => Op::Block,
                    (11, _) => {
                        [Op::TimeoutDead, Op::RecvTimeoutDead, Op::TimeoutOk][b as usize % 3]
                    }
                    (12, _) => Op::Get((b >> 1) % KEYS as u8),
                    (_, None) => continue,
                    (4 | 5, Some(c)) => Op::Resume(c),
                    (6, Some(c)) => Op::New(c),
                    (7, Some(c)) => Op::CoKill(c),
                    (8, Some(c)) => throw(c),
                    (_, Some(c)) => Op::CoDrop(c),
                },
                (_, 13) => match (b & 7, slot(b >> 3)) {
                    (6, _) => Op::Block,
                    (2, _) => Op::CoYield,
                    (_, None) => continue,
                    (0, Some(c)) => Op::New(c),
                    (1 | 7, Some(c)) => Op::Resume(c),
                    (3, Some(c)) => Op::CoKill(c),
                    (4, Some(c)) => throw(c),
                    (_, Some(c)) => Op::CoDrop(c),
                },
                (_, 14) => {
                    match b & 3 {
                        0 => bld.open(&mut scope_id, Scope::Short),
                        1 => bld.open(&mut scope_id, Scope::Long),
                        2 => bld.open(&mut scope_id, Scope::With((b >> 2) % KEYS as u8)),
                        _ => bld.close(),
                    }
                    continue;
                }
                (_, _) => {
                    let k = (b >> 1) % KEYS as u8;
                    if b & 1 == 0 {
                        Op::Get(k)
                    } else {
                        let x = b >> 5;
                        let act = match ((b >> 3) & 3, slot(x)) {
                            (1, _) => Act::Touch(x % KEYS as u8),
                            (2, Some(c)) if bld.target == Target::Worker => Act::Hold(c),
                            (3, Some(c)) if bld.target == Target::Worker => Act::KillOnDrop(c),
                            _ => Act::Plain,
                        };
                        Op::Put(k, act)
                    }
                }
            };
            bld.op(op);
        }
        // Every worker (and the thread part) starts with a coroutine in each
        // slot (not counted as ops of the stream).
        let mut trees = builders.into_iter().map(|b| {
            let own = b.target != Target::Script;
            let mut nodes = b.finish();
            if own {
                nodes.splice(0..0, (0..nc as u8).map(|c| Node::Op(Op::New(c))));
            }
            nodes
        });
        let workers = (&mut trees).take(n).collect();
        let cos = (&mut trees)
            .take(nc)
            .zip(gens)
            .map(|(body, generator)| CoDef { generator, body })
            .collect();
        let thread = trees.next();
        Some(Program {
            mode,
            chans,
            workers,
            victims,
            cos,
            thread,
        })
    }

    /// Whether worker `w` drives coroutines or uses locals (then it keeps
    /// `Rc`s across blocking calls and must not migrate).
    pub fn uses_stacks(&self, w: usize) -> bool {
        fn any(nodes: &[Node]) -> bool {
            nodes.iter().any(|n| match n {
                Node::Op(op) => !op.is_kahn() && !op.is_finite_block(),
                Node::Scope(_, Scope::With(_), _) => true,
                Node::Scope(_, _, body) => any(body),
            })
        }
        any(&self.workers[w])
    }

    /// Runs the reference model to its fixpoint.
    pub fn model(&self) -> Outcome {
        let n = self.workers.len();
        // Each worker's steps in order (its stacks run deterministically).
        let traces: Vec<Vec<Op>> = (0..n)
            .map(|w| stacks::simulate(self, Some(w), None).trace)
            .collect();
        let mut pc = vec![0usize; n];
        // Per channel: values in flight, how many were sent, received.
        let mut queue: Vec<std::collections::VecDeque<u64>> = vec![Default::default(); n];
        let mut sent = vec![0usize; n];
        let mut taken = vec![0usize; n];
        // A rendezvous sender whose value is queued but not yet taken.
        let mut pending = vec![false; n];
        let mut events = [false; EVENTS];
        let mut received = vec![Vec::new(); n];
        let mut criticals = 0;
        let mut helpers = 0;
        loop {
            let mut progress = false;
            for w in 0..n {
                // Run worker `w` until it blocks or finishes.
                while let Some(&op) = traces[w].get(pc[w]) {
                    let inbox = (w + n - 1) % n;
                    let done = match op {
                        Op::Send => match self.chans[w] {
                            ChanKind::Unbounded => {
                                queue[w].push_back(value(w, sent[w]));
                                sent[w] += 1;
                                true
                            }
                            ChanKind::Bounded(cap) => {
                                let fits = queue[w].len() < cap;
                                if fits {
                                    queue[w].push_back(value(w, sent[w]));
                                    sent[w] += 1;
                                }
                                fits
                            }
                            ChanKind::Rendezvous => {
                                if !pending[w] {
                                    queue[w].push_back(value(w, sent[w]));
                                    sent[w] += 1;
                                    pending[w] = true;
                                    // The value is on offer: a receiver
                                    // may take it in this pass.
                                    progress = true;
                                }
                                let done = taken[w] == sent[w];
                                if done {
                                    pending[w] = false;
                                }
                                done
                            }
                        },
                        Op::Recv => match queue[inbox].pop_front() {
                            Some(v) => {
                                taken[inbox] += 1;
                                received[w].push(v);
                                true
                            }
                            None => false,
                        },
                        Op::Set(e) => {
                            events[e as usize] = true;
                            true
                        }
                        Op::Wait(e) => events[e as usize],
                        Op::Join(g) => pc[g as usize] == traces[g as usize].len(),
                        Op::Critical(_) => {
                            criticals += 1;
                            true
                        }
                        Op::Spawn => {
                            helpers += 1;
                            true
                        }
                        _ => true,
                    };
                    if !done {
                        break;
                    }
                    pc[w] += 1;
                    progress = true;
                }
            }
            if !progress {
                break;
            }
        }
        let finished: Vec<bool> = (0..n).map(|w| pc[w] == traces[w].len()).collect();
        // The stacks' log: up to the blocking step, then what a kill there
        // unwinds, for a worker that blocks forever.
        let logs = (0..n)
            .map(|w| {
                let stop = (!finished[w]).then_some(pc[w]);
                stacks::simulate(self, Some(w), stop).events
            })
            .collect();
        let thread_log = self
            .thread
            .as_ref()
            .map(|_| stacks::simulate(self, None, None).events);
        Outcome {
            pc,
            finished,
            received,
            criticals,
            helpers,
            logs,
            thread_log,
        }
    }
}

/// How a program ends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// Steps each worker completed (ops of its own stack, not counting
    /// `Block`s and scopes; a `Resume` is one step, whatever it runs).
    pub pc: Vec<usize>,
    /// Which workers finished (the others are killed, blocked forever).
    pub finished: Vec<bool>,
    /// The values each worker received, in order.
    pub received: Vec<Vec<u64>>,
    /// Critical sections run.
    pub criticals: usize,
    /// Helpers spawned.
    pub helpers: usize,
    /// What each worker's stacks log, in order (see [`Ev`]).
    pub logs: Vec<Vec<Ev>>,
    /// What the thread part logs, if there is one.
    pub thread_log: Option<Vec<Ev>>,
}
