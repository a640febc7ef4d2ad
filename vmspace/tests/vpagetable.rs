//! `MAP_VPAGETABLE`, `MADV_SETMAP`, `MADV_INVAL`: the errno paths, and
//! faults resolved or delivered through a guest page table built in test
//! memory (the guest kernel's RAM), checked through the real shadow tables.

mod common;

use common::*;
use vkernel_abi::layout::{PAGE_SIZE, POOL_BASE, VM_MAX_USER_ADDRESS, VM_MIN_USER_ADDRESS};
use vkernel_abi::mman::*;
use vkernel_abi::Errno;
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};
use vmspace::commit::SHADOW_TABLE_PAGES;
use vmspace::fault::pf;
use vmspace::{FaultOutcome, VmspaceRegistry};

/// The VPAGETABLE window: PML4 slot 0, PDPT slot 1, PD slot 0.
const VBASE: u64 = 0x4000_0000;
/// The guest's tables, in kernel RAM.
const PML4: u64 = 0xa_0000;
const PDPT: u64 = 0xa_1000;
const PD: u64 = 0xa_2000;
const PT: u64 = 0xa_3000;
/// Two data pages of the kernel.
const PAGE_A: u64 = 0xc_0000;
const PAGE_B: u64 = 0xc_1000;
const KBUF: u64 = 0x8_0000;
const RW_: u64 = PROT_READ | PROT_WRITE;
const VPT: u64 = MAP_SHARED | MAP_FIXED | MAP_VPAGETABLE;
const TABLE: u64 = P | RW | US;
/// Pool pages: room for a vmspace's shadow allowance and then some.
const POOL: u64 = 256;

fn set(mem: &GuestMemoryMmap, table: u64, idx: u64, e: u64) {
    mem.write_obj(e, GuestAddress(table + idx * 8)).unwrap();
}

fn get(mem: &GuestMemoryMmap, table: u64, idx: u64) -> u64 {
    mem.read_obj(GuestAddress(table + idx * 8)).unwrap()
}

/// Zeroes the guest's tables and links PML4 → PDPT → PD → PT for VBASE.
fn guest_tables(mem: &GuestMemoryMmap) {
    for t in [PML4, PDPT, PD, PT] {
        mem.write_slice(&[0u8; 4096], GuestAddress(t)).unwrap();
    }
    set(mem, PML4, 0, PDPT | TABLE);
    set(mem, PDPT, 1, PD | TABLE);
    set(mem, PD, 0, PT | TABLE);
}

/// Space 1 with a 16-page VPAGETABLE mapping at VBASE, guest tables built,
/// root set.
fn vpt_space(prot: u64) -> (GuestMemoryMmap, VmspaceRegistry) {
    let (mem, mut reg) = setup(POOL);
    reg.create(1, 0, 0).unwrap();
    guest_tables(&mem);
    assert_eq!(
        reg.mmap(1, VBASE, 16 * PAGE_SIZE, prot, VPT, PHYSMEM_FD, 0),
        Ok(VBASE)
    );
    assert_eq!(
        reg.mcontrol(1, VBASE, 16 * PAGE_SIZE, MADV_SETMAP, PML4),
        Ok(())
    );
    reg.audit().unwrap();
    (mem, reg)
}

fn shadow(mem: &GuestMemoryMmap, reg: &VmspaceRegistry, va: u64) -> Option<u64> {
    walk(mem, reg.root(1).unwrap(), va)
}

/// A fault of vmspace 1 while it runs (as every fault is): from then on
/// KVM may have shadowed its tables.
fn fault(reg: &mut VmspaceRegistry, va: u64, code: u64) -> FaultOutcome {
    reg.acquire_for_run(1).unwrap();
    let outcome = reg.handle_fault(1, va, code).unwrap();
    reg.release(1).unwrap();
    outcome
}

#[test]
fn mmap_vpagetable_errors() {
    let (_, mut reg) = setup(POOL);
    reg.create(1, 0, 0).unwrap();
    let m = |reg: &mut VmspaceRegistry, prot, flags, fd, off| {
        reg.mmap(1, VBASE, 4 * PAGE_SIZE, prot, flags, fd, off)
    };
    // DragonFly: needs PROT_READ|PROT_WRITE.
    for prot in [PROT_READ, PROT_WRITE, PROT_NONE, PROT_READ | PROT_EXEC] {
        assert_eq!(
            m(&mut reg, prot, VPT, PHYSMEM_FD, 0),
            Err(Errno::EINVAL),
            "{prot}"
        );
    }
    // Only shared, only over the physical-memory fd.
    assert_eq!(
        m(
            &mut reg,
            RW_,
            MAP_PRIVATE | MAP_FIXED | MAP_VPAGETABLE,
            PHYSMEM_FD,
            0
        ),
        Err(Errno::EINVAL)
    );
    assert_eq!(
        m(&mut reg, RW_, VPT | MAP_ANON, FD_NONE, 0),
        Err(Errno::EINVAL)
    );
    assert_eq!(m(&mut reg, RW_, VPT, 5, 0), Err(Errno::EBADF));
    assert_eq!(m(&mut reg, RW_, VPT, FD_NONE, 0), Err(Errno::EBADF));
    assert_eq!(m(&mut reg, RW_, VPT, PHYSMEM_FD, 0x10), Err(Errno::EINVAL));
    assert_eq!(reg.charged_pages(1), Some(1));
    // Larger than RAM is fine: the guest's tables pick the pages.
    assert_eq!(
        reg.mmap(1, VBASE, 4 * KMEM, RW_ | PROT_EXEC, VPT, PHYSMEM_FD, 0),
        Ok(VBASE)
    );
    // Charged the shadow allowance, not for its tables, never for frames.
    assert_eq!(reg.charged_pages(1), Some(1 + SHADOW_TABLE_PAGES));
    reg.audit().unwrap();
}

