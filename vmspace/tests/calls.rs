//! Every call's errno paths (the seed's cases, in the seed's order) and
//! success paths, with their effects checked through the real page tables.

mod common;

use common::*;
use vkernel_abi::layout::{PAGE_SIZE, TRAP_AREA_BASE, VM_MAX_USER_ADDRESS, VM_MIN_USER_ADDRESS};
use vkernel_abi::mman::*;
use vkernel_abi::Errno;
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};
use vmspace::fault::pf;
use vmspace::registry::HOST_STATE_PAGES;
use vmspace::{FaultOutcome, VmspaceRegistry};

const BASE: u64 = 0x1000_0000;
const KBUF: u64 = 0x8_0000;
const ANON_FIXED: u64 = MAP_ANON | MAP_PRIVATE | MAP_FIXED;
const RW_: u64 = PROT_READ | PROT_WRITE;

fn anon(reg: &mut VmspaceRegistry, id: u64, addr: u64, len: u64, prot: u64) {
    assert_eq!(
        reg.mmap(id, addr, len, prot, ANON_FIXED, FD_NONE, 0),
        Ok(addr)
    );
}

fn with_space(pool_pages: u64) -> (GuestMemoryMmap, VmspaceRegistry) {
    let (mem, mut reg) = setup(pool_pages);
    reg.create(1, 0, 0).unwrap();
    (mem, reg)
}

fn put(mem: &GuestMemoryMmap, gpa: u64, bytes: &[u8]) {
    mem.write_slice(bytes, GuestAddress(gpa)).unwrap();
}

fn get(mem: &GuestMemoryMmap, gpa: u64, len: usize) -> Vec<u8> {
    let mut v = vec![0; len];
    mem.read_slice(&mut v, GuestAddress(gpa)).unwrap();
    v
}

/// Writes `bytes` at vmspace address `va` through pwrite.
fn vwrite(mem: &GuestMemoryMmap, reg: &mut VmspaceRegistry, id: u64, va: u64, bytes: &[u8]) {
    put(mem, KBUF, bytes);
    assert_eq!(
        reg.pwrite(id, KBUF, bytes.len() as u64, va),
        Ok(bytes.len())
    );
}

/// A run of vmspace `id` on the vCPU: from now on KVM may have shadowed
/// every table it has.
fn ran(reg: &mut VmspaceRegistry, id: u64) {
    reg.acquire_for_run(id).unwrap();
    reg.release(id).unwrap();
}

/// Reads `len` bytes at `va` through pread.
fn vread(
    mem: &GuestMemoryMmap,
    reg: &mut VmspaceRegistry,
    id: u64,
    va: u64,
    len: usize,
) -> Vec<u8> {
    assert_eq!(reg.pread(id, KBUF, len as u64, va), Ok(len));
    get(mem, KBUF, len)
}

// ---------------------------------------------------------------- create

#[test]
fn create_checks_in_order() {
    let (_, mut reg) = setup(64);
    assert_eq!(reg.create(0, 0, 0), Err(Errno::EINVAL));
    assert_eq!(reg.create(0, 1, 0), Err(Errno::EINVAL));
    assert_eq!(reg.create(5, 1, 0), Err(Errno::EINVAL));
    assert_eq!(reg.create(5, 0, 1), Err(Errno::EINVAL));
    assert_eq!(reg.create(5, 0, 0), Ok(()));
    assert_eq!(reg.create(5, 0, 0), Err(Errno::EEXIST));
    assert_eq!(reg.create(5, 1, 0), Err(Errno::EINVAL));
    reg.audit().unwrap();
}

#[test]
fn create_makes_an_empty_space_with_the_trap_slot() {
    let (mem, mut reg) = setup(64);
    let before = reg.pages_in_use();
    reg.create(u64::MAX, 0, 0).unwrap();
    assert_eq!(reg.pages_in_use(), before + 1);
    let root = reg.root(u64::MAX).unwrap();
    assert!(check_tree(&mem, &reg, root).is_empty());
}

#[test]
fn create_without_pool_room_is_enomem() {
    let (_, mut reg) = setup(8);
    let mut n = 0;
    while reg.create(n + 1, 0, 0).is_ok() {
        n += 1;
    }
    assert_eq!(reg.create(n + 1, 0, 0), Err(Errno::ENOMEM));
    // Each took its PML4 and its host-state charge.
    assert!(reg.pool().available_pages() < 1 + HOST_STATE_PAGES);
    assert_eq!(
        reg.pool().reserved_pages(),
        n as usize * HOST_STATE_PAGES,
        "the host-state charge is reserved, never drawn"
    );
    for id in 1..=n {
        reg.destroy(id).unwrap();
    }
    // The last one is kept for a clone, with its reservation.
    assert_eq!(reg.spare_pages(), 1);
    reg.audit().unwrap();
    reg.end_spare();
    assert_eq!(reg.pool().reserved_pages(), 0);
}

// ---------------------------------------------------------------- destroy

#[test]
fn destroy_checks_and_frees() {
    let (mem, mut reg) = setup(64);
    let baseline = reg.pages_in_use();
    assert_eq!(reg.destroy(1), Err(Errno::ENOENT));
    reg.create(1, 0, 0).unwrap();
    anon(&mut reg, 1, BASE, 8 * PAGE_SIZE, RW_);
    vwrite(&mem, &mut reg, 1, BASE, b"hello");
    assert_eq!(
        reg.handle_fault(1, BASE, pf::U | pf::W),
        Ok(FaultOutcome::Resolved)
    );
    reg.acquire_for_run(1).unwrap();
    assert_eq!(reg.destroy(1), Err(Errno::EBUSY));
    reg.release(1).unwrap();
    assert_eq!(reg.release(1), Err(Errno::EINVAL));
    reg.take_translation_reduced();
    assert_eq!(reg.destroy(1), Ok(()));
    // Destroy needs no flush: its root is never loaded again and the pool
    // keeps its table pages from becoming tables before the next flush.
    assert!(!reg.take_translation_reduced());
    assert_eq!(reg.pages_in_use(), baseline);
    reg.audit().unwrap();
    // Kept for the next clone (the root, three tables and a frame: 8 KiB
    // were touched, one fault-around window of 8 pages mapped one frame
    // more), and not counted as in use; then given back.
    assert!(reg.spare_pages() >= 5);
    reg.end_spare();
    assert_eq!(reg.pages_in_use(), baseline);
    assert_eq!(reg.pool().reserved_pages(), 0);
    assert_eq!(reg.destroy(1), Err(Errno::ENOENT));
}

// ---------------------------------------------------------------- mmap errors

#[test]
fn mmap_errors_in_order() {
    let (_, mut reg) = with_space(64);
    let m = |reg: &mut VmspaceRegistry, addr, len, prot, flags, fd, off| {
        reg.mmap(1, addr, len, prot, flags, fd, off)
    };
    assert_eq!(
        reg.mmap(2, BASE, 4096, PROT_READ, ANON_FIXED, FD_NONE, 0),
        Err(Errno::ENOENT)
    );
    // Unknown bits come first, even with len 0.
    assert_eq!(
        m(&mut reg, BASE, 0, 8, ANON_FIXED, FD_NONE, 0),
        Err(Errno::EINVAL)
    );
    assert_eq!(
        m(
            &mut reg,
            BASE,
            4096,
            PROT_READ,
            ANON_FIXED | 0x4000_0000,
            FD_NONE,
            0
        ),
        Err(Errno::EINVAL)
    );
    // Exactly one of shared/private.
    assert_eq!(
        m(
            &mut reg,
            BASE,
            4096,
            PROT_READ,
            MAP_ANON | MAP_FIXED,
            FD_NONE,
            0
        ),
        Err(Errno::EINVAL)
    );
    assert_eq!(
        m(
            &mut reg,
            BASE,
            4096,
            PROT_READ,
            ANON_FIXED | MAP_SHARED,
            FD_NONE,
            0
        ),
        Err(Errno::EINVAL)
    );
    // MAP_ANON with an fd or offset (before the len check, as kern_mmap).
    assert_eq!(
        m(&mut reg, BASE, 0, PROT_READ, ANON_FIXED, 3, 0),
        Err(Errno::EINVAL)
    );
    assert_eq!(
        m(&mut reg, BASE, 4096, PROT_READ, ANON_FIXED, PHYSMEM_FD, 0),
        Err(Errno::EINVAL)
    );
    assert_eq!(
        m(&mut reg, BASE, 4096, PROT_READ, ANON_FIXED, FD_NONE, 4096),
        Err(Errno::EINVAL)
    );
    // len 0.
    assert_eq!(
        m(&mut reg, BASE, 0, PROT_READ, ANON_FIXED, FD_NONE, 0),
        Err(Errno::EINVAL)
    );
    assert_eq!(
        m(&mut reg, BASE, 0, PROT_READ, MAP_SHARED, 99, 0),
        Err(Errno::EINVAL)
    );
    // VPAGETABLE.
    assert_eq!(
        m(
            &mut reg,
            BASE,
            4096,
            RW_,
            ANON_FIXED | MAP_VPAGETABLE,
            FD_NONE,
            0
        ),
        Err(Errno::EINVAL)
    );
    // Size wraps when rounded (with and without the page offset).
    assert_eq!(
        m(&mut reg, BASE, u64::MAX, PROT_READ, ANON_FIXED, FD_NONE, 0),
        Err(Errno::EINVAL)
    );
    assert_eq!(
        m(
            &mut reg,
            BASE,
            u64::MAX - 4000,
            PROT_READ,
            MAP_SHARED,
            PHYSMEM_FD,
            0x123
        ),
        Err(Errno::EINVAL)
    );
    // MAP_FIXED address checks.
    assert_eq!(
        m(&mut reg, BASE + 1, 4096, PROT_READ, ANON_FIXED, FD_NONE, 0),
        Err(Errno::EINVAL)
    );
    assert_eq!(
        m(
            &mut reg,
            0xffff_ffff_ffff_f000,
            0x2000,
            PROT_READ,
            ANON_FIXED,
            FD_NONE,
            0
        ),
        Err(Errno::EINVAL)
    );
    assert_eq!(
        m(
            &mut reg,
            VM_MAX_USER_ADDRESS - 4096,
            0x2000,
            PROT_READ,
            ANON_FIXED,
            FD_NONE,
            0
        ),
        Err(Errno::EINVAL)
    );
    assert_eq!(
        m(&mut reg, 0, 4096, PROT_READ, ANON_FIXED, FD_NONE, 0),
        Err(Errno::EINVAL)
    );
    // The fixed address must agree with the offset's page offset.
    assert_eq!(
        m(
            &mut reg,
            BASE,
            4096,
            PROT_READ,
            MAP_SHARED | MAP_FIXED,
            PHYSMEM_FD,
            0x10
        ),
        Err(Errno::EINVAL)
    );
    // Bad fds.
    assert_eq!(
        m(
            &mut reg,
            BASE,
            4096,
            PROT_READ,
            MAP_SHARED | MAP_FIXED,
            3,
            0
        ),
        Err(Errno::EBADF)
    );
    assert_eq!(
        m(&mut reg, BASE, 4096, PROT_READ, MAP_PRIVATE, FD_NONE, 0),
        Err(Errno::EBADF)
    );
    // Physical memory: page-aligned offset, inside the kernel's RAM.
    assert_eq!(
        m(
            &mut reg,
            BASE + 0x10,
            4096,
            PROT_READ,
            MAP_SHARED | MAP_FIXED,
            PHYSMEM_FD,
            0x10
        ),
        Err(Errno::EINVAL)
    );
    assert_eq!(
        m(&mut reg, BASE, 4096, PROT_READ, MAP_SHARED, PHYSMEM_FD, 0x10),
        Err(Errno::EINVAL)
    );
    assert_eq!(
        m(&mut reg, BASE, 4096, PROT_READ, MAP_SHARED, PHYSMEM_FD, KMEM),
        Err(Errno::EINVAL)
    );
    assert_eq!(
        m(
            &mut reg,
            BASE,
            2 * 4096,
            PROT_READ,
            MAP_SHARED,
            PHYSMEM_FD,
            KMEM - 4096
        ),
        Err(Errno::EINVAL)
    );
    assert_eq!(
        m(&mut reg, BASE, 4096, PROT_READ, MAP_SHARED, PHYSMEM_FD, !0xfff),
        Err(Errno::EINVAL)
    );
    reg.audit().unwrap();
    assert_eq!(reg.charged_pages(1), Some(1));
}

