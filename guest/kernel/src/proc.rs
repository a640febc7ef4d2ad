//! The process table (xv6's proc.c): a fixed array of slots, each a guest
//! process whose address space is one host vmspace.
//!
//! Invariants:
//! - A slot is `Free` or holds a live pid; pids are never reused while a
//!   slot (even a zombie) holds them.
//! - A non-zombie process owns exactly one vmspace, `vmid`; a zombie owns
//!   none (its vmspace is destroyed the moment it dies, so a zombie costs
//!   only its slot).
//! - `tf` is the user state to resume; when `restart` is set the system
//!   call in `tf` (rax = its number, as the trap left it) is dispatched
//!   again instead of resuming (a blocked read or wait4 that was woken).

use crate::vm;
use vkernel_abi::{TrapFrame, VextFrame};

/// Slots in the process table.
pub const NPROC: usize = 64;

/// Linux signal numbers the kernel uses.
pub const SIGILL: i32 = 4;
pub const SIGTRAP: i32 = 5;
pub const SIGBUS: i32 = 7;
pub const SIGFPE: i32 = 8;
pub const SIGKILL: i32 = 9;
pub const SIGSEGV: i32 = 11;

/// Resource limits kept per process (RLIMIT_* up to RLIMIT_RTTIME).
pub const NRLIMIT: usize = 16;
/// `RLIM_INFINITY`.
pub const RLIM_INFINITY: u64 = u64::MAX;

/// What a process is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Slot unused.
    Free,
    /// Ready to run (or to restart its system call).
    Runnable,
    /// In nanosleep (or a timed wait) until the host clock reaches
    /// `until_ns`; `tf.rax` then becomes `wake_result`.
    Sleeping { until_ns: u64 },
    /// In read(0) with no console input yet.
    ReadWait,
    /// In wait4 with live children and no zombie to reap.
    ChildWait,
    /// Blocked with no way to be woken but a signal (a futex wait in a
    /// single-threaded process, as Linux would block it).
    Stuck,
    /// Dead, waiting for its parent's wait4; `wait_status` is set.
    Zombie,
}

/// One process.
#[derive(Clone, Copy)]
pub struct Proc {
    pub state: State,
    pub pid: u32,
    /// Parent pid (0 for init).
    pub parent: u32,
    /// The vmspace holding the address space; changes on every exec.
    pub vmid: u64,
    /// User registers and TLS bases to resume with.
    pub tf: TrapFrame,
    pub vf: VextFrame,
    /// Re-dispatch the system call in `tf` when next scheduled.
    pub restart: bool,
    /// What rax becomes when a sleep ends.
    pub wake_result: i64,
    /// Linux wait status once a zombie (`code << 8`, or the signal number).
    pub wait_status: i32,
    /// Program break: `brk_start` is the end of the loaded image.
    pub brk_start: u64,
    pub brk: u64,
    /// Lowest address the mmap area may reach (above the break's room).
    pub mmap_floor: u64,
    /// set_tid_address's pointer.
    pub clear_child_tid: u64,
    /// set_robust_list's head.
    pub robust_list: u64,
    /// Resource limits (soft, hard), stored and reported by prlimit64.
    pub rlimits: [[u64; 2]; NRLIMIT],
    /// Program name (basename of the exec path), as Linux's comm.
    pub name: [u8; 16],
    pub name_len: usize,
}

impl Proc {
    const EMPTY: Proc = Proc {
        state: State::Free,
        pid: 0,
        parent: 0,
        vmid: 0,
        tf: TrapFrame {
            rdi: 0,
            rsi: 0,
            rdx: 0,
            rcx: 0,
            r8: 0,
            r9: 0,
            rax: 0,
            rbx: 0,
            rbp: 0,
            r10: 0,
            r11: 0,
            r12: 0,
            r13: 0,
            r14: 0,
            r15: 0,
            xflags: 0,
            trapno: 0,
            addr: 0,
            flags: 0,
            err: 0,
            rip: 0,
            cs: 0,
            rflags: 0,
            rsp: 0,
            ss: 0,
        },
        vf: VextFrame {
            tls: [vkernel_abi::frame::TlsInfo { base: 0, size: 0 }; 2],
        },
        restart: false,
        wake_result: 0,
        wait_status: 0,
        brk_start: 0,
        brk: 0,
        mmap_floor: 0,
        clear_child_tid: 0,
        robust_list: 0,
        rlimits: [[RLIM_INFINITY; 2]; NRLIMIT],
        name: [0; 16],
        name_len: 0,
    };

    /// The program name, for reports.
    pub fn name(&self) -> &str {
        core::str::from_utf8(&self.name[..self.name_len]).unwrap_or("?")
    }

