//! Host directories as the guest's root (#16): `--rootfs DIR` mounts the
//! directory read-only under a tmpfs upper layer. Confinement (symlinks
//! and `..` cannot leave the directory), reads and readdir, copy-up
//! writes that never reach the host, whiteouts and opaque directories,
//! the page cache (shared by two processes' mappings: the host reads the
//! file once; a root larger than --memory works), and dynamic programs of
//! the host's own root compared with their output natively.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{c_program, same_as_host, stats_call_count, vkernel};

/// A scratch directory the guest can see through `--rootfs /`: not under
/// /tmp, which the guest's own tmpfs covers (as a container's does) — so
/// not the target directory either when the checkout lives under /tmp.
fn scratch() -> tempfile::TempDir {
    let target = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let base = if target.starts_with("/tmp") {
        Path::new("/var/tmp")
    } else {
        target
    };
    tempfile::tempdir_in(base).unwrap()
}

fn pattern(size: usize) -> Vec<u8> {
    (0..size).map(|i| (i * 7 % 251) as u8).collect()
}

/// The tree `tests/c/hostfs.c` expects (see its header).
fn make_root(dir: &Path, big: usize) -> PathBuf {
    let root = dir.join("root");
    for d in ["etc", "data", "tree/a", "lowdir"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    std::fs::create_dir_all(dir.join("outside")).unwrap();
    std::fs::write(dir.join("outside/secret"), "secret\n").unwrap();
    std::fs::write(root.join("etc/passwd"), "inside\n").unwrap();
    std::os::unix::fs::symlink("/etc/passwd", root.join("etc/abs")).unwrap();
    std::os::unix::fs::symlink("../../../../../../etc/passwd", root.join("etc/up")).unwrap();
    // A magic link of the host's, planted: the guest resolves it in its
    // own /proc, whose root is the guest's.
    std::os::unix::fs::symlink("/proc/self/root/etc/passwd", root.join("etc/magic")).unwrap();
    std::fs::write(root.join("data/big"), pattern(big)).unwrap();
    std::fs::write(root.join("data/keep"), "keep\n").unwrap();
    std::fs::write(root.join("tree/a/x"), "x\n").unwrap();
    std::fs::write(root.join("tree/b"), "b\n").unwrap();
    std::fs::write(root.join("lowdir/f"), "f\n").unwrap();
    root
}

/// Every file under `dir` with its bytes and mode, for before/after.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>, u32)> {
    use std::os::unix::fs::MetadataExt;
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let m = std::fs::symlink_metadata(&p).unwrap();
            let data = if m.file_type().is_symlink() {
                std::fs::read_link(&p)
                    .unwrap()
                    .into_os_string()
                    .into_encoded_bytes()
            } else if m.is_dir() {
                stack.push(p.clone());
                Vec::new()
            } else {
                std::fs::read(&p).unwrap()
            };
            out.push((p, data, m.mode()));
        }
    }
    out.sort();
    out
}