#[test]
fn setmap_errors() {
    let (_, mut reg) = setup(POOL);
    reg.create(1, 0, 0).unwrap();
    let anon = MAP_ANON | MAP_PRIVATE | MAP_FIXED;
    reg.mmap(1, 0x1000_0000, PAGE_SIZE, RW_, anon, FD_NONE, 0)
        .unwrap();
    reg.mmap(1, VBASE, 4 * PAGE_SIZE, RW_, VPT, PHYSMEM_FD, 0)
        .unwrap();
    let setmap =
        |reg: &mut VmspaceRegistry, addr, len, root| reg.mcontrol(1, addr, len, MADV_SETMAP, root);
    // Not a VPAGETABLE range: anonymous, nothing, a hole, empty.
    assert_eq!(
        setmap(&mut reg, 0x1000_0000, PAGE_SIZE, PML4),
        Err(Errno::EINVAL)
    );
    assert_eq!(
        setmap(&mut reg, 0x2000_0000, PAGE_SIZE, PML4),
        Err(Errno::EINVAL)
    );
    assert_eq!(
        setmap(&mut reg, VBASE, 5 * PAGE_SIZE, PML4),
        Err(Errno::EINVAL)
    );
    assert_eq!(setmap(&mut reg, VBASE, 0, PML4), Err(Errno::EINVAL));
    // Bad roots: unaligned, outside RAM (at its end, in the pool, huge).
    for root in [PML4 + 8, PML4 | 7, KMEM, POOL_BASE, !0xfff] {
        assert_eq!(
            setmap(&mut reg, VBASE, PAGE_SIZE, root),
            Err(Errno::EINVAL),
            "{root:#x}"
        );
    }
    assert_eq!(setmap(&mut reg, VBASE, PAGE_SIZE, KMEM - PAGE_SIZE), Ok(()));
    // Part of the entry: split.
    assert_eq!(reg.audit(), Ok(()));
    assert_eq!(setmap(&mut reg, VBASE, 4 * PAGE_SIZE, PML4), Ok(()));
    reg.audit().unwrap();
}

#[test]
fn no_root_yet_delivers_not_present() {
    let (_, mut reg) = setup(POOL);
    reg.create(1, 0, 0).unwrap();
    reg.mmap(1, VBASE, PAGE_SIZE, RW_, VPT, PHYSMEM_FD, 0)
        .unwrap();
    assert_eq!(
        fault(&mut reg, VBASE, pf::U),
        FaultOutcome::DeliverWith { error_code: pf::U }
    );
}

#[test]
fn fault_resolved_through_the_guest_table() {
    let (mem, mut reg) = vpt_space(RW_);
    set(&mem, PT, 0, PAGE_A | P | RW | US);
    // A read maps the guest's page read-only (not dirty yet) and sets A.
    assert_eq!(
        fault(&mut reg, VBASE + 0x123, pf::U),
        FaultOutcome::Resolved
    );
    assert_eq!(
        shadow(&mem, &reg, VBASE),
        Some(PAGE_A | P | US | A | NX),
        "read fault"
    );
    assert_eq!(get(&mem, PT, 0), PAGE_A | P | RW | US | A);
    // The first write sets D in the guest's entry and makes it writable.
    assert_eq!(
        fault(&mut reg, VBASE + 8, pf::U | pf::W | pf::P),
        FaultOutcome::Resolved
    );
    assert_eq!(
        shadow(&mem, &reg, VBASE),
        Some(PAGE_A | P | US | A | RW | D | NX)
    );
    assert_eq!(get(&mem, PT, 0), PAGE_A | P | RW | US | A | D);
    // Nothing else was mapped (no accessed neighbour to fault around).
    let leaves = check_tree(&mem, &reg, reg.root(1).unwrap());
    assert_eq!(leaves.len(), 1);
    let data = read_via_tables(&mem, reg.root(1).unwrap(), VBASE, 16).unwrap();
    assert_eq!(data, (PAGE_A..PAGE_A + 16).map(kbyte).collect::<Vec<_>>());
    reg.audit().unwrap();
}

#[test]
fn a_run_resolves_the_fetch_it_is_about_to_fault_on() {
    let rwx = RW_ | PROT_EXEC;
    let (mem, mut reg) = vpt_space(rwx);
    // Guest page 0 executable, page 1 not (NX), page 2 absent.
    set(&mem, PT, 0, PAGE_A | P | RW | US);
    set(&mem, PT, 1, PAGE_B | P | RW | US | NX);
    assert!(reg.prefault_fetch(1, VBASE + 0x10));
    // As a fetch fault would: accessed in the guest's leaf, a readable
    // and executable shadow leaf (not writable: not dirty yet).
    assert_eq!(shadow(&mem, &reg, VBASE), Some(PAGE_A | P | US | A));
    assert_eq!(get(&mem, PT, 0), PAGE_A | P | RW | US | A);
    assert!(!reg.take_translation_reduced());
    // Shadowed already: nothing to do. The guest refuses, or has no page:
    // left to the fault, which delivers it.
    assert!(!reg.prefault_fetch(1, VBASE));
    assert!(!reg.prefault_fetch(1, VBASE + PAGE_SIZE));
    assert_eq!(shadow(&mem, &reg, VBASE + PAGE_SIZE), None);
    assert_eq!(get(&mem, PT, 1), PAGE_B | P | RW | US | NX, "not accessed");
    assert!(!reg.prefault_fetch(1, VBASE + 2 * PAGE_SIZE));
    // Outside the entry, an unknown vmspace: nothing.
    assert!(!reg.prefault_fetch(1, VBASE + 16 * PAGE_SIZE));
    assert!(!reg.prefault_fetch(7, VBASE));
    reg.audit().unwrap();
    // An entry without PROT_EXEC: no fetch is allowed there.
    let (mem, mut reg) = vpt_space(RW_);
    set(&mem, PT, 0, PAGE_A | P | RW | US);
    assert!(!reg.prefault_fetch(1, VBASE));
    assert_eq!(shadow(&mem, &reg, VBASE), None);
    assert_eq!(get(&mem, PT, 0), PAGE_A | P | RW | US);
    // Nor does it touch a host-managed entry.
    anon_exec(&mut reg);
    assert!(!reg.prefault_fetch(1, 0x1000_0000));
    assert_eq!(walk(&mem, reg.root(1).unwrap(), 0x1000_0000), None);
}

fn anon_exec(reg: &mut VmspaceRegistry) {
    assert_eq!(
        reg.mmap(
            1,
            0x1000_0000,
            PAGE_SIZE,
            PROT_READ | PROT_EXEC,
            MAP_ANON | MAP_PRIVATE | MAP_FIXED,
            FD_NONE,
            0
        ),
        Ok(0x1000_0000)
    );
}

/// Vmspace `id` as a guest pmap makes a fork's child: create, the
/// 16-page VPAGETABLE mapping at VBASE with `prot`, SETMAP to the guest's
/// tables at PML4.
fn vpt_child(reg: &mut VmspaceRegistry, id: u64, prot: u64) {
    reg.create(id, 0, 0).unwrap();
    assert_eq!(
        reg.mmap(id, VBASE, 16 * PAGE_SIZE, prot, VPT, PHYSMEM_FD, 0),
        Ok(VBASE)
    );
    assert_eq!(
        reg.mcontrol(id, VBASE, 16 * PAGE_SIZE, MADV_SETMAP, PML4),
        Ok(())
    );
}

