//! Memory system calls: brk, mmap (anonymous, shared anonymous, and of
//! tmpfs files, private or shared), munmap, mprotect, msync, madvise:
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
    let space = k.space(s);
    let mut p = space.borrow_mut();
    match advice {
        0..=2 => Ok(0),
        3 => p.prefault(addr, len).map(|_| 0),
        // DONTNEED and FREE: the pages read as zero again.
        4 | 8 => p.discard(addr, len).map(|_| 0),
        // MERGEABLE, UNMERGEABLE, HUGEPAGE, NOHUGEPAGE, DONTDUMP, DODUMP:
        // hints with no effect on what the program sees.
        12..=17 => Ok(0),
        _ => Err(Errno::EINVAL),
    }
}
