//! Memory system calls: brk, mmap (anonymous, shared anonymous, and of
//! tmpfs files, private or shared), mremap, munmap, mprotect, msync,
//! madvise:
//! Linux's checks here, the work in the process's
//! [`AddressSpace`](crate::mm::AddressSpace).

use super::{fd, log_refused};
use crate::fs::file::{Object, OpenFile};
use crate::fs::tmpfs;
use crate::kernel::Kernel;
use crate::mm::{uaccess, FileMap};
use crate::proc::exec;
use linux_raw_sys::general as linux;
use vkernel_abi::layout::{PAGE_SIZE, VM_MAX_USER_ADDRESS, VM_MIN_USER_ADDRESS};
use vkernel_abi::mman::*;
use vkernel_abi::Errno;

pub fn page_up(x: u64) -> Option<u64> {
    Some(x.checked_add(PAGE_SIZE - 1)? & !(PAGE_SIZE - 1))
}

/// Linux's heuristic overcommit (`vm.overcommit_memory` 0, its default):
/// memory is charged when touched, not when mapped, and only a private
/// writable mapping (without `MAP_NORESERVE`) obviously larger than all of
/// memory (`MemTotal`; there is no swap) is refused. `PROT_NONE`
/// reservations and `MAP_NORESERVE` mappings never are.
fn obviously_overcommits(k: &Kernel, len: u64) -> bool {
    len > k.mm.total_bytes()
}

/// brk(addr): grows or shrinks the break; returns the (new) break, or the
/// old one when the request cannot be met, as Linux does.
pub fn sys_brk(k: &mut Kernel, s: usize, addr: u64) -> u64 {
    let too_big = |from: u64| {
        addr.checked_sub(from)
            .is_some_and(|n| obviously_overcommits(k, n))
    };
    let space = k.space(s);
    let p = &mut *space.borrow_mut();
    let cur = p.brk;
    if addr < p.brk_start || addr >= p.mmap_floor {
        return cur;
    }
    let (Some(old_top), Some(new_top)) = (page_up(cur), page_up(addr)) else {
        return cur;
    };
    if new_top > old_top {
        // Linux grows the break only into free addresses.
        if !p.is_free(old_top, new_top - old_top) || too_big(old_top) {
            return cur;
        }
        if p.map_anon(old_top, new_top - old_top, PROT_READ | PROT_WRITE)
            .is_err()
        {
            return cur;
        }
    } else if new_top < old_top && p.unmap(new_top, old_top - new_top).is_err() {
        return cur;
    }
    p.brk = addr;
    addr
}

/// mmap flags Linux honours for every file (`LEGACY_MAP_MASK`): with
/// `MAP_SHARED_VALIDATE` any other is `EOPNOTSUPP`, with `MAP_SHARED` it is
/// ignored.
const LEGACY_MAP_MASK: u64 = (linux::MAP_SHARED
    | linux::MAP_PRIVATE
    | linux::MAP_FIXED
    | linux::MAP_ANONYMOUS
    | linux::MAP_DENYWRITE
    | linux::MAP_EXECUTABLE
    | linux::MAP_UNINITIALIZED
    | linux::MAP_GROWSDOWN
    | linux::MAP_LOCKED
    | linux::MAP_NORESERVE
    | linux::MAP_POPULATE
    | linux::MAP_NONBLOCK
    | linux::MAP_STACK
    | linux::MAP_HUGETLB
    | linux::MAP_32BIT
    | 0x80 // MAP_ABOVE4G
    | (linux::MAP_HUGE_MASK << linux::MAP_HUGE_SHIFT)) as u64;
const MAP_TYPE: u64 = 0x0f;
const MAP_SHARED_VALIDATE: u64 = 0x03;

/// What an mmap maps.
enum What {
    /// Private demand-zero memory (`stack`: `MAP_STACK`).
    Anon { stack: bool },
    /// A file's pages (or shared anonymous memory's object).
    File(FileMap),
}

