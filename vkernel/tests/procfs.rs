//! /proc (#13): the per-process files and the system-wide ones, through a
//! C program built at test time with `gcc -static` that checks them
//! against what Linux gives (it passes natively too), and busybox's `ps`,
//! `free`, `uptime`, `cat` and `ls` over them (Debian's `busybox-static`,
//! which ci/setup.sh installs), their layout compared with the same
//! applets on the host.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{c_checks_pass_natively_and_in_the_guest, vkernel};
use loader::cpio_writer::{pack, Member};

#[test]
fn proc_files_read_as_on_linux() {
    c_checks_pass_natively_and_in_the_guest("procfs");
}

/// Debian's static busybox (a dynamic one cannot run in the guest).
fn busybox() -> Vec<u8> {
    let bytes = std::fs::read("/bin/busybox")
        .expect("/bin/busybox: ci/setup.sh installs the busybox-static package");
    // A PT_INTERP program header names a dynamic loader.
    let u = |at: usize, n: usize| {
        bytes[at..at + n]
            .iter()
            .rev()
            .fold(0usize, |v, &b| (v << 8) | b as usize)
    };
    let (phoff, phentsize, phnum) = (u(0x20, 8), u(0x36, 2), u(0x38, 2));
    let dynamic = (0..phnum).any(|i| u(phoff + i * phentsize, 4) == 3);
    assert!(
        !dynamic,
        "/bin/busybox is dynamically linked: install busybox-static (ci/setup.sh)"
    );
    bytes
}

const APPLETS: [&str; 13] = [
    "sh", "ps", "free", "uptime", "cat", "ls", "readlink", "head", "grep", "tr", "wc", "sleep",
    "kill",
];

/// An image with /bin/busybox and its applet links, an /etc/passwd, and
/// `script` as /init; its path (kept with the directory).
fn busybox_image(dir: &Path, script: &str) -> PathBuf {
    let bb = busybox();
    let mut members = vec![
        Member {
            name: "bin/busybox",
            mode: 0o100755,
            data: &bb,
        },
        Member {
            name: "etc/passwd",
            mode: 0o100644,
            data: b"root:x:0:0:root:/root:/bin/sh\n",
        },
        Member {
            name: "init",
            mode: 0o100755,
            data: script.as_bytes(),
        },
    ];
    let names: Vec<String> = APPLETS.iter().map(|a| format!("bin/{a}")).collect();
    for n in &names {
        members.push(Member {
            name: n,
            mode: 0o120777,
            data: b"busybox",
        });
    }
    let path = dir.join("busybox.cpio");
    std::fs::write(&path, pack(&members)).unwrap();
    path
}

/// The lines of `out` between `== NAME` and the next `== ` marker.
fn section<'a>(out: &'a str, name: &str) -> Vec<&'a str> {
    let marker = format!("== {name}");
    out.lines()
        .skip_while(|l| *l != marker)
        .skip(1)
        .take_while(|l| !l.starts_with("== "))
        .collect()
}

/// The first line `busybox APPLET ARGS` prints on the host.
fn host_header(args: &[&str]) -> String {
    let out = Command::new("/bin/busybox").args(args).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .unwrap_or("")
        .to_string()
}

