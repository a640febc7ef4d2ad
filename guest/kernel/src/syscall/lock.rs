//! Advisory locks: fcntl's record locks (`F_GETLK`, `F_SETLK`,
//! `F_SETLKW`), their open-file-description forms (`F_OFD_*`), and
//! flock(2). These decode `struct flock` and the commands as Linux's
//! `fcntl_getlk`/`fcntl_setlk`/`flock` do; the locks are `fs::lock`'s. A
//! lock that must wait sleeps on the inode's [`Chan::FileLock`] and the
//! call restarts when the inode's locks change (or a signal ends it).

use alloc::rc::Rc;

use super::fd::file;
use super::{err, Outcome, Outcome::*};
use crate::chan::Chan;
use crate::fs::file::OpenFile;
use crate::fs::lock::{self, LockType, Owner, Refused, OFFSET_MAX};
use crate::kernel::Kernel;
use crate::mm::uaccess::{copy_in, copy_out};
use linux_raw_sys::general::{
    F_GETLK, F_OFD_GETLK, F_OFD_SETLK, F_OFD_SETLKW, F_SETLK, F_SETLKW, LOCK_EX, LOCK_NB, LOCK_SH,
    LOCK_UN, O_PATH, SEEK_CUR, SEEK_END, SEEK_SET,
};
use vkernel_abi::Errno;

/// `LOCK_MAND`: Linux ignores such requests (they never worked).
const LOCK_MAND: u32 = 32;

/// Whether fcntl command `cmd` is a lock command (handled here).
pub fn is_lock_cmd(cmd: u64) -> bool {
    matches!(
        u32::try_from(cmd),
        Ok(F_GETLK | F_SETLK | F_SETLKW | F_OFD_GETLK | F_OFD_SETLK | F_OFD_SETLKW)
    )
}

/// x86-64 `struct flock`: `l_type` and `l_whence` (shorts), then
/// `l_start`, `l_len` (`off_t`) and `l_pid` (int) at 8, 16, 24; 32 bytes.
struct Flock {
    ty: i16,
    whence: i16,
    start: i64,
    len: i64,
    pid: i32,
}

impl Flock {
    fn parse(b: &[u8; 32]) -> Flock {
        let i64_at = |o: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&b[o..o + 8]);
            i64::from_le_bytes(w)
        };
        Flock {
            ty: i16::from_le_bytes([b[0], b[1]]),
            whence: i16::from_le_bytes([b[2], b[3]]),
            start: i64_at(8),
            len: i64_at(16),
            pid: i32::from_le_bytes([b[24], b[25], b[26], b[27]]),
        }
    }

    /// Writes the fields back into `b` (its padding as the caller had it).
    fn store(&self, b: &mut [u8; 32]) {
        b[0..2].copy_from_slice(&self.ty.to_le_bytes());
        b[2..4].copy_from_slice(&self.whence.to_le_bytes());
        b[8..16].copy_from_slice(&self.start.to_le_bytes());
        b[16..24].copy_from_slice(&self.len.to_le_bytes());
        b[24..28].copy_from_slice(&self.pid.to_le_bytes());
    }

    /// The byte range `[start, end]` it names in `f` (Linux's
    /// `flock64_to_posix_lock`): `EINVAL` for a bad whence or a start
    /// before 0, `EOVERFLOW` for a range past `OFFSET_MAX`.
    fn range(&self, f: &OpenFile) -> Result<(u64, u64), Errno> {
        let base = match u32::try_from(self.whence).map_err(|_| Errno::EINVAL)? {
            SEEK_SET => 0,
            SEEK_CUR => f.offset.get() as i64,
            SEEK_END => f.meta().size as i64,
            _ => return Err(Errno::EINVAL),
        };
        let start = base.checked_add(self.start).ok_or(Errno::EINVAL)?;
        if start < 0 {
            return Err(Errno::EINVAL);
        }
        let (start, end) = if self.len > 0 {
            if self.len - 1 > i64::MAX - start {
                return Err(Errno::EOVERFLOW);
            }
            (start, start + self.len - 1)
        } else if self.len < 0 {
            // start >= 0 and len < 0: the sum cannot overflow.
            if start + self.len < 0 {
                return Err(Errno::EINVAL);
            }
            (start + self.len, start - 1)
        } else {
            (start, i64::MAX)
        };
        if end < start {
            return Err(Errno::EOVERFLOW);
        }
        Ok((start as u64, end as u64))
    }
}

/// fcntl's lock commands on descriptor `fd` with `struct flock` at `arg`.
pub fn sys_fcntl_lock(k: &mut Kernel, s: usize, fd: u64, cmd: u64, arg: u64) -> Outcome {
    let f = match file(k, s, fd) {
        // fcntl on an O_PATH descriptor allows only the descriptor calls.
        Ok(f) if f.flags.get() & O_PATH != 0 => return Ret(err(Errno::EBADF)),
        Ok(f) => f,
        Err(e) => return Ret(err(e)),
    };
    let space = k.space(s);
    let mut raw = [0u8; 32];
    if let Err(e) = copy_in(&space, arg, &mut raw) {
        return Ret(err(e));
    }
    let fl = Flock::parse(&raw);
    let cmd = cmd as u32;
    let ofd = matches!(cmd, F_OFD_GETLK | F_OFD_SETLK | F_OFD_SETLKW);
    if matches!(cmd, F_GETLK | F_OFD_GETLK) {
        let r = get_lock(k, s, &f, cmd == F_OFD_GETLK, fl).and_then(|out| {
            out.store(&mut raw);
            copy_out(&space, arg, &raw)
        });
        return Ret(r.map_or_else(err, |()| 0));
    }
    let sleep = matches!(cmd, F_SETLKW | F_OFD_SETLKW);
    set_lock(k, s, &f, ofd, sleep, &fl)
}

