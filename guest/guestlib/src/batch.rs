//! Posted calls (Xen's multicall): vmspace calls whose result nothing
//! waits for before the next process runs — a dead process's
//! `vmspace_destroy`, the status `wait4` stores, the tids `clone` and a
//! thread's exit store — are queued here instead of costing an exit
//! each, and go to the host with the next `vmspace_ctl(RUN)` as one
//! `vmspace_ctl_batch`.
//!
//! Order is kept: any other hypercall first sends the queue on its own
//! (`batch`), so a read of memory a posted write changes sees the write.
//! Nothing is lost: each entry says what result it expects, the host
//! stops the batch at the first entry that does not get it (and then runs
//! nothing), and that entry's tag and result wait in a failure list until
//! the kernel takes them ([`take_failure`]) — which it does before it
//! runs any process, so a failed status write still makes that `wait4`
//! return EFAULT, as on Linux. The entries behind a failed one go again
//! (with the RUN the kernel retries, or in the same flush), still ahead
//! of anything else. While a failure waits, [`post`] refuses (the caller
//! makes its call at once, after the queue), so the list cannot
//! overflow.

use core::cell::RefCell;

use crate::hypercall::invoke;
use vkernel_abi::{BatchEntry, Call, Errno, BATCH_MAX};

const CAP: usize = BATCH_MAX as usize;

/// An entry that did not meet its expectation: the tag it was posted
/// with and the host's result.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Failure {
    /// What the poster asked to be told with.
    pub tag: u64,
    /// The call's result (`-1` on error).
    pub ret: i64,
    /// 0 (a result other than the expected one) or the host's errno.
    pub errno: i64,
}

/// Most bytes a posted write carries with it ([`post_write`]).
/// (a `statx` buffer: the system calls' result structures fit).
pub const WRITE_MAX: usize = 256;

/// Queued calls and what travels with each: its tag and, for a posted
/// write, its bytes (the host reads them from the sender's copy, whose
/// address is set just before the `out`: [`Posted::bind`]).
#[derive(Clone, Copy)]
pub(crate) struct Posted {
    pub(crate) entries: [BatchEntry; CAP],
    tags: [u64; CAP],
    data: [[u8; WRITE_MAX]; CAP],
    /// Entry `i` is a write of `data[i]` (its `buf` set by `bind`).
    inline: [bool; CAP],
    pub(crate) len: usize,
}

impl Posted {
    const EMPTY: Posted = Posted {
        entries: [BatchEntry {
            nr: 0,
            expect: 0,
            args: [0; 7],
            ret: 0,
            errno: 0,
        }; CAP],
        tags: [0; CAP],
        data: [[0; WRITE_MAX]; CAP],
        inline: [false; CAP],
        len: 0,
    };

    fn push(&mut self, entry: BatchEntry, tag: u64, data: Option<&[u8]>) {
        let n = self.len;
        self.entries[n] = entry;
        self.tags[n] = tag;
        self.inline[n] = data.is_some();
        if let Some(d) = data {
            self.data[n][..d.len()].copy_from_slice(d);
        }
        self.len += 1;
    }

    /// Points each posted write's `buf` at its bytes in this copy, which
    /// must stay where it is until the host has read it.
    pub(crate) fn bind(&mut self) {
        for i in 0..self.len {
            if self.inline[i] {
                // pwrite(id, buf, n, flags, off): `buf` is the second.
                self.entries[i].args[1] = self.data[i].as_ptr() as u64;
            }
        }
    }
}

struct Queue {
    posted: Posted,
    failures: [Failure; CAP],
    failed: usize,
}

struct QueueCell(RefCell<Queue>);
// SAFETY: the guest kernels run on one vCPU with no threads or
// interrupts; nothing else can touch the cell.
unsafe impl Sync for QueueCell {}

const NO_FAILURE: Failure = Failure {
    tag: 0,
    ret: 0,
    errno: 0,
};

static QUEUE: QueueCell = QueueCell(RefCell::new(Queue {
    posted: Posted::EMPTY,
    failures: [NO_FAILURE; CAP],
    failed: 0,
}));

