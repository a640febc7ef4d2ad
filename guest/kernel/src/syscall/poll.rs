//! Waiting on many descriptors: poll, ppoll, select, pselect6, the epoll
//! calls, and eventfd (Linux's fs/select.c and fs/eventpoll.c, on the
//! kernel's sleep and wakeup).
//!
//! Each call scans its descriptors (`OpenFile::poll`); if something is
//! ready, or the timeout is zero or past, it writes its results and
//! returns. Otherwise the process sleeps on the channels of every
//! descriptor it scanned ([`crate::proc::ProcTable::sleep_many`]) with the
//! call's deadline; a wakeup of any of them, or the deadline, restarts the
//! call, which scans again, keeping its first deadline. Signal masks
//! (ppoll, pselect6, epoll_pwait) are checked and otherwise unused: no
//! signal can interrupt a wait yet.

use alloc::vec;
use alloc::vec::Vec;

use super::fd::{file, nofile};
use super::time::timespec;
use super::{err, Outcome, Outcome::*};
use crate::chan::Chan;
use crate::fs::device::console_buffered;
use crate::fs::epoll::{Epoll, EpollDev};
use crate::fs::eventfd::EventFd;
use crate::fs::file::OpenFile;
use crate::kernel::Kernel;
use crate::mm::uaccess::{copy_in, copy_out, read_u64, user_range, write_words};
use crate::mm::SpaceRef;
use alloc::rc::Rc;
use guestlib::hypercall;
use linux_raw_sys::general::*;
use vkernel_abi::Errno;

/// select's readable, writable and exceptional events (Linux's
/// `POLLIN_SET`, `POLLOUT_SET`, `POLLEX_SET`).
const IN_SET: u32 = POLLRDNORM | POLLRDBAND | POLLIN | POLLHUP | POLLERR;
const OUT_SET: u32 = POLLWRBAND | POLLWRNORM | POLLOUT | POLLERR;
const EX_SET: u32 = POLLPRI;

/// `sizeof(struct epoll_event)` on x86-64 (packed: events, data).
const EVENT_BYTES: u64 = 12;

/// Ends the call with `r`.
fn done(r: Result<i64, Errno>) -> Outcome {
    match r {
        Ok(v) => Ret(v),
        Err(e) => Ret(err(e)),
    }
}

/// The deadline of a wait (host ns; 0: none): the one it slept with
/// before if this is a restart, else `timeout` from now.
fn deadline(k: &Kernel, s: usize, timeout: Option<u64>) -> u64 {
    match k.procs.resumed_deadline(s) {
        0 => match timeout {
            None | Some(0) => 0,
            Some(ns) => hypercall::clock_ns().saturating_add(ns).max(1),
        },
        d => d,
    }
}

/// Whether a wait with this timeout and deadline must end now.
fn expired(timeout: Option<u64>, deadline: u64) -> bool {
    timeout == Some(0) || (deadline != 0 && hypercall::clock_ns() >= deadline)
}

/// Nanoseconds left until `deadline`.
fn remaining(deadline: u64) -> u64 {
    deadline.saturating_sub(hypercall::clock_ns())
}

/// A scan took console input from the host into the kernel's buffer:
/// wake the console's readers, since the host will not announce it again.
fn wake_console_readers(k: &mut Kernel) {
    if console_buffered() {
        k.procs.wakeup(Chan::ConsoleInput);
    }
}

/// Adds `f`'s channels to `chans`, once each.
fn add_chans(f: &OpenFile, chans: &mut Vec<Chan>) {
    let mut mine = Vec::new();
    f.poll_chans(&mut mine);
    for c in mine {
        if !chans.contains(&c) {
            chans.push(c);
        }
    }
}

/// Reads a signal mask argument: only its size is checked (`EINVAL`
/// unless 8 bytes), as no signal can interrupt a wait yet.
fn check_sigmask(mask: u64, size: u64) -> Result<(), Errno> {
    if mask != 0 && size != 8 {
        return Err(Errno::EINVAL);
    }
    Ok(())
}

/// A millisecond timeout (negative: none) as nanoseconds.
fn ms_timeout(ms: u64) -> Option<u64> {
    let ms = ms as i32;
    (ms >= 0).then(|| ms as u64 * 1_000_000)
}

/// A `struct timespec` timeout (null: none).
fn ts_timeout(space: &SpaceRef, ts: u64) -> Result<Option<u64>, Errno> {
    if ts == 0 {
        Ok(None)
    } else {
        timespec(space, ts).map(Some)
    }
}

