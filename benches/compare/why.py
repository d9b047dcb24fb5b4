"""Why greenhub misses a target of issue 21: the explanations report.py puts
after a missed target's figures. Owns only this text; keep it true to the
code (src/hub/mod.rs, src/greenlet/, src/stack/) and to the profile
(benches/compare/PROFILE.md); every figure here comes from a run named
there or below."""

WHY = {
    "switch": "A greenhub switch is a corosensei context switch plus a trip through the hub's run loop "
              "(pop `ready`, resume, push back): about 200 instructions per switch (callgrind, `switch --n "
              "200000`: 40.1 M, PROFILE.md); may's is a generator switch plus its own queue. The switch "
              "medians move by tens of percent between rounds here (see min–max), more than the distance "
              "to this target.",
    "spawn": "The kernel's side is what is left. What only a started greenlet needs is a run block apart "
             "from the header now (`Running`), so a greenlet waiting to start or to be joined holds a "
             "160-byte block, not 304, and a 40-byte handle, not 48: 1M spawn+joins fault in 52,948 pages "
             "instead of 90,075, and a 5-round A/B put greenhub-mn at 0.57× tokio-current (PROFILE.md, "
             "'The run state apart'). User time was 0.6× tokio's before; the remaining system time is "
             "those 52,948 first touches, one per 4 KiB of blocks, handles and queue slots. Task-block "
             "chunks on 2 MiB huge pages were tried and dropped: in this VM every run started 5 s after "
             "the last took 0.8–0.96 s (its balloon driver hands free 2 MiB blocks back to the host). The "
             "same spawn path made 0.56× in the 15:23 UTC run of this day, and callgrind counts 0.3% more "
             "instructions now (`spawn --n 50000`: 58.70 M → 58.90 M, the idle protocol's fix), so the "
             "rest of the move is the machine's (VARIATION.md).",
    "pingpong": "A round trip is two channel hand-offs, each a park (waiter registered under the channel's "
                "lock, then a context switch to the hub loop and on to the peer) and a wake-up; tokio's "
                "current-thread mpsc does the same hand-off by polling the peer's future with no stack "
                "switch. About 1,320 instructions per round trip (callgrind, `pingpong --n 100000`: 132.0 M), "
                "two switches of about 200 each and the rest spread thin: no function above 7% (the send, "
                "the receive, the wait list, `hub::schedule`, the state word, the waiter's reference "
                "count; PROFILE.md). Each hand-off also takes the channel's lock twice and makes four more "
                "atomic read-modify-writes (the waiter's reference count up and down, the state word's CAS "
                "on wake and on park), which cross-thread wake-ups need. They are not what the round trip "
                "waits on: handing the hub's own reference to the waiter (no count up or down per "
                "hand-off) took 18 instructions off a round trip, added 13 to a switch and left the time "
                "where it was in 6 interleaved runs (PROFILE.md, 'What the last misses resisted'); nor "
                "is the hub look-up, whose removal from the wait path saved 2 instructions per round trip. The "
                "woken peer already runs next, "
                "so a local fix has little left to take; switching straight from sender to receiver is not "
                "something corosensei's resume/suspend model offers.",
    "skynet": "Skynet is 1,111,111 spawns and joins. Each started greenlet holds a touched stack page, so "
              "what counts is how many are started at once: M:N now runs a hub's unstarted greenlets newest "
              "first, so the tree runs depth first (6,394 minor faults for 1M leaves, down from 216,291 in "
              "FIFO order, PROFILE.md). Single-threaded and pinned runtimes keep gevent's spawn order, and "
              "with it the breadth-first cost.",
    "idle": "Each parked greenlet owns a stack whose first page it has touched: 4.38 KiB resident each "
            "against tokio's 0.45 KiB, and 1,098,210 minor faults for 1M against tokio's 113,389, with "
            "3.7 s of system time (one run of `/usr/bin/time`). Populating stack pages in batches "
            "(`MADV_POPULATE_WRITE`) was measured slower and dropped (PROFILE.md). In this VM a first "
            "touch of a fresh page costs 1.4–1.8 µs by itself (a 20-line C program touching 200,000 "
            "pages, PROFILE.md), three to four times tokio-current's whole spawn-and-park. A fault per parked "
            "greenlet is the floor while each one has its own touched stack, so 2x is out of reach "
            "without sharing stacks between parked greenlets (copying them out), which changes what a "
            "parked greenlet is; not done.",
    "http": "The p99 is the steady miss with 2 threads in default mode (on one thread each greenhub and "
            "tokio are level). wrk shares the 2 CPUs with the server, so the kernel preempts server threads "
            "for it, and `SCHED=1 bash scripts/http_bench.sh` (schedstat around each wrk run, PROFILE.md) "
            "shows the hubs no worse off than tokio's workers: each hub 4.6 s on a CPU and 2.6 s runnable "
            "but waiting for one, each tokio worker 4.4 s and 3.8 s. What differs is what a wait costs. A "
            "started greenlet never leaves its hub, and its connection's fd is in that hub's poller, so "
            "while a hub waits for a CPU its connections wait with it; while a tokio worker waits, the "
            "other polls the shared IO driver and runs or steals every ready task. Default mode cannot "
            "move a started greenlet soundly (its stack may hold thread-tied state: docs/ARCHITECTURE.md, "
            "'The soundness rule'); under the `unsafe` migration opt-in an idle hub now does what tokio's "
            "idle worker does (next line). The wait is about one scheduler tick: this kernel runs at HZ=250 "
            "(4 ms) with `Dynamic Preempt: none`, and a hub behind wrk on a CPU waits for the tick. Asking "
            "for shorter slices for the hubs (`sched_setattr`, EEVDF's `sched_runtime` of 300 or 100 µs) "
            "left the p99 at 3.6–3.7 ms (PROFILE.md, 'What the last misses resisted'). The HTTP figures "
            "are the noisiest here (see min–max).",
    "http_migrate": "A migratable greenlet's sockets are in every hub's poller and the hub that wakes "
                    "it runs it (adopt on wake, src/hub/migrate.rs), so a hub that waits for a CPU no "
                    "longer holds up its connections. What is left is the hubs' sleeping and waking: in "
                    "5 s of wrk a hub blocks in `epoll_wait` and is woken about 32,000–67,000 times "
                    "(voluntary context switches, /proc/<pid>/task/<tid>/status, in three runs), a tokio "
                    "worker about 20,000–27,000 (PROFILE.md, 'Adopt on wake'). Spinning before sleeping (polling without "
                    "blocking for 20–100 µs, as Go's spinning threads do) made it worse, 76–90k req/s "
                    "against 96k and a p99 of 2–3 ms against 1.2: on 2 CPUs shared with wrk a spinning "
                    "hub takes the CPU that wrk needs (PROFILE.md, 'What the last misses resisted').",
    "mixed": "In default M:N mode only greenlets that have never run can be stolen; a started greenlet "
             "belongs to the hub that first ran it (docs/ARCHITECTURE.md, 'The soundness rule'), so where "
             "the 8 tasks start decides the balance for the whole run. The split is in each result line "
             "(`split=`).",
}

