//! Unit tests of the exit handlers with a scripted vCPU (no KVM): the
//! guest's memory is real (plain host memory with the trap area and the
//! kernel's tables built as for a run), the exits and registers are the
//! test's.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;

use kvm_bindings::{kvm_fpu, kvm_regs, kvm_sregs};
use vkernel_abi::frame::{T_FAST_SYSCALL, T_PROTFLT};
use vkernel_abi::mman::{MAP_ANON, MAP_PRIVATE, PROT_READ, PROT_WRITE};
use vkernel_abi::{
    layout, rflags, selector, BatchEntry, Call, Errno, HypercallBlock, TrapFrame, VextFrame,
    BATCH_MAX, HC_PORT_BASE, SYSCALL_PORT, TRAP_PORT_BASE, VMSPACE_CTL_RUN,
};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use super::*;
use crate::hypercall::ProtocolError;
use crate::vm::{self, Guest};

const RAM: u64 = 16 << 20;
const POOL: u64 = 8 << 20;
/// Where the guest kernel's `out dx, eax` is.
const KERNEL_RIP: u64 = 0x20_0000;
const BLOCK: u64 = 0x1000;
const TFRAME: u64 = 0x3000;
const VFRAME: u64 = 0x4000;

/// A vCPU that returns the exits it is given, one per run.
struct FakeVcpu {
    exits: VecDeque<Exit>,
    regs: kvm_regs,
    sregs: kvm_sregs,
    immediate_exit: Box<u8>,
    flushes: usize,
    /// Times the machine had KVM finish an exit before a switch.
    finished: usize,
}

impl Vcpu for FakeVcpu {
    fn run(&mut self) -> Result<Exit, Error> {
        // Out of script: a triple fault ends any run.
        Ok(self.exits.pop_front().unwrap_or(Exit::Shutdown))
    }
    fn context(&self) -> (kvm_regs, kvm_sregs) {
        (self.regs, self.sregs)
    }
    fn set_context(&mut self, regs: &kvm_regs, sregs: &kvm_sregs) {
        self.regs = *regs;
        self.sregs = *sregs;
    }
    fn initial_context(&self) -> Result<(kvm_regs, kvm_sregs), Error> {
        Ok((self.regs, self.sregs))
    }
    fn exception_pending(&self) -> bool {
        false
    }
    fn fpu(&self) -> Option<kvm_fpu> {
        None
    }
    fn tsc_khz(&self) -> Option<u32> {
        None
    }
    fn guest_tsc(&self) -> Option<u64> {
        None
    }
    fn drop_shadow_translations(&mut self) -> Result<(), Error> {
        self.flushes += 1;
        Ok(())
    }
    fn cover_pool(&mut self, _bytes: u64) -> Result<(), Error> {
        Ok(())
    }
    fn immediate_exit(&mut self) -> *mut u8 {
        &mut *self.immediate_exit
    }
    fn finish_pending_exit(&mut self) -> Result<(), Error> {
        self.finished += 1;
        Ok(())
    }
}

/// A machine with the guest kernel on the vCPU at `KERNEL_RIP`, on its
/// `out dx, eax`.
fn machine() -> Machine<FakeVcpu> {
    let mem = GuestMemoryMmap::from_ranges(&[
        (GuestAddress(0), RAM as usize),
        (GuestAddress(layout::POOL_BASE), POOL as usize),
    ])
    .unwrap();
    let guest = Guest::new(mem, RAM, POOL).unwrap();
    guest.ram.write_obj(KERNEL_RIP, &0xefu8).unwrap();
    let mut sregs = kvm_sregs::default();
    vm::set_ring3_sregs(&mut sregs, guest.kernel_cr3, selector::TSS_KERNEL);
    let regs = kvm_regs {
        rip: KERNEL_RIP,
        rflags: rflags::IF | rflags::FIXED,
        ..Default::default()
    };
    let vcpu = FakeVcpu {
        exits: VecDeque::new(),
        regs,
        sregs,
        immediate_exit: Box::new(0),
        flushes: 0,
        finished: 0,
    };
    Machine::with_vcpu(vcpu, guest).unwrap()
}