#[test]
fn mmap_huge_lengths_fail_fast() {
    let (_, mut reg) = with_space(64);
    let big = 1u64 << 62;
    assert_eq!(
        reg.mmap(1, 0, big, PROT_READ, MAP_ANON | MAP_PRIVATE, FD_NONE, 0),
        Err(Errno::ENOMEM)
    );
    assert_eq!(
        reg.mmap(1, BASE, 1 << 40, PROT_READ, ANON_FIXED, FD_NONE, 0),
        Err(Errno::ENOMEM)
    );
    assert_eq!(
        reg.mmap(
            1,
            BASE,
            VM_MAX_USER_ADDRESS,
            PROT_READ,
            MAP_ANON | MAP_PRIVATE,
            FD_NONE,
            0
        ),
        Err(Errno::ENOMEM)
    );
    reg.audit().unwrap();
}

// ---------------------------------------------------------------- mmap success

#[test]
fn mmap_places_non_fixed_mappings_first_fit_from_the_hint() {
    let (_, mut reg) = with_space(64);
    let flags = MAP_ANON | MAP_PRIVATE;
    assert_eq!(reg.mmap(1, 0, 4096, PROT_READ, flags, FD_NONE, 0), Ok(BASE));
    assert_eq!(
        reg.mmap(1, 0, 100, PROT_READ, flags, FD_NONE, 0),
        Ok(BASE + 0x1000)
    );
    assert_eq!(
        reg.mmap(1, BASE + 0x1_0001, 4096, PROT_READ, flags, FD_NONE, 0),
        Ok(BASE + 0x1_1000)
    );
    // A hint below the base is raised to it.
    assert_eq!(
        reg.mmap(1, 0x5000, 4096, PROT_READ, flags, FD_NONE, 0),
        Ok(BASE + 0x2000)
    );
    // Nothing fits at or above the hint: retry from VM_MIN.
    let top = VM_MAX_USER_ADDRESS - 0x2000;
    assert_eq!(
        reg.mmap(1, top, 0x2000, PROT_NONE, ANON_FIXED, FD_NONE, 0),
        Ok(top)
    );
    assert_eq!(
        reg.mmap(1, top - 0x1000, 0x2000, PROT_READ, flags, FD_NONE, 0),
        Ok(VM_MIN_USER_ADDRESS)
    );
    // Phys mappings return the address too.
    assert_eq!(
        reg.mmap(1, 0, 4096, PROT_READ, MAP_SHARED, PHYSMEM_FD, 0x3000),
        Ok(BASE + 0x3000)
    );
    reg.audit().unwrap();
}

#[test]
fn anonymous_memory_is_zero_filled_on_demand() {
    let (mem, mut reg) = with_space(64);
    let before = reg.pages_in_use();
    anon(&mut reg, 1, BASE, 4 * PAGE_SIZE, RW_);
    assert_eq!(reg.pages_in_use(), before, "nothing allocated at mmap");
    assert_eq!(
        reg.charged_pages(1),
        Some(1 + 3),
        "tables only, until touched"
    );
    assert_eq!(vread(&mem, &mut reg, 1, BASE + 10, 5000), vec![0; 5000]);
    assert_eq!(reg.charged_pages(1), Some(1 + 3 + 2), "the two pages read");
    reg.audit().unwrap();
}

#[test]
fn pwrite_then_pread_round_trips_and_is_visible_through_the_tables() {
    let (mem, mut reg) = with_space(64);
    anon(&mut reg, 1, BASE, 4 * PAGE_SIZE, RW_);
    let data: Vec<u8> = (0..6000u32).map(|i| (i * 13) as u8).collect();
    vwrite(&mem, &mut reg, 1, BASE + 3000, &data);
    assert_eq!(vread(&mem, &mut reg, 1, BASE + 3000, 6000), data);
    assert_eq!(
        reg.handle_fault(1, BASE + 3000, pf::U),
        Ok(FaultOutcome::Resolved)
    );
    let root = reg.root(1).unwrap();
    assert_eq!(
        read_via_tables(&mem, root, BASE + 3000, 6000).unwrap(),
        data
    );
    check_tree(&mem, &reg, root);
    reg.audit().unwrap();
}

/// Writes iovecs `(base, len)` at `at` in kernel RAM.
fn put_iov(mem: &GuestMemoryMmap, at: u64, iov: &[(u64, u64)]) {
    let mut b = Vec::new();
    for &(base, len) in iov {
        b.extend_from_slice(&base.to_le_bytes());
        b.extend_from_slice(&len.to_le_bytes());
    }
    put(mem, at, &b);
}

/// Copies move in runs of contiguous frames: a vmspace range mapped over
/// kernel RAM (`PHYSMEM_FD`, as file pages are) is one run, and a kernel
/// buffer that overlaps the very frames it is copied to (a process writing
/// a file from a shared mapping of it) moves as memmove does.
#[test]
fn copies_over_contiguous_frames_move_in_runs_and_may_overlap() {
    const PHYS: u64 = 0x2_0000;
    let (mem, mut reg) = with_space(64);
    assert_eq!(
        reg.mmap(
            1,
            BASE,
            4 * PAGE_SIZE,
            RW_,
            MAP_SHARED | MAP_FIXED,
            PHYSMEM_FD,
            PHYS
        ),
        Ok(BASE)
    );
    // Reading the run gives RAM's bytes across the page boundaries.
    let want = get(&mem, PHYS + 10, 3 * PAGE_SIZE as usize);
    assert_eq!(
        vread(&mem, &mut reg, 1, BASE + 10, 3 * PAGE_SIZE as usize),
        want
    );
    // The source buffer starts 100 bytes below its destination frames:
    // every byte must land as it was before the copy.
    let before = get(&mem, PHYS + 900, 2 * PAGE_SIZE as usize);
    assert_eq!(
        reg.pwrite(1, PHYS + 900, 2 * PAGE_SIZE, BASE + 1000),
        Ok(2 * PAGE_SIZE as usize)
    );
    assert_eq!(get(&mem, PHYS + 1000, 2 * PAGE_SIZE as usize), before);
    // And the other way (destination below the source).
    let before = get(&mem, PHYS + 1000, 2 * PAGE_SIZE as usize);
    assert_eq!(
        reg.pread(1, PHYS + 900, 2 * PAGE_SIZE, BASE + 1000),
        Ok(2 * PAGE_SIZE as usize)
    );
    assert_eq!(get(&mem, PHYS + 900, 2 * PAGE_SIZE as usize), before);
    reg.audit().unwrap();
}

