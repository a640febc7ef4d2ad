//! Host-side fuzzing (#19) of the parsers that live in the host binary:
//! the trap-frame sanitizer (`process::check_frame`, run on every frame
//! `vmspace_ctl(RUN)` is given) and the ELF loader's checks (`loader::load`
//! on a kernel whose headers are mutated). Never a panic; what is
//! accepted satisfies the invariants the run loop relies on.
//!
//! `VKERNEL_FUZZ_CASES` sets the cases per property (default 2,000 for
//! the sanitizer, a tenth of it for the loader, which writes the kernel
//! into guest memory each time: about a second together).

use proptest::prelude::*;
use vkernel::process::{check_frame, regs_from_frame};
use vkernel_abi::layout::{KERNEL_MIN_ADDR, VM_MAX_USER_ADDRESS};
use vkernel_abi::{rflags, selector, TrapFrame, VextFrame};
use vm_memory::{GuestAddress, GuestMemoryMmap};

fn cases(divisor: u32) -> u32 {
    let n = std::env::var("VKERNEL_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    (n / divisor).max(1)
}

fn config(divisor: u32) -> ProptestConfig {
    ProptestConfig {
        cases: cases(divisor),
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// A value near the edges the sanitizer checks, or anything.
fn edgy() -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(VM_MAX_USER_ADDRESS),
        Just(VM_MAX_USER_ADDRESS - 1),
        Just(0u64),
        Just(1u64 << 47),
        Just(u64::MAX),
        0x1000u64..0x10_0000,
        any::<u64>(),
    ]
}

fn selector_value() -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(selector::USER_CS as u64),
        Just(selector::USER_SS as u64),
        Just(selector::KERNEL_CS as u64),
        0u64..0x40,
        any::<u64>(),
    ]
}

fn flags_value() -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(rflags::IF | rflags::FIXED),
        (any::<u64>()).prop_map(|f| (f & rflags::USER_CHANGEABLE) | rflags::IF),
        any::<u64>(),
    ]
}

fn frame() -> impl Strategy<Value = (TrapFrame, VextFrame)> {
    (
        selector_value(),
        selector_value(),
        flags_value(),
        edgy(),
        edgy(),
        edgy(),
        edgy(),
        any::<[u64; 8]>(),
    )
        .prop_map(|(cs, ss, fl, rip, rsp, fs, gs, gp)| {
            let tf = TrapFrame {
                cs,
                ss,
                rflags: fl,
                rip,
                rsp,
                rax: gp[0],
                rbx: gp[1],
                rcx: gp[2],
                rdx: gp[3],
                rsi: gp[4],
                rdi: gp[5],
                r8: gp[6],
                r15: gp[7],
                ..TrapFrame::default()
            };
            let mut vf = VextFrame::default();
            vf.tls[0].base = fs;
            vf.tls[1].base = gs;
            (tf, vf)
        })
}

proptest! {
    #![proptest_config(config(1))]

    /// A frame the sanitizer accepts runs in ring 3 with the user
    /// selectors, IF on, IOPL 0, no NT/VM/VIF/VIP, and RIP, RSP and both
    /// TLS bases in the user half; what the vCPU gets is that frame.
    #[test]
    fn trap_frame_sanitizer_accepts_only_safe_frames((tf, vf) in frame()) {
        if check_frame(&tf, &vf).is_ok() {
            prop_assert_eq!(tf.cs, selector::USER_CS as u64);
            prop_assert_eq!(tf.ss, selector::USER_SS as u64);
            prop_assert!(tf.cs & 3 == 3 && tf.ss & 3 == 3);
            const FORBIDDEN: u64 = rflags::IOPL | (1 << 14) | (1 << 17) | (1 << 19) | (1 << 20);
            let fl = tf.rflags;
            prop_assert!(fl & rflags::IF != 0);
            prop_assert!(fl & FORBIDDEN == 0, "rflags {:#x}", fl);
            prop_assert!(fl >> 22 == 0, "reserved rflags bits {:#x}", fl);
            for a in [tf.rip, tf.rsp, vf.tls[0].base, vf.tls[1].base] {
                prop_assert!(a < VM_MAX_USER_ADDRESS, "{:#x}", a);
            }
            let r = regs_from_frame(&tf);
            prop_assert_eq!(r.rip, tf.rip);
            prop_assert_eq!(r.rsp, tf.rsp);
            prop_assert!(r.rflags & FORBIDDEN == 0);
        }
    }
}

/// Guest RAM for the loader: 64 MiB (touched only where written).
const MEM_BYTES: u64 = 64 << 20;

fn guest_memory() -> GuestMemoryMmap {
    GuestMemoryMmap::from_ranges(&[(GuestAddress(0), MEM_BYTES as usize)]).unwrap()
}

/// The region of an ELF file its checks read: the ELF header and the
/// program headers (where a mutation changes what is loaded where).
fn header_span(elf: &[u8]) -> usize {
    let phoff = u64::from_le_bytes(elf[32..40].try_into().unwrap()) as usize;
    let phnum = u16::from_le_bytes(elf[56..58].try_into().unwrap()) as usize;
    (phoff + phnum * 56).min(elf.len())
}

proptest! {
    #![proptest_config(config(10))]

    /// The built-in test kernel with its ELF and program headers mutated
    /// (bytes set, fields overwritten with edge values), sometimes cut
    /// short: the loader answers, and a kernel it accepts has its entry
    /// inside guest RAM at or above the minimum kernel address.
    #[test]
    fn elf_loader_checks_take_mutated_kernels(
        byte_edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..8),
        word_edits in proptest::collection::vec((any::<prop::sample::Index>(), prop_oneof![
            Just(0u64), Just(u64::MAX), Just(MEM_BYTES), Just(MEM_BYTES - 8), Just(KERNEL_MIN_ADDR - 1),
            Just(1u64 << 63), any::<u64>(),
        ]), 0..4),
        cut in prop::option::weighted(0.1, any::<prop::sample::Index>()),
    ) {
        thread_local!(static MEM: GuestMemoryMmap = guest_memory());
        let mut elf = vkernel::images::TEST_KERNEL.to_vec();
        let span = header_span(&elf);
        for (at, v) in byte_edits {
            elf[at.index(span)] = v;
        }
        for (at, v) in word_edits {
            let i = at.index(span.saturating_sub(8)) & !7;
            elf[i..i + 8].copy_from_slice(&v.to_le_bytes());
        }
        if let Some(c) = cut {
            elf.truncate(c.index(elf.len() + 1));
        }
        let image = vkernel::images::DEFAULT_IMAGE;
        let result = MEM.with(|mem| {
            loader::load(
                mem,
                MEM_BYTES,
                64 << 20,
                &loader::Blob { name: "fuzzed".into(), bytes: &elf },
                &loader::Blob { name: "image".into(), bytes: image },
                "",
            )
        });
        if let Ok(loaded) = result {
            prop_assert!((KERNEL_MIN_ADDR..MEM_BYTES).contains(&loaded.entry), "{:#x}", loaded.entry);
        }
    }
}