impl Machine<FakeVcpu> {
    /// Runs one scripted exit.
    fn exit(&mut self, exit: Exit) -> Handled {
        self.vcpu.exits.push_back(exit);
        self.step()
    }

    /// The guest kernel makes hypercall `call` with its block at `BLOCK`.
    fn hypercall(&mut self, call: Call) -> Handled {
        self.raw_hypercall(call.hypercall() as u16, &call.encode(), BLOCK)
    }

    fn raw_hypercall(&mut self, nr: u16, block: &HypercallBlock, at: u64) -> Handled {
        let _ = self.guest.ram.write_obj(at, block);
        self.exit(Exit::Out {
            port: HC_PORT_BASE + nr,
            len: 4,
            value: at as u32,
        })
    }

    /// `(ret, errno)` of the block at `BLOCK`.
    fn result(&self) -> (i64, i64) {
        let b: HypercallBlock = self.guest.ram.read_obj(BLOCK).unwrap();
        (b.ret, b.errno)
    }

    fn run_process(&mut self, id: u64, tf: &TrapFrame) -> Handled {
        self.guest.ram.write_obj(TFRAME, tf).unwrap();
        self.guest
            .ram
            .write_obj(VFRAME, &VextFrame::default())
            .unwrap();
        self.hypercall(Call::VmspaceCtl {
            id,
            cmd: VMSPACE_CTL_RUN,
            tframe: TFRAME,
            vframe: VFRAME,
            timeout_us: 0,
        })
    }
}

fn user_frame() -> TrapFrame {
    TrapFrame {
        cs: selector::USER_CS as u64,
        ss: selector::USER_SS as u64,
        rflags: rflags::IF | rflags::FIXED,
        rip: 0x40_0000,
        rsp: 0x7fff_0000,
        rax: 39,
        ..Default::default()
    }
}

#[test]
fn a_noop_hypercall_answers_zero_and_resumes() {
    let mut m = machine();
    m.guest
        .ram
        .write_obj(
            BLOCK,
            &HypercallBlock {
                ret: -5,
                errno: 9,
                ..Default::default()
            },
        )
        .unwrap();
    assert!(m.hypercall(Call::Noop {}).is_ok());
    assert_eq!(m.result(), (0, 0));
    assert_eq!((m.stats.exits, m.stats.hypercalls), (1, 1));
}

#[test]
fn exit_ends_the_run_with_the_guests_status() {
    let mut m = machine();
    let block = Call::Exit { status: 7 }.encode();
    m.guest.ram.write_obj(BLOCK, &block).unwrap();
    m.vcpu.exits.push_back(Exit::Out {
        port: HC_PORT_BASE + 2,
        len: 4,
        value: BLOCK as u32,
    });
    assert_eq!(m.run().unwrap(), Outcome::Exited(7));
}

#[test]
fn an_unknown_number_is_enosys() {
    let mut m = machine();
    assert!(m
        .raw_hypercall(63, &HypercallBlock::default(), BLOCK)
        .is_ok());
    assert_eq!(m.result(), (-1, Errno::ENOSYS.0 as i64));
}

#[test]
fn blocks_the_host_cannot_answer_in_stop_the_guest() {
    let mut m = machine();
    let b = HypercallBlock::default();
    match m.raw_hypercall(1, &b, RAM - 8) {
        Err(Stop::Violation(Violation::Protocol(ProtocolError::BlockOutside {
            addr,
            ram,
            ..
        }))) => assert_eq!((addr, ram), (RAM - 8, RAM)),
        other => panic!("{other:?}"),
    }
    match m.raw_hypercall(1, &b, 0x1004) {
        Err(Stop::Violation(Violation::Protocol(ProtocolError::BlockMisaligned { .. }))) => {}
        other => panic!("{other:?}"),
    }
    match m.exit(Exit::Out {
        port: HC_PORT_BASE,
        len: 1,
        value: 0,
    }) {
        Err(Stop::Violation(Violation::Protocol(ProtocolError::BadWidth { len: 1, .. }))) => {}
        other => panic!("{other:?}"),
    }
}

