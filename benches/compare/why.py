"""Why greenhub misses a target of issue 7: the explanations report.py puts
after a missed target's figures. Owns only this text; keep it true to the
code (src/hub/mod.rs, src/greenlet/, src/stack/) and to the profile."""

WHY = {
    "switch": "A greenhub switch is a corosensei context switch plus a trip through the hub's run loop "
              "(pop `ready`, resume, push back): 196 instructions per switch (callgrind, PROFILE.md); may's "
              "is a generator switch plus its own queue. On this shared VM the switch medians move by 50% "
              "between rounds (see min–max), enough to flip this verdict.",
    "spawn": "The profile (PROFILE.md) shows greenhub already executes fewer instructions per spawn+join "
             "than tokio (about 1,480 against 1,990, callgrind) yet takes about as long: with all 1M handles "
             "held the run is bound by memory, not instructions. Every greenlet has a 264-byte task block "
             "from glibc malloc (on a hub thread that is a per-thread arena that grows 4 KiB at a time with "
             "`mprotect`), touched at spawn, at its first run and at join, plus a stack (reused from the "
             "hub's cache here). Reaching 0.6x needs a smaller block from a greenhub allocator (per-hub "
             "free lists in large mappings), not done.",
    "pingpong": "A round trip is two channel hand-offs, each a park (waiter registered under the channel's "
                "lock, then a context switch to the hub loop and on to the peer) and a wake-up; tokio's "
                "current-thread mpsc does the same hand-off by polling the peer's future with no stack "
                "switch. Halving it needs a direct switch from the sender to the woken receiver, which "
                "corosensei's resume/suspend model does not offer.",
    "skynet": "Skynet is 1,111,111 spawns and joins, and FIFO order keeps all 111,111 inner greenlets "
              "suspended at once, each on its own stack: a page fault for its first stack page (213,854 "
              "minor faults against tokio's 91,555, and 1.0-1.3 s of system time out of 1.3-1.8 s, "
              "`/usr/bin/time`), plus the spawn costs above. tokio's inner tasks are small heap futures. "
              "This run installs a slab's stack guards with one `process_madvise` instead of one `madvise` "
              "per stack (5% off skynet, 11% off spawning 1M parked greenlets); the faults remain.",
    "http": "Not profiled yet. The p99 is the steady miss (req/s went either way between runs). wrk shares "
            "the 2 CPUs with the server, so the kernel preempts hub threads for it. Each hub has its own "
            "poller, and a connection's fd stays registered with the hub that first waited on it: while that "
            "hub's thread is off the CPU, its connections' events sit in its epoll until it runs again, while "
            "tokio's workers share one IO driver that any idle worker polls. The migration opt-in does not "
            "help here (greenhub-migrate's p99 is no better): it moves woken greenlets, but the wake-up itself "
            "waits for the owning hub's poll. Fixing it needs idle hubs to poll a busy hub's events (a "
            "shared or stealable poller), which changes the lifetime rule of `hub/readiness.rs`; not done. "
            "The HTTP figures are also the noisiest here (see min–max), so the ratio is less certain than "
            "the others.",
    "mixed": "In default M:N mode only greenlets that have never run can be stolen (`fresh`, a crossbeam "
             "deque); a started greenlet belongs to the hub that first ran it, and a greenlet woken by its "
             "timer goes back to that hub (docs/ARCHITECTURE.md, 'The soundness rule'). So the 8 tasks are split "
             "between the 2 hubs once, by whoever grabbed them first, and an uneven split (e.g. 5/3) stays "
             "for the whole run while one hub idles through its sleeps. Pinned mode hands each task spawned "
             "from outside to a free hub, which happens to split them evenly here. The fix is the `unsafe` "
             "migration opt-in (`Builder::migratable`, `src/hub/migrate.rs`): a woken greenlet goes to its "
             "hub's stealable deque and the idle hub takes it over; the row below measures it. The default "
             "stays as it is, because moving a started stack is only sound with the caller's promise.",
}
