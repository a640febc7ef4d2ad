//! TEMPORARY stand-in for the vmspace crate's pool and page tables, until
//! it lands. To be deleted.
#![allow(missing_docs, dead_code)]
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

pub struct Pool {
    mem: GuestMemoryMmap,
    next: u64,
    end: u64,
    used: usize,
}
impl Pool {
    pub fn alloc_zeroed(&mut self) -> Option<u64> {
        if self.next >= self.end {
            return None;
        }
        let g = self.next;
        self.next += 4096;
        self.used += 1;
        self.mem.write_slice(&[0u8; 4096], GuestAddress(g)).ok()?;
        Some(g)
    }
}
pub struct VmspaceRegistry {
    pool: Pool,
}
impl VmspaceRegistry {
    pub fn new(mem: GuestMemoryMmap, _ram: u64, pool_bytes: u64) -> Self {
        let base = vkernel_abi::layout::POOL_BASE;
        VmspaceRegistry {
            pool: Pool {
                mem,
                next: base,
                end: base + pool_bytes,
                used: 0,
            },
        }
    }
    pub fn pool_mut(&mut self) -> &mut Pool {
        &mut self.pool
    }
    pub fn set_trap_area_pml4e(&mut self, _e: u64) {}
    pub fn pages_in_use(&self) -> usize {
        self.pool.used
    }
    pub fn teardown_all(&mut self) -> Vec<u64> {
        vec![]
    }
}
pub mod pagetable {
    use super::*;
    pub fn new_root(pool: &mut Pool) -> Option<u64> {
        pool.alloc_zeroed()
    }
    fn walk(
        mem: &GuestMemoryMmap,
        pool: &mut Pool,
        root: u64,
        va: u64,
        levels: u32,
    ) -> Option<u64> {
        let mut table = root;
        for l in 0..levels {
            let shift = 39 - 9 * l;
            let idx = (va >> shift) & 0x1ff;
            let e: u64 = mem.read_obj(GuestAddress(table + idx * 8)).ok()?;
            table = if e & 1 == 0 {
                let n = pool.alloc_zeroed()?;
                mem.write_obj(n | 7, GuestAddress(table + idx * 8)).ok()?;
                n
            } else {
                e & 0x000f_ffff_ffff_f000
            };
        }
        Some(table)
    }
    pub fn map_4k(
        mem: &GuestMemoryMmap,
        pool: &mut Pool,
        root: u64,
        va: u64,
        pa: u64,
        flags: u64,
    ) -> Option<()> {
        let t = walk(mem, pool, root, va, 3)?;
        mem.write_obj(pa | flags, GuestAddress(t + ((va >> 12) & 0x1ff) * 8))
            .ok()
    }
    pub fn map_2m(
        mem: &GuestMemoryMmap,
        pool: &mut Pool,
        root: u64,
        va: u64,
        pa: u64,
        flags: u64,
    ) -> Option<()> {
        let t = walk(mem, pool, root, va, 2)?;
        mem.write_obj(
            pa | flags | 0x80,
            GuestAddress(t + ((va >> 21) & 0x1ff) * 8),
        )
        .ok()
    }
}