    /// Sets the name from an exec path (its last component).
    pub fn set_name(&mut self, path: &[u8]) {
        let base = path.rsplit(|&b| b == b'/').next().unwrap_or(path);
        let n = base.len().min(self.name.len());
        self.name[..n].copy_from_slice(&base[..n]);
        self.name_len = n;
    }

    /// Whether the process is alive (has a vmspace).
    pub fn alive(&self) -> bool {
        !matches!(self.state, State::Free | State::Zombie)
    }
}

/// The vmspace id for a pid at an exec generation: ids are unique while
/// both the old and the new image of an exec exist.
pub fn vmid_for(pid: u32, generation: u64) -> u64 {
    (generation << 32) | pid as u64
}

/// The exec generation of a vmspace id.
pub fn generation_of(vmid: u64) -> u64 {
    vmid >> 32
}

/// The table, plus what the whole kernel shares.
pub struct ProcTable {
    pub procs: [Proc; NPROC],
    next_pid: u32,
    /// The cpio image programs are loaded from.
    pub image: &'static [u8],
    /// Time slice in microseconds (the RUN timeout).
    pub slice_us: u64,
    /// `boottrace`: print when /init first runs (host clock), for the
    /// boot-stage benchmark; cleared once printed.
    pub boot_trace: bool,
}

impl ProcTable {
    /// An empty table.
    pub const fn new() -> Self {
        ProcTable {
            procs: [Proc::EMPTY; NPROC],
            next_pid: 1,
            image: &[],
            slice_us: 10_000,
            boot_trace: false,
        }
    }

    /// The slot of live-or-zombie `pid`.
    pub fn find(&self, pid: u32) -> Option<usize> {
        if pid == 0 {
            return None;
        }
        self.procs
            .iter()
            .position(|p| p.state != State::Free && p.pid == pid)
    }

    /// Takes a free slot and a fresh pid; the caller fills the rest and
    /// makes it runnable. `None` if the table is full.
    pub fn alloc(&mut self, parent: u32) -> Option<usize> {
        let slot = self.procs.iter().position(|p| p.state == State::Free)?;
        let pid = loop {
            let pid = self.next_pid;
            self.next_pid = if self.next_pid >= 32767 {
                2
            } else {
                self.next_pid + 1
            };
            if self.find(pid).is_none() {
                break pid;
            }
        };
        let p = &mut self.procs[slot];
        *p = Proc::EMPTY;
        p.pid = pid;
        p.parent = parent;
        p.vmid = vmid_for(pid, 0);
        p.rlimits = crate::sysmisc::default_rlimits();
        p.state = State::Runnable;
        Some(slot)
    }

    /// Frees a slot that never ran (a failed fork or exec of init).
    pub fn free(&mut self, slot: usize) {
        self.procs[slot] = Proc::EMPTY;
    }

    /// Ends process `slot` with Linux wait status `status`: its vmspace is
    /// destroyed, its children go to init, it becomes a zombie and its
    /// parent (if waiting) is woken. When init itself dies, the run ends.
    pub fn exit(&mut self, slot: usize, status: i32) {
        let (pid, parent, vmid) = {
            let p = &self.procs[slot];
            (p.pid, p.parent, p.vmid)
        };
        if pid == 1 {
            self.shutdown(status);
        }
        let _ = vm::destroy(vmid);
        let p = &mut self.procs[slot];
        p.state = State::Zombie;
        p.wait_status = status;
        p.restart = false;
        let mut orphan_zombie = false;
        for c in self.procs.iter_mut() {
            if c.state != State::Free && c.parent == pid {
                c.parent = 1;
                orphan_zombie |= c.state == State::Zombie;
            }
        }
        if orphan_zombie {
            self.wake_waiter(1);
        }
        self.wake_waiter(parent);
    }

    /// Makes `pid` re-run its wait4 if it is blocked in one.
    fn wake_waiter(&mut self, pid: u32) {
        if let Some(s) = self.find(pid) {
            let p = &mut self.procs[s];
            if p.state == State::ChildWait {
                p.state = State::Runnable;
                p.restart = true;
            }
        }
    }

    /// Init is gone: destroy every vmspace and end the run with init's
    /// status (its exit code, or 128 + the signal that killed it).
    pub fn shutdown(&mut self, init_status: i32) -> ! {
        for p in self.procs.iter() {
            if p.alive() {
                let _ = vm::destroy(p.vmid);
            }
        }
        let code = if init_status & 0x7f != 0 {
            128 + (init_status & 0x7f)
        } else {
            (init_status >> 8) & 0xff
        };
        crate::hypercall::exit(code)
    }
}
