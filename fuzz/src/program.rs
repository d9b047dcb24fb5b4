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

/// One step of a worker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// `yield_now`.
    Yield,
    /// `sleep` for 0 or 1 ms.
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
}

/// The number of events workers share.
pub const EVENTS: usize = 4;
/// At most this many ops per worker.
pub const MAX_OPS: usize = 12;

/// A decoded program.
#[derive(Clone, Debug)]
pub struct Program {
    /// 0: single-threaded, 1: M:N with 2 hubs, 2: pinned with 2 hubs, 3: M:N
    /// with 2 hubs and migratable greenlets (`Builder::migratable`).
    pub mode: u8,
    /// Channel `i` carries worker `i`'s sends to worker `(i + 1) % n`.
    pub chans: Vec<ChanKind>,
    /// Each worker's ops.
    pub workers: Vec<Vec<Op>>,
    /// The victims.
    pub victims: Vec<VictimKind>,
}

/// The value worker `w` sends the `s`-th time.
pub fn value(w: usize, s: usize) -> u64 {
    (w as u64) * 1000 + s as u64
}

impl Program {
    /// Decodes bytes; `None` if there are too few.
    pub fn decode(data: &[u8]) -> Option<Program> {
        let mut it = data.iter().copied();
        let mode = it.next()? % 4;
        let shape = it.next()?;
        let n = 2 + (shape % 4) as usize;
        let nv = ((shape / 4) % 4) as usize;
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
        let mut workers = vec![Vec::new(); n];
        while let (Some(a), Some(b)) = (it.next(), it.next()) {
            let w = (a >> 4) as usize % n;
            if workers[w].len() >= MAX_OPS {
                continue;
            }
            let op = match a & 15 {
                0 | 13 => Op::Yield,
                1 => Op::Sleep(b % 2),
                2 | 14 => Op::Send,
                3 | 15 => Op::Recv,
                4 => Op::Set(b % EVENTS as u8),
                5 => Op::Wait(b % EVENTS as u8),
                6 => Op::Critical(b % 3),
                7 => Op::Kill(b % 4),
                8 => Op::Join(b % n as u8),
                9 => Op::TimeoutDead,
                10 => Op::RecvTimeoutDead,
                11 => Op::TimeoutOk,
                _ => Op::Spawn,
            };
            workers[w].push(op);
        }
        Some(Program {
            mode,
            chans,
            workers,
            victims,
        })
    }

    /// Runs the reference model to its fixpoint.
    pub fn model(&self) -> Outcome {
        let n = self.workers.len();
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
                while let Some(&op) = self.workers[w].get(pc[w]) {
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
                        Op::Join(g) => pc[g as usize] == self.workers[g as usize].len(),
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
        let finished = (0..n).map(|w| pc[w] == self.workers[w].len()).collect();
        Outcome {
            pc,
            finished,
            received,
            criticals,
            helpers,
        }
    }
}

/// How a program ends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// Ops each worker completed.
    pub pc: Vec<usize>,
    /// Which workers finished (the others are killed, blocked forever).
    pub finished: Vec<bool>,
    /// The values each worker received, in order.
    pub received: Vec<Vec<u64>>,
    /// Critical sections run.
    pub criticals: usize,
    /// Helpers spawned.
    pub helpers: usize,
}
