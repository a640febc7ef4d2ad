//! Descriptor system calls (xv6's sysfile.c, descriptor half): read and
//! write and their vectored and positioned forms, lseek, close, dup,
//! fcntl, pipe, ioctl, fstat, getdents64, ftruncate, fsync. They decode
//! and check arguments; the work is in `fs::file` and the file systems.

use alloc::rc::Rc;

use super::uio::{iovecs, FromUser, ToUser};
use super::{err, log_refused, Outcome, Outcome::*};
use crate::fs::device::IoError;
use crate::fs::file::{Fd, OpenFile, SETFL_MASK};
use crate::fs::pipe::Pipe;
use crate::fs::vfs::Kind;
use crate::kernel::Kernel;
use crate::mm::uaccess::{self, copy_out, write_words};
use crate::proc::signal::{self, SigInfo};
use linux_raw_sys::general::*;
use vkernel_abi::Errno;

/// `RLIMIT_NOFILE`'s soft limit of process `s`.
pub fn nofile(k: &Kernel, s: usize) -> u64 {
    k.procs.procs[s].rlimits[RLIMIT_NOFILE as usize][0]
}

/// The open file of `fd` in process `s`.
pub fn file(k: &Kernel, s: usize, fd: u64) -> Result<Rc<OpenFile>, Errno> {
    k.procs.procs[s].files.borrow().get(fd as i32)
}

/// Wakes whoever waits on the other side of `f` (a pipe's readers after a
/// write, its writers after a read).
fn wake_peer(k: &mut Kernel, f: &OpenFile) {
    if let Some(chans) = f.device().and_then(|d| d.wake_on_close()) {
        for c in chans {
            k.procs.wakeup(c);
        }
    }
}

/// What a read or write that could not go on now becomes: `EAGAIN` for
/// a non-blocking descriptor, a sleep on the channel otherwise (the call
/// restarts when woken), `EPIPE` with `SIGPIPE` for a pipe with no reader.
fn stalled(k: &mut Kernel, s: usize, f: &OpenFile, e: IoError, write: bool) -> Outcome {
    match e {
        IoError::Fail(e) => Ret(err(e)),
        IoError::WouldBlock(_) if f.nonblocking() => Ret(err(Errno::EAGAIN)),
        IoError::WouldBlock(chan) => {
            // A socket's timeout ends the wait with what moved, or EAGAIN.
            let timeout = f.device().map_or(0, |d| d.timeout_ns(write));
            let done = k.procs.procs[s].io_done;
            let on_timeout = if done > 0 {
                done as i64
            } else {
                err(Errno::EAGAIN)
            };
            match k.procs.sleep_timed(s, chan, timeout, on_timeout) {
                Some(v) => Ret(v),
                None => NoReturn,
            }
        }
        IoError::BrokenPipe => {
            // As Linux's pipe_write: SIGPIPE to the writer (by default it
            // dies of it before seeing the error), and EPIPE.
            let pid = k.procs.procs[s].tgid;
            let _ = k.procs.send(
                s,
                SigInfo::from_process(signal::SIGPIPE, signal::SI_USER, pid),
            );
            Ret(err(Errno::EPIPE))
        }
    }
}

pub fn sys_read(k: &mut Kernel, s: usize, fd: u64, buf: u64, count: u64) -> Outcome {
    read_at(k, s, fd, buf, count, None)
}

pub fn sys_pread64(k: &mut Kernel, s: usize, fd: u64, buf: u64, count: u64, off: u64) -> Outcome {
    if (off as i64) < 0 {
        return Ret(err(Errno::EINVAL));
    }
    read_at(k, s, fd, buf, count, Some(off))
}

fn read_at(k: &mut Kernel, s: usize, fd: u64, buf: u64, count: u64, at: Option<u64>) -> Outcome {
    let f = match file(k, s, fd) {
        Ok(f) => f,
        Err(e) => return Ret(err(e)),
    };
    if at.is_some() && !f.seekable() {
        return Ret(err(Errno::ESPIPE));
    }
    let count = count.min(i32::MAX as u64 & !0xfff);
    if !uaccess::user_range(buf, count) {
        return Ret(err(Errno::EFAULT));
    }
    if let Some(term) = f.device().and_then(|d| d.terminal()) {
        if let Some(o) = super::tty::read_gate(k, s, &term, &f, count) {
            return o;
        }
    }
    if f.device().is_some_and(|d| d.signalfd().is_some()) {
        return super::signal::read_signalfd(k, s, &f, buf, count);
    }
    let space = k.space(s);
    let mut to = ToUser::posting(&space, buf, k.procs.result_tag(s));
    match f.read(count as usize, at, &mut |b| to.put(b)) {
        Ok(n) => {
            let more = if n > 0 && (n as u64) < count {
                take_from_writer(k, s, &f, buf + n as u64, count - n as u64)
            } else {
                0
            };
            wake_peer(k, &f);
            Ret((n as u64 + more) as i64)
        }
        Err(e) => stalled(k, s, &f, e, false),
    }
}

pub fn sys_write(k: &mut Kernel, s: usize, fd: u64, buf: u64, count: u64) -> Outcome {
    write_at(k, s, fd, buf, count, None)
}

pub fn sys_pwrite64(k: &mut Kernel, s: usize, fd: u64, buf: u64, count: u64, off: u64) -> Outcome {
    if (off as i64) < 0 {
        return Ret(err(Errno::EINVAL));
    }
    write_at(k, s, fd, buf, count, Some(off))
}

/// A write. A blocking write to a pipe that fills it part-way through
/// sleeps with its progress kept: the frame's buffer and count move past
/// what went, and the restarted call adds it to its result, so the caller
/// sees one write of everything, as on Linux.
fn write_at(k: &mut Kernel, s: usize, fd: u64, buf: u64, count: u64, at: Option<u64>) -> Outcome {
    let f = match file(k, s, fd) {
        Ok(f) => f,
        Err(e) => {
            k.procs.procs[s].io_done = 0;
            return Ret(err(e));
        }
    };
    if at.is_some() && !f.seekable() {
        return Ret(err(Errno::ESPIPE));
    }
    let count = count.min(i32::MAX as u64 & !0xfff);
    if !uaccess::user_range(buf, count) {
        return Ret(err(Errno::EFAULT));
    }
    if let Some(term) = f.device().and_then(|d| d.terminal()) {
        if let Some(o) = super::tty::write_gate(k, s, &term) {
            return o;
        }
    }
    let mut total = if at.is_none() {
        hand_to_reader(k, s, &f, buf, count)
    } else {
        0
    };
    let space = k.space(s);
    let outcome = if total == count {
        None
    } else {
        loop {
            let mut from = FromUser::new(&space, buf + total);
            match f.write((count - total) as usize, at, &mut |b| from.take(b)) {
                Ok(n) => {
                    total += n as u64;
                    // Only a pipe or device takes part of a write and more later.
                    if n == 0 || total == count || f.device().is_none() {
                        break None;
                    }
                }
                Err(IoError::WouldBlock(chan)) if !f.nonblocking() && at.is_none() => {
                    let p = &mut k.procs.procs[s];
                    p.tf.rsi += total;
                    p.tf.rdx -= total;
                    p.io_done += total;
                    wake_peer(k, &f);
                    k.procs.sleep(s, chan, 0, 0);
                    break Some(NoReturn);
                }
                Err(_) if total > 0 => break None,
                // Progress from before a sleep: report it (POSIX's partial
                // write), whatever stopped the rest.
                Err(_) if k.procs.procs[s].io_done > 0 => break None,
                Err(e) => break Some(stalled(k, s, &f, e, true)),
            }
        }
    };
    if total > 0 {
        wake_peer(k, &f);
    }
    match outcome {
        Some(o) => o,
        None => {
            let p = &mut k.procs.procs[s];
            let done = total + core::mem::take(&mut p.io_done);
            Ret(done as i64)
        }
    }
}