/// `vmspace_copy`: between two vmspaces and within one, short at a hole
/// on either side, and its checks in order.
#[test]
fn copy_between_vmspaces_checks_in_order_and_stops_at_holes() {
    let (mem, mut reg) = with_space(64);
    reg.create(2, 0, 0).unwrap();
    anon(&mut reg, 1, BASE, 4 * PAGE_SIZE, RW_);
    anon(&mut reg, 2, BASE + 0x10_0000, 2 * PAGE_SIZE, RW_);
    let data: Vec<u8> = (0..9000u32).map(|i| (i * 11 + 5) as u8).collect();
    vwrite(&mem, &mut reg, 1, BASE + 300, &data);
    // Across pages on both sides.
    assert_eq!(
        reg.copy_between(2, BASE + 0x10_0000 + 7, 1, BASE + 300, 6000),
        Ok(6000)
    );
    assert_eq!(
        vread(&mem, &mut reg, 2, BASE + 0x10_0000 + 7, 6000),
        data[..6000]
    );
    // The destination ends at its mapping's end; the source at its own.
    assert_eq!(
        reg.copy_between(2, BASE + 0x10_0000 + 2 * PAGE_SIZE - 100, 1, BASE, 1000),
        Ok(100)
    );
    assert_eq!(
        reg.copy_between(2, BASE + 0x10_0000, 1, BASE + 4 * PAGE_SIZE - 10, 50),
        Ok(10)
    );
    assert_eq!(
        reg.copy_between(2, BASE + 0x10_0000, 1, 0x5000_0000, 50),
        Ok(0)
    );
    // Within one vmspace, overlapping: as if through a buffer.
    assert_eq!(
        reg.copy_between(1, BASE + 400, 1, BASE + 300, 5000),
        Ok(5000)
    );
    assert_eq!(vread(&mem, &mut reg, 1, BASE + 400, 5000), data[..5000]);
    // len 0 copies nothing.
    assert_eq!(reg.copy_between(2, BASE + 0x10_0000, 1, BASE, 0), Ok(0));
    // Checks, in order.
    assert_eq!(reg.copy_between(9, 0, 8, 0, 1 << 40), Err(Errno::ENOENT));
    assert_eq!(reg.copy_between(2, 0, 9, 0, 1 << 40), Err(Errno::ENOENT));
    assert_eq!(
        reg.copy_between(2, BASE, 1, BASE, vkernel_abi::VMSPACE_COPY_MAX + 1),
        Err(Errno::EINVAL)
    );
    assert_eq!(
        reg.copy_between(2, u64::MAX - 10, 1, BASE, 100),
        Err(Errno::EINVAL)
    );
    assert_eq!(
        reg.copy_between(2, BASE, 1, u64::MAX - 10, 100),
        Err(Errno::EINVAL)
    );
    reg.audit().unwrap();
}

#[test]
fn pwritev_and_preadv_scatter_across_buffers_and_pages() {
    const IOV: u64 = 0x4_0000;
    let (mem, mut reg) = with_space(64);
    anon(&mut reg, 1, BASE, 4 * PAGE_SIZE, RW_);
    let data: Vec<u8> = (0..9000u32).map(|i| (i * 7 + 3) as u8).collect();
    // Gather from three kernel buffers (one empty) into one vmspace run
    // that crosses pages.
    put(&mem, KBUF, &data[..5000]);
    put(&mem, KBUF + 0x4000, &data[5000..]);
    put_iov(
        &mem,
        IOV,
        &[(KBUF, 5000), (KBUF + 0x9000, 0), (KBUF + 0x4000, 4000)],
    );
    assert_eq!(reg.pwritev(1, IOV, 3, BASE + 100), Ok(9000));
    assert_eq!(vread(&mem, &mut reg, 1, BASE + 100, 9000), data);
    // Scatter back into buffers of odd sizes.
    put_iov(
        &mem,
        IOV,
        &[
            (KBUF + 0x10000, 1),
            (KBUF + 0x20000, 4999),
            (KBUF + 0x30000, 4000),
        ],
    );
    assert_eq!(reg.preadv(1, IOV, 3, BASE + 100), Ok(9000));
    let mut back = get(&mem, KBUF + 0x10000, 1);
    back.extend(get(&mem, KBUF + 0x20000, 4999));
    back.extend(get(&mem, KBUF + 0x30000, 4000));
    assert_eq!(back, data);
    // Short at the end of the mapping.
    put_iov(&mem, IOV, &[(KBUF, 100), (KBUF + 0x1000, 200)]);
    assert_eq!(reg.preadv(1, IOV, 2, BASE + 4 * PAGE_SIZE - 150), Ok(150));
    assert_eq!(reg.pwritev(1, IOV, 2, BASE + 4 * PAGE_SIZE - 50), Ok(50));
    assert_eq!(reg.preadv(1, IOV, 2, 0x5000_0000), Ok(0));
    reg.audit().unwrap();
}

#[test]
fn preadv_checks_in_order() {
    const IOV: u64 = 0x4_0000;
    let (mem, mut reg) = with_space(64);
    anon(&mut reg, 1, BASE, PAGE_SIZE, RW_);
    put_iov(&mem, IOV, &[(KBUF, 8), (KBUF, 8)]);
    assert_eq!(reg.preadv(9, IOV, 1, BASE), Err(Errno::ENOENT));
    assert_eq!(reg.pwritev(9, IOV, 1, BASE), Err(Errno::ENOENT));
    assert_eq!(reg.preadv(1, IOV, 0, BASE), Err(Errno::EINVAL));
    assert_eq!(reg.preadv(1, IOV, 1025, BASE), Err(Errno::EINVAL));
    assert_eq!(reg.preadv(1, KMEM, 1, BASE), Err(Errno::EFAULT));
    assert_eq!(reg.preadv(1, KMEM - 8, 1, BASE), Err(Errno::EFAULT));
    assert_eq!(reg.preadv(1, u64::MAX - 7, 1, BASE), Err(Errno::EFAULT));
    put_iov(&mem, IOV, &[(KBUF, u64::MAX), (KBUF, 2)]);
    assert_eq!(reg.pwritev(1, IOV, 2, BASE), Err(Errno::EINVAL));
    put_iov(&mem, IOV, &[(KBUF, 8), (KMEM - 4, 8)]);
    assert_eq!(reg.preadv(1, IOV, 2, BASE), Err(Errno::EFAULT));
    put_iov(&mem, IOV, &[(KBUF, 8), (KBUF, 8)]);
    assert_eq!(reg.preadv(1, IOV, 2, u64::MAX - 8), Err(Errno::EINVAL));
    // A failed check copies nothing.
    assert_eq!(
        get(&mem, KBUF, 8),
        (KBUF..KBUF + 8).map(kbyte).collect::<Vec<_>>()
    );
    assert_eq!(reg.preadv(1, IOV, 2, BASE), Ok(16));
}

#[test]
fn map_fixed_replaces_and_settles_the_charge() {
    let (mem, mut reg) = with_space(64);
    anon(&mut reg, 1, BASE, 4 * PAGE_SIZE, RW_);
    vwrite(&mem, &mut reg, 1, BASE, &[7; 16384]);
    let charged = reg.charged_pages(1).unwrap();
    // Replace the middle two pages with a shared kernel mapping.
    let flags = MAP_SHARED | MAP_FIXED;
    assert_eq!(
        reg.mmap(
            1,
            BASE + 0x1000,
            0x2000,
            PROT_READ,
            flags,
            PHYSMEM_FD,
            0x5000
        ),
        Ok(BASE + 0x1000)
    );
    assert_eq!(reg.charged_pages(1), Some(charged - 2));
    assert_eq!(vread(&mem, &mut reg, 1, BASE, 1), vec![7]);
    assert_eq!(
        vread(&mem, &mut reg, 1, BASE + 0x1000, 1),
        vec![kbyte(0x5000)]
    );
    assert_eq!(vread(&mem, &mut reg, 1, BASE + 0x3000, 1), vec![7]);
    // And with fresh anonymous memory: zero again.
    anon(&mut reg, 1, BASE, 2 * PAGE_SIZE, RW_);
    assert_eq!(vread(&mem, &mut reg, 1, BASE, 2), vec![0, 0]);
    assert_eq!(
        vread(&mem, &mut reg, 1, BASE + 0x2000, 1),
        vec![kbyte(0x6000)]
    );
    reg.audit().unwrap();
}

#[test]
fn pages_are_charged_when_touched_and_a_short_pool_fails_the_touch() {
    let (_, mut reg) = with_space(32);
    let avail = reg.pool().available_pages() as u64;
    // Far larger than the pool: only its tables are charged (a PT per
    // 2 MiB, a PD, a PDPT), as Linux's heuristic overcommit charges none.
    let big = 4 * 512 * PAGE_SIZE;
    assert!(big / PAGE_SIZE > 4 * avail);
    anon(&mut reg, 1, BASE, big, RW_);
    assert_eq!(reg.charged_pages(1), Some(1 + 4 + 2));
    let tables_left = reg.pool().available_pages() as u64;
    assert_eq!(tables_left, avail - 6);
    // Touching charges page by page until the pool is short: then the
    // fault is ENOMEM (the guest kernel ends the process) and nothing
    // leaks.
    let touched = tables_left;
    assert_eq!(
        reg.mcontrol(1, BASE, touched * PAGE_SIZE, MADV_WILLNEED, 0),
        Ok(())
    );
    assert_eq!(reg.pool().available_pages(), 0);
    let next = BASE + touched * PAGE_SIZE;
    assert_eq!(reg.handle_fault(1, next, pf::U | pf::W), Err(Errno::ENOMEM));
    assert_eq!(
        reg.mcontrol(1, next, PAGE_SIZE, MADV_WILLNEED, 0),
        Err(Errno::ENOMEM)
    );
    reg.audit().unwrap();
    // Pages already in keep working; a table the pool cannot hold is
    // still refused at mmap.
    assert_eq!(
        reg.handle_fault(1, BASE, pf::U | pf::W),
        Ok(FaultOutcome::Resolved)
    );
    assert_eq!(
        reg.mmap(1, 1 << 40, 4096, RW_, ANON_FIXED, FD_NONE, 0),
        Err(Errno::ENOMEM)
    );
    // DONTNEED and munmap give the charge back.
    reg.mcontrol(1, BASE, PAGE_SIZE, MADV_DONTNEED, 0).unwrap();
    assert_eq!(reg.pool().available_pages(), 1);
    assert_eq!(
        reg.handle_fault(1, next, pf::U | pf::W),
        Ok(FaultOutcome::Resolved)
    );
    reg.audit().unwrap();
    reg.munmap(1, BASE, big).unwrap();
    assert_eq!(reg.pool().available_pages() as u64, avail);
    reg.audit().unwrap();
}