#[test]
fn console_write_outside_ram_is_efault() {
    let mut m = machine();
    let call = Call::ConsoleWrite {
        buf: RAM - 2,
        len: 4,
        stream: 1,
    };
    assert!(m.hypercall(call).is_ok());
    assert_eq!(m.result(), (-1, Errno::EFAULT.0 as i64));
}

#[test]
fn vmspace_calls_reach_the_registry_with_their_arguments_in_order() {
    let mut m = machine();
    assert!(m
        .hypercall(Call::VmspaceCreate {
            id: 5,
            ty: 0,
            data: 0
        })
        .is_ok());
    assert_eq!(m.result(), (0, 0));
    assert!(m.guest.registry.contains(5));
    let mmap = Call::VmspaceMmap {
        id: 5,
        addr: 0x10_0000,
        len: 0x2000,
        prot: PROT_READ | PROT_WRITE,
        flags: MAP_ANON | MAP_PRIVATE | vkernel_abi::mman::MAP_FIXED,
        fd: u64::MAX,
        off: 0,
    };
    assert!(m.hypercall(mmap).is_ok());
    assert_eq!(m.result(), (0x10_0000, 0));
    // pread with a flag is refused before the registry sees it.
    let pread = Call::VmspacePread {
        id: 5,
        buf: 0x8000,
        len: 8,
        flags: 1,
        off: 0x10_0000,
    };
    assert!(m.hypercall(pread).is_ok());
    assert_eq!(m.result(), (-1, Errno::EINVAL.0 as i64));
    assert!(m.hypercall(Call::VmspaceDestroy { id: 5 }).is_ok());
    assert_eq!(m.result(), (0, 0));
    assert!(!m.guest.registry.contains(5));
}

#[test]
fn ctl_run_enters_the_process_and_its_syscall_comes_back_to_the_kernel() {
    let mut m = machine();
    let create = Call::VmspaceCreate {
        id: 1,
        ty: 0,
        data: 0,
    };
    assert!(m.hypercall(create).is_ok());
    let kernel_sregs = m.vcpu.sregs;
    assert!(m.run_process(1, &user_frame()).is_ok());
    // The process is on the vCPU, in its own address space.
    assert_eq!(m.running.as_ref().map(|r| r.id), Some(1));
    assert_eq!(m.vcpu.sregs.cr3, m.guest.registry.root(1).unwrap());
    assert_eq!(m.vcpu.sregs.tr.selector, selector::TSS_PROCESS);
    assert_eq!((m.vcpu.regs.rip, m.vcpu.regs.rax), (0x40_0000, 39));

    // It runs `syscall`: the stub's `out` to the syscall port.
    m.vcpu.regs.rip = layout::SYSCALL_STUB_ADDR + trap_area::STUB_OUT_LEN;
    m.vcpu.regs.rcx = 0x40_1002;
    m.vcpu.regs.r11 = 0x246;
    let out = Exit::Out {
        port: SYSCALL_PORT,
        len: 1,
        value: 0,
    };
    assert!(m.exit(out).is_ok());
    assert!(m.running.is_none());
    let tf: TrapFrame = m.guest.ram.read_obj(TFRAME).unwrap();
    assert_eq!(
        ({ tf.trapno }, { tf.rip }, { tf.rflags }, { tf.rax }),
        (T_FAST_SYSCALL, 0x40_1002, 0x246, 39)
    );
    assert_eq!(m.result(), (0, 0));
    // The kernel is back, past its `out`, in its own address space.
    assert_eq!(m.vcpu.regs.rip, KERNEL_RIP + 1);
    assert_eq!(m.vcpu.sregs.cr3, kernel_sregs.cr3);
    assert_eq!(m.vcpu.sregs.tr.selector, selector::TSS_KERNEL);
    assert_eq!(m.stats.traps_delivered, 1);
}

