//! Processes (xv6's proc.c): the process table, the scheduler, exec, and
//! how a process blocks and wakes.
//!
//! Invariants:
//! - A slot is `Free` or holds a live pid; pids are never reused while a
//!   slot (even a zombie) holds them.
//! - A live process holds its address space (`space`); a zombie holds none
//!   (its memory goes the moment it dies, so a zombie costs only its slot).
//! - `tf` is the user state to resume; when `restart` is set the system
//!   call in `tf` (rax = its number, as the trap left it) is dispatched
//!   again instead of resuming (a blocked read or wait4 that was woken).

pub mod creds;
pub mod exec;
pub mod fpu;
pub mod futex;
pub mod jobctl;
pub mod pidfd;
pub mod posted;
pub mod procfs;
pub mod sched;
pub mod sigframe;
pub mod signal;
pub mod task;
pub mod thread;
pub mod timer;
pub mod wait;

use alloc::rc::Rc;
use alloc::vec::Vec;
use core::cell::RefCell;

use crate::fs::file::{FdTable, FdTableRef, OpenFile};
use crate::fs::lock::{self, Locks};
use crate::fs::vfs::InodeRef;
use crate::mm::SpaceRef;
use crate::param::{
    MAX_THREADS, MIN_THREADS, NRLIMIT, PAGES_PER_THREAD, PID_MAX, RESERVED_PIDS, RLIM_INFINITY,
    TASK_HEAP_HEADROOM,
};
use guestlib::hypercall;
use task::{TaskInfo, Tasks, TasksRef};
use vkernel_abi::{TrapFrame, VextFrame};
pub use wait::Chan;

/// A process id.
pub type Pid = u32;

/// What a process is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Slot unused.
    Free,
    /// Ready to run (or to restart its system call).
    Runnable,
    /// Asleep on `chan` until a `wakeup` of it, or until the host clock
    /// reaches `until_ns` (0: no deadline); see [`wait`].
    Blocked { chan: Chan, until_ns: u64 },
    /// Stopped by a signal until SIGCONT (or SIGKILL); a system call it
    /// was in restarts when it continues.
    Stopped,
    /// Dead, waiting for its parent's wait4; `wait_status` is set.
    Zombie,
}

/// CPU time spent, in ns: in user mode (its time slices) and in the
/// kernel on its behalf (its system calls).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CpuTimes {
    pub user_ns: u64,
    pub system_ns: u64,
}

impl CpuTimes {
    pub fn add(&mut self, other: CpuTimes) {
        self.user_ns = self.user_ns.saturating_add(other.user_ns);
        self.system_ns = self.system_ns.saturating_add(other.system_ns);
    }
}