#[test]
fn a_fork_child_takes_over_the_dead_childs_shadow_when_it_fits() {
    let (mem, mut reg) = vpt_space(RW_);
    let baseline = reg.pages_in_use();
    set(&mem, PT, 0, PAGE_A | P | RW | US);
    set(&mem, PT, 1, PAGE_B | P | RW | US);
    assert_eq!(fault(&mut reg, VBASE, pf::U), FaultOutcome::Resolved);
    assert_eq!(
        fault(&mut reg, VBASE + PAGE_SIZE, pf::U | pf::W),
        FaultOutcome::Resolved
    );
    let root = reg.root(1).unwrap();
    reg.take_translation_reduced();
    reg.destroy(1).unwrap();
    assert_eq!(reg.pages_in_use(), baseline - 1);
    // The next child's guest tables map the same pages, accessed: it
    // runs on the dead one's shadow, and no translation changed.
    vpt_child(&mut reg, 2, RW_);
    assert_eq!(reg.root(2), Some(root));
    assert_eq!(reg.spare_pages(), 0);
    assert_eq!(walk(&mem, root, VBASE), Some(PAGE_A | P | US | A | NX));
    assert_eq!(
        walk(&mem, root, VBASE + PAGE_SIZE),
        Some(PAGE_B | P | US | A | RW | D | NX)
    );
    assert!(!reg.take_translation_reduced());
    reg.audit().unwrap();
    // A guest leaf that maps another page now, or is not dirty any more
    // (the leaf is read-only), or not accessed (no leaf): the dead
    // child's shadow with that leaf rewritten as a fault would, in a copy
    // of its tables (a new root: KVM never walked it), the other leaf
    // left as it was. A leaf that only gains a right (the dead child's
    // was read-only, the guest's leaf is dirty now) is rewritten in place.
    let (rw, ro) = (PAGE_B | P | RW | US | A | D, PAGE_B | P | RW | US | A);
    for (i, (before, changed, shadowed, copied)) in [
        (
            rw,
            PAGE_A | P | RW | US | A | D,
            Some(PAGE_A | P | US | A | RW | D | NX),
            true,
        ),
        (rw, ro, Some(PAGE_B | P | US | A | NX), true),
        (rw, PAGE_B | P | RW | US | D, None, true),
        (ro, rw, Some(PAGE_B | P | US | A | RW | D | NX), false),
    ]
    .into_iter()
    .enumerate()
    {
        let id = 3 + i as u64;
        // The dead child's shadow of the second page, from `before`.
        set(&mem, PT, 1, before);
        let code = if before & D != 0 {
            pf::U | pf::W
        } else {
            pf::U
        };
        reg.acquire_for_run(id - 1).unwrap();
        assert_eq!(
            reg.handle_fault(id - 1, VBASE + PAGE_SIZE, code),
            Ok(FaultOutcome::Resolved)
        );
        reg.release(id - 1).unwrap();
        reg.take_translation_reduced();
        let root = reg.root(id - 1).unwrap();
        reg.destroy(id - 1).unwrap();
        set(&mem, PT, 1, changed);
        vpt_child(&mut reg, id, RW_);
        assert_eq!(reg.root(id) != Some(root), copied, "{changed:#x}");
        assert_eq!(reg.spare_pages(), 0);
        let now = reg.root(id).unwrap();
        assert_eq!(walk(&mem, now, VBASE), Some(PAGE_A | P | US | A | NX));
        assert_eq!(walk(&mem, now, VBASE + PAGE_SIZE), shadowed, "{changed:#x}");
        assert!(!reg.take_translation_reduced());
        reg.audit().unwrap();
    }
    // Other entries (another protection): a fresh shadow.
    let root = reg.root(6).unwrap();
    reg.destroy(6).unwrap();
    vpt_child(&mut reg, 7, RW_ | PROT_EXEC);
    assert_ne!(reg.root(7), Some(root));
    reg.audit().unwrap();
    reg.destroy(7).unwrap();
    reg.end_spare();
    assert_eq!(reg.pages_in_use(), baseline - 1);
    assert_eq!(reg.pool().reserved_pages(), 0);
}

#[test]
fn permissions_combine_entry_and_guest_bits() {
    // An executable entry and an executable guest page: no NX.
    let (mem, mut reg) = vpt_space(RW_ | PROT_EXEC);
    set(&mem, PT, 0, PAGE_A | P | US | D);
    assert_eq!(
        fault(&mut reg, VBASE, pf::U | pf::I),
        FaultOutcome::Resolved
    );
    // Read-only at the guest: not writable even though the entry is.
    assert_eq!(shadow(&mem, &reg, VBASE), Some(PAGE_A | P | US | A));
    // NX at an upper level of the guest's tables forbids fetches.
    let pt2 = 0xa_6000;
    mem.write_slice(&[0u8; 4096], GuestAddress(pt2)).unwrap();
    set(&mem, PD, 1, pt2 | TABLE | NX);
    set(&mem, pt2, 0, PAGE_A | P | US);
    let va = VBASE + (2 << 20);
    assert_eq!(
        reg.mmap(1, va, PAGE_SIZE, RW_ | PROT_EXEC, VPT, PHYSMEM_FD, 0),
        Ok(va)
    );
    assert_eq!(reg.mcontrol(1, va, PAGE_SIZE, MADV_SETMAP, PML4), Ok(()));
    assert_eq!(fault(&mut reg, va, pf::U), FaultOutcome::Resolved);
    assert_eq!(shadow(&mem, &reg, va), Some(PAGE_A | P | US | A | NX));
    assert_eq!(
        fault(&mut reg, va, pf::U | pf::I),
        FaultOutcome::DeliverWith {
            error_code: pf::U | pf::I | pf::P
        }
    );
    // An entry without PROT_EXEC: the hardware's code, the guest not asked.
    let (mem, mut reg) = vpt_space(RW_);
    set(&mem, PT, 0, PAGE_A | P | US);
    assert_eq!(fault(&mut reg, VBASE, pf::U | pf::I), FaultOutcome::Deliver);
    assert_eq!(get(&mem, PT, 0), PAGE_A | P | US, "A untouched");
    reg.audit().unwrap();
}

