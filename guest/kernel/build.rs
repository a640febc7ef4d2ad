// Link the kernel at its fixed address with the linker script it shares
// with the test kernel.
fn main() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap();
    println!("cargo:rustc-link-arg-bins=-T{dir}/../guestlib/kernel.ld");
    println!("cargo:rerun-if-changed=../guestlib/kernel.ld");
}