#[test]
fn ctl_refuses_frames_and_ids_without_switching() {
    let mut m = machine();
    assert!(m.run_process(9, &user_frame()).is_ok());
    assert_eq!(m.result(), (-1, Errno::ENOENT.0 as i64));
    let create = Call::VmspaceCreate {
        id: 1,
        ty: 0,
        data: 0,
    };
    assert!(m.hypercall(create).is_ok());
    let mut ring0 = user_frame();
    ring0.cs = selector::KERNEL_CS as u64;
    assert!(m.run_process(1, &ring0).is_ok());
    assert_eq!(m.result(), (-1, Errno::EINVAL.0 as i64));
    let ctl = Call::VmspaceCtl {
        id: 1,
        cmd: VMSPACE_CTL_RUN,
        tframe: RAM - 8,
        vframe: VFRAME,
        timeout_us: 0,
    };
    assert!(m.hypercall(ctl).is_ok());
    assert_eq!(m.result(), (-1, Errno::EFAULT.0 as i64));
    assert!(m.running.is_none());
    assert_eq!(m.vcpu.regs.rip, KERNEL_RIP);
}

/// Where the batch tests put their entries.
const ENTRIES: u64 = 0x5000;

/// The entries at [`ENTRIES`] as the host left them.
fn entries(m: &Machine<FakeVcpu>, n: u64) -> Vec<BatchEntry> {
    (0..n)
        .map(|i| m.guest.ram.read_obj(ENTRIES + i * 88).unwrap())
        .collect()
}

#[test]
fn a_batch_carries_out_its_entries_in_order_and_stops_at_the_first_unmet() {
    let mut m = machine();
    let batch = [
        BatchEntry::new(
            Call::VmspaceCreate {
                id: 1,
                ty: 0,
                data: 0,
            },
            0,
        ),
        BatchEntry::new(Call::VmspaceDestroy { id: 7 }, 0),
        BatchEntry::new(
            Call::VmspaceCreate {
                id: 2,
                ty: 0,
                data: 0,
            },
            0,
        ),
    ];
    for (i, e) in batch.iter().enumerate() {
        m.guest.ram.write_obj(ENTRIES + i as u64 * 88, e).unwrap();
    }
    let exits = m.stats.hypercalls;
    assert!(m
        .hypercall(Call::Batch {
            entries: ENTRIES,
            count: 3
        })
        .is_ok());
    assert_eq!(m.result(), (1, 0), "one entry met its expectation");
    let done = entries(&m, 3);
    assert_eq!((done[0].ret, done[0].errno), (0, 0));
    assert_eq!((done[1].ret, done[1].errno), (-1, Errno::ENOENT.0 as i64));
    assert_eq!(
        (done[2].ret, done[2].errno),
        (-1, Errno::ECANCELED.0 as i64)
    );
    assert!(m.guest.registry.contains(1) && !m.guest.registry.contains(2));
    assert_eq!((m.stats.hypercalls - exits, m.stats.batched), (1, 2));

    // The ctl variant runs nothing after an unmet entry...
    m.guest.ram.write_obj(TFRAME, &user_frame()).unwrap();
    m.guest
        .ram
        .write_obj(VFRAME, &VextFrame::default())
        .unwrap();
    let ctl_batch = |count| Call::VmspaceCtlBatch {
        entries: ENTRIES,
        count,
        id: 1,
        cmd: VMSPACE_CTL_RUN,
        tframe: TFRAME,
        vframe: VFRAME,
        timeout_us: 0,
    };
    m.guest.ram.write_obj(ENTRIES, &batch[1]).unwrap();
    assert!(m.hypercall(ctl_batch(1)).is_ok());
    assert_eq!(m.result(), (-1, Errno::ECANCELED.0 as i64));
    assert!(m.running.is_none());
    // ... and runs the process after met ones, in the same exit.
    m.guest.ram.write_obj(ENTRIES, &batch[2]).unwrap();
    assert!(m.hypercall(ctl_batch(1)).is_ok());
    assert!(m.guest.registry.contains(2));
    assert_eq!(m.running.as_ref().map(|r| r.id), Some(1));
}