#[test]
fn guest_refusals_are_delivered_with_the_guests_error_code() {
    let (mem, mut reg) = vpt_space(RW_);
    set(&mem, PT, 1, PAGE_A | P | US); // read-only
    set(&mem, PT, 2, 0); // not present
    set(&mem, PT, 3, PAGE_A | P | RW); // supervisor
    set(&mem, PT, 4, POOL_BASE | P | RW | US); // the pool
    set(&mem, PT, 5, KMEM | P | RW | US); // just past RAM
    let not_present = |code: u64| FaultOutcome::DeliverWith { error_code: code };
    let protection = |code: u64| FaultOutcome::DeliverWith {
        error_code: code | pf::P,
    };
    let page = |i: u64| VBASE + i * PAGE_SIZE;
    assert_eq!(
        fault(&mut reg, page(1), pf::U | pf::W),
        protection(pf::U | pf::W)
    );
    assert_eq!(fault(&mut reg, page(2), pf::U), not_present(pf::U));
    assert_eq!(
        fault(&mut reg, page(2), pf::U | pf::W | pf::P),
        not_present(pf::U | pf::W)
    );
    assert_eq!(fault(&mut reg, page(3), pf::U), protection(pf::U));
    assert_eq!(fault(&mut reg, page(4), pf::U), not_present(pf::U));
    assert_eq!(fault(&mut reg, page(5), pf::U), not_present(pf::U));
    // Supervisor at an upper level.
    set(&mem, PD, 0, PT | P | RW);
    set(&mem, PT, 6, PAGE_A | P | RW | US);
    assert_eq!(fault(&mut reg, page(6), pf::U), protection(pf::U));
    // A table outside RAM (in the pool: the host's own tables).
    let root = reg.root(1).unwrap();
    set(&mem, PD, 0, root | TABLE);
    assert_eq!(fault(&mut reg, page(6), pf::U), not_present(pf::U));
    set(&mem, PDPT, 1, POOL_BASE | TABLE);
    assert_eq!(fault(&mut reg, page(6), pf::U), not_present(pf::U));
    // The read-only page still reads.
    set(&mem, PDPT, 1, PD | TABLE);
    set(&mem, PD, 0, PT | TABLE);
    assert_eq!(fault(&mut reg, page(1), pf::U), FaultOutcome::Resolved);
    // Nothing but that one leaf in the shadow, and no guest bits touched on
    // refusals.
    let leaves = check_tree(&mem, &reg, reg.root(1).unwrap());
    assert_eq!(leaves, vec![(page(1), PAGE_A | P | US | A | NX)]);
    assert_eq!(get(&mem, PT, 3), PAGE_A | P | RW);
    reg.audit().unwrap();
}

#[test]
fn large_guest_leaves_are_followed() {
    let (mem, mut reg) = setup(POOL);
    reg.create(1, 0, 0).unwrap();
    guest_tables(&mem);
    let len = 4 << 20;
    reg.mmap(1, VBASE, len, RW_, VPT, PHYSMEM_FD, 0).unwrap();
    reg.mcontrol(1, VBASE, len, MADV_SETMAP, PML4).unwrap();
    // A 2 MiB guest page at guest-physical 0 (bit 12 is PAT, ignored).
    set(&mem, PD, 1, P | RW | US | PS | (1 << 12));
    let va = VBASE + (2 << 20) + 5 * PAGE_SIZE;
    assert_eq!(
        fault(&mut reg, va + 3, pf::U | pf::W),
        FaultOutcome::Resolved
    );
    assert_eq!(
        shadow(&mem, &reg, va),
        Some((5 * PAGE_SIZE) | P | US | A | RW | D | NX)
    );
    assert_eq!(get(&mem, PD, 1) & (A | D), A | D);
    // A 1 GiB guest page: its pages past RAM are not present.
    set(&mem, PDPT, 1, P | RW | US | PS);
    assert_eq!(reg.mcontrol(1, VBASE, len, MADV_INVAL, 0), Ok(()));
    assert_eq!(
        fault(&mut reg, VBASE + 0x3000, pf::U),
        FaultOutcome::Resolved
    );
    assert_eq!(
        shadow(&mem, &reg, VBASE + 0x3000).map(|l| l & ADDR),
        Some(0x3000)
    );
    assert_eq!(
        fault(&mut reg, VBASE + KMEM, pf::U),
        FaultOutcome::DeliverWith { error_code: pf::U }
    );
    reg.audit().unwrap();
}

#[test]
fn inval_removes_the_translation_and_the_next_fault_rewalks() {
    let (mem, mut reg) = vpt_space(RW_);
    set(&mem, PT, 0, PAGE_A | P | RW | US | A | D);
    assert_eq!(fault(&mut reg, VBASE, pf::U), FaultOutcome::Resolved);
    assert_eq!(shadow(&mem, &reg, VBASE).map(|l| l & ADDR), Some(PAGE_A));
    reg.take_translation_reduced();
    let old_root = reg.root(1).unwrap();
    // The guest points its entry at another page and invalidates.
    set(&mem, PT, 0, PAGE_B | P | RW | US);
    assert_eq!(reg.mcontrol(1, VBASE, PAGE_SIZE, MADV_INVAL, 0), Ok(()));
    assert_eq!(shadow(&mem, &reg, VBASE), None);
    // KVM's copy must go too: the tables on the way were copied, so the
    // next run is under a root KVM has never seen.
    assert!(!reg.take_translation_reduced());
    assert_ne!(reg.root(1).unwrap(), old_root);
    assert!(walk(&mem, old_root, VBASE).is_some());
    assert_eq!(fault(&mut reg, VBASE, pf::U), FaultOutcome::Resolved);
    assert_eq!(shadow(&mem, &reg, VBASE).map(|l| l & ADDR), Some(PAGE_B));
    let data = read_via_tables(&mem, reg.root(1).unwrap(), VBASE, 8).unwrap();
    assert_eq!(data, (PAGE_B..PAGE_B + 8).map(kbyte).collect::<Vec<_>>());
    // Removing the entry and invalidating: the next fault is the guest's.
    set(&mem, PT, 0, 0);
    assert_eq!(reg.mcontrol(1, VBASE, PAGE_SIZE, MADV_INVAL, 0), Ok(()));
    assert_eq!(
        fault(&mut reg, VBASE, pf::U),
        FaultOutcome::DeliverWith { error_code: pf::U }
    );
    reg.audit().unwrap();
}