/// A write to a pipe whose ring is empty while a reader sleeps in `read`
/// of it: the bytes go straight from the writer's memory into the
/// reader's, and that read returns them, as if it had found them in the
/// ring (Linux's reader would take them from there at once). Under
/// `pmap=host` that is one `vmspace_copy` where the ring takes a pread
/// into it and a pwrite out of it (posted with the next RUN, no exit of
/// its own, when it is the whole write between anonymous memory); under `pmap=guest` nothing is done here
/// (the kernel copies through its own tables, with no exit to save).
/// Returns the bytes handed over: 0 when there is no such reader or the
/// copy moved nothing (the write then goes through the ring, and the
/// woken reader meets any fault itself); what is left goes through the
/// ring after them, so the order and `PIPE_BUF` atomicity hold (no other
/// write can come between).
fn hand_to_reader(k: &mut Kernel, s: usize, f: &OpenFile, buf: u64, count: u64) -> u64 {
    let Some(end) = f.device().and_then(|d| d.pipe_end()) else {
        return 0;
    };
    if count == 0 || !end.may_hand_over() {
        return 0;
    }
    let chan = end.pipe().readable_chan();
    // A task asleep on the pipe itself (not a poll) in a plain read.
    let reader = k.procs.procs.iter().position(|p| {
        p.restart
            && p.tf.rax == __NR_read as u64
            && matches!(p.state, crate::proc::State::Blocked { chan: c, .. } if c == chan)
    });
    let Some(r) = reader else {
        return 0;
    };
    let (rfd, rbuf, rcount) = {
        let tf = &k.procs.procs[r].tf;
        (tf.rdi, tf.rsi, tf.rdx)
    };
    // Its descriptor must still name this pipe's read end: another thread
    // may have closed or replaced it since it slept.
    let same_pipe = file(k, r, rfd).is_ok_and(|rf| {
        rf.readable()
            && rf
                .device()
                .and_then(|d| d.pipe_end())
                .is_some_and(|e| e.reads() && core::ptr::eq(e.pipe(), end.pipe()))
    });
    let rcount = rcount.min(i32::MAX as u64 & !0xfff);
    if !same_pipe || rcount == 0 || !uaccess::user_range(rbuf, rcount) {
        return 0;
    }
    let (wspace, rspace) = (k.space(s), k.space(r));
    // Threads of one process (or a vfork child and its parent) share the
    // space: through the ring.
    if Rc::ptr_eq(&wspace, &rspace) {
        return 0;
    }
    let n = count.min(rcount).min(vkernel_abi::VMSPACE_COPY_MAX) as usize;
    // The whole write, from a call with no progress to report from before
    // a sleep: the copy goes with the next RUN (no exit of its own), and
    // should the host fail it, both calls fail (EFAULT) before either
    // process runs (`Tag::HandOver`).
    let tag = crate::proc::posted::Tag::HandOver {
        writer: k.procs.procs[s].pid,
        reader: k.procs.procs[r].pid,
    }
    .encode();
    let posted = n as u64 == count
        && k.procs.procs[s].io_done == 0
        && rspace
            .borrow_mut()
            .post_copy_from(rbuf, &wspace.borrow(), buf, n, tag);
    let moved = if posted {
        n
    } else {
        rspace
            .borrow_mut()
            .copy_from(rbuf, &wspace.borrow(), buf, n)
            .unwrap_or(0)
    };
    if moved == 0 {
        return 0;
    }
    end.handed_over(moved);
    // The reader's read is over: it returns the bytes when it next runs.
    super::complete(k, r, moved as i64);
    let p = &mut k.procs.procs[r];
    p.restart = false;
    p.set_state(crate::proc::State::Runnable);
    if p.alive() {
        k.procs.publish_signals(r);
    }
    moved as u64
}

/// A read that emptied a pipe's ring with room left in its buffer takes
/// more straight from a writer asleep in `write` on that pipe (its bytes
/// are the next in order: the ring is empty), as [`hand_to_reader`] does
/// the other way: one `vmspace_copy` under `pmap=host` (nothing under
/// `pmap=guest`). The writer's call moves past what went and returns when
/// nothing is left, as if the reader had made room for it; a write of at
/// most `PIPE_BUF` bytes goes whole or not at all. Returns the bytes
/// taken (0: none).
fn take_from_writer(k: &mut Kernel, s: usize, f: &OpenFile, buf: u64, room: u64) -> u64 {
    let Some(end) = f.device().and_then(|d| d.pipe_end()) else {
        return 0;
    };
    if !end.may_take_over() {
        return 0;
    }
    let chan = end.pipe().writable_chan();
    // A task asleep on the pipe itself (not a poll) in a plain write.
    let writer = k.procs.procs.iter().position(|p| {
        p.restart
            && p.tf.rax == __NR_write as u64
            && matches!(p.state, crate::proc::State::Blocked { chan: c, .. } if c == chan)
    });
    let Some(w) = writer else {
        return 0;
    };
    let (wfd, wbuf, wcount, wdone) = {
        let p = &k.procs.procs[w];
        (p.tf.rdi, p.tf.rsi, p.tf.rdx, p.io_done)
    };
    // Its descriptor must still name this pipe's write end.
    let same_pipe = file(k, w, wfd).is_ok_and(|wf| {
        wf.writable()
            && wf
                .device()
                .and_then(|d| d.pipe_end())
                .is_some_and(|e| e.writes() && core::ptr::eq(e.pipe(), end.pipe()))
    });
    let wcount = wcount.min(i32::MAX as u64 & !0xfff);
    if !same_pipe || wcount == 0 || !uaccess::user_range(wbuf, wcount) {
        return 0;
    }
    let n = wcount.min(room).min(vkernel_abi::VMSPACE_COPY_MAX);
    // An atomic write (nothing of it gone yet) goes whole or not at all.
    if n < wcount && wcount <= crate::fs::pipe::PIPE_BUF as u64 && wdone == 0 {
        return 0;
    }
    let (rspace, wspace) = (k.space(s), k.space(w));
    if Rc::ptr_eq(&wspace, &rspace) {
        return 0;
    }
    let moved = rspace
        .borrow_mut()
        .copy_from(buf, &wspace.borrow(), wbuf, n as usize)
        .unwrap_or(0) as u64;
    if moved == 0 {
        return 0;
    }
    end.handed_over(moved as usize);
    // The writer's call moves on past what went, as after a partial write
    // before a sleep; with nothing left it is over.
    let p = &mut k.procs.procs[w];
    p.tf.rsi += moved;
    p.tf.rdx -= moved;
    p.io_done += moved;
    if moved == wcount {
        let done = core::mem::take(&mut p.io_done);
        p.restart = false;
        p.set_state(crate::proc::State::Runnable);
        super::complete(k, w, done as i64);
        if k.procs.procs[w].alive() {
            k.procs.publish_signals(w);
        }
    }
    moved
}

