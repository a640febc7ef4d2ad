//! Memory system calls: brk, anonymous private mmap, munmap, mprotect,
//! madvise: Linux's checks here, the work in the process's
//! [`AddressSpace`](crate::mm::AddressSpace).

use crate::kernel::Kernel;
use crate::mm::uaccess;
use crate::proc::exec;
use crate::syscall::log_refused;
use vkernel_abi::layout::{PAGE_SIZE, VM_MAX_USER_ADDRESS, VM_MIN_USER_ADDRESS};
use vkernel_abi::mman::*;
use vkernel_abi::Errno;

pub fn page_up(x: u64) -> Option<u64> {
    Some(x.checked_add(PAGE_SIZE - 1)? & !(PAGE_SIZE - 1))
}

/// brk(addr): grows or shrinks the break; returns the (new) break, or the
/// old one when the request cannot be met, as Linux does.
pub fn sys_brk(k: &mut Kernel, s: usize, addr: u64) -> u64 {
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
        if !p.is_free(old_top, new_top - old_top) {
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

pub fn sys_mmap(k: &mut Kernel, s: usize, a: [u64; 6]) -> Result<i64, Errno> {
    const MAP_TYPE: u64 = 0x0f;
    const MAP_HUGETLB: u64 = 0x40000;
    let [addr, len, prot, flags, fd, off] = a;
    match flags & MAP_TYPE {
        1 | 3 => {
            // Shared mappings would need pages shared across fork; not yet.
            log_refused(k, s, "mmap", format_args!("MAP_SHARED"));
            return Err(Errno::EINVAL);
        }
        2 => {}
        _ => return Err(Errno::EINVAL),
    }
    if len == 0 || off % PAGE_SIZE != 0 || prot & !PROT_MASK != 0 {
        return Err(Errno::EINVAL);
    }
    if flags & MAP_ANON == 0 {
        return Err(if fd as i32 >= 0 && fd <= 2 {
            Errno::ENODEV
        } else {
            Errno::EBADF
        });
    }
    if flags & MAP_HUGETLB != 0 {
        return Err(Errno::ENOMEM);
    }
    let len = page_up(len).ok_or(Errno::ENOMEM)?;
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
    p.map_anon(at, len, prot)
        .map_err(|e| if e == Errno::EINVAL { e } else { Errno::ENOMEM })?;
    Ok(at as i64)
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
