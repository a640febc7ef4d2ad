//! Builds the guest workspace (kernel and programs, for
//! x86_64-unknown-none) and packs the built-in images, so that `vkernel`
//! with no arguments boots without any file beside it.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

use loader::cpio_writer::{pack, Member};

fn main() {
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let root = manifest.parent().unwrap().to_path_buf();
    let guest = root.join("guest");
    let out = PathBuf::from(env::var("OUT_DIR").unwrap());
    // One guest target dir for every host profile: the guest is always
    // built in release (it is small, and debug info is on).
    let guest_target = root.join("target").join("guest");

    for dir in [
        "guest/kernel",
        "guest/hctest",
        "guest/guestlib",
        "guest/user",
        "guest/Cargo.toml",
        "guest/.cargo",
        "vmspace/abi/src",
        "images",
    ] {
        println!("cargo:rerun-if-changed={}", root.join(dir).display());
    }

    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(&guest)
        .args(["build", "--release", "--target-dir"])
        .arg(&guest_target);
    // The host build's settings must not leak into the guest build.
    for var in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_BUILD_TARGET",
        "CARGO_TARGET_DIR",
        "CARGO_MAKEFLAGS",
        "RUSTC",
        "RUSTDOC",
    ] {
        cmd.env_remove(var);
    }
    for (k, _) in env::vars() {
        if k.starts_with("CARGO_CFG_")
            || k.starts_with("CARGO_FEATURE_")
            || k.starts_with("CARGO_PROFILE_")
        {
            cmd.env_remove(k);
        }
    }
    let status = cmd.status().expect("running cargo for the guest workspace");
    assert!(status.success(), "building the guest workspace failed");

    let bin = guest_target.join("x86_64-unknown-none").join("release");
    copy(&bin.join("kernel"), &out.join("kernel"));
    copy(&bin.join("hctest"), &out.join("hctest"));
    // The user programs: init at /init, the others under /bin.
    let mut programs = vec![("init".to_string(), bin.join("init"))];
    for name in USER_PROGRAMS {
        programs.push((format!("bin/{name}"), bin.join(name)));
    }
    let extra: Vec<(&str, PathBuf)> = programs
        .iter()
        .map(|(n, p)| (n.as_str(), p.clone()))
        .collect();
    let image = pack_dir(&root.join("images").join("default"), &extra);
    std::fs::write(out.join("default.cpio"), image).unwrap();
}

/// Programs of `guest/user/src/bin` packed under `/bin` (init goes to /init).
const USER_PROGRAMS: &[&str] = &["hello", "compute", "sleeper", "crash", "systest"];

fn copy(from: &Path, to: &Path) {
    std::fs::copy(from, to).unwrap_or_else(|e| panic!("copy {}: {e}", from.display()));
}

/// Packs every regular file under `dir` (sorted, so the archive is
/// reproducible) plus `extra` (name, file) members.
fn pack_dir(dir: &Path, extra: &[(&str, PathBuf)]) -> Vec<u8> {
    let mut files = Vec::new();
    walk(dir, dir, &mut files);
    files.sort();
    let mut contents: Vec<(String, u32, Vec<u8>)> = files
        .into_iter()
        .map(|(name, path)| (name, 0o100644, std::fs::read(path).unwrap()))
        .collect();
    for (name, path) in extra {
        let data = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        contents.push((name.to_string(), 0o100755, data));
    }
    let members: Vec<Member> = contents
        .iter()
        .map(|(name, mode, data)| Member {
            name,
            mode: *mode,
            data,
        })
        .collect();
    pack(&members)
}

fn walk(base: &Path, dir: &Path, files: &mut Vec<(String, PathBuf)>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            walk(base, &path, files);
        } else {
            let name = path
                .strip_prefix(base)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            files.push((name, path));
        }
    }
}
