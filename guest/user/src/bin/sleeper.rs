//! `sleeper MS`: sleeps MS milliseconds and says how long it slept.
#![no_std]
#![no_main]

use vkernel_user::{arg_num, entry, println, sys};

entry!(main);

fn main() -> i32 {
    let ms = arg_num(1, 300);
    println!("sleeper: sleeping {ms} ms");
    let t0 = sys::clock_ns(1);
    sys::sleep_ms(ms);
    let slept = (sys::clock_ns(1) - t0) / 1_000_000;
    println!("sleeper: woke after {slept} ms");
    0
}
