// Link the test kernel at the real kernel's fixed address, with the same
// linker script.
fn main() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap();
    println!("cargo:rustc-link-arg-bins=-T{dir}/../guestlib/kernel.ld");
    println!("cargo:rerun-if-changed=../guestlib/kernel.ld");
}