/// Which way a vectored call moves data.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    /// readv, preadv: from the file into the process.
    Read,
    /// writev, pwritev: from the process into the file.
    Write,
}

/// The `RWF_*` flags preadv2 and pwritev2 know.
const RWF_HIPRI: u64 = 0x1;
const RWF_DSYNC: u64 = 0x2;
const RWF_SYNC: u64 = 0x4;
const RWF_NOWAIT: u64 = 0x8;
const RWF_APPEND: u64 = 0x10;

/// preadv2 / pwritev2(fd, iov, cnt, pos_l, pos_h, flags): preadv and
/// pwritev, or readv and writev at offset -1, with Linux's per-call
/// flags: `RWF_NOWAIT` (`EAGAIN` rather than wait), `RWF_APPEND` (the
/// write goes to the end, as `O_APPEND`), `RWF_DSYNC`/`RWF_SYNC` (the
/// file is synced after a write, as fsync), `RWF_HIPRI` (a polling hint:
/// nothing to do); any other flag is `EOPNOTSUPP`.
pub fn sys_vectored2(k: &mut Kernel, s: usize, dir: Dir, a: [u64; 6]) -> Outcome {
    let [fd, iov, cnt, pos, _, flags] = a;
    if flags & !(RWF_HIPRI | RWF_DSYNC | RWF_SYNC | RWF_NOWAIT | RWF_APPEND) != 0 {
        return Ret(err(Errno::EOPNOTSUPP));
    }
    let at = if pos as i64 == -1 { None } else { Some(pos) };
    let writing = matches!(dir, Dir::Write);
    if writing && flags & RWF_APPEND != 0 {
        let f = match file(k, s, fd) {
            Ok(f) => f,
            Err(e) => return Ret(err(e)),
        };
        if let Some(i) = f.inode() {
            let end = i.meta().size;
            if at.is_none() {
                f.offset.set(end);
            } else {
                // The write goes to the end; the file position stays.
                let out = sys_vectored(k, s, dir, fd, iov, cnt, Some(end), flags & RWF_NOWAIT != 0);
                return finish_sync(k, s, fd, flags, out);
            }
        }
    }
    let out = sys_vectored(k, s, dir, fd, iov, cnt, at, flags & RWF_NOWAIT != 0);
    if writing {
        finish_sync(k, s, fd, flags, out)
    } else {
        out
    }
}

/// After a pwritev2 that wrote, `RWF_DSYNC`/`RWF_SYNC` sync the file.
fn finish_sync(k: &mut Kernel, s: usize, fd: u64, flags: u64, out: Outcome) -> Outcome {
    if flags & (RWF_DSYNC | RWF_SYNC) == 0 {
        return out;
    }
    match out {
        Ret(n) if n > 0 => match sys_fsync(k, s, fd, flags & RWF_SYNC == 0) {
            Ok(_) | Err(Errno::EINVAL) => Ret(n),
            Err(e) => Ret(err(e)),
        },
        o => o,
    }
}

/// readv, writev, preadv, pwritev (`at`: the file position for the p-
/// forms; `nowait`: preadv2's RWF_NOWAIT, `EAGAIN` rather than a wait).
/// A vector that stops short (end of file, a full pipe, an unmapped
/// buffer) ends the call with what went before it.
#[allow(clippy::too_many_arguments)]
pub fn sys_vectored(
    k: &mut Kernel,
    s: usize,
    dir: Dir,
    fd: u64,
    iov: u64,
    cnt: u64,
    at: Option<u64>,
    nowait: bool,
) -> Outcome {
    let f = match file(k, s, fd) {
        Ok(f) => f,
        Err(e) => return Ret(err(e)),
    };
    if at.is_some_and(|a| (a as i64) < 0) {
        return Ret(err(Errno::EINVAL));
    }
    if at.is_some() && !f.seekable() {
        return Ret(err(Errno::ESPIPE));
    }
    let space = k.space(s);
    let vecs = match iovecs(&space, iov, cnt) {
        Ok(v) => v,
        Err(e) => return Ret(err(e)),
    };
    if let Some(term) = f.device().and_then(|d| d.terminal()) {
        let gate = match dir {
            Dir::Read => {
                let count = vecs.iter().fold(0u64, |a, v| a.saturating_add(v.1));
                super::tty::read_gate(k, s, &term, &f, count)
            }
            Dir::Write => super::tty::write_gate(k, s, &term),
        };
        if let Some(o) = gate {
            return o;
        }
    }
    let mut total = 0u64;
    for (base, len) in vecs {
        if len == 0 {
            continue;
        }
        if !uaccess::user_range(base, len) {
            return Ret(if total > 0 {
                total as i64
            } else {
                err(Errno::EFAULT)
            });
        }
        let pos = at.map(|a| a + total);
        let moved = match dir {
            Dir::Read => {
                let mut to = ToUser::new(&space, base);
                f.read(len as usize, pos, &mut |b| to.put(b))
            }
            Dir::Write => {
                let mut from = FromUser::new(&space, base);
                f.write(len as usize, pos, &mut |b| from.take(b))
            }
        };
        match moved {
            Ok(n) => {
                total += n as u64;
                if (n as u64) < len {
                    break;
                }
            }
            Err(_) if total > 0 => break,
            // RWF_NOWAIT: what would wait is EAGAIN instead.
            Err(IoError::WouldBlock(_)) if nowait => return Ret(err(Errno::EAGAIN)),
            Err(e) => return stalled(k, s, &f, e, matches!(dir, Dir::Write)),
        }
    }
    wake_peer(k, &f);
    Ret(total as i64)
}

pub fn sys_lseek(k: &Kernel, s: usize, fd: u64, off: u64, whence: u64) -> Result<i64, Errno> {
    let f = file(k, s, fd)?;
    if !f.seekable() {
        return Err(Errno::ESPIPE);
    }
    let off = off as i64;
    let base = match u32::try_from(whence).map_err(|_| Errno::EINVAL)? {
        SEEK_SET => 0,
        SEEK_CUR => f.offset.get() as i64,
        SEEK_END => f.meta().size as i64,
        // Without holes tracked per extent: the data is everything up to
        // the size, the one hole is at the end (as Linux's default).
        SEEK_DATA | SEEK_HOLE => {
            let size = f.meta().size as i64;
            if off < 0 || off >= size {
                return Err(Errno::ENXIO);
            }
            let to = if whence == SEEK_DATA as u64 {
                off
            } else {
                size
            };
            f.offset.set(to as u64);
            return Ok(to);
        }
        _ => return Err(Errno::EINVAL),
    };
    let new = base.checked_add(off).ok_or(Errno::EOVERFLOW)?;
    if new < 0 {
        return Err(Errno::EINVAL);
    }
    f.offset.set(new as u64);
    Ok(new)
}