/// Makes room for one more entry; `false` while a failure waits.
fn room() -> bool {
    if QUEUE.0.borrow().failed != 0 {
        return false;
    }
    if QUEUE.0.borrow().posted.len == CAP {
        flush();
    }
    QUEUE.0.borrow().failed == 0
}

/// Queues `call` to be carried out before the next process runs (or
/// before the next other hypercall); `expect` is the result it should
/// have ([`vkernel_abi::BATCH_EXPECT_ANY`]: any success), `tag` what
/// [`take_failure`] reports if it does not get it. `false` (nothing
/// queued: make the call at once) while a failure waits to be taken.
pub fn post(call: Call, expect: i64, tag: u64) -> bool {
    if !room() {
        return false;
    }
    let entry = BatchEntry::new(call, expect);
    QUEUE.0.borrow_mut().posted.push(entry, tag, None);
    true
}

/// Queues `vmspace_pwrite(id, bytes, off)` (at most [`WRITE_MAX`] bytes,
/// copied here), expecting the whole length written: a short write is
/// the failure `tag` names. `false` as [`post`], or for too many bytes.
pub fn post_write(id: u64, bytes: &[u8], off: u64, tag: u64) -> bool {
    if bytes.len() > WRITE_MAX || !room() {
        return false;
    }
    let call = Call::VmspacePwrite {
        id,
        buf: 0,
        len: bytes.len() as u64,
        flags: 0,
        off,
    };
    let entry = BatchEntry::new(call, bytes.len() as i64);
    QUEUE.0.borrow_mut().posted.push(entry, tag, Some(bytes));
    true
}

/// Drops the queued calls unsent (the run is ending: [`crate::hypercall::exit`]).
pub fn discard() {
    let _ = take();
}

/// Whether calls wait in the queue.
#[inline]
pub fn pending() -> bool {
    QUEUE.0.borrow().posted.len != 0
}

/// Whether a queued pwrite reads the sender's memory where it lies (posted
/// with [`post`], not [`post_write`]: a tmpfs read's file pages), which
/// must then stay as it is until the host has read it.
pub fn reads_memory() -> bool {
    let q = QUEUE.0.borrow();
    let nr = vkernel_abi::Hypercall::VmspacePwrite as u64;
    (0..q.posted.len).any(|i| !q.posted.inline[i] && q.posted.entries[i].nr == nr)
}

/// The oldest failure not yet taken.
pub fn take_failure() -> Option<Failure> {
    let mut q = QUEUE.0.borrow_mut();
    if q.failed == 0 {
        return None;
    }
    let first = q.failures[0];
    let n = q.failed;
    q.failures.copy_within(1..n, 0);
    q.failed -= 1;
    Some(first)
}

/// Whether a failure waits to be taken.
pub fn failed() -> bool {
    QUEUE.0.borrow().failed != 0
}

/// The queued calls, moved out (the queue is empty after).
pub(crate) fn take() -> Posted {
    core::mem::replace(&mut QUEUE.0.borrow_mut().posted, Posted::EMPTY)
}

/// Files the host's answers to `sent`'s entries: the first unmet one
/// becomes a failure, the ones after it (ECANCELED: not carried out) go
/// back to the front of the queue.
pub(crate) fn settle(sent: &Posted) {
    let done = read_back(&sent.entries[..sent.len]);
    let Some(bad) = done[..sent.len].iter().position(|e| !e.met()) else {
        return;
    };
    let mut q = QUEUE.0.borrow_mut();
    let e = &done[bad];
    // An entry still ECANCELED was never reached (the batch was refused
    // whole): it goes back with the rest, as no failure.
    let reached = e.errno != Errno::ECANCELED.0 as i64;
    if reached {
        let slot = q.failed.min(CAP - 1);
        q.failures[slot] = Failure {
            tag: sent.tags[bad],
            ret: e.ret,
            errno: e.errno,
        };
        q.failed = slot + 1;
    }
    let from = if reached { bad + 1 } else { bad };
    // Put back what was not carried out, ahead of anything posted since.
    let mut again = Posted::EMPTY;
    for i in from..sent.len {
        let data = sent.inline[i].then_some(&sent.data[i][..]);
        again.push(BatchEntry::new_unsent(sent.entries[i]), sent.tags[i], data);
    }
    let later = q.posted;
    for i in 0..later.len {
        if again.len == CAP {
            break;
        }
        let data = later.inline[i].then_some(&later.data[i][..]);
        again.push(later.entries[i], later.tags[i], data);
    }
    q.posted = again;
}

