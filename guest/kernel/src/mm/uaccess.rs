//! Copying to and from process memory. The kernel never dereferences a
//! user pointer: it copies through the process's address space (the
//! host's pread/pwrite, or the guest pmap's tables). A short count means
//! the range reached a page the process has not mapped: that is EFAULT,
//! never a kernel crash.

use super::SpaceRef;
use vkernel_abi::layout::VM_MAX_USER_ADDRESS;
use vkernel_abi::Errno;

/// Whether `[addr, addr + len)` lies inside the user half.
pub fn user_range(addr: u64, len: u64) -> bool {
    addr.checked_add(len)
        .is_some_and(|end| end <= VM_MAX_USER_ADDRESS)
}

/// Copies `buf.len()` bytes from process address `addr`.
pub fn copy_in(space: &SpaceRef, addr: u64, buf: &mut [u8]) -> Result<(), Errno> {
    if !user_range(addr, buf.len() as u64) {
        return Err(Errno::EFAULT);
    }
    if buf.is_empty() {
        return Ok(());
    }
    if space.borrow_mut().read(addr, buf) == buf.len() {
        Ok(())
    } else {
        Err(Errno::EFAULT)
    }
}

/// Copies up to `buf.len()` bytes, stopping at the first unmapped page;
/// returns how many were copied.
pub fn copy_in_partial(space: &SpaceRef, addr: u64, buf: &mut [u8]) -> usize {
    if !user_range(addr, buf.len() as u64) {
        return 0;
    }
    space.borrow_mut().read(addr, buf)
}

/// Copies `buf` to process address `addr`.
pub fn copy_out(space: &SpaceRef, addr: u64, buf: &[u8]) -> Result<(), Errno> {
    if !user_range(addr, buf.len() as u64) {
        return Err(Errno::EFAULT);
    }
    if buf.is_empty() {
        return Ok(());
    }
    if space.borrow_mut().write(addr, buf) == buf.len() {
        Ok(())
    } else {
        Err(Errno::EFAULT)
    }
}

/// Copies `buf` to process address `addr` as [`copy_out`] does, or posts
/// the copy to go with the next RUN where that saves an exit
/// (`guestlib::batch`); a posted copy that fails is reported under `tag`
/// (a [`crate::proc::posted::Tag`]) before the process runs.
pub fn copy_out_posted(space: &SpaceRef, addr: u64, buf: &[u8], tag: u64) -> Result<(), Errno> {
    if !user_range(addr, buf.len() as u64) {
        return Err(Errno::EFAULT);
    }
    if buf.is_empty() || space.borrow_mut().post_write(addr, buf, tag) {
        return Ok(());
    }
    copy_out(space, addr, buf)
}

/// Reads a little-endian u64.
pub fn read_u64(space: &SpaceRef, addr: u64) -> Result<u64, Errno> {
    let mut b = [0u8; 8];
    copy_in(space, addr, &mut b)?;
    Ok(u64::from_le_bytes(b))
}

/// Writes a little-endian u64.
pub fn write_u64(space: &SpaceRef, addr: u64, v: u64) -> Result<(), Errno> {
    copy_out(space, addr, &v.to_le_bytes())
}

/// Writes several u64 words at once (a struct of words).
pub fn write_words(space: &SpaceRef, addr: u64, words: &[u64]) -> Result<(), Errno> {
    let (b, n) = words_le(words)?;
    copy_out(space, addr, &b[..n])
}

/// [`write_words`] as [`copy_out_posted`] writes.
pub fn write_words_posted(
    space: &SpaceRef,
    addr: u64,
    words: &[u64],
    tag: u64,
) -> Result<(), Errno> {
    let (b, n) = words_le(words)?;
    copy_out_posted(space, addr, &b[..n], tag)
}

/// `words` as little-endian bytes (at most 32 words), and their length.
fn words_le(words: &[u64]) -> Result<([u8; 256], usize), Errno> {
    let mut b = [0u8; 256];
    let n = words.len() * 8;
    if n > b.len() {
        return Err(Errno::EINVAL);
    }
    for (i, w) in words.iter().enumerate() {
        b[i * 8..i * 8 + 8].copy_from_slice(&w.to_le_bytes());
    }
    Ok((b, n))
}

/// Copies a NUL-terminated string from `addr` into `buf`; returns its
/// length (without the NUL). EFAULT if unreadable, ENAMETOOLONG if it does
/// not fit in `buf`.
pub fn copy_in_str(space: &SpaceRef, addr: u64, buf: &mut [u8]) -> Result<usize, Errno> {
    str_through(addr, buf, |a, b| copy_in_partial(space, a, b))
}

/// Copies the NUL-terminated string at `addr` into `buf` through `read`
/// (which copies what it can of a range and says how much), a page at a
/// time, so a string ending just before an unmapped page is still
/// readable: its length; EFAULT if unreadable, ENAMETOOLONG if it does
/// not fit in `buf`.
fn str_through(
    addr: u64,
    buf: &mut [u8],
    mut read: impl FnMut(u64, &mut [u8]) -> usize,
) -> Result<usize, Errno> {
    let mut done = 0usize;
    while done < buf.len() {
        let a = addr.checked_add(done as u64).ok_or(Errno::EFAULT)?;
        let in_page = (4096 - (a & 4095)) as usize;
        let chunk = in_page.min(buf.len() - done);
        let got = read(a, &mut buf[done..done + chunk]);
        if let Some(nul) = buf[done..done + got].iter().position(|&b| b == 0) {
            return Ok(done + nul);
        }
        if got < chunk {
            return Err(Errno::EFAULT);
        }
        done += chunk;
    }
    Err(Errno::ENAMETOOLONG)
}