pub fn sys_close(k: &mut Kernel, s: usize, fd: u64) -> Result<i64, Errno> {
    let files = k.files(s);
    let f = files.borrow().get(fd as i32)?;
    files.borrow_mut().close(fd as i32)?;
    // The last descriptor of a pipe end wakes the other side; the
    // process's record locks on the file go.
    let pid = k.procs.procs[s].tgid;
    k.procs.close_files(pid, alloc::vec![f]);
    Ok(0)
}

pub fn sys_close_range(
    k: &mut Kernel,
    s: usize,
    lo: u64,
    hi: u64,
    flags: u64,
) -> Result<i64, Errno> {
    const CLOSE_RANGE_UNSHARE: u64 = 2;
    const CLOSE_RANGE_CLOEXEC: u64 = 4;
    if flags & !(CLOSE_RANGE_UNSHARE | CLOSE_RANGE_CLOEXEC) != 0 || lo > hi {
        return Err(Errno::EINVAL);
    }
    let (lo, hi) = (
        lo.min(u32::MAX as u64) as usize,
        hi.min(u32::MAX as u64) as usize,
    );
    let files = k.files(s);
    let closed = files
        .borrow_mut()
        .close_range(lo, hi, flags & CLOSE_RANGE_CLOEXEC != 0);
    let pid = k.procs.procs[s].tgid;
    k.procs.close_files(pid, closed);
    Ok(0)
}

pub fn sys_dup(k: &Kernel, s: usize, fd: u64) -> Result<i64, Errno> {
    let files = k.files(s);
    let f = files.borrow().get(fd as i32)?;
    let limit = nofile(k, s);
    let fd = files.borrow_mut().install(f, false, 0, limit)?;
    Ok(fd.into())
}

/// dup2 and dup3 (`flags`: `O_CLOEXEC`; dup3 refuses `old == new`).
pub fn sys_dup3(
    k: &mut Kernel,
    s: usize,
    old: u64,
    new: u64,
    flags: u64,
    dup3: bool,
) -> Result<i64, Errno> {
    if dup3 && (flags & !(O_CLOEXEC as u64) != 0) {
        return Err(Errno::EINVAL);
    }
    let files = k.files(s);
    let f = files.borrow().get(old as i32)?;
    if old == new {
        return if dup3 {
            Err(Errno::EINVAL)
        } else {
            Ok(new as i64)
        };
    }
    if new >= nofile(k, s) || new > i32::MAX as u64 {
        return Err(Errno::EBADF);
    }
    let replaced = files.borrow().get(new as i32).ok();
    files.borrow_mut().set(
        new as usize,
        Fd {
            file: f,
            cloexec: flags & O_CLOEXEC as u64 != 0,
        },
    )?;
    if let Some(r) = replaced {
        let pid = k.procs.procs[s].tgid;
        k.procs.close_files(pid, alloc::vec![r]);
    }
    Ok(new as i64)
}

pub fn sys_fcntl(k: &mut Kernel, s: usize, fd: u64, cmd: u64, arg: u64) -> Result<i64, Errno> {
    let files = k.files(s);
    let f = files.borrow().get(fd as i32)?;
    match u32::try_from(cmd).map_err(|_| Errno::EINVAL)? {
        c @ (F_DUPFD | F_DUPFD_CLOEXEC) => {
            let limit = nofile(k, s);
            if arg >= limit {
                return Err(Errno::EINVAL);
            }
            files
                .borrow_mut()
                .install(f, c == F_DUPFD_CLOEXEC, arg as usize, limit)
                .map(i64::from)
        }
        F_GETFD => Ok(i64::from(files.borrow().slot(fd as i32)?.cloexec)),
        F_SETFD => files
            .borrow_mut()
            .set_cloexec(fd as i32, arg & FD_CLOEXEC as u64 != 0)
            .map(|_| 0),
        F_GETFL => Ok(f.flags.get() as i64),
        F_SETFL => {
            let keep = f.flags.get() & !SETFL_MASK;
            f.flags.set(keep | (arg as u32 & SETFL_MASK));
            Ok(0)
        }
        // A pipe's or fifo's capacity; EBADF for any other file, as Linux.
        F_GETPIPE_SZ | F_SETPIPE_SZ => {
            let end = f.device().and_then(|d| d.pipe_end()).ok_or(Errno::EBADF)?;
            if cmd as u32 == F_GETPIPE_SZ {
                return Ok(end.capacity() as i64);
            }
            // The argument is an unsigned int.
            let size = end.set_capacity(u64::from(arg as u32))?;
            // A bigger ring may take what its writers waited to write.
            let chan = end.pipe().writable_chan();
            k.procs.wakeup(chan);
            Ok(size as i64)
        }
        // Seals: a tmpfs file has F_SEAL_SEAL from the start (memfd_create
        // without MFD_ALLOW_SEALING, which is not taken here, makes no
        // other): it reads as that, and takes no more (EPERM); files of
        // other file systems have none (EINVAL), as Linux's memfd_fcntl.
        c @ (F_GET_SEALS | F_ADD_SEALS) => {
            let tmpfs = f.inode().is_some_and(|i| {
                i.meta().kind == Kind::Regular
                    && i.fs_magic() == linux_raw_sys::general::TMPFS_MAGIC as u64
            });
            match (tmpfs, c) {
                (false, _) => Err(Errno::EINVAL),
                (true, F_GET_SEALS) => Ok(i64::from(F_SEAL_SEAL)),
                (true, _) => Err(Errno::EPERM),
            }
        }
        c => {
            log_refused(k, s, "fcntl", format_args!("command {c}"));
            Err(Errno::EINVAL)
        }
    }
}