// ---------------------------------------------------------------- physical memory

#[test]
fn phys_shared_mapping_sees_and_writes_through_to_kernel_memory() {
    let (mem, mut reg) = with_space(64);
    let flags = MAP_SHARED | MAP_FIXED;
    reg.mmap(1, BASE, 0x2000, RW_, flags, PHYSMEM_FD, 0x4000)
        .unwrap();
    assert_eq!(
        reg.handle_fault(1, BASE + 0x1008, pf::U | pf::W),
        Ok(FaultOutcome::Resolved)
    );
    let root = reg.root(1).unwrap();
    let leaf = walk(&mem, root, BASE + 0x1000).unwrap();
    assert_eq!(leaf & ADDR, 0x5000, "the kernel's own page");
    assert_eq!(
        read_via_tables(&mem, root, BASE + 0x1000, 3).unwrap(),
        get(&mem, 0x5000, 3)
    );
    vwrite(&mem, &mut reg, 1, BASE + 0x1000, b"abc");
    assert_eq!(get(&mem, 0x5000, 3), b"abc");
    put(&mem, 0x4000, b"xyz");
    assert_eq!(vread(&mem, &mut reg, 1, BASE, 3), b"xyz");
    // DONTNEED does not discard the kernel's memory.
    reg.mcontrol(1, BASE, 0x2000, MADV_DONTNEED, 0).unwrap();
    assert_eq!(vread(&mem, &mut reg, 1, BASE, 3), b"xyz");
    assert_eq!(reg.charged_pages(1), Some(1 + 3));
    reg.audit().unwrap();
}

#[test]
fn phys_private_mapping_copies_and_does_not_write_through() {
    let (mem, mut reg) = with_space(64);
    let flags = MAP_PRIVATE | MAP_FIXED;
    reg.mmap(1, BASE, 0x2000, RW_, flags, PHYSMEM_FD, 0x4000)
        .unwrap();
    assert_eq!(reg.charged_pages(1), Some(1 + 3));
    assert_eq!(vread(&mem, &mut reg, 1, BASE, 4), get(&mem, 0x4000, 4));
    assert_eq!(reg.charged_pages(1), Some(1 + 3 + 1), "the copy read");
    vwrite(&mem, &mut reg, 1, BASE, b"priv");
    assert_eq!(
        get(&mem, 0x4000, 4),
        vec![kbyte(0x4000), kbyte(0x4001), kbyte(0x4002), kbyte(0x4003)]
    );
    assert_eq!(vread(&mem, &mut reg, 1, BASE, 4), b"priv");
    assert_eq!(
        reg.handle_fault(1, BASE, pf::U | pf::W),
        Ok(FaultOutcome::Resolved)
    );
    let leaf = walk(&mem, reg.root(1).unwrap(), BASE).unwrap();
    assert!(reg.pool().contains(leaf & ADDR), "a pool copy");
    // DONTNEED drops the copy: the kernel's bytes again.
    reg.mcontrol(1, BASE, 1, MADV_DONTNEED, 0).unwrap();
    assert_eq!(vread(&mem, &mut reg, 1, BASE, 1), vec![kbyte(0x4000)]);
    reg.audit().unwrap();
}

// ---------------------------------------------------------------- munmap

#[test]
fn munmap_checks_in_order() {
    let (_, mut reg) = with_space(64);
    anon(&mut reg, 1, BASE, 2 * PAGE_SIZE, RW_);
    assert_eq!(reg.munmap(2, BASE, 4096), Err(Errno::ENOENT));
    assert_eq!(
        reg.munmap(1, BASE + 1, u64::MAX),
        Err(Errno::EINVAL),
        "size wraps"
    );
    assert_eq!(
        reg.munmap(1, 0xffff_ffff_ffff_f000, 0x2000),
        Err(Errno::EINVAL),
        "end wraps"
    );
    assert_eq!(reg.munmap(1, 0, 0), Ok(()), "size 0");
    assert_eq!(
        reg.munmap(1, 0xffff_ffff_ffff_f000, 0),
        Ok(()),
        "size 0 anywhere"
    );
    assert_eq!(
        reg.munmap(1, VM_MAX_USER_ADDRESS - 4096, 0x2000),
        Err(Errno::EINVAL)
    );
    assert_eq!(reg.munmap(1, 0, 4096), Err(Errno::EINVAL), "below VM_MIN");
    assert_eq!(
        reg.munmap(1, BASE, 3 * PAGE_SIZE),
        Err(Errno::EINVAL),
        "hole"
    );
    assert_eq!(
        reg.munmap(1, BASE - 4096, 2 * PAGE_SIZE),
        Err(Errno::EINVAL),
        "hole before"
    );
    assert_eq!(reg.munmap(1, BASE + 5, 10), Ok(()), "page rounded");
    assert_eq!(reg.pread(2, KBUF, 1, BASE), Err(Errno::ENOENT));
    reg.audit().unwrap();
}

#[test]
fn munmap_frees_pages_and_tables_and_splits() {
    let (mem, mut reg) = with_space(64);
    let baseline = reg.pages_in_use();
    anon(&mut reg, 1, BASE, 3 * PAGE_SIZE, RW_);
    vwrite(&mem, &mut reg, 1, BASE, &[1; 3 * 4096]);
    assert_eq!(
        reg.handle_fault(1, BASE + 0x1000, pf::U),
        Ok(FaultOutcome::Resolved)
    );
    ran(&mut reg, 1);
    reg.take_translation_reduced();
    let old_root = reg.root(1).unwrap();
    // Middle page only. KVM may have shadowed the tables: the path to the
    // page is copied (a new root) rather than KVM's translations flushed,
    // and the old tree is left as KVM saw it.
    reg.munmap(1, BASE + 0x1000, 4096).unwrap();
    assert!(!reg.take_translation_reduced());
    assert_ne!(reg.root(1).unwrap(), old_root);
    assert!(walk(&mem, old_root, BASE + 0x1000).is_some());
    assert_eq!(
        reg.pread(1, KBUF, 3 * 4096, BASE),
        Ok(4096),
        "short at the hole"
    );
    assert_eq!(
        reg.pread(1, KBUF, 10, BASE + 0x1000),
        Ok(0),
        "first page unmapped"
    );
    assert_eq!(vread(&mem, &mut reg, 1, BASE + 0x2000, 1), vec![1]);
    let root = reg.root(1).unwrap();
    assert!(walk(&mem, root, BASE + 0x1000).is_none());
    assert!(walk(&mem, root, BASE).is_some());
    reg.audit().unwrap();
    // Not run since: the new tables are edited in place.
    reg.munmap(1, BASE, 4096).unwrap();
    assert_eq!(reg.root(1).unwrap(), root);
    // On the vCPU (a fault's work): in place, with a flush.
    reg.acquire_for_run(1).unwrap();
    reg.munmap(1, BASE + 0x2000, 4096).unwrap();
    assert!(reg.take_translation_reduced());
    reg.release(1).unwrap();
    assert_eq!(reg.root(1).unwrap(), root);
    assert_eq!(reg.pages_in_use(), baseline, "tables pruned");
    assert_eq!(reg.charged_pages(1), Some(1));
    assert!(check_tree(&mem, &reg, root).is_empty());
    reg.audit().unwrap();
}

// ---------------------------------------------------------------- mprotect

#[test]
fn mprotect_checks_in_order() {
    let (_, mut reg) = with_space(64);
    anon(&mut reg, 1, BASE, 2 * PAGE_SIZE, RW_);
    assert_eq!(reg.mprotect(2, BASE, 4096, PROT_READ), Err(Errno::ENOENT));
    assert_eq!(
        reg.mprotect(1, BASE + 1, 4096, PROT_READ),
        Err(Errno::EINVAL)
    );
    assert_eq!(reg.mprotect(1, BASE, 4096, 8), Err(Errno::EINVAL));
    assert_eq!(
        reg.mprotect(1, BASE, u64::MAX, PROT_READ),
        Err(Errno::EINVAL)
    );
    assert_eq!(
        reg.mprotect(1, 0xffff_ffff_ffff_f000, 0x2000, PROT_READ),
        Err(Errno::EINVAL)
    );
    assert_eq!(reg.mprotect(1, BASE, 0, PROT_READ), Ok(()));
    assert_eq!(
        reg.mprotect(1, VM_MAX_USER_ADDRESS - 4096, 0x2000, PROT_READ),
        Err(Errno::EINVAL)
    );
    assert_eq!(reg.mprotect(1, 0, 4096, PROT_READ), Err(Errno::EINVAL));
    assert_eq!(
        reg.mprotect(1, BASE, 3 * PAGE_SIZE, PROT_READ),
        Err(Errno::ENOMEM),
        "hole"
    );
    reg.audit().unwrap();
}

