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
    let mut done = 0usize;
    while done < buf.len() {
        // Read up to the end of the page, so a string ending just before an
        // unmapped page is still readable.
        let a = addr.checked_add(done as u64).ok_or(Errno::EFAULT)?;
        let in_page = (4096 - (a & 4095)) as usize;
        let chunk = in_page.min(buf.len() - done);
        let got = copy_in_partial(space, a, &mut buf[done..done + chunk]);
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