#[test]
fn overlay_root_is_confined_and_never_writes_the_host() {
    let dir = scratch();
    let big = 3 << 20;
    let root = make_root(dir.path(), big);
    std::fs::copy(c_program(dir.path(), "hostfs"), root.join("init")).unwrap();
    let before = snapshot(dir.path());
    let r = vkernel(&[
        "run",
        "--stats",
        "--rootfs",
        root.to_str().unwrap(),
        "--",
        "/init",
        &big.to_string(),
    ]);
    assert!(!r.stdout.contains("FAIL"), "{}\n{}", r.stdout, r.stderr);
    r.expect_code(0).stdout_has("\n0 failed");
    assert_eq!(
        snapshot(dir.path()),
        before,
        "the host directory changed under the guest"
    );
    // The page cache: two processes mapped the 3 MiB file and one read
    // it again, yet the host read it about once (plus the program and
    // the small files), not three times.
    let read: u64 = r
        .stderr
        .lines()
        .find_map(|l| l.split("walks, ").nth(1))
        .and_then(|l| l.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no hostfs stats: {}", r.stderr));
    let program = std::fs::metadata(root.join("init")).unwrap().len();
    assert!(
        read >= big as u64 && read < big as u64 + program + (256 << 10),
        "host bytes read {read} for a {big}-byte file shared by three readers"
    );
}

#[test]
fn volumes_are_read_only_and_checked() {
    let dir = scratch();
    let root = make_root(dir.path(), 4096);
    let vol = dir.path().join("vol");
    std::fs::create_dir(&vol).unwrap();
    std::fs::write(vol.join("v"), "volume\n").unwrap();
    // A static shell inside the root (busybox from the host).
    let busybox = Path::new("/usr/bin/busybox");
    assert!(busybox.exists(), "the test needs the host's static busybox");
    let bb = root.join("busybox");
    std::fs::copy(busybox, &bb).unwrap();
    let r = vkernel(&[
        "run",
        "--rootfs",
        root.to_str().unwrap(),
        "-v",
        &format!("{}:/mnt/vol", vol.display()),
        "--",
        "/busybox",
        "sh",
        "-c",
        "cat /mnt/vol/v; echo x > /mnt/vol/v || echo refused; echo y > /mnt/vol/new || echo refused",
    ]);
    r.expect_code(0);
    assert_eq!(r.stdout, "volume\nrefused\nrefused\n", "{}", r.stderr);
    assert_eq!(std::fs::read_to_string(vol.join("v")).unwrap(), "volume\n");
    assert!(!vol.join("new").exists());
    for bad in [
        format!("{}", vol.display()),
        format!("{}:relative", vol.display()),
        format!("{}:/a/../b", vol.display()),
        format!("{}:/mnt:xx", vol.display()),
        format!("{}:/mnt:rw:ro", vol.display()),
        "/nonexistent-dir:/mnt".to_string(),
    ] {
        let r = vkernel(&["run", "--rootfs", root.to_str().unwrap(), "-v", &bad]);
        assert_eq!(r.code, 1, "-v {bad}: {}", r.stderr);
    }
}

/// The tree of `dir` as `tests/c/hostrw.c` leaves it: every entry's
/// kind, permission bits, size, link count and bytes (or link target);
/// times are the host's own, so not compared.
fn tree(dir: &Path) -> Vec<(PathBuf, u32, u64, u64, Vec<u8>)> {
    use std::os::unix::fs::MetadataExt;
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let m = std::fs::symlink_metadata(&p).unwrap();
            let data = if m.file_type().is_symlink() {
                std::fs::read_link(&p)
                    .unwrap()
                    .into_os_string()
                    .into_encoded_bytes()
            } else if m.is_dir() {
                stack.push(p.clone());
                Vec::new()
            } else if m.is_file() {
                std::fs::read(&p).unwrap()
            } else {
                Vec::new()
            };
            let rel = p.strip_prefix(dir).unwrap().to_path_buf();
            out.push((rel, m.mode(), m.size(), m.nlink(), data));
        }
    }
    out.sort();
    out
}

#[test]
fn a_writable_volume_is_changed_as_natively_and_only_beneath_it() {
    // tests/c/hostrw.c runs natively in one directory and in the guest
    // over another served with `-v DIR:/vol:rw` (plus a read-only volume):
    // the two trees must end the same, and nothing outside the volume
    // may change (it holds links planted to outside files). About 0.3 s.
    let dir = scratch();
    let d = dir.path();
    let exe = c_program(d, "hostrw");
    let outside = d.join("outside");
    std::fs::create_dir(&outside).unwrap();
    std::fs::write(
        outside.join("victim"),
        "victim
",
    )
    .unwrap();
    let ro = d.join("ro");
    std::fs::create_dir(&ro).unwrap();
    std::fs::write(
        ro.join("file"),
        "ro
",
    )
    .unwrap();
    let (native, vol) = (d.join("native"), d.join("vol"));
    for t in [&native, &vol] {
        std::fs::create_dir(t).unwrap();
        std::os::unix::fs::symlink(outside.join("victim"), t.join("esc")).unwrap();
        std::os::unix::fs::symlink("../outside/victim", t.join("rel")).unwrap();
    }
    let out = Command::new(&exe)
        .arg(&native)
        .arg("native")
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.contains(
            "
0 failed"
        ),
        "natively:
{out}"
    );
    let outside_before = snapshot(&outside);
    let ro_before = snapshot(&ro);
    let r = vkernel(&[
        "run",
        "--stats",
        "-v",
        &format!("{}:/vol:rw", vol.display()),
        "-v",
        &format!("{}:/ro", ro.display()),
        "--",
        exe.to_str().unwrap(),
        "/vol",
        "guest",
        "/ro",
    ]);
    assert!(
        !r.stdout.contains("FAIL"),
        "{}
{}",
        r.stdout,
        r.stderr
    );
    r.expect_code(0).stdout_has(
        "
0 failed",
    );
    // The refusal of the writable shared mapping is logged.
    assert!(
        r.stderr.contains("writable MAP_SHARED"),
        "no log line: {}",
        r.stderr
    );
    assert_eq!(tree(&vol), tree(&native), "the guest's tree differs");
    assert_eq!(snapshot(&outside), outside_before, "outside changed");
    assert_eq!(snapshot(&ro), ro_before, "the read-only volume changed");
    assert_eq!(
        std::fs::read_dir(d).unwrap().count(),
        5,
        "something appeared beside the volumes"
    );
}