/// memfd_create(name, flags): an unnamed tmpfs file, open for reading and
/// writing (`/memfd:NAME (deleted)` in /proc). `MFD_CLOEXEC`,
/// `MFD_EXEC`; `MFD_ALLOW_SEALING` and `MFD_NOEXEC_SEAL` (seals are not
/// kept here) and `MFD_HUGETLB` are refused with a log line (`EINVAL`);
/// a name past 249 bytes is `EINVAL`, as Linux's.
pub fn sys_memfd_create(k: &mut Kernel, s: usize, name: u64, flags: u64) -> Result<i64, Errno> {
    const MFD_HUGETLB: u64 = 4;
    const MFD_NOEXEC_SEAL: u64 = 8;
    const MFD_EXEC: u64 = 0x10;
    const MFD_NAME_MAX_LEN: usize = 249;
    let flags = flags as u32 as u64;
    let known =
        MFD_CLOEXEC as u64 | MFD_ALLOW_SEALING as u64 | MFD_HUGETLB | MFD_NOEXEC_SEAL | MFD_EXEC;
    // MFD_HUGETLB's page size is in bits 26..31.
    if flags & !known & !(0x3f << 26) != 0 || (flags >> 26 != 0 && flags & MFD_HUGETLB == 0) {
        return Err(Errno::EINVAL);
    }
    if flags & MFD_EXEC != 0 && flags & MFD_NOEXEC_SEAL != 0 {
        return Err(Errno::EINVAL);
    }
    let mut buf = [0u8; MFD_NAME_MAX_LEN + 1];
    let len = match uaccess::copy_in_str(&k.space(s), name, &mut buf) {
        Ok(n) => n,
        Err(Errno::ENAMETOOLONG) => return Err(Errno::EINVAL),
        Err(e) => return Err(e),
    };
    let refused = flags & (MFD_ALLOW_SEALING as u64 | MFD_NOEXEC_SEAL | MFD_HUGETLB);
    if refused != 0 {
        log_refused(
            k,
            s,
            "memfd_create",
            format_args!("flags {refused:#x} (seals, huge pages)"),
        );
        return Err(Errno::EINVAL);
    }
    let mut path = b"/memfd:".to_vec();
    path.extend_from_slice(&buf[..len]);
    path.extend_from_slice(b" (deleted)");
    let node = crate::fs::tmpfs::new_unlinked(&k.shm);
    let f = OpenFile::new(
        crate::fs::file::Object::Inode(node),
        O_RDWR | O_LARGEFILE,
        path,
    );
    super::poll::install(k, s, f, flags & MFD_CLOEXEC as u64 != 0)
}

pub fn sys_pipe2(k: &mut Kernel, s: usize, fds: u64, flags: u64) -> Result<i64, Errno> {
    if flags & !((O_CLOEXEC | O_NONBLOCK | O_DIRECT) as u64) != 0 {
        return Err(Errno::EINVAL);
    }
    if !uaccess::user_range(fds, 8) {
        return Err(Errno::EFAULT);
    }
    let status = flags as u32 & O_NONBLOCK;
    let cloexec = flags & O_CLOEXEC as u64 != 0;
    let (r, w) = Pipe::new_pair();
    let ino = r.pipe().id();
    let rf = OpenFile::pipe(r, O_RDONLY | status, ino);
    let wf = OpenFile::pipe(w, O_WRONLY | status, ino);
    let files = k.files(s);
    let limit = nofile(k, s);
    let rfd = files.borrow_mut().install(rf, cloexec, 0, limit)?;
    let wfd = match files.borrow_mut().install(wf, cloexec, 0, limit) {
        Ok(w) => w,
        Err(e) => {
            let _ = files.borrow_mut().close(rfd);
            return Err(e);
        }
    };
    let mut out = [0u8; 8];
    out[..4].copy_from_slice(&rfd.to_le_bytes());
    out[4..].copy_from_slice(&wfd.to_le_bytes());
    if let Err(e) = copy_out(&k.space(s), fds, &out) {
        let mut t = files.borrow_mut();
        let _ = t.close(rfd);
        let _ = t.close(wfd);
        return Err(e);
    }
    Ok(0)
}

/// ioctl. Terminals (the console when the host's stdin is one, both
/// sides of a pty) have their own (`syscall/tty.rs`); for other files,
/// see [`ioctl`].
pub fn sys_ioctl(k: &mut Kernel, s: usize, fd: u64, req: u64, arg: u64) -> Outcome {
    let f = match file(k, s, fd) {
        Ok(f) => f,
        Err(e) => return Ret(err(e)),
    };
    if let Some(d) = f.device() {
        if let Some(term) = d.terminal() {
            return super::tty::ioctl(k, s, &f, &term, None, req, arg);
        }
        if let Some(p) = d.pty_master().cloned() {
            let term = crate::fs::tty::Term::Pty(p.clone());
            return super::tty::ioctl(k, s, &f, &term, Some(&p), req, arg);
        }
    }
    Ret(ioctl(k, s, &f, req, arg).unwrap_or_else(err))
}

/// FIONBIO: sets or clears the open file's O_NONBLOCK.
pub fn fionbio(k: &Kernel, s: usize, f: &OpenFile, arg: u64) -> Result<i64, Errno> {
    let mut on = [0u8; 4];
    crate::mm::uaccess::copy_in(&k.space(s), arg, &mut on)?;
    let flags = f.flags.get() & !O_NONBLOCK;
    let nb = if u32::from_le_bytes(on) != 0 {
        O_NONBLOCK
    } else {
        0
    };
    f.flags.set(flags | nb);
    Ok(0)
}

/// ioctl on a file that is not the console terminal: the requests a
/// program asks to learn whether it has a terminal (TCGETS, TIOCGWINSZ:
/// a fixed cooked 24x80 one for a host terminal when the host's stdin is
/// not one), FIONREAD, FIONBIO; anything else is `ENOTTY`, as Linux
/// answers a request a device does not know.
fn ioctl(k: &mut Kernel, s: usize, f: &OpenFile, req: u64, arg: u64) -> Result<i64, Errno> {
    const TCGETS: u64 = 0x5401;
    const TIOCGWINSZ: u64 = 0x5413;
    const FIONREAD: u64 = 0x541b;
    const FIONBIO: u64 = 0x5421;
    let tty = f.device().is_some_and(|d| d.is_tty());
    let space = k.space(s);
    match req {
        TCGETS if tty => {
            // A cooked terminal: ICRNL | IXON, OPOST | ONLCR, B38400 | CS8 |
            // CREAD | HUPCL, ISIG | ICANON | ECHO | ECHOE | ECHOK | IEXTEN
            // | ECHOCTL | ECHOKE, and Linux's default control characters.
            let mut t = [0u8; 36];
            t[0..4].copy_from_slice(&0o2400u32.to_le_bytes());
            t[4..8].copy_from_slice(&0o5u32.to_le_bytes());
            t[8..12].copy_from_slice(&0o2277u32.to_le_bytes());
            t[12..16].copy_from_slice(&0o105073u32.to_le_bytes());
            let cc = [3u8, 28, 127, 21, 4, 0, 1, 0, 17, 19, 26, 0, 18, 15, 23, 22];
            t[17..17 + cc.len()].copy_from_slice(&cc);
            copy_out(&space, arg, &t)?;
            Ok(0)
        }
        TIOCGWINSZ if tty => {
            write_words(&space, arg, &[24 | (80 << 16)])?;
            Ok(0)
        }
        FIONREAD => {
            let n = match f.inode() {
                Some(i) if i.meta().kind == Kind::Regular => {
                    i.meta().size.saturating_sub(f.offset.get())
                }
                _ => f.device().map_or(0, |d| {
                    d.pending_bytes()
                        .map_or(u64::from(d.ready().read), |n| n as u64)
                }),
            };
            copy_out(&space, arg, &(n as i32).to_le_bytes())?;
            Ok(0)
        }
        FIONBIO => fionbio(k, s, f, arg),
        _ => Err(Errno::ENOTTY),
    }
}

