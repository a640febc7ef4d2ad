//! `compute N`: counts the primes below N the slow way, many time slices
//! of work, so the scheduler preempts it while the others keep printing.
#![no_std]
#![no_main]

use vkernel_user::{arg_num, entry, println, sys};

entry!(main);

fn main() -> i32 {
    let n = arg_num(1, 30000);
    let t0 = sys::clock_ns(1);
    let mut count = 0u64;
    for k in 2..n {
        let mut prime = true;
        let mut d = 2;
        while d < k {
            if k % d == 0 {
                prime = false;
            }
            d += 1;
        }
        if prime {
            count += 1;
        }
    }
    let ms = (sys::clock_ns(1) - t0) / 1_000_000;
    println!("compute: {count} primes below {n} ({ms} ms of computing, preempted every slice)");
    0
}