/// Linux's checks of a file mapping (`do_mmap`'s), in its order; `None`
/// when the file maps as anonymous memory (a private `/dev/zero`). A
/// shared `/dev/zero` is shared anonymous memory.
fn file_mapping(
    k: &Kernel,
    s: usize,
    f: &OpenFile,
    len: u64,
    prot: u64,
    flags: u64,
    off: u64,
) -> Result<What, Errno> {
    // Linux's file_mmap_ok: the end must fit a file offset.
    let max = i64::MAX as u64;
    if len > max || off / PAGE_SIZE > (max - len) / PAGE_SIZE {
        return Err(Errno::EOVERFLOW);
    }
    let shared = match flags & MAP_TYPE {
        t @ (MAP_SHARED | MAP_SHARED_VALIDATE) => {
            if t == MAP_SHARED_VALIDATE && flags & !LEGACY_MAP_MASK != 0 {
                return Err(Errno::EOPNOTSUPP);
            }
            if prot & PROT_WRITE != 0 && !f.writable() {
                return Err(Errno::EACCES);
            }
            true
        }
        MAP_PRIVATE => false,
        _ => return Err(Errno::EINVAL),
    };
    if !f.readable() {
        return Err(Errno::EACCES);
    }
    if f.device().is_some_and(|d| d.maps_zero()) {
        return if shared {
            shm(k, len)
        } else {
            Ok(What::Anon {
                stack: flags & linux::MAP_STACK as u64 != 0,
            })
        };
    }
    let object = match &f.object {
        Object::Inode(i) => i.pager(),
        Object::Device { .. } => None,
    }
    .ok_or(Errno::ENODEV)?;
    // A file whose shared pages do not reach it (a writable host volume's:
    // no writeback) maps shared only read-only, and never becomes
    // writable (mprotect: EACCES, as for a file opened read-only).
    let shared_writes = object.shared_writable();
    if shared && prot & PROT_WRITE != 0 && !shared_writes {
        log_refused(
            k,
            s,
            "mmap",
            format_args!(
                "a writable MAP_SHARED mapping of {} (a writable host volume's file: no writeback to the host)",
                alloc::string::String::from_utf8_lossy(&f.path)
            ),
        );
        return Err(Errno::ENODEV);
    }
    Ok(What::File(FileMap {
        object,
        pgoff: off / PAGE_SIZE,
        shared,
        // A private mapping may always be made writable: its writes are its
        // own.
        may_write: !shared || (f.writable() && shared_writes),
        name: f.path.as_slice().into(),
    }))
}

/// Shared anonymous memory of `len` bytes: a new unlinked tmpfs file,
/// shared across fork with every process that inherits the mapping.
fn shm(k: &Kernel, len: u64) -> Result<What, Errno> {
    Ok(What::File(FileMap {
        object: tmpfs::new_shm(&k.shm, len)?,
        pgoff: 0,
        shared: true,
        may_write: true,
        name: b"/dev/zero".as_slice().into(),
    }))
}

pub fn sys_mmap(k: &mut Kernel, s: usize, a: [u64; 6]) -> Result<i64, Errno> {
    let [addr, len, prot, flags, fd, off] = a;
    // Linux's order: the offset (x86's sys_mmap), the descriptor, then
    // do_mmap's checks.
    if off % PAGE_SIZE != 0 {
        return Err(Errno::EINVAL);
    }
    let file = if flags & MAP_ANON == 0 {
        let f = fd::file(k, s, fd)?;
        if f.flags.get() & linux::O_PATH != 0 {
            return Err(Errno::EBADF);
        }
        if flags & linux::MAP_HUGETLB as u64 != 0 {
            return Err(Errno::EINVAL);
        }
        Some(f)
    } else {
        None
    };
    if len == 0 || prot & !PROT_MASK != 0 {
        return Err(Errno::EINVAL);
    }
    let len = page_up(len).ok_or(Errno::ENOMEM)?;
    let what = match &file {
        Some(f) => file_mapping(k, s, f, len, prot, flags, off)?,
        None => {
            if flags & linux::MAP_HUGETLB as u64 != 0 {
                return Err(Errno::ENOMEM);
            }
            match flags & MAP_TYPE {
                MAP_SHARED => shm(k, len)?,
                MAP_PRIVATE => What::Anon {
                    stack: flags & linux::MAP_STACK as u64 != 0,
                },
                _ => return Err(Errno::EINVAL),
            }
        }
    };
    let private = match &what {
        What::Anon { .. } => true,
        What::File(f) => !f.shared,
    };
    if private
        && prot & PROT_WRITE != 0
        && flags & linux::MAP_NORESERVE as u64 == 0
        && obviously_overcommits(k, len)
    {
        return Err(Errno::ENOMEM);
    }
    let space = k.space(s);
    let p = &mut *space.borrow_mut();
    let at = if flags & MAP_FIXED != 0 {
        if addr % PAGE_SIZE != 0 {
            return Err(Errno::EINVAL);
        }
        if addr < VM_MIN_USER_ADDRESS
            || addr
                .checked_add(len)
                .is_none_or(|e| e > VM_MAX_USER_ADDRESS)
        {
            return Err(Errno::ENOMEM);
        }
        addr
    } else {
        // The hint when its range is free, else the highest free range
        // below the stack's area, as Linux places them.
        let hint_ok = addr % PAGE_SIZE == 0
            && addr >= p.mmap_floor
            && addr.checked_add(len).is_some_and(|e| e <= exec::MMAP_TOP);
        if hint_ok && p.is_free(addr, len) {
            addr
        } else {
            p.find_free(exec::MMAP_TOP, p.mmap_floor, len)
                .ok_or(Errno::ENOMEM)?
        }
    };
    match what {
        What::Anon { stack } => p.map_anon_as(at, len, prot, stack),
        What::File(f) => p.map_file(at, len, prot, f),
    }
    .map_err(|e| if e == Errno::EINVAL { e } else { Errno::ENOMEM })?;
    Ok(at as i64)
}