#[test]
fn dynamic_programs_of_the_host_root_run_as_natively() {
    let dir = scratch();
    let d = dir.path();
    // A dynamically linked hello (not -static).
    let src = d.join("hello.c");
    std::fs::write(
        &src,
        "#include <stdio.h>\nint main(int c, char **v) { printf(\"hello %s %d\\n\", v[1], c); return 0; }\n",
    )
    .unwrap();
    let hello = d.join("hello");
    let out = Command::new("gcc")
        .arg("-o")
        .arg(&hello)
        .arg(&src)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let elf = std::fs::read(&hello).unwrap();
    assert!(
        elf.windows(11).any(|w| w == b"ld-linux-x8"),
        "gcc made a static program"
    );
    same_as_host(&[hello.to_str().unwrap(), "world"]);
    std::fs::write(d.join("a"), "one\n").unwrap();
    std::fs::write(d.join("b"), "two\n").unwrap();
    std::fs::create_dir(d.join("sub")).unwrap();
    same_as_host(&["/bin/ls", "-l", d.to_str().unwrap()]);
    same_as_host(&[
        "/bin/cat",
        d.join("a").to_str().unwrap(),
        d.join("b").to_str().unwrap(),
    ]);
    same_as_host(&["/usr/bin/env", "-i", "A=1", "B=two"]);
    same_as_host(&["/bin/bash", "-c", "echo $((6*7))"]);
    // More of the host's (Debian's) userland over the same files.
    let ds = d.to_str().unwrap();
    same_as_host(&[
        "/bin/bash",
        "-c",
        &format!("cd {ds} && ls | sort -r | grep -v sub | tr a-z A-Z; grep -r o . | sort; find . -name '[ab]' | sort; cat a b | awk '{{print NR, length($0)}}'; sha256sum a b"),
    ]);
    same_as_host(&[
        "/usr/bin/python3",
        "-c",
        "import json, hashlib, re, subprocess; print(json.dumps({'k': [1, 2]}), hashlib.sha256(b'x').hexdigest(), re.sub('a+', '-', 'baaac'), subprocess.run(['/bin/echo', 'child'], capture_output=True).stdout)",
    ]);
    // statfs anywhere in the overlay reports its upper file system, as
    // Linux's overlayfs does: a directory only the host has is no
    // different (it said 0 blocks; Python's shutil.disk_usage test saw it).
    let r = vkernel(&[
        "run",
        "--rootfs",
        "/",
        "--",
        "/usr/bin/stat",
        "-f",
        "-c",
        "%b %T",
        "/usr/lib",
        "/",
    ]);
    r.expect_code(0);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert!(
        lines.len() == 2 && lines[0] == lines[1] && !lines[0].starts_with("0 "),
        "{}",
        r.stdout
    );
    // The host's /proc and /dev are mounts of their own (not served:
    // EXDEV); the guest's are mounted there, each on its own directory.
    let r = vkernel(&[
        "run",
        "--rootfs",
        "/",
        "--",
        "/bin/bash",
        "-c",
        "cat /proc/self/comm; ls /dev/null; grep -c . /proc/mounts",
    ]);
    r.expect_code(0);
    assert_eq!(r.stdout, "cat\n/dev/null\n6\n", "{}", r.stderr);
    // The host root is read-only to the guest: writes land in the upper
    // layer only.
    let target = d.join("a");
    let script = format!(
        "echo changed > {0}; cat {0}; echo new > {1}/created; rm {1}/b; ls {1}",
        target.display(),
        d.display()
    );
    let r = vkernel(&["run", "--rootfs", "/", "--", "/bin/bash", "-c", &script]);
    r.expect_code(0);
    assert_eq!(
        r.stdout, "changed\na\ncreated\nhello\nhello.c\nsub\n",
        "{}",
        r.stderr
    );
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "one\n");
    assert!(d.join("b").exists() && !d.join("created").exists());
}