/// Sends the queue now (one `batch` hypercall, and one more after each
/// unmet entry for the ones behind it): every other hypercall does this
/// first, so calls stay in order. The failures wait for
/// [`take_failure`] (at most one per entry posted: nothing is posted
/// while one waits).
pub fn flush() {
    while pending() {
        let mut sent = take();
        sent.bind();
        let n = sent.len;
        let r = invoke(Call::Batch {
            entries: sent.entries.as_mut_ptr() as u64,
            count: n as u64,
        });
        settle(&sent);
        if let Err(e) = r {
            // The batch was refused whole (cannot happen for a queue
            // built here): its entries wait for the next RUN's batch,
            // which reports the same.
            crate::eprintln!("batch: refused ({}): {n} calls wait", e.name());
            return;
        }
    }
}

/// The entries as the host left them (it wrote them behind the
/// compiler's back, during the `out`).
pub(crate) fn read_back(entries: &[BatchEntry]) -> [BatchEntry; CAP] {
    let mut out = [BatchEntry::default(); CAP];
    for (o, e) in out.iter_mut().zip(entries) {
        // SAFETY: `e` is a valid reference; a volatile read of it is
        // always sound.
        *o = unsafe { core::ptr::read_volatile(e) };
    }
    out
}

/// `vmspace_ctl_batch` for a RUN with `call`'s arguments (a
/// `VmspaceCtl`), carrying the queue, sent by `send` (which issues the
/// `out`); the answers are filed before it returns.
pub(crate) fn ctl_with_queue(
    call: Call,
    send: impl FnOnce(Call) -> Result<i64, Errno>,
) -> Result<i64, Errno> {
    let Call::VmspaceCtl {
        id,
        cmd,
        tframe,
        vframe,
        timeout_us,
    } = call
    else {
        return send(call);
    };
    if !pending() {
        return send(call);
    }
    let mut sent = take();
    sent.bind();
    let r = send(Call::VmspaceCtlBatch {
        entries: sent.entries.as_mut_ptr() as u64,
        count: sent.len as u64,
        id,
        cmd,
        tframe,
        vframe,
        timeout_us,
    });
    settle(&sent);
    r
}

/// An entry of [`send`] that did not meet its expectation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Unmet {
    /// Its index in the list sent.
    pub index: usize,
    /// The call's result (`-1` on error).
    pub ret: i64,
    /// 0 (a result other than the expected one) or the host's errno
    /// (ECANCELED: the host refused the batch whole).
    pub errno: i64,
}

/// Carries out `entries` now, in order, with as few `batch` hypercalls
/// as [`BATCH_MAX`] allows (one exit each), after whatever is posted
/// (sent first, so calls stay in order). For a caller that needs every
/// result before it goes on (exec loading a new image): the first entry
/// whose result is not the expected one comes back, and the entries
/// after it were not carried out.
pub fn send(entries: &mut [BatchEntry]) -> Result<(), Unmet> {
    flush();
    let mut base = 0;
    for chunk in entries.chunks_mut(CAP) {
        let r = invoke(Call::Batch {
            entries: chunk.as_mut_ptr() as u64,
            count: chunk.len() as u64,
        });
        let done = read_back(chunk);
        if let Err(e) = r {
            return Err(Unmet {
                index: base,
                ret: -1,
                errno: e.0 as i64,
            });
        }
        if let Some(i) = done[..chunk.len()].iter().position(|e| !e.met()) {
            return Err(Unmet {
                index: base + i,
                ret: done[i].ret,
                errno: done[i].errno,
            });
        }
        base += chunk.len();
    }
    Ok(())
}
