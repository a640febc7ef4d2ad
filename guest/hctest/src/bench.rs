//! Microbenchmarks of every path (`--append bench=all`, or `bench=quick`
//! for a short run), timed with the clock hypercall around loops. Each
//! figure is measured in `REPS` repetitions and printed as
//! `bench NAME median_ns=.. min_ns=.. max_ns=.. iters=..` (per operation);
//! `vkernel bench` divides them by the raw KVM exit it measures itself.

use crate::usercode::{frame, new_process, GuestTables, Routine, DATA, PAGE, VPT_BASE, VPT_PAGES};
use guestlib::hypercall::{call, clock_ns};
use guestlib::println;
use guestlib::vmspace as vms;
use vkernel_abi::mman::*;
use vkernel_abi::paging::pte;
use vkernel_abi::{Hypercall, VextFrame};

const REPS: usize = 7;

/// Times `reps` repetitions of `iters` calls of `op` and prints the
/// per-operation median, minimum and maximum.
fn measure(name: &str, iters: u64, mut op: impl FnMut(u64)) {
    let mut per_op = [0u64; REPS];
    op(0); // warm up: first-touch costs are not what we measure
    for slot in per_op.iter_mut() {
        let t0 = clock_ns();
        for i in 0..iters {
            op(i);
        }
        *slot = (clock_ns() - t0) / iters.max(1);
    }
    per_op.sort_unstable();
    println!(
        "bench {name} median_ns={} min_ns={} max_ns={} iters={iters}",
        per_op[REPS / 2],
        per_op[0],
        per_op[REPS - 1]
    );
}