#[test]
fn malformed_batches_are_refused_whole() {
    let mut m = machine();
    let create = BatchEntry::new(
        Call::VmspaceCreate {
            id: 1,
            ty: 0,
            data: 0,
        },
        0,
    );
    m.guest.ram.write_obj(ENTRIES, &create).unwrap();
    let cases = [
        (ENTRIES, BATCH_MAX + 1, Errno::EINVAL),
        (ENTRIES, u64::MAX, Errno::EINVAL),
        (RAM - 8, 1, Errno::EFAULT),
        (ENTRIES + 4, 1, Errno::EFAULT),
    ];
    for (entries, count, errno) in cases {
        assert!(m.hypercall(Call::Batch { entries, count }).is_ok());
        assert_eq!(m.result(), (-1, errno.0 as i64), "{entries:#x} {count}");
    }
    assert!(!m.guest.registry.contains(1));
    // A call that may not be batched is its entry's EINVAL: an exit in a
    // batch does not end the run.
    let exit = BatchEntry::new(Call::Exit { status: 3 }, 0);
    m.guest.ram.write_obj(ENTRIES, &exit).unwrap();
    assert!(m
        .hypercall(Call::Batch {
            entries: ENTRIES,
            count: 1
        })
        .is_ok());
    assert_eq!(m.result(), (0, 0));
    assert_eq!(entries(&m, 1)[0].errno, Errno::EINVAL.0 as i64);
}

/// Every exit a process may not make, with where its instruction is.
fn process_fault_exits() -> Vec<(Exit, u64)> {
    vec![
        (Exit::In { port: SYSCALL_PORT }, 0x40_0010),
        (Exit::In { port: 0x3f8 }, 0x40_0020),
        // A hypercall port, a closed port, the syscall port with the wrong
        // width, and the syscall port from the process's own code.
        (
            Exit::Out {
                port: HC_PORT_BASE,
                len: 4,
                value: BLOCK as u32,
            },
            0x40_0030,
        ),
        (
            Exit::Out {
                port: 0x80,
                len: 1,
                value: 0,
            },
            0x40_0040,
        ),
        (
            Exit::Out {
                port: SYSCALL_PORT,
                len: 2,
                value: 0,
            },
            layout::SYSCALL_STUB_ADDR,
        ),
        (
            Exit::Out {
                port: SYSCALL_PORT,
                len: 1,
                value: 0,
            },
            0x40_0050,
        ),
        (
            Exit::Mmio {
                addr: 0xfee0_0000,
                write: false,
            },
            0x40_0060,
        ),
        (
            Exit::Mmio {
                addr: 0xfee0_0000,
                write: true,
            },
            0x40_0070,
        ),
        // An exception port from ring 3 (no bitmap opens it).
        (
            Exit::Out {
                port: TRAP_PORT_BASE + 13,
                len: 1,
                value: 0,
            },
            0x40_00b0,
        ),
        (Exit::InternalError { suberror: 1 }, 0x40_0080),
        (Exit::FailEntry(0x21), 0x40_0090),
        (Exit::Other("Hlt".into()), 0x40_00a0),
    ]
}

