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
    let f = image(Some(b"echo hi\n")); // neither an ELF nor a #! script
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
fn image_and_program_together_are_refused() {
    let f = image(None);
    refused(
        &[
            "run",
            "--image",
            f.path().to_str().unwrap(),
            "--",
            "/bin/true",
        ],
        "give either --image or a program after --, not both",
    );
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