#[test]
fn mprotect_changes_leaf_bits_and_fault_outcomes() {
    let (mem, mut reg) = with_space(64);
    anon(&mut reg, 1, BASE, 2 * PAGE_SIZE, RW_);
    vwrite(&mem, &mut reg, 1, BASE, b"data");
    assert_eq!(
        reg.handle_fault(1, BASE, pf::U | pf::W),
        Ok(FaultOutcome::Resolved)
    );
    let old_root = reg.root(1).unwrap();
    let rw_leaf = walk(&mem, old_root, BASE).unwrap();
    assert_eq!(rw_leaf & !ADDR, P | US | A | RW | D | NX);
    ran(&mut reg, 1);
    reg.take_translation_reduced();

    reg.mprotect(1, BASE, 4096, PROT_READ | PROT_EXEC).unwrap();
    assert!(
        !reg.take_translation_reduced(),
        "write taken away in copied tables"
    );
    let root = reg.root(1).unwrap();
    assert_ne!(root, old_root);
    assert_eq!(walk(&mem, old_root, BASE).unwrap(), rw_leaf, "KVM's view");
    let leaf = walk(&mem, root, BASE).unwrap();
    assert_eq!(leaf & !ADDR, P | US | A);
    assert_eq!(leaf & ADDR, rw_leaf & ADDR, "same frame");
    assert_eq!(
        walk(&mem, root, BASE + 0x1000).unwrap() & RW,
        RW,
        "second page untouched"
    );
    assert_eq!(
        reg.handle_fault(1, BASE, pf::U | pf::P | pf::W),
        Ok(FaultOutcome::Deliver)
    );
    assert_eq!(
        reg.handle_fault(1, BASE, pf::U | pf::I),
        Ok(FaultOutcome::Resolved)
    );

    reg.mprotect(1, BASE, 4096, PROT_NONE).unwrap();
    assert!(walk(&mem, root, BASE).is_none());
    assert_eq!(reg.handle_fault(1, BASE, pf::U), Ok(FaultOutcome::Deliver));
    assert_eq!(vread(&mem, &mut reg, 1, BASE, 4), b"data", "data kept");

    reg.take_translation_reduced();
    reg.mprotect(1, BASE, 4096, RW_).unwrap();
    assert!(!reg.take_translation_reduced(), "nothing present to reduce");
    assert_eq!(
        reg.handle_fault(1, BASE, pf::U | pf::W),
        Ok(FaultOutcome::Resolved)
    );
    assert_eq!(read_via_tables(&mem, root, BASE, 4).unwrap(), b"data");
    check_tree(&mem, &reg, root);
    reg.audit().unwrap();
}

// ---------------------------------------------------------------- mcontrol

#[test]
fn mcontrol_checks_in_order() {
    let (_, mut reg) = with_space(64);
    anon(&mut reg, 1, BASE, PAGE_SIZE, RW_);
    assert_eq!(
        reg.mcontrol(2, BASE, 4096, MADV_NORMAL, 0),
        Err(Errno::ENOENT)
    );
    assert_eq!(
        reg.mcontrol(1, BASE, 4096, MADV_CONTROL_END + 1, 0),
        Err(Errno::EINVAL)
    );
    assert_eq!(reg.mcontrol(1, BASE, 4096, u64::MAX, 0), Err(Errno::EINVAL));
    assert_eq!(
        reg.mcontrol(1, BASE, u64::MAX, MADV_NORMAL, 0),
        Err(Errno::EINVAL),
        "wrap"
    );
    assert_eq!(
        reg.mcontrol(1, VM_MAX_USER_ADDRESS - 4096, 4097, MADV_NORMAL, 0),
        Err(Errno::EINVAL)
    );
    assert_eq!(
        reg.mcontrol(1, VM_MIN_USER_ADDRESS - 1, 4096, MADV_NORMAL, 0),
        Err(Errno::EINVAL)
    );
    assert_eq!(
        reg.mcontrol(1, BASE, 4096, MADV_SETMAP, 0x1000),
        Err(Errno::EINVAL)
    );
    for behav in [
        MADV_NORMAL,
        MADV_RANDOM,
        MADV_SEQUENTIAL,
        MADV_NOSYNC,
        MADV_AUTOSYNC,
        MADV_NOCORE,
        MADV_CORE,
    ] {
        assert_eq!(reg.mcontrol(1, BASE, 4096, behav, 0), Ok(()));
    }
    // Holes are fine (madvise skips them).
    assert_eq!(
        reg.mcontrol(1, VM_MIN_USER_ADDRESS, 1 << 40, MADV_WILLNEED, 0),
        Ok(())
    );
    assert_eq!(
        reg.mcontrol(1, VM_MAX_USER_ADDRESS - 4096, 4096, MADV_DONTNEED, 0),
        Ok(())
    );
    reg.audit().unwrap();
}

#[test]
fn populate_maps_every_page_at_mmap() {
    let (mem, mut reg) = with_space(64);
    let in_use = reg.pages_in_use();
    let flags = ANON_FIXED | MAP_POPULATE;
    assert_eq!(
        reg.mmap(1, BASE, 4 * PAGE_SIZE, RW_, flags, FD_NONE, 0),
        Ok(BASE)
    );
    // Four frames and a PDPT, a PD and a PT.
    assert_eq!(reg.pages_in_use(), in_use + 4 + 3);
    let root = reg.root(1).unwrap();
    assert_eq!(check_tree(&mem, &reg, root).len(), 4);
    // A kernel page, mapped shared: the leaf is the kernel's page.
    let phys = MAP_SHARED | MAP_FIXED | MAP_POPULATE;
    assert_eq!(
        reg.mmap(
            1,
            BASE + 0x10_0000,
            PAGE_SIZE,
            RW_,
            phys,
            PHYSMEM_FD,
            0x7000
        ),
        Ok(BASE + 0x10_0000)
    );
    assert_eq!(walk(&mem, root, BASE + 0x10_0000).unwrap() & ADDR, 0x7000);
    // Not with guest-managed tables.
    let vpt = MAP_SHARED | MAP_FIXED | MAP_VPAGETABLE | MAP_POPULATE;
    assert_eq!(
        reg.mmap(1, BASE + 0x20_0000, PAGE_SIZE, RW_, vpt, PHYSMEM_FD, 0),
        Err(Errno::EINVAL)
    );
    reg.audit().unwrap();
}

#[test]
fn willneed_prefaults_every_page() {
    let (mem, mut reg) = with_space(64);
    anon(&mut reg, 1, BASE, 20 * PAGE_SIZE, RW_);
    anon(&mut reg, 1, BASE + 20 * PAGE_SIZE, PAGE_SIZE, PROT_NONE);
    reg.mcontrol(1, BASE + 10, 21 * PAGE_SIZE, MADV_WILLNEED, 0)
        .unwrap();
    let root = reg.root(1).unwrap();
    let leaves = check_tree(&mem, &reg, root);
    assert_eq!(leaves.len(), 20);
    reg.audit().unwrap();
}

#[test]
fn dontneed_and_free_discard_anonymous_pages() {
    for behav in [MADV_DONTNEED, MADV_FREE] {
        let (mem, mut reg) = with_space(64);
        anon(&mut reg, 1, BASE, 2 * PAGE_SIZE, RW_);
        vwrite(&mem, &mut reg, 1, BASE, &[9; 8192]);
        assert_eq!(reg.handle_fault(1, BASE, pf::U), Ok(FaultOutcome::Resolved));
        ran(&mut reg, 1);
        let in_use = reg.pages_in_use();
        let old_root = reg.root(1).unwrap();
        reg.take_translation_reduced();
        reg.mcontrol(1, BASE + 100, 10, behav, 0).unwrap();
        assert!(!reg.take_translation_reduced(), "the tables were copied");
        assert_ne!(reg.root(1).unwrap(), old_root);
        // The frame and the four replaced tables are free, the four
        // copies in use.
        assert_eq!(reg.pages_in_use(), in_use - 1);
        assert!(walk(&mem, reg.root(1).unwrap(), BASE).is_none());
        assert_eq!(vread(&mem, &mut reg, 1, BASE, 2), vec![0, 0]);
        assert_eq!(vread(&mem, &mut reg, 1, BASE + 4096, 2), vec![9, 9]);
        reg.audit().unwrap();
    }
}

#[test]
fn inval_drops_translations_but_keeps_data() {
    let (mem, mut reg) = with_space(64);
    anon(&mut reg, 1, BASE, 4 * PAGE_SIZE, RW_);
    // Another entry, so the INVAL below covers part of the space only.
    anon(&mut reg, 1, BASE + 16 * PAGE_SIZE, PAGE_SIZE, RW_);
    vwrite(&mem, &mut reg, 1, BASE, &[5; 4 * 4096]);
    reg.mcontrol(1, BASE, 4 * PAGE_SIZE, MADV_WILLNEED, 0)
        .unwrap();
    ran(&mut reg, 1);
    let old_root = reg.root(1).unwrap();
    let frame = walk(&mem, old_root, BASE).unwrap() & ADDR;
    let in_use = reg.pages_in_use();
    reg.take_translation_reduced();
    reg.mcontrol(1, BASE, 4 * PAGE_SIZE, MADV_INVAL, 0).unwrap();
    assert!(!reg.take_translation_reduced(), "the tables were copied");
    let root = reg.root(1).unwrap();
    assert_ne!(root, old_root);
    assert!(walk(&mem, old_root, BASE).is_some(), "KVM's view");
    assert!(check_tree(&mem, &reg, root).is_empty());
    assert_eq!(reg.pages_in_use(), in_use, "no frame freed");
    assert_eq!(reg.handle_fault(1, BASE, pf::U), Ok(FaultOutcome::Resolved));
    assert_eq!(
        walk(&mem, root, BASE).unwrap() & ADDR,
        frame,
        "same frame mapped again"
    );
    assert_eq!(
        read_via_tables(&mem, root, BASE, 4 * 4096).unwrap(),
        vec![5; 4 * 4096]
    );
    reg.audit().unwrap();
}