/// One task: a thread, the unit the scheduler runs (Linux's
/// `task_struct`). A process is a thread group: the tasks sharing its
/// `tgid` (see [`thread`] for what they share and how groups end).
pub struct Proc {
    /// Changed through [`Proc::set_state`], so that `/proc` sees it.
    pub state: State,
    /// The task's id (Linux's tid; the pid for a group leader).
    pub pid: Pid,
    /// The thread group's id: the leader's pid, what getpid returns.
    pub tgid: Pid,
    /// The parent process's tgid (0 for init); the same for every task of
    /// a group.
    pub parent: Pid,
    /// Process group and session.
    pub pgid: Pid,
    pub sid: Pid,
    /// The signal the parent gets when it exits (clone's CSIGNAL; fork:
    /// SIGCHLD).
    pub exit_signal: i32,
    /// It has called execve since fork (setpgid on it is then EACCES).
    pub did_exec: bool,
    /// Signal mask, pending signals and the alternate stack.
    pub sig: signal::SigState,
    /// Signal dispositions (shared with CLONE_SIGHAND).
    pub actions: signal::ActionsRef,
    /// A stop or continue its parent's wait4 has yet to see.
    pub stop_report: signal::StopReport,
    /// setitimer(ITIMER_REAL) and alarm.
    pub real_timer: signal::RealTimer,
    /// The process's other timers (the leader's slot holds them).
    pub timers: timer::ProcessTimers,
    /// Its CPU time, and that of its reaped children (and theirs), as
    /// getrusage and times report them.
    pub cpu: CpuTimes,
    pub children_cpu: CpuTimes,
    /// The leader only: the CPU time of the group's threads that ended
    /// (a process's time counts them, as Linux's signal_struct does).
    pub exited_threads_cpu: CpuTimes,
    /// prctl state: the signal it gets when its parent dies (0: none),
    /// PR_SET_DUMPABLE and PR_SET_NO_NEW_PRIVS.
    pub pdeath_signal: i32,
    pub dumpable: bool,
    pub no_new_privs: bool,
    /// The address space; `None` once dead.
    pub space: Option<SpaceRef>,
    /// Open descriptors.
    pub files: FdTableRef,
    /// The working directory (`None` until init starts: the root), and
    /// its path as chdir made it (what getcwd reports).
    pub cwd: Option<InodeRef>,
    pub cwd_path: Vec<u8>,
    /// File mode creation mask.
    pub umask: u32,
    /// Supplementary group ids, sorted (setgroups).
    pub groups: Vec<u32>,
    /// User and group ids and capabilities (per task and inherited, as
    /// Linux's; changed through [`Proc::set_creds`], so that `/proc` sees
    /// them).
    pub creds: creds::Creds,
    /// User registers and TLS bases to resume with.
    pub tf: TrapFrame,
    pub vf: VextFrame,
    /// The task's PKRU (protection-key rights), kept apart from its FPU
    /// image: the kernel runs with 0 (see `sched::enter`).
    pub pkru: u32,
    /// Re-dispatch the system call in `tf` when next scheduled.
    pub restart: bool,
    /// What rax becomes if the sleep's deadline passes first.
    pub timeout_result: i64,
    /// The deadline of the sleep the current call restarts from (0: none,
    /// or a fresh call): a woken poll that sleeps again keeps its first
    /// deadline. Set by every sleep, cleared when a call returns.
    pub deadline_ns: u64,
    /// The channels a sleep on [`Chan::Poll`] waits for (poll, select,
    /// epoll_wait: any one wakes it).
    pub poll_chans: Vec<Chan>,
    /// Bytes a blocking write moved before it slept (its restart adds
    /// them to its result).
    pub io_done: u64,
    /// A fifo open that waits for the other side: the end it opened (it
    /// counts, so the other side's open does not wait too) and the other
    /// side's open count it saw. Dropped if a signal interrupts the open.
    pub fifo_wait: Option<(Rc<OpenFile>, u64)>,
    /// Linux wait status once a zombie (`code << 8`, or the signal number).
    pub wait_status: i32,
    /// set_tid_address's pointer.
    pub clear_child_tid: u64,
    /// set_robust_list's head.
    pub robust_list: u64,
    /// The bitset of the FUTEX_WAIT this task sleeps in, and when it
    /// began (wakes go oldest first).
    pub futex_bitset: u32,
    pub futex_seq: u64,
    /// A vfork child: its parent sleeps until this task execs or exits.
    pub vfork_parent: bool,
    /// Shared by the tasks that share cwd and umask (CLONE_FS): a change
    /// of them is copied to every task holding the same token.
    pub fs_share: Rc<()>,
    /// The group leader only: the status exit_group or a fatal signal
    /// gave the whole group (it overrides the last thread's own).
    pub group_exit: Option<i32>,
    /// Resource limits (soft, hard), stored and reported by prlimit64.
    pub rlimits: [[u64; 2]; NRLIMIT],
    /// Program name (basename of the exec path), as Linux's comm.
    pub name: [u8; 16],
    pub name_len: usize,
    /// What `/proc` shows of it (see [`task`]); `None` for a free slot.
    pub task: Option<Rc<TaskInfo>>,
    /// Its FPU/SSE/AVX registers while another process has the vCPU's
    /// (see [`fpu`]); `None` until its first exec.
    pub fpu: Option<fpu::FpuArea>,
    /// What it did after its recent calls that woke another process (see
    /// [`sched::RunOn`]): 0 (it blocked in its next call) up to 3 (it went
    /// on without blocking), counted up and down.
    pub after_wake: u8,
    /// Its last call woke another process: the next shows what it does
    /// after such a call.
    pub woke: bool,
}

