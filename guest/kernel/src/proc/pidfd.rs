//! Process file descriptors (Linux's pidfds): a descriptor naming one
//! process, not a pid number, so it never reaches a later process that
//! got the same pid. `pidfd_open` makes one; it polls readable once the
//! process has exited (and hung up once it is reaped), and is what
//! `pidfd_send_signal`, `pidfd_getfd` and `waitid(P_PIDFD)` name their
//! process by (`syscall/proc.rs`).

use alloc::rc::Rc;
use alloc::vec::Vec;

use super::task::TaskInfo;
use super::State;
use crate::chan::Chan;
use crate::fs::device::{Device, IoError, Ready};
use crate::fs::vfs::{Sink, Source};
use vkernel_abi::Errno;

pub struct PidFd {
    /// The process's record (its leader's; a thread's with
    /// `PIDFD_THREAD`), which outlives the process.
    task: Rc<TaskInfo>,
    /// Made with `PIDFD_THREAD`: it names the thread, not its group.
    pub thread: bool,
}

impl PidFd {
    pub fn new(task: Rc<TaskInfo>, thread: bool) -> PidFd {
        PidFd { task, thread }
    }

    /// Whether `task` is the record it names.
    pub fn names(&self, task: &Rc<TaskInfo>) -> bool {
        Rc::ptr_eq(&self.task, task)
    }

    /// The process has exited (a zombie or reaped).
    pub fn exited(&self) -> bool {
        matches!(self.task.state.get(), State::Zombie | State::Free)
    }

    /// The process has been reaped.
    pub fn reaped(&self) -> bool {
        self.task.state.get() == State::Free
    }
}

impl Device for PidFd {
    fn read(&self, _len: usize, _out: Sink) -> Result<usize, IoError> {
        Err(Errno::EINVAL.into())
    }

    fn write(&self, _len: usize, _src: Source) -> Result<usize, IoError> {
        Err(Errno::EINVAL.into())
    }

    /// Linux's pidfd_poll: readable once the process exited, hung up
    /// too once it is reaped.
    fn ready(&self) -> Ready {
        let (exited, reaped) = (self.exited(), self.reaped());
        Ready {
            read: exited,
            hangup: reaped,
            in_seq: u64::from(exited) + u64::from(reaped),
            ..Ready::default()
        }
    }

    fn pollable(&self) -> bool {
        true
    }

    fn poll_chans(&self, out: &mut Vec<Chan>) {
        out.push(Chan::ProcessExit);
    }

    fn pidfd(&self) -> Option<&PidFd> {
        Some(self)
    }
}