/// Runs every benchmark; `quick` divides the iteration counts by 10.
pub fn run_all(quick: bool) {
    let n = |full: u64| if quick { (full / 10).max(1) } else { full };
    let anon_fixed = MAP_ANON | MAP_PRIVATE | MAP_FIXED;
    let rw = PROT_READ | PROT_WRITE;

    measure("null_hypercall", n(2000), |_| {
        let _ = call(Hypercall::Noop, [0; 7]);
    });

    // The vmspace calls, on a process set up like the test suite's.
    let id = 0xb000;
    let _ = new_process(id);
    measure("vmspace_create_destroy", n(500), |_| {
        let _ = vms::create(0xb001, 0, 0);
        let _ = vms::destroy(0xb001);
    });
    measure("vmspace_mmap_munmap", n(500), |_| {
        let _ = vms::mmap(id, 0x1000_0000, PAGE, rw, anon_fixed, FD_NONE, 0);
        let _ = vms::munmap(id, 0x1000_0000, PAGE);
    });
    let mut word = [0u8; 8];
    measure("vmspace_pwrite", n(1000), |i| {
        let _ = vms::pwrite(id, &i.to_le_bytes(), DATA);
    });
    measure("vmspace_pread", n(1000), |_| {
        let _ = vms::pread(id, &mut word, DATA);
    });
    measure("vmspace_mcontrol", n(1000), |_| {
        let _ = vms::mcontrol(id, DATA, PAGE, MADV_NORMAL, 0);
    });
    measure("vmspace_mprotect", n(1000), |i| {
        let prot = if i % 2 == 0 { PROT_READ } else { rw };
        let _ = vms::mprotect(id, DATA + 15 * PAGE, PAGE, prot);
    });
    measure("vmspace_clone_destroy", n(200), |_| {
        let _ = vms::clone(id, 0xb002);
        let _ = vms::destroy(0xb002);
    });

    // A process's system call: process `syscall` -> guest kernel -> ctl RUN
    // -> back in the process. Each RUN returns at the next syscall.
    let mut vf = VextFrame::default();
    let mut tf = frame(Routine::SyscallLoop, 0, 0);
    measure("syscall", n(2000), |_| {
        let _ = vms::run(id, &mut tf, &mut vf, 0);
    });

    // A fault the host cannot resolve goes to the guest kernel and back.
    measure("fault_to_kernel", n(1000), |_| {
        let mut tf = frame(Routine::Load, 0x3000_0000, 0);
        let _ = vms::run(id, &mut tf, &mut vf, 0);
    });

    // Context switch: alternate two processes (FPU state swapped each time).
    let other = 0xb003;
    let _ = new_process(other);
    let mut tf2 = frame(Routine::SyscallLoop, 0, 0);
    measure("context_switch", n(1000), |i| {
        let (who, t) = if i % 2 == 0 {
            (id, &mut tf)
        } else {
            (other, &mut tf2)
        };
        let _ = vms::run(who, t, &mut vf, 0);
    });

    // First touch of a fresh 64 MiB anonymous mapping, per 4 KiB page,
    // resolved by the host without waking the kernel.
    let pages: u64 = if quick { 2048 } else { 16384 };
    let area = 0x2000_0000;
    measure("page_fault", 1, |_| {
        let _ = vms::munmap(id, area, pages * PAGE);
        let _ = vms::mmap(id, area, pages * PAGE, rw, anon_fixed, FD_NONE, 0);
        let mut tf = frame(Routine::TouchPages, area, pages);
        let t0 = clock_ns();
        let _ = vms::run(id, &mut tf, &mut vf, 0);
        let per_page = (clock_ns() - t0) / pages;
        // Reported through a separate line: measure() times the whole
        // closure, which includes the mmap/munmap set-up.
        println!("bench_sample page_fault {per_page}");
    });

    // First touch through guest-managed page tables (MAP_VPAGETABLE): the
    // kernel's PT maps each of 512 pages to one page of its own RAM; every
    // touch is a fault the host resolves by walking that table and
    // installing one shadow leaf. The entries are made without A (as the
    // touches leave them accessed, each repetition makes them again), so
    // no fault-around applies; MADV_INVAL before each repetition drops the
    // shadow, so every page faults again.
    GuestTables::build();
    let user_rw = pte::P | pte::RW | pte::US;
    let set_all = |extra: u64| {
        for i in 0..VPT_PAGES {
            GuestTables::set_pte(i, GuestTables::data_a() | user_rw | extra);
        }
    };
    let vpt_len = VPT_PAGES * PAGE;
    let vpt_flags = MAP_SHARED | MAP_FIXED | MAP_VPAGETABLE;
    let _ = vms::mmap(id, VPT_BASE, vpt_len, rw, vpt_flags, PHYSMEM_FD, 0);
    let _ = vms::mcontrol(id, VPT_BASE, vpt_len, MADV_SETMAP, GuestTables::root());
    for (name, extra) in [
        ("vpt_fault", 0),
        // Entries made accessed and dirty: the host shadows the fault-around
        // window of each fault.
        ("vpt_fault_around", pte::A | pte::D),
    ] {
        measure(name, 1, |_| {
            set_all(extra);
            let _ = vms::mcontrol(id, VPT_BASE, vpt_len, MADV_INVAL, 0);
            let mut tf = frame(Routine::TouchPages, VPT_BASE, VPT_PAGES);
            let t0 = clock_ns();
            let _ = vms::run(id, &mut tf, &mut vf, 0);
            println!("bench_sample {name} {}", (clock_ns() - t0) / VPT_PAGES);
        });
    }
    // The same touches with the shadow leaves in place and only KVM's
    // cached translations dropped (MADV_INVAL of one page flushes them
    // all): what a touch costs when no fault reaches the host, about what
    // letting the vCPU walk the guest's tables directly would cost here.
    // (The warm-up run shadows every page; then only page 0 faults.)
    measure("vpt_touch_shadowed", 1, |_| {
        let _ = vms::mcontrol(id, VPT_BASE, PAGE, MADV_INVAL, 0);
        let mut tf = frame(Routine::TouchPages, VPT_BASE, VPT_PAGES);
        let t0 = clock_ns();
        let _ = vms::run(id, &mut tf, &mut vf, 0);
        let per_page = (clock_ns() - t0) / VPT_PAGES;
        println!("bench_sample vpt_touch_shadowed {per_page}");
    });
    let _ = vms::destroy(id);
    let _ = vms::destroy(other);
}