impl Proc {
    fn empty() -> Proc {
        Proc {
            state: State::Free,
            pid: 0,
            tgid: 0,
            parent: 0,
            pgid: 0,
            sid: 0,
            exit_signal: signal::SIGCHLD,
            did_exec: false,
            sig: signal::SigState::new(),
            actions: signal::Actions::new_ref(),
            stop_report: signal::StopReport::None,
            real_timer: signal::RealTimer::default(),
            timers: timer::ProcessTimers::default(),
            cpu: CpuTimes::default(),
            children_cpu: CpuTimes::default(),
            exited_threads_cpu: CpuTimes::default(),
            pdeath_signal: 0,
            dumpable: true,
            no_new_privs: false,
            space: None,
            files: Rc::new(RefCell::new(FdTable::default())),
            cwd: None,
            cwd_path: alloc::vec![b'/'],
            umask: 0o022,
            groups: Vec::new(),
            creds: creds::Creds::ROOT,
            tf: TrapFrame::default(),
            vf: VextFrame::default(),
            pkru: 0,
            restart: false,
            timeout_result: 0,
            deadline_ns: 0,
            poll_chans: Vec::new(),
            io_done: 0,
            fifo_wait: None,
            wait_status: 0,
            clear_child_tid: 0,
            robust_list: 0,
            futex_bitset: 0,
            futex_seq: 0,
            vfork_parent: false,
            fs_share: Rc::new(()),
            group_exit: None,
            rlimits: [[RLIM_INFINITY; 2]; NRLIMIT],
            name: [0; 16],
            name_len: 0,
            task: None,
            fpu: None,
            after_wake: 0,
            woke: false,
        }
    }

    /// Changes the state, in the table and in the process's record.
    pub fn set_state(&mut self, state: State) {
        if state == State::Runnable && matches!(self.state, State::Blocked { .. } | State::Stopped)
        {
            sched::count_wakeup();
        }
        self.state = state;
        if let Some(t) = &self.task {
            t.state.set(state);
        }
    }

    /// The program name, for reports.
    pub fn name(&self) -> &str {
        core::str::from_utf8(&self.name[..self.name_len]).unwrap_or("?")
    }

    /// Changes its credentials (and what `/proc` shows of them).
    pub fn set_creds(&mut self, c: creds::Creds) {
        self.creds = c;
        if let Some(t) = &self.task {
            t.creds.set(c);
        }
    }

    /// Sets the name from an exec path (its last component).
    pub fn set_name(&mut self, path: &[u8]) {
        let base = path.rsplit(|&b| b == b'/').next().unwrap_or(path);
        let n = base.len().min(self.name.len());
        self.name[..n].copy_from_slice(&base[..n]);
        self.name_len = n;
    }

    /// Whether the process is alive (has an address space).
    pub fn alive(&self) -> bool {
        !matches!(self.state, State::Free | State::Zombie)
    }

    /// The address space of a live process.
    ///
    /// # Panics
    /// On a dead process: the kernel only asks this of the process it is
    /// running or one it found alive.
    pub fn space(&self) -> SpaceRef {
        match &self.space {
            Some(s) => s.clone(),
            None => panic!("pid {} has no address space", self.pid),
        }
    }

    /// The host vmspace holding the address space (0 if dead).
    pub fn vmid(&self) -> u64 {
        self.space.as_ref().map_or(0, |s| s.borrow().vmid())
    }
}

/// The process table.
pub struct ProcTable {
    pub procs: Vec<Proc>,
    next_pid: Pid,
    /// The records procfs reads, by pid.
    pub tasks: TasksRef,
    /// What the CPU's FPU saves, and whose registers it holds now.
    pub fpu: fpu::Fpu,
    pub fpu_owner: Option<Pid>,
    /// Counts futex sleeps, to wake the oldest first.
    pub futex_seq: u64,
    /// File locks: their owners are processes and open files, and a
    /// change wakes sleepers, so they are kept beside the processes.
    pub locks: Locks,
    /// Rounds since the terminal was last looked at (see [`jobctl`]).
    pub tty_rounds: u32,
    /// A time slice ran out since: look at the terminal this round.
    pub tty_due: bool,
    /// Processes with a CPU-time timer armed (see [`timer`]).
    pub cpu_timer_owners: usize,
    /// Every timerfd, to wake its readers at its deadline (see [`timer`]).
    pub timerfds: Vec<alloc::rc::Weak<crate::fs::timerfd::TimerFd>>,
    /// Tasks in the table (zombies included), and the most there may be
    /// (Linux's `nr_threads` and `max_threads`, `threads-max`).
    pub nr_tasks: usize,
    pub threads_max: u64,
    /// The process on the vCPU called `sched_yield`, made a thread or
    /// woke a futex: its run ends with this call (see [`sched::RunOn`]).
    pub yielded: bool,
}

