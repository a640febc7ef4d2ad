//! What the rest of the kernel may know of a process without the process
//! table: one shared record per process ([`TaskInfo`], the part of Linux's
//! `task_struct` that `/proc` shows) and the registry of them by pid
//! ([`Tasks`]), as Linux's pid hash makes tasks reachable from procfs.
//!
//! The process table owns its processes; each [`super::Proc`] holds an
//! `Rc<TaskInfo>`, and this module's hooks, called by `proc/` where a
//! process is made, forks, execs, sleeps, wakes, dies or is reaped (and by
//! chdir and umask), keep the record current. procfs holds the registry
//! and reads the records when a file is opened or read. The records hold
//! the descriptor table and the address space only weakly, so a procfs
//! file a process keeps open never keeps a dead process's memory or files
//! alive (and an fd of `/proc/self/fd` in the table it names makes no
//! reference cycle).
//!
//! The kernel is single-threaded and no borrow of a record outlives one
//! call of a method here or in procfs, so `Cell`s and `RefCell`s are
//! enough; procfs uses `try_borrow` on the shared descriptor tables and
//! address spaces so that even a bug elsewhere would be an error, not a
//! panic.

use alloc::collections::BTreeMap;
use alloc::rc::{Rc, Weak};
use alloc::vec::Vec;
use core::cell::{Cell, RefCell};

use super::{Pid, State};
use crate::fs::file::FdTable;
use crate::mm::space::AddressSpace;

/// The shared, procfs-visible record of one process.
pub struct TaskInfo {
    /// The task's id, and its thread group's (the process's pid).
    pub pid: Pid,
    pub tgid: Cell<Pid>,
    pub ppid: Cell<Pid>,
    /// Process group and session.
    pub pgid: Cell<Pid>,
    pub sid: Cell<Pid>,
    pub state: Cell<State>,
    /// Host monotonic clock when the process was made (ns since boot).
    pub start_ns: u64,
    /// Linux's `comm`: the exec path's last component, at most 15 bytes.
    pub comm: RefCell<Vec<u8>>,
    /// argv as exec got it, each string ending in NUL (`/proc/PID/cmdline`).
    /// Shared with forked children until they exec (it may be megabytes).
    pub cmdline: RefCell<Rc<Vec<u8>>>,
    /// envp as exec got it, the same way (`/proc/PID/environ`).
    pub environ: RefCell<Rc<Vec<u8>>>,
    /// The absolute path of the program (`/proc/PID/exe`).
    pub exe: RefCell<Vec<u8>>,
    /// The working directory's path (`/proc/PID/cwd`).
    pub cwd: RefCell<Vec<u8>>,
    pub umask: Cell<u32>,
    /// The nice value, -20 to 19 (getpriority/setpriority; per task and
    /// inherited, as Linux's).
    pub nice: Cell<i32>,
    /// The NUMA memory policy (set_mempolicy): its mode with its mode
    /// flags, and its node mask (per task and inherited, as Linux's).
    pub mempolicy: Cell<(u32, u64)>,
    /// The scheduling policy (`SCHED_*`, with `SCHED_RESET_ON_FORK`) and
    /// static priority sched_setscheduler gave (per task, inherited).
    pub sched: Cell<(u32, u32)>,
    /// Its ids and capabilities (`status`'s Uid, Gid and Cap lines).
    pub creds: Cell<super::creds::Creds>,
    /// The wait status once a zombie.
    pub exit_status: Cell<i32>,
    /// Signals pending for the thread, pending for the process, blocked,
    /// ignored and caught (`status`'s SigPnd, ShdPnd, SigBlk, SigIgn,
    /// SigCgt), as of the last system call or delivery.
    pub signals: Cell<[u64; 5]>,
    /// CPU ns: user, system, children's user, children's system.
    pub cpu: Cell<[u64; 4]>,
    /// The descriptor table (gone once the process is).
    pub files: RefCell<Weak<RefCell<FdTable>>>,
    /// The address space (gone once the process is dead).
    pub space: RefCell<Weak<RefCell<AddressSpace>>>,
}

/// sched_setscheduler's flag: a child does not inherit a real-time
/// policy or a negative nice value.
pub const SCHED_RESET_ON_FORK: u32 = 0x4000_0000;