/// Python's `threading` (four threads, a Lock, a Queue, join) and
/// `sqlite3` (a table of 1000 rows inserted in one transaction into a
/// database file, then queried).
const PY_THREADS_SQLITE: &str = r#"
import sys, threading, queue, sqlite3
q = queue.Queue()
lock = threading.Lock()
total = [0]
def worker(n):
    for i in range(1000):
        with lock:
            total[0] += i * n
    q.put(n)
ts = [threading.Thread(target=worker, args=(n,)) for n in range(1, 5)]
for t in ts: t.start()
for t in ts: t.join()
print(sorted(q.get() for _ in ts), total[0], threading.active_count())
db = sqlite3.connect(sys.argv[1] + "/t.db")
db.execute("create table t (k integer primary key, v text)")
with db:
    db.executemany("insert into t values (?, ?)", ((i, "v%d" % (i * i % 97)) for i in range(1000)))
print(db.execute("select count(*), sum(k), min(v), max(v) from t").fetchone())
print(db.execute("select v, count(*) from t group by v order by count(*) desc, v limit 3").fetchall())
db.close()
"#;

#[test]
fn python_threads_and_sqlite_on_a_writable_volume_run_as_natively() {
    // Debian's own python3 (/usr/bin/python3 of the host's root, Debian
    // bookworm here: no image to build in CI) runs the script natively
    // with its database in one directory, and in the guest with it in a
    // `:rw` volume; the outputs must agree, and the host's python3 must
    // read the guest's database file. About 1.5 s.
    let python = Path::new("/usr/bin/python3");
    let sqlite = Command::new(python)
        .args(["-c", "import sqlite3"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        sqlite,
        "the test needs Debian's /usr/bin/python3 with sqlite3"
    );
    let dir = scratch();
    let d = dir.path();
    let script = d.join("threads_sqlite.py");
    std::fs::write(&script, PY_THREADS_SQLITE).unwrap();
    let (native, vol) = (d.join("native"), d.join("vol"));
    std::fs::create_dir(&native).unwrap();
    std::fs::create_dir(&vol).unwrap();
    let out = Command::new(python)
        .arg(&script)
        .arg(&native)
        .output()
        .unwrap();
    assert!(out.status.success(), "natively: {out:?}");
    let r = vkernel(&[
        "run",
        "--rootfs",
        "/",
        "-v",
        &format!("{}:/vol:rw", vol.display()),
        "--",
        "/usr/bin/python3",
        script.to_str().unwrap(),
        "/vol",
    ]);
    r.expect_code(0);
    assert_eq!(
        r.stdout,
        String::from_utf8_lossy(&out.stdout),
        "{}",
        r.stderr
    );
    let query = "import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute('select count(*), sum(k), group_concat(v) from t').fetchone())";
    let read = |db: &Path| {
        let o = Command::new(python)
            .args(["-c", query])
            .arg(db)
            .output()
            .unwrap();
        assert!(o.status.success(), "{o:?}");
        o.stdout
    };
    assert_eq!(read(&vol.join("t.db")), read(&native.join("t.db")));
}

#[test]
fn fifos_device_nodes_and_hard_links_in_the_root_are_never_opened_on_the_host() {
    // In the root: a FIFO, device nodes (when the host lets us make them:
    // 1:3 is /dev/null, 1:1 /dev/mem) and a hard link to a file outside
    // the root. The FIFO is a guest pipe: while a guest reader waits on
    // it, no reader exists on the host (a host open for writing without
    // blocking keeps failing with ENXIO). A device node names the guest's
    // own device of that number, never the host's. A hard link cannot be
    // told from any other file by the host (it sees an inode): it is
    // served, as the README says; under --rootfs a write to it lands in
    // the upper layer and the outside file is unchanged. About 1.3 s.
    use std::os::unix::fs::OpenOptionsExt;
    let dir = scratch();
    let root = dir.path().join("root");
    let outside = dir.path().join("outside");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("secret"), "secret\n").unwrap();
    std::fs::hard_link(outside.join("secret"), root.join("hl")).unwrap();
    std::fs::copy(c_program(dir.path(), "hostspecial"), root.join("init")).unwrap();
    let fifo = root.join("fifo");
    let c = |p: &Path| std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c(&fifo).as_ptr(), 0o666) }, 0);
    let mut devices = true;
    for (name, minor) in [("null", 3), ("mem", 1)] {
        let dev = libc::makedev(1, minor);
        // SAFETY: a NUL-terminated path.
        if unsafe { libc::mknod(c(&root.join(name)).as_ptr(), libc::S_IFCHR | 0o666, dev) } != 0 {
            devices = false;
        }
    }
    if !devices {
        eprintln!("note: no CAP_MKNOD here: the device-node cases are skipped");
        let _ = std::fs::remove_file(root.join("null"));
        std::fs::write(root.join("null"), "").unwrap();
    }
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let prober = {
        let (fifo, stop) = (fifo.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut tries = 0u32;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let r = std::fs::OpenOptions::new()
                    .write(true)
                    .custom_flags(libc::O_NONBLOCK)
                    .open(&fifo);
                assert_eq!(
                    r.map(|_| ()).map_err(|e| e.raw_os_error()),
                    Err(Some(libc::ENXIO)),
                    "a reader of the FIFO exists on the host"
                );
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            tries
        })
    };
    let r = vkernel(&[
        "run",
        "--rootfs",
        root.to_str().unwrap(),
        "--",
        "/init",
        if devices { "1" } else { "0" },
    ]);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let tries = prober.join().unwrap();
    r.expect_code(0);
    let devs_out = if devices {
        "null: write 4, read 0\nmem: refused\n"
    } else {
        ""
    };
    assert_eq!(
        r.stdout,
        format!("via-guest-pipe\n{devs_out}hl: secret\nhl write: 8\n"),
        "{}",
        r.stderr
    );
    assert!(tries > 20, "the host probed the FIFO only {tries} times");
    assert_eq!(
        std::fs::read_to_string(outside.join("secret")).unwrap(),
        "secret\n"
    );
}

