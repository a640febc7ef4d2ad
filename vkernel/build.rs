//! Builds the guest workspace (kernel and programs, for
//! x86_64-unknown-none) and packs the built-in images, so that `vkernel`
//! with no arguments boots without any file beside it.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

use loader::cpio_writer::{pack, Member};

/// The target the guest workspace is built for (guest/.cargo/config.toml).
const GUEST_TARGET: &str = "x86_64-unknown-none";

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

    ensure_guest_target(&root);
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(&guest)
        .args(["build", "--release", "--target-dir"])
        .arg(&guest_target);
    clean_env(&mut cmd);
    let status = cmd.status().expect("running cargo for the guest workspace");
    assert!(status.success(), "building the guest workspace failed");

    let bin = guest_target.join(GUEST_TARGET).join("release");
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

/// Removes the host build's settings from a command that builds (or asks
/// about) the guest: they must not leak into it.
fn clean_env(cmd: &mut Command) {
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
}

/// Stops the build with one sentence (cargo prints the script's stderr).
fn fail(sentence: &str) -> ! {
    eprintln!("error: {sentence}");
    std::process::exit(1);
}

/// The sysroot of the compiler the guest build will run: `rustc` found as
/// the guest's cargo finds it (RUSTC removed, in `root`, so the pinned
/// toolchain of rust-toolchain.toml applies).
fn guest_sysroot(root: &Path) -> PathBuf {
    let mut cmd = Command::new("rustc");
    cmd.current_dir(root).args(["--print", "sysroot"]);
    clean_env(&mut cmd);
    match cmd.output() {
        Ok(out) if out.status.success() => {
            PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
        }
        Ok(out) => fail(&format!(
            "`rustc --print sysroot` failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Err(e) => fail(&format!("cannot run rustc to find its sysroot: {e}")),
    }
}

/// Whether the toolchain at `sysroot` has the guest target's standard
/// library (core, alloc, compiler_builtins).
fn has_guest_target(sysroot: &Path) -> bool {
    let lib = sysroot.join("lib/rustlib").join(GUEST_TARGET).join("lib");
    std::fs::read_dir(lib).is_ok_and(|mut d| {
        d.any(|e| e.is_ok_and(|e| e.file_name().to_string_lossy().starts_with("libcore-")))
    })
}

/// Installs the guest target through rustup when the toolchain lacks it
/// (a fresh machine whose rustup has the pinned toolchain but not the
/// target: the guest build would stop with "can't find crate for `core`"),
/// and says so as a cargo warning.
fn ensure_guest_target(root: &Path) {
    let sysroot = guest_sysroot(root);
    if has_guest_target(&sysroot) {
        return;
    }
    // rustup names the toolchain it runs in RUSTUP_TOOLCHAIN; without it,
    // rust-toolchain.toml (found from `root`) names it.
    let toolchain = env::var("RUSTUP_TOOLCHAIN").ok();
    let rustup = |program: PathBuf| {
        let mut cmd = Command::new(program);
        cmd.current_dir(root).args(["target", "add"]);
        if let Some(t) = &toolchain {
            cmd.args(["--toolchain", t]);
        }
        cmd.arg(GUEST_TARGET);
        clean_env(&mut cmd);
        cmd.status()
    };
    // On PATH, or where rustup's installer puts it.
    let beside_cargo = env::var_os("CARGO_HOME").map(|h| PathBuf::from(h).join("bin/rustup"));
    let status = match (rustup("rustup".into()), beside_cargo) {
        (Err(e), Some(other)) if e.kind() == std::io::ErrorKind::NotFound => rustup(other),
        (r, _) => r,
    };
    let how = format!(
        "rustup target add {}{GUEST_TARGET}",
        toolchain
            .as_ref()
            .map(|t| format!("--toolchain {t} "))
            .unwrap_or_default()
    );
    match status {
        Ok(s) if s.success() => {}
        Ok(s) => fail(&format!(
            "the Rust toolchain at {} lacks the {GUEST_TARGET} target the guest kernel is built for, and `{how}` failed ({s})",
            sysroot.display()
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => fail(&format!(
            "the Rust toolchain at {} lacks the {GUEST_TARGET} target the guest kernel is built for, and rustup, which would install it, is not installed (neither on PATH nor in $CARGO_HOME/bin): install rustup, or add the target's standard library to this toolchain",
            sysroot.display()
        )),
        Err(e) => fail(&format!(
            "the Rust toolchain at {} lacks the {GUEST_TARGET} target the guest kernel is built for, and rustup, which would install it, cannot be run: {e}",
            sysroot.display()
        )),
    }
    if !has_guest_target(&sysroot) {
        fail(&format!(
            "`{how}` succeeded but {} still has no {GUEST_TARGET} standard library",
            sysroot.display()
        ));
    }
    println!(
        "cargo:warning=the Rust toolchain lacked the {GUEST_TARGET} target the guest kernel is built for: installed it with `{how}`"
    );
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