#[test]
fn exits_a_process_may_not_make_are_its_fault_not_a_stop() {
    for (exit, rip) in process_fault_exits() {
        let mut m = machine();
        let create = Call::VmspaceCreate {
            id: 1,
            ty: 0,
            data: 0,
        };
        assert!(m.hypercall(create).is_ok());
        assert!(m.run_process(1, &user_frame()).is_ok());
        m.vcpu.regs.rip = rip;
        m.vcpu.regs.rbx = 0x5150;
        let what = format!("{exit:?}");
        if let Exit::InternalError { suberror: 1 } = exit {
            // An emulation failure is first run again after the shadow
            // is dropped (KVM may have had to emulate only because a
            // stale shadow write-protected the page); the second at the
            // same instruction is the process's.
            let flushes = m.vcpu.flushes;
            assert!(
                m.exit(Exit::InternalError { suberror: 1 }).is_ok(),
                "{what}"
            );
            assert_eq!(m.running.as_ref().map(|r| r.id), Some(1), "{what}: retried");
            assert_eq!(m.vcpu.flushes, flushes + 1, "{what}: shadow dropped");
            assert_eq!(m.stats.process_faults, 0, "{what}");
        }
        let finished = m.vcpu.finished;
        assert!(m.exit(exit).is_ok(), "{what} stopped the VM");
        // The kernel is back on the vCPU with ctl's result 0 and a
        // T_PROTFLT frame at the process's instruction.
        assert!(m.running.is_none(), "{what}");
        assert_eq!(m.vcpu.regs.rip, KERNEL_RIP + 1, "{what}");
        assert_eq!(m.vcpu.sregs.tr.selector, selector::TSS_KERNEL, "{what}");
        assert_eq!(m.result(), (0, 0), "{what}");
        let tf: TrapFrame = m.guest.ram.read_obj(TFRAME).unwrap();
        assert_eq!(
            ({ tf.trapno }, { tf.rip }, { tf.rbx }, { tf.cs }),
            (T_PROTFLT, rip, 0x5150, selector::USER_CS as u64),
            "{what}"
        );
        // KVM's unfinished part of the exit was done before the switch.
        assert_eq!(m.vcpu.finished, finished + 1, "{what}");
        assert_eq!(m.stats.process_faults, 1, "{what}");
        // The process can be run again (the kernel decides; here it does).
        assert!(m.run_process(1, &user_frame()).is_ok(), "{what}");
        assert_eq!(m.running.as_ref().map(|r| r.id), Some(1), "{what}");
    }
}

#[test]
fn the_syscall_stub_out_is_still_a_system_call_and_finishes_nothing() {
    let mut m = machine();
    let create = Call::VmspaceCreate {
        id: 1,
        ty: 0,
        data: 0,
    };
    assert!(m.hypercall(create).is_ok());
    for rip in [
        layout::SYSCALL_STUB_ADDR,
        layout::SYSCALL_STUB_ADDR + trap_area::STUB_OUT_LEN,
    ] {
        assert!(m.run_process(1, &user_frame()).is_ok());
        m.vcpu.regs.rip = rip;
        let out = Exit::Out {
            port: SYSCALL_PORT,
            len: 1,
            value: 0,
        };
        assert!(m.exit(out).is_ok());
        let tf: TrapFrame = m.guest.ram.read_obj(TFRAME).unwrap();
        assert_eq!({ tf.trapno }, T_FAST_SYSCALL);
    }
    // The hot path takes no extra KVM_RUN.
    assert_eq!((m.vcpu.finished, m.stats.process_faults), (0, 0));
}

#[test]
fn a_triple_fault_under_a_process_still_stops_the_vm() {
    let mut m = machine();
    let create = Call::VmspaceCreate {
        id: 1,
        ty: 0,
        data: 0,
    };
    assert!(m.hypercall(create).is_ok());
    assert!(m.run_process(1, &user_frame()).is_ok());
    assert!(matches!(
        m.exit(Exit::Shutdown),
        Err(Stop::Violation(Violation::TripleFault))
    ));
}

#[test]
fn exits_that_are_not_calls_stop_the_guest() {
    let mut m = machine();
    assert!(matches!(
        m.exit(Exit::In { port: 0x60 }),
        Err(Stop::Violation(Violation::InPort { port: 0x60 }))
    ));
    assert!(matches!(
        m.exit(Exit::Shutdown),
        Err(Stop::Violation(Violation::TripleFault))
    ));
    assert!(matches!(
        m.exit(Exit::Out {
            port: 0x80,
            len: 1,
            value: 0
        }),
        Err(Stop::Violation(Violation::KernelPort { port: 0x80 }))
    ));
    // Ring 3 writing an exception port is not the trap stub.
    assert!(matches!(
        m.exit(Exit::Out {
            port: TRAP_PORT_BASE + 14,
            len: 1,
            value: 0
        }),
        Err(Stop::Violation(Violation::NotTrapStub { vector: 14, .. }))
    ));
    // A late slice signal while the kernel runs changes nothing.
    assert!(m.exit(Exit::Interrupted).is_ok());
    assert_eq!(m.vcpu.regs.rip, KERNEL_RIP);
}

