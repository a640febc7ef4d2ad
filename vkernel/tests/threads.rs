//! Threads (#15): pthreads (create/join, 64 at once, mutexes, condition
//! variables, barriers, cancel), TLS and SIMD registers per thread, signals
//! per thread (masks, tgkill, a process signal taken by a thread that does
//! not block it), futex operations and timeouts, shared futexes between
//! processes, robust mutexes, CLONE_CHILD_CLEARTID, thread-group exit
//! rules, execve from a thread, vfork and posix_spawn, /proc/self/task.
//! One C program checks each against Linux natively first, then in the
//! guest.

mod common;

use common::c_checks_pass_natively_and_in_the_guest;

#[test]
fn threads_behave_as_on_linux() {
    let r = c_checks_pass_natively_and_in_the_guest("threads");
    // The thread that faulted was reported, and took its group with it.
    r.stderr_has("SIGSEGV at 0x8,");
}

/// VM exits of `systest threadbench N` under `pmap` (4 figures × 7 runs of
/// N cycles each), without time-slice ends (a trap and a resuming RUN).
fn threadbench_exits(pmap: &str, n: u32) -> i64 {
    let init = format!("init=/bin/systest -- threadbench {n}");
    let r = common::vkernel(&["run", "--stats", "--pmap", pmap, "--append", &init]);
    r.expect_code(0).stdout_has("bench futex_pingpong");
    common::stats_exits(&r.stderr) - 2 * common::stats_count(&r.stderr, " slice ends")
}

/// A thread create+join, a futex wake -> wait round trip and a switch
/// between threads or processes are each 4 exits (two system-call round
/// trips): the new thread runs before its creator, so the join finds its
/// tid cleared; a futex wake hands the CPU to the side it wakes, so
/// neither side's wait has to block. (Letting the caller run on after
/// those calls made the creator's join and each side's wait a futex
/// system call of their own: 4.9 exits a cycle.)
#[test]
fn thread_cycles_cost_four_exits() {
    for pmap in ["host", "guest"] {
        let per_cycle =
            (threadbench_exits(pmap, 150) - threadbench_exits(pmap, 50)) as f64 / 2800.0;
        assert!(
            per_cycle <= 4.25,
            "pmap={pmap}: {per_cycle:.2} exits a cycle"
        );
    }
}

#[test]
fn a_process_whose_calls_never_block_gives_way_at_its_slices_end() {
    // (Here, not in processes.rs: it compiles C, which CI's QEMU runs of
    // processes.rs cannot.) The scheduler lets a process run on after a call that did not
    // block (sched.rs, RunOn): 20000 getppid calls, many slices' worth,
    // must still let a runnable child run (it counts its own calls in
    // shared memory), 100 sched_yield calls, a fraction of a slice, must
    // each let it run, and a sleeping child must wake when its sleep
    // ends, not when the caller's slice does.
    let dir = tempfile::tempdir().unwrap();
    let exe = common::c_program(dir.path(), "runon");
    for mode in ["hog", "yield", "sleep"] {
        common::vkernel(&["run", "--", exe.to_str().unwrap(), mode])
            .expect_code(0)
            .stdout_has("runon ok");
    }
}