/// mremap(old, old_len, new_len, flags, new_addr), as Linux's (mm/mremap.c,
/// its checks in its order): shrinking unmaps the tail; growing extends
/// the mapping in place when the pages after it are free, else moves it
/// (`MREMAP_MAYMOVE`; `ENOMEM` without), to `new_addr` with
/// `MREMAP_FIXED` (replacing what is there); `MREMAP_DONTUNMAP` moves and
/// leaves the old range mapped, empty. An `old_len` of 0 maps a shared
/// mapping's pages a second time. The old range must lie in one mapping
/// (`EFAULT`). A move copies private memory (see `AddressSpace::remap`).
pub fn sys_mremap(k: &mut Kernel, s: usize, a: [u64; 5]) -> Result<i64, Errno> {
    const MAYMOVE: u64 = linux::MREMAP_MAYMOVE as u64;
    const FIXED: u64 = linux::MREMAP_FIXED as u64;
    const DONTUNMAP: u64 = linux::MREMAP_DONTUNMAP as u64;
    let [old, old_len, new_len, flags, new_addr] = a;
    if flags & !(MAYMOVE | FIXED | DONTUNMAP) != 0
        || (flags & FIXED != 0 && flags & MAYMOVE == 0)
        || (flags & DONTUNMAP != 0 && (flags & MAYMOVE == 0 || old_len != new_len))
        || !old.is_multiple_of(PAGE_SIZE)
    {
        return Err(Errno::EINVAL);
    }
    // PAGE_ALIGN, wrapping as Linux's.
    let align = |x: u64| x.wrapping_add(PAGE_SIZE - 1) & !(PAGE_SIZE - 1);
    let (old_len, new_len) = (align(old_len), align(new_len));
    if new_len == 0 {
        return Err(Errno::EINVAL);
    }
    let space = k.space(s);
    let p = &mut *space.borrow_mut();
    // Newer Linux looks the old address up first, for every kind of call
    // (a shrink included) but after the new address's checks.
    let mapped = p.regions().iter().any(|r| r.start <= old && old < r.end);
    if flags & (FIXED | DONTUNMAP) != 0 {
        // mremap_to.
        if !new_addr.is_multiple_of(PAGE_SIZE) {
            return Err(Errno::EINVAL);
        }
        if new_len > VM_MAX_USER_ADDRESS || new_addr > VM_MAX_USER_ADDRESS - new_len {
            return Err(Errno::EINVAL);
        }
        if old.wrapping_add(old_len) > new_addr && new_addr + new_len > old {
            return Err(Errno::EINVAL);
        }
        if !mapped {
            return Err(Errno::EFAULT);
        }
        if flags & FIXED != 0 {
            // Below what a process may map: as mmap's MAP_FIXED there.
            if new_addr < VM_MIN_USER_ADDRESS {
                return Err(Errno::ENOMEM);
            }
            p.unmap(new_addr, new_len)?;
        }
        let mut old_len = old_len;
        if old_len > new_len {
            unmap_user(
                p,
                old.checked_add(new_len).ok_or(Errno::EINVAL)?,
                old_len - new_len,
            )?;
            old_len = new_len;
        }
        check_resize(k, p, old, old_len, new_len)?;
        let at = if flags & FIXED != 0 {
            new_addr
        } else {
            place(p, new_addr, new_len)?
        };
        return move_mapping(p, old, old_len, at, new_len, flags & DONTUNMAP != 0);
    }
    if !mapped {
        return Err(Errno::EFAULT);
    }
    if old_len >= new_len {
        // Shrinking (or the same): only the tail goes, mapped or not.
        if old_len != new_len {
            unmap_user(
                p,
                old.checked_add(new_len).ok_or(Errno::EINVAL)?,
                old_len - new_len,
            )?;
        }
        return Ok(old as i64);
    }
    let end = check_resize(k, p, old, old_len, new_len)?;
    // The range reaches its mapping's end and the pages after are free:
    // the mapping grows where it is.
    if old_len != 0 && old + old_len == end {
        let grown_end = old
            .checked_add(new_len)
            .filter(|&e| e <= VM_MAX_USER_ADDRESS);
        if let Some(grown_end) = grown_end {
            if p.is_free(end, grown_end - end) {
                grow_in_place(p, old, end, grown_end)?;
                return Ok(old as i64);
            }
        }
    }
    if flags & MAYMOVE == 0 {
        return Err(Errno::ENOMEM);
    }
    let at = place(p, 0, new_len)?;
    move_mapping(p, old, old_len, at, new_len, false)
}