#[test]
fn inval_of_the_whole_space_moves_it_to_a_fresh_root_without_a_flush() {
    let (mem, mut reg) = with_space(64);
    anon(&mut reg, 1, BASE, 4 * PAGE_SIZE, RW_);
    vwrite(&mem, &mut reg, 1, BASE, &[5; 4 * 4096]);
    reg.mcontrol(1, BASE, 4 * PAGE_SIZE, MADV_WILLNEED, 0)
        .unwrap();
    let old_root = reg.root(1).unwrap();
    let frame = walk(&mem, old_root, BASE).unwrap() & ADDR;
    let in_use = reg.pages_in_use();
    reg.take_translation_reduced();
    reg.mcontrol(1, 0x1000, BASE + 8 * PAGE_SIZE - 0x1000, MADV_INVAL, 0)
        .unwrap();
    // KVM has never seen the new root, and the old tables are quarantined:
    // nothing to flush.
    assert!(!reg.take_translation_reduced());
    let root = reg.root(1).unwrap();
    assert_ne!(root, old_root);
    assert!(check_tree(&mem, &reg, root).is_empty());
    assert_eq!(
        reg.pages_in_use(),
        in_use - 3,
        "the old PDPT, PD and PT freed"
    );
    reg.audit().unwrap();
    // The old root may not come back as a table before a flush.
    reg.create(2, 0, 0).unwrap();
    assert_ne!(reg.root(2).unwrap(), old_root);
    assert_eq!(reg.handle_fault(1, BASE, pf::U), Ok(FaultOutcome::Resolved));
    assert_eq!(walk(&mem, root, BASE).unwrap() & ADDR, frame, "same frame");
    reg.audit().unwrap();
}

// ---------------------------------------------------------------- pread/pwrite

#[test]
fn pread_pwrite_checks() {
    let (_, mut reg) = with_space(64);
    anon(&mut reg, 1, BASE, PAGE_SIZE, PROT_NONE);
    assert_eq!(reg.pwrite(2, KBUF, 1, BASE), Err(Errno::ENOENT));
    assert_eq!(reg.pwrite(1, KMEM, 1, BASE), Err(Errno::EFAULT));
    assert_eq!(reg.pread(1, KMEM - 1, 2, BASE), Err(Errno::EFAULT));
    assert_eq!(
        reg.pread(1, u64::MAX, 2, BASE),
        Err(Errno::EFAULT),
        "kbuf + n wraps"
    );
    assert_eq!(reg.pread(1, 0, u64::MAX, BASE), Err(Errno::EFAULT));
    assert_eq!(
        reg.pread(1, 0, 2, u64::MAX),
        Err(Errno::EINVAL),
        "off + n wraps"
    );
    assert_eq!(reg.pread(1, KBUF, 0, BASE), Ok(0));
    assert_eq!(reg.pread(1, KMEM, 0, 0), Ok(0));
    assert_eq!(reg.pread(1, KBUF, 100, 0x2000), Ok(0), "unmapped");
    assert_eq!(reg.pread(1, KBUF, 100, VM_MAX_USER_ADDRESS), Ok(0));
    // PROT_NONE does not stop the kernel.
    assert_eq!(reg.pwrite(1, KBUF, 4096, BASE), Ok(4096));
    assert_eq!(reg.pread(1, KBUF, 8192, BASE), Ok(4096), "short count");
    reg.audit().unwrap();
}

#[test]
fn pwrite_loads_read_only_text() {
    let (mem, mut reg) = with_space(64);
    anon(&mut reg, 1, BASE, PAGE_SIZE, PROT_READ | PROT_EXEC);
    vwrite(&mem, &mut reg, 1, BASE, &[0x90, 0xc3]);
    assert_eq!(
        reg.handle_fault(1, BASE, pf::U | pf::I),
        Ok(FaultOutcome::Resolved)
    );
    let leaf = walk(&mem, reg.root(1).unwrap(), BASE).unwrap();
    assert_eq!(leaf & (RW | NX), 0);
    assert_eq!(
        read_via_tables(&mem, reg.root(1).unwrap(), BASE, 2).unwrap(),
        [0x90, 0xc3]
    );
}

// ---------------------------------------------------------------- faults

#[test]
fn fault_outcomes() {
    let (_, mut reg) = with_space(64);
    assert_eq!(reg.handle_fault(2, BASE, pf::U), Err(Errno::ENOENT));
    anon(&mut reg, 1, BASE, PAGE_SIZE, PROT_READ);
    anon(&mut reg, 1, BASE + 0x1_0000, PAGE_SIZE, PROT_WRITE);
    anon(&mut reg, 1, BASE + 0x2_0000, PAGE_SIZE, PROT_EXEC);
    anon(&mut reg, 1, BASE + 0x3_0000, PAGE_SIZE, PROT_NONE);
    let cases = [
        (BASE, pf::U, FaultOutcome::Resolved),
        (BASE, pf::U | pf::W, FaultOutcome::Deliver),
        (BASE, pf::U | pf::I, FaultOutcome::Deliver),
        (BASE + 0x1_0000, pf::U, FaultOutcome::Resolved),
        (BASE + 0x1_0000, pf::U | pf::W, FaultOutcome::Resolved),
        (BASE + 0x1_0000, pf::U | pf::I, FaultOutcome::Deliver),
        (BASE + 0x2_0000, pf::U | pf::I, FaultOutcome::Resolved),
        (BASE + 0x2_0000, pf::U, FaultOutcome::Resolved),
        (BASE + 0x2_0000, pf::U | pf::W, FaultOutcome::Deliver),
        (BASE + 0x3_0000, pf::U, FaultOutcome::Deliver),
        (BASE + 0x4_0000, pf::U, FaultOutcome::Deliver),
        (0, pf::U, FaultOutcome::Deliver),
        (u64::MAX, pf::U | pf::W, FaultOutcome::Deliver),
        (BASE, pf::U | pf::RSVD, FaultOutcome::Deliver),
    ];
    for (addr, code, want) in cases {
        assert_eq!(
            reg.handle_fault(1, addr, code),
            Ok(want),
            "{addr:#x} {code:#x}"
        );
    }
    reg.audit().unwrap();
}

#[test]
fn fault_around_maps_the_window_inside_the_entry() {
    let (mem, mut reg) = with_space(128);
    reg.set_fault_around(16); // a 64 KiB window
                              // Entry from window offset 3 pages to 2 pages into the next window.
    anon(&mut reg, 1, BASE + 0x3000, 0xf000, RW_);
    assert_eq!(
        reg.handle_fault(1, BASE + 0x8123, pf::U | pf::W),
        Ok(FaultOutcome::Resolved)
    );
    let root = reg.root(1).unwrap();
    let mapped: Vec<u64> = check_tree(&mem, &reg, root)
        .into_iter()
        .map(|(va, _)| va)
        .collect();
    let want: Vec<u64> = (3..16).map(|i| BASE + i * 0x1000).collect();
    assert_eq!(mapped, want);
    reg.audit().unwrap();

    reg.set_fault_around(1);
    assert_eq!(
        reg.handle_fault(1, BASE + 0x1_1000, pf::U),
        Ok(FaultOutcome::Resolved)
    );
    assert_eq!(check_tree(&mem, &reg, root).len(), 14);
    reg.set_fault_around(4);
    anon(&mut reg, 1, BASE + 0x2_0000, 0x1_0000, RW_);
    assert_eq!(
        reg.handle_fault(1, BASE + 0x2_f000, pf::U),
        Ok(FaultOutcome::Resolved)
    );
    assert_eq!(check_tree(&mem, &reg, root).len(), 18);
    reg.audit().unwrap();
}

#[test]
fn a_stack_mapping_faults_in_a_small_window() {
    use vkernel_abi::mman::{MAP_STACK, STACK_FAULT_AROUND};
    let (mem, mut reg) = with_space(4096);
    reg.set_fault_around(64);
    // A thread's stack: 8 MiB, touched at its top, then one page deeper
    // than the first window, then sequentially upward (no growth).
    let len = 8 << 20;
    assert_eq!(
        reg.mmap(1, BASE, len, RW_, ANON_FIXED | MAP_STACK, FD_NONE, 0),
        Ok(BASE)
    );
    let root = reg.root(1).unwrap();
    let top = BASE + len - PAGE_SIZE;
    assert_eq!(
        reg.handle_fault(1, top + 0x10, pf::U | pf::W),
        Ok(FaultOutcome::Resolved)
    );
    let mapped: Vec<u64> = check_tree(&mem, &reg, root)
        .into_iter()
        .map(|(va, _)| va)
        .collect();
    let want: Vec<u64> = (0..STACK_FAULT_AROUND)
        .map(|i| BASE + len - (STACK_FAULT_AROUND - i) * PAGE_SIZE)
        .collect();
    assert_eq!(mapped, want, "the aligned window at the top only");
    let below = BASE + len - (STACK_FAULT_AROUND + 1) * PAGE_SIZE;
    assert_eq!(
        reg.handle_fault(1, below, pf::U | pf::W),
        Ok(FaultOutcome::Resolved)
    );
    assert_eq!(
        check_tree(&mem, &reg, root).len() as u64,
        2 * STACK_FAULT_AROUND
    );
    // Going on down (a deep recursion): each fault just below doubles
    // the window, as a sequential touch upward grows it.
    for total in [
        4 * STACK_FAULT_AROUND,
        8 * STACK_FAULT_AROUND,
        16 * STACK_FAULT_AROUND,
    ] {
        let lowest = BASE + len - (total / 2) * PAGE_SIZE;
        assert_eq!(
            reg.handle_fault(1, lowest - PAGE_SIZE, pf::U | pf::W),
            Ok(FaultOutcome::Resolved)
        );
        assert_eq!(check_tree(&mem, &reg, root).len() as u64, total);
    }
    let deep = 16 * STACK_FAULT_AROUND;
    let mut next = BASE;
    for _ in 0..4 {
        assert_eq!(
            reg.handle_fault(1, next, pf::U | pf::W),
            Ok(FaultOutcome::Resolved)
        );
        next += STACK_FAULT_AROUND * PAGE_SIZE;
    }
    assert_eq!(
        check_tree(&mem, &reg, root).len() as u64,
        deep + 4 * STACK_FAULT_AROUND,
        "a sequential touch upward of a stack does not grow its window"
    );
    reg.audit().unwrap();
    // The same mapping without MAP_STACK: the usual 64-page window.
    anon(&mut reg, 1, BASE, len, RW_);
    assert_eq!(
        reg.handle_fault(1, top, pf::U | pf::W),
        Ok(FaultOutcome::Resolved)
    );
    assert_eq!(check_tree(&mem, &reg, root).len(), 64);
    reg.audit().unwrap();
}