#[test]
fn a_fault_on_a_present_shadow_leaf_asks_for_a_flush() {
    let (mem, mut reg) = vpt_space(RW_);
    set(&mem, PT, 0, PAGE_A | P | RW | US | A | D);
    assert_eq!(fault(&mut reg, VBASE, pf::U), FaultOutcome::Resolved);
    reg.take_translation_reduced();
    assert_eq!(
        fault(&mut reg, VBASE, pf::U | pf::P),
        FaultOutcome::Resolved
    );
    assert!(reg.take_translation_reduced());
}

#[test]
fn setmap_with_a_new_root_drops_the_shadow() {
    let (mem, mut reg) = vpt_space(RW_);
    set(&mem, PT, 0, PAGE_A | P | RW | US);
    set(&mem, PT, 1, PAGE_A | P | RW | US);
    fault(&mut reg, VBASE, pf::U);
    fault(&mut reg, VBASE + PAGE_SIZE, pf::U);
    // A second root sharing the PDPT, with another PT.
    let (root2, pt2) = (0xa_4000, 0xa_5000);
    mem.write_slice(&[0u8; 8192], GuestAddress(root2)).unwrap();
    set(&mem, root2, 0, PDPT | TABLE);
    set(&mem, PD, 0, pt2 | TABLE);
    set(&mem, pt2, 0, PAGE_B | P | RW | US);
    reg.take_translation_reduced();
    let old_root = reg.root(1).unwrap();
    assert_eq!(
        reg.mcontrol(1, VBASE, 16 * PAGE_SIZE, MADV_SETMAP, root2),
        Ok(())
    );
    assert!(!reg.take_translation_reduced(), "the tables were copied");
    assert_ne!(reg.root(1).unwrap(), old_root);
    assert!(check_tree(&mem, &reg, reg.root(1).unwrap()).is_empty());
    assert_eq!(fault(&mut reg, VBASE, pf::U), FaultOutcome::Resolved);
    assert_eq!(shadow(&mem, &reg, VBASE).map(|l| l & ADDR), Some(PAGE_B));
    reg.audit().unwrap();
}

#[test]
fn pread_pwrite_go_through_the_guest_tables() {
    let (mem, mut reg) = vpt_space(RW_);
    set(&mem, PT, 0, PAGE_A | P | US); // read-only: pwrite ignores it
    mem.write_slice(b"guest page", GuestAddress(KBUF)).unwrap();
    assert_eq!(reg.pwrite(1, KBUF, 10, VBASE + 100), Ok(10));
    let mut back = [0u8; 10];
    mem.read_slice(&mut back, GuestAddress(PAGE_A + 100))
        .unwrap();
    assert_eq!(&back, b"guest page");
    // Page 1 is not in the guest's tables: a short count.
    assert_eq!(
        reg.pread(1, KBUF, 2 * PAGE_SIZE, VBASE),
        Ok(PAGE_SIZE as usize)
    );
    // No shadow leaf made, no A bit set: pread is not an access.
    assert!(check_tree(&mem, &reg, reg.root(1).unwrap()).is_empty());
    assert_eq!(get(&mem, PT, 0), PAGE_A | P | US);
}

#[test]
fn mprotect_drops_the_shadow_and_limits_the_next_fault() {
    let (mem, mut reg) = vpt_space(RW_);
    set(&mem, PT, 0, PAGE_A | P | RW | US | A | D);
    fault(&mut reg, VBASE, pf::U | pf::W);
    assert_eq!(reg.mprotect(1, VBASE, PAGE_SIZE, PROT_READ), Ok(()));
    assert_eq!(shadow(&mem, &reg, VBASE), None);
    assert_eq!(fault(&mut reg, VBASE, pf::U | pf::W), FaultOutcome::Deliver);
    assert_eq!(fault(&mut reg, VBASE, pf::U), FaultOutcome::Resolved);
    assert_eq!(shadow(&mem, &reg, VBASE), Some(PAGE_A | P | US | A | NX));
    // Back to read-write: the shadow leaf is dropped, a write remaps it.
    assert_eq!(reg.mprotect(1, VBASE, PAGE_SIZE, RW_), Ok(()));
    assert_eq!(shadow(&mem, &reg, VBASE), None);
    assert_eq!(
        fault(&mut reg, VBASE, pf::U | pf::W),
        FaultOutcome::Resolved
    );
    reg.audit().unwrap();
}

#[test]
fn munmap_clone_destroy_and_the_pool() {
    let (mem, mut reg) = setup(POOL);
    let baseline = reg.pages_in_use();
    reg.create(1, 0, 0).unwrap();
    guest_tables(&mem);
    reg.mmap(1, VBASE, 16 * PAGE_SIZE, RW_, VPT, PHYSMEM_FD, 0)
        .unwrap();
    reg.mcontrol(1, VBASE, 16 * PAGE_SIZE, MADV_SETMAP, PML4)
        .unwrap();
    for i in 0..4 {
        set(&mem, PT, i, PAGE_A | P | RW | US);
        fault(&mut reg, VBASE + i * PAGE_SIZE, pf::U);
    }
    // Root, PDPT, PD, PT: no page for the leaves (they are guest RAM).
    assert_eq!(reg.pages_in_use(), baseline + 4);
    // Clone: the entry and its root, not the shadow.
    assert_eq!(reg.clone_vmspace(1, 2), Ok(()));
    assert_eq!(walk(&mem, reg.root(2).unwrap(), VBASE), None);
    assert_eq!(
        reg.handle_fault(2, VBASE, pf::U),
        Ok(FaultOutcome::Resolved)
    );
    assert_eq!(
        walk(&mem, reg.root(2).unwrap(), VBASE).map(|l| l & ADDR),
        Some(PAGE_A)
    );
    reg.audit().unwrap();
    // munmap drops the shadow leaves and prunes the tables.
    assert_eq!(reg.munmap(1, VBASE, 16 * PAGE_SIZE), Ok(()));
    assert!(check_tree(&mem, &reg, reg.root(1).unwrap()).is_empty());
    assert_eq!(reg.charged_pages(1), Some(1));
    assert_eq!(reg.handle_fault(1, VBASE, pf::U), Ok(FaultOutcome::Deliver));
    reg.audit().unwrap();
    reg.destroy(1).unwrap();
    reg.destroy(2).unwrap();
    assert_eq!(reg.pages_in_use(), baseline);
    // The last vmspace destroyed is kept for a fork's child (its
    // reservation too, and its pages not counted as in use): audited,
    // then given back.
    reg.audit().unwrap();
    reg.end_spare();
    assert_eq!(reg.pages_in_use(), baseline);
    assert_eq!(reg.pool().reserved_pages(), 0);
    // The guest's memory is the guest's: its tables and pages stay.
    assert_eq!(get(&mem, PT, 0) & ADDR, PAGE_A);
}