impl Machine<FakeVcpu> {
    /// The CPU delivers exception `vector` raised at `rip`/`rsp` (error
    /// code `err` where the vector has one): it pushes the hardware frame
    /// on the trap stack and the ring-0 stub runs its `out`.
    fn deliver(&mut self, vector: u8, err: Option<u64>, rip: u64, rsp: u64) -> Handled {
        let va = trap_area::exception_frame_addr(vector);
        let off = va - layout::TRAP_AREA_BASE;
        let gpa =
            self.guest.trap_pages[(off / layout::PAGE_SIZE) as usize] + off % layout::PAGE_SIZE;
        let frame = [
            rip,
            selector::USER_CS as u64,
            rflags::IF | rflags::FIXED,
            rsp,
            selector::USER_SS as u64,
        ];
        for (i, w) in err.iter().chain(frame.iter()).enumerate() {
            self.guest
                .mem
                .write_obj(*w, GuestAddress(gpa + 8 * i as u64))
                .unwrap();
        }
        self.vcpu.regs.rip = trap_area::stub_addr(vector) + trap_area::STUB_OUT_LEN;
        self.vcpu.sregs.cs.selector = selector::KERNEL_CS;
        self.exit(Exit::Out {
            port: TRAP_PORT_BASE + vector as u16,
            len: 1,
            value: 0,
        })
    }
}

#[test]
fn a_process_fault_in_anonymous_memory_is_resolved_without_the_kernel() {
    let mut m = machine();
    let create = Call::VmspaceCreate {
        id: 1,
        ty: 0,
        data: 0,
    };
    assert!(m.hypercall(create).is_ok());
    let mmap = Call::VmspaceMmap {
        id: 1,
        addr: 0x60_0000,
        len: 0x10_000,
        prot: PROT_READ | PROT_WRITE,
        flags: MAP_ANON | MAP_PRIVATE | vkernel_abi::mman::MAP_FIXED,
        fd: u64::MAX,
        off: 0,
    };
    assert!(m.hypercall(mmap).is_ok());
    assert!(m.run_process(1, &user_frame()).is_ok());
    m.vcpu.sregs.cr2 = 0x60_0010;
    // A user-mode write to a page not present (error code W|U).
    assert!(m.deliver(14, Some(6), 0x40_0000, 0x7fff_0000).is_ok());
    // Still the process, back in ring 3 at the faulting instruction.
    assert!(m.running.is_some());
    assert_eq!(m.vcpu.regs.rip, 0x40_0000);
    assert_eq!(m.vcpu.sregs.cs.selector, selector::USER_CS);
    assert_eq!((m.stats.faults_resolved, m.stats.traps_delivered), (1, 0));
    // Outside any mapping, the kernel gets T_PAGEFLT with the address.
    m.vcpu.sregs.cr2 = 0x90_0000;
    assert!(m.deliver(14, Some(6), 0x40_0004, 0x7fff_0000).is_ok());
    assert!(m.running.is_none());
    let tf: TrapFrame = m.guest.ram.read_obj(TFRAME).unwrap();
    assert_eq!(
        ({ tf.trapno }, { tf.addr }, { tf.err }, { tf.rip }),
        (vkernel_abi::frame::T_PAGEFLT, 0x90_0000, 6, 0x40_0004)
    );
}