HOW = {
    "spawn": "What only a started greenlet needs (coroutine, stack bounds, per-stack state, wait record) "
             "is a run block apart from the header, made when a hub starts it and freed when it finishes "
             "(`Running`, src/greenlet/task.rs); so a greenlet waiting to start or to be joined holds a "
             "160-byte block instead of 304, and its handle is 40 bytes instead of 48. 1M spawn+joins "
             "fault in 52,948 pages instead of 90,075 (PROFILE.md, 'The run state apart'); user time was "
             "already about 0.6× tokio's",
    "skynet": "M:N runs a hub's unstarted greenlets newest first, so the tree runs depth first and a few "
              "dozen stacks cycle through the hub's cache (6,394 minor faults for 1M leaves, down from "
              "216,291 in FIFO order; PROFILE.md, 'Newest-first order'). greenhub-single keeps gevent's "
              "spawn order, and with it the breadth-first cost",
    "mixed": "Greenlets spawned from outside an M:N runtime go round robin to per-hub `incoming` queues "
             "that idle hubs may steal from (`Shared::inject`), so the 8 tasks start 4/4 (the `split=` "
             "of every greenhub-mn run in raw results); with one global injector the first hub to wake "
             "took a batch and they split 5/3 in most runs (1.55× in the last suite). A started greenlet "
             "still never moves",
}