impl TaskInfo {
    /// A record for new process `pid`, child of `ppid`, made at `start_ns`.
    pub fn new(pid: Pid, ppid: Pid, start_ns: u64) -> TaskInfo {
        TaskInfo {
            pid,
            tgid: Cell::new(pid),
            ppid: Cell::new(ppid),
            pgid: Cell::new(pid),
            sid: Cell::new(pid),
            state: Cell::new(State::Runnable),
            start_ns,
            comm: RefCell::new(Vec::new()),
            cmdline: RefCell::new(Rc::new(Vec::new())),
            environ: RefCell::new(Rc::new(Vec::new())),
            exe: RefCell::new(Vec::new()),
            cwd: RefCell::new(alloc::vec![b'/']),
            umask: Cell::new(0o022),
            nice: Cell::new(0),
            mempolicy: Cell::new((0, 0)),
            sched: Cell::new((0, 0)),
            creds: Cell::new(super::creds::Creds::ROOT),
            exit_status: Cell::new(0),
            signals: Cell::new([0; 5]),
            cpu: Cell::new([0; 4]),
            files: RefCell::new(Weak::new()),
            space: RefCell::new(Weak::new()),
        }
    }

    /// Sets `comm` from an exec path (its last component, 15 bytes at most).
    pub fn set_comm(&self, path: &[u8]) {
        let base = path.rsplit(|&b| b == b'/').next().unwrap_or(path);
        let mut c = self.comm.borrow_mut();
        c.clear();
        c.extend_from_slice(&base[..base.len().min(15)]);
    }

    /// Copies what a forked child inherits from its parent's record.
    pub fn inherit(&self, parent: &TaskInfo) {
        self.comm.borrow_mut().clone_from(&parent.comm.borrow());
        self.cmdline
            .borrow_mut()
            .clone_from(&parent.cmdline.borrow());
        self.environ
            .borrow_mut()
            .clone_from(&parent.environ.borrow());
        self.exe.borrow_mut().clone_from(&parent.exe.borrow());
        self.cwd.borrow_mut().clone_from(&parent.cwd.borrow());
        self.umask.set(parent.umask.get());
        self.nice.set(parent.nice.get());
        self.mempolicy.set(parent.mempolicy.get());
        // SCHED_RESET_ON_FORK: the child gets SCHED_OTHER (from a
        // real-time policy) and a nice value of at least 0, without the
        // flag (Linux's sched_fork).
        let (policy, prio) = parent.sched.get();
        if policy & SCHED_RESET_ON_FORK != 0 {
            let base = policy & !SCHED_RESET_ON_FORK;
            let realtime = base == 1 || base == 2;
            self.sched.set(if realtime { (0, 0) } else { (base, prio) });
            self.nice.set(parent.nice.get().max(0));
        } else {
            self.sched.set((policy, prio));
        }
        self.pgid.set(parent.pgid.get());
        self.sid.set(parent.sid.get());
    }

    /// Points the record at the process's descriptor table and memory.
    pub fn attach(&self, files: &Rc<RefCell<FdTable>>, space: Option<&Rc<RefCell<AddressSpace>>>) {
        *self.files.borrow_mut() = Rc::downgrade(files);
        *self.space.borrow_mut() = space.map_or_else(Weak::new, Rc::downgrade);
    }
}

/// The registry of records by pid, and who is running.
#[derive(Default)]
pub struct Tasks {
    map: RefCell<BTreeMap<Pid, Rc<TaskInfo>>>,
    /// The process whose system call the kernel is running (Linux's
    /// `current`): what `/proc/self` names. The system-call dispatcher
    /// sets it before each call; see `proc::procfs`.
    pub current: Cell<Pid>,
    /// The last pid handed out (`/proc/loadavg`).
    pub last_pid: Cell<Pid>,
}

/// The registry as the process table and procfs share it.
pub type TasksRef = Rc<Tasks>;

impl Tasks {
    /// Adds a record.
    pub fn insert(&self, t: Rc<TaskInfo>) {
        self.last_pid.set(t.pid);
        self.map.borrow_mut().insert(t.pid, t);
    }

    /// Removes `pid`'s record (the process was reaped).
    pub fn remove(&self, pid: Pid) {
        self.map.borrow_mut().remove(&pid);
    }

    /// The record of `pid`, if the process exists (a zombie does).
    pub fn get(&self, pid: Pid) -> Option<Rc<TaskInfo>> {
        self.map.borrow().get(&pid).cloned()
    }

    /// The processes' pids (group leaders), in order.
    pub fn pids(&self) -> Vec<Pid> {
        self.map
            .borrow()
            .values()
            .filter(|t| t.tgid.get() == t.pid)
            .map(|t| t.pid)
            .collect()
    }

    /// The tids of group `tgid`'s tasks, in order.
    pub fn threads(&self, tgid: Pid) -> Vec<Pid> {
        self.map
            .borrow()
            .values()
            .filter(|t| t.tgid.get() == tgid)
            .map(|t| t.pid)
            .collect()
    }

    /// Processes in all, and how many are runnable.
    pub fn counts(&self) -> (usize, usize) {
        let map = self.map.borrow();
        let running = map
            .values()
            .filter(|t| t.state.get() == State::Runnable)
            .count();
        (map.len(), running)
    }
}
