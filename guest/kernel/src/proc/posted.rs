//! Calls the kernel posts instead of making at once (`guestlib::batch`:
//! they reach the host with the next RUN, in the same exit), and what it
//! does when one of them fails. Each posted call carries a [`Tag`]: what
//! the failure means for whom.
//!
//! Posted: a dead address space's `vmspace_destroy` (nothing waits for
//! it), the status `wait4` stores and the tids `clone` and a thread's
//! exit store (`pmap=host`: each was a `vmspace_pwrite` exit), the
//! results `rt_sigaction`, `rt_sigprocmask` and the stat calls write, a
//! fork's vmspace calls, a page fault's mapping of file pages, and a
//! pipe's hand-over of a whole write to a sleeping reader. A status
//! write is posted only where it lands in anonymous memory the process
//! has mapped, and its failure (the host could not back the page) makes
//! that `wait4` return EFAULT all the same, before the process runs: the
//! kernel takes every failure before it enters any process.

use super::{ProcTable, State};
use guestlib::batch;
use guestlib::eprintln;
use vkernel_abi::Errno;

/// What a posted call's failure means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tag {
    /// Nothing: Linux ignores it too (the tid stores of clone and of a
    /// thread's exit).
    Ignore,
    /// The system call of process `pid` (in slot `slot`) that posted the
    /// write fails with EFAULT (it has not run since).
    SyscallFault {
        /// Its slot.
        slot: usize,
        /// Its pid (the slot may have been reused since).
        pid: u32,
    },
    /// A dead address space's `vmspace_destroy`: the host keeps it (it
    /// can never run again); said on the console, as a kernel bug.
    Destroy {
        /// The vmspace.
        vmid: u64,
    },
    /// A call that makes a fork's child's vmspace (`vmspace_clone`, or
    /// the guest pmap's create, mmap and SETMAP): the child has not run
    /// yet and is killed (SIGKILL, as Linux's OOM killer may kill a child
    /// fork made). `made`: whether the vmspace exists all the same (then
    /// its destroy follows with the child's end).
    ForkFailed {
        /// The child's vmspace.
        vmid: u64,
        /// Whether the vmspace exists after this call failed.
        made: bool,
    },
    /// The write-protection (`MADV_INVAL`) of a fork's parent: the
    /// kernel panics, as when the call is made at once.
    Inval {
        /// The parent's vmspace.
        vmid: u64,
    },
    /// A page fault's mapping of file pages (`pmap=host`): the host had no
    /// memory for the tables; every task of the vmspace ends with SIGKILL
    /// before it runs again, as Linux's OOM killer answers a fault that
    /// cannot get a page table.
    FaultMap {
        /// The vmspace.
        vmid: u64,
    },
    /// A pipe's hand-over (`vmspace_copy` of a whole write into the
    /// buffer of a reader asleep in `read`, `pmap=host`): the host could
    /// not back a page of either range. Neither call has returned to its
    /// process yet: both fail with EFAULT, as if neither had happened (no
    /// byte reached the pipe).
    HandOver {
        /// The writer's pid.
        writer: u32,
        /// The reader's pid.
        reader: u32,
    },
}

const KIND_SHIFT: u32 = 60;
/// Vmspace ids fit below the kind (the kernel's are small).
const VMID_MASK: u64 = (1 << (KIND_SHIFT - 1)) - 1;
const MADE_BIT: u64 = 1 << (KIND_SHIFT - 1);

impl Tag {
    /// The tag as `guestlib::batch` carries it.
    pub fn encode(self) -> u64 {
        match self {
            Tag::Ignore => 0,
            Tag::SyscallFault { slot, pid } => {
                (1 << KIND_SHIFT) | ((pid as u64) << 24) | (slot as u64 & 0xff_ffff)
            }
            Tag::Destroy { vmid } => (2 << KIND_SHIFT) | (vmid & VMID_MASK),
            Tag::ForkFailed { vmid, made } => {
                (3 << KIND_SHIFT) | (vmid & VMID_MASK) | if made { MADE_BIT } else { 0 }
            }
            Tag::Inval { vmid } => (4 << KIND_SHIFT) | (vmid & VMID_MASK),
            Tag::FaultMap { vmid } => (5 << KIND_SHIFT) | (vmid & VMID_MASK),
            // Pids are below PID_MAX (2^15): both fit.
            Tag::HandOver { writer, reader } => {
                (6 << KIND_SHIFT)
                    | ((writer as u64 & 0xff_ffff) << 24)
                    | (reader as u64 & 0xff_ffff)
            }
        }
    }