#[test]
fn the_end_of_a_slice_gives_the_kernel_a_timeout_frame() {
    let mut m = machine();
    let create = Call::VmspaceCreate {
        id: 1,
        ty: 0,
        data: 0,
    };
    assert!(m.hypercall(create).is_ok());
    assert!(m.run_process(1, &user_frame()).is_ok());
    m.vcpu.regs.rip = 0x40_0100;
    assert!(m.exit(Exit::Interrupted).is_ok());
    assert!(m.running.is_none());
    let tf: TrapFrame = m.guest.ram.read_obj(TFRAME).unwrap();
    assert_eq!(
        ({ tf.trapno }, { tf.rip }),
        (vkernel_abi::frame::T_TIMEOUT, 0x40_0100)
    );
    assert_eq!(m.vcpu.regs.rip, KERNEL_RIP + 1);
}

#[test]
fn a_kernel_exception_is_a_crash_with_the_interrupted_context() {
    let mut m = machine();
    match m.deliver(6, None, 0x20_1234, 0x9000) {
        Err(Stop::Crash(c)) => {
            assert_eq!((c.vector, c.regs.rip, c.regs.rsp), (6, 0x20_1234, 0x9000));
            assert_eq!(c.sregs.cs.selector, selector::USER_CS);
            assert!(c
                .describe()
                .contains("invalid opcode (#UD) (vector 6) at rip 0x201234"));
        }
        other => panic!("{other:?}"),
    }
}

/// What the hooks were told, in order.
#[derive(Default)]
struct Log(Vec<String>);

struct Recorder(Rc<RefCell<Log>>);

impl RunHooks for Recorder {
    fn hypercall_done(&mut self, _: &mut dyn VcpuAccess) {
        self.0.borrow_mut().0.push("hypercall".into());
    }
    fn entered_process(&mut self, cpu: &mut dyn VcpuAccess) {
        let what = format!("entered in_process={}", cpu.in_process());
        self.0.borrow_mut().0.push(what);
    }
    fn leaving_process(&mut self, cpu: &mut dyn VcpuAccess, tf: &mut TrapFrame) {
        // The kernel context RUN saved is reachable while the process runs.
        let saved = cpu.saved_kernel_rflags().map(|f| *f);
        self.0
            .borrow_mut()
            .0
            .push(format!("leaving trapno={} saved={saved:?}", { tf.trapno }));
        tf.rax = 1234; // hooks may change the frame the kernel gets
    }
    fn exited(&mut self, _: &mut dyn VcpuAccess, status: i32) {
        self.0.borrow_mut().0.push(format!("exited {status}"));
    }
}

#[test]
fn hooks_see_the_switches_and_may_change_the_trap_frame() {
    let mut m = machine();
    let log = Rc::new(RefCell::new(Log::default()));
    m.set_hooks(Box::new(Recorder(log.clone())));
    let create = Call::VmspaceCreate {
        id: 1,
        ty: 0,
        data: 0,
    };
    assert!(m.hypercall(create).is_ok());
    assert!(m.run_process(1, &user_frame()).is_ok());
    m.vcpu.regs.rip = layout::SYSCALL_STUB_ADDR;
    let out = Exit::Out {
        port: SYSCALL_PORT,
        len: 1,
        value: 0,
    };
    assert!(m.exit(out).is_ok());
    let tf: TrapFrame = m.guest.ram.read_obj(TFRAME).unwrap();
    assert_eq!({ tf.rax }, 1234);
    let exit = Call::Exit { status: 3 }.encode();
    m.guest.ram.write_obj(BLOCK, &exit).unwrap();
    m.vcpu.exits.push_back(Exit::Out {
        port: HC_PORT_BASE + 2,
        len: 4,
        value: BLOCK as u32,
    });
    assert_eq!(m.run().unwrap(), Outcome::Exited(3));
    let flags = rflags::IF | rflags::FIXED;
    assert_eq!(
        log.borrow().0,
        [
            "hypercall".to_string(),
            "entered in_process=true".into(),
            "hypercall".into(),
            format!("leaving trapno={T_FAST_SYSCALL} saved=Some({flags})"),
            "hypercall".into(),
            "exited 3".into(),
        ]
    );
}