pub fn sys_poll(k: &mut Kernel, s: usize, fds: u64, nfds: u64, timeout_ms: u64) -> Outcome {
    do_poll(k, s, fds, nfds, ms_timeout(timeout_ms), 0)
}

pub fn sys_ppoll(k: &mut Kernel, s: usize, a: [u64; 6]) -> Outcome {
    let [fds, nfds, ts, mask, size, _] = a;
    let space = k.space(s);
    let timeout = match ts_timeout(&space, ts).and_then(|t| check_sigmask(mask, size).map(|_| t)) {
        Ok(t) => t,
        Err(e) => return Ret(err(e)),
    };
    do_poll(k, s, fds, nfds, timeout, ts)
}

/// poll and ppoll; `ts`: where ppoll writes the time left (0: nowhere).
fn do_poll(
    k: &mut Kernel,
    s: usize,
    fds: u64,
    nfds: u64,
    timeout: Option<u64>,
    ts: u64,
) -> Outcome {
    let nfds = nfds as u32 as u64; // an unsigned int
    if nfds > nofile(k, s).min(crate::fs::file::NR_OPEN as u64) {
        return Ret(err(Errno::EINVAL));
    }
    let space = k.space(s);
    let bytes = nfds as usize * 8;
    let mut list = Vec::new();
    if list.try_reserve_exact(bytes).is_err() {
        return Ret(err(Errno::ENOMEM));
    }
    list.resize(bytes, 0u8);
    if let Err(e) = copy_in(&space, fds, &mut list) {
        return Ret(err(e));
    }
    let until = deadline(k, s, timeout);
    let files = k.files(s);
    let mut count = 0i64;
    let mut chans = Vec::new();
    for entry in list.chunks_exact_mut(8) {
        let fd = i32::from_le_bytes([entry[0], entry[1], entry[2], entry[3]]);
        let events = u16::from_le_bytes([entry[4], entry[5]]) as u32;
        let revents = if fd < 0 {
            0
        } else {
            let f = files.borrow().get(fd);
            match f {
                Err(_) => POLLNVAL,
                Ok(f) => {
                    let r = f.poll().0 & (events | POLLERR | POLLHUP);
                    if r == 0 {
                        add_chans(&f, &mut chans);
                    }
                    r
                }
            }
        };
        entry[6..8].copy_from_slice(&(revents as u16).to_le_bytes());
        count += i64::from(revents != 0);
    }
    wake_console_readers(k);
    if count == 0 && !expired(timeout, until) {
        k.procs.sleep_many(s, chans, until);
        return NoReturn;
    }
    if let Err(e) = copy_out(&space, fds, &list) {
        return Ret(err(e));
    }
    if ts != 0 && timeout != Some(0) {
        let left = remaining(until);
        // As Linux: a timeout that cannot be written back is ignored.
        let _ = write_words(&space, ts, &[left / 1_000_000_000, left % 1_000_000_000]);
    }
    Ret(count)
}

/// How select's timeout is written back.
#[derive(Clone, Copy, PartialEq)]
enum TimeForm {
    Timeval,
    Timespec,
}

pub fn sys_select(k: &mut Kernel, s: usize, a: [u64; 6]) -> Outcome {
    let [n, inp, outp, exp, tv, _] = a;
    let timeout = if tv == 0 {
        None
    } else {
        let space = k.space(s);
        let r = (|| {
            let sec = read_u64(&space, tv)? as i64;
            let usec = read_u64(&space, tv + 8)? as i64;
            let sec = sec.checked_add(usec / 1_000_000).ok_or(Errno::EINVAL)?;
            let nsec = (usec % 1_000_000) * 1000;
            if sec < 0 || nsec < 0 {
                return Err(Errno::EINVAL);
            }
            Ok((sec as u64)
                .saturating_mul(1_000_000_000)
                .saturating_add(nsec as u64))
        })();
        match r {
            Ok(ns) => Some(ns),
            Err(e) => return Ret(err(e)),
        }
    };
    do_select(k, s, n, [inp, outp, exp], timeout, tv, TimeForm::Timeval)
}

