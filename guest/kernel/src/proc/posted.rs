//! Calls the kernel posts instead of making at once (`guestlib::batch`:
//! they reach the host with the next RUN, in the same exit), and what it
//! does when one of them fails. Each posted call carries a [`Tag`]: what
//! the failure means for whom.
//!
//! Posted: a dead address space's `vmspace_destroy` (nothing waits for
//! it), the status `wait4` stores and the tids `clone` and a thread's
//! exit store (`pmap=host`: each was a `vmspace_pwrite` exit). A status
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
}

const KIND_SHIFT: u32 = 62;

impl Tag {
    /// The tag as `guestlib::batch` carries it.
    pub fn encode(self) -> u64 {
        match self {
            Tag::Ignore => 0,
            Tag::SyscallFault { slot, pid } => {
                (1 << KIND_SHIFT) | ((pid as u64) << 24) | (slot as u64 & 0xff_ffff)
            }
            Tag::Destroy { vmid } => (2 << KIND_SHIFT) | (vmid & ((1 << KIND_SHIFT) - 1)),
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
                vmid: v & ((1 << KIND_SHIFT) - 1),
            },
            _ => Tag::Ignore,
        }
    }
}

impl ProcTable {
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
            }
        }
    }
}
