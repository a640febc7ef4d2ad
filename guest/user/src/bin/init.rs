//! /init of the built-in image: starts programs that print interleaved
//! lines, one that computes (longer than a time slice, so it is
//! preempted), one that sleeps and one that crashes; reaps them all and
//! exits 0 if exactly the crasher died (of SIGSEGV) and the rest exited 0.
#![no_std]
#![no_main]

use vkernel_user::{entry, println, sys};

entry!(main);

fn main() -> i32 {
    println!("init: pid {}, starting the demo", sys::getpid());
    let mut kids = [(0i64, ""); 6];
    kids[0] = (
        sys::spawn("/bin/hello", &["hello", "alpha", "4"]),
        "hello alpha",
    );
    kids[1] = (
        sys::spawn("/bin/hello", &["hello", "beta", "4"]),
        "hello beta",
    );
    kids[2] = (sys::spawn("/bin/compute", &["compute", "30000"]), "compute");
    kids[3] = (sys::spawn("/bin/sleeper", &["sleeper", "300"]), "sleeper");
    kids[4] = (sys::spawn("/bin/crash", &["crash", "null"]), "crash");
    kids[5] = (
        sys::spawn("/bin/hello", &["hello", "gamma", "3"]),
        "hello gamma",
    );
    let (mut clean, mut crashed, mut other) = (0, 0, 0);
    loop {
        let (pid, status) = sys::wait4(-1, 0);
        if pid < 0 {
            break; // ECHILD: all reaped
        }
        let name = kids.iter().find(|k| k.0 == pid).map_or("?", |k| k.1);
        if status & 0x7f != 0 {
            println!(
                "init: pid {pid} ({name}) was killed by signal {}",
                status & 0x7f
            );
            if name == "crash" && status & 0x7f == 11 {
                crashed += 1;
            } else {
                other += 1;
            }
        } else {
            let code = (status >> 8) & 0xff;
            println!("init: pid {pid} ({name}) exited with status {code}");
            if code == 0 {
                clean += 1;
            } else {
                other += 1;
            }
        }
    }
    let ok = clean == 5 && crashed == 1 && other == 0;
    println!(
        "init: {clean} exited cleanly, {crashed} crashed as expected, {other} unexpected: {}",
        if ok {
            "all as expected"
        } else {
            "SOMETHING WENT WRONG"
        }
    );
    if ok {
        0
    } else {
        1
    }
}
