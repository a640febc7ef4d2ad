//! `hello NAME COUNT`: prints COUNT lines, yielding between them, so the
//! lines of several hellos interleave.
#![no_std]
#![no_main]

use vkernel_user::{arg, arg_num, entry, println, sys};

entry!(main);

fn main() -> i32 {
    let name = arg(1);
    let n = arg_num(2, 3);
    for i in 1..=n {
        println!("{name}: line {i} of {n} (pid {})", sys::getpid());
        sys::sleep_ms(20);
    }
    0
}