#[test]
fn a_root_larger_than_memory_is_read_through_the_page_cache() {
    // 200 MiB of files with --memory 128: clean pages are dropped and
    // read again; read twice, the checksums match the host's.
    let dir = scratch();
    let d = dir.path();
    let mut names = Vec::new();
    for i in 0..4 {
        let p = d.join(format!("f{i}"));
        let mut data = pattern(50 << 20);
        data[i] = b'x';
        std::fs::write(&p, data).unwrap();
        names.push(p.to_str().unwrap().to_string());
    }
    let native = Command::new("/usr/bin/sha256sum")
        .args(&names)
        .output()
        .unwrap();
    let native = String::from_utf8_lossy(&native.stdout).into_owned();
    let list = names.join(" ");
    // The cache shows in /proc/meminfo as `Cached`, reclaimable
    // (`MemAvailable` above `MemFree`).
    let script = format!(
        "/usr/bin/sha256sum {list}; /usr/bin/sha256sum {list}; \
         awk '/^MemFree/ {{f=$2}} /^MemAvailable/ {{a=$2}} /^Cached/ {{c=$2}} END {{print (c > 1024 && a > f) ? \"cached\" : \"no cache\"}}' /proc/meminfo"
    );
    let r = vkernel(&[
        "run",
        "--memory",
        "128",
        "--rootfs",
        "/",
        "--",
        "/bin/bash",
        "-c",
        &script,
    ]);
    r.expect_code(0);
    assert_eq!(
        r.stdout,
        format!("{native}{native}cached\n"),
        "{}",
        r.stderr
    );
}

#[test]
fn swapping_a_directory_for_a_symlink_during_walks_never_escapes() {
    // The host keeps replacing directories `d0`..`d99` (each holding `f`)
    // with symlinks to a directory outside the root holding an `f` of its
    // own, while the guest reads each `/dN/f` (a fresh walk of each name,
    // at whatever moment): the outside file must never be read. The guest
    // walks `dN` itself; a link is resolved in the guest's root, where
    // the outside directory does not exist. (The lower layer is assumed
    // not to change under a running guest, as overlayfs assumes: a name
    // is walked once and its inode kept.)
    let dir = scratch();
    let root = dir.path().join("root");
    let outside = dir.path().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("f"), "ESCAPED\n").unwrap();
    for i in 0..100 {
        std::fs::create_dir_all(root.join(format!("d{i}"))).unwrap();
        std::fs::write(root.join(format!("d{i}/f")), "inside\n").unwrap();
    }
    std::fs::copy("/usr/bin/busybox", root.join("busybox")).unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let swapper = {
        let (root, outside, stop) = (root.clone(), outside.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut swaps = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                for i in 0..100 {
                    let (d, real) = (root.join(format!("d{i}")), root.join(format!("r{i}")));
                    std::fs::rename(&d, &real).unwrap();
                    std::os::unix::fs::symlink(&outside, &d).unwrap();
                    std::thread::yield_now();
                    std::fs::remove_file(&d).unwrap();
                    std::fs::rename(&real, &d).unwrap();
                    swaps += 1;
                }
            }
            swaps
        })
    };
    let script = "i=0; while [ $i -lt 100 ]; do cat /d$i/f 2>/dev/null; cat /r$i/../d$i/f 2>/dev/null; i=$((i+1)); done; echo done";
    let r = vkernel(&[
        "run",
        "--rootfs",
        root.to_str().unwrap(),
        "--",
        "/busybox",
        "sh",
        "-c",
        script,
    ]);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let swaps = swapper.join().unwrap();
    r.expect_code(0).stdout_has("done");
    assert!(!r.stdout.contains("ESCAPED"), "read outside the root");
    assert!(swaps > 100, "only {swaps} swaps");
}