#[test]
fn fault_around_shadows_accessed_neighbours_only() {
    let (mem, mut reg) = vpt_space(RW_);
    reg.set_fault_around(4);
    let page = |i: u64| VBASE + i * PAGE_SIZE;
    set(&mem, PT, 0, PAGE_A | P | RW | US); // faulting page
    set(&mem, PT, 1, PAGE_B | P | RW | US | A); // accessed, clean
    set(&mem, PT, 2, PAGE_B | P | RW | US | A | D); // accessed, dirty
    set(&mem, PT, 3, PAGE_B | P | RW | US); // never accessed
    set(&mem, PT, 4, PAGE_B | P | RW | US | A); // outside the window
    set(&mem, PT, 5, PAGE_B | P | RW | A); // supervisor
    assert_eq!(fault(&mut reg, page(0), pf::U), FaultOutcome::Resolved);
    let leaves = check_tree(&mem, &reg, reg.root(1).unwrap());
    assert_eq!(
        leaves,
        vec![
            (page(0), PAGE_A | P | US | A | NX),
            (page(1), PAGE_B | P | US | A | NX),
            (page(2), PAGE_B | P | US | A | RW | D | NX),
        ]
    );
    // The neighbours' guest entries are as the guest left them.
    assert_eq!(get(&mem, PT, 1), PAGE_B | P | RW | US | A);
    assert_eq!(get(&mem, PT, 3), PAGE_B | P | RW | US);
    // A write to the clean neighbour faults and makes it dirty.
    assert_eq!(
        fault(&mut reg, page(1), pf::U | pf::W | pf::P),
        FaultOutcome::Resolved
    );
    assert_eq!(get(&mem, PT, 1), PAGE_B | P | RW | US | A | D);
    reg.audit().unwrap();
}

/// A guest page table for the whole user range, in kernel RAM at
/// [`WIDE_ROOT`]: a few tables shared in a pattern, so that every user
/// address is mapped (user, writable) and the page behind it depends on
/// all four levels' indices (see [`wide_page`]).
const WIDE_ROOT: u64 = 0x1_0000;
const WIDE_PDPTS: u64 = 0x1_1000;
const WIDE_PDS: u64 = 0x1_5000;
const WIDE_PTS: u64 = 0x1_9000;
/// The 64 kernel pages the wide table maps.
const WIDE_DATA: u64 = 0x2_2000;

fn wide_guest_table(mem: &GuestMemoryMmap) {
    mem.write_slice(&[0u8; PAGE_SIZE as usize], GuestAddress(WIDE_ROOT))
        .unwrap();
    for i in 0..255 {
        set(mem, WIDE_ROOT, i, (WIDE_PDPTS + i % 4 * PAGE_SIZE) | TABLE);
    }
    for a in 0..4 {
        for j in 0..512 {
            let pd = WIDE_PDS + (a + j) % 4 * PAGE_SIZE;
            set(mem, WIDE_PDPTS + a * PAGE_SIZE, j, pd | TABLE);
        }
    }
    for b in 0..4 {
        for k in 0..512 {
            let pt = WIDE_PTS + (b + k) % 8 * PAGE_SIZE;
            set(mem, WIDE_PDS + b * PAGE_SIZE, k, pt | TABLE);
        }
    }
    for c in 0..8 {
        for e in 0..512 {
            let page = WIDE_DATA + (c * 512 + e) % 64 * PAGE_SIZE;
            set(mem, WIDE_PTS + c * PAGE_SIZE, e, page | P | RW | US);
        }
    }
}

/// The kernel page the wide table maps at `va` (worked out from the
/// pattern, not by walking it).
fn wide_page(va: u64) -> u64 {
    let idx = |level: u32| (va >> (12 + 9 * (level - 1))) & 511;
    let a = idx(4) % 4;
    let b = (a + idx(3)) % 4;
    let c = (b + idx(2)) % 8;
    WIDE_DATA + (c * 512 + idx(1)) % 64 * PAGE_SIZE
}

/// Touches `va` of vmspace 1 through the fault path and checks the shadow
/// leaf, the bytes read through the host's tables, the audit, and that the
/// vmspace holds no more than it is charged.
fn touch_wide(mem: &GuestMemoryMmap, reg: &mut VmspaceRegistry, va: u64, baseline: usize) {
    let code = if va & PAGE_SIZE != 0 {
        pf::U | pf::W
    } else {
        pf::U
    };
    assert_eq!(fault(reg, va + 8, code), FaultOutcome::Resolved, "{va:#x}");
    let page = wide_page(va);
    assert_eq!(
        shadow(mem, reg, va).map(|l| l & ADDR),
        Some(page),
        "{va:#x}"
    );
    let data = read_via_tables(mem, reg.root(1).unwrap(), va, 32).unwrap();
    assert_eq!(data, (page..page + 32).map(kbyte).collect::<Vec<_>>());
    reg.audit().unwrap();
    let charged = reg.charged_pages(1).unwrap() as usize;
    assert!(reg.pages_in_use() - baseline <= charged, "{va:#x}");
    assert!(reg.table_pages(1).unwrap() <= SHADOW_TABLE_PAGES, "{va:#x}");
}

/// Page `r % 511 + 1` of 2 MiB region `r`, for 100 regions: four in
/// distinct 1 GiB regions of each of 25 distinct 512 GiB regions.
fn spread_region(r: u64) -> u64 {
    let slot = (r / 4 * 37) % 255;
    let gib = (r * 11) % 512;
    let mib2 = (r * 7) % 512;
    (slot << 39) | (gib << 30) | (mib2 << 21) | ((r % 511 + 1) << 12)
}