pub fn sys_fstat(k: &Kernel, s: usize, fd: u64, st: u64) -> Result<i64, Errno> {
    let f = file(k, s, fd)?;
    super::path::write_stat(&k.space(s), st, &f.meta(), k.procs.result_tag(s))
}

pub fn sys_getdents64(k: &Kernel, s: usize, fd: u64, buf: u64, count: u64) -> Result<i64, Errno> {
    let f = file(k, s, fd)?;
    let dir = f.inode().ok_or(Errno::ENOTDIR)?.clone();
    if dir.meta().kind != Kind::Directory {
        return Err(Errno::ENOTDIR);
    }
    let count = count.min(1 << 20) as usize;
    let mut out = alloc::vec::Vec::new();
    loop {
        let index = f.offset.get();
        let Some(e) = dir.readdir(index)? else {
            break;
        };
        // struct linux_dirent64: ino, off, reclen, type, name, NUL, pad.
        let reclen = (19 + e.name.len() + 1).next_multiple_of(8);
        if out.len() + reclen > count {
            if out.is_empty() {
                return Err(Errno::EINVAL);
            }
            break;
        }
        let start = out.len();
        out.resize(start + reclen, 0);
        let rec = &mut out[start..];
        rec[0..8].copy_from_slice(&e.ino.to_le_bytes());
        rec[8..16].copy_from_slice(&(index + 1).to_le_bytes());
        rec[16..18].copy_from_slice(&(reclen as u16).to_le_bytes());
        rec[18] = e.kind.dirent_type();
        rec[19..19 + e.name.len()].copy_from_slice(&e.name);
        f.offset.set(index + 1);
    }
    copy_out(&k.space(s), buf, &out)?;
    Ok(out.len() as i64)
}

pub fn sys_ftruncate(k: &Kernel, s: usize, fd: u64, len: u64) -> Result<i64, Errno> {
    let f = file(k, s, fd)?;
    if (len as i64) < 0 {
        return Err(Errno::EINVAL);
    }
    if !f.writable() {
        return Err(Errno::EINVAL);
    }
    match f.inode() {
        Some(i) if i.meta().kind == Kind::Regular => i.truncate(len).map(|_| 0),
        _ => Err(Errno::EINVAL),
    }
}

/// fsync and fdatasync: tmpfs holds everything in memory, nothing to
/// flush; a writable host volume's file is synced on the host. A pipe or
/// terminal is `EINVAL`, as Linux says.
pub fn sys_fsync(k: &Kernel, s: usize, fd: u64, datasync: bool) -> Result<i64, Errno> {
    let f = file(k, s, fd)?;
    let Some(inode) = f.inode() else {
        return Err(Errno::EINVAL);
    };
    inode.sync(datasync)?;
    Ok(0)
}

/// fallocate(fd, mode, offset, len), with Linux's checks (vfs_fallocate)
/// in its order: `FALLOC_FL_KEEP_SIZE` and `FALLOC_FL_PUNCH_HOLE` (which
/// needs KEEP_SIZE) as tmpfs takes them; the other modes are
/// `EOPNOTSUPP`, as tmpfs answers them. A file system without it (the
/// host's files) is `EOPNOTSUPP` too, with a log line (glibc's
/// posix_fallocate then writes the range itself).
pub fn sys_fallocate(
    k: &Kernel,
    s: usize,
    fd: u64,
    mode: u64,
    off: u64,
    len: u64,
) -> Result<i64, Errno> {
    const KEEP_SIZE: u64 = FALLOC_FL_KEEP_SIZE as u64;
    const PUNCH_HOLE: u64 = FALLOC_FL_PUNCH_HOLE as u64;
    let mode = mode as u32 as u64;
    let (off, len) = (off as i64, len as i64);
    if off < 0 || len <= 0 {
        return Err(Errno::EINVAL);
    }
    // The modes Linux knows (KEEP_SIZE, PUNCH_HOLE, COLLAPSE_RANGE,
    // ZERO_RANGE, INSERT_RANGE, UNSHARE_RANGE, WRITE_ZEROES).
    if mode & !0xfb != 0 {
        return Err(Errno::EOPNOTSUPP);
    }
    if mode & PUNCH_HOLE != 0 && mode & KEEP_SIZE == 0 {
        return Err(Errno::EOPNOTSUPP);
    }
    let f = file(k, s, fd)?;
    if !f.writable() {
        return Err(Errno::EBADF);
    }
    match f.meta().kind {
        Kind::Fifo => return Err(Errno::ESPIPE),
        Kind::Directory => return Err(Errno::EISDIR),
        Kind::Regular => {}
        _ => return Err(Errno::ENODEV),
    }
    let inode = f.inode().ok_or(Errno::ENODEV)?;
    if (off as u64)
        .checked_add(len as u64)
        .is_none_or(|e| e > i64::MAX as u64)
    {
        return Err(Errno::EFBIG);
    }
    // tmpfs's own answer to the other modes.
    if mode & !(KEEP_SIZE | PUNCH_HOLE) != 0 {
        return Err(Errno::EOPNOTSUPP);
    }
    match inode.allocate(
        mode & KEEP_SIZE != 0,
        mode & PUNCH_HOLE != 0,
        off as u64,
        len as u64,
    ) {
        Err(Errno::EOPNOTSUPP) => {
            log_refused(k, s, "fallocate", format_args!("a file outside tmpfs"));
            Err(Errno::EOPNOTSUPP)
        }
        r => r.map(|()| 0),
    }
}

/// fadvise64(fd, offset, len, advice): advice about an access pattern.
/// The checks are Linux's (generic_fadvise); the advice itself changes
/// nothing here: tmpfs files live in memory, and the host-backed page
/// cache reads ahead by its own rule.
pub fn sys_fadvise64(k: &Kernel, s: usize, fd: u64, len: u64, advice: u64) -> Result<i64, Errno> {
    let f = file(k, s, fd)?;
    if f.meta().kind == Kind::Fifo {
        return Err(Errno::ESPIPE);
    }
    if advice > POSIX_FADV_NOREUSE as u64 || (len as i64) < 0 {
        return Err(Errno::EINVAL);
    }
    Ok(0)
}

/// The arguments of sendfile and copy_file_range (offset pointers 0 when
/// not given).
pub struct Copy {
    pub out_fd: u64,
    pub in_fd: u64,
    pub off_in: u64,
    pub off_out: u64,
    pub count: u64,
    /// copy_file_range: the output must be a regular file too.
    pub out_must_be_file: bool,
}