pub fn sys_pselect6(k: &mut Kernel, s: usize, a: [u64; 6]) -> Outcome {
    let [n, inp, outp, exp, ts, sig] = a;
    let space = k.space(s);
    let r = (|| {
        let t = ts_timeout(&space, ts)?;
        if sig != 0 {
            // struct { const sigset_t *ss; size_t ss_len; }
            let mask = read_u64(&space, sig)?;
            let size = read_u64(&space, sig + 8)?;
            check_sigmask(mask, size)?;
        }
        Ok(t)
    })();
    match r {
        Ok(timeout) => do_select(k, s, n, [inp, outp, exp], timeout, ts, TimeForm::Timespec),
        Err(e) => Ret(err(e)),
    }
}

/// select and pselect6 over the three `fd_set`s in `sets` (null: none).
fn do_select(
    k: &mut Kernel,
    s: usize,
    n: u64,
    sets: [u64; 3],
    timeout: Option<u64>,
    tp: u64,
    form: TimeForm,
) -> Outcome {
    let n = n as i32;
    if n < 0 {
        return Ret(err(Errno::EINVAL));
    }
    // As Linux: descriptors past the table's size are not looked at (its
    // size grows in powers of two from 64).
    let files = k.files(s);
    let table = files.borrow().size().max(64).next_power_of_two();
    let n = (n as usize).min(table);
    let words = n.div_ceil(64);
    let space = k.space(s);
    let mut inp = [vec![0u64; words], vec![0u64; words], vec![0u64; words]];
    for (set, &addr) in inp.iter_mut().zip(sets.iter()) {
        if addr == 0 {
            continue;
        }
        let mut b = vec![0u8; words * 8];
        if let Err(e) = copy_in(&space, addr, &mut b) {
            return Ret(err(e));
        }
        for (w, c) in set.iter_mut().zip(b.chunks_exact(8)) {
            *w = u64::from_le_bytes(c.try_into().unwrap_or([0; 8]));
        }
    }
    let until = deadline(k, s, timeout);
    let mut out = [vec![0u64; words], vec![0u64; words], vec![0u64; words]];
    let mut count = 0i64;
    let mut chans = Vec::new();
    for fd in 0..n {
        let (w, bit) = (fd / 64, 1u64 << (fd % 64));
        let want = [0, 1, 2].map(|i| inp[i][w] & bit != 0);
        if !want.iter().any(|&x| x) {
            continue;
        }
        let f = files.borrow().get(fd as i32);
        let f = match f {
            Ok(f) => f,
            Err(e) => return Ret(err(e)),
        };
        let mask = f.poll().0;
        let mut hit = false;
        for (i, set) in [IN_SET, OUT_SET, EX_SET].into_iter().enumerate() {
            if want[i] && mask & set != 0 {
                out[i][w] |= bit;
                count += 1;
                hit = true;
            }
        }
        if !hit {
            add_chans(&f, &mut chans);
        }
    }
    wake_console_readers(k);
    if count == 0 && !expired(timeout, until) {
        k.procs.sleep_many(s, chans, until);
        return NoReturn;
    }
    for (set, &addr) in out.iter().zip(sets.iter()) {
        if addr == 0 {
            continue;
        }
        let b: Vec<u8> = set.iter().flat_map(|w| w.to_le_bytes()).collect();
        if let Err(e) = copy_out(&space, addr, &b) {
            return Ret(err(e));
        }
    }
    if tp != 0 && timeout != Some(0) {
        let left = remaining(until);
        let sub = match form {
            TimeForm::Timeval => left % 1_000_000_000 / 1000,
            TimeForm::Timespec => left % 1_000_000_000,
        };
        let _ = write_words(&space, tp, &[left / 1_000_000_000, sub]);
    }
    Ret(count)
}

/// Installs `file` as a new descriptor of `s`.
pub(super) fn install(k: &Kernel, s: usize, f: Rc<OpenFile>, cloexec: bool) -> Result<i64, Errno> {
    let limit = nofile(k, s);
    k.files(s)
        .borrow_mut()
        .install(f, cloexec, 0, limit)
        .map(i64::from)
}

pub fn sys_epoll_create1(k: &mut Kernel, s: usize, flags: u64) -> Result<i64, Errno> {
    if flags & !(EPOLL_CLOEXEC as u64) != 0 {
        return Err(Errno::EINVAL);
    }
    let dev = Rc::new(EpollDev(Epoll::new()));
    let f = OpenFile::anon(dev, O_RDWR, "anon_inode:[eventpoll]");
    install(k, s, f, flags != 0)
}