#[test]
fn whole_user_range_costs_the_allowance_and_its_shadow_stays_within_it() {
    let (mem, mut reg) = setup(POOL);
    let baseline = reg.pages_in_use();
    reg.create(1, 0, 0).unwrap();
    let len = VM_MAX_USER_ADDRESS - VM_MIN_USER_ADDRESS;
    assert_eq!(
        reg.mmap(1, VM_MIN_USER_ADDRESS, len, RW_, VPT, PHYSMEM_FD, 0),
        Ok(VM_MIN_USER_ADDRESS)
    );
    assert_eq!(reg.charged_pages(1), Some(1 + SHADOW_TABLE_PAGES));
    reg.audit().unwrap();
    wide_guest_table(&mem);
    reg.mcontrol(1, VM_MIN_USER_ADDRESS, len, MADV_SETMAP, WIDE_ROOT)
        .unwrap();
    // Nine table pages per four regions (a PDPT, then a PD and a PT each):
    // 225 in all, so the shadow is dropped and rebuilt several times on
    // the way.
    reg.take_translation_reduced();
    let mut drops = 0;
    for r in 0..100 {
        touch_wide(&mem, &mut reg, spread_region(r), baseline);
        drops += usize::from(reg.take_translation_reduced());
    }
    assert!(drops >= 225 / 64, "the shadow was dropped {drops} times");
    // The first regions' leaves went with a drop; a touch brings them back.
    assert_eq!(shadow(&mem, &reg, spread_region(0)), None);
    touch_wide(&mem, &mut reg, spread_region(0), baseline);
    // Touches in one 1 GiB region cost a PT each.
    for r in 0..100 {
        touch_wide(&mem, &mut reg, (3 << 39) | (r << 21) | PAGE_SIZE, baseline);
    }
    assert_eq!(reg.charged_pages(1), Some(1 + SHADOW_TABLE_PAGES));
    reg.destroy(1).unwrap();
    assert_eq!(reg.pages_in_use(), baseline);
    // The last vmspace destroyed is kept for a fork's child (its
    // reservation too, and its pages not counted as in use): audited,
    // then given back.
    reg.audit().unwrap();
    reg.end_spare();
    assert_eq!(reg.pages_in_use(), baseline);
    assert_eq!(reg.pool().reserved_pages(), 0);
}

#[test]
fn a_second_vpagetable_entry_costs_nothing_more_and_the_last_one_frees_the_allowance() {
    let (_, mut reg) = setup(POOL);
    reg.create(1, 0, 0).unwrap();
    reg.mmap(1, VBASE, 1 << 30, RW_, VPT, PHYSMEM_FD, 0)
        .unwrap();
    reg.mmap(1, 1 << 40, 1 << 39, RW_, VPT, PHYSMEM_FD, 0)
        .unwrap();
    assert_eq!(reg.charged_pages(1), Some(1 + SHADOW_TABLE_PAGES));
    // Splitting one keeps the allowance.
    reg.munmap(1, VBASE + (1 << 29), PAGE_SIZE).unwrap();
    assert_eq!(reg.charged_pages(1), Some(1 + SHADOW_TABLE_PAGES));
    reg.munmap(1, 1 << 40, 1 << 39).unwrap();
    assert_eq!(reg.charged_pages(1), Some(1 + SHADOW_TABLE_PAGES));
    reg.audit().unwrap();
    reg.munmap(1, VBASE, 1 << 29).unwrap();
    reg.munmap(1, VBASE + (1 << 29) + PAGE_SIZE, (1 << 29) - PAGE_SIZE)
        .unwrap();
    assert_eq!(reg.charged_pages(1), Some(1));
    // Only the host-state charge stays reserved.
    assert_eq!(
        reg.pool().reserved_pages(),
        vmspace::registry::HOST_STATE_PAGES
    );
    reg.audit().unwrap();
}

#[test]
fn munmap_of_an_anonymous_entry_sharing_a_region_with_shadow_leaves() {
    let (mem, mut reg) = setup(POOL);
    let baseline = reg.pages_in_use();
    reg.create(1, 0, 0).unwrap();
    guest_tables(&mem);
    // The guest maps page 16 of the first 65 2 MiB regions of VBASE's
    // 1 GiB region, all through one PT.
    for k in 1..=64 {
        set(&mem, PD, k, PT | TABLE);
    }
    set(&mem, PT, 16, PAGE_A | P | RW | US);
    // An anonymous entry of 16 pages, then a VPAGETABLE one to the end of
    // the 1 GiB region: they share the first 2 MiB region.
    let anon = MAP_ANON | MAP_PRIVATE | MAP_FIXED;
    let split = VBASE + 16 * PAGE_SIZE;
    reg.mmap(1, VBASE, 16 * PAGE_SIZE, RW_, anon, FD_NONE, 0)
        .unwrap();
    let vpt_len = (1 << 30) - 16 * PAGE_SIZE;
    reg.mmap(1, split, vpt_len, RW_, VPT, PHYSMEM_FD, 0)
        .unwrap();
    reg.mcontrol(1, split, vpt_len, MADV_SETMAP, PML4).unwrap();
    // PDPT, PD and the first PT are the anonymous entry's (its pages are
    // charged when touched).
    assert_eq!(reg.charged_pages(1), Some(1 + 3 + SHADOW_TABLE_PAGES));
    assert_eq!(
        fault(&mut reg, VBASE, pf::U | pf::W),
        FaultOutcome::Resolved
    );
    assert_eq!(fault(&mut reg, split, pf::U), FaultOutcome::Resolved);
    // The shadow fills its allowance with 64 more PTs.
    for k in 1..=64 {
        let va = VBASE + (k << 21) + 16 * PAGE_SIZE;
        assert_eq!(fault(&mut reg, va, pf::U), FaultOutcome::Resolved);
        reg.audit().unwrap();
    }
    assert_eq!(reg.table_pages(1), Some(3 + SHADOW_TABLE_PAGES));
    // Unmapping the anonymous entry takes the charge for three tables the
    // shadow leaf in the first region keeps: the shadow has to go.
    reg.take_translation_reduced();
    let old_root = reg.root(1).unwrap();
    assert_eq!(reg.munmap(1, VBASE, 16 * PAGE_SIZE), Ok(()));
    reg.audit().unwrap();
    assert!(!reg.take_translation_reduced(), "the tables were copied");
    assert_ne!(reg.root(1).unwrap(), old_root);
    assert_eq!(reg.charged_pages(1), Some(1 + SHADOW_TABLE_PAGES));
    assert!(reg.table_pages(1).unwrap() <= SHADOW_TABLE_PAGES);
    assert!(reg.pages_in_use() - baseline <= 1 + SHADOW_TABLE_PAGES as usize);
    // The shadow comes back on demand.
    assert_eq!(fault(&mut reg, split, pf::U), FaultOutcome::Resolved);
    assert_eq!(shadow(&mem, &reg, split).map(|l| l & ADDR), Some(PAGE_A));
    reg.audit().unwrap();
    reg.destroy(1).unwrap();
    assert_eq!(reg.pages_in_use(), baseline);
    // The last vmspace destroyed is kept for a fork's child (its
    // reservation too, and its pages not counted as in use): audited,
    // then given back.
    reg.audit().unwrap();
    reg.end_spare();
    assert_eq!(reg.pages_in_use(), baseline);
    assert_eq!(reg.pool().reserved_pages(), 0);
}