/// sendfile and copy_file_range: copies up to `count` bytes from the
/// regular file `in_fd` (at `*off_in` if given, else at its offset) to
/// `out_fd` (at `*off_out` for copy_file_range if given). Data is read at
/// the position without moving it, written, and the position advances by
/// what the write took, so a write that blocks part-way loses nothing.
pub fn copy_between(k: &mut Kernel, s: usize, c: Copy) -> Outcome {
    let Copy {
        out_fd,
        in_fd,
        off_in,
        off_out,
        count,
        out_must_be_file,
    } = c;
    let r = (|| {
        let (inf, outf) = (file(k, s, in_fd)?, file(k, s, out_fd)?);
        let is_file = |f: &OpenFile| f.inode().is_some_and(|i| i.meta().kind == Kind::Regular);
        if !is_file(&inf) || (out_must_be_file && !is_file(&outf)) {
            return Err(Errno::EINVAL);
        }
        if !inf.readable() || !outf.writable() {
            return Err(Errno::EBADF);
        }
        let space = k.space(s);
        let read_off = |ptr: u64, f: &OpenFile| -> Result<u64, Errno> {
            if ptr == 0 {
                return Ok(f.offset.get());
            }
            let v = crate::mm::uaccess::read_u64(&space, ptr)? as i64;
            u64::try_from(v).map_err(|_| Errno::EINVAL)
        };
        let at_in = read_off(off_in, &inf)?;
        let at_out = if off_out != 0 {
            Some(read_off(off_out, &outf)?)
        } else {
            None
        };
        Ok((inf, outf, space, at_in, at_out))
    })();
    let (inf, outf, space, mut at_in, mut at_out) = match r {
        Ok(v) => v,
        Err(e) => return Ret(err(e)),
    };
    let count = count.min(i32::MAX as u64 & !0xfff);
    let mut chunk = alloc::vec![0u8; 64 * 1024];
    let mut done = 0u64;
    while done < count {
        let want = ((count - done) as usize).min(chunk.len());
        let mut filled = 0usize;
        let got = match inf.read(want, Some(at_in), &mut |pieces| {
            let start = filled;
            for b in pieces {
                let n = b.len().min(want - filled);
                chunk[filled..filled + n].copy_from_slice(&b[..n]);
                filled += n;
            }
            Ok(filled - start)
        }) {
            Ok(0) => break,
            Ok(n) => n,
            Err(_) if done > 0 => break,
            Err(e) => return stalled(k, s, &inf, e, false),
        };
        let n = match write_from(&outf, &chunk[..got], at_out) {
            Ok(n) => n,
            Err(_) if done > 0 => break,
            Err(e) => return stalled(k, s, &outf, e, true),
        };
        at_in += n as u64;
        at_out = at_out.map(|o| o + n as u64);
        done += n as u64;
        if n < got {
            break;
        }
    }
    wake_peer(k, &outf);
    // The positions: through the pointers if given, else the offsets.
    let put = |ptr: u64, v: u64| crate::mm::uaccess::write_u64(&space, ptr, v);
    let stored = if off_in != 0 {
        put(off_in, at_in)
    } else {
        inf.offset.set(at_in);
        Ok(())
    };
    let stored = stored.and_then(|()| match at_out {
        Some(o) if off_out != 0 => put(off_out, o),
        _ => Ok(()),
    });
    match stored {
        Ok(()) => Ret(done as i64),
        Err(e) => Ret(err(e)),
    }
}

/// splice(fd_in, off_in, fd_out, off_out, len, flags): moves up to `len`
/// bytes between a pipe and another file (or two pipes), as Linux's
/// checks go (`len` 0 first; flags; `EBADF`; `EINVAL` with no pipe, an
/// `O_APPEND` output, or an offset of an unseekable file; `ESPIPE` for a
/// pipe's offset). Nothing is lost to a write that blocks part-way: from
/// a pipe, bytes leave it only once the output took them; into one, no
/// more is read than it has room for. `SPLICE_F_NONBLOCK` makes the call
/// `EAGAIN` where it would wait; the other flags are hints.
pub fn sys_splice(k: &mut Kernel, s: usize, a: [u64; 6]) -> Outcome {
    let [in_fd, off_in, out_fd, off_out, len, flags] = a;
    if len == 0 {
        return Ret(0);
    }
    let r = (|| {
        let (inf, outf) = splice_files(k, s, in_fd, out_fd, flags)?;
        let is_pipe = |f: &OpenFile| f.device().and_then(|d| d.pipe_end()).is_some();
        let (ipipe, opipe) = (is_pipe(&inf), is_pipe(&outf));
        if !ipipe && !opipe {
            return Err(Errno::EINVAL);
        }
        if (ipipe && off_in != 0) || (opipe && off_out != 0) {
            return Err(Errno::ESPIPE);
        }
        if outf.flags.get() & O_APPEND != 0 {
            return Err(Errno::EINVAL);
        }
        let space = k.space(s);
        let offset = |ptr: u64, f: &OpenFile| -> Result<Option<u64>, Errno> {
            if ptr == 0 {
                return Ok(None);
            }
            if !f.seekable() {
                return Err(Errno::EINVAL);
            }
            let v = crate::mm::uaccess::read_u64(&space, ptr)? as i64;
            u64::try_from(v).map(Some).map_err(|_| Errno::EINVAL)
        };
        let at_in = offset(off_in, &inf)?;
        let at_out = offset(off_out, &outf)?;
        Ok((inf, outf, ipipe, at_in, at_out))
    })();
    let (inf, outf, ipipe, at_in, at_out) = match r {
        Ok(v) => v,
        Err(e) => return Ret(err(e)),
    };
    let nonblock = flags & SPLICE_F_NONBLOCK != 0;
    let len = (len.min(i32::MAX as u64 & !0xfff) as usize).min(PIPE_CHUNK);
    let moved = if ipipe {
        splice_from_pipe(&inf, &outf, len, at_out)
    } else {
        splice_to_pipe(&inf, &outf, len, at_in)
    };
    match moved {
        Ok(n) => {
            wake_peer(k, &inf);
            wake_peer(k, &outf);
            let space = k.space(s);
            let put = |ptr: u64, at: Option<u64>| match at {
                Some(v) if ptr != 0 => crate::mm::uaccess::write_u64(&space, ptr, v + n as u64),
                _ => Ok(()),
            };
            match put(off_in, at_in).and_then(|()| put(off_out, at_out)) {
                Ok(()) => Ret(n as i64),
                Err(e) => Ret(err(e)),
            }
        }
        Err((IoError::WouldBlock(_), _)) if nonblock => Ret(err(Errno::EAGAIN)),
        Err((e, side)) => {
            let f = if side { &outf } else { &inf };
            stalled(k, s, f, e, side)
        }
    }
}

/// splice's flags: `SPLICE_F_MOVE`, `_NONBLOCK`, `_MORE`, `_GIFT`.
const SPLICE_F_ALL: u64 = 1 | 2 | 4 | 8;
const SPLICE_F_NONBLOCK: u64 = 2;

/// The checks splice and tee share, in Linux's order: the flags
/// (`EINVAL`), the descriptors (`EBADF`), the input readable and the
/// output writable (`EBADF`).
fn splice_files(
    k: &Kernel,
    s: usize,
    in_fd: u64,
    out_fd: u64,
    flags: u64,
) -> Result<(Rc<OpenFile>, Rc<OpenFile>), Errno> {
    if flags & !SPLICE_F_ALL != 0 {
        return Err(Errno::EINVAL);
    }
    let (inf, outf) = (file(k, s, in_fd)?, file(k, s, out_fd)?);
    if !inf.readable() || !outf.writable() {
        return Err(Errno::EBADF);
    }
    Ok((inf, outf))
}