/// F_GETLK, F_OFD_GETLK: `fl` with the first conflicting lock, or with
/// `l_type` `F_UNLCK` if the lock could be taken.
fn get_lock(k: &Kernel, s: usize, f: &Rc<OpenFile>, ofd: bool, fl: Flock) -> Result<Flock, Errno> {
    let ty = LockType::from_raw(fl.ty).ok_or(Errno::EINVAL)?;
    // Only the OFD form accepts F_UNLCK (it then finds its own locks).
    if !ofd && ty == LockType::Unlock {
        return Err(Errno::EINVAL);
    }
    let (start, end) = fl.range(f)?;
    let owner = if ofd {
        if fl.pid != 0 {
            return Err(Errno::EINVAL);
        }
        Owner::file(f)
    } else {
        Owner::Process(k.procs.procs[s].tgid)
    };
    Ok(
        match k.procs.locks.test(lock::key(f), &owner, ty, start, end) {
            None => Flock {
                ty: LockType::Unlock as i16,
                ..fl
            },
            Some(l) => Flock {
                ty: l.ty as i16,
                whence: SEEK_SET as i16,
                start: l.start as i64,
                len: if l.end == OFFSET_MAX {
                    0
                } else {
                    (l.end - l.start + 1) as i64
                },
                // An OFD lock has no process: Linux reports -1.
                pid: match l.owner {
                    Owner::Process(pid) => pid as i32,
                    Owner::File(_) => -1,
                },
            },
        },
    )
}

/// F_SETLK(W), F_OFD_SETLK(W).
fn set_lock(
    k: &mut Kernel,
    s: usize,
    f: &Rc<OpenFile>,
    ofd: bool,
    sleep: bool,
    fl: &Flock,
) -> Outcome {
    let checked = (|| {
        let (start, end) = fl.range(f)?;
        let ty = LockType::from_raw(fl.ty).ok_or(Errno::EINVAL)?;
        // The descriptor must be open for what the lock protects.
        match ty {
            LockType::Read if !f.readable() => return Err(Errno::EBADF),
            LockType::Write if !f.writable() => return Err(Errno::EBADF),
            _ => {}
        }
        if ofd && fl.pid != 0 {
            return Err(Errno::EINVAL);
        }
        Ok((ty, start, end))
    })();
    let (ty, start, end) = match checked {
        Ok(v) => v,
        Err(e) => return Ret(err(e)),
    };
    let pid = k.procs.procs[s].tgid;
    let owner = if ofd {
        Owner::file(f)
    } else {
        Owner::Process(pid)
    };
    let key = lock::key(f);
    let r = k.procs.locks.set(key, owner, ty, start, end);
    k.procs.wake_locks();
    match r {
        Ok(()) => {
            k.procs.locks.unwait(pid);
            Ret(0)
        }
        Err(Refused::Errno(e)) => Ret(err(e)),
        Err(Refused::Conflict(_)) if !sleep => Ret(err(Errno::EAGAIN)),
        Err(Refused::Conflict(holder)) => {
            // Only a process's own waits form a chain Linux follows (an
            // OFD lock has no process to wait on anything). A wait
            // recorded before (one a signal ended) is replaced.
            k.procs.locks.unwait(pid);
            if let (false, Owner::Process(h)) = (ofd, holder) {
                let procs = &k.procs;
                if procs.locks.deadlock(pid, h, |w| procs.waits_for_lock(w)) {
                    return Ret(err(Errno::EDEADLK));
                }
                k.procs.locks.wait(pid, h);
            }
            k.procs.sleep(s, Chan::FileLock(key.0, key.1), 0, 0);
            NoReturn
        }
    }
}

/// flock(2): `LOCK_SH`, `LOCK_EX` or `LOCK_UN`, with `LOCK_NB` not to
/// wait (`EWOULDBLOCK`, which is `EAGAIN`).
pub fn sys_flock(k: &mut Kernel, s: usize, fd: u64, cmd: u64) -> Outcome {
    let cmd = cmd as u32;
    if cmd & LOCK_MAND != 0 {
        return Ret(0);
    }
    let op = match cmd & !LOCK_NB {
        LOCK_SH => Some(false),
        LOCK_EX => Some(true),
        LOCK_UN => None,
        _ => return Ret(err(Errno::EINVAL)),
    };
    let f = match file(k, s, fd) {
        Ok(f) if f.flags.get() & O_PATH != 0 => return Ret(err(Errno::EBADF)),
        Ok(f) => f,
        Err(e) => return Ret(err(e)),
    };
    if op.is_some() && !f.readable() && !f.writable() {
        return Ret(err(Errno::EBADF));
    }
    let key = lock::key(&f);
    let r = k.procs.locks.flock(key, &f, op);
    k.procs.wake_locks();
    match r {
        Ok(()) => Ret(0),
        Err(Refused::Errno(e)) => Ret(err(e)),
        Err(Refused::Conflict(_)) if cmd & LOCK_NB != 0 => Ret(err(Errno::EAGAIN)),
        Err(Refused::Conflict(_)) => {
            // A flock wait is no record-lock wait (see set_lock).
            let pid = k.procs.procs[s].tgid;
            k.procs.locks.unwait(pid);
            k.procs.sleep(s, Chan::FileLock(key.0, key.1), 0, 0);
            NoReturn
        }
    }
}