/// Unmaps `[addr, addr + len)` of mremap's tail: `EINVAL` outside user
/// memory, as munmap.
fn unmap_user(p: &mut crate::mm::AddressSpace, addr: u64, len: u64) -> Result<(), Errno> {
    if addr < VM_MIN_USER_ADDRESS || !uaccess::user_range(addr, len) {
        return Err(Errno::EINVAL);
    }
    p.unmap(addr, len)
}

/// Linux's vma_to_resize: the old range must lie in one mapping
/// (`EFAULT`); a private one cannot be duplicated (`old_len` 0:
/// `EINVAL`); growing a private writable one past all of memory is
/// `ENOMEM` (see [`obviously_overcommits`]). The mapping's end.
fn check_resize(
    k: &Kernel,
    p: &crate::mm::AddressSpace,
    old: u64,
    old_len: u64,
    new_len: u64,
) -> Result<u64, Errno> {
    let r = p
        .regions()
        .iter()
        .find(|r| r.start <= old && old < r.end)
        .ok_or(Errno::EFAULT)?;
    if old_len > r.end - old {
        return Err(Errno::EFAULT);
    }
    let shared = r.file().is_some_and(|f| f.shared);
    // Linux refuses to duplicate a private mapping.
    if old_len == 0 && !shared {
        return Err(Errno::EINVAL);
    }
    if new_len > old_len && !shared && r.prot & PROT_WRITE != 0 && obviously_overcommits(k, new_len)
    {
        return Err(Errno::ENOMEM);
    }
    Ok(r.end)
}

/// Where a moved mapping goes: the hint when its range is free, else the
/// highest free range below the stack's area, as mmap places.
fn place(p: &crate::mm::AddressSpace, hint: u64, len: u64) -> Result<u64, Errno> {
    let hint_ok = hint != 0
        && hint >= p.mmap_floor
        && hint.checked_add(len).is_some_and(|e| e <= exec::MMAP_TOP);
    if hint_ok && p.is_free(hint, len) {
        return Ok(hint);
    }
    p.find_free(exec::MMAP_TOP, p.mmap_floor, len)
        .ok_or(Errno::ENOMEM)
}

/// The mapping holding `[old, end)` grows to `grown_end`: the same
/// protection and backing (a file's next pages).
fn grow_in_place(
    p: &mut crate::mm::AddressSpace,
    old: u64,
    end: u64,
    grown_end: u64,
) -> Result<(), Errno> {
    let r = p
        .regions()
        .iter()
        .find(|r| r.start <= old && old < r.end)
        .cloned();
    let r = r.ok_or(Errno::EFAULT)?;
    let len = grown_end - end;
    match r.backing {
        crate::mm::regions::Backing::Anon { stack } => p.map_anon_as(end, len, r.prot, stack),
        crate::mm::regions::Backing::File(mut f) => {
            f.pgoff += (end - r.start) / PAGE_SIZE;
            p.map_file(end, len, r.prot, f)
        }
    }
    .map_err(|e| if e == Errno::EINVAL { e } else { Errno::ENOMEM })
}