/// The most one splice moves (Linux's default pipe size).
const PIPE_CHUNK: usize = crate::fs::pipe::PIPE_SIZE;

/// Writes `data` to `f` (at `at`, or its position): what the write took.
fn write_from(f: &OpenFile, data: &[u8], at: Option<u64>) -> Result<usize, IoError> {
    let mut given = 0usize;
    f.write(data.len(), at, &mut |pieces| {
        let start = given;
        for b in pieces.iter_mut() {
            let n = b.len().min(data.len() - given);
            b[..n].copy_from_slice(&data[given..given + n]);
            given += n;
        }
        Ok(given - start)
    })
}

/// splice out of pipe `inf`: what the pipe holds (up to `len`) is
/// written to `outf`, and leaves the pipe as far as it was taken. The
/// error says which side stalled (true: the output).
fn splice_from_pipe(
    inf: &OpenFile,
    outf: &OpenFile,
    len: usize,
    at_out: Option<u64>,
) -> Result<usize, (IoError, bool)> {
    let Some(pipe) = inf.device().and_then(|d| d.pipe_end()) else {
        return Err((IoError::Fail(Errno::EINVAL), false));
    };
    let data = pipe.peek(len);
    if data.is_empty() {
        if pipe.no_writers() {
            return Ok(0);
        }
        return Err((IoError::WouldBlock(pipe.pipe().readable_chan()), false));
    }
    match write_from(outf, &data, at_out) {
        Ok(n) => {
            pipe.consume(n);
            Ok(n)
        }
        Err(e) => Err((e, true)),
    }
}

/// splice into pipe `outf`: at most the room it has is read from `inf`
/// (at `at_in` for a file), so all of it fits.
fn splice_to_pipe(
    inf: &OpenFile,
    outf: &OpenFile,
    len: usize,
    at_in: Option<u64>,
) -> Result<usize, (IoError, bool)> {
    let Some(pipe) = outf.device().and_then(|d| d.pipe_end()) else {
        return Err((IoError::Fail(Errno::EINVAL), true));
    };
    if pipe.no_readers() {
        return Err((IoError::BrokenPipe, true));
    }
    let room = pipe.room();
    if room == 0 {
        return Err((IoError::WouldBlock(pipe.pipe().writable_chan()), true));
    }
    let want = len.min(room);
    let mut chunk = alloc::vec::Vec::new();
    if chunk.try_reserve_exact(want).is_err() {
        return Err((IoError::Fail(Errno::ENOMEM), false));
    }
    let got = inf
        .read(
            want,
            at_in.or_else(|| inf.seekable().then(|| inf.offset.get())),
            &mut |pieces| {
                let start = chunk.len();
                for b in pieces {
                    let n = b.len().min(want - chunk.len());
                    chunk.extend_from_slice(&b[..n]);
                }
                Ok(chunk.len() - start)
            },
        )
        .map_err(|e| (e, false))?;
    if got == 0 {
        return Ok(0);
    }
    // A file read at its own offset moves it by what was read.
    if at_in.is_none() && inf.seekable() {
        inf.offset.set(inf.offset.get() + got as u64);
    }
    write_from(outf, &chunk[..got], None).map_err(|e| (e, true))
}

/// vmsplice(fd, iov, nr_segs, flags): the user buffers into pipe `fd`
/// (its write end: a writev) or out of it (its read end: a readv); a
/// descriptor that is no pipe is `EBADF`, unknown flags and more than
/// `UIO_MAXIOV` segments `EINVAL`, as Linux. `SPLICE_F_GIFT` is a hint
/// (the bytes are copied); `SPLICE_F_NONBLOCK` is `EAGAIN` where it would
/// wait.
pub fn sys_vmsplice(k: &mut Kernel, s: usize, a: [u64; 6]) -> Outcome {
    let [fd, iov, nr_segs, flags, ..] = a;
    if flags & !SPLICE_F_ALL != 0 {
        return Ret(err(Errno::EINVAL));
    }
    let f = match file(k, s, fd) {
        Ok(f) => f,
        Err(e) => return Ret(err(e)),
    };
    if f.device().and_then(|d| d.pipe_end()).is_none() {
        return Ret(err(Errno::EBADF));
    }
    if nr_segs > 1024 {
        return Ret(err(Errno::EINVAL));
    }
    if nr_segs == 0 {
        return Ret(0);
    }
    let dir = if f.writable() { Dir::Write } else { Dir::Read };
    sys_vectored(
        k,
        s,
        dir,
        fd,
        iov,
        nr_segs,
        None,
        flags & SPLICE_F_NONBLOCK != 0,
    )
}

/// tee(fd_in, fd_out, len, flags): copies up to `len` bytes from pipe
/// `fd_in` into pipe `fd_out` without taking them out of the first, as
/// much as the second has room for (Linux's checks: `len` 0, flags,
/// `EBADF`, `EINVAL` for what is no pipe or the same pipe twice). It
/// waits for data or room unless `SPLICE_F_NONBLOCK` (`EAGAIN`); 0 when
/// the first pipe is empty with no writer left.
pub fn sys_tee(k: &mut Kernel, s: usize, a: [u64; 6]) -> Outcome {
    let [in_fd, out_fd, len, flags, ..] = a;
    if len == 0 {
        return Ret(0);
    }
    let r = (|| {
        let (inf, outf) = splice_files(k, s, in_fd, out_fd, flags)?;
        let (Some(a), Some(b)) = (
            inf.device().and_then(|d| d.pipe_end()),
            outf.device().and_then(|d| d.pipe_end()),
        ) else {
            return Err(Errno::EINVAL);
        };
        if core::ptr::eq(a.pipe(), b.pipe()) {
            return Err(Errno::EINVAL);
        }
        Ok((inf.clone(), outf.clone()))
    })();
    let (inf, outf) = match r {
        Ok(v) => v,
        Err(e) => return Ret(err(e)),
    };
    let (Some(src), Some(dst)) = (
        inf.device().and_then(|d| d.pipe_end()),
        outf.device().and_then(|d| d.pipe_end()),
    ) else {
        return Ret(err(Errno::EINVAL));
    };
    let data = src.peek((len as usize).min(PIPE_CHUNK).min(dst.room()));
    let moved: Result<usize, IoError> = if dst.no_readers() {
        Err(IoError::BrokenPipe)
    } else if dst.room() == 0 {
        Err(IoError::WouldBlock(dst.pipe().writable_chan()))
    } else if data.is_empty() {
        if src.no_writers() {
            Ok(0)
        } else {
            Err(IoError::WouldBlock(src.pipe().readable_chan()))
        }
    } else {
        write_from(&outf, &data, None)
    };
    match moved {
        Ok(n) => {
            wake_peer(k, &outf);
            Ret(n as i64)
        }
        Err(IoError::WouldBlock(_)) if flags & SPLICE_F_NONBLOCK != 0 => Ret(err(Errno::EAGAIN)),
        Err(e) => stalled(k, s, &outf, e, true),
    }
}