/// Linux's `max_threads` for `total_pages` of memory (`set_max_threads`):
/// the tasks' kernel stacks may take an eighth of it, within
/// [`MIN_THREADS`, `MAX_THREADS`].
pub fn threads_max_for(total_pages: u64) -> u64 {
    (total_pages / PAGES_PER_THREAD).clamp(MIN_THREADS, MAX_THREADS)
}

impl ProcTable {
    /// An empty table.
    pub fn new() -> Self {
        ProcTable {
            procs: Vec::new(),
            next_pid: 1,
            tasks: Rc::new(Tasks::default()),
            fpu: fpu::Fpu::probe(),
            fpu_owner: None,
            futex_seq: 0,
            locks: Locks::default(),
            tty_rounds: 0,
            tty_due: false,
            cpu_timer_owners: 0,
            timerfds: Vec::new(),
            nr_tasks: 0,
            threads_max: MIN_THREADS,
            yielded: false,
        }
    }

    /// Sizes the table for `total_pages` of memory (at boot, before init):
    /// `threads-max`, and the default `RLIMIT_NPROC` half of it, as Linux's
    /// `fork_init`.
    pub fn set_memory(&mut self, total_pages: u64) {
        self.threads_max = threads_max_for(total_pages);
    }

    /// The slot of live-or-zombie `pid`.
    pub fn find(&self, pid: Pid) -> Option<usize> {
        if pid == 0 {
            return None;
        }
        self.procs
            .iter()
            .position(|p| p.state != State::Free && p.pid == pid)
    }

    /// Takes a free slot (growing the table as needed) and a fresh pid;
    /// the caller gives it an address space and makes it runnable. `None`
    /// (`EAGAIN` for fork and clone) at `threads-max` tasks, when the
    /// kernel heap could not hold another task, or when every pid is taken.
    /// Nothing else bounds the table: as Linux's, it grows to thousands.
    pub fn alloc(&mut self, parent: Pid) -> Option<usize> {
        if self.nr_tasks as u64 >= self.threads_max {
            return None;
        }
        let (heap_used, heap_size) = crate::mm::heap::usage();
        if heap_size.saturating_sub(heap_used) < TASK_HEAP_HEADROOM.max(heap_size / 8) {
            return None;
        }
        // Every pid below PID_MAX taken (and a table that large) would make
        // the search below endless.
        if self.nr_tasks as u64 >= u64::from(PID_MAX - RESERVED_PIDS) {
            return None;
        }
        let slot = match self.procs.iter().position(|p| p.state == State::Free) {
            Some(s) => s,
            None => {
                self.procs.try_reserve(1).ok()?;
                self.procs.push(Proc::empty());
                self.procs.len() - 1
            }
        };
        // Linux's alloc_pid: the next pid up, wrapping to RESERVED_PIDS.
        let pid = loop {
            let pid = self.next_pid;
            self.next_pid = if self.next_pid >= PID_MAX - 1 {
                RESERVED_PIDS
            } else {
                self.next_pid + 1
            };
            if self.find(pid).is_none() {
                break pid;
            }
        };
        self.nr_tasks += 1;
        let p = &mut self.procs[slot];
        *p = Proc::empty();
        p.pid = pid;
        p.tgid = pid;
        p.parent = parent;
        // Its own group and session until fork gives it its parent's.
        p.pgid = pid;
        p.sid = pid;
        p.rlimits = default_rlimits(self.threads_max);
        p.state = State::Runnable;
        let t = Rc::new(TaskInfo::new(pid, parent, hypercall::clock_ns()));
        t.attach(&p.files, None);
        self.tasks.insert(t.clone());
        p.task = Some(t);
        Some(slot)
    }

    /// Reaps zombie `slot` for its parent: the parent's children's CPU
    /// time gains the child's (and its children's), then the slot is
    /// freed.
    pub fn reap(&mut self, slot: usize) {
        let p = &self.procs[slot];
        let mut spent = p.cpu;
        spent.add(p.exited_threads_cpu);
        spent.add(p.children_cpu);
        if let Some(ps) = self.find(p.parent) {
            self.procs[ps].children_cpu.add(spent);
            self.publish_cpu(ps);
        }
        self.free(slot);
        self.wakeup(Chan::ProcessExit);
    }