pub fn sys_epoll_create(k: &mut Kernel, s: usize, size: u64) -> Result<i64, Errno> {
    if size as i32 <= 0 {
        return Err(Errno::EINVAL);
    }
    sys_epoll_create1(k, s, 0)
}

pub fn sys_epoll_ctl(
    k: &mut Kernel,
    s: usize,
    epfd: u64,
    op: u64,
    fd: u64,
    event: u64,
) -> Result<i64, Errno> {
    let op = op as u32;
    let (mut events, mut data) = (0, 0);
    if op != EPOLL_CTL_DEL {
        let mut b = [0u8; EVENT_BYTES as usize];
        copy_in(&k.space(s), event, &mut b)?;
        events = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        data = u64::from_le_bytes(b[4..12].try_into().unwrap_or([0; 8]));
    }
    let ef = file(k, s, epfd)?;
    let tf = file(k, s, fd)?;
    if !tf.pollable() {
        return Err(Errno::EPERM);
    }
    let ep = ef
        .device()
        .and_then(|d| d.epoll())
        .filter(|_| !Rc::ptr_eq(&ef, &tf))
        .ok_or(Errno::EINVAL)?;
    ep.ctl(op, fd as i32, &tf, events, data)?;
    // A waiter may have a newly ready item.
    let chan = ep.chan();
    k.procs.wakeup(chan);
    Ok(0)
}

/// epoll_wait, epoll_pwait and epoll_pwait2.
pub fn sys_epoll_wait(
    k: &mut Kernel,
    s: usize,
    epfd: u64,
    events: u64,
    max: u64,
    timeout: Option<u64>,
) -> Outcome {
    let max = max as i32;
    if max <= 0 || max as u64 > i32::MAX as u64 / EVENT_BYTES {
        return Ret(err(Errno::EINVAL));
    }
    let max = max as u64;
    if !user_range(events, max * EVENT_BYTES) {
        return Ret(err(Errno::EFAULT));
    }
    let ef = match file(k, s, epfd) {
        Ok(f) => f,
        Err(e) => return Ret(err(e)),
    };
    let Some(ep) = ef.device().and_then(|d| d.epoll()) else {
        return Ret(err(Errno::EINVAL));
    };
    let until = deadline(k, s, timeout);
    let mut got = Vec::new();
    ep.collect(max as usize, &mut got);
    if got.is_empty() && !expired(timeout, until) {
        let mut chans = Vec::new();
        ep.wait_chans(&mut chans);
        wake_console_readers(k);
        k.procs.sleep_many(s, chans, until);
        return NoReturn;
    }
    wake_console_readers(k);
    let mut b = Vec::with_capacity(got.len() * EVENT_BYTES as usize);
    for (ev, data) in got.iter() {
        b.extend_from_slice(&ev.to_le_bytes());
        b.extend_from_slice(&data.to_le_bytes());
    }
    done(copy_out(&k.space(s), events, &b).map(|_| got.len() as i64))
}

pub fn sys_epoll_pwait(k: &mut Kernel, s: usize, a: [u64; 6]) -> Outcome {
    let [epfd, events, max, ms, mask, size] = a;
    if let Err(e) = check_sigmask(mask, size) {
        return Ret(err(e));
    }
    sys_epoll_wait(k, s, epfd, events, max, ms_timeout(ms))
}

pub fn sys_epoll_pwait2(k: &mut Kernel, s: usize, a: [u64; 6]) -> Outcome {
    let [epfd, events, max, ts, mask, size] = a;
    let r = ts_timeout(&k.space(s), ts).and_then(|t| check_sigmask(mask, size).map(|_| t));
    match r {
        Ok(t) => sys_epoll_wait(k, s, epfd, events, max, t),
        Err(e) => Ret(err(e)),
    }
}

pub fn sys_eventfd2(k: &mut Kernel, s: usize, init: u64, flags: u64) -> Result<i64, Errno> {
    if flags & !((EFD_SEMAPHORE | EFD_CLOEXEC | EFD_NONBLOCK) as u64) != 0 {
        return Err(Errno::EINVAL);
    }
    let flags = flags as u32;
    let dev = EventFd::new(init as u32, flags & EFD_SEMAPHORE != 0);
    let f = OpenFile::anon(dev, O_RDWR | (flags & O_NONBLOCK), "anon_inode:[eventfd]");
    install(k, s, f, flags & EFD_CLOEXEC != 0)
}