/// Pages [`UserPages`] keeps at most (64 KiB of kernel heap).
const USER_PAGES_KEPT: usize = 16;

/// Reads of one process's memory through whole pages kept for the length
/// of one system call. `execve` reads its argument and environment
/// strings twice (to measure, then to copy), each one and each pointer a
/// copy of its own; they lie on a few pages of the caller's heap and
/// stack, so on `pmap=host` one pread per page replaces one per read
/// (bash's exec: ~50 preads, an exit each, down to a handful).
///
/// Only while the process cannot run: a caller keeps it within one
/// system call that does not sleep in between, so the pages cannot
/// change under it (no task of the address space runs meanwhile).
pub struct UserPages<'a> {
    space: &'a SpaceRef,
    /// (page address, bytes of it readable, its bytes).
    pages: alloc::vec::Vec<(u64, usize, alloc::vec::Vec<u8>)>,
    /// The slot the next miss replaces once all are taken.
    next: usize,
}

impl<'a> UserPages<'a> {
    /// Nothing kept yet.
    pub fn new(space: &'a SpaceRef) -> Self {
        UserPages {
            space,
            pages: alloc::vec::Vec::new(),
            next: 0,
        }
    }

    /// The kept copy of the page at `page` (aligned), read on a miss:
    /// `(bytes readable from its start, index in `pages`)`, or `None`
    /// where the kernel heap has no room for a copy (the caller reads
    /// directly then).
    fn page(&mut self, page: u64) -> Option<(usize, usize)> {
        if let Some(i) = self.pages.iter().position(|p| p.0 == page) {
            return Some((self.pages[i].1, i));
        }
        let i = if self.pages.len() < USER_PAGES_KEPT {
            self.pages.try_reserve(1).ok()?;
            let mut data = alloc::vec::Vec::new();
            data.try_reserve_exact(4096).ok()?;
            data.resize(4096, 0);
            self.pages.push((u64::MAX, 0, data));
            self.pages.len() - 1
        } else {
            let i = self.next;
            self.next = (self.next + 1) % USER_PAGES_KEPT;
            i
        };
        let slot = &mut self.pages[i];
        // A page is mapped whole or not at all, but a file page past the
        // end of its file reads short: keep what was read.
        let valid = copy_in_partial(self.space, page, &mut slot.2[..]);
        slot.0 = page;
        slot.1 = valid;
        Some((valid, i))
    }

    /// Copies up to `buf.len()` bytes from `addr`, stopping at the first
    /// byte the process cannot read; how many were copied.
    pub fn read_partial(&mut self, addr: u64, buf: &mut [u8]) -> usize {
        let mut done = 0usize;
        while done < buf.len() {
            let Some(a) = addr.checked_add(done as u64).filter(|&a| user_range(a, 1)) else {
                break;
            };
            let (page, off) = (a & !4095, (a & 4095) as usize);
            let Some((valid, i)) = self.page(page) else {
                return done + copy_in_partial(self.space, a, &mut buf[done..]);
            };
            if off >= valid {
                break;
            }
            let n = (valid - off).min(buf.len() - done);
            buf[done..done + n].copy_from_slice(&self.pages[i].2[off..off + n]);
            done += n;
            if off + n < 4096 && done < buf.len() {
                break; // the page reads short: nothing after it
            }
        }
        done
    }

    /// Reads a little-endian u64 (EFAULT if unreadable).
    pub fn read_u64(&mut self, addr: u64) -> Result<u64, Errno> {
        let mut b = [0u8; 8];
        if self.read_partial(addr, &mut b) != 8 {
            return Err(Errno::EFAULT);
        }
        Ok(u64::from_le_bytes(b))
    }

    /// The length of the NUL-terminated string at `addr` (without the
    /// NUL), looked at up to `max` bytes: `ENAMETOOLONG` when no NUL comes
    /// within them, `EFAULT` when the string runs into memory the process
    /// cannot read.
    pub fn str_len(&mut self, addr: u64, max: usize) -> Result<usize, Errno> {
        let mut len = 0usize;
        let mut chunk = [0u8; 256];
        while len < max {
            let a = addr.checked_add(len as u64).ok_or(Errno::EFAULT)?;
            let want = chunk.len().min(max - len);
            let got = self.read_partial(a, &mut chunk[..want]);
            if let Some(nul) = chunk[..got].iter().position(|&b| b == 0) {
                return Ok(len + nul);
            }
            if got < want {
                return Err(Errno::EFAULT);
            }
            len += got;
        }
        Err(Errno::ENAMETOOLONG)
    }

    /// Copies the NUL-terminated string at `addr` into `buf` (as
    /// [`copy_in_str`]): its length; `EFAULT` if unreadable,
    /// `ENAMETOOLONG` if it does not fit in `buf` with its NUL.
    pub fn read_str(&mut self, addr: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        str_through(addr, buf, |a, b| self.read_partial(a, b))
    }
}