#[test]
fn a_sequential_first_touch_grows_the_window_and_a_sparse_one_does_not() {
    let (mem, mut reg) = with_space(4096);
    reg.set_fault_around(64);
    let len = 16 << 20;
    let unmapped = reg.charged_pages(1).unwrap();
    anon(&mut reg, 1, BASE, len, RW_);
    let root = reg.root(1).unwrap();
    let charged0 = reg.charged_pages(1).unwrap();
    // Sparse: one fault per 1 MiB maps its own 64 pages, no more.
    for i in 0..4u64 {
        let va = BASE + (8 << 20) + i * (1 << 20);
        assert_eq!(
            reg.handle_fault(1, va, pf::U | pf::W),
            Ok(FaultOutcome::Resolved)
        );
        assert_eq!(check_tree(&mem, &reg, root).len() as u64, 64 * (i + 1));
    }
    assert_eq!(reg.charged_pages(1).unwrap() - charged0, 4 * 64);
    // Sequential from BASE: each fault lands on the page past the last
    // window and maps twice as much as the one before, up to 512 pages
    // (2 MiB); a window never reaches past what was touched in order
    // by more than that.
    let mut next = BASE;
    let mut mapped = check_tree(&mem, &reg, root).len() as u64;
    for want in [64u64, 64, 128, 256, 512, 512] {
        assert_eq!(
            reg.handle_fault(1, next, pf::U | pf::W),
            Ok(FaultOutcome::Resolved)
        );
        let now = check_tree(&mem, &reg, root).len() as u64;
        assert_eq!(now - mapped, want, "fault at {next:#x}");
        mapped = now;
        next += want * PAGE_SIZE;
    }
    // A fault elsewhere starts over with 64 pages.
    let va = BASE + (14 << 20);
    assert_eq!(
        reg.handle_fault(1, va, pf::U | pf::W),
        Ok(FaultOutcome::Resolved)
    );
    assert_eq!(check_tree(&mem, &reg, root).len() as u64 - mapped, 64);
    assert_eq!(
        reg.charged_pages(1).unwrap() - charged0,
        check_tree(&mem, &reg, root).len() as u64
    );
    reg.audit().unwrap();
    reg.munmap(1, BASE, len).unwrap();
    assert_eq!(reg.charged_pages(1), Some(unmapped));
    reg.audit().unwrap();
}

#[test]
fn spurious_fault_on_a_valid_leaf_asks_for_a_flush() {
    let (_, mut reg) = with_space(64);
    anon(&mut reg, 1, BASE, PAGE_SIZE, RW_);
    assert_eq!(
        reg.handle_fault(1, BASE, pf::U | pf::W),
        Ok(FaultOutcome::Resolved)
    );
    reg.take_translation_reduced();
    assert_eq!(
        reg.handle_fault(1, BASE, pf::U | pf::W | pf::P),
        Ok(FaultOutcome::Resolved)
    );
    assert!(reg.take_translation_reduced());
    // A fresh mapping does not need a flush.
    anon(&mut reg, 1, BASE + 0x10_0000, PAGE_SIZE, RW_);
    assert_eq!(
        reg.handle_fault(1, BASE + 0x10_0000, pf::U),
        Ok(FaultOutcome::Resolved)
    );
    assert!(!reg.take_translation_reduced());
}

// ---------------------------------------------------------------- clone

#[test]
fn clone_checks() {
    let (_, mut reg) = with_space(64);
    reg.create(2, 0, 0).unwrap();
    assert_eq!(reg.clone_vmspace(1, 0), Err(Errno::EINVAL));
    assert_eq!(reg.clone_vmspace(1, 2), Err(Errno::EEXIST));
    assert_eq!(reg.clone_vmspace(3, 4), Err(Errno::ENOENT));
    assert!(!reg.contains(4));
}

#[test]
fn clone_copies_private_pages_and_shares_kernel_pages() {
    let (mem, mut reg) = with_space(64);
    anon(&mut reg, 1, BASE, 2 * PAGE_SIZE, RW_);
    reg.mmap(
        1,
        BASE + 0x1_0000,
        4096,
        RW_,
        MAP_SHARED | MAP_FIXED,
        PHYSMEM_FD,
        0x7000,
    )
    .unwrap();
    reg.mmap(
        1,
        BASE + 0x2_0000,
        4096,
        RW_,
        MAP_PRIVATE | MAP_FIXED,
        PHYSMEM_FD,
        0x8000,
    )
    .unwrap();
    vwrite(&mem, &mut reg, 1, BASE, b"parent");
    vwrite(&mem, &mut reg, 1, BASE + 0x2_0000, b"private");
    assert_eq!(reg.handle_fault(1, BASE, pf::U), Ok(FaultOutcome::Resolved));
    reg.clone_vmspace(1, 2).unwrap();
    assert_eq!(reg.charged_pages(2), reg.charged_pages(1));
    reg.audit().unwrap();
    assert_eq!(vread(&mem, &mut reg, 2, BASE, 6), b"parent");
    assert_eq!(vread(&mem, &mut reg, 2, BASE + 0x2_0000, 7), b"private");
    vwrite(&mem, &mut reg, 2, BASE, b"child!");
    vwrite(&mem, &mut reg, 2, BASE + 0x2_0000, b"CHILD!!");
    assert_eq!(vread(&mem, &mut reg, 1, BASE, 6), b"parent");
    assert_eq!(vread(&mem, &mut reg, 1, BASE + 0x2_0000, 7), b"private");
    vwrite(&mem, &mut reg, 2, BASE + 0x1_0000, b"shared");
    assert_eq!(vread(&mem, &mut reg, 1, BASE + 0x1_0000, 6), b"shared");
    assert_eq!(get(&mem, 0x7000, 6), b"shared");
    assert_eq!(
        reg.handle_fault(2, BASE, pf::U | pf::W),
        Ok(FaultOutcome::Resolved)
    );
    assert_eq!(
        read_via_tables(&mem, reg.root(2).unwrap(), BASE, 6).unwrap(),
        b"child!"
    );
    check_tree(&mem, &reg, reg.root(2).unwrap());
    reg.audit().unwrap();
}

#[test]
fn clone_without_room_makes_nothing() {
    let (_, mut reg) = with_space(24);
    anon(&mut reg, 1, BASE, 8 * PAGE_SIZE, RW_);
    reg.mcontrol(1, BASE, 8 * PAGE_SIZE, MADV_WILLNEED, 0)
        .unwrap();
    let in_use = reg.pages_in_use();
    assert_eq!(reg.clone_vmspace(1, 2), Err(Errno::ENOMEM));
    assert!(!reg.contains(2));
    assert_eq!(reg.pages_in_use(), in_use);
    reg.audit().unwrap();
}

/// Parent 1 with 128 anonymous pages at BASE, the first 64 mapped (one
/// fault's window), "parent" written at BASE.
fn forking_parent(pool_pages: u64) -> (GuestMemoryMmap, VmspaceRegistry) {
    let (mem, mut reg) = with_space(pool_pages);
    anon(&mut reg, 1, BASE, 128 * PAGE_SIZE, RW_);
    vwrite(&mem, &mut reg, 1, BASE, b"parent");
    assert_eq!(
        reg.handle_fault(1, BASE, pf::U | pf::W),
        Ok(FaultOutcome::Resolved)
    );
    ran(&mut reg, 1);
    (mem, reg)
}

#[test]
fn a_fork_loop_takes_over_the_dead_childs_tree() {
    let (mem, mut reg) = forking_parent(256);
    let baseline = reg.pages_in_use();
    reg.clone_vmspace(1, 2).unwrap();
    ran(&mut reg, 2);
    let root = reg.root(2).unwrap();
    // The child writes its copy, and a page past the parent's frames
    // (which gets a frame, not a leaf).
    assert_eq!(reg.frame_pages(1), Some(64));
    vwrite(&mem, &mut reg, 2, BASE, b"child!");
    vwrite(&mem, &mut reg, 2, BASE + 100 * PAGE_SIZE, b"only the child");
    assert_eq!(reg.frame_pages(2), Some(65));
    assert!(vwrite_visible(&mem, &mut reg, 2));
    reg.take_translation_reduced();
    reg.destroy(2).unwrap();
    assert_eq!(reg.pages_in_use(), baseline);
    assert!(reg.spare_pages() > 0);
    // The parent writes after the child died; the next child sees that,
    // in the same tree (the same leaves map the same frames, so nothing
    // KVM cached is stale: no flush).
    vwrite(&mem, &mut reg, 1, BASE, b"PARENT");
    reg.clone_vmspace(1, 3).unwrap();
    assert_eq!(reg.root(3), Some(root), "the dead child's tree is reused");
    assert_eq!(reg.spare_pages(), 0);
    assert!(!reg.take_translation_reduced());
    reg.audit().unwrap();
    assert_eq!(reg.charged_pages(3), reg.charged_pages(1));
    assert_eq!(reg.frame_pages(3), reg.frame_pages(1));
    assert_eq!(vread(&mem, &mut reg, 3, BASE, 6), b"PARENT");
    assert_eq!(
        read_via_tables(&mem, root, BASE, 6).unwrap(),
        b"PARENT",
        "the leaf maps the new contents"
    );
    assert_eq!(
        vread(&mem, &mut reg, 3, BASE + 100 * PAGE_SIZE, 14),
        vec![0; 14],
        "the dead child's own page is gone"
    );
    // Each side's writes stay its own.
    vwrite(&mem, &mut reg, 3, BASE, b"child3");
    assert_eq!(vread(&mem, &mut reg, 1, BASE, 6), b"PARENT");
    vwrite(&mem, &mut reg, 1, BASE + PAGE_SIZE, b"later");
    assert_eq!(vread(&mem, &mut reg, 3, BASE + PAGE_SIZE, 5), vec![0; 5]);
    // The next child has the same pages as its parent: the frame map is
    // taken as it is.
    ran(&mut reg, 3);
    reg.destroy(3).unwrap();
    reg.clone_vmspace(1, 4).unwrap();
    assert_eq!(reg.root(4), Some(root));
    assert_eq!(vread(&mem, &mut reg, 4, BASE, 6), b"PARENT");
    assert_eq!(vread(&mem, &mut reg, 4, BASE + PAGE_SIZE, 5), b"later");
    reg.audit().unwrap();
    reg.destroy(4).unwrap();
    reg.audit().unwrap();
    reg.end_spare();
    reg.audit().unwrap();
    assert_eq!(reg.pages_in_use(), baseline);
}

