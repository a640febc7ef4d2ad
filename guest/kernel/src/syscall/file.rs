//! File system calls (xv6's sysfile.c): the console on fds 0-2 (read
//! blocks until input; writes go to the host's stdout or stderr) and the
//! status of image files by path. There is no open(2) yet.

use crate::fs::{console, image};
use crate::kernel::Kernel;
use crate::mm::uaccess::{self, copy_in, copy_in_str, copy_out, read_u64, write_words};
use crate::mm::SpaceRef;
use crate::proc::Chan;
use crate::syscall::{err, ret, Outcome, Outcome::*};
use linux_raw_sys::general::{AT_EMPTY_PATH, S_IFCHR};
use vkernel_abi::Errno;

pub fn sys_read(k: &mut Kernel, s: usize, fd: u64, buf: u64, count: u64) -> Outcome {
    if fd != 0 {
        return Ret(err(Errno::EBADF));
    }
    if count == 0 {
        return Ret(0);
    }
    let mut kbuf = [0u8; 4096];
    let n = (count as usize).min(kbuf.len());
    if !uaccess::user_range(buf, n as u64) {
        return Ret(err(Errno::EFAULT));
    }
    match console::read(&mut kbuf[..n]) {
        Ok(got) => ret(copy_out(&k.space(s), buf, &kbuf[..got]).map(|_| got as i64)),
        Err(Errno::EAGAIN) => {
            // Woken when input comes, the read starts again.
            k.procs.sleep(s, Chan::ConsoleInput, 0, 0);
            NoReturn
        }
        Err(e) => Ret(err(e)),
    }
}

pub fn sys_write(k: &Kernel, s: usize, fd: u64, buf: u64, count: u64) -> Result<i64, Errno> {
    if fd != 1 && fd != 2 {
        return Err(Errno::EBADF);
    }
    let space = k.space(s);
    let mut kbuf = [0u8; 4096];
    let mut done = 0u64;
    while done < count {
        let n = ((count - done) as usize).min(kbuf.len());
        let got = uaccess::copy_in_partial(&space, buf.wrapping_add(done), &mut kbuf[..n]);
        if got > 0 {
            console::write(fd, &kbuf[..got]);
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

pub fn sys_writev(k: &Kernel, s: usize, fd: u64, iov: u64, cnt: u64) -> Result<i64, Errno> {
    if fd != 1 && fd != 2 {
        return Err(Errno::EBADF);
    }
    if cnt > linux_raw_sys::general::UIO_MAXIOV as u64 {
        return Err(Errno::EINVAL);
    }
    let space = k.space(s);
    let mut total = 0i64;
    for i in 0..cnt {
        let base = read_u64(&space, iov + 16 * i)?;
        let len = read_u64(&space, iov + 16 * i + 8)?;
        if len == 0 {
            continue;
        }
        match sys_write(k, s, fd, base, len) {
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

/// lseek and pread64: the console cannot seek; no other fd is open.
pub fn sys_console_seek(fd: u64) -> Result<i64, Errno> {
    Err(if console::is_console_fd(fd) {
        Errno::ESPIPE
    } else {
        Errno::EBADF
    })
}

/// ioctl: no console request is implemented yet.
pub fn sys_ioctl(fd: u64) -> Result<i64, Errno> {
    Err(if console::is_console_fd(fd) {
        Errno::ENOTTY
    } else {
        Errno::EBADF
    })
}

// ---- file status (the console on fds 0-2, files of the image) ------------

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

fn fstat(space: &SpaceRef, fd: u64, st: u64) -> Result<i64, Errno> {
    if !console::is_console_fd(fd) {
        return Err(Errno::EBADF);
    }
    // A terminal-like character device (major 136, a pty), mode 0620.
    let words = stat_words(S_IFCHR as u64 | 0o620, 0, 0x8800 + fd, 3 + fd);
    write_words(space, st, &words)?;
    Ok(0)
}

pub fn sys_fstat(k: &Kernel, s: usize, fd: u64, st: u64) -> Result<i64, Errno> {
    fstat(&k.space(s), fd, st)
}

/// Stats an image file by path.
pub fn sys_stat(k: &Kernel, s: usize, path: u64, st: u64) -> Result<i64, Errno> {
    let space = k.space(s);
    let mut buf = [0u8; 1024];
    let n = copy_in_str(&space, path, &mut buf)?;
    let f = image::lookup(k.image, &buf[..n]).ok_or(Errno::ENOENT)?;
    let words = stat_words(f.mode, f.data.len() as u64, 0, f.ino);
    write_words(&space, st, &words)?;
    Ok(0)
}

pub fn sys_newfstatat(
    k: &Kernel,
    s: usize,
    dirfd: i32,
    path: u64,
    st: u64,
    flags: u64,
) -> Result<i64, Errno> {
    let space = k.space(s);
    let mut first = [0u8; 1];
    copy_in(&space, path, &mut first)?;
    if first[0] == 0 {
        if flags & AT_EMPTY_PATH as u64 == 0 {
            return Err(Errno::ENOENT);
        }
        return fstat(&space, dirfd as u64, st);
    }
    sys_stat(k, s, path, st)
}

/// There are no symbolic links: an existing path is EINVAL, others ENOENT.
pub fn sys_readlink(k: &Kernel, s: usize, path: u64) -> Result<i64, Errno> {
    let mut buf = [0u8; 1024];
    let n = copy_in_str(&k.space(s), path, &mut buf)?;
    match image::lookup(k.image, &buf[..n]) {
        Some(_) => Err(Errno::EINVAL),
        None => Err(Errno::ENOENT),
    }
}

pub fn sys_getcwd(k: &Kernel, s: usize, buf: u64, size: u64) -> Result<i64, Errno> {
    if size < 2 {
        return Err(Errno::ERANGE);
    }
    copy_out(&k.space(s), buf, b"/\0")?;
    Ok(2)
}
