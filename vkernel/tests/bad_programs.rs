//! Images and programs the guest cannot run: one line saying why, a
//! non-zero exit status, no panic.

mod common;

use common::vkernel;
use loader::cpio_writer::{pack, Member};
use std::io::Write;

fn temp_file(bytes: &[u8]) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(bytes).unwrap();
    f
}

fn image(init: Option<&[u8]>) -> tempfile::NamedTempFile {
    let mut members = vec![Member {
        name: "etc/motd",
        mode: 0o100644,
        data: b"hi\n",
    }];
    if let Some(data) = init {
        members.push(Member {
            name: "init",
            mode: 0o100755,
            data,
        });
    }
    temp_file(&pack(&members))
}

fn refused(args: &[&str], line: &str) {
    let r = vkernel(args);
    assert_ne!(r.code, 0, "{}", r.stderr);
    assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
    r.stderr_has(line);
}

#[test]
fn image_without_init_is_refused() {
    let f = image(None);
    let p = f.path().to_str().unwrap();
    refused(&["run", "--image", p], &format!("image {p}: no /init"));
}

#[test]
fn init_that_is_not_an_elf_is_refused() {
    // Neither an ELF nor a `#!` script.
    let f = image(Some(b"echo hi\n"));
    let p = f.path().to_str().unwrap();
    refused(
        &["run", "--image", p],
        &format!("image {p}: /init is not an ELF executable"),
    );
}

#[test]
fn init_for_another_machine_is_refused() {
    let mut elf = std::fs::read(common::guest_program("hello")).unwrap();
    elf[18] = 183; // EM_AARCH64
    let f = image(Some(&elf));
    let p = f.path().to_str().unwrap();
    refused(&["run", "--image", p], "/init is not an x86-64 executable");
}

#[test]
fn truncated_image_is_refused() {
    let mut bytes = pack(&[Member {
        name: "init",
        mode: 0o100755,
        data: &[0u8; 1000],
    }]);
    bytes.truncate(500);
    let f = temp_file(&bytes);
    let p = f.path().to_str().unwrap();
    refused(
        &["run", "--image", p],
        &format!("image {p}: archive truncated at byte 0"),
    );
}

#[test]
fn program_that_is_not_an_elf_is_refused() {
    let f = temp_file(b"plain text");
    let p = f.path().to_str().unwrap();
    refused(&["run", "--", p], &format!("{p}: not an ELF executable"));
}

#[test]
fn missing_program_is_named() {
    refused(
        &["run", "--", "/nonexistent/prog"],
        "/nonexistent/prog: No such file",
    );
}

#[test]
fn a_program_missing_from_the_image_is_named() {
    // With --image, the program after -- is one inside the image.
    let f = image(None);
    let r = vkernel(&[
        "run",
        "--image",
        f.path().to_str().unwrap(),
        "--",
        "/bin/true",
    ]);
    r.expect_code(127);
    r.stderr_has("kernel: cannot run /bin/true: no such file");
}

#[test]
fn init_that_the_kernel_cannot_load_exits_nonzero() {
    // An ELF header with no program headers: the host's quick check passes,
    // the kernel's loader refuses it.
    let mut elf = std::fs::read(common::guest_program("hello")).unwrap();
    elf[56] = 0; // e_phnum
    elf[57] = 0;
    let f = image(Some(&elf));
    let r = vkernel(&["run", "--image", f.path().to_str().unwrap()]);
    assert_eq!(r.code, 126, "{}", r.stderr);
    r.stderr_has("kernel: cannot run /init: bad program header table");
}

/// Writes `v` little-endian at `off`.
fn put(elf: &mut [u8], off: usize, v: &[u8]) {
    elf[off..off + v.len()].copy_from_slice(v);
}

#[test]
fn malformed_inits_are_refused_by_the_kernel_with_their_reason() {
    // The `hello` program: ET_EXEC, six 56-byte program headers at 64, the
    // first four PT_LOAD (text at 0x400000, rodata at 0x402000, ...).
    let hello = std::fs::read(common::guest_program("hello")).unwrap();
    let h = vkernel_abi::elf::header(&hello).unwrap();
    assert_eq!((h.e_type, h.e_phoff, h.e_phnum), (2, 64, 6));
    let ph = |i: usize, field: usize| 64 + 56 * i + field;
    let (p_type, p_offset, p_vaddr, p_filesz) = (0, 8, 16, 32);
    let len = hello.len() as u64;
    type Edit = Box<dyn Fn(&mut Vec<u8>)>;
    let cases: Vec<(Edit, &str)> = vec![
        (
            Box::new(|e| put(e, 16, &1u16.to_le_bytes())), // ET_REL
            "not an executable (ELF type is neither EXEC nor DYN)",
        ),
        (
            Box::new(|e| put(e, 54, &64u16.to_le_bytes())), // e_phentsize
            "bad program header table",
        ),
        (
            Box::new(|e| put(e, 56, &65u16.to_le_bytes())), // e_phnum
            "bad program header table",
        ),
        (
            Box::new(move |e| put(e, 32, &(len - 100).to_le_bytes())), // e_phoff
            "program headers lie outside the file",
        ),
        (
            // PT_INTERP over a header with no bytes: no NUL-terminated path.
            Box::new(move |e| put(e, ph(5, p_type), &3u32.to_le_bytes())),
            "bad PT_INTERP",
        ),
        (
            Box::new(move |e| put(e, ph(0, p_offset), &len.to_le_bytes())),
            "segment lies outside the file",
        ),
        (
            Box::new(move |e| put(e, ph(2, p_filesz), &0x1000u64.to_le_bytes())), // > p_memsz
            "segment lies outside the file",
        ),
        (
            Box::new(move |e| put(e, ph(0, p_vaddr), &(u64::MAX - 0xfff).to_le_bytes())),
            "segment address overflows",
        ),
        (
            Box::new(move |e| put(e, ph(0, p_vaddr), &0u64.to_le_bytes())),
            "segment outside the user address range",
        ),
        (
            Box::new(move |e| put(e, ph(1, p_vaddr), &0x40_0000u64.to_le_bytes())),
            "segments overlap or are not in order",
        ),
        (
            Box::new(move |e| {
                for i in 0..4 {
                    put(e, ph(i, p_type), &0u32.to_le_bytes()); // PT_NULL
                }
            }),
            "no loadable segment",
        ),
    ];
    for (edit, reason) in cases {
        let mut elf = hello.clone();
        edit(&mut elf);
        let f = image(Some(&elf));
        let r = vkernel(&["run", "--image", f.path().to_str().unwrap()]);
        assert_eq!(r.code, 126, "{reason}: {}", r.stderr);
        assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
        r.stderr_has(&format!("kernel: cannot run /init: {reason}"));
    }
}

#[test]
fn init_with_an_unknown_elf_version_is_refused() {
    let mut elf = std::fs::read(common::guest_program("hello")).unwrap();
    elf[6] = 0; // EI_VERSION
    let f = image(Some(&elf));
    let p = f.path().to_str().unwrap();
    refused(
        &["run", "--image", p],
        &format!("image {p}: /init is not an ELF executable (ELF version is not 1)"),
    );
}