/// Whether BASE of vmspace `id` is mapped (its tables hold a leaf).
fn vwrite_visible(mem: &GuestMemoryMmap, reg: &mut VmspaceRegistry, id: u64) -> bool {
    walk(mem, reg.root(id).unwrap(), BASE).is_some()
}

#[test]
fn a_large_dead_process_is_not_kept() {
    let (_, mut reg) = with_space(8192);
    let pages = vmspace::registry::SPARE_MAX_PAGES;
    anon(&mut reg, 1, BASE, pages * PAGE_SIZE, RW_);
    reg.mcontrol(1, BASE, pages * PAGE_SIZE, MADV_WILLNEED, 0)
        .unwrap();
    reg.destroy(1).unwrap();
    assert_eq!(reg.spare_pages(), 0);
    assert_eq!(reg.pool().reserved_pages(), 0);
    reg.create(2, 0, 0).unwrap();
    anon(&mut reg, 2, BASE, (pages - 16) * PAGE_SIZE, RW_);
    reg.mcontrol(2, BASE, (pages - 16) * PAGE_SIZE, MADV_WILLNEED, 0)
        .unwrap();
    reg.destroy(2).unwrap();
    assert!(reg.spare_pages() > 0);
    reg.audit().unwrap();
}

#[test]
fn a_dead_child_with_mappings_of_its_own_is_not_taken_over() {
    let (mem, mut reg) = forking_parent(256);
    reg.clone_vmspace(1, 2).unwrap();
    ran(&mut reg, 2);
    let root = reg.root(2).unwrap();
    // A mapping only the child has, mapped.
    anon(&mut reg, 2, BASE + 0x40_0000, PAGE_SIZE, RW_);
    assert_eq!(
        reg.handle_fault(2, BASE + 0x40_0000, pf::U | pf::W),
        Ok(FaultOutcome::Resolved)
    );
    reg.take_translation_reduced();
    reg.destroy(2).unwrap();
    reg.clone_vmspace(1, 3).unwrap();
    assert_ne!(reg.root(3), Some(root));
    assert_eq!(walk(&mem, reg.root(3).unwrap(), BASE + 0x40_0000), None);
    assert!(!reg.take_translation_reduced());
    assert_eq!(vread(&mem, &mut reg, 3, BASE, 6), b"parent");
    reg.audit().unwrap();
    // Nor one whose leaf has other flags than the parent's would.
    ran(&mut reg, 3);
    let root = reg.root(3).unwrap();
    reg.destroy(3).unwrap();
    assert_eq!(reg.mprotect(1, BASE, 128 * PAGE_SIZE, PROT_READ), Ok(()));
    assert_eq!(reg.handle_fault(1, BASE, pf::U), Ok(FaultOutcome::Resolved));
    reg.clone_vmspace(1, 4).unwrap();
    assert_ne!(reg.root(4), Some(root));
    let leaf = walk(&mem, reg.root(4).unwrap(), BASE).unwrap();
    assert_eq!(leaf & RW, 0, "read-only as the parent's");
    reg.audit().unwrap();
}

#[test]
fn the_dead_child_kept_for_a_clone_gives_its_pages_to_whoever_needs_them() {
    let (mem, mut reg) = with_space(40);
    anon(&mut reg, 1, BASE + 0x10_0000, 8 * PAGE_SIZE, RW_);
    reg.mcontrol(1, BASE + 0x10_0000, 8 * PAGE_SIZE, MADV_WILLNEED, 0)
        .unwrap();
    reg.clone_vmspace(1, 2).unwrap();
    reg.destroy(2).unwrap();
    // Its PML4, three tables and eight frames.
    assert_eq!(reg.spare_pages(), 12);
    // Another process needs more than is free beside the spare.
    let free = reg.pool().available_pages();
    assert!(free < 12, "{free}");
    reg.create(3, 0, 0).unwrap();
    anon(&mut reg, 3, BASE, 12 * PAGE_SIZE, RW_);
    reg.mcontrol(3, BASE, 12 * PAGE_SIZE, MADV_WILLNEED, 0)
        .unwrap();
    assert_eq!(reg.spare_pages(), 0);
    vwrite(&mem, &mut reg, 3, BASE + 11 * PAGE_SIZE, b"room");
    reg.audit().unwrap();
}

// ---------------------------------------------------------------- lifecycle

#[test]
fn teardown_all_reports_running_spaces_and_empties_the_pool() {
    let (mem, mut reg) = setup(128);
    let baseline = reg.pages_in_use();
    for id in 1..=3 {
        reg.create(id, 0, 0).unwrap();
        anon(&mut reg, id, BASE, 4 * PAGE_SIZE, RW_);
        vwrite(&mem, &mut reg, id, BASE, b"x");
        reg.handle_fault(id, BASE, pf::U).unwrap();
    }
    assert!(reg.acquire_for_run(2).is_ok());
    assert_eq!(reg.acquire_for_run(2), reg.root(2).ok_or(Errno::ENOENT));
    assert_eq!(reg.acquire_for_run(9), Err(Errno::ENOENT));
    // Listed without ending anything, then ended.
    assert_eq!(reg.running_ids(), vec![2]);
    assert_eq!(reg.ids().len(), 3);
    assert_eq!(reg.teardown_all(), vec![2]);
    assert!(reg.ids().is_empty());
    assert_eq!(reg.pages_in_use(), baseline);
    assert_eq!(reg.pool().reserved_pages(), 0);
    reg.audit().unwrap();
}

#[test]
fn map_entry_limit_is_enomem() {
    let (_, mut reg) = with_space(64);
    reg.set_max_map_entries(2);
    anon(&mut reg, 1, BASE, 4 * PAGE_SIZE, RW_);
    assert_eq!(
        reg.mprotect(1, BASE + 0x1000, 0x1000, PROT_READ),
        Err(Errno::ENOMEM)
    );
    assert_eq!(reg.mprotect(1, BASE, 0x1000, PROT_READ), Ok(()));
    assert_eq!(
        reg.mmap(1, 0, 4096, RW_, MAP_ANON | MAP_PRIVATE, FD_NONE, 0),
        Err(Errno::ENOMEM)
    );
    reg.munmap(1, BASE, 0x1000).unwrap();
    reg.munmap(1, BASE + 0x3000, 0x1000).unwrap();
    reg.set_max_map_entries(1);
    assert_eq!(
        reg.munmap(1, BASE + 0x1000, 0x1000),
        Ok(()),
        "no split at an edge"
    );
    anon(&mut reg, 1, BASE, 3 * PAGE_SIZE, RW_);
    assert_eq!(
        reg.munmap(1, BASE + 0x1000, 0x1000),
        Err(Errno::ENOMEM),
        "middle split"
    );
    reg.audit().unwrap();
}

#[test]
fn trap_entry_installed_late_reaches_existing_spaces() {
    let (mem, mut reg) = with_space(64);
    let old = reg.trap_area_pml4e();
    // A second host tree with its own trap-area tables.
    let page = reg.pool_mut().alloc_zeroed().unwrap();
    let mut pt = reg.host_page_table();
    let host_root = pt.new_root().unwrap();
    pt.map_4k(host_root, TRAP_AREA_BASE, page, P | US).unwrap();
    let new = pt.read(host_root, 255).unwrap();
    assert_ne!(new, old);
    reg.take_translation_reduced();
    reg.set_trap_area_pml4e(new);
    assert!(reg.take_translation_reduced());
    let root = reg.root(1).unwrap();
    check_tree(&mem, &reg, root);
    assert_eq!(walk(&mem, root, TRAP_AREA_BASE).unwrap() & ADDR, page);
    reg.create(2, 0, 0).unwrap();
    check_tree(&mem, &reg, reg.root(2).unwrap());
    let in_use = reg.pages_in_use();
    reg.destroy(1).unwrap();
    reg.destroy(2).unwrap();
    // The shared tables survive every teardown.
    assert_eq!(reg.pages_in_use(), in_use - 2);
    assert_eq!(walk(&mem, host_root, TRAP_AREA_BASE).unwrap() & ADDR, page);
}

#[test]
fn ten_thousand_cycles_leave_the_pool_as_it_was() {
    let (mem, mut reg) = setup(64);
    let baseline = reg.pages_in_use();
    for i in 0..10_000u64 {
        let id = i % 7 + 1;
        reg.create(id, 0, 0).unwrap();
        let at = reg
            .mmap(
                id,
                0,
                5 * PAGE_SIZE,
                RW_,
                MAP_ANON | MAP_PRIVATE,
                FD_NONE,
                0,
            )
            .unwrap();
        if i % 2 == 0 {
            assert_eq!(
                reg.handle_fault(id, at + (i % 5) * PAGE_SIZE, pf::U | pf::W),
                Ok(FaultOutcome::Resolved)
            );
        } else {
            put(&mem, KBUF, &i.to_le_bytes());
            assert_eq!(reg.pwrite(id, KBUF, 8, at + 4090), Ok(8));
        }
        reg.destroy(id).unwrap();
    }
    assert_eq!(reg.pages_in_use(), baseline);
    reg.audit().unwrap();
    reg.end_spare();
    assert_eq!(reg.pages_in_use(), baseline);
    assert_eq!(reg.pool().reserved_pages(), 0);
}