#[test]
fn busybox_ps_free_uptime_and_proc_files_work() {
    let dir = tempfile::tempdir().unwrap();
    let script = "#!/bin/sh\n\
        echo '== ps'; ps\n\
        echo '== ps -o'; ps -o pid,ppid,stat,vsz,comm,args\n\
        echo '== free'; free\n\
        echo '== meminfo'; cat /proc/meminfo\n\
        echo '== uptime'; uptime\n\
        echo '== fd'; ls -l /proc/self/fd/\n\
        echo '== mounts'; cat /proc/mounts\n\
        echo '== exe'; readlink /proc/self/exe\n\
        echo '== cmdline'; tr '\\0' ' ' < /proc/1/cmdline; echo\n\
        echo '== cpuinfo'; head -1 /proc/cpuinfo\n\
        echo '== proc'; ls /proc\n\
        echo '== stat'; cat /proc/1/stat | wc -w\n\
        echo '== stdin'; echo piped | cat /dev/stdin\n\
        echo '== threads'; ps -T | head -1\n\
        sleep 10 & i=0; while [ $i -lt 100 ]; do i=$((i + 1))\n\
            ps -o stat,args | grep -q '^S .* sleep 10$' && break; sleep 0.1; done\n\
        echo '== sleeper'; ps -o stat,comm,args | grep 'sleep 10$'; kill $!\n\
        echo '== end'\n";
    let img = busybox_image(dir.path(), script);
    let r = vkernel(&["run", "--image", img.to_str().unwrap()]);
    r.expect_code(0).stdout_has("== end");
    let out = &r.stdout;
    let ctx = format!("--- stdout\n{out}\n--- stderr\n{}", r.stderr);

    let ps = section(out, "ps");
    assert_eq!(
        ps.first().copied(),
        Some(host_header(&["ps"]).as_str()),
        "{ctx}"
    );
    assert!(
        ps.iter()
            .any(|l| l.trim_start().starts_with("1 root") && l.contains("/bin/sh /init")),
        "ps lists init\n{ctx}"
    );
    let pso = section(out, "ps -o");
    assert_eq!(
        pso.first().copied(),
        Some(host_header(&["ps", "-o", "pid,ppid,stat,vsz,comm,args"]).as_str()),
        "{ctx}"
    );
    assert!(
        pso.iter().any(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            w.len() >= 5 && w[0] == "1" && w[1] == "0" && w[2] == "S" && w[4] == "init"
        }),
        "ps -o: init sleeps in wait4, child of 0\n{ctx}"
    );
    assert!(
        pso.iter().any(|l| l.split_whitespace().nth(2) == Some("R")),
        "ps -o: ps itself runs\n{ctx}"
    );

    let free = section(out, "free");
    assert_eq!(
        free.first().copied(),
        Some(host_header(&["free"]).as_str()),
        "{ctx}"
    );
    let mem: Vec<u64> = free
        .iter()
        .find(|l| l.starts_with("Mem:"))
        .expect("free: a Mem: line")
        .split_whitespace()
        .skip(1)
        .map(|w| w.parse().unwrap())
        .collect();
    let meminfo = section(out, "meminfo");
    let kb = |key: &str| -> u64 {
        let line = meminfo
            .iter()
            .find(|l| l.starts_with(key))
            .unwrap_or_else(|| panic!("meminfo lacks {key}\n{ctx}"));
        assert!(line.ends_with(" kB") && line.len() >= 27, "{line:?}");
        line[16..line.len() - 3].trim().parse().unwrap()
    };
    let (total, free_kb) = (kb("MemTotal:"), kb("MemFree:"));
    assert_eq!(mem[0], total, "free's total is MemTotal\n{ctx}");
    assert!(free_kb > 0 && free_kb < total, "{ctx}");
    assert!(kb("Shmem:") > 0, "the image's files are shmem\n{ctx}");

    let uptime = section(out, "uptime").join("\n");
    assert!(
        uptime.contains(" up ") && uptime.contains("load average: 0.00, 0.00, 0.00"),
        "{ctx}"
    );
    let fd = section(out, "fd").join("\n");
    assert!(fd.contains(" 0 -> /dev/console"), "{ctx}");
    assert!(fd.contains("lrwx------"), "{ctx}");
    let mounts = section(out, "mounts");
    assert!(
        mounts.contains(&"proc /proc proc rw,nosuid,nodev,noexec,relatime 0 0"),
        "{ctx}"
    );
    assert!(
        mounts.iter().any(|l| l.starts_with("tmpfs /tmp tmpfs ")),
        "{ctx}"
    );
    assert_eq!(section(out, "exe"), ["/bin/busybox"], "{ctx}");
    assert_eq!(section(out, "cmdline"), ["/bin/sh /init "], "{ctx}");
    assert_eq!(section(out, "cpuinfo"), ["processor\t: 0"], "{ctx}");
    let proc_ls = section(out, "proc").join(" ");
    for name in [
        "1", "self", "meminfo", "cpuinfo", "uptime", "loadavg", "mounts",
    ] {
        assert!(
            proc_ls.split_whitespace().any(|w| w == name),
            "ls /proc: {name}\n{ctx}"
        );
    }
    assert_eq!(section(out, "stat"), ["52"], "{ctx}");
    assert_eq!(section(out, "stdin"), ["piped"], "{ctx}");
    assert_eq!(
        section(out, "threads"),
        [host_header(&["ps", "-T"])],
        "{ctx}"
    );
    let sleeper = section(out, "sleeper");
    assert!(
        // busybox sh runs applets by exec of /proc/self/exe, then names
        // itself with prctl(PR_SET_NAME): comm is "sleep", as on Linux.
        sleeper.iter().any(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            w == ["S", "sleep", "sleep", "10"]
        }),
        "a background sleep sleeps\n{ctx}"
    );
}
