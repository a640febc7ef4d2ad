//! Guest virtual memory as the debugger sees it: a read-only walk of the
//! x86-64 page tables of one address space (4 KiB, 2 MiB and 1 GiB leaves),
//! then copies to or from the guest-physical pages the walk finds.
//!
//! The walk never changes a table (no accessed/dirty bits), so it cannot
//! disturb KVM's shadow of them.

use vkernel_abi::layout;
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

/// Physical-address bits of a page-table entry.
const ADDR_MASK: u64 = 0x000f_ffff_ffff_f000;
const PRESENT: u64 = 1;
const PAGE_SIZE_BIT: u64 = 1 << 7;

/// Where a virtual address lives: its guest-physical address and how many
/// bytes from there to the end of its page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Translation {
    /// Guest-physical address of the byte.
    pub gpa: u64,
    /// Bytes left in the page from `gpa`.
    pub left_in_page: u64,
}

fn entry(mem: &GuestMemoryMmap, table: u64, index: u64) -> Option<u64> {
    mem.read_obj::<u64>(GuestAddress((table & ADDR_MASK) + index * 8))
        .ok()
}

/// Walks the tables rooted at `cr3` for `va`; None if not mapped (or not
/// canonical).
pub fn translate(mem: &GuestMemoryMmap, cr3: u64, va: u64) -> Option<Translation> {
    let canonical = (va as i64) << 16 >> 16 == va as i64;
    if !canonical {
        return None;
    }
    let mut table = cr3 & ADDR_MASK;
    // Levels: PML4 (bits 39..47), PDPT (30..38), PD (21..29), PT (12..20).
    for (level, shift) in [(4, 39u32), (3, 30), (2, 21), (1, 12)] {
        let e = entry(mem, table, (va >> shift) & 0x1ff)?;
        if e & PRESENT == 0 {
            return None;
        }
        let leaf = level == 1 || ((level == 2 || level == 3) && e & PAGE_SIZE_BIT != 0);
        if leaf {
            let size = 1u64 << shift;
            let base = e & ADDR_MASK & !(size - 1);
            let off = va & (size - 1);
            return Some(Translation {
                gpa: base + off,
                left_in_page: size - off,
            });
        }
        table = e & ADDR_MASK;
    }
    None
}

/// Reads guest virtual memory at `va` through `cr3` into `buf`; returns
/// how many bytes could be read (stops at the first unmapped byte).
pub fn read_virt(mem: &GuestMemoryMmap, cr3: u64, va: u64, buf: &mut [u8]) -> usize {
    let mut done = 0usize;
    while done < buf.len() {
        let Some(t) = translate(mem, cr3, va.wrapping_add(done as u64)) else {
            break;
        };
        let n = (buf.len() - done).min(t.left_in_page as usize);
        if mem
            .read_slice(&mut buf[done..done + n], GuestAddress(t.gpa))
            .is_err()
        {
            break;
        }
        done += n;
    }
    done
}

/// Writes `data` to guest virtual memory at `va` through `cr3`. The trap
/// area belongs to the host and is never written. Returns false (and may
/// have written a prefix) if some byte is unmapped.
pub fn write_virt(mem: &GuestMemoryMmap, cr3: u64, va: u64, data: &[u8]) -> bool {
    // Everything from the trap area up is the host's (the upper half is
    // never mapped for the guest).
    let end = va.checked_add(data.len() as u64);
    if end.is_none_or(|end| end > layout::TRAP_AREA_BASE) {
        return false;
    }
    let mut done = 0usize;
    while done < data.len() {
        let Some(t) = translate(mem, cr3, va + done as u64) else {
            return false;
        };
        let n = (data.len() - done).min(t.left_in_page as usize);
        if mem
            .write_slice(&data[done..done + n], GuestAddress(t.gpa))
            .is_err()
        {
            return false;
        }
        done += n;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mem() -> GuestMemoryMmap {
        GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 16 << 20)]).unwrap()
    }

    fn set(mem: &GuestMemoryMmap, table: u64, index: u64, e: u64) {
        mem.write_obj(e, GuestAddress(table + index * 8)).unwrap();
    }

    #[test]
    fn walks_4k_2m_and_1g_leaves() {
        let m = mem();
        let (pml4, pdpt, pd, pt) = (0x1000, 0x2000, 0x3000, 0x4000);
        set(&m, pml4, 0, pdpt | 7);
        set(&m, pdpt, 0, pd | 7);
        set(&m, pd, 1, 0x20_0000 | 0x87); // 2 MiB leaf at 2 MiB
        set(&m, pd, 2, pt | 7);
        set(&m, pt, 3, 0x9000 | 7); // 4 KiB: va 0x403000 -> 0x9000
        set(&m, pdpt, 1, 0x4000_0000 | 0x87); // 1 GiB leaf at 1 GiB

        let t = translate(&m, pml4, 0x21_2345).unwrap();
        assert_eq!(t.gpa, 0x21_2345);
        assert_eq!(t.left_in_page, 0x40_0000 - 0x21_2345);
        let t = translate(&m, pml4, 0x40_3010).unwrap();
        assert_eq!(t.gpa, 0x9010);
        assert_eq!(t.left_in_page, 0xff0);
        let t = translate(&m, pml4, 0x4000_1000).unwrap();
        assert_eq!(t.gpa, 0x4000_1000);
        assert_eq!(translate(&m, pml4, 0x40_4000), None); // PT entry absent
        assert_eq!(translate(&m, pml4, 0x8000_0000_0000), None); // not canonical
    }

    #[test]
    fn reads_and_writes_across_pages_and_stop_at_holes() {
        let m = mem();
        let (pml4, pdpt, pd, pt) = (0x1000, 0x2000, 0x3000, 0x4000);
        set(&m, pml4, 0, pdpt | 7);
        set(&m, pdpt, 0, pd | 7);
        set(&m, pd, 0, pt | 7);
        set(&m, pt, 1, 0xa000 | 7); // va 0x1000 -> 0xa000
        set(&m, pt, 2, 0x6000 | 7); // va 0x2000 -> 0x6000 (not contiguous)
        assert!(!write_virt(&m, pml4, 0xffe, &[1, 2, 3, 4])); // page 0 unmapped
        let mut b = [0u8; 4];
        assert_eq!(read_virt(&m, pml4, 0xffe, &mut b), 0); // page 0 unmapped
        assert_eq!(read_virt(&m, pml4, 0x1ffe, &mut b), 4);
        assert_eq!(b, [0, 0, 0, 0]);
        assert!(write_virt(&m, pml4, 0x1ffe, &[1, 2, 3, 4]));
        assert_eq!(m.read_obj::<u16>(GuestAddress(0xaffe)).unwrap(), 0x0201);
        assert_eq!(m.read_obj::<u16>(GuestAddress(0x6000)).unwrap(), 0x0403);
        let mut b = [0u8; 8];
        assert_eq!(read_virt(&m, pml4, 0x2ffc, &mut b), 4); // stops at the hole
        assert!(!write_virt(&m, pml4, layout::TRAP_AREA_BASE, &[0]));
    }
}