fn move_mapping(
    p: &mut crate::mm::AddressSpace,
    old: u64,
    old_len: u64,
    at: u64,
    new_len: u64,
    keep_old: bool,
) -> Result<i64, Errno> {
    p.remap(old, old_len, at, new_len, keep_old)?;
    Ok(at as i64)
}

/// msync(addr, len, flags): tmpfs pages are the file, so there is nothing
/// to write back; Linux's checks, and `ENOMEM` for a range not wholly
/// mapped.
pub fn sys_msync(k: &Kernel, s: usize, addr: u64, len: u64, flags: u64) -> Result<i64, Errno> {
    const MS_ASYNC: u64 = linux::MS_ASYNC as u64;
    const MS_SYNC: u64 = linux::MS_SYNC as u64;
    const MS_INVALIDATE: u64 = linux::MS_INVALIDATE as u64;
    if flags & !(MS_ASYNC | MS_SYNC | MS_INVALIDATE) != 0
        || !addr.is_multiple_of(PAGE_SIZE)
        || (flags & MS_ASYNC != 0 && flags & MS_SYNC != 0)
    {
        return Err(Errno::EINVAL);
    }
    let len = page_up(len).ok_or(Errno::ENOMEM)?;
    if addr.checked_add(len).is_none() {
        return Err(Errno::ENOMEM);
    }
    if len == 0 {
        return Ok(0);
    }
    if !k.space(s).borrow().covers(addr, len) {
        return Err(Errno::ENOMEM);
    }
    Ok(0)
}

pub fn sys_munmap(k: &Kernel, s: usize, addr: u64, len: u64) -> Result<i64, Errno> {
    if !addr.is_multiple_of(PAGE_SIZE) || len == 0 {
        return Err(Errno::EINVAL);
    }
    let len = page_up(len).ok_or(Errno::EINVAL)?;
    if addr < VM_MIN_USER_ADDRESS || !uaccess::user_range(addr, len) {
        return Err(Errno::EINVAL);
    }
    k.space(s).borrow_mut().unmap(addr, len).map(|_| 0)
}

pub fn sys_mprotect(k: &Kernel, s: usize, addr: u64, len: u64, prot: u64) -> Result<i64, Errno> {
    if !addr.is_multiple_of(PAGE_SIZE) || prot & !PROT_MASK != 0 {
        return Err(Errno::EINVAL);
    }
    if len == 0 {
        return Ok(0);
    }
    let len = page_up(len).ok_or(Errno::ENOMEM)?;
    if addr < VM_MIN_USER_ADDRESS || !uaccess::user_range(addr, len) {
        return Err(Errno::ENOMEM);
    }
    k.space(s).borrow_mut().protect(addr, len, prot).map(|_| 0)
}

pub fn sys_madvise(k: &Kernel, s: usize, addr: u64, len: u64, advice: u64) -> Result<i64, Errno> {
    if !addr.is_multiple_of(PAGE_SIZE) {
        return Err(Errno::EINVAL);
    }
    if len == 0 {
        return Ok(0);
    }
    let len = page_up(len).ok_or(Errno::EINVAL)?;
    if addr < VM_MIN_USER_ADDRESS || !uaccess::user_range(addr, len) {
        return Err(Errno::EINVAL);
    }
    // NORMAL, RANDOM, SEQUENTIAL; MERGEABLE, UNMERGEABLE, HUGEPAGE,
    // NOHUGEPAGE, DONTDUMP, DODUMP: hints with no effect on what the
    // program sees.
    if !matches!(advice, 0..=4 | 8 | 12..=17) {
        return Err(Errno::EINVAL);
    }
    let space = k.space(s);
    let mut p = space.borrow_mut();
    // As Linux: the advice applies to what is mapped, and a hole in the
    // range is ENOMEM afterwards.
    let hole = !p.covers(addr, len);
    match advice {
        3 => p.prefault(addr, len, false)?,
        // DONTNEED and FREE: the pages read as zero again.
        4 | 8 => p.discard(addr, len)?,
        _ => {}
    }
    if hole {
        return Err(Errno::ENOMEM);
    }
    Ok(0)
}
