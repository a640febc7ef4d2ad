//! Test helpers: a registry over plain memory with a trap area, and an
//! independent x86-64 page-table walker that checks the tables are what a
//! vCPU expects.
#![allow(dead_code)]

use vkernel_abi::layout::{PAGE_SIZE, POOL_BASE, TRAP_AREA_BASE};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};
use vmspace::VmspaceRegistry;

/// Guest kernel RAM in the tests: 1 MiB.
pub const KMEM: u64 = 1 << 20;

pub const P: u64 = 1;
pub const RW: u64 = 2;
pub const US: u64 = 4;
pub const A: u64 = 0x20;
pub const D: u64 = 0x40;
pub const PS: u64 = 0x80;
pub const NX: u64 = 1 << 63;
pub const ADDR: u64 = 0x000f_ffff_ffff_f000;

/// A registry with `pool_pages` pool pages, kernel RAM filled with a
/// pattern (byte at gpa g = g*7 mod 251), and a one-page trap area mapped
/// at TRAP_AREA_BASE in a host-built tree whose slot-255 entry is shared.
pub fn setup(pool_pages: u64) -> (GuestMemoryMmap, VmspaceRegistry) {
    let mem = GuestMemoryMmap::from_ranges(&[
        (GuestAddress(0), KMEM as usize),
        (GuestAddress(POOL_BASE), (pool_pages * PAGE_SIZE) as usize),
    ])
    .unwrap();
    let pattern: Vec<u8> = (0..KMEM).map(|g| (g * 7 % 251) as u8).collect();
    mem.write_slice(&pattern, GuestAddress(0)).unwrap();
    let mut reg = VmspaceRegistry::new(mem.clone(), KMEM, pool_pages * PAGE_SIZE).unwrap();
    let trap_page = reg.pool_mut().alloc_zeroed().unwrap();
    let mut pt = reg.host_page_table();
    let root = pt.new_root().unwrap();
    pt.map_4k(root, TRAP_AREA_BASE, trap_page, P | US).unwrap();
    let entry = pt.read(root, 255).unwrap();
    reg.set_trap_area_pml4e(entry);
    (mem, reg)
}

/// The kernel RAM pattern byte at `gpa`.
pub fn kbyte(gpa: u64) -> u8 {
    (gpa * 7 % 251) as u8
}

fn entry(mem: &GuestMemoryMmap, table: u64, idx: u64) -> u64 {
    mem.read_obj::<u64>(GuestAddress(table + idx * 8)).unwrap()
}

/// Walks the tables from `root` like the MMU: `Some(leaf)` for a present
/// 4 KiB leaf, `None` if some level is not present. Panics on a malformed
/// intermediate entry.
pub fn walk(mem: &GuestMemoryMmap, root: u64, va: u64) -> Option<u64> {
    let mut table = root;
    for level in (1..=4u32).rev() {
        let idx = (va >> (12 + 9 * (level - 1))) & 0x1ff;
        let e = entry(mem, table, idx);
        if e & P == 0 {
            return None;
        }
        if level == 1 {
            return Some(e);
        }
        assert_eq!(
            e & !ADDR,
            P | RW | US,
            "intermediate entry {e:#x} at level {level} for {va:#x}"
        );
        table = e & ADDR;
    }
    unreachable!()
}

/// Reads `len` bytes at `va` through the tables (each page must be present).
pub fn read_via_tables(mem: &GuestMemoryMmap, root: u64, va: u64, len: usize) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(len);
    let mut at = va;
    while out.len() < len {
        let leaf = walk(mem, root, at & !(PAGE_SIZE - 1))?;
        let in_page = at % PAGE_SIZE;
        let n = ((PAGE_SIZE - in_page) as usize).min(len - out.len());
        let mut buf = vec![0u8; n];
        mem.read_slice(&mut buf, GuestAddress((leaf & ADDR) + in_page))
            .unwrap();
        out.extend_from_slice(&buf);
        at += n as u64;
    }
    Some(out)
}

/// Checks the whole tree is a well-formed hardware tree: slot 255 is the
/// shared trap entry; every other present intermediate entry is exactly
/// `P|RW|US` and points into the pool; every leaf is a 4 KiB leaf with
/// only `P|US|A`, optional `RW|D` together, optional `NX`, and an address
/// below 2^52. Returns the present leaves (va, entry).
pub fn check_tree(mem: &GuestMemoryMmap, reg: &VmspaceRegistry, root: u64) -> Vec<(u64, u64)> {
    assert_eq!(entry(mem, root, 255), reg.trap_area_pml4e(), "slot 255");
    let mut leaves = Vec::new();
    check_table(mem, reg, root, 4, 0, &mut leaves);
    leaves
}

fn check_table(
    mem: &GuestMemoryMmap,
    reg: &VmspaceRegistry,
    table: u64,
    level: u32,
    base: u64,
    leaves: &mut Vec<(u64, u64)>,
) {
    assert!(
        reg.pool().contains(table),
        "table {table:#x} outside the pool"
    );
    for idx in 0..512u64 {
        if level == 4 && idx == 255 {
            continue;
        }
        let e = entry(mem, table, idx);
        let va = base + (idx << (12 + 9 * (level - 1)));
        if e & P == 0 {
            assert_eq!(e, 0, "non-present entry with bits at {va:#x}");
            continue;
        }
        if level == 1 {
            let flags = e & !ADDR;
            let base_flags = flags & !(RW | D | NX);
            assert_eq!(base_flags, P | US | A, "leaf {e:#x} at {va:#x}");
            assert_eq!(flags & RW != 0, flags & D != 0, "RW without D at {va:#x}");
            leaves.push((va, e));
        } else {
            assert_eq!(
                e & !ADDR,
                P | RW | US,
                "intermediate {e:#x} at {va:#x} level {level}"
            );
            check_table(mem, reg, e & ADDR, level - 1, va, leaves);
        }
    }
}