#[test]
fn repeated_execs_ask_the_host_nothing_twice_and_cost_few_exits() {
    // Every exec of a dynamic program resolves the same symbolic links
    // (/lib64/ld-linux-x86-64.so.2, /bin -> usr/bin): a link's target is
    // read from the host once (a link never changes: a new target is a
    // new inode). And mmap's overcommit check needs only MemTotal, not
    // the host pool's use (it asked the host on every call). Ten more
    // execs cost neither call. A fork + exec + exit + wait of the dynamic
    // /bin/true is ~192 exits with pmap=host: a fault's file-page mapping
    // and the results of rt_sigaction, rt_sigprocmask and the stat calls
    // go with the next RUN (they were ~357 exits, each an exit of its
    // own, then 286); exec loads each image with one batch; execve reads
    // its strings through whole kept pages (~52 preads an exec, now ~28,
    // most of them ld.so's paths); a file mmap unmaps only what the host
    // maps (ld.so's mmaps cost a refused munmap, a fill and a munmap
    // each: ~7 munmaps an exec, now 1).
    let counts = |n: u32| {
        let script = format!("for i in $(seq {n}); do /bin/true; done");
        let r = vkernel(&[
            "run",
            "--stats",
            "--rootfs",
            "/",
            "--",
            "/bin/bash",
            "-c",
            &script,
        ]);
        r.expect_code(0);
        (
            stats_call_count(&r.stderr, "HostfsReadlink"),
            stats_call_count(&r.stderr, "PoolStats"),
            common::stats_exits(&r.stderr),
            stats_call_count(&r.stderr, "VmspacePread"),
            stats_call_count(&r.stderr, "VmspaceMunmap"),
        )
    };
    let (few, more) = (counts(2), counts(12));
    assert!(few.0 > 0, "no readlink at all: {few:?}");
    assert_eq!(
        (few.0, few.1),
        (more.0, more.1),
        "(readlinks, pool stats) for 2 and 12 execs"
    );
    if std::env::var("VKERNEL_TEST_PMAP").as_deref() != Ok("guest") {
        let per_exec = |a: u64, b: u64| (b - a) / 10;
        let exits = (more.2 - few.2) / 10;
        assert!(exits < 215, "{exits} exits per exec of /bin/true");
        let preads = per_exec(few.3, more.3);
        assert!(
            preads <= 35,
            "{preads} vmspace_preads per exec of /bin/true"
        );
        let munmaps = per_exec(few.4, more.4);
        assert!(
            munmaps <= 2,
            "{munmaps} vmspace_munmaps per exec of /bin/true"
        );
    }
}

#[test]
fn python_starts_from_the_host_root_in_few_page_faults() {
    // exec maps a program's segments from its file. A fault in one maps
    // its whole 64-page window, read from the host around the fault in
    // as few reads as the page cache allows (Linux's read-ahead: reading
    // only from the faulting page on left most of each window unmapped),
    // and the data segment comes as private copies at exec, not a write
    // fault per page: `python3 -c pass` took 65 faults when exec copied
    // the whole file, 414 with neither, 63 now.
    let r = vkernel(&[
        "run",
        "--stats",
        "--rootfs",
        "/",
        "--memory",
        "512",
        "--",
        "/usr/bin/python3",
        "-c",
        "pass",
    ]);
    r.expect_code(0);
    let faults = common::stats_count(&r.stderr, " page faults");
    assert!(faults < 100, "{faults} page faults:\n{}", r.stderr);
}