    /// Charges `ns` of CPU time to process `s` (user or system), if it is
    /// still the process `pid` (a call may have ended it).
    pub fn charge(&mut self, s: usize, pid: Pid, ns: u64, user: bool) {
        let p = &mut self.procs[s];
        if p.pid != pid || p.state == State::Free {
            return;
        }
        if user {
            p.cpu.user_ns = p.cpu.user_ns.saturating_add(ns);
        } else {
            p.cpu.system_ns = p.cpu.system_ns.saturating_add(ns);
        }
        self.publish_cpu(s);
        if self.cpu_timer_owners > 0 {
            self.fire_cpu_timers();
        }
    }

    /// Refreshes what `/proc/PID/stat` shows of `s`'s CPU times.
    fn publish_cpu(&self, s: usize) {
        let p = &self.procs[s];
        if let Some(t) = &p.task {
            t.cpu.set([
                p.cpu.user_ns,
                p.cpu.system_ns,
                p.children_cpu.user_ns,
                p.children_cpu.system_ns,
            ]);
        }
    }

    /// Frees a slot: a reaped zombie, or one that never ran (a failed fork
    /// or exec of init).
    pub fn free(&mut self, slot: usize) {
        if let Some(t) = self.procs[slot].task.take() {
            // A pidfd of it sees it reaped.
            t.state.set(State::Free);
            self.tasks.remove(t.pid);
        }
        if self.procs[slot].state != State::Free {
            self.nr_tasks -= 1;
        }
        self.procs[slot] = Proc::empty();
    }

    /// Ends process `slot` (a group leader whose other threads are gone)
    /// with Linux wait status `status`: its address space goes, its
    /// children go to init, it becomes a zombie and its parent is woken.
    /// When init itself dies, the run ends. See [`ProcTable::exit`] for
    /// one thread's end.
    fn exit_process(&mut self, slot: usize, status: i32) {
        let pid = self.procs[slot].pid;
        if pid == 1 {
            self.shutdown(status);
        }
        if self.fpu_owner == Some(pid) {
            self.fpu_owner = None;
        }
        let (sid, leader) = (self.procs[slot].sid, self.procs[slot].sid == pid);
        if leader {
            self.tty_leader_exit(sid, true);
        }
        let p = &mut self.procs[slot];
        p.space = None;
        p.fpu = None;
        p.real_timer = signal::RealTimer::default();
        p.fifo_wait = None;
        let cpu_timers = p.timers.on_cpu();
        p.timers = timer::ProcessTimers::default();
        // Closing its descriptors may end a pipe: wake both sides. A table
        // another process still shares (CLONE_FILES) stays open for it.
        let files = if Rc::strong_count(&p.files) == 1 {
            core::mem::take(&mut *p.files.borrow_mut())
        } else {
            p.files = Rc::new(RefCell::new(FdTable::default()));
            FdTable::default()
        };
        p.cwd = None;
        p.set_state(State::Zombie);
        p.wait_status = status;
        if let Some(t) = &p.task {
            t.exit_status.set(status);
            t.attach(&p.files, None);
        }
        p.restart = false;
        let mut orphan_zombie = false;
        let mut pdeath = Vec::new();
        for (i, c) in self.procs.iter_mut().enumerate() {
            if c.state != State::Free && c.parent == pid {
                if c.pdeath_signal != 0 && c.alive() {
                    pdeath.push((i, c.pdeath_signal));
                }
                c.parent = 1;
                if let Some(t) = &c.task {
                    t.ppid.set(1);
                }
                orphan_zombie |= c.state == State::Zombie;
            }
        }
        if orphan_zombie {
            self.wakeup(Chan::Child(1));
        }
        if cpu_timers {
            self.recount_cpu_timers();
        }
        // PR_SET_PDEATHSIG: the orphans that asked hear of it.
        for (c, sig) in pdeath {
            let _ = self.send(c, signal::SigInfo::new(sig, signal::SI_USER));
        }
        // Its record locks go with it, its descriptions' locks when their
        // last descriptor closes.
        self.locks.release_process(pid);
        let files = files.open_fds().map(|(_, fd)| fd.file.clone()).collect();
        self.close_files(pid, files);
        self.notify_parent_exit(slot);
        self.wakeup(Chan::ProcessExit);
    }

