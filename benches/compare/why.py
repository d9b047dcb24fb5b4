"""Why greenhub misses a target of issue 21: the explanations report.py puts
after a missed target's figures. Owns only this text; keep it true to the
code (src/hub/mod.rs, src/greenlet/, src/stack/) and to the profile
(benches/compare/PROFILE.md); every figure here comes from a run named
there or below."""

WHY = {
    "switch": "A greenhub switch is a corosensei context switch plus a trip through the hub's run loop "
              "(pop `ready`, resume, push back): about 191 instructions per switch since task blocks "
              "point straight at the task (callgrind, `switch --n 200000`: 38.2 M, PROFILE.md); may's is "
              "a generator switch plus its own queue. The switch medians move by tens of percent between "
              "rounds here (see min–max), more than the distance to this target.",
    "spawn": "Task blocks now come from greenhub's own allocator (PROFILE.md, 'Task blocks'): spawn+join "
             "went from about 1,560 to about 1,115 instructions (callgrind, `spawn --n 50000`, start-up "
             "included) and glibc's `malloc`/`free` from 26.6% of them to 0.1%; tokio's was about 1,990. "
             "Faults are level (1M spawns: 90,071 minor faults against tokio's 82,052, `/usr/bin/time`). "
             "What is left per greenlet is its stack (from the hub's cache), two context switches (start "
             "and end) and the join; where the remaining time goes was not profiled in this run.",
    "pingpong": "A round trip is two channel hand-offs, each a park (waiter registered under the channel's "
                "lock, then a context switch to the hub loop and on to the peer) and a wake-up; tokio's "
                "current-thread mpsc does the same hand-off by polling the peer's future with no stack "
                "switch. The woken peer already runs next (`hub::schedule_next` for rendezvous channels; "
                "with two greenlets the queue holds nobody else), so what is left is the switch through "
                "the hub: a direct switch from the sender to the receiver is not something corosensei's "
                "resume/suspend model offers.",
    "skynet": "Skynet is 1,111,111 spawns and joins, and FIFO order keeps all 111,111 inner greenlets "
              "suspended at once, each on its own stack: a page fault for its first stack page (216,287 "
              "minor faults against tokio's 91,552 and 0.92 s of system time against 0.19 s, one run of "
              "`/usr/bin/time` each). tokio's inner tasks are small heap futures. The allocator took 25% "
              "of skynet's instructions (PROFILE.md); the faults remain, and a touched stack page per "
              "live greenlet is the floor of a stackful design.",
    "idle": "Each parked greenlet owns a stack whose first page it has touched: 4.38 KiB resident each "
            "against tokio's 0.45 KiB, and 1,098,210 minor faults for 1M against tokio's 113,389, with "
            "3.7 s of system time (one run of `/usr/bin/time`). Populating stack pages in batches "
            "(`MADV_POPULATE_WRITE`) was measured slower and dropped (PROFILE.md). A fault per parked "
            "greenlet is the floor while each one has its own touched stack, so 2x is out of reach "
            "without sharing stacks between parked greenlets (copying them out), which changes what a "
            "parked greenlet is; not done.",
    "http": "The p99 is the steady miss with 2 threads (on one thread each greenhub and tokio are level). "
            "wrk shares the 2 CPUs with the server, so the kernel preempts hub threads for it. Each hub "
            "has its own poller; a connection's fd is in the poller of the hub whose greenlet waits on it "
            "(of every such hub since issue 17, `io/registration.rs`), which for a server is one hub: "
            "while that hub's thread is off the CPU, its connections' events sit in its epoll until it "
            "runs again, while tokio's workers share one IO driver that any idle worker polls. The "
            "migration opt-in does not help (greenhub-migrate's p99 is no better): it moves woken "
            "greenlets, but the wake-up itself waits for the owning hub's poll. Fixing it needs idle hubs "
            "to poll a busy hub's events (a shared or stealable poller); not done. The HTTP figures are "
            "the noisiest here (see min–max).",
    "mixed": "In default M:N mode only greenlets that have never run can be stolen (`fresh`, a crossbeam "
             "deque); a started greenlet belongs to the hub that first ran it, and a greenlet woken by its "
             "timer goes back to that hub (docs/ARCHITECTURE.md, 'The soundness rule'). So the 8 tasks are split "
             "between the 2 hubs once, by whoever grabbed them first, and an uneven split (e.g. 5/3) stays "
             "for the whole run while one hub idles through its sleeps. Pinned mode hands each task spawned "
             "from outside to a free hub, which happens to split them evenly here. The fix is the `unsafe` "
             "migration opt-in (`Builder::migratable`, `src/hub/migrate.rs`): a woken greenlet goes to its "
             "hub's stealable deque and the idle hub takes it over; the row below measures it. The default "
             "stays as it is, because moving a started stack is only sound with the caller's promise. "
             "Placement that spreads them was tried: each hub taking only its fair share of the injector "
             "(length / hubs) instead of a batch of up to 32 gave M:N/single 1.61, 1.62 and 1.35 against "
             "1.58, 1.50 and 1.58 without it (3 alternating runs each, beside two compilers): no change "
             "that this noise can show, so it was not kept.",
}
