// Link the kernel at its fixed address with the linker script it shares
// with the test kernel, and build the vDSO it maps into every process:
// the `vkernel-vdso` crate compiled as position-independent code (the
// workspace builds everything else for a fixed address, so it gets a
// cargo run of its own), linked by rust-lld into `linux-vdso.so.1` with
// Linux's layout and symbol versions, and checked to need no relocation.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    println!(
        "cargo:rustc-link-arg-bins=-T{}/../guestlib/kernel.ld",
        dir.display()
    );
    println!("cargo:rerun-if-changed=../guestlib/kernel.ld");
    for f in [
        "../vdso/src",
        "../vdso/Cargo.toml",
        "../vdso/vdso.lds",
        "../vdso/vdso.ver",
    ] {
        println!("cargo:rerun-if-changed={f}");
    }
    println!("cargo:rerun-if-changed=../../vmspace/abi/src/clock.rs");
    let out = PathBuf::from(env::var("OUT_DIR").unwrap());
    let archive = build_vdso_archive(&dir, &out);
    link_vdso(&dir.join("../vdso"), &archive, &out.join("vdso.so"));
}

/// The vDSO crate as a static archive of position-independent code.
fn build_vdso_archive(kernel: &Path, out: &Path) -> PathBuf {
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let target_dir = out.join("vdso-target");
    let mut cmd = Command::new(cargo);
    cmd.current_dir(kernel.join(".."))
        .args(["build", "--release", "-p", "vkernel-vdso", "--target-dir"])
        .arg(&target_dir);
    // The workspace's flags ask for a fixed address; these win over them.
    let flags = [
        "-Crelocation-model=pic",
        "-Ccode-model=small",
        "-Cpanic=abort",
    ];
    cmd.env("CARGO_ENCODED_RUSTFLAGS", flags.join("\u{1f}"));
    for var in [
        "RUSTFLAGS",
        "CARGO_TARGET_DIR",
        "CARGO_MAKEFLAGS",
        "RUSTC_WRAPPER",
    ] {
        cmd.env_remove(var);
    }
    let status = cmd.status().expect("running cargo for the vDSO");
    assert!(status.success(), "building the vDSO crate failed");
    target_dir.join("x86_64-unknown-none/release/libvkernel_vdso.a")
}

/// rust-lld, from the toolchain that builds us.
fn rust_lld() -> PathBuf {
    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let out = Command::new(rustc)
        .args(["--print", "sysroot"])
        .output()
        .expect("running rustc --print sysroot");
    let sysroot = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let host = env::var("HOST").unwrap_or_else(|_| "x86_64-unknown-linux-gnu".into());
    Path::new(&sysroot)
        .join("lib/rustlib")
        .join(host)
        .join("bin/rust-lld")
}

/// Links the archive into the shared object, keeping the exported symbols.
fn link_vdso(vdso: &Path, archive: &Path, so: &Path) {
    let exported = [
        "__vdso_clock_gettime",
        "__vdso_gettimeofday",
        "__vdso_time",
        "__vdso_clock_getres",
        "__vdso_getcpu",
    ];
    let mut cmd = Command::new(rust_lld());
    cmd.args([
        "-flavor",
        "gnu",
        "-shared",
        "--gc-sections",
        "--no-undefined",
        "--strip-all",
    ])
    .args([
        "-soname=linux-vdso.so.1",
        "--hash-style=both",
        "-z",
        "max-page-size=4096",
    ])
    .arg(format!(
        "--version-script={}",
        vdso.join("vdso.ver").display()
    ))
    .arg(format!("-T{}", vdso.join("vdso.lds").display()));
    for sym in exported {
        cmd.arg(format!("--undefined={sym}"));
    }
    cmd.arg("-o").arg(so).arg(archive);
    let status = cmd.status().expect("running rust-lld for the vDSO");
    assert!(status.success(), "linking the vDSO failed");
    check_no_relocations(so);
}

/// Nothing relocates a vDSO: it must have no dynamic relocation entries.
fn check_no_relocations(so: &Path) {
    let bytes = std::fs::read(so).expect("reading the vDSO");
    let file =
        elf::ElfBytes::<elf::endian::LittleEndian>::minimal_parse(&bytes).expect("the vDSO is ELF");
    let dynamic = file.dynamic().expect("the vDSO's dynamic table");
    let tags = dynamic.map(|d| d.iter().map(|e| e.d_tag).collect::<Vec<_>>());
    for tag in tags.unwrap_or_default() {
        assert!(
            ![elf::abi::DT_RELA, elf::abi::DT_REL, elf::abi::DT_JMPREL, elf::abi::DT_TEXTREL]
                .contains(&tag),
            "the vDSO needs relocation (dynamic tag {tag:#x}): it must be position-independent code only"
        );
    }
}