    /// Tells the parent of just-dead `slot`: its exit signal (SIGCHLD
    /// with CLD_EXITED or CLD_KILLED) and a wakeup of its wait4; or, if
    /// the parent ignores SIGCHLD (or set SA_NOCLDWAIT), no zombie at all.
    fn notify_parent_exit(&mut self, slot: usize) {
        use linux_raw_sys::general::{CLD_EXITED, CLD_KILLED};
        let p = &self.procs[slot];
        let (pid, parent, status, exit_signal) = (p.pid, p.parent, p.wait_status, p.exit_signal);
        let Some(ps) = self.find(parent) else {
            return;
        };
        let info = if status & 0x7f != 0 {
            signal::SigInfo::child(CLD_KILLED, pid, status & 0x7f)
        } else {
            signal::SigInfo::child(CLD_EXITED, pid, (status >> 8) & 0xff)
        };
        let reaps_nothing = exit_signal == signal::SIGCHLD && self.parent_reaps_nothing(ps);
        if exit_signal != 0 {
            let mut info = info;
            info.0[0..4].copy_from_slice(&exit_signal.to_le_bytes());
            let _ = self.send_group(ps, info);
        }
        if reaps_nothing {
            self.reap(slot);
        }
        self.wakeup(Chan::Child(parent));
    }

    /// Process `pid` closed descriptors of `files` (the table no longer
    /// holds them): its record locks on each file go (POSIX: a close of
    /// any descriptor of a file), the locks of descriptions closed for
    /// the last time go, and whoever waits on the other end of a pipe or
    /// for a lock is woken.
    pub fn close_files(&mut self, pid: Pid, files: Vec<Rc<OpenFile>>) {
        let mut chans = Vec::new();
        let locked = !self.locks.is_empty();
        for f in &files {
            if locked {
                self.locks.release_process_on(lock::key(f), pid);
            }
            if let Some(d) = f.device() {
                chans.extend(d.wake_on_close().into_iter().flatten());
                d.more_to_wake_on_close(&mut chans);
            }
        }
        drop(files);
        if locked {
            self.locks.prune_dead();
        }
        for c in chans {
            self.wakeup(c);
        }
        self.wake_locks();
    }

    /// Wakes whoever sleeps for a lock on an inode whose locks changed.
    pub fn wake_locks(&mut self) {
        for (dev, ino) in self.locks.take_changed() {
            self.wakeup(Chan::FileLock(dev, ino));
        }
    }

    /// Whether process `pid` sleeps for a file lock (a deadlock check
    /// follows only such waits).
    pub fn waits_for_lock(&self, pid: Pid) -> bool {
        self.procs.iter().any(|p| {
            p.pid == pid
                && matches!(
                    p.state,
                    State::Blocked {
                        chan: Chan::FileLock(..),
                        ..
                    }
                )
        })
    }

    /// Init is gone: destroy every address space and end the run with
    /// init's status (its exit code, or 128 + the signal that killed it).
    pub fn shutdown(&mut self, init_status: i32) -> ! {
        for p in self.procs.iter_mut() {
            p.space = None;
        }
        let code = if init_status & 0x7f != 0 {
            128 + (init_status & 0x7f)
        } else {
            (init_status >> 8) & 0xff
        };
        hypercall::exit(code)
    }
}

/// Linux's default limits for a new process, with `threads-max` at
/// `threads_max` (`RLIMIT_NPROC` is half of it, as init's on Linux).
pub fn default_rlimits(threads_max: u64) -> [[u64; 2]; NRLIMIT] {
    use linux_raw_sys::general::{
        RLIMIT_CORE, RLIMIT_MEMLOCK, RLIMIT_NICE, RLIMIT_NOFILE, RLIMIT_NPROC, RLIMIT_RTPRIO,
        RLIMIT_STACK,
    };
    let mut r = [[RLIM_INFINITY; 2]; NRLIMIT];
    r[RLIMIT_STACK as usize] = [crate::param::STACK_BYTES, RLIM_INFINITY];
    r[RLIMIT_CORE as usize] = [0, RLIM_INFINITY];
    r[RLIMIT_NPROC as usize] = [threads_max / 2, threads_max / 2];
    r[RLIMIT_NOFILE as usize] = crate::param::NOFILE;
    r[RLIMIT_MEMLOCK as usize] = [8 << 20, 8 << 20];
    r[RLIMIT_NICE as usize] = [0, 0];
    r[RLIMIT_RTPRIO as usize] = [0, 0];
    r
}
