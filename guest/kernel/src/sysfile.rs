//! File system calls (xv6's sysfile.c): the console on fds 0-2 (read
//! blocks until input; writes go to the host's stdout or stderr) and the
//! status of image files by path. There is no open(2) yet.

use crate::hypercall;
use crate::proc::{ProcTable, State};
use crate::syscall::{ret, Outcome, Outcome::*};
use crate::uaccess::{self, copy_in, copy_in_str, copy_out, read_u64, write_words};
use vkernel_abi::cpio::Archive;
use vkernel_abi::Errno;

pub fn sys_read(t: &mut ProcTable, s: usize, fd: u64, buf: u64, count: u64) -> Outcome {
    if fd != 0 {
        return Ret(-(Errno::EBADF.0 as i64));
    }
    if count == 0 {
        return Ret(0);
    }
    let mut kbuf = [0u8; 4096];
    let n = (count as usize).min(kbuf.len());
    if !uaccess::user_range(buf, n as u64) {
        return Ret(-(Errno::EFAULT.0 as i64));
    }
    match hypercall::console_read(&mut kbuf[..n]) {
        Ok(got) => ret(copy_out(t.procs[s].vmid, buf, &kbuf[..got]).map(|_| got as i64)),
        Err(Errno::EAGAIN) => {
            // Block until input; the scheduler wakes us to retry the read.
            let p = &mut t.procs[s];
            p.state = State::ReadWait;
            p.restart = true;
            NoReturn
        }
        Err(e) => Ret(-(e.0 as i64)),
    }
}

pub fn sys_write(t: &ProcTable, s: usize, fd: u64, buf: u64, count: u64) -> Result<i64, Errno> {
    if fd != 1 && fd != 2 {
        return Err(Errno::EBADF);
    }
    let vmid = t.procs[s].vmid;
    let mut kbuf = [0u8; 4096];
    let mut done = 0u64;
    while done < count {
        let n = ((count - done) as usize).min(kbuf.len());
        let got = uaccess::copy_in_partial(vmid, buf.wrapping_add(done), &mut kbuf[..n]);
        if got > 0 {
            hypercall::console_write_to(fd, &kbuf[..got]);
        }
        done += got as u64;
        if got < n {
            break;
        }
    }
    if done == 0 && count > 0 {
        return Err(Errno::EFAULT);
    }
    Ok(done as i64)
}

pub fn sys_writev(t: &ProcTable, s: usize, fd: u64, iov: u64, cnt: u64) -> Result<i64, Errno> {
    if fd != 1 && fd != 2 {
        return Err(Errno::EBADF);
    }
    if cnt > 1024 {
        return Err(Errno::EINVAL);
    }
    let vmid = t.procs[s].vmid;
    let mut total = 0i64;
    for i in 0..cnt {
        let base = read_u64(vmid, iov + 16 * i)?;
        let len = read_u64(vmid, iov + 16 * i + 8)?;
        if len == 0 {
            continue;
        }
        match sys_write(t, s, fd, base, len) {
            Ok(n) => {
                total += n;
                if (n as u64) < len {
                    break;
                }
            }
            Err(e) if total == 0 => return Err(e),
            Err(_) => break,
        }
    }
    Ok(total)
}

// ---- file status (the console on fds 0-2, files of the image) ------------

pub const S_IFCHR: u64 = 0o020000;

/// Linux's `struct stat` (144 bytes) for a file of `mode` and `size`.
pub fn stat_words(mode: u64, size: u64, rdev: u64, ino: u64) -> [u64; 18] {
    let mut w = [0u64; 18];
    w[0] = 0x16; // st_dev
    w[1] = ino;
    w[2] = 1; // st_nlink
    w[3] = mode; // st_mode (u32) and st_uid (u32) = 0
    w[5] = rdev;
    w[6] = size;
    w[7] = 4096; // st_blksize
    w[8] = size.div_ceil(512);
    w
}

pub fn fstat(vmid: u64, fd: u64, st: u64) -> Result<i64, Errno> {
    if fd > 2 {
        return Err(Errno::EBADF);
    }
    // A terminal-like character device (major 136, a pty), mode 0620.
    write_words(
        vmid,
        st,
        &stat_words(S_IFCHR | 0o620, 0, 0x8800 + fd, 3 + fd),
    )?;
    Ok(0)
}

/// Stats an image file by path.
pub fn stat_path(t: &ProcTable, s: usize, path: u64, st: u64) -> Result<i64, Errno> {
    let vmid = t.procs[s].vmid;
    let mut buf = [0u8; 1024];
    let n = copy_in_str(vmid, path, &mut buf)?;
    let name = core::str::from_utf8(&buf[..n]).map_err(|_| Errno::ENOENT)?;
    let name = vkernel_abi::cpio::normalize(name);
    for (i, e) in Archive::new(t.image).filter_map(Result::ok).enumerate() {
        if e.name == name {
            let words = stat_words(e.mode as u64, e.data.len() as u64, 0, 100 + i as u64);
            write_words(vmid, st, &words)?;
            return Ok(0);
        }
    }
    Err(Errno::ENOENT)
}

pub fn sys_newfstatat(
    t: &ProcTable,
    s: usize,
    dirfd: i32,
    path: u64,
    st: u64,
    flags: u64,
) -> Result<i64, Errno> {
    const AT_EMPTY_PATH: u64 = 0x1000;
    let vmid = t.procs[s].vmid;
    let mut first = [0u8; 1];
    copy_in(vmid, path, &mut first)?;
    if first[0] == 0 {
        if flags & AT_EMPTY_PATH == 0 {
            return Err(Errno::ENOENT);
        }
        return fstat(vmid, dirfd as u64, st);
    }
    stat_path(t, s, path, st)
}

/// There are no symbolic links: an existing path is EINVAL, others ENOENT.
pub fn readlink(t: &ProcTable, s: usize, path: u64) -> Result<i64, Errno> {
    let mut buf = [0u8; 1024];
    let n = copy_in_str(t.procs[s].vmid, path, &mut buf)?;
    let name = core::str::from_utf8(&buf[..n]).map_err(|_| Errno::ENOENT)?;
    match Archive::find(t.image, name) {
        Some(_) => Err(Errno::EINVAL),
        None => Err(Errno::ENOENT),
    }
}

pub fn sys_getcwd(vmid: u64, buf: u64, size: u64) -> Result<i64, Errno> {
    if size < 2 {
        return Err(Errno::ERANGE);
    }
    copy_out(vmid, buf, b"/\0")?;
    Ok(2)
}