    /// The tag [`Tag::encode`] made.
    pub fn decode(v: u64) -> Tag {
        match v >> KIND_SHIFT {
            1 => Tag::SyscallFault {
                slot: (v & 0xff_ffff) as usize,
                pid: (v >> 24) as u32,
            },
            2 => Tag::Destroy {
                vmid: v & VMID_MASK,
            },
            3 => Tag::ForkFailed {
                vmid: v & VMID_MASK,
                made: v & MADE_BIT != 0,
            },
            4 => Tag::Inval {
                vmid: v & VMID_MASK,
            },
            5 => Tag::FaultMap {
                vmid: v & VMID_MASK,
            },
            6 => Tag::HandOver {
                writer: ((v >> 24) & 0xff_ffff) as u32,
                reader: (v & 0xff_ffff) as u32,
            },
            _ => Tag::Ignore,
        }
    }
}

impl ProcTable {
    /// The tag of a result that system call of task `s` writes into its
    /// memory, posted (`copy_out_posted`): if the host cannot make the
    /// write, the call returns EFAULT (Linux's `copy_to_user` failing
    /// after the call's work, as `rt_sigprocmask`'s old set or `fstat`'s
    /// buffer can).
    pub fn result_tag(&self, s: usize) -> u64 {
        Tag::SyscallFault {
            slot: s,
            pid: self.procs[s].pid,
        }
        .encode()
    }

    /// The host could not make the memory of vmspace `vmid` (`at`: while
    /// doing what): every task in it ends with SIGKILL, as Linux's OOM
    /// killer would end it. `made`: whether the vmspace exists (a fork's
    /// child whose create failed has none to destroy).
    fn out_of_memory(&mut self, vmid: u64, made: bool, at: &str, errno: i64) {
        for s in 0..self.procs.len() {
            let p = &self.procs[s];
            if !p.alive() || p.space.as_ref().is_none_or(|sp| sp.borrow().vmid() != vmid) {
                continue;
            }
            if !made {
                if let Some(space) = &p.space {
                    space.borrow_mut().unmade();
                }
            }
            eprintln!(
                "pid {} ({}): out of memory {at} ({}): killed (SIGKILL)",
                p.pid,
                p.name(),
                Errno(errno as i32).name()
            );
            self.exit_group(s, super::signal::SIGKILL);
        }
    }

    /// Acts on every posted call that failed: before any process runs
    /// (and before a signal frame records a system call's result).
    pub fn settle_posted(&mut self) {
        while let Some(f) = batch::take_failure() {
            match Tag::decode(f.tag) {
                Tag::Ignore => {}
                Tag::SyscallFault { slot, pid } => {
                    if let Some(p) = self.procs.get_mut(slot) {
                        if p.pid == pid && p.state != State::Free {
                            p.tf.rax = (-(Errno::EFAULT.0 as i64)) as u64;
                        }
                    }
                }
                Tag::Destroy { vmid } => eprintln!(
                    "kernel: vmspace_destroy({vmid:#x}) failed ({}): the host keeps it",
                    Errno(f.errno as i32).name()
                ),
                Tag::ForkFailed { vmid, made } => {
                    self.out_of_memory(vmid, made, "at fork", f.errno)
                }
                Tag::FaultMap { vmid } => {
                    self.out_of_memory(vmid, true, "mapping a file page", f.errno)
                }
                Tag::HandOver { writer, reader } => {
                    for pid in [writer, reader] {
                        if let Some(p) = self.find(pid).map(|t| &mut self.procs[t]) {
                            if p.alive() {
                                p.tf.rax = (-(Errno::EFAULT.0 as i64)) as u64;
                            }
                        }
                    }
                }
                Tag::Inval { vmid } => panic!(
                    "MADV_INVAL of {vmid:#x} failed: {}",
                    Errno(f.errno as i32).name()
                ),
            }
        }
    }
}