#[test]
fn anonymous_faults_take_back_tables_the_shadow_borrowed() {
    let (mem, mut reg) = setup(POOL);
    reg.create(1, 0, 0).unwrap();
    guest_tables(&mem);
    for k in 0..512 {
        set(&mem, PD, k, PT | TABLE);
    }
    set(&mem, PT, 0, PAGE_A | P | RW | US);
    // A VPAGETABLE entry over most of the 1 GiB region, and one-page
    // anonymous entries in its last 64 2 MiB regions, untouched: 64 PTs
    // charged, none held (and no page).
    let anon_start = VBASE + (448 << 21);
    reg.mmap(1, VBASE, 448 << 21, RW_, VPT, PHYSMEM_FD, 0)
        .unwrap();
    reg.mcontrol(1, VBASE, 448 << 21, MADV_SETMAP, PML4)
        .unwrap();
    let anon = MAP_ANON | MAP_PRIVATE | MAP_FIXED;
    for k in 0..64 {
        let va = anon_start + (k << 21);
        reg.mmap(1, va, PAGE_SIZE, RW_, anon, FD_NONE, 0).unwrap();
    }
    assert_eq!(reg.charged_pages(1), Some(1 + 64 + 2 + SHADOW_TABLE_PAGES));
    reg.set_fault_around(1);
    // The shadow may use those 64 PTs' charge on top of its own.
    for k in 0..128 {
        assert_eq!(
            fault(&mut reg, VBASE + (k << 21), pf::U),
            FaultOutcome::Resolved
        );
    }
    assert_eq!(reg.table_pages(1), Some(2 + 128));
    assert!(shadow(&mem, &reg, VBASE).is_some());
    // The anonymous entry's first touches want them back.
    for k in 0..64 {
        let va = anon_start + (k << 21);
        assert_eq!(fault(&mut reg, va, pf::U | pf::W), FaultOutcome::Resolved);
        reg.audit().unwrap();
    }
    assert_eq!(shadow(&mem, &reg, VBASE), None, "the shadow was dropped");
    reg.audit().unwrap();
}

#[test]
fn mmap_fixed_replacing_anonymous_by_vpagetable_and_back_keeps_charges_exact() {
    let (mem, mut reg) = setup(4096);
    let baseline = reg.pages_in_use();
    reg.create(1, 0, 0).unwrap();
    guest_tables(&mem);
    set(&mem, PT, 0, PAGE_A | P | RW | US);
    let len = 8 << 20;
    let anon = MAP_ANON | MAP_PRIVATE | MAP_FIXED;
    // PML4, PDPT, PD, 4 PTs; the pages as they are touched.
    let anon_charge = 1 + 1 + 1 + 4;
    reg.mmap(1, VBASE, len, RW_, anon, FD_NONE, 0).unwrap();
    for k in 0..4 {
        let va = VBASE + (k << 21);
        assert_eq!(fault(&mut reg, va, pf::U | pf::W), FaultOutcome::Resolved);
    }
    let touched = 4 * vmspace::registry::DEFAULT_FAULT_AROUND as u64;
    assert_eq!(reg.frame_pages(1), Some(touched));
    assert_eq!(reg.charged_pages(1), Some(anon_charge + touched));
    reg.audit().unwrap();
    // The VPAGETABLE entry inherits none of the anonymous one's tables.
    reg.mmap(1, VBASE, len, RW_, VPT, PHYSMEM_FD, 0).unwrap();
    assert_eq!(reg.charged_pages(1), Some(1 + SHADOW_TABLE_PAGES));
    assert_eq!(reg.table_pages(1), Some(0));
    assert_eq!(reg.pages_in_use(), baseline + 1);
    reg.audit().unwrap();
    reg.mcontrol(1, VBASE, len, MADV_SETMAP, PML4).unwrap();
    assert_eq!(fault(&mut reg, VBASE, pf::U), FaultOutcome::Resolved);
    reg.audit().unwrap();
    // And back: the shadow's tables go with it.
    reg.mmap(1, VBASE, len, RW_, anon, FD_NONE, 0).unwrap();
    assert_eq!(reg.charged_pages(1), Some(anon_charge));
    assert_eq!(reg.pages_in_use(), baseline + 1);
    reg.audit().unwrap();
    // Part of it: the anonymous pieces keep their regions' tables charged.
    for k in 0..4 {
        let va = VBASE + (k << 21);
        assert_eq!(fault(&mut reg, va, pf::U | pf::W), FaultOutcome::Resolved);
    }
    reg.mmap(
        1,
        VBASE + (2 << 20) + PAGE_SIZE,
        4 << 20,
        RW_,
        VPT,
        PHYSMEM_FD,
        0,
    )
    .unwrap();
    let frames = reg.frame_pages(1).unwrap();
    assert!(frames < touched);
    assert_eq!(
        reg.charged_pages(1),
        Some(1 + frames + 1 + 1 + 3 + SHADOW_TABLE_PAGES)
    );
    reg.audit().unwrap();
    reg.destroy(1).unwrap();
    assert_eq!(reg.pages_in_use(), baseline);
    // The last vmspace destroyed is kept for a fork's child (its
    // reservation too, and its pages not counted as in use): audited,
    // then given back.
    reg.audit().unwrap();
    reg.end_spare();
    assert_eq!(reg.pages_in_use(), baseline);
    assert_eq!(reg.pool().reserved_pages(), 0);
}

#[test]
fn the_shadow_allowance_is_set_before_any_vmspace() {
    let (_, mut reg) = setup(POOL);
    assert_eq!(reg.set_shadow_table_pages(2), Err(Errno::EINVAL));
    assert_eq!(reg.set_shadow_table_pages(3), Ok(()));
    reg.create(1, 0, 0).unwrap();
    assert_eq!(reg.set_shadow_table_pages(8), Err(Errno::EBUSY));
    reg.mmap(1, VBASE, PAGE_SIZE, RW_, VPT, PHYSMEM_FD, 0)
        .unwrap();
    assert_eq!(reg.charged_pages(1), Some(1 + 3));
    reg.audit().unwrap();
}
